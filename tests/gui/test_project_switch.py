"""One project document: switching projects leaves nothing of the old one on screen; Save As copies runs.

A tiny CNN on the bundled 8x8 digits trains for two short epochs through the Train button; then the
window opens other projects (New from Template, Open, Open Recent, New) and every dock is checked
through what a person sees: the widgets' text and the plots' data.
"""

from __future__ import annotations

from pathlib import Path

import pytest
from PySide6.QtCore import Qt
from PySide6.QtTest import QTest
from PySide6.QtWidgets import QAbstractButton

from dlstudio.core.project import load_project, load_template, save_project
from dlstudio.gui import main_window
from gui_helpers import chain_project

SIGNAL_TIMEOUT_MS = 60_000


@pytest.fixture(autouse=True)
def closing_stops_training(monkeypatch):
    monkeypatch.setattr(main_window.MainWindow, "_ask_stop_training", lambda self: main_window.STOP_AND_CLOSE_CHOICE)


def _tiny_cnn_project(path: Path):
    project = chain_project(("Input", {"shape": [1, 8, 8]}), ("Conv2d", {"out_channels": 4, "kernel_size": 3}),
                            ("ReLU", {}), ("Flatten", {}), ("Linear", {"out_features": 10}),
                            ("Output", {"task": "classification", "classes": 10}))
    project.data = {"source": "digits"}
    project.training = {"epochs": 2, "batch_size": 32, "learning_rate": 0.01, "channels_last": "off",
                        "device": "cpu"}
    save_project(project, path)
    return project


def _train(qtbot, window) -> Path:
    """Press Train and wait for the run to end; returns its folder."""
    controller = window.training
    QTest.mouseClick(controller.panel.buttons["start"], Qt.MouseButton.LeftButton)
    worker = controller.worker
    assert worker is not None, window.training.panel.findChild(object, "training_error")
    finished = []
    worker.finished.connect(finished.append)
    with qtbot.waitSignal(worker.ended, timeout=SIGNAL_TIMEOUT_MS):
        pass
    assert finished and finished[0]["status"] == "completed", finished
    run_dir = Path(finished[0]["run_dir"])
    qtbot.waitUntil(lambda: any(Path(entry) == run_dir for entry in controller.runs.runs()), timeout=30_000)
    return run_dir


def _texts(widget) -> str:
    """Everything a person can read in ``widget``: labels, buttons, line edits (visible or not)."""
    from PySide6.QtWidgets import QAbstractButton, QLabel, QLineEdit

    parts = [label.text() for label in widget.findChildren(QLabel)]
    parts += [button.text() for button in widget.findChildren(QAbstractButton)]
    parts += [edit.text() for edit in widget.findChildren(QLineEdit)]
    return "\n".join(parts)


def _assert_nothing_of(window, run_dir: Path) -> None:
    """No dock shows the run ``run_dir`` of the previous project, nor its results."""
    controller, inspect = window.training, window.inspect
    name = run_dir.name
    assert name not in _texts(controller.panel), _texts(controller.panel)
    assert "epoch 2/2" not in _texts(controller.panel)
    controller.curves.flush()
    assert sum(controller.curves.point_count().values()) == 0, controller.curves.point_count()
    assert controller.curves.overlay_names() == []
    assert controller.confusion.accuracy() is None
    assert controller.runs.runs() == [] or all(Path(r).parent != run_dir.parent for r in controller.runs.runs())
    assert not inspect.session.is_loaded
    assert name not in inspect.model_label.text()
    assert [inspect.run_combo.itemText(i) for i in range(inspect.run_combo.count())] in (["no runs yet"], [])
    assert len(inspect.classify.cards) == 0
    assert not controller.status_label.isVisible()


def test_after_training_new_open_and_open_recent_show_only_the_new_project(make_window, qtbot, tmp_path,
                                                                           monkeypatch):
    first = tmp_path / "first.dlstudio"
    _tiny_cnn_project(first)
    other = tmp_path / "other.dlstudio"
    save_project(load_template("resnet-mini"), other)
    window = make_window(load_project(first))
    run_dir = _train(qtbot, window)
    # Something to lose: classify a digit with the trained model, and the confusion matrix is on screen.
    assert window.training.confusion.accuracy() is not None
    import numpy as np
    from PIL import Image
    from sklearn.datasets import load_digits

    image_path = tmp_path / "digit.png"
    Image.fromarray((load_digits().images[0] * 16).astype(np.uint8)).save(image_path)
    window.inspect.classify_files([str(image_path)])
    qtbot.waitUntil(lambda: len(window.inspect.classify.cards) == 1 and window.inspect.classify.cards[0].ok, timeout=30_000)

    # New from Template: the ResNet shows nothing of the run.
    window.new_from_template_action.trigger()  # the welcome page's template cards
    assert window.is_welcome_shown()
    card = next(card for card in window.welcome.cards if card.name == "resnet-mini")
    QTest.mouseClick(card, Qt.MouseButton.LeftButton)
    assert window.project.path is None and len(window.project.graph) > 5
    _assert_nothing_of(window, run_dir)

    # Back to the trained project through Open: it shows its own latest run again (issue: a reopened project
    # hid its finished run).
    monkeypatch.setattr(window, "_ask_open_path", lambda: str(first))
    window.open_action.trigger()
    qtbot.waitUntil(lambda: run_dir.name in _texts(window.training.panel), timeout=20_000)
    qtbot.waitUntil(lambda: window.training.confusion.accuracy() is not None, timeout=20_000)
    window.training.curves.flush()
    xs, _ = window.training.curves.series("val_loss")
    assert xs.tolist() == [1.0, 2.0]

    # Open (another file), then Open Recent back and forth.
    monkeypatch.setattr(window, "_ask_open_path", lambda: str(other))
    window.open_action.trigger()
    assert window.project.path == other
    _assert_nothing_of(window, run_dir)
    window._open_recent(str(first))
    qtbot.waitUntil(lambda: run_dir.name in _texts(window.training.panel), timeout=20_000)
    window._open_recent(str(other))
    _assert_nothing_of(window, run_dir)

    # New keeps nothing either.
    window.new_action.trigger()
    _assert_nothing_of(window, run_dir)


def test_save_as_then_deleting_the_run_in_the_copy_leaves_the_original_untouched(make_window, qtbot, tmp_path,
                                                                                 monkeypatch):
    original = tmp_path / "digits.dlstudio"
    _tiny_cnn_project(original)
    window = make_window(load_project(original))
    run_dir = _train(qtbot, window)
    original_files = {path.name: path.read_bytes() for path in run_dir.iterdir() if path.is_file()}
    assert "best.pt" in original_files and "last.pt" in original_files

    copy_path = tmp_path / "copy.dlstudio"
    monkeypatch.setattr(window, "_ask_save_path", lambda: str(copy_path))
    window.save_as_action.trigger()
    copy_run = tmp_path / "copy.runs" / run_dir.name
    assert load_project(copy_path).runs == [f"copy.runs/{run_dir.name}"]
    assert (copy_run / "best.pt").read_bytes() == original_files["best.pt"]
    runs = window.training.runs
    qtbot.waitUntil(lambda: runs.runs() == [str(copy_run)], timeout=20_000)

    # The model the Inspect dock uses is the copy's; deleting the copy's run drops it.
    window.inspect.load_run(copy_run)
    qtbot.waitUntil(lambda: window.inspect.session.is_loaded, timeout=30_000)
    monkeypatch.setattr(main_window.QMessageBox, "question", lambda *args: main_window.QMessageBox.StandardButton.Yes)
    runs.select_runs([str(copy_run)])
    QTest.mouseClick(runs.delete_button, Qt.MouseButton.LeftButton)
    assert not copy_run.exists()
    assert not window.inspect.session.is_loaded
    assert load_project(copy_path).runs == []

    # The original's folder and checkpoints are untouched, and its file still lists its run.
    assert {path.name: path.read_bytes() for path in run_dir.iterdir() if path.is_file()} == original_files
    assert load_project(original).runs == [f"digits.runs/{run_dir.name}"]


def test_train_on_a_graph_with_errors_says_why_in_one_place_and_saves_nothing(make_window, tmp_path, monkeypatch):
    project = chain_project(("Input", {"shape": [1, 8, 8]}), ("Conv2d", {"out_channels": 4, "kernel_size": 3}),
                            ("Linear", {"out_features": 10}), ("Output", {"task": "classification", "classes": 10}))
    window = make_window(project)
    linear = next(node for node in window.project.graph if node.type == "Linear")
    window.rename_node(linear.id, "classifier")
    errors, asked = [], []
    monkeypatch.setattr(window, "_show_error", lambda title, message: errors.append(message))
    monkeypatch.setattr(window, "_ask_save_before_training", lambda: asked.append(True) or False)
    monkeypatch.setattr(window, "_ask_save_path", lambda: pytest.fail("no save dialog for a broken network"))
    window.training.start_action.trigger()
    assert window.training.worker is None and not asked
    assert len(errors) == 1 and "classifier" in errors[0] and "Flatten" in errors[0]
    assert linear.id not in errors[0] or linear.id == "classifier"


def test_train_on_an_untitled_project_says_why_it_needs_a_file_first(make_window, tmp_path, monkeypatch):
    project = load_template("mlp")
    window = make_window(project)
    asked = []
    monkeypatch.setattr(window, "_ask_save_before_training", lambda: asked.append(True) or False)
    monkeypatch.setattr(window, "_ask_save_path", lambda: pytest.fail("the Save dialog comes only after saying why"))
    window.training.start_action.trigger()
    assert asked == [True] and window.training.worker is None
    assert "needs a file" in window.statusBar().currentMessage()


def test_switching_the_data_source_and_its_path_is_one_undo_step(make_window, tmp_path):
    window = make_window(load_template("lenet5"))
    window.data_panel.settings_edit_requested.emit({"source": "folder", "path": str(tmp_path)})
    assert window.project.data["source"] == "folder" and window.project.data["path"] == str(tmp_path)
    assert window.undo_stack.count() == 1 and window.undo_stack.undoText() == "Change the data source"
    window.undo_action.trigger()
    assert window.project.data["source"] == "digits"


def test_the_first_click_on_a_reopened_projects_confusion_cell_opens_its_mistakes(make_window, qtbot, tmp_path):
    """A reopened project shows its run's last confusion matrix; the first click (no model loaded yet) fills the
    Mistakes gallery with as many images as the cell counts."""
    path = tmp_path / "digits.dlstudio"
    _tiny_cnn_project(path)
    window = make_window(load_project(path))
    _train(qtbot, window)
    window.close()

    reopened = make_window(load_project(path))
    confusion, inspect = reopened.training.confusion, reopened.inspect
    qtbot.waitUntil(lambda: confusion.accuracy() is not None, timeout=20_000)
    assert not inspect.session.is_loaded
    reopened.metrics_dock.raise_()
    reopened.metrics_dock.widget().setCurrentWidget(confusion)
    qtbot.waitExposed(confusion)
    matrix = confusion.matrix()
    true = int(matrix.sum(axis=1).argmax())
    with qtbot.waitSignal(inspect.mistakes.cell_shown, timeout=SIGNAL_TIMEOUT_MS) as shown:
        QTest.mouseClick(confusion.viewport(), Qt.MouseButton.LeftButton, Qt.KeyboardModifier.NoModifier,
                         confusion.cell_point(true, true))
    assert shown.args[0]["count"] == int(matrix[true, true]) > 0
    assert inspect.tabs.currentWidget() is inspect.mistakes


def test_new_as_a_person_triggers_it_shows_the_welcome_page_over_an_empty_canvas(make_window, qtbot):
    window = make_window(load_template("lenet5"))
    assert not window.is_welcome_shown()
    window.new_action.trigger()  # as the menu or toolbar does: `triggered` passes checked=False
    assert len(window.project.graph) == 0 and window.is_welcome_shown()
    QTest.mouseClick(window.welcome.findChild(QAbstractButton, "welcome_new") or _button(window.welcome, "New empty"),
                     Qt.MouseButton.LeftButton)
    assert not window.is_welcome_shown() and len(window.project.graph) == 0
    assert not window.view.horizontalScrollBar().isVisible() and not window.view.verticalScrollBar().isVisible()


def _button(parent, prefix: str):
    return next(button for button in parent.findChildren(QAbstractButton) if button.text().startswith(prefix))


def test_train_on_a_network_too_big_for_memory_is_refused_before_anything_starts(make_window, monkeypatch):
    project = chain_project(("Input", {"shape": [3, 100000, 100000]}), ("Conv2d", {"out_channels": 8, "kernel_size": 3}),
                            ("Flatten", {}), ("Linear", {"out_features": 10}),
                            ("Output", {"task": "classification", "classes": 10}))
    window = make_window(project)
    errors = []
    monkeypatch.setattr(window, "_show_error", lambda title, message: errors.append(message))
    monkeypatch.setattr(window, "_ask_save_before_training", lambda: pytest.fail("no save before saying why"))
    window.training.start_action.trigger()
    assert window.training.worker is None and len(errors) == 1 and "memory" in errors[0]


def test_the_runs_list_says_paused_while_a_run_is_paused(make_window, qtbot, tmp_path):
    path = tmp_path / "net.dlstudio"
    project = _tiny_cnn_project(path)
    project.training["epochs"] = 200
    save_project(project, path)
    window = make_window(load_project(path))
    controller = window.training
    QTest.mouseClick(controller.panel.buttons["start"], Qt.MouseButton.LeftButton)
    worker = controller.worker
    with qtbot.waitSignal(worker.epoch_finished, timeout=SIGNAL_TIMEOUT_MS):
        pass
    run_dir = str(controller.document.training_run)

    def status() -> str:
        item = controller.runs.item_for(run_dir)
        return item.text(1) if item is not None else ""

    qtbot.waitUntil(lambda: status() == "training", timeout=20_000)
    QTest.mouseClick(controller.panel.buttons["pause"], Qt.MouseButton.LeftButton)
    qtbot.waitUntil(lambda: status() == "paused", timeout=20_000)
    QTest.mouseClick(controller.panel.buttons["pause"], Qt.MouseButton.LeftButton)  # Resume
    qtbot.waitUntil(lambda: status() == "training", timeout=20_000)
    with qtbot.waitSignal(worker.ended, timeout=SIGNAL_TIMEOUT_MS):
        QTest.mouseClick(controller.panel.buttons["stop"], Qt.MouseButton.LeftButton)


def test_help_welcome_over_an_open_network_goes_back_with_esc_or_the_menu(make_window, qtbot):
    window = make_window(load_template("lenet5"))
    nodes = len(window.project.graph)
    window.welcome_action.trigger()
    assert window.is_welcome_shown() and window.welcome_action.isChecked()
    QTest.keyClick(window.welcome, Qt.Key.Key_Escape)
    assert not window.is_welcome_shown() and not window.welcome_action.isChecked()
    assert len(window.project.graph) == nodes
    window.welcome_action.trigger()
    window.welcome_action.trigger()  # the menu item again: back to the canvas
    assert not window.is_welcome_shown()

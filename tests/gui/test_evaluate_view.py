"""Inspect › Evaluate and the per-class table under the Metrics dock's confusion matrix: sklearn's own figures."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
from PIL import Image
from PySide6.QtCore import Qt
from PySide6.QtTest import QTest
from sklearn.datasets import load_digits
from sklearn.metrics import confusion_matrix, precision_recall_fscore_support

from dlstudio.core.inspect.evaluate import evaluate_folder
from dlstudio.core.project import load_project
from dlstudio.gui.inspect.evaluate_view import NO_MODEL, READY, EvaluateView
from dlstudio.gui.inspect.model_session import ModelSession
from dlstudio.gui.plots.confusion_table import F1_COLUMN
from gui_helpers import chain_project, train_recorded_run

TIMEOUT_MS = 30_000


@pytest.fixture
def labelled_folder(tmp_path: Path) -> Path:
    """Digits 0, 1 and 2, four PNGs each, one of them a 7 filed under 1 (a sure mistake), and one unreadable file."""
    digits = load_digits()
    root = tmp_path / "labelled"
    for label in range(3):
        (root / str(label)).mkdir(parents=True)
        for count, index in enumerate(np.nonzero(digits.target == label)[0][-4:]):
            _save_digit(digits.images[index], root / str(label) / f"{count}.png")
    _save_digit(digits.images[np.nonzero(digits.target == 7)[0][-1]], root / "1" / "really_a_7.png")
    (root / "2" / "broken.png").write_bytes(b"not a png")
    return root


def _save_digit(image: np.ndarray, path: Path) -> None:
    Image.fromarray((image * 255 / 16).astype(np.uint8)).resize((24, 24), Image.BILINEAR).save(path)


@pytest.fixture
def view(qtbot, session) -> EvaluateView:
    view = EvaluateView(session)
    qtbot.addWidget(view)
    view.resize(640, 560)
    view.show()
    qtbot.waitExposed(view)
    return view


def _evaluate(qtbot, view: EvaluateView, folder: Path) -> dict:
    view.choose_folder = lambda: str(folder)  # the dialog a person would answer
    with qtbot.waitSignal(view.evaluated, timeout=TIMEOUT_MS) as evaluated:
        QTest.mouseClick(view.evaluate_button, Qt.MouseButton.LeftButton)
    return evaluated.args[0]


def test_without_a_model_it_says_so(qtbot) -> None:
    view = EvaluateView(ModelSession())
    qtbot.addWidget(view)
    assert view.message.text() == NO_MODEL and not view.evaluate_button.isEnabled()


def test_the_tab_shows_the_core_evaluations_figures(qtbot, view, session, labelled_folder) -> None:
    assert view.message.text() == READY
    _evaluate(qtbot, view, labelled_folder)
    expected = evaluate_folder(session.trained, labelled_folder, top_k=5)
    assert len(expected.files) == 13 and (expected.predicted != expected.true).any()
    # The summary line, the table, the matrix: the core's numbers, which test_cli_evaluate checks against sklearn.
    summary = view.summary.text()
    assert f"13 images · accuracy {expected.accuracy:.1%}" in summary
    assert f"top-5 accuracy {expected.top_k_accuracy:.1%}" in summary
    rows = view.per_class_table.rows()
    assert [row["class"] for row in rows] == [expected.class_names[i] for i in expected.labels]
    for row, want in zip(rows, expected.per_class(), strict=True):
        assert row == pytest.approx(want)
    assert view.confusion.matrix().tolist() == expected.confusion()
    # The F1 column sorts numbers as numbers, the worst class first.
    view.per_class_table.sortByColumn(F1_COLUMN, Qt.SortOrder.AscendingOrder)
    shown = [float(text) for text in view.per_class_table.shown_column(F1_COLUMN)]
    assert shown == sorted(shown) and shown[0] == pytest.approx(min(row["f1"] for row in rows), abs=5e-4)
    # The worst-classified files, surest mistake first; the unreadable file in one line, in words.
    worst = expected.worst(24)
    assert [m["file"] for m in view.worst_model.mistakes] == [m["file"] for m in worst]
    assert str(labelled_folder / "1" / "really_a_7.png") in [m["file"] for m in worst]
    lines = view.errors.text().splitlines()
    assert len(lines) == 1 and lines[0].startswith("Skipped broken.png (2): ") and "Error" not in lines[0]


def test_a_worst_file_clicked_opens_in_classify(qtbot, digits_run, labelled_folder) -> None:
    from dlstudio.gui.inspect_controller import InspectController

    controller = InspectController()
    qtbot.addWidget(controller.widget)
    controller.widget.resize(700, 600)
    controller.widget.show()
    with qtbot.waitSignal(controller.session.model_loaded, timeout=TIMEOUT_MS):
        controller.load_run(digits_run)
    view = controller.evaluate
    controller.tabs.setCurrentWidget(view)
    qtbot.waitExposed(view)
    _evaluate(qtbot, view, labelled_folder)
    first = view.worst_model.mistakes[0]["file"]
    opened: list[str] = []
    view.file_activated.connect(opened.append)
    QTest.mouseClick(view.worst_list.viewport(), Qt.MouseButton.LeftButton, Qt.KeyboardModifier.NoModifier,
                     view.worst_list.visualRect(view.worst_model.index(0)).center())
    assert opened == [first]
    assert controller.tabs.currentWidget() is controller.classify
    qtbot.waitUntil(lambda: len(controller.classify.cards) == 1, timeout=TIMEOUT_MS)
    assert controller.session.cancel_all()


def test_a_folder_of_other_classes_is_refused_in_one_line(qtbot, view, labelled_folder) -> None:
    (labelled_folder / "cat").mkdir()
    (labelled_folder / "cat" / "x.png").write_bytes(b"")
    view.choose_folder = lambda: str(labelled_folder)
    QTest.mouseClick(view.evaluate_button, Qt.MouseButton.LeftButton)
    qtbot.waitUntil(lambda: not view.busy, timeout=TIMEOUT_MS)
    lines = view.errors.text().splitlines()
    assert len(lines) == 1 and "'cat'" in lines[0] and "not among the model's classes" in lines[0]
    assert lines[0].startswith("Cannot evaluate labelled: ")
    assert view.evaluate_button.isEnabled() and view.progress.isHidden()


def test_cancel_stops_an_evaluation(qtbot, view, tmp_path) -> None:
    digits = load_digits()
    root = tmp_path / "many"
    for label in range(10):
        (root / str(label)).mkdir(parents=True)
        for count, index in enumerate(np.nonzero(digits.target == label)[0][:40]):
            _save_digit(digits.images[index], root / str(label) / f"{count}.png")
    assert view.evaluate(root) and view.busy and view.cancel_button.isVisible()
    QTest.mouseClick(view.cancel_button, Qt.MouseButton.LeftButton)
    assert not view.busy and view.progress.isHidden() and view.evaluate_button.isEnabled()
    assert view.session.cancel_all()
    assert view.result is None


def test_the_per_class_table_under_a_reopened_runs_confusion_matrix_matches_sklearn(make_window, qtbot, tmp_path):
    from dlstudio.core.inspect import load_trained, predict_split

    project = chain_project(("Input", {"shape": [1, 8, 8]}), ("Conv2d", {"out_channels": 4, "kernel_size": 3}),
                            ("ReLU", {}), ("Flatten", {}), ("Linear", {"out_features": 10}),
                            ("Output", {"task": "classification", "classes": 10}))
    project.data = {"source": "digits"}
    path = tmp_path / "digits.dlstudio"
    run_dir = train_recorded_run(project, path, epochs=1)

    window = make_window(load_project(path))
    confusion = window.training.confusion
    qtbot.waitUntil(lambda: confusion.accuracy() is not None, timeout=TIMEOUT_MS)
    table = confusion.per_class_table
    assert table is not None and table.isVisibleTo(confusion)
    # Independently: the run's last model on its validation split, scored by sklearn.
    trained = load_trained(run_dir, which="last")
    split = trained.prepare_data().val
    predictions = predict_split(trained.model, split.x, split.y)
    true, predicted = split.y.numpy(), predictions.predicted
    assert confusion.matrix().tolist() == confusion_matrix(true, predicted, labels=range(10)).tolist()
    precision, recall, f1, support = precision_recall_fscore_support(true, predicted, labels=range(10),
                                                                     zero_division=0)
    rows = table.rows()
    assert [row["class"] for row in rows] == [str(i) for i in range(10)]
    assert [row["precision"] for row in rows] == pytest.approx(precision.tolist())
    assert [row["recall"] for row in rows] == pytest.approx(recall.tolist())
    assert [row["f1"] for row in rows] == pytest.approx(f1.tolist())
    assert [row["support"] for row in rows] == support.tolist()


def test_the_per_class_table_follows_each_epochs_confusion_matrix(make_window, qtbot, tmp_path):
    from dlstudio.core.project import save_project

    project = chain_project(("Input", {"shape": [1, 8, 8]}), ("Flatten", {}), ("Linear", {"out_features": 10}),
                            ("Output", {"task": "classification", "classes": 10}))
    project.data = {"source": "digits"}
    project.training = {"epochs": 2, "batch_size": 64, "learning_rate": 0.01, "channels_last": "off",
                        "device": "cpu"}
    save_project(project, tmp_path / "digits.dlstudio")
    window = make_window(load_project(tmp_path / "digits.dlstudio"))
    controller = window.training
    confusion = controller.confusion
    table = confusion.per_class_table
    # Each time the table is filled: the matrix on screen then, and the table's rows.
    seen: list[tuple[list[list[int]], list[dict]]] = []
    table.table_model.modelReset.connect(
        lambda: table.rows() and seen.append((confusion.matrix().tolist(), table.rows())))
    epochs: list[list[list[int]]] = []
    QTest.mouseClick(controller.panel.buttons["start"], Qt.MouseButton.LeftButton)
    worker = controller.worker
    assert worker is not None
    worker.epoch_finished.connect(lambda metrics: epochs.append(metrics["confusion"]))
    with qtbot.waitSignal(worker.ended, timeout=60_000):
        pass
    assert len(epochs) == 2
    # The figures are computed on a worker thread: the last epoch's arrive shortly after it.
    qtbot.waitUntil(lambda: bool(seen) and seen[-1][0] == [list(row) for row in epochs[-1]], timeout=TIMEOUT_MS)
    for matrix, rows in seen:
        true = np.repeat(np.arange(10), np.asarray(matrix).sum(axis=1))
        predicted = np.concatenate([np.repeat(np.arange(10), row) for row in matrix])
        _, _, f1, support = precision_recall_fscore_support(true, predicted, labels=range(10), zero_division=0)
        assert [row["f1"] for row in rows] == pytest.approx(f1.tolist())
        assert [row["support"] for row in rows] == support.tolist()


def _colour_folder(root: Path, per_class: int = 6) -> Path:
    """Three classes told apart by colour (red, green, blue), small RGB PNGs."""
    colours = {"red": (220, 30, 30), "green": (30, 200, 40), "blue": (40, 50, 220)}
    for name, colour in colours.items():
        (root / name).mkdir(parents=True)
        for index in range(per_class):
            shade = tuple(max(0, value - 8 * index) for value in colour)
            Image.new("RGB", (12, 10), shade).save(root / name / f"{index}.png")
    return root


def test_with_no_more_classes_than_k_the_meaningless_top_k_accuracy_is_left_out(qtbot, tmp_path) -> None:
    # Three classes, top-5: every image is "in the top 5", so a top-5 accuracy would read 100% whatever the model.
    folder = _colour_folder(tmp_path / "colours")
    project = chain_project(("Input", {"shape": [3, 8, 8]}), ("Flatten", {}), ("Linear", {"out_features": 3}),
                            ("Output", {"task": "classification", "classes": 3}))
    project.data = {"source": "folder", "path": str(folder), "val_fraction": 0.2, "test_fraction": 0.0}
    run_dir = train_recorded_run(project, tmp_path / "colours.dlstudio", epochs=1)
    session = ModelSession()
    with qtbot.waitSignal(session.model_loaded, timeout=TIMEOUT_MS):
        session.load(run_dir)
    view = EvaluateView(session)
    qtbot.addWidget(view)
    view.resize(640, 560)
    view.show()
    result = _evaluate(qtbot, view, folder)
    expected = evaluate_folder(session.trained, folder, top_k=5)
    assert result["top_k"] is None and result["top_k_accuracy"] is None
    summary = view.summary.text()
    assert summary == f"colours: 18 images · accuracy {expected.accuracy:.1%}"
    assert "top-" not in summary
    assert session.cancel_all()

"""Training › Sweep…: ranges with defaults, a 2-trial sweep whose runs reach the Runs dock, Stop, a bad range."""

from __future__ import annotations

import os
from pathlib import Path

import pytest
from PySide6.QtCore import Qt
from PySide6.QtTest import QTest

from dlstudio.core.project import load_project, save_project
from dlstudio.core.project.templates import load_template
from dlstudio.gui import main_window

SWEEP_TIMEOUT_MS = 240_000  # two short trials; generous for a machine shared by several test runs


@pytest.fixture(autouse=True)
def closing_stops_training(monkeypatch):
    monkeypatch.setattr(main_window.MainWindow, "_ask_stop_training", lambda self: main_window.STOP_AND_CLOSE_CHOICE)


def digits_project(tmp_path: Path, template: str = "mlp", epochs: int = 1):
    """A saved template on the bundled digits at 8x8, on the CPU (small and quick)."""
    project = load_template(template)
    image = project.graph.node_named("image")
    assert image is not None
    if template == "mlp":
        project.graph.set_param(image.id, "shape", [1, 8, 8])
    project.training.update(device="cpu", batch_size=128, epochs=epochs)
    path = tmp_path / "digits.dlstudio"
    save_project(project, path)
    return load_project(path)


def click(button) -> None:
    QTest.mouseClick(button, Qt.MouseButton.LeftButton)


def only_learning_rate(dialog, low: str = "1e-2", high: str = "3e-1") -> None:
    while dialog.ranges.rowCount():
        dialog.ranges.removeRow(0)
    dialog.add_row("training.learning_rate", "log", low, high)


def test_the_defaults_are_learning_rate_batch_size_and_the_first_convs_channels(make_window, tmp_path):
    window = make_window(digits_project(tmp_path, "lenet5"))
    window.sweep_action.trigger()
    dialog = window.sweep_dialog
    assert dialog is not None and dialog.isVisible()
    assert dialog.param_texts() == ["training.learning_rate=log:1e-4:1e-1", "training.batch_size=choice:32,64,128",
                                    "conv1.out_channels=int:4:32"]
    # Choosing another target fills in a range that fits it.
    row = dialog.add_row("training.optimizer")
    assert dialog.row_values(row) == ("training.optimizer", "choice", "", "sgd,adam,adamw,rmsprop")
    # The person reads the settings' and parameters' names, not the command line's keys.
    chooser = dialog.ranges.cellWidget(row, 0)
    labels = [chooser.itemText(i) for i in range(chooser.count())]
    assert labels[:3] == ["Learning rate", "Batch size", "Optimizer"] and "conv1: out channels" in labels
    assert not any(label.startswith("training.") for label in labels)
    chooser.setCurrentIndex(labels.index("conv1: out channels"))
    assert dialog.row_values(row)[:2] == ("conv1.out_channels", "int")
    # A range the parameter cannot take is refused in one line naming it; nothing starts.
    dialog.add_row("conv1.out_channels", "int", "0", "8")
    click(dialog.start_button)
    assert dialog.task is None and not (tmp_path / "digits.runs").exists()
    assert dialog.status.text().startswith("conv1.out_channels")
    dialog.close()


def test_a_two_trial_sweep_from_the_window_lists_its_runs(make_window, qtbot, tmp_path):
    window = make_window(digits_project(tmp_path))
    window.sweep_action.trigger()
    dialog = window.sweep_dialog
    only_learning_rate(dialog)
    dialog.trials.setValue(2)
    finished: list[str] = []
    dialog.run_finished.connect(finished.append)
    with qtbot.waitSignal(dialog.sweep_ended, timeout=SWEEP_TIMEOUT_MS) as ended:
        click(dialog.start_button)
        assert dialog.is_running() and not dialog.start_button.isEnabled() and dialog.stop_button.isEnabled()
    assert ended.args == ["done"]
    assert dialog.table.rowCount() == 2
    states = [dialog.table.item(row, 2).text() for row in range(2)]
    assert states == ["complete", "complete"]
    accuracies = [dialog.table.item(row, 3).text() for row in range(2)]
    assert all(text.endswith("%") for text in accuracies)
    assert all(dialog.table.item(row, 1).text().startswith("Learning rate 0.") for row in range(2))
    best = dialog.best_trial
    assert best in (0, 1) and dialog.table.item(best, 0).font().bold()
    assert not dialog.table.item(1 - best, 0).font().bold()
    assert "2/2 trials" in dialog.status.text()
    # Each trial is a run of the project: in the window's list, in the file, and in the Runs dock.
    assert len(finished) == 2
    assert [Path(path) for path in finished] == window.document.run_dirs()[-2:]
    assert len(load_project(tmp_path / "digits.dlstudio").runs) == 2
    runs = window.training.runs
    qtbot.waitUntil(lambda: {Path(entry) for entry in runs.runs()} == {Path(path) for path in finished},
                    timeout=30_000)
    qtbot.waitUntil(lambda: not dialog.is_running(), timeout=5000)
    assert dialog.start_button.isEnabled() and not dialog.stop_button.isEnabled()
    dialog.close()


def test_two_trials_at_once_train_in_processes_of_their_own(make_window, qtbot, tmp_path):
    window = make_window(digits_project(tmp_path))
    window.sweep_action.trigger()
    dialog = window.sweep_dialog
    only_learning_rate(dialog)
    dialog.trials.setValue(2)
    dialog.parallel.setValue(2)
    assert dialog.parallel.value() == min(2, os.cpu_count() or 1)
    finished: list[str] = []
    dialog.run_finished.connect(finished.append)
    with qtbot.waitSignal(dialog.sweep_ended, timeout=SWEEP_TIMEOUT_MS) as ended:
        click(dialog.start_button)
        assert not dialog.parallel.isEnabled()
    assert ended.args == ["done"]
    assert [dialog.table.item(row, 2).text() for row in range(2)] == ["complete", "complete"]
    assert len(finished) == 2 and len(load_project(tmp_path / "digits.dlstudio").runs) == 2
    qtbot.waitUntil(lambda: not dialog.is_running(), timeout=5000)
    dialog.close()


def test_stop_ends_the_running_trial_and_the_sweep(make_window, qtbot, tmp_path):
    window = make_window(digits_project(tmp_path, epochs=30))
    window.sweep_action.trigger()
    dialog = window.sweep_dialog
    only_learning_rate(dialog)
    dialog.trials.setValue(4)
    dialog.task_progress = []

    def stop_after_the_first_epoch() -> None:
        item = dialog.table.item(0, 2)
        if item is not None and item.text().startswith("running (epoch") and dialog.stop_button.isEnabled():
            click(dialog.stop_button)

    with qtbot.waitSignal(dialog.sweep_ended, timeout=SWEEP_TIMEOUT_MS) as ended:
        click(dialog.start_button)
        dialog.task.progress.connect(lambda event: stop_after_the_first_epoch())
    assert ended.args == ["stopped"]
    assert dialog.table.rowCount() == 1 and dialog.table.item(0, 2).text() == "stopped"
    assert "Sweep stopped: 0/4 trials" in dialog.status.text()
    qtbot.waitUntil(lambda: not dialog.is_running(), timeout=5000)
    dialog.close()


def test_a_sweep_of_3_trials_continues_to_6_from_the_window(make_window, qtbot, tmp_path):
    window = make_window(digits_project(tmp_path))
    window.sweep_action.trigger()
    dialog = window.sweep_dialog
    only_learning_rate(dialog, "1e-4", "1")
    dialog.trials.setValue(3)
    with qtbot.waitSignal(dialog.sweep_ended, timeout=SWEEP_TIMEOUT_MS):
        click(dialog.start_button)
    assert dialog.table.rowCount() == 3 and "3/3 trials" in dialog.status.text()
    qtbot.waitUntil(lambda: not dialog.is_running(), timeout=5000)

    # Continued from the study file: the earlier trials are listed again, three more run.
    dialog.trials.setValue(6)
    with qtbot.waitSignal(dialog.sweep_ended, timeout=SWEEP_TIMEOUT_MS) as ended:
        click(dialog.start_button)
    assert ended.args == ["done"]
    assert [dialog.table.item(row, 0).text() for row in range(dialog.table.rowCount())] == ["1", "2", "3", "4", "5",
                                                                                           "6"]
    states = [dialog.table.item(row, 2).text() for row in range(6)]
    assert all(state == "complete" or state.startswith("pruned at epoch") for state in states)
    assert "6/6 trials" in dialog.status.text()
    assert len(window.document.run_dirs()) == 6 and len(load_project(tmp_path / "digits.dlstudio").runs) == 6
    qtbot.waitUntil(lambda: not dialog.is_running(), timeout=5000)
    dialog.close()

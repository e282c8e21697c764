"""Continuing a stopped run from the Runs panel, and the run in progress protected from deletion.

A tiny CNN on the bundled 8x8 digits for a few short epochs (channels-last fixed, so no layout
probe), driven through the Train/Stop buttons and the Runs panel's own buttons.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
from PySide6.QtCore import Qt
from PySide6.QtTest import QTest

from dlstudio.core.project import load_project, save_project
from dlstudio.gui import main_window
from gui_helpers import chain_project

SIGNAL_TIMEOUT_MS = 60_000


@pytest.fixture(autouse=True)
def closing_stops_training(monkeypatch):
    """A failed test may leave a run training: closing the window then stops it instead of asking in a dialog."""
    monkeypatch.setattr(main_window.MainWindow, "_ask_stop_training", lambda self: main_window.STOP_AND_CLOSE_CHOICE)


def tiny_cnn_project(tmp_path: Path, **training):
    project = chain_project(("Input", {"shape": [1, 8, 8]}), ("Conv2d", {"out_channels": 4, "kernel_size": 3}),
                            ("ReLU", {}), ("Flatten", {}), ("Linear", {"out_features": 10}),
                            ("Output", {"task": "classification", "classes": 10}))
    project.data = {"source": "digits"}
    project.training = {"batch_size": 16, "learning_rate": 0.01, "channels_last": "off", "device": "cpu", **training}
    save_project(project, tmp_path / "net.dlstudio")
    return project


def click(button) -> None:
    QTest.mouseClick(button, Qt.MouseButton.LeftButton)


def listed(qtbot, window, run_dir: Path) -> str:
    """Wait until the Runs panel lists the run (it reads the folders in the background); select it."""
    runs = window.training.runs
    qtbot.waitUntil(lambda: any(Path(entry) == run_dir for entry in runs.runs()), timeout=30_000)
    entry = next(entry for entry in runs.runs() if Path(entry) == run_dir)
    runs.select_runs([entry])
    return entry


def test_a_stopped_run_continues_from_the_runs_panel_up_to_its_planned_epochs(make_window, qtbot, tmp_path):
    window = make_window(tiny_cnn_project(tmp_path, epochs=4, batch_size=32))
    controller, runs = window.training, window.training.runs
    click(controller.panel.buttons["start"])
    worker = controller.worker
    finished = []
    worker.finished.connect(finished.append)
    # Stop as soon as the first epoch is in: the run ends part-way, with a resumable checkpoint (four epochs
    # leave the window time to answer even on a busy machine).
    worker.epoch_finished.connect(lambda metrics: click(controller.panel.buttons["stop"]))
    with qtbot.waitSignal(worker.ended, timeout=SIGNAL_TIMEOUT_MS):
        pass
    stopped = finished[0]
    assert stopped["status"] == "stopped" and 1 <= stopped["epochs"] < 4
    run_dir = Path(stopped["run_dir"])

    entry = listed(qtbot, window, run_dir)
    qtbot.waitUntil(runs.continue_button.isEnabled, timeout=20_000)
    assert runs.delete_button.isEnabled()
    menu = runs.context_menu(entry)
    assert next(a for a in menu.actions() if a.text() == "Continue Training").isEnabled()
    menu.deleteLater()

    click(runs.continue_button)
    worker = controller.worker
    assert worker is not None and worker.request.resume == run_dir
    assert window.editing_locked and not controller.start_action.isEnabled()
    epochs, finished = [], []
    worker.epoch_finished.connect(epochs.append)
    worker.finished.connect(finished.append)
    with qtbot.waitSignal(worker.started, timeout=SIGNAL_TIMEOUT_MS) as started:
        pass
    payload = started.args[0]
    assert payload["resumed"] and Path(payload["run_dir"]) == run_dir and payload["epochs"] == 4
    assert [metrics["epoch"] for metrics in payload["history"]] == list(range(1, stopped["epochs"] + 1))

    # While it trains, its folder is protected and no other run can be started from the panel.
    assert not runs.continue_button.isEnabled() and runs.continue_button.toolTip() == "This run is training now."
    assert not runs.delete_button.isEnabled() and "stop it before deleting" in runs.delete_button.toolTip()
    assert not controller.continue_run(run_dir)
    assert window.statusBar().currentMessage() == f"Another run is training: stop it before continuing the run " \
                                                  f"{run_dir.name}."

    with qtbot.waitSignal(worker.ended, timeout=SIGNAL_TIMEOUT_MS):
        pass
    summary = finished[0]
    assert summary["status"] == "completed" and summary["epochs"] == 4 and Path(summary["run_dir"]) == run_dir
    assert [metrics["epoch"] for metrics in epochs] == list(range(stopped["epochs"] + 1, 5))
    # The curves hold the whole run: the checkpoint's epochs, then the new ones.
    controller.curves.flush()
    xs, losses = controller.curves.series("val_loss")
    assert xs.tolist() == [1.0, 2.0, 3.0, 4.0] and np.isfinite(losses).all()
    batch_xs, _ = controller.curves.series("batch")
    assert len(batch_xs) and batch_xs.max() == 4.0
    assert load_project(tmp_path / "net.dlstudio").runs == [f"net.runs/{run_dir.name}"]  # still one run
    assert not window.editing_locked and controller.start_action.isEnabled()
    qtbot.waitUntil(lambda: runs.continue_button.toolTip() == "The run trained all its epochs.", timeout=30_000)
    assert not runs.continue_button.isEnabled() and runs.delete_button.isEnabled()


def test_the_run_in_progress_cannot_be_deleted_and_its_statistics_reach_the_project(make_window, qtbot, tmp_path):
    window = make_window(tiny_cnn_project(tmp_path, epochs=200))
    controller, runs = window.training, window.training.runs
    click(controller.panel.buttons["start"])
    worker = controller.worker
    with qtbot.waitSignal(worker.started, timeout=SIGNAL_TIMEOUT_MS) as started:
        pass
    run_dir = Path(started.args[0]["run_dir"])
    entry = listed(qtbot, window, run_dir)

    assert not runs.delete_button.isEnabled()
    assert runs.delete_button.toolTip() == "This run is training and writing its folder: stop it before deleting it."
    menu = runs.context_menu(entry)
    delete = next(action for action in menu.actions() if action.text() == "Delete Run…")
    assert not delete.isEnabled() and delete.toolTip() == runs.delete_button.toolTip()
    menu.deleteLater()
    with qtbot.assertNotEmitted(runs.delete_requested):
        assert not runs.delete_run(entry, confirm=False)  # refused in code too, not only in the menu
    assert run_dir.is_dir() and entry in runs.runs()

    # The run's statistics were recorded and saved with it; the Data panel says where they came from.
    stats = load_project(tmp_path / "net.dlstudio").normalization
    assert stats is not None and stats.run == f"net.runs/{run_dir.name}"
    assert stats.computed_from == {"source": "digits", "val_fraction": 0.15, "test_fraction": 0.15, "split_seed": 0,
                                   "input_shape": [1, 8, 8]}
    assert window.project.normalization == stats and not window.is_dirty()
    label = window.data_panel.normalization_label
    qtbot.waitUntil(lambda: f"Stored in the project from run {run_dir.name}." in label.text(), timeout=20_000)

    with qtbot.waitSignal(worker.ended, timeout=30_000):
        controller.stop()
    assert runs.delete_button.isEnabled()
    qtbot.waitUntil(runs.continue_button.isEnabled, timeout=20_000)  # stopped part-way: it can go on, once re-read

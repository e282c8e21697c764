"""The Training panel on its own: back to no run (another project), and a finished run's summary (a reopened one)."""

from __future__ import annotations

import pytest
from PySide6.QtGui import QAction
from PySide6.QtWidgets import QLabel, QWidget

from dlstudio.gui.training_panel import TrainingPanel


@pytest.fixture
def panel(qtbot):
    owner = QWidget()
    qtbot.addWidget(owner)
    panel = TrainingPanel(*(QAction(text, owner) for text in ("Train", "Pause", "Stop")))
    qtbot.addWidget(panel)
    panel.resize(360, 700)
    panel.show()
    return panel


def _texts(panel: TrainingPanel) -> str:
    """Everything the panel says outside its settings form, as one string."""
    shown = [label.text() for label in panel.findChildren(QLabel)
             if label.isVisibleTo(panel) and not panel.form.isAncestorOf(label)]
    return "\n".join([*shown, panel.progress.text()])


def _train_a_run(panel: TrainingPanel) -> None:
    panel.show_started({"run_dir": "/projects/runs/20261203-101500", "device": "cpu", "batches_per_epoch": 20,
                        "epochs": 15, "sizes": {"train": 1259, "val": 269, "test": 269}})
    panel.show_progress({"epoch": 15, "epochs": 15, "batch": 20, "batches": 20, "samples_per_second": 5321.0,
                         "eta_seconds": 2.0, "elapsed_seconds": 61.0})
    panel.show_epoch({"epoch": 15, "train_loss": 0.0512, "train_accuracy": 0.99, "val_loss": 0.0711,
                      "val_accuracy": 0.981, "learning_rate": 0.001})
    panel.show_finished({"status": "failed", "message": "CUDA ran out of memory", "seconds": 62.0})


def test_clear_run_forgets_everything_about_the_last_run(panel) -> None:
    _train_a_run(panel)
    before = _texts(panel)
    assert "epoch 15/15" in before and "20261203-101500" in before and "1:02" in before
    assert panel.error_label.isVisibleTo(panel)

    panel.clear_run()

    after = _texts(panel)
    for stale in ("15/15", "20261203-101500", "Epoch 15", "5,321", "1:02", "out of memory", "Training failed"):
        assert stale not in after, stale
    assert panel.state_label.text() == "Ready to train"
    assert panel.progress.text() == "no run yet" and panel.progress.value() == 0
    assert (panel.rate_label.text(), panel.eta_label.text(), panel.elapsed_label.text()) == ("—", "—", "—")
    assert panel.epoch_label.text() == "" and panel.run_label.text() == "" and panel.run_label.toolTip() == ""
    assert panel.error_label.isHidden()


def _summary(**changes) -> dict:
    summary = {"run_dir": "/projects/runs/20261203-101500", "name": "20261203-101500", "status": "completed",
               "message": "", "epochs": 15, "planned_epochs": 15, "best_val_accuracy": 0.9812, "best_epoch": 12,
               "last_val_loss": 0.0705, "test_accuracy": 0.9777, "started": "2026-12-03T10:15:00",
               "project": "digits", "resumable": False}
    summary.update(changes)
    return summary


def test_a_finished_run_of_a_reopened_project_is_summarized(panel) -> None:
    panel.show_run_summary(_summary())
    assert panel.run_label.text() == "Run 20261203-101500 · completed · 15/15 epochs · best val 98.1% · test 97.8%"
    assert panel.run_label.toolTip() == "/projects/runs/20261203-101500"
    assert panel.progress.value() == panel.progress.maximum() and panel.progress.text() == "15/15 epochs"
    assert panel.epoch_label.text() == "Best validation accuracy 98.1% (epoch 12) · last val loss 0.0705"
    assert panel.state_label.text() == "Ready to train"  # nothing trains now
    assert panel.error_label.isHidden()
    assert (panel.rate_label.text(), panel.eta_label.text()) == ("—", "—")


def test_a_stopped_or_failed_run_says_so(panel) -> None:
    panel.show_run_summary(_summary(status="stopped", epochs=6, best_val_accuracy=None, test_accuracy=None,
                                    best_epoch=None, last_val_loss=None))
    assert panel.run_label.text() == "Run 20261203-101500 · stopped · 6/15 epochs"
    assert panel.progress.value() == 6 and panel.progress.maximum() == 15
    assert panel.epoch_label.text() == ""

    panel.show_run_summary(_summary(status="failed", epochs=2, message="the data folder is gone",
                                    best_val_accuracy=0.5, test_accuracy=None))
    assert panel.run_label.text() == "Run 20261203-101500 · failed · 2/15 epochs · best val 50.0%"
    assert panel.error_label.isVisibleTo(panel) and panel.error_label.text() == "the data folder is gone"

    panel.show_run_summary(_summary(status="early_stopped", epochs=9, planned_epochs=None))
    assert panel.run_label.text().startswith("Run 20261203-101500 · stopped early · 9 epochs")
    assert panel.error_label.isHidden()  # the previous run's reason went with it


def test_a_live_run_replaces_a_summary(panel) -> None:
    panel.show_run_summary(_summary())
    panel.show_started({"run_dir": "/projects/runs/20261204-090000", "device": "cpu", "batches_per_epoch": 10,
                        "epochs": 3, "sizes": {"train": 100, "val": 10, "test": 10}})
    assert "20261204-090000" in panel.run_label.text() and "20261203" not in _texts(panel)
    assert panel.progress.text() == "epoch 1/3 · batch 0/10"

"""The runs table that compares: columns for the settings that differ, numeric sort, filter, two runs side by
side, and a run's settings applied to the project as one undo step.

Run folders are written by hand in the format dlstudio train leaves (tests/core/run_folders.py): exact values,
no training.
"""

from __future__ import annotations

import sys
from pathlib import Path

import pytest
from PySide6.QtCore import QPoint, Qt
from PySide6.QtTest import QTest

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "core"))  # the run-folder writer the core tests use
from run_folders import mlp, write_run  # noqa: E402

from dlstudio.core.project import save_project  # noqa: E402
from dlstudio.core.runs_compare import read_runs_for_comparison  # noqa: E402
from dlstudio.gui.runs_panel import RunsPanel  # noqa: E402

NAMES = ("20261201-090000", "20261201-100000", "20261201-110000")


def _three_runs(base: Path) -> list[str]:
    """lr 0.01 / 3e-5 / 0.1 (as text "3e-05" sorts last, as a number first), batch 64 / 1024 / 256, one SGD run,
    one with a wider hidden layer."""
    project = mlp()
    wider = mlp()
    wider.graph.set_param("linear1", "out_features", 256)
    return [
        write_run(base, NAMES[0], project, training={"learning_rate": 0.01, "batch_size": 64},
                  accuracies=(0.6, 0.8), test=0.79, seconds=3.0),
        write_run(base, NAMES[1], project, training={"learning_rate": 3e-5, "batch_size": 1024, "optimizer": "sgd"},
                  accuracies=(0.2, 0.3), test=0.31, seconds=75.0, samples_per_second=None),
        write_run(base, NAMES[2], wider, training={"learning_rate": 0.1, "batch_size": 256},
                  accuracies=(0.7, 0.9), test=0.88, seconds=1.5, samples_per_second=2500.0),
    ]


@pytest.fixture
def runs(tmp_path: Path) -> list[str]:
    return _three_runs(tmp_path / "net.runs")


@pytest.fixture
def panel(qtbot, runs: list[str]) -> RunsPanel:
    panel = RunsPanel()
    qtbot.addWidget(panel)
    panel.resize(900, 260)
    panel.set_runs(read_runs_for_comparison(runs))
    panel.show()
    qtbot.waitExposed(panel)
    return panel


def _click_header(qtbot, panel: RunsPanel, title: str) -> None:
    header = panel._tree.header()
    column = panel.column_of(title)
    panel._tree.scrollToItem(panel._tree.topLevelItem(0))
    header_x = header.sectionViewportPosition(column) + header.sectionSize(column) // 2
    QTest.mouseClick(header.viewport(), Qt.MouseButton.LeftButton, Qt.KeyboardModifier.NoModifier,
                     QPoint(header_x, header.height() // 2))


def test_only_the_settings_that_differ_get_columns(panel: RunsPanel, runs: list[str]) -> None:
    assert panel.visible_columns() == ["Run", "Status", "Best val", "Test", "Learning rate", "Batch size",
                                       "Optimizer", "hidden.out_features", "Final val", "Epochs", "Time",
                                       "Samples/s", "Started"]
    assert [panel.cell(run, "Learning rate") for run in runs] == ["0.01", "3e-05", "0.1"]
    assert [panel.cell(run, "hidden.out_features") for run in runs] == ["128", "128", "256"]
    assert [panel.cell(run, "Time") for run in runs] == ["6.0 s", "2 min 30 s", "3.0 s"]
    assert [panel.cell(run, "Samples/s") for run in runs] == ["1,000", "", "2,500"]  # not recorded: blank
    assert panel.cell(runs[2], "Final val") == "90.0%"
    tip = panel.item_for(runs[1]).toolTip(panel.column_of("Learning rate"))
    assert tip.startswith("Learning rate: 3e-05")


def test_a_trained_run_reads_with_its_settings_curves_and_speed(digits_run) -> None:
    row = read_runs_for_comparison([digits_run])[0]
    assert row["status"] == "completed" and row["settings"]["training.learning_rate"] == 0.01
    assert row["settings"]["training.device"] == "cpu" and row["settings"]["weights"] == "random"
    assert [curve["epoch"] for curve in row["curves"]] == [1.0, 2.0]
    assert row["seconds"] > 0 and row["samples_per_second"] > 0
    assert row["final_val_accuracy"] == pytest.approx(row["curves"][-1]["val_accuracy"])


def test_show_all_settings_shows_the_shared_ones_too(qtbot, panel: RunsPanel) -> None:
    assert "Weight decay" not in panel.visible_columns()
    panel.show_all_check.click()
    assert {"Weight decay", "Momentum", "LR schedule", "Seed", "Starting weights"} <= set(panel.visible_columns())
    assert "image.shape" not in panel.visible_columns()  # layer parameters only where runs differ
    panel.show_all_check.click()
    assert "Weight decay" not in panel.visible_columns()


def test_clicking_a_header_sorts_numbers_as_numbers(qtbot, panel: RunsPanel, runs: list[str]) -> None:
    _click_header(qtbot, panel, "Learning rate")
    order = panel.runs()
    if order[0] != runs[1]:  # the first click may sort descending when the column was the sort column
        _click_header(qtbot, panel, "Learning rate")
        order = panel.runs()
    assert order == [runs[1], runs[0], runs[2]]  # 3e-05 < 0.01 < 0.1
    _click_header(qtbot, panel, "Batch size")
    assert panel.runs() in ([runs[0], runs[2], runs[1]], [runs[1], runs[2], runs[0]])  # 64, 256, 1024
    # A refresh (each epoch of a run, say) keeps the column the person sorted by.
    sorted_now = panel.runs()
    panel.set_runs(read_runs_for_comparison(list(reversed(runs))))
    assert panel.runs() == sorted_now


def test_the_filter_hides_the_rows_without_a_matching_cell(qtbot, panel: RunsPanel, runs: list[str]) -> None:
    QTest.keyClicks(panel.filter_edit, "ADAM")
    assert panel.visible_runs() == [run for run in panel.runs() if run != runs[1]]
    panel.filter_edit.clear()
    QTest.keyClicks(panel.filter_edit, "completed")
    assert sorted(panel.visible_runs()) == sorted(runs)
    panel.set_filter("256")  # batch size of one run, hidden layer width of the same run
    assert panel.visible_runs() == [runs[2]]
    panel.set_runs(read_runs_for_comparison(runs))  # a refresh keeps filtering
    assert panel.visible_runs() == [runs[2]]
    panel.set_filter("no such run")
    assert panel.visible_runs() == []


def test_two_selected_runs_open_side_by_side(qtbot, panel: RunsPanel, runs: list[str]) -> None:
    panel.select_runs([runs[0]])
    assert not panel.compare_button.isEnabled() and "Select two runs" in panel.compare_button.toolTip()
    panel.select_runs([runs[2], runs[0]])
    assert panel.compare_button.isEnabled()
    QTest.mouseClick(panel.compare_button, Qt.MouseButton.LeftButton)
    dialog = panel.compare_dialog
    assert dialog is not None and dialog.isVisible()
    qtbot.waitExposed(dialog)
    # A is the older run.
    assert dialog.settings_rows() == [("Learning rate", "0.01", "0.1"), ("Batch size", "64", "256")]
    assert ("Optimizer", "adam", "adam") in dialog.settings_rows(include_same=True)
    assert ("Optimizer", "adam", "adam") not in dialog.settings_rows()
    dialog.same_check.click()
    assert ("Optimizer", "adam", "adam") in dialog.settings_rows()
    assert dialog.network_lines() == ["changed: hidden: out_features 128 → 256"]
    for label, accuracies in (("A", [60.0, 80.0]), ("B", [70.0, 90.0])):
        epochs, values = dialog.curves.series[f"{label} val_accuracy"]
        assert list(epochs) == [1.0, 2.0] and list(values) == pytest.approx(accuracies)
        assert len(dialog.curves.series[f"{label} val_loss"][0]) == 2
    legend = [label.text for _sample, label in dialog.curves.accuracy_plot.legend.items]
    assert legend == [f"A {NAMES[0]}", f"B {NAMES[2]}"]
    panel.set_runs(read_runs_for_comparison(runs))  # a refresh leaves it open
    assert panel.compare_dialog is dialog and dialog.isVisible()
    panel.set_runs(read_runs_for_comparison(runs[:2]))  # one of its runs is gone (deleted): it closes
    assert panel.compare_dialog is None and not dialog.isVisible()


def test_a_damaged_run_cannot_be_compared(qtbot, panel: RunsPanel, runs: list[str], tmp_path: Path) -> None:
    damaged = tmp_path / "net.runs" / "20261201-120000"
    damaged.mkdir()
    panel.set_runs(read_runs_for_comparison([*runs, damaged]))
    panel.select_runs([runs[0], str(damaged)])
    assert not panel.compare_button.isEnabled() and "cannot be read" in panel.compare_button.toolTip()
    assert panel.compare() is None


def test_applying_a_runs_settings_is_one_undo_step(make_window, qtbot, tmp_path: Path) -> None:
    project = mlp()
    project.data = {"source": "digits"}
    path = tmp_path / "net.dlstudio"
    run_dirs = _three_runs(tmp_path / "net.runs")
    project.runs = [f"net.runs/{name}" for name in NAMES]
    save_project(project, path)
    window = make_window(project)
    runs = window.training.runs
    qtbot.waitUntil(lambda: len(runs.runs()) == 3 and runs.cell(run_dirs[2], "Learning rate") == "0.1",
                    timeout=30_000)  # read in the background
    before = dict(window.project.training)
    menu = runs.context_menu(next(run for run in runs.runs() if Path(run).name == NAMES[2]))
    apply = next(action for action in menu.actions() if action.text() == "Apply This Run's Settings to the Project")
    assert apply.isEnabled()
    apply.trigger()
    menu.deleteLater()
    training = window.project.training
    assert training["learning_rate"] == 0.1 and training["batch_size"] == 256
    assert window.project.graph.node("linear1").params["out_features"] == 256  # same network: its layers too
    assert window.undo_stack.undoText() == f"Apply the settings of run {NAMES[2]}"
    assert "Applied" in window.statusBar().currentMessage()
    window.undo()
    assert window.project.training == before
    assert window.project.graph.node("linear1").params["out_features"] == 128
    window.redo()
    assert window.project.training["learning_rate"] == 0.1


def test_a_trial_the_sweep_pruned_reads_pruned_not_stopped(qtbot, panel: RunsPanel, runs: list[str]) -> None:
    from dlstudio.core.training.runs import write_run_result
    from dlstudio.core.sweep.study import PRUNED_MESSAGE

    write_run_result(Path(runs[0]), {"status": "stopped", "message": PRUNED_MESSAGE.format(sweep="lr", epoch=1)})
    write_run_result(Path(runs[1]), {"status": "stopped", "message": ""})
    panel.set_runs(read_runs_for_comparison(runs))
    tree, status = panel._tree, panel.column_of("Status")
    shown = {Path(tree.topLevelItem(row).data(0, Qt.ItemDataRole.UserRole)).name: tree.topLevelItem(row)
             for row in range(tree.topLevelItemCount())}
    pruned, stopped = shown[NAMES[0]], shown[NAMES[1]]
    assert pruned.text(status) == "pruned" and "pruned by the sweep 'lr' after epoch 1" in pruned.toolTip(status)
    assert stopped.text(status) == "stopped" and "it can be resumed" in stopped.toolTip(status)


def test_a_reconstruction_run_shows_its_losses_where_a_classifier_shows_accuracy(qtbot, tmp_path: Path) -> None:
    from dlstudio.core.project import load_template
    from dlstudio.core.training.runs import summarize_run
    from gui_helpers import train_recorded_run

    project = load_template("autoencoder")
    project.training["epochs"] = 1
    run_dir = train_recorded_run(project, tmp_path / "ae.dlstudio", epochs=1)
    summary = summarize_run(run_dir)
    assert summary["best_val_accuracy"] is None and summary["test_accuracy"] is None
    assert summary["best_val_loss"] > 0 and summary["test_loss"] > 0
    panel = RunsPanel()
    qtbot.addWidget(panel)
    panel.set_runs(read_runs_for_comparison([str(run_dir)]))
    item = panel.item_for(str(run_dir))
    assert item.text(panel.column_of("Best val")) == f"loss {summary['best_val_loss']:.3g}"
    assert item.text(panel.column_of("Test")) == f"loss {summary['test_loss']:.3g}"
    assert item.text(panel.column_of("Final val")).startswith("loss ")

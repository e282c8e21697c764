"""The Sweep dialog's Results tab: after a 3-trial sweep of the mlp template (1 epoch each), Optuna's parameter
importance as a bar per parameter and the objective-vs-parameter scatter with a point per trial."""

from __future__ import annotations

import pytest
from test_sweep_dialog import SWEEP_TIMEOUT_MS, click, digits_project

from dlstudio.gui import main_window


@pytest.fixture(autouse=True)
def closing_stops_training(monkeypatch):
    monkeypatch.setattr(main_window.MainWindow, "_ask_stop_training", lambda self: main_window.STOP_AND_CLOSE_CHOICE)


def shown_points(view) -> tuple[int, int]:
    """(complete, pruned) points drawn on the scatter."""
    return len(view.complete_points.data), len(view.pruned_points.data)


def test_a_finished_sweep_shows_the_importance_and_the_scatter(make_window, qtbot, tmp_path):
    window = make_window(digits_project(tmp_path))
    window.sweep_action.trigger()
    dialog = window.sweep_dialog
    while dialog.ranges.rowCount():
        dialog.ranges.removeRow(0)
    dialog.add_row("training.learning_rate", "log", "1e-3", "3e-1")
    dialog.add_row("training.batch_size", "choice", "", "64,128")
    dialog.trials.setValue(3)
    with qtbot.waitSignal(dialog.sweep_ended, timeout=SWEEP_TIMEOUT_MS) as ended:
        click(dialog.start_button)
    assert ended.args == ["done"]
    qtbot.waitUntil(lambda: not dialog.is_running(), timeout=5000)
    view = dialog.results_view
    qtbot.waitUntil(lambda: view.results is not None and sum(shown_points(view)) == 3, timeout=5000)
    states = [dialog.table.item(row, 2).text() for row in range(3)]
    pruned = sum(state.startswith("pruned") for state in states)

    # Importance: one bar per parameter (at least two trials completed: the pruner waits for two).
    dialog.tabs.setCurrentWidget(view)
    assert pruned <= 1 and view.note.isHidden()
    assert sorted(name for name, _ in view.results.importances) == ["training.batch_size", "training.learning_rate"]
    assert len(view.importance_bars.opts["width"]) == 2
    assert sum(view.importance_bars.opts["width"]) == pytest.approx(1.0, abs=1e-6)
    labels = [label for _, label in view.importance_plot.getAxis("left")._tickLevels[0]]
    assert sorted(labels) == ["batch_size", "learning_rate"]

    # Scatter: a point per trial, pruned ones apart; the learning rate on a log axis.
    view.choose_param("training.learning_rate")
    assert shown_points(view) == (3 - pruned, pruned)
    axis = view.scatter_plot.getPlotItem().getAxis("bottom")
    assert axis.logMode
    rates = sorted(10 ** x for x in view.complete_points.data["x"])
    assert all(1e-3 <= rate <= 3e-1 for rate in rates)
    accuracies = [float(y) for y in view.complete_points.data["y"]]
    assert all(0.0 <= value <= 1.0 for value in accuracies)

    # The batch size is a choice: a linear axis with its values as ticks.
    view.choose_param("training.batch_size")
    assert shown_points(view) == (3 - pruned, pruned)
    assert not axis.logMode and axis._tickLevels == [[(0.0, "64"), (1.0, "128")]]

    # Another sweep (a new study) starts from empty plots, not the last sweep's.
    dialog.name.setText("another")
    dialog.trials.setValue(1)
    with qtbot.waitSignal(dialog.sweep_ended, timeout=SWEEP_TIMEOUT_MS):
        click(dialog.start_button)
        assert view.results is None and shown_points(view) == (0, 0) and view.note.isVisibleTo(dialog)
    qtbot.waitUntil(lambda: not dialog.is_running(), timeout=5000)
    qtbot.waitUntil(lambda: view.results is not None and sum(shown_points(view)) == 1, timeout=5000)
    assert view.results.importance_note == "importance needs 2 complete trials (1 so far)"
    assert view.note.text() == view.results.importance_note and not view.results.importances
    dialog.close()

"""Run history panel: rows from real run folders, multi-selection by mouse, context menu actions."""

from __future__ import annotations

import os
from datetime import datetime
from pathlib import Path

import pytest
from PySide6.QtCore import Qt
from PySide6.QtTest import QTest
from PySide6.QtWidgets import QMessageBox

from dlstudio.core.training import EpochMetrics, MetricsCsv, write_run_files
from dlstudio.core.training.runs import summarize_run, write_run_result
from dlstudio.gui import runs_panel as runs_panel_module
from dlstudio.gui.runs_panel import RunsPanel


def _make_run(base: Path, name: str, accuracies: list[float], planned: int, test: float | None = None) -> str:
    run = base / name
    run.mkdir(parents=True)
    write_run_files(run, {"started": f"2026-11-{name[6:8]}T{name[9:11]}:{name[11:13]}:00",
                          "training": {"epochs": planned}}, ["a", "b"])
    writer = MetricsCsv(run)
    writer.on_fit_start(type("T", (), {"history": []})())  # type: ignore[arg-type]
    for epoch, accuracy in enumerate(accuracies, start=1):
        writer.on_epoch_end(None, EpochMetrics(epoch, 1.0, 0.5, 1.0, accuracy, 0.01))  # type: ignore[arg-type]
    if test is not None:
        write_run_result(run, {"status": "completed", "message": "", "test_accuracy": test})
    return str(run)


@pytest.fixture
def runs(tmp_path: Path) -> list[str]:
    base = tmp_path / "p.runs"
    first = _make_run(base, "20261121-171500", [0.5, 0.7], 2)
    second = _make_run(base, "20261122-101010", [0.6, 0.95, 0.9], 3, test=0.93)
    third = _make_run(base, "20261123-090507", [0.8], 5)
    damaged = base / "20261120-080000"
    damaged.mkdir()
    # Without settings.json the start time is the folder's modification time.
    stamp = datetime(2026, 11, 20, 8, 0).timestamp()
    os.utime(damaged, (stamp, stamp))
    return [first, second, third, str(damaged)]


@pytest.fixture
def panel(qtbot, runs: list[str]) -> RunsPanel:
    panel = RunsPanel()
    qtbot.addWidget(panel)
    panel.resize(600, 240)
    panel.set_runs([summarize_run(run) for run in runs])
    panel.show()
    qtbot.waitExposed(panel)
    return panel


def _click(panel: RunsPanel, run_dir: str, modifier=Qt.KeyboardModifier.NoModifier) -> None:
    tree = panel._tree
    point = tree.visualItemRect(panel.item_for(run_dir)).center()
    QTest.mouseClick(tree.viewport(), Qt.MouseButton.LeftButton, modifier, point)


def test_rows_show_each_run_newest_first(panel: RunsPanel, runs: list[str]) -> None:
    assert panel.runs() == [runs[2], runs[1], runs[0], runs[3]]
    newest = panel.item_for(runs[1])
    # Plain summaries (no settings read): no setting columns, the results only.
    assert panel.visible_columns() == ["Run", "Status", "Best val", "Test", "Final val", "Epochs", "Time",
                                       "Samples/s", "Started"]
    assert [panel.cell(runs[1], title) for title in ("Run", "Status", "Epochs", "Best val", "Test", "Started")] == [
        "20261122-101010", "completed", "3", "95.0%", "93.0%", "2026-11-22 10:10"]
    assert panel.cell(runs[2], "Status") == "incomplete" and panel.cell(runs[2], "Epochs") == "1 of 5"
    assert panel.cell(runs[2], "Test") == "—"
    damaged = panel.item_for(runs[3])
    assert damaged.text(1) == "damaged" and "cannot read settings.json" in damaged.toolTip(1)


def test_numbers_sort_as_numbers_with_missing_values_first_ascending(panel: RunsPanel, runs: list[str]) -> None:
    panel._tree.sortByColumn(panel.column_of("Best val"), Qt.SortOrder.DescendingOrder)
    assert panel.runs() == [runs[1], runs[2], runs[0], runs[3]]  # 95%, 80%, 70%, none


def test_selecting_several_runs_by_mouse_emits_their_folders(qtbot, panel: RunsPanel, runs: list[str]) -> None:
    with qtbot.waitSignal(panel.selection_changed, timeout=1000) as first:
        _click(panel, runs[1])
    assert first.args == [[runs[1]]]
    with qtbot.waitSignal(panel.selection_changed, timeout=1000) as second:
        _click(panel, runs[0], Qt.KeyboardModifier.ControlModifier)
    assert second.args == [[runs[1], runs[0]]]  # in the list's order
    # A refresh (e.g. after a run finished) keeps the selection and says nothing.
    with qtbot.assertNotEmitted(panel.selection_changed):
        panel.set_runs([summarize_run(run) for run in runs])
    assert panel.selected_runs() == [runs[1], runs[0]]
    with qtbot.waitSignal(panel.selection_changed, timeout=1000) as dropped:
        panel.set_runs([summarize_run(runs[0])])
    assert dropped.args == [[runs[0]]]


def test_deleting_a_run_asks_first_then_asks_the_owner_to_delete_it(qtbot, panel: RunsPanel, runs: list[str],
                                                                     monkeypatch) -> None:
    panel.select_runs([runs[1]])
    answers = [QMessageBox.StandardButton.Cancel, QMessageBox.StandardButton.Yes]
    questions: list[str] = []

    def answer(parent, title, text, *args):
        questions.append(text)
        return answers.pop(0)

    monkeypatch.setattr(runs_panel_module.QMessageBox, "question", answer)
    delete = next(action for action in panel.context_menu(runs[1]).actions() if action.text() == "Delete Run…")
    with qtbot.assertNotEmitted(panel.delete_requested):
        delete.trigger()
    assert Path(runs[1]).is_dir() and "20261122-101010" in questions[0]
    deleted = []
    panel.delete_requested.connect(deleted.append)
    delete.trigger()
    # The panel never deletes by itself: the project's document decides (tests/gui/test_project_switch.py).
    assert deleted == [runs[1]] and Path(runs[1]).is_dir()


def test_a_missing_run_is_said_so_and_can_only_be_taken_off_the_list(qtbot, panel: RunsPanel, runs: list[str],
                                                                    monkeypatch) -> None:
    from dlstudio.core.training.runs import summarize_run

    gone = str(Path(runs[0]).parent / "20261101-000000")
    panel.set_runs([summarize_run(run) for run in runs] + [summarize_run(gone)])
    item = panel.item_for(gone)
    assert item.text(1) == "missing" and "no longer on disk" in item.toolTip(0)
    panel.select_runs([gone])
    assert panel.delete_button.text() == "Remove from List" and panel.delete_button.isEnabled()
    assert not panel.continue_button.isEnabled()
    monkeypatch.setattr(runs_panel_module.QMessageBox, "question", lambda *args: pytest.fail("no question to ask"))
    removed = []
    panel.remove_requested.connect(removed.append)
    with qtbot.assertNotEmitted(panel.delete_requested):
        panel.delete_button.click()
    assert removed == [gone]


def test_open_run_folder_asks_the_desktop_for_a_file_url(panel: RunsPanel, runs: list[str], monkeypatch) -> None:
    opened = []
    monkeypatch.setattr(runs_panel_module.QDesktopServices, "openUrl", lambda url: opened.append(url) or True)
    menu = panel.context_menu(runs[0])
    next(action for action in menu.actions() if action.text() == "Open Run Folder").trigger()
    assert [url.toLocalFile() for url in opened] == [runs[0]]


def test_an_empty_history_shows_a_hint(qtbot) -> None:
    panel = RunsPanel()
    qtbot.addWidget(panel)
    panel.set_runs([])
    assert panel._stack.currentWidget() is panel._placeholder and "No runs yet" in panel._placeholder.text()

"""Runs panel actions: which runs Continue Training and Delete are offered for, and why not when they are not."""

from __future__ import annotations

from pathlib import Path

import pytest
from PySide6.QtCore import Qt
from PySide6.QtTest import QTest
from PySide6.QtWidgets import QMessageBox

from dlstudio.core.training import EpochMetrics, MetricsCsv, write_run_files
from dlstudio.core.training.runs import summarize_run, write_run_result
from dlstudio.gui import runs_panel as runs_panel_module
from dlstudio.gui.runs_panel import RunsPanel


def _make_run(base: Path, name: str, epochs: int, planned: int, status: str | None, checkpoint: bool) -> str:
    run = base / name
    run.mkdir(parents=True)
    write_run_files(run, {"started": "2026-11-23T09:05:00", "training": {"epochs": planned}}, ["a", "b"])
    writer = MetricsCsv(run)
    writer.on_fit_start(type("T", (), {"history": []})())  # type: ignore[arg-type]
    for epoch in range(1, epochs + 1):
        writer.on_epoch_end(None, EpochMetrics(epoch, 1.0, 0.5, 1.0, 0.5, 0.01))  # type: ignore[arg-type]
    if status is not None:
        write_run_result(run, {"status": status, "message": ""})
    if checkpoint:
        (run / "last.pt").write_bytes(b"")  # only its presence matters to the panel
    return str(run)


@pytest.fixture
def runs(tmp_path: Path) -> dict[str, str]:
    base = tmp_path / "p.runs"
    return {
        "stopped": _make_run(base, "20261121-100000", 1, 3, "stopped", True),
        "crashed": _make_run(base, "20261121-110000", 2, 3, None, True),  # no result.json: summarized "stopped"
        "failed": _make_run(base, "20261121-120000", 1, 3, "failed", True),
        "completed": _make_run(base, "20261121-130000", 3, 3, "completed", True),
        "early": _make_run(base, "20261121-140000", 2, 3, "early_stopped", True),
        "no checkpoint": _make_run(base, "20261121-150000", 1, 3, "stopped", False),
    }


@pytest.fixture
def panel(qtbot, runs: dict[str, str]) -> RunsPanel:
    panel = RunsPanel()
    qtbot.addWidget(panel)
    panel.resize(640, 260)
    panel.set_runs([summarize_run(run) for run in runs.values()])
    panel.show()
    qtbot.waitExposed(panel)
    return panel


def _menu_action(panel: RunsPanel, run_dir: str, text: str):
    menu = panel.context_menu(run_dir)
    menu.deleteLater()
    return next(action for action in menu.actions() if action.text() == text)


@pytest.mark.parametrize(("kind", "reason"), [
    ("stopped", ""), ("crashed", ""), ("failed", ""),
    ("completed", "The run trained all its epochs."),
    ("early", "Early stopping ended this run: more epochs did not improve it."),
    ("no checkpoint", "The run has no checkpoint (last.pt) to continue from."),
])
def test_continue_is_offered_only_for_runs_that_can_go_on(panel, runs, kind, reason) -> None:
    run_dir = runs[kind]
    panel.select_runs([run_dir])
    assert panel.continue_blocked_reason(run_dir) == reason
    assert panel.continue_button.isEnabled() == (not reason)
    action = _menu_action(panel, run_dir, "Continue Training")
    assert action.isEnabled() == (not reason)
    if reason:
        assert panel.continue_button.toolTip() == reason == action.toolTip()


def test_the_button_asks_the_owner_to_continue_the_selected_run(qtbot, panel, runs) -> None:
    panel.select_runs([runs["stopped"]])
    with qtbot.waitSignal(panel.continue_requested, timeout=1000) as requested:
        QTest.mouseClick(panel.continue_button, Qt.MouseButton.LeftButton)
    assert requested.args == [runs["stopped"]]
    panel.select_runs([runs["completed"]])
    with qtbot.assertNotEmitted(panel.continue_requested):
        assert not panel.continue_run(runs["completed"])  # refused in code, not only by the disabled button


def test_nothing_or_several_selected_leaves_both_buttons_off(panel, runs) -> None:
    assert not panel.continue_button.isEnabled() and panel.continue_button.toolTip() == "Select one run to continue it."
    panel.select_runs([runs["stopped"], runs["failed"]])
    assert not panel.continue_button.isEnabled() and not panel.delete_button.isEnabled()


def test_while_a_run_trains_its_folder_is_protected_and_no_other_run_continues(qtbot, panel, runs) -> None:
    active = runs["crashed"]
    panel.set_training(True, active)
    panel.select_runs([active])
    assert not panel.delete_button.isEnabled() and not panel.continue_button.isEnabled()
    assert "stop it before deleting it" in panel.delete_button.toolTip()
    assert not _menu_action(panel, active, "Delete Run…").isEnabled()
    with qtbot.assertNotEmitted(panel.delete_requested):
        assert not panel.delete_run(active, confirm=False)
    assert Path(active).is_dir()

    panel.select_runs([runs["stopped"]])
    assert panel.delete_button.isEnabled()  # other runs can go
    assert panel.continue_button.toolTip() == "Another run is training: stop it before continuing this one."
    assert not panel.continue_run(runs["stopped"])
    # A new run is being prepared: its folder is not known yet, but nothing else may start.
    panel.set_training(True, None)
    assert not panel.continue_button.isEnabled() and panel.delete_button.isEnabled()
    panel.set_training(False)
    assert panel.continue_button.isEnabled()


def test_the_delete_button_asks_then_asks_the_owner_to_delete_the_selected_run(panel, runs, monkeypatch) -> None:
    monkeypatch.setattr(runs_panel_module.QMessageBox, "question",
                        lambda *args: QMessageBox.StandardButton.Yes)
    panel.select_runs([runs["completed"]])
    requested = []
    panel.delete_requested.connect(requested.append)
    QTest.mouseClick(panel.delete_button, Qt.MouseButton.LeftButton)
    # The project's document deletes (only inside its runs folder): tests/gui/test_project_switch.py.
    assert requested == [runs["completed"]] and Path(runs["completed"]).exists()

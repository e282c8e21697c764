"""Files a run skipped reach the Data panel with their reasons when the run ends (streamed folders find them then)."""

from __future__ import annotations

import sys
from pathlib import Path

from PySide6.QtCore import Qt
from PySide6.QtTest import QTest

from dlstudio.core.project import load_project

sys.path.insert(0, str(Path(__file__).resolve().parent.parent / "core"))
from test_training_skipped_log import _project_on_a_folder  # noqa: E402


def test_the_data_panel_lists_what_the_run_skipped(make_window, qtbot, tmp_path):
    window = make_window(load_project(_project_on_a_folder(tmp_path)))
    window.data_panel._show_skipped([])  # as a preview that has not seen the folder's bad file
    assert not window.data_panel.skipped_button.isVisible() or window.data_panel.skipped_button.isHidden()
    QTest.mouseClick(window.training.panel.buttons["start"], Qt.MouseButton.LeftButton)
    worker = window.training.worker
    assert worker is not None
    with qtbot.waitSignal(worker.ended, timeout=60_000):
        pass
    panel = window.data_panel
    assert panel.skipped_button.text() == "1 file skipped (unreadable)"
    assert "fake.png" in panel.skipped_list.item(0).text()
    said = window.training.panel.error_label.text()
    assert said.startswith("Trained without 1 file that is not a readable image (listed in the Data tab), e.g. "
                           "fake.png: ")


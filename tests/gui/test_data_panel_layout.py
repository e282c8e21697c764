"""The Data panel at a dock's default width: nothing cut, long lines wrap, the panel scrolls; class names whole."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
from PySide6.QtCore import QPoint
from PySide6.QtWidgets import QAbstractButton, QLabel, QMainWindow, QScrollArea, QWidget

from dlstudio.core.project import load_template
from dlstudio.gui.data_panel import ClassCountsChart, DataPanel, SampleGrid

LOAD_TIMEOUT = 15_000


@pytest.fixture
def panel_in_window(qtbot, tmp_path: Path):
    """A DataPanel as the central widget of an offscreen window ``width`` wide, showing the digits."""
    panels: list[DataPanel] = []
    windows: list[QMainWindow] = []  # qtbot holds them weakly

    def make(width: int, height: int = 600) -> DataPanel:
        window = QMainWindow()
        qtbot.addWidget(window)
        windows.append(window)
        panel = DataPanel()
        window.setCentralWidget(panel)
        window.resize(width, height)
        window.show()
        qtbot.waitExposed(window)
        project = load_template("lenet5")
        project.path = tmp_path / "lenet.dlstudio"
        with qtbot.waitSignal(panel.preview_shown, timeout=LOAD_TIMEOUT):
            panel.set_project(project)
        panels.append(panel)
        return panel

    yield make
    for panel in panels:
        assert panel.cancel_loading(5000)


def _cut_off(panel: DataPanel) -> list[str]:
    """What does not fit: texts wider than their widget, widgets reaching past the visible width."""
    area = panel.findChild(QScrollArea)
    visible_right = area.viewport().width()
    problems = []
    for widget in area.widget().findChildren(QWidget):
        if not widget.isVisibleTo(panel) or widget.width() == 0:
            continue
        right = widget.mapTo(area.viewport(), QPoint(widget.width(), 0)).x()
        name = widget.objectName() or type(widget).__name__
        if right > visible_right + 1:
            problems.append(f"{name} ends at {right}, the view at {visible_right}")
        if isinstance(widget, QAbstractButton) and widget.text():
            text = widget.text().replace("&", "")
            advance = widget.fontMetrics().horizontalAdvance(text)
            room = widget.width() - (18 if not isinstance(widget, type(panel.shuffle_button)) else 0)
            if advance > room:
                problems.append(f"button {text!r} needs {advance} px, has {room}")
        if isinstance(widget, QLabel) and widget.text() and not widget.wordWrap():
            for line in widget.text().splitlines():
                advance = widget.fontMetrics().horizontalAdvance(line)
                if advance > widget.contentsRect().width():
                    problems.append(f"label {line!r} needs {advance} px, has {widget.contentsRect().width()}")
    return problems


def _assert_nothing_cut(panel: DataPanel) -> None:
    problems = _cut_off(panel)
    assert not problems, problems


@pytest.mark.parametrize("width", [340, 400])
def test_nothing_is_cut_at_the_default_dock_width(panel_in_window, qtbot, width) -> None:
    panel = panel_in_window(width)
    qtbot.waitUntil(lambda: _assert_nothing_cut(panel), timeout=2000)  # the layout settles after the preview
    shuffle = panel.shuffle_button
    assert shuffle.fontMetrics().horizontalAdvance("Shuffle") <= shuffle.width()
    # The long lines wrap inside the width instead of widening the panel.
    assert panel.sample_caption.wordWrap() and panel.split_summary.wordWrap()
    area = panel.findChild(QScrollArea)
    assert area.widget().width() <= area.viewport().width()
    # Taller than the window: a vertical scroll bar reaches the rest.
    qtbot.waitUntil(lambda: area.verticalScrollBar().isVisible() and area.verticalScrollBar().maximum() > 0,
                    timeout=2000)


def test_long_messages_wrap(panel_in_window, qtbot) -> None:
    panel = panel_in_window(340)
    panel.sample_caption.setText("80 training samples, up to 8 per class · 28×28 grey · augmented · " * 2)
    panel.split_summary.setText("1,234,567 train · 123,456 validation · 123,456 test " * 2)
    line = panel.sample_caption.fontMetrics().height()
    qtbot.waitUntil(lambda: panel.sample_caption.height() > 2 * line, timeout=2000)  # three lines or more
    qtbot.waitUntil(lambda: _assert_nothing_cut(panel), timeout=2000)


# -- class names ------------------------------------------------------------------

NAMES = ["Tyrannosaurus rex skeleton", "ankle boot", "a"]


def test_class_names_are_whole_when_they_fit(qtbot) -> None:
    chart = ClassCountsChart()
    qtbot.addWidget(chart)
    chart.set_counts(NAMES, {"train": [10, 20, 30], "val": [1, 2, 3], "test": [1, 2, 3]})
    chart.resize(400, chart.height())
    widest = max(chart.fontMetrics().horizontalAdvance(name) for name in NAMES)
    assert widest > 110  # longer than the old fixed label column
    assert [chart.row_label(i) for i in range(3)] == NAMES
    chart.resize(200, chart.height())  # now the bars need the room: the long name is shortened, not the others
    assert chart.row_label(0) != NAMES[0] and chart.row_label(0).endswith("…")
    assert chart.row_label(2) == "a"


def test_sample_rows_show_whole_class_names_when_they_fit(qtbot) -> None:
    grid = SampleGrid()
    qtbot.addWidget(grid)
    images = np.zeros((6, 8, 8, 1), dtype=np.uint8)
    grid.set_samples(images, np.array([0, 0, 1, 1, 2, 2]), NAMES, grouped=True)
    grid.resize(400, grid.heightForWidth(400))
    assert [grid.row_label(name) for name in NAMES] == NAMES
    grid.resize(220, grid.heightForWidth(220))
    assert grid.row_label(NAMES[0]).endswith("…") and grid.row_label("a") == "a"

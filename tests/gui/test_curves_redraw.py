"""When the live curves redraw: as often as data comes, up to ~30 times a second, and no sooner."""

from __future__ import annotations

import time

import pytest

from dlstudio.gui.plots.curves import REDRAW_INTERVAL_MS, CurvesView


@pytest.fixture
def curves(qtbot) -> CurvesView:
    view = CurvesView()
    qtbot.addWidget(view)
    view.start_run("run", 2)
    return view


def test_data_arriving_after_the_interval_is_drawn_at_once(curves: CurvesView, qtbot) -> None:
    curves.add_batches([0.1], [1.0])
    curves.flush()
    drawn = curves.redraw_count
    time.sleep(REDRAW_INTERVAL_MS / 1000 + 0.01)
    curves.add_batches([0.2], [0.9])
    qtbot.wait(5)  # far less than the interval: only an immediate redraw gets in
    assert curves.redraw_count == drawn + 1
    assert len(curves.series("batch")[0]) == 2


def test_data_arriving_right_after_a_redraw_waits_for_the_interval(curves: CurvesView, qtbot) -> None:
    curves.add_batches([0.1], [1.0])
    curves.flush()
    drawn = curves.redraw_count
    curves.add_batches([0.2], [0.9])
    curves.add_batches([0.3], [0.8])
    assert curves.redraw_count == drawn
    qtbot.waitUntil(lambda: curves.redraw_count == drawn + 1, timeout=1000)
    assert len(curves.series("batch")[0]) == 3  # both arrivals in one redraw

"""How the live curves share a short or tall Metrics dock: plots side by side or stacked, the legend beside them."""

from __future__ import annotations

import math

import numpy as np
import pytest
from PySide6.QtCore import Qt
from PySide6.QtTest import QTest
from PySide6.QtWidgets import QApplication

from dlstudio.gui.plots.curves import SIDE_BY_SIDE, STACKED, STACKED_WITHOUT_LR, CurvesView

_BATCHES_PER_EPOCH = 60


def _feed_ten_epochs(view: CurvesView) -> None:
    """A realistic run: per-batch losses falling with noise, epoch metrics, a cosine learning rate, one past run."""
    rng = np.random.default_rng(0)
    view.start_run("20261123-090507", epochs=10)
    for epoch in range(1, 11):
        xs = (epoch - 1) + np.arange(1, _BATCHES_PER_EPOCH + 1) / _BATCHES_PER_EPOCH
        view.add_batches(xs, 2.3 * np.exp(-xs / 1.5) + 0.08 + rng.normal(0, 0.06, len(xs)))
        view.add_epoch({"epoch": epoch, "train_loss": 2.3 * math.exp(-epoch / 1.5) + 0.08,
                        "val_loss": 2.3 * math.exp(-epoch / 1.5) + 0.12,
                        "train_accuracy": 1 - 0.9 * math.exp(-epoch / 1.2),
                        "val_accuracy": 0.98 - 0.9 * math.exp(-epoch / 1.2),
                        "learning_rate": 0.0005 * (1 + math.cos(math.pi * epoch / 10))})
    past = [{"epoch": float(epoch), "train_loss": 2.0 * math.exp(-epoch / 2) + 0.1,
             "val_loss": 2.0 * math.exp(-epoch / 2) + 0.15, "val_accuracy": 0.95 - 0.8 * math.exp(-epoch / 1.5)}
            for epoch in range(1, 11)]
    view.set_overlays({"20261122-181200": past})
    view.flush()


@pytest.fixture
def make_curves(qtbot):
    def make(width: int, height: int) -> CurvesView:
        view = CurvesView()
        qtbot.addWidget(view)
        view.resize(width, height)
        view.show()
        qtbot.waitExposed(view)
        _feed_ten_epochs(view)
        QApplication.processEvents()
        return view
    return make


def _shown_plots(view: CurvesView):
    return [plot for plot in view._plots if plot.isVisible()]


@pytest.mark.parametrize(("width", "height", "arrangement"), [
    (900, 250, SIDE_BY_SIDE), (900, 350, SIDE_BY_SIDE), (900, 600, STACKED), (560, 280, STACKED_WITHOUT_LR),
])
def test_the_legend_stays_off_the_data_and_every_plot_gets_room(make_curves, width, height, arrangement) -> None:
    view = make_curves(width, height)
    assert view.arrangement() == arrangement
    legend = view._legend.sceneBoundingRect()
    assert legend.height() > 40 and legend.width() > 60  # the entries are laid out, not squeezed
    assert view._canvas.sceneRect().contains(legend)  # and all of it is in view
    names = [label.text for _, label in view._legend.items]
    assert names == ["train", "validation", "per batch", "20261122-181200"]
    for plot in _shown_plots(view):
        data_area = plot.vb.sceneBoundingRect()
        assert not data_area.intersects(legend), f"the legend covers a plot's data at {width}×{height}"
        # Readable: at 250 px stacked plots were 20-40 px high; here the smallest gets 60 px and more.
        assert data_area.height() >= 60 and data_area.width() >= 120


def test_a_short_wide_dock_puts_the_plots_side_by_side(make_curves) -> None:
    view = make_curves(900, 250)
    loss, accuracy, rate = (plot.vb.sceneBoundingRect() for plot in view._plots)
    assert loss.right() < accuracy.left() and accuracy.right() < rate.left()  # one row, left to right
    assert loss.width() > accuracy.width() > rate.width()  # the loss gets the most room
    assert loss.height() > 150  # most of the 250 px, not a third of them
    assert all(plot.getAxis("bottom").style["showValues"] for plot in view._plots)  # each plot has its epochs


def test_a_tall_dock_stacks_the_plots_with_one_row_of_epochs(make_curves) -> None:
    view = make_curves(900, 600)
    loss, accuracy, rate = (plot.vb.sceneBoundingRect() for plot in view._plots)
    assert loss.bottom() < accuracy.top() and accuracy.bottom() < rate.top()
    assert loss.height() > accuracy.height() > rate.height()
    assert loss.left() == pytest.approx(rate.left(), abs=1) and loss.width() == pytest.approx(rate.width(), abs=1)
    shows_values = [plot.getAxis("bottom").style["showValues"] for plot in view._plots]
    assert shows_values == [False, False, True]  # the x axes are linked: the lowest one says the epochs
    assert view._lr_plot.getAxis("bottom").label.isVisible()  # "epoch"


def test_a_short_narrow_dock_folds_the_learning_rate_away_first(make_curves) -> None:
    view = make_curves(560, 280)
    assert not view._lr_plot.isVisible() and view._loss_plot.isVisible() and view._accuracy_plot.isVisible()
    assert view._accuracy_plot.getAxis("bottom").style["showValues"]
    assert view._accuracy_plot.getAxis("bottom").label.isVisible()


def test_resizing_rearranges_without_losing_data(qtbot, make_curves) -> None:
    view = make_curves(900, 600)
    drawn = view.point_count()
    ranges = [plot.viewRange() for plot in view._plots]
    for width, height, arrangement in ((900, 260, SIDE_BY_SIDE), (500, 260, STACKED_WITHOUT_LR), (900, 600, STACKED)):
        view.resize(width, height)
        qtbot.waitUntil(lambda a=arrangement: view.arrangement() == a, timeout=1000)
        QApplication.processEvents()
        assert view._canvas.ci.layout.count() == (3 if arrangement == STACKED_WITHOUT_LR else 4)
    assert view.point_count() == drawn
    assert [plot.viewRange() for plot in view._plots] == ranges
    assert view._lr_plot.isVisible()


def test_clicking_a_legend_entry_hides_that_curve_in_loss_and_accuracy(qtbot, make_curves) -> None:
    view = make_curves(900, 350)
    sample = next(sample for sample, label in view._legend.items if label.text == "validation")
    point = view._canvas.mapFromScene(sample.sceneBoundingRect().center())
    QTest.mouseClick(view._canvas.viewport(), Qt.MouseButton.LeftButton, Qt.KeyboardModifier.NoModifier, point)
    qtbot.waitUntil(lambda: not view._epoch_curves["val_loss"].isVisible(), timeout=1000)
    assert not view._epoch_curves["val_accuracy"].isVisible()
    assert view._epoch_curves["train_loss"].isVisible() and view._epoch_curves["train_accuracy"].isVisible()
    QTest.mouseClick(view._canvas.viewport(), Qt.MouseButton.LeftButton, Qt.KeyboardModifier.NoModifier, point)
    qtbot.waitUntil(lambda: view._epoch_curves["val_accuracy"].isVisible(), timeout=1000)

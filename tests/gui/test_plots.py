"""Live plots fed with synthetic data: curves and filter mosaics (real mouse events where it matters; the confusion
matrix has test_confusion_view.py)."""

from __future__ import annotations

import numpy as np
import pytest
from PySide6.QtCore import QPointF
from PySide6.QtTest import QTest
from PySide6.QtWidgets import QApplication

from dlstudio.core.mosaic import filter_mosaic
from dlstudio.gui.plots.curves import CurvesView
from dlstudio.gui.plots.filters import FiltersView
from dlstudio.gui.plots.mosaic import mosaic_rgba
from dlstudio.gui.theme import DARK, LIGHT, apply_theme


def _epoch(epoch: int, val_accuracy: float | None = 0.5) -> dict:
    return {"epoch": epoch, "train_loss": 1.0 / epoch, "train_accuracy": 0.4 + 0.05 * epoch,
            "val_loss": 1.1 / epoch, "val_accuracy": val_accuracy, "learning_rate": 0.01, "seconds": 1.0}


@pytest.fixture
def curves(qtbot) -> CurvesView:
    view = CurvesView()
    qtbot.addWidget(view)
    view.resize(500, 500)
    view.show()
    return view


# ---- curves -------------------------------------------------------------------------------------------

def test_fed_batches_and_epochs_are_drawn_after_a_coalesced_redraw(qtbot, curves: CurvesView) -> None:
    curves.start_run("20261123-090507")
    batches_per_epoch = 50
    for epoch in range(1, 4):
        for start in range(0, batches_per_epoch, 5):  # chunks, as the worker's throttled reports arrive
            xs = (epoch - 1) + np.arange(start + 1, start + 6) / batches_per_epoch
            curves.add_batches(xs.tolist(), np.full(5, 2.0 / epoch).tolist())
        curves.add_epoch(_epoch(epoch, val_accuracy=None if epoch == 1 else 0.8))
    redraws_before = curves.redraw_count
    qtbot.waitUntil(lambda: curves.point_count()["batch"] == 150, timeout=2000)
    counts = curves.point_count()
    assert counts == {"batch": 150, "train_loss": 3, "val_loss": 3, "train_accuracy": 3, "val_accuracy": 2,
                      "learning_rate": 3, "overlays": 0}
    # 30 chunks and 3 epochs fed back to back were drawn in one redraw, not 33.
    assert curves.redraw_count - redraws_before == 1
    x, accuracy = curves.series("val_accuracy")
    assert x.tolist() == [2.0, 3.0] and accuracy.tolist() == pytest.approx([80.0, 80.0])


def test_the_per_batch_curve_is_an_unbiased_moving_average(curves: CurvesView) -> None:
    curves.add_batches([0.1, 0.2, 0.3], [2.0, 2.0, 2.0])
    curves.flush()
    _, smoothed = curves.series("batch")
    assert smoothed.tolist() == pytest.approx([2.0, 2.0, 2.0])  # a plain EMA would start at 0.2
    curves.add_batches(np.linspace(0.4, 5.0, 400), np.zeros(400))
    curves.flush()
    _, smoothed = curves.series("batch")
    assert smoothed[3] < 2.0 and smoothed[-1] == pytest.approx(0.0, abs=1e-6)
    assert np.all(np.diff(smoothed[3:]) <= 0)  # smoothed, not jumping to 0 at once


def test_a_resumed_run_replaces_the_unfinished_epoch(curves: CurvesView) -> None:
    curves.add_batches([0.5, 1.0, 1.5, 1.75], [1.0, 1.0, 1.0, 1.0])
    curves.add_epoch(_epoch(1))
    curves.add_epoch(_epoch(2))
    # The run stopped in epoch 2 and resumed from the checkpoint after epoch 1.
    curves.add_batches([1.25, 1.5], [0.5, 0.5])
    curves.add_epoch(_epoch(2))
    curves.flush()
    assert curves.series("batch")[0].tolist() == [0.5, 1.0, 1.25, 1.5]
    assert curves.series("train_loss")[0].tolist() == [1.0, 2.0]


def test_non_finite_losses_are_skipped_and_mismatched_lengths_refused(curves: CurvesView) -> None:
    curves.add_batches([0.1, 0.2, 0.3], [1.0, float("nan"), float("inf")])
    curves.add_epoch({**_epoch(1), "val_loss": float("nan")})
    curves.flush()
    assert curves.point_count()["batch"] == 1 and curves.point_count()["val_loss"] == 0
    with pytest.raises(ValueError, match="3 positions and 2 losses"):
        curves.add_batches([0.1, 0.2, 0.3], [1.0, 2.0])


def test_overlays_are_replaced_reusing_their_items(curves: CurvesView) -> None:
    rows = [{"epoch": float(e), "train_loss": 1.0 / e, "val_loss": 1.2 / e, "val_accuracy": 0.1 * e} for e in (1, 2, 3)]
    items = curves._loss_plot.listDataItems
    curves.set_overlays({"run-a": rows, "run-b": rows, "run-c": rows[:2]})
    assert curves.point_count()["overlays"] == 3 and curves.overlay_names() == ["run-a", "run-b", "run-c"]
    created = len(items())
    curves.set_overlays({"run-b": rows, "run-d": rows})
    assert curves.overlay_names() == ["run-b", "run-d"]
    assert len(items()) == created  # nothing new: run-d took a freed slot
    legend_names = [label.text for _, label in curves._legend.items]
    assert "run-b" in legend_names and "run-d" in legend_names and "run-a" not in legend_names
    curves.start_run("next")  # a new live run keeps the overlays
    assert curves.point_count()["overlays"] == 2
    curves.clear()
    assert curves.point_count() == {"batch": 0, "train_loss": 0, "val_loss": 0, "train_accuracy": 0,
                                     "val_accuracy": 0, "learning_rate": 0, "overlays": 0}


def test_plots_follow_the_theme(qapp, curves: CurvesView) -> None:
    apply_theme(qapp, DARK)
    try:
        QApplication.processEvents()
        dark = curves._canvas.backgroundBrush().color().lightness()
    finally:
        apply_theme(qapp, LIGHT)
    QApplication.processEvents()
    assert dark < 80 < curves._canvas.backgroundBrush().color().lightness()


# ---- filters ------------------------------------------------------------------------------------------

@pytest.fixture
def filters(qtbot) -> FiltersView:
    view = FiltersView()
    qtbot.addWidget(view)
    view.resize(400, 360)
    view.show()
    qtbot.waitExposed(view)
    return view


def test_choosing_layers_emits_the_node_id(qtbot, filters: FiltersView) -> None:
    with qtbot.waitSignal(filters.layer_chosen, timeout=1000) as chosen:
        filters.set_layers([("conv1", "conv1 · Conv2d"), ("conv2", "conv2 · Conv2d")])
    assert chosen.args == ["conv1"] and filters.current_layer() == "conv1"
    with qtbot.assertNotEmitted(filters.layer_chosen):
        filters.set_layers([("conv0", "conv0"), ("conv1", "conv1"), ("conv2", "conv2")])  # conv1 stays
    filters.set_weights(np.ones((2, 1, 3, 3), dtype=np.float32))
    with qtbot.waitSignal(filters.layer_chosen, timeout=1000) as chosen:
        filters.set_layer("conv2")
    assert chosen.args == ["conv2"] and filters.image() is None  # the old layer's weights are gone
    with qtbot.waitSignal(filters.layer_chosen, timeout=1000) as chosen:
        filters.set_layers([("conv3", "conv3")])  # conv2 was deleted from the graph
    assert chosen.args == ["conv3"]
    filters.set_layers([])
    assert filters.current_layer() is None


def test_the_mosaic_shows_every_filter_and_changes_with_the_weights(filters: FiltersView) -> None:
    rng = np.random.default_rng(0)
    filters.set_layers([("conv2", "conv2")])
    first = rng.normal(size=(16, 6, 5, 5)).astype(np.float32)
    filters.set_weights(first)
    image = filters.image().copy()
    mosaic = filter_mosaic(first)
    assert image.shape == (*mosaic.image.shape, 4)
    tiles = image[..., 3] == 255
    assert tiles.sum() == 16 * 6 * 25  # every weight is one opaque pixel; the gaps are transparent
    assert filters._image.image.shape == image.shape  # one ImageItem holds the whole mosaic
    filters.set_weights(first + rng.normal(scale=0.5, size=first.shape).astype(np.float32))
    assert filters.image().shape == image.shape and not np.array_equal(filters.image(), image)


def test_three_input_channels_are_drawn_as_colour_tiles(filters: FiltersView) -> None:
    weights = -np.ones((4, 3, 3, 3), dtype=np.float32)
    weights[0, 0] = 1.0  # filter 1 responds to red
    weights[1, 2] = 1.0  # filter 2 to blue
    filters.set_weights(weights)
    mosaic = filter_mosaic(weights)
    assert mosaic.colour and filters.image().shape == (7, 7, 4)  # 2×2 tiles of 3×3 with a gap
    assert filters.image()[0, 0, :3].tolist() == [255, 0, 0]
    assert filters.image()[0, 4, :3].tolist() == [0, 0, 255]
    assert filters.tile_text(0, 4).startswith("filter 2:")


def test_diverging_tiles_are_scaled_per_filter_with_zero_in_the_middle() -> None:
    weights = np.zeros((2, 1, 1, 3), dtype=np.float32)
    weights[0, 0, 0] = [-1.0, 0.0, 1.0]
    weights[1, 0, 0] = [-0.001, 0.0, 0.001]  # a thousand times smaller: the same colours
    rgba = mosaic_rgba(filter_mosaic(weights))
    first, second = rgba[0, 0:3, :3], rgba[2, 0:3, :3]  # two 1×3 tiles, one above the other
    assert np.array_equal(first, second)
    assert first[0, 2] > first[0, 0] and first[2, 0] > first[2, 2]  # negative blue, positive red
    assert abs(int(first[1, 0]) - int(first[1, 2])) < 8  # zero is neutral
    assert mosaic_rgba(filter_mosaic(weights), "grey")[0, 0:3, 0].tolist() == [0, 128, 255]
    assert (rgba[1, :, 3] == 0).all()  # the gap between the two tiles is transparent
    with pytest.raises(ValueError, match="unknown colour map 'jet'"):
        mosaic_rgba(filter_mosaic(weights), "jet")


def test_hovering_a_tile_names_it(qtbot, filters: FiltersView) -> None:
    filters.set_weights(np.random.default_rng(1).normal(size=(6, 1, 5, 5)))
    QApplication.processEvents()
    # The centre of the first tile (pixels 0..4 of the mosaic), in viewport coordinates.
    point = filters._view.mapFromScene(filters._image.mapToScene(QPointF(2.5, 2.5)))
    QTest.mouseMove(filters._view.viewport(), point)
    qtbot.waitUntil(lambda: filters._view.toolTip().startswith("filter 1, channel 1: weights"), timeout=1000)
    QTest.mouseMove(filters._view.viewport(), filters._view.mapFromScene(filters._image.mapToScene(QPointF(5.5, 2.5))))
    qtbot.waitUntil(lambda: filters._view.toolTip() == "", timeout=1000)  # the gap between two tiles


def test_ranges_follow_the_data_without_moving_on_every_redraw(curves: CurvesView) -> None:
    curves.start_run("r", epochs=15)
    curves.add_batches(np.arange(1, 11) / 100, [1.0] * 5 + [2.0] * 5)  # smoothed: 1.0 rising to ~1.6
    curves.flush()
    x_range, y_range = curves._loss_plot.viewRange()
    assert x_range[0] < 0.0 < 15.0 < x_range[1] < 15.5  # the planned epochs from the start
    smoothed = curves.series("batch")[1]
    assert y_range[0] < smoothed.min() < smoothed.max() < y_range[1]
    curves.add_batches([0.3, 0.4], [1.3, 1.3])  # inside the range: the axes stay put
    curves.flush()
    assert curves._loss_plot.viewRange()[1] == y_range
    curves.add_batches([0.5], [40.0])  # a spike leaves the range: it grows
    curves.flush()
    assert curves._loss_plot.viewRange()[1][1] > curves.series("batch")[1].max() > 2.0
    curves.add_epoch(_epoch(1))
    curves.flush()
    assert curves._accuracy_plot.viewRange()[1][1] <= 100.0


def test_a_constant_learning_rate_is_a_level_line_on_an_axis_from_zero(curves: CurvesView) -> None:
    curves.start_run("20261203-120000")
    for epoch in range(1, 6):
        curves.add_epoch(_epoch(epoch))  # 0.01 every epoch
    curves.flush()
    low, high = curves._lr_plot.viewRange()[1]
    assert low == 0.0 and 0.01 < high < 0.0115, "not a zoom into 0.0096..0.0104 that looks like noise"


def test_a_reconstruction_has_no_accuracy_plot_and_loss_takes_its_room(curves: CurvesView) -> None:
    curves.resize(500, 500)  # stacked: loss, accuracy, learning rate
    assert curves._accuracy_plot.isVisible() and curves.has_accuracy_plot()
    height = curves._loss_plot.geometry().height()
    curves.set_task("reconstruction")
    curves._canvas.ci.layout.activate()
    assert not curves._accuracy_plot.isVisible() and curves._lr_plot.isVisible()
    assert curves._lr_plot.getAxis("bottom").label.isVisible(), "the lowest plot names the epoch axis"
    curves.start_run("20261203-120000")
    curves.add_epoch({"epoch": 1, "train_loss": 0.1, "val_loss": 0.12, "learning_rate": 0.001})
    curves.flush()
    QApplication.processEvents()
    assert curves._loss_plot.geometry().height() > height
    curves.set_task("classification")
    assert curves._accuracy_plot.isVisible()


def test_the_window_shows_accuracy_only_for_a_classifier(make_window) -> None:
    from dlstudio.core.project import load_template

    window = make_window(load_template("autoencoder"))
    assert not window.training.curves.has_accuracy_plot()
    window.set_project(load_template("lenet5"))
    assert window.training.curves.has_accuracy_plot()

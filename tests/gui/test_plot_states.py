"""What the live plots show before, between and after runs: hints instead of empty axes, a clean slate after a
project switch, a finished run's history, conv layers named before any run, and axes that stay with the cells."""

from __future__ import annotations

import numpy as np
import pytest
from PySide6.QtCore import QRectF, Qt
from PySide6.QtGui import QImage, QPainter
from PySide6.QtWidgets import QApplication

from dlstudio.gui.plots.confusion import ConfusionView
from dlstudio.gui.plots.curves import CurvesView
from dlstudio.gui.plots.filters import FiltersView
from dlstudio.gui.theme import DARK, LIGHT, apply_theme


def _epoch(epoch: float, scale: float = 1.0) -> dict:
    return {"epoch": epoch, "train_loss": scale / epoch, "train_accuracy": 0.5, "val_loss": 1.2 * scale / epoch,
            "val_accuracy": 0.6, "learning_rate": 0.01 * scale, "seconds": 1.0}


def _shown(qtbot, view, width: int = 600, height: int = 400):
    qtbot.addWidget(view)
    view.resize(width, height)
    view.show()
    qtbot.waitExposed(view)
    return view


# ---- curves -------------------------------------------------------------------------------------------

@pytest.fixture
def curves(qtbot) -> CurvesView:
    return _shown(qtbot, CurvesView())


def test_curves_before_any_run_show_a_hint_not_empty_axes(qtbot, curves: CurvesView) -> None:
    assert "Press Train (F5)" in curves.hint()
    label = curves.findChild(type(curves._hint_label), "PlotHint")
    assert label is not None and label.isVisible() and label.text() == curves.hint()
    assert not curves._canvas.isVisible()
    curves.start_run("20261123-090507", epochs=5)  # a run started: its (still empty) axes are shown
    qtbot.waitUntil(curves._canvas.isVisible, timeout=1000)
    assert curves.hint() == "" and not label.isVisible()
    curves.clear()
    qtbot.waitUntil(lambda: not curves._canvas.isVisible(), timeout=1000)
    assert label.isVisible() and "Press Train (F5)" in label.text()


def test_clear_resets_ranges_titles_overlays_and_data(qtbot, curves: CurvesView) -> None:
    fresh = _shown(qtbot, CurvesView())
    fresh.start_run("x")
    fresh.clear()
    initial = [plot.viewRange() for plot in fresh._plots]
    curves.start_run("20261123-090507", epochs=400)
    curves.add_batches(np.linspace(0.1, 300.0, 500), np.full(500, 5_000.0))
    for epoch in range(1, 301, 50):
        curves.add_epoch(_epoch(float(epoch), scale=10_000.0))
    curves.set_overlays({"old": [{"epoch": 250.0, "train_loss": 9e4, "val_loss": 8e4, "val_accuracy": 0.3}]})
    curves.flush()
    # A person hid the validation curves with a legend click.
    curves._epoch_curves["val_loss"].setVisible(False)
    curves._epoch_curves["val_accuracy"].setVisible(False)
    assert curves._loss_plot.viewRange()[0][1] > 300 and curves._loss_plot.viewRange()[1][1] > 5_000
    curves.clear()
    assert [plot.viewRange() for plot in curves._plots] == initial
    assert initial[0][0] == pytest.approx([-0.01, 1.01]) and initial[0][1] == [0.0, 1.0]
    assert initial[1][1] == [0.0, 100.0]  # accuracy in percent
    for plot in curves._plots:
        for item in plot.listDataItems():
            x, _ = item.getData()
            assert x is None or len(x) == 0, "an item kept the old project's data"
        assert plot.titleLabel.text.count("—") == 0  # no run name in a title
    assert curves.point_count()["overlays"] == 0
    assert [label.text for _, label in curves._legend.items] == ["train", "validation", "per batch"]
    assert curves._epoch_curves["val_loss"].isVisible() and curves._epoch_curves["val_accuracy"].isVisible()
    # A new, small run fits its own data, not the old project's range.
    curves.start_run("next", epochs=3)
    curves.add_epoch(_epoch(1.0))
    curves.flush()
    (x_low, x_high), (y_low, y_high) = curves._loss_plot.viewRange()
    assert x_high < 3.5 and y_high < 2.0


def test_start_run_forgets_the_last_runs_range(curves: CurvesView) -> None:
    curves.start_run("big", epochs=2)
    curves.add_epoch(_epoch(1.0, scale=1_000.0))
    curves.flush()
    curves.start_run("small", epochs=2)
    curves.add_epoch(_epoch(1.0))
    curves.flush()
    assert curves._loss_plot.viewRange()[1][1] < 2.0


def test_show_history_draws_a_finished_runs_metrics_as_the_current_run(curves: CurvesView) -> None:
    # Rows as dlstudio.core.training.runs.read_metrics returns them: floats, None for empty cells.
    rows = [{"epoch": 1.0, "train_loss": 1.5, "train_accuracy": 0.5, "val_loss": 1.6, "val_accuracy": None,
             "learning_rate": 0.01, "seconds": 2.0, "samples_per_second": 900.0},
            {"epoch": 2.0, "train_loss": 0.9, "train_accuracy": 0.7, "val_loss": 1.0, "val_accuracy": 0.65,
             "learning_rate": 0.005, "seconds": 2.0, "samples_per_second": 910.0}]
    curves.show_history("20261123-090507", 10, rows)
    assert curves.series("train_loss")[1].tolist() == [1.5, 0.9]
    assert curves.series("val_accuracy")[0].tolist() == [2.0]
    assert curves.series("val_accuracy")[1].tolist() == pytest.approx([65.0])
    assert curves.point_count()["batch"] == 0
    assert "20261123-090507" in curves._loss_plot.titleLabel.text
    assert curves._loss_plot.viewRange()[0][1] == pytest.approx(10.1)  # the planned epochs
    assert curves.hint() == "" and curves._canvas.isVisible()


def test_train_and_validation_of_one_run_differ_and_the_legend_says_which(curves: CurvesView) -> None:
    rows = [{"epoch": float(e), "train_loss": 1.0 / e, "val_loss": 1.2 / e, "val_accuracy": 0.1 * e}
            for e in (1, 2, 3)]
    curves.set_overlays({"run-a": rows, "run-b": rows})
    overlays = [overlay for overlay in curves._overlays if overlay.name is not None]
    solid, dash = Qt.PenStyle.SolidLine, Qt.PenStyle.DashLine
    for overlay in overlays:
        assert overlay.train_loss.opts["pen"].style() == solid
        assert overlay.val_loss.opts["pen"].style() == dash and overlay.val_accuracy.opts["pen"].style() == dash
        assert overlay.train_loss.opts["pen"].color() == overlay.val_loss.opts["pen"].color()  # one colour a run
    assert overlays[0].train_loss.opts["pen"].color() != overlays[1].train_loss.opts["pen"].color()
    # The legend's train and validation entries show the line style every run uses.
    samples = {label.text: sample.item for sample, label in curves._legend.items}
    assert samples["train"].opts["pen"].style() == solid
    assert samples["validation"].opts["pen"].style() == dash
    assert curves._epoch_curves["val_accuracy"].opts["pen"].style() == dash
    assert samples["run-a"].opts["pen"].style() == solid  # a run's entry: its colour, as its train line
    assert samples["run-a"].opts["pen"].color() == overlays[0].train_loss.opts["pen"].color()


def test_overlay_line_styles_survive_a_theme_change(qapp, curves: CurvesView) -> None:
    curves.set_overlays({"run-a": [{"epoch": 1.0, "train_loss": 1.0, "val_loss": 1.1, "val_accuracy": 0.5}]})
    apply_theme(qapp, DARK)
    try:
        QApplication.processEvents()
        overlay = curves._overlays[0]
        assert overlay.train_loss.opts["pen"].style() == Qt.PenStyle.SolidLine
        assert overlay.val_loss.opts["pen"].style() == Qt.PenStyle.DashLine
    finally:
        apply_theme(qapp, LIGHT)
        QApplication.processEvents()


# ---- confusion ----------------------------------------------------------------------------------------

@pytest.fixture
def confusion(qtbot) -> ConfusionView:
    return _shown(qtbot, ConfusionView(), 400, 300)


def _matrix(size: int = 10) -> list[list[int]]:
    matrix = np.diag(np.full(size, 30))
    matrix[3, size - 2] = 12
    return matrix.tolist()


def test_an_empty_confusion_matrix_shows_a_hint_and_never_si_prefixes(qtbot, confusion: ConfusionView) -> None:
    assert confusion.hint() == "The confusion matrix appears after the first epoch"
    label = confusion.findChild(type(confusion._hint_label), "PlotHint")
    assert label.isVisible() and label.text() == confusion.hint() and not confusion._canvas.isVisible()
    for side in ("left", "bottom"):
        assert "x0.001" not in confusion._plot.getAxis(side).labelString()
        assert not confusion._plot.getAxis(side).autoSIPrefix
    confusion.set_matrix(_matrix(), [str(i) for i in range(10)])
    qtbot.waitUntil(confusion._canvas.isVisible, timeout=1000)
    assert confusion.hint() == "" and not label.isVisible()
    for side in ("left", "bottom"):
        text = confusion._plot.getAxis(side).labelString()
        assert "(x" not in text and "class" in text
    confusion.clear()
    qtbot.waitUntil(lambda: not confusion._canvas.isVisible(), timeout=1000)
    assert label.isVisible() and confusion.matrix().shape == (0, 0) and confusion.count_texts() == []
    for side in ("left", "bottom"):
        assert "(x" not in confusion._plot.getAxis(side).labelString()


def _tick_labels(view: ConfusionView, side: str) -> dict[str, QRectF]:
    """Where the axis paints each tick label, in scene coordinates."""
    axis = view._plot.getAxis(side)
    image = QImage(8, 8, QImage.Format.Format_ARGB32)
    painter = QPainter(image)
    try:
        specs = axis.generateDrawSpecs(painter)
    finally:
        painter.end()
    assert specs is not None
    return {text: axis.mapRectToScene(rect) for rect, _flags, text in specs[2]}


@pytest.mark.parametrize(("width", "height"), [(400, 300), (400, 900), (900, 400), (700, 700)])
def test_class_names_stay_at_their_cells_at_any_size(qtbot, confusion: ConfusionView, width, height) -> None:
    names = [f"c{i}" for i in range(10)]
    confusion.set_matrix(_matrix(), names)
    confusion.resize(width, height)
    qtbot.waitUntil(lambda: confusion._canvas.width() == width and confusion._canvas.height() == height,
                    timeout=1000)
    for _ in range(3):
        QApplication.processEvents()
    cells = confusion._image.sceneBoundingRect()
    cell = cells.width() / 10
    assert cell > 10
    rows, columns = _tick_labels(confusion, "left"), _tick_labels(confusion, "bottom")
    assert sorted(rows) == sorted(names) and sorted(columns) == sorted(names)
    for index, name in enumerate(names):
        centre = confusion._image.mapToScene(index + 0.5, index + 0.5)
        assert rows[name].center().y() == pytest.approx(centre.y(), abs=2)
        assert columns[name].center().x() == pytest.approx(centre.x(), abs=2)
        # Beside the matrix, not at the far edge of a tall or wide dock.
        assert 0 <= cells.left() - rows[name].right() < 30, f"row name {name} is far from its row"
        assert 0 <= columns[name].top() - cells.bottom() < 30, f"column name {name} is far from its column"
    title = confusion._plot.titleLabel.sceneBoundingRect()
    assert 0 <= cells.top() - title.bottom() < 30  # the title sits on the matrix


def test_confusion_follows_the_theme_with_its_hint(qapp, confusion: ConfusionView) -> None:
    apply_theme(qapp, DARK)
    try:
        QApplication.processEvents()
        dark = confusion._hint_label.palette().color(confusion._hint_label.backgroundRole()).lightness()
    finally:
        apply_theme(qapp, LIGHT)
        QApplication.processEvents()
    assert dark < 80 < confusion._hint_label.palette().color(confusion._hint_label.backgroundRole()).lightness()


# ---- filters ------------------------------------------------------------------------------------------

@pytest.fixture
def filters(qtbot) -> FiltersView:
    return _shown(qtbot, FiltersView(), 400, 360)


def _placeholder(view: FiltersView) -> str:
    assert view._placeholder.isVisible()
    return view._placeholder.text()


def test_conv_layers_are_named_before_any_run(qtbot, filters: FiltersView) -> None:
    with qtbot.waitSignal(filters.layer_chosen, timeout=1000) as chosen:
        filters.set_layers([("n3", "conv1"), ("n7", "conv2")])  # node ids and the person's names
    assert chosen.args == ["n3"] and filters.current_layer() == "n3"
    box = filters._layer_box
    assert [box.itemText(i) for i in range(box.count())] == ["conv1", "conv2"] and box.isEnabled()
    text = _placeholder(filters)
    assert text == "Train the network to watch conv1's filters change."
    assert "No convolution" not in text and "n3" not in text
    filters.set_layer("n7")
    assert _placeholder(filters) == "Train the network to watch conv2's filters change."
    filters.set_layers([("n3", "first conv"), ("n7", "edges")])  # renamed in the graph: the same layer stays
    assert filters.current_layer() == "n7" and box.currentText() == "edges"
    assert _placeholder(filters) == "Train the network to watch edges's filters change."
    filters.set_weights(np.ones((2, 1, 3, 3), dtype=np.float32))
    assert not filters._placeholder.isVisible() and filters.image() is not None


def test_layers_may_carry_more_than_the_name(filters: FiltersView) -> None:
    filters.set_layers([("n3", "conv1", "6 filters, 5×5"), ("n7", "conv2", "16 filters, 5×5")])
    assert filters._layer_box.itemText(1) == "conv2"
    assert filters._layer_box.itemData(1, Qt.ItemDataRole.ToolTipRole) == "16 filters, 5×5"


def test_only_a_network_without_conv_layers_says_there_is_none(filters: FiltersView) -> None:
    assert "No convolution" not in _placeholder(filters)  # not told yet: no claim about the network
    filters.set_layers([])
    assert "no convolution layer" in _placeholder(filters).lower()
    filters.set_layers([("n3", "conv1")])
    filters.set_weights(np.ones((2, 1, 3, 3), dtype=np.float32))
    filters.clear()  # a project switch
    assert filters.current_layer() is None and filters.image() is None
    assert "No convolution" not in _placeholder(filters) and "conv1" not in _placeholder(filters)

"""Confusion matrix heatmap on the validation split: true classes in rows, predictions in columns.

One ImageItem holds all the cells (row-normalized: each row's colours show
where that class's samples went); one more item paints the counts as text up
to 15×15 (a text item per cell made the first matrix take 0.3-0.7 s).
Hovering a cell says what it counts; clicking it emits ``cell_clicked`` so
the owner can show those samples. With ``with_table`` a per-class table
(precision, recall, F1, support; ``set_per_class``) sits under the matrix in
a splitter, or beside it when the view is wide enough for both.
"""

from __future__ import annotations

import math

import numpy as np
import pyqtgraph as pg
from PySide6.QtCore import QEvent, QObject, QPoint, QPointF, QRectF, Qt, Signal
from PySide6.QtGui import QColor, QFont, QFontMetricsF, QPainter, QPalette
from PySide6.QtWidgets import QGraphicsItem, QSplitter, QStackedLayout, QStyleOptionGraphicsItem, QWidget

from dlstudio.gui.plots.confusion_table import PerClassTable
from dlstudio.gui.plots.style import (
    PlotColors,
    plot_colors,
    plot_font,
    plot_hint,
    set_axis_label,
    set_title,
    style_plot,
)

# Counts are written in the cells up to this many classes; beyond it they would not fit.
MAX_CLASSES_WITH_COUNTS = 15
# Column names longer than this are shortened on the bottom axis (the left axis and tooltips give them whole).
_SHORT_NAME = 5
# No more tick labels than this per axis; with more classes every k-th is labelled.
_MAX_TICKS = 30
EMPTY_HINT = "The confusion matrix appears after the first epoch"
# The per-class table's share beside the matrix: its five columns at ease, not more.
_TABLE_WIDTH = 400


class _CellCounts(QGraphicsItem):
    """The counts of all cells, painted by one item in the matrix's coordinates (cell (r, c) spans c..c+1, r..r+1).

    The text keeps its size in pixels whatever the zoom: each cell's centre is
    mapped to the device and the text drawn there untransformed. A count that
    does not fit its cell is left out rather than spilling over its neighbours.
    """

    def __init__(self) -> None:
        super().__init__()
        self._size = 0
        self._texts: list[str] = []
        self._colours: list[QColor] = []
        self._font = QFont()
        self._metrics = QFontMetricsF(self._font)

    def set_counts(self, texts: list[str], colours: list[QColor], size: int) -> None:
        """Show ``texts`` (row-major, ``size`` × ``size``) in ``colours``; empty lists show nothing."""
        if size != self._size:
            self.prepareGeometryChange()
            self._size = size
        self._texts, self._colours = texts, colours
        self.update()

    def set_font(self, font: QFont) -> None:
        self._font = QFont(font)
        self._metrics = QFontMetricsF(self._font)
        self.update()

    def texts(self) -> list[str]:
        """The count of every cell as it is drawn (row-major), or [] when counts are not shown."""
        return list(self._texts)

    def boundingRect(self) -> QRectF:
        return QRectF(0.0, 0.0, float(self._size), float(self._size))

    def paint(self, painter: QPainter, option: QStyleOptionGraphicsItem, widget: QWidget | None = None) -> None:
        if not self._texts:
            return
        to_device = painter.transform()
        corner = to_device.map(QPointF(0.0, 0.0))
        step = to_device.map(QPointF(1.0, 1.0)) - corner  # one cell in pixels (y may be negative)
        cell_width, cell_height = abs(step.x()), abs(step.y())
        text_height = self._metrics.height()
        if cell_height < text_height:
            return
        painter.save()
        painter.resetTransform()  # draw in pixels so the text is not stretched with the cells
        painter.setFont(self._font)
        pen_colour: QColor | None = None
        for index, text in enumerate(self._texts):
            width = self._metrics.horizontalAdvance(text)
            if width > cell_width:
                continue
            row, column = divmod(index, self._size)
            centre_x = corner.x() + (column + 0.5) * step.x()
            centre_y = corner.y() + (row + 0.5) * step.y()
            colour = self._colours[index]
            if colour != pen_colour:
                painter.setPen(colour)
                pen_colour = colour
            painter.drawText(QRectF(centre_x - width / 2 - 1, centre_y - text_height / 2, width + 2, text_height),
                             Qt.AlignmentFlag.AlignCenter, text)
        painter.restore()


class ConfusionView(QWidget):
    """A heatmap of ``matrix[true][predicted]`` counts with class names on both axes."""

    cell_clicked = Signal(int, int)  # (true class, predicted class)

    def __init__(self, parent: QWidget | None = None, with_table: bool = False,
                 accuracy_label: str = "Validation accuracy", empty_hint: str = EMPTY_HINT) -> None:
        super().__init__(parent)
        self._accuracy_label = accuracy_label
        self._counts = np.zeros((0, 0), dtype=np.int64)
        self._names: list[str] = []
        self._rgba = np.zeros((0, 0, 4), dtype=np.uint8)
        self._colours = plot_colors(self.palette())
        self._title = ""

        self._canvas = pg.GraphicsLayoutWidget()
        self._canvas.ci.setContentsMargins(4, 4, 12, 4)
        self._plot = self._canvas.addPlot()
        self._plot.invertY(True)
        self._plot.setAspectLocked(True)
        self._plot.setMouseEnabled(False, False)
        self._plot.setMenuEnabled(False)
        self._plot.hideButtons()
        self._plot.vb.setDefaultPadding(0.0)
        for side in ("left", "bottom"):
            # Class indices, never scaled: on an empty (0..1) range pyqtgraph labelled the axes "(x0.001)".
            self._plot.getAxis(side).enableAutoSIPrefix(False)
        self._image = pg.ImageItem(axisOrder="row-major")
        self._plot.addItem(self._image)
        self._counts_item = _CellCounts()
        self._plot.addItem(self._counts_item)
        # The cells are square, so in a wide, short dock the matrix is narrower than the plot, and in a tall
        # one lower: the plot is held to the matrix's size, which keeps the class names beside their rows and
        # under their columns (not at the far left or the bottom of the dock) and the title on the matrix.
        # Refitted when the viewport is resized (see eventFilter) and when the axes or title change size.
        self._plot.vb.sigResized.connect(self._fit_plot)
        # Before the first matrix a one-line hint stands in for the (empty) axes.
        self._hint_label = plot_hint(empty_hint)
        self._stack = QStackedLayout(self)
        self._stack.setContentsMargins(0, 0, 0, 0)
        self._stack.addWidget(self._hint_label)
        self.per_class_table: PerClassTable | None = None
        self._splitter: QSplitter | None = None
        self._split_arranged = False
        if with_table:
            self.per_class_table = PerClassTable()
            self._splitter = QSplitter(Qt.Orientation.Vertical)
            self._splitter.setObjectName("ConfusionSplitter")
            self._splitter.setChildrenCollapsible(False)
            self._splitter.addWidget(self._canvas)
            self._splitter.addWidget(self.per_class_table)
            self._splitter.setStretchFactor(0, 3)  # the matrix keeps most of the room; the handle moves it
            self._splitter.setStretchFactor(1, 2)
            self._stack.addWidget(self._splitter)
        else:
            self._stack.addWidget(self._canvas)

        # Hover through an event filter: pyqtgraph's sigMouseMoved drops moves that come quickly after
        # another, so the mouse could come to rest on a cell with the previous cell's tooltip.
        self._canvas.viewport().installEventFilter(self)
        self._canvas.scene().sigMouseClicked.connect(self._on_scene_mouse_clicked)
        self._apply_style()
        self.clear()

    # ---- API ------------------------------------------------------------------------------------------

    def set_matrix(self, matrix: list[list[int]], class_names: list[str]) -> None:
        """Show ``matrix[true][predicted]`` (square, one row per class name)."""
        counts = np.asarray(matrix, dtype=np.int64).reshape(len(matrix), -1) if len(matrix) else np.zeros((0, 0))
        size = len(class_names)
        if counts.shape != (size, size):
            raise ValueError(f"the confusion matrix is {counts.shape[0]}×{counts.shape[1]} "
                             f"but there are {size} class names")
        resized = counts.shape != self._counts.shape
        renamed = [str(name) for name in class_names] != self._names
        self._counts = counts.astype(np.int64)
        self._names = [str(name) for name in class_names]
        self._redraw()
        if renamed:
            self._set_ticks()
        if resized:
            self._plot.setRange(xRange=(0, size), yRange=(0, size), padding=0.0)
        self._show_matrix(bool(size))

    def set_per_class(self, rows: list[dict]) -> None:
        """Fill the per-class table (rows as ``per_class_from_confusion`` gives them); needs ``with_table``."""
        if self.per_class_table is not None:
            self.per_class_table.set_rows(rows)

    def clear(self) -> None:
        """Back to the empty state: no matrix, the hint in its place (before the first epoch, a new project)."""
        self._counts = np.zeros((0, 0), dtype=np.int64)
        self._names = []
        self.set_per_class([])
        self._redraw()
        self._set_ticks()
        self._show_matrix(False)

    def hint(self) -> str:
        """The hint shown in place of the matrix, or "" while a matrix is shown."""
        return self._hint_label.text() if self._stack.currentWidget() is self._hint_label else ""

    def matrix(self) -> np.ndarray:
        """The counts shown (true × predicted)."""
        return self._counts.copy()

    def image(self) -> np.ndarray:
        """The cell colours as shown (classes × classes × 4, uint8)."""
        return self._rgba

    def count_texts(self) -> list[list[str]]:
        """The count written in each cell (true × predicted), or [] when the matrix is too large for counts."""
        texts = self._counts_item.texts()
        size = len(self._names)
        return [texts[row * size:(row + 1) * size] for row in range(size)] if texts else []

    def accuracy(self) -> float | None:
        total = int(self._counts.sum())
        return float(np.trace(self._counts)) / total if total else None

    def cell_text(self, true: int, predicted: int) -> str:
        """The hover text of a cell, e.g. "true 3, predicted 8: 12 samples"."""
        count = int(self._counts[true, predicted])
        return (f"true {self._names[true]}, predicted {self._names[predicted]}: "
                f"{count} sample{'s' * (count != 1)}")

    def cell_at(self, scene_pos: QPointF) -> tuple[int, int] | None:
        """(true, predicted) of the cell under a scene position, or None outside the matrix."""
        point = self._image.mapFromScene(scene_pos)
        row, column = math.floor(point.y()), math.floor(point.x())
        size = len(self._names)
        return (row, column) if 0 <= row < size and 0 <= column < size else None

    def cell_point(self, true: int, predicted: int) -> QPoint:
        """The centre of a cell in the viewport's pixels (to aim real mouse events at it)."""
        scene_pos = self._image.mapToScene(QPointF(predicted + 0.5, true + 0.5))
        return self._canvas.mapFromScene(scene_pos)

    def viewport(self) -> QWidget:
        """The widget that receives the mouse events."""
        return self._canvas.viewport()

    # ---- internals ------------------------------------------------------------------------------------

    def _redraw(self) -> None:
        size = len(self._names)
        empty = self.palette().color(QPalette.ColorRole.AlternateBase)
        self._rgba = _cell_colours(self._counts, self._colours, empty)
        if size:
            self._image.setImage(self._rgba, autoLevels=False, levels=(0, 255))
            self._image.setRect(0, 0, size, size)
        else:
            self._image.clear()
        self._update_counts()
        accuracy = self.accuracy()
        if accuracy is None:
            title = "Confusion matrix"
        else:
            right, total = int(np.trace(self._counts)), int(self._counts.sum())
            title = f"{self._accuracy_label} {accuracy:.1%} ({right} of {total})"
        if title != self._title:  # a new title re-lays out the plot: only when it reads differently
            self._title = title
            set_title(self._plot, self._colours, title)

    def _update_counts(self) -> None:
        size = len(self._names)
        if not size or size > MAX_CLASSES_WITH_COUNTS:
            self._counts_item.set_counts([], [], size)
            return
        # Three colours in all: zeros are muted so the eye goes to the counts that matter, the others are
        # black or white, whichever reads better on the cell.
        on_cell = [_text_colour(colour) for colour in self._rgba.reshape(-1, 4)]
        counts = self._counts.reshape(-1).tolist()
        colours = [self._colours.muted if count == 0 else colour for count, colour in zip(counts, on_cell, strict=True)]
        self._counts_item.set_counts([str(count) for count in counts], colours, size)

    def _set_ticks(self) -> None:
        step = max(1, math.ceil(len(self._names) / _MAX_TICKS))
        rows = [(index + 0.5, _shorten(name, 16)) for index, name in enumerate(self._names) if index % step == 0]
        columns = [(index + 0.5, _shorten(name, _SHORT_NAME)) for index, name in enumerate(self._names)
                   if index % step == 0]
        self._plot.getAxis("left").setTicks([rows, []])
        self._plot.getAxis("bottom").setTicks([columns, []])
        self._size_axes(rows, columns)

    def _size_axes(self, rows: list[tuple[float, str]], columns: list[tuple[float, str]]) -> None:
        """Fix the axes' room for the names now, as pyqtgraph would after painting them once.

        pyqtgraph learns how wide its tick labels are only when it paints
        them, then lays the plot out again: the cells moved for a few turns of
        the event loop after each new set of names (and after the hint gave way
        to the first matrix), so a click aimed at a cell could land beside it.
        """
        left, bottom = self._plot.getAxis("left"), self._plot.getAxis("bottom")
        font = left.style.get("tickFont") or plot_font(-1.0)
        metrics = QFontMetricsF(font)
        box = QRectF(0.0, 0.0, 100.0, 100.0)
        widest = max((metrics.boundingRect(box, Qt.AlignmentFlag.AlignCenter, text).width() for _, text in rows),
                     default=0.0)
        tallest = max((metrics.boundingRect(box, Qt.AlignmentFlag.AlignCenter, text).height() for _, text in columns),
                      default=0.0)
        offset_x, offset_y = _text_offsets(left)
        # pyqtgraph's own sum (AxisItem._updateWidth / _updateHeight): text, offset, tick, 0.8 of the label.
        left.setWidth(math.ceil(widest + offset_x + _label_room(left)) + 1)
        bottom.setHeight(math.ceil(tallest + offset_y + _label_room(bottom)) + 1)

    def _apply_style(self) -> None:
        self._colours = plot_colors(self.palette())
        self._title = ""  # redrawn below in the new colours
        self._canvas.setBackground(self._colours.background)
        style_plot(self._plot, self._colours)
        self._counts_item.set_font(plot_font(-1.0))
        for name in ("left", "bottom"):
            self._plot.getAxis(name).setPen(pg.mkPen(None))  # names only, no axis line beside the cells
            self._plot.getAxis(name).setStyle(tickLength=0)
        # After setPen, which would recolour the labels with the (invisible) axis pen.
        set_axis_label(self._plot, "left", "true class", self._colours)
        set_axis_label(self._plot, "bottom", "predicted class", self._colours)
        self._redraw()
        self._set_ticks()  # the axes' room follows the (new) font

    def _show_matrix(self, shown: bool) -> None:
        page = self._splitter if self._splitter is not None else self._canvas
        self._stack.setCurrentWidget(page if shown else self._hint_label)

    def resizeEvent(self, event: QEvent) -> None:
        super().resizeEvent(event)
        if self._splitter is not None:
            self._arrange_split()

    def _arrange_split(self) -> None:
        """Table beside the matrix in a wide view, under it in a tall one; the split set when that changes.

        Beside: the table gets the width its five columns read well in (at
        most half), the matrix the rest (its cells are square). Under:
        the matrix keeps most of the height. After that the handle is the
        person's; resizing keeps their proportions.
        """
        width, height = self.width(), self.height()
        # Beside it only where the matrix still gets a square as tall as the view next to most of the table.
        orientation = (Qt.Orientation.Horizontal if width >= height + _TABLE_WIDTH * 3 // 4
                       else Qt.Orientation.Vertical)
        if self._splitter.orientation() == orientation and self._split_arranged:
            return
        self._splitter.setOrientation(orientation)
        if orientation == Qt.Orientation.Horizontal:
            table = min(_TABLE_WIDTH, width // 2)
            self._splitter.setSizes([width - table, table])
        else:
            self._splitter.setSizes([height * 3 // 5, height - height * 3 // 5])
        self._split_arranged = True

    def _fit_plot(self) -> None:
        """Hold the plot to the square the cells fill in the space there is, plus its axes and title.

        The side comes from the space the canvas offers, not from the plot's
        current size: holding one dimension by the other's current size would
        lock both once the plot had been small.
        """
        view, plot = self._plot.vb, self._plot
        # Not the central item's geometry: the plot's maximum size caps that one too.
        margins = self._canvas.ci.layout.getContentsMargins()
        viewport = self._canvas.viewport().size()
        space = QRectF(0.0, 0.0, viewport.width() - margins[0] - margins[2], viewport.height() - margins[1] - margins[3])
        across = plot.width() - view.width()  # the row names and margins beside the cells
        down = plot.height() - view.height()  # the title above, the column names below
        side = max(0.0, min(space.width() - across, space.height() - down))
        title = self._plot.titleLabel.item.boundingRect().width()
        width = math.ceil(max(across + side, title + 16))
        height = math.ceil(down + side)
        if abs(plot.maximumWidth() - width) > 1:
            plot.setMaximumWidth(width)
        if abs(plot.maximumHeight() - height) > 1:
            plot.setMaximumHeight(height)

    def eventFilter(self, watched: QObject, event: QEvent) -> bool:
        if event.type() == QEvent.Type.Resize and watched is self._canvas.viewport():
            self._fit_plot()
        elif event.type() == QEvent.Type.MouseMove and watched is self._canvas.viewport():
            cell = self.cell_at(self._canvas.mapToScene(event.position().toPoint()))
            self._canvas.setToolTip("" if cell is None else self.cell_text(*cell))
        return super().eventFilter(watched, event)

    def _on_scene_mouse_clicked(self, event) -> None:  # pyqtgraph's MouseClickEvent
        if event.button() != Qt.MouseButton.LeftButton:
            return
        cell = self.cell_at(event.scenePos())
        if cell is not None:
            event.accept()
            self.cell_clicked.emit(*cell)

    def changeEvent(self, event: QEvent) -> None:
        if event.type() in (QEvent.Type.PaletteChange, QEvent.Type.ApplicationPaletteChange):
            self._apply_style()
        super().changeEvent(event)


def _cell_colours(counts: np.ndarray, colours: PlotColors, empty: QColor) -> np.ndarray:
    """Row-normalized shares blended from ``empty`` to blue on the diagonal and red off it.

    Mistakes use the square root of their share, so that 2 of 40 samples
    (5%) still shows as a visible tint rather than as an empty cell.
    """
    size = len(counts)
    rows = counts.sum(axis=1, keepdims=True)
    share = np.divide(counts, rows, out=np.zeros(counts.shape, dtype=float), where=rows > 0)
    diagonal = np.eye(size, dtype=bool)
    share = np.where(diagonal, share, np.sqrt(share))
    start = np.array(empty.getRgb()[:3], dtype=float)
    correct = np.array(colours.correct.getRgb()[:3], dtype=float)
    mistake = np.array(colours.mistake.getRgb()[:3], dtype=float)
    target = np.where(diagonal[..., None], correct, mistake)
    rgba = np.empty((size, size, 4), dtype=np.uint8)
    rgba[..., :3] = np.rint(start + (target - start) * share[..., None]).astype(np.uint8)
    rgba[..., 3] = 255
    return rgba


_DARK_TEXT = QColor("#111111")
_LIGHT_TEXT = QColor("#f5f5f5")


def _text_colour(rgba: np.ndarray) -> QColor:
    """Black or white, whichever reads better on the cell."""
    red, green, blue = (float(value) for value in rgba[:3])
    luminance = 0.299 * red + 0.587 * green + 0.114 * blue
    return _DARK_TEXT if luminance > 150 else _LIGHT_TEXT


def _text_offsets(axis: pg.AxisItem) -> tuple[float, float]:
    offset = axis.style["tickTextOffset"]
    return (float(offset[0]), float(offset[1])) if isinstance(offset, (list, tuple)) else (float(offset),) * 2


def _label_room(axis: pg.AxisItem) -> float:
    return axis.label.boundingRect().height() * 0.8 if axis.label.isVisible() else 0.0


def _shorten(name: str, limit: int) -> str:
    return name if len(name) <= limit else name[:limit - 1] + "…"

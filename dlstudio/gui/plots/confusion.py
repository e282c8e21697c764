"""Confusion matrix heatmap on the validation split: true classes in rows, predictions in columns.

One ImageItem holds all the cells (row-normalized: each row's colours show
where that class's samples went); counts are drawn as text up to 15×15.
Hovering a cell says what it counts; clicking it emits ``cell_clicked`` so
the owner can show those samples.
"""

from __future__ import annotations

import math

import numpy as np
import pyqtgraph as pg
from PySide6.QtCore import QEvent, QObject, QPoint, QPointF, Qt, Signal
from PySide6.QtGui import QColor, QPalette
from PySide6.QtWidgets import QVBoxLayout, QWidget

from dlstudio.gui.plots.style import PlotColors, plot_colors, plot_font, set_axis_label, set_title, style_plot

# Counts are written in the cells up to this many classes; beyond it they would not fit.
MAX_CLASSES_WITH_COUNTS = 15
# Column names longer than this are shortened on the bottom axis (the left axis and tooltips give them whole).
_SHORT_NAME = 5
# No more tick labels than this per axis; with more classes every k-th is labelled.
_MAX_TICKS = 30


class ConfusionView(QWidget):
    """A heatmap of ``matrix[true][predicted]`` counts with class names on both axes."""

    cell_clicked = Signal(int, int)  # (true class, predicted class)

    def __init__(self, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self._counts = np.zeros((0, 0), dtype=np.int64)
        self._names: list[str] = []
        self._rgba = np.zeros((0, 0, 4), dtype=np.uint8)
        self._colours = plot_colors(self.palette())

        self._canvas = pg.GraphicsLayoutWidget()
        self._canvas.ci.setContentsMargins(4, 4, 12, 4)
        self._plot = self._canvas.addPlot()
        self._plot.invertY(True)
        self._plot.setAspectLocked(True)
        self._plot.setMouseEnabled(False, False)
        self._plot.setMenuEnabled(False)
        self._plot.hideButtons()
        self._plot.vb.setDefaultPadding(0.0)
        self._image = pg.ImageItem(axisOrder="row-major")
        self._plot.addItem(self._image)
        self._texts: list[pg.TextItem] = []
        layout = QVBoxLayout(self)
        layout.setContentsMargins(0, 0, 0, 0)
        layout.addWidget(self._canvas)

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

    def clear(self) -> None:
        """No matrix (before the first validated epoch)."""
        self._counts = np.zeros((0, 0), dtype=np.int64)
        self._names = []
        self._redraw()
        self._set_ticks()

    def matrix(self) -> np.ndarray:
        """The counts shown (true × predicted)."""
        return self._counts.copy()

    def image(self) -> np.ndarray:
        """The cell colours as shown (classes × classes × 4, uint8)."""
        return self._rgba

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
        self._update_texts()
        accuracy = self.accuracy()
        if accuracy is None:
            title = "Confusion matrix"
        else:
            title = f"Validation accuracy {accuracy:.1%} ({int(np.trace(self._counts))} of {int(self._counts.sum())})"
        set_title(self._plot, self._colours, title)

    def _update_texts(self) -> None:
        size = len(self._names)
        wanted = size * size if size <= MAX_CLASSES_WITH_COUNTS else 0
        while len(self._texts) < wanted:  # the pool grows once to the largest matrix seen, then is reused
            text = pg.TextItem(anchor=(0.5, 0.5))
            text.setFont(plot_font(-1.0))
            self._plot.addItem(text)
            self._texts.append(text)
        for index, text in enumerate(self._texts):
            if index >= wanted:
                text.setVisible(False)
                continue
            row, column = divmod(index, size)
            text.setPos(column + 0.5, row + 0.5)
            count = int(self._counts[row, column])
            # Zeros are muted so the eye goes to the counts that matter.
            colour = self._colours.muted if count == 0 else _text_colour(self._rgba[row, column])
            text.setText(str(count), color=colour)
            text.setVisible(True)

    def _set_ticks(self) -> None:
        step = max(1, math.ceil(len(self._names) / _MAX_TICKS))
        rows = [(index + 0.5, _shorten(name, 16)) for index, name in enumerate(self._names) if index % step == 0]
        columns = [(index + 0.5, _shorten(name, _SHORT_NAME)) for index, name in enumerate(self._names)
                   if index % step == 0]
        self._plot.getAxis("left").setTicks([rows, []])
        self._plot.getAxis("bottom").setTicks([columns, []])

    def _apply_style(self) -> None:
        self._colours = plot_colors(self.palette())
        self._canvas.setBackground(self._colours.background)
        style_plot(self._plot, self._colours)
        for name in ("left", "bottom"):
            self._plot.getAxis(name).setPen(pg.mkPen(None))  # names only, no axis line beside the cells
            self._plot.getAxis(name).setStyle(tickLength=0)
        # After setPen, which would recolour the labels with the (invisible) axis pen.
        set_axis_label(self._plot, "left", "true class", self._colours)
        set_axis_label(self._plot, "bottom", "predicted class", self._colours)
        self._redraw()

    def eventFilter(self, watched: QObject, event: QEvent) -> bool:
        if event.type() == QEvent.Type.MouseMove and watched is self._canvas.viewport():
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


def _text_colour(rgba: np.ndarray) -> QColor:
    """Black or white, whichever reads better on the cell."""
    red, green, blue = (float(value) for value in rgba[:3])
    luminance = 0.299 * red + 0.587 * green + 0.114 * blue
    return QColor("#111111") if luminance > 150 else QColor("#f5f5f5")


def _shorten(name: str, limit: int) -> str:
    return name if len(name) <= limit else name[:limit - 1] + "…"

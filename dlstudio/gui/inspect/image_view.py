"""One numpy image in a pyqtgraph ImageItem: aspect locked, no axes, colour maps, hover and click by pixel.

The inspect views (feature maps, saliency, dreams) all show one small image
enlarged to fill their space; this is that widget. The image item is made
once and fed with ``setImage`` (design.md §6). Scalar images are coloured
here with a lookup table into RGBA, so that pixels outside the tiles of a
mosaic can be transparent and the widget's background shows through.
"""

from __future__ import annotations

import math

import numpy as np
import pyqtgraph as pg
from PySide6.QtCore import QEvent, QObject, QPoint, Qt, Signal
from PySide6.QtGui import QPalette
from PySide6.QtWidgets import QLabel, QStackedLayout, QWidget

# Colour maps offered for activations (perceptually uniform; grey for plain images).
COLORMAPS = {"viridis": "Viridis", "inferno": "Inferno", "grey": "Grey"}


def lookup_table(name: str) -> np.ndarray:
    """256 RGB uint8 entries of colour map ``name`` (one of :data:`COLORMAPS`) for values 0..1."""
    if name == "grey":
        ramp = np.arange(256, dtype=np.uint8)
        return np.stack([ramp, ramp, ramp], axis=1)
    if name not in COLORMAPS:
        raise ValueError(f"unknown colour map {name!r}; expected one of {', '.join(COLORMAPS)}")
    return np.asarray(pg.colormap.get(name).getLookupTable(nPts=256, alpha=False), dtype=np.uint8)


def colorize(values: np.ndarray, colormap: str, mask: np.ndarray | None = None) -> np.ndarray:
    """(H, W) values in [0, 1] as (H, W, 4) uint8 RGBA through ``colormap``; pixels where ``mask`` is False
    are transparent."""
    values = np.nan_to_num(np.asarray(values, dtype=np.float32), nan=0.0)
    index = np.clip(np.rint(values * 255.0), 0, 255).astype(np.intp)
    rgba = np.empty((*values.shape, 4), dtype=np.uint8)
    rgba[..., :3] = lookup_table(colormap)[index]
    rgba[..., 3] = 255 if mask is None else np.where(mask, 255, 0)
    return rgba


def raw_to_rgba(raw: np.ndarray) -> np.ndarray:
    """A raw image (C, H, W) in [0, 1], 1 or 3 channels, as (H, W, 4) uint8: grey for one channel, colour for 3."""
    raw = np.clip(np.nan_to_num(np.asarray(raw, dtype=np.float32)), 0.0, 1.0)
    if raw.ndim == 2:
        raw = raw[None]
    if raw.shape[0] == 1:
        return colorize(raw[0], "grey")
    rgba = np.empty((*raw.shape[1:], 4), dtype=np.uint8)
    rgba[..., :3] = np.rint(raw[:3].transpose(1, 2, 0) * 255.0).astype(np.uint8)
    rgba[..., 3] = 255
    return rgba


class ImageView(QWidget):
    """An RGBA image fitted into the widget with its aspect kept; a placeholder text when there is none.

    ``hovered(row, column)`` follows the mouse over image pixels (-1, -1 off
    the image); ``clicked(row, column)`` is a left click on a pixel.
    """

    hovered = Signal(int, int)
    clicked = Signal(int, int)

    def __init__(self, placeholder: str = "", parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self._rgba: np.ndarray | None = None
        self._view = pg.GraphicsView()
        self._box = pg.ViewBox(lockAspect=True, invertY=True, enableMenu=False)
        self._box.setMouseEnabled(False, False)  # the image always fits: no stray pans in a small dock
        self._box.setDefaultPadding(0.01)
        self._view.setCentralItem(self._box)
        self._image = pg.ImageItem(axisOrder="row-major")
        self._box.addItem(self._image)
        # Hover and clicks through an event filter: pyqtgraph's sigMouseMoved drops moves that follow quickly.
        self._view.viewport().installEventFilter(self)
        self._view.viewport().setMouseTracking(True)
        self._placeholder = QLabel(placeholder)
        self._placeholder.setAlignment(Qt.AlignmentFlag.AlignCenter)
        self._placeholder.setWordWrap(True)
        self._placeholder.setMargin(12)
        self._stack = QStackedLayout(self)
        self._stack.setContentsMargins(0, 0, 0, 0)
        self._stack.addWidget(self._placeholder)
        self._stack.addWidget(self._view)
        self.setMinimumSize(120, 120)
        self._apply_style()

    # ---- API ----------------------------------------------------------------------------------------

    def set_rgba(self, rgba: np.ndarray) -> None:
        """Show (H, W, 4) uint8 pixels; the view refits when the size changes."""
        rgba = np.ascontiguousarray(rgba, dtype=np.uint8)
        previous = None if self._rgba is None else self._rgba.shape
        self._rgba = rgba
        self._image.setImage(rgba, autoLevels=False, levels=(0, 255))
        if rgba.shape != previous:
            self._box.autoRange(padding=0.01)
        self._stack.setCurrentWidget(self._view)

    def set_placeholder(self, text: str) -> None:
        """Hide the image and say ``text`` instead (why there is nothing to show, or what to do)."""
        self._rgba = None
        self._image.clear()  # nothing of the old picture stays behind the placeholder
        self._placeholder.setText(text)
        self._stack.setCurrentWidget(self._placeholder)

    def image(self) -> np.ndarray | None:
        """The pixels shown (H, W, 4) uint8, or None while the placeholder is up."""
        return self._rgba

    def pixel_at(self, point: QPoint) -> tuple[int, int] | None:
        """(row, column) of the image pixel under viewport point ``point``, or None off the image."""
        if self._rgba is None:
            return None
        mapped = self._image.mapFromScene(self._view.mapToScene(point))
        row, column = math.floor(mapped.y()), math.floor(mapped.x())
        height, width = self._rgba.shape[:2]
        return (row, column) if 0 <= row < height and 0 <= column < width else None

    def viewport_point(self, row: int, column: int) -> QPoint:
        """The viewport point at the centre of pixel (row, column) (for tests that click a tile)."""
        scene = self._image.mapToScene(pg.Point(column + 0.5, row + 0.5))
        return self._view.mapFromScene(scene)

    def viewport(self) -> QWidget:
        return self._view.viewport()

    def set_tooltip(self, text: str) -> None:
        self._view.setToolTip(text)

    # ---- internals --------------------------------------------------------------------------------------

    def eventFilter(self, watched: QObject, event: QEvent) -> bool:
        if watched is self._view.viewport():
            if event.type() == QEvent.Type.MouseMove:
                pixel = self.pixel_at(event.position().toPoint())
                self.hovered.emit(*(pixel or (-1, -1)))
            elif event.type() == QEvent.Type.Leave:
                self.hovered.emit(-1, -1)
            elif (event.type() == QEvent.Type.MouseButtonPress
                  and event.button() == Qt.MouseButton.LeftButton):
                pixel = self.pixel_at(event.position().toPoint())
                if pixel is not None:
                    self.clicked.emit(*pixel)
        return super().eventFilter(watched, event)

    def resizeEvent(self, event) -> None:  # noqa: ANN001 - Qt override
        super().resizeEvent(event)
        if self._rgba is not None:
            self._box.autoRange(padding=0.01)

    def _apply_style(self) -> None:
        self._view.setBackground(self.palette().color(QPalette.ColorRole.Base))
        muted = self.palette().color(QPalette.ColorRole.PlaceholderText)
        self._placeholder.setStyleSheet(f"color: {muted.name()};")

    def changeEvent(self, event: QEvent) -> None:
        if event.type() in (QEvent.Type.PaletteChange, QEvent.Type.ApplicationPaletteChange):
            self._apply_style()
        super().changeEvent(event)

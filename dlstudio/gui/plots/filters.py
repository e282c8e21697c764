"""Learned convolution filters as one mosaic image, with a chooser for the layer (design.md §6).

The whole mosaic is a single ImageItem updated with ``setImage`` (64
separate items cost ~7× more per update); hovering a tile names it.
"""

from __future__ import annotations

import math
from collections.abc import Sequence

import numpy as np
import pyqtgraph as pg
from PySide6.QtCore import QEvent, QObject, Qt, Signal
from PySide6.QtGui import QPalette
from PySide6.QtWidgets import QComboBox, QHBoxLayout, QLabel, QStackedLayout, QVBoxLayout, QWidget

from dlstudio.core.mosaic import FilterMosaic, filter_mosaic
from dlstudio.gui.plots.mosaic import COLORMAPS, DIVERGING, mosaic_rgba
from dlstudio.gui.plots.style import plot_colors

_COLORMAP_LABELS = {"diverging": "Blue–red", "grey": "Grey"}
# What stands in for the mosaic. Only a network known to have no conv layer is said to have none.
UNKNOWN_HINT = "The filters of the network's convolution layers appear here."
NO_CONV_HINT = "This network has no convolution layer, so it has no filters to show."
TRAIN_HINT = "Train the network to watch {name}'s filters change."


class FiltersView(QWidget):
    """A conv layer's filters: out × in tiles of kh × kw pixels, each filter scaled on its own.

    ``layer_chosen(node_id)`` is emitted when the shown layer changes (the
    person picks one, or ``set_layers`` had to pick another); the owner then
    feeds that layer's weights with :meth:`set_weights`.

    The owner tells it the graph's conv layers as soon as it knows them (a
    project opened, the graph edited), before any run: the chooser then names
    them and the view says to train, rather than that there is no conv layer.
    """

    layer_chosen = Signal(str)

    def __init__(self, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self._weights: np.ndarray | None = None
        self._mosaic: FilterMosaic | None = None
        self._rgba: np.ndarray | None = None
        self._colormap = DIVERGING
        self._layers_known = False  # told the graph's conv layers (possibly none) since the last clear()

        self._layer_box = QComboBox()
        self._layer_box.setSizeAdjustPolicy(QComboBox.SizeAdjustPolicy.AdjustToContents)
        self._layer_box.setToolTip("Convolution layer whose filters are shown")
        self._layer_box.currentIndexChanged.connect(self._on_layer_box_changed)
        self._colormap_box = QComboBox()
        for name in COLORMAPS:
            self._colormap_box.addItem(_COLORMAP_LABELS[name], name)
        self._colormap_box.setToolTip("Blue–red: negative weights blue, positive red, zero white (per filter)")
        self._colormap_box.currentIndexChanged.connect(self._on_colormap_box_changed)
        self._details = QLabel()
        self._details.setMinimumWidth(0)
        self._details.setObjectName("FilterDetails")

        bar = QHBoxLayout()
        bar.setContentsMargins(6, 4, 6, 2)
        layer_label = QLabel("Layer")
        layer_label.setBuddy(self._layer_box)
        bar.addWidget(layer_label)
        bar.addWidget(self._layer_box)
        bar.addSpacing(8)
        bar.addWidget(self._details, 1)
        bar.addWidget(self._colormap_box)

        self._view = pg.GraphicsView()
        self._box = pg.ViewBox(lockAspect=True, invertY=True, enableMenu=False)
        self._box.setDefaultPadding(0.02)
        self._view.setCentralItem(self._box)
        self._image = pg.ImageItem(axisOrder="row-major")
        self._box.addItem(self._image)
        # Hover through an event filter: pyqtgraph's sigMouseMoved drops moves that follow another quickly.
        self._view.viewport().installEventFilter(self)
        self._placeholder = QLabel()
        self._placeholder.setAlignment(Qt.AlignmentFlag.AlignCenter)
        self._placeholder.setWordWrap(True)
        self._stack = QStackedLayout()
        self._stack.addWidget(self._placeholder)
        self._stack.addWidget(self._view)

        layout = QVBoxLayout(self)
        layout.setContentsMargins(0, 0, 0, 0)
        layout.setSpacing(0)
        layout.addLayout(bar)
        layout.addLayout(self._stack, 1)
        self._apply_style()
        self._layer_box.setEnabled(False)
        self._show_placeholder()

    # ---- API ------------------------------------------------------------------------------------------

    def set_layers(self, layers: Sequence[Sequence[str]]) -> None:
        """Offer these conv layers: ``(node id, name)`` or ``(node id, name, details)``, in graph order.

        The chooser shows the name (the person's node name, never the id);
        ``details`` (e.g. "6 filters, 5×5") is its tooltip. Keeps the current
        layer if its node id is still there (a rename changes only its name);
        an empty list says the network has no conv layer.
        """
        previous = self.current_layer()
        self._layers_known = True
        self._layer_box.blockSignals(True)
        self._layer_box.clear()
        for node_id, name, *details in layers:
            self._layer_box.addItem(str(name), str(node_id))
            if details and details[0]:
                self._layer_box.setItemData(self._layer_box.count() - 1, str(details[0]),
                                            Qt.ItemDataRole.ToolTipRole)
        index = self._layer_box.findData(previous) if previous is not None else -1
        self._layer_box.setCurrentIndex(index if index >= 0 else (0 if layers else -1))
        self._layer_box.blockSignals(False)
        self._layer_box.setEnabled(bool(layers))
        current = self.current_layer()
        if current != previous:
            self._weights = None
            self._show_placeholder()
            if current is not None:
                self.layer_chosen.emit(current)
        elif self._weights is None:
            self._show_placeholder()  # the hint names the layer as it is called now

    def clear(self) -> None:
        """Forget the layers and the weights without a claim about the network (a project switch).

        ``layer_chosen`` is not emitted; :meth:`set_layers` tells the new
        project's layers.
        """
        self._layers_known = False
        self._layer_box.blockSignals(True)
        self._layer_box.clear()
        self._layer_box.blockSignals(False)
        self._layer_box.setEnabled(False)
        self._weights = None
        self._show_placeholder()

    def current_layer(self) -> str | None:
        """The node id of the layer shown (None when there is no conv layer)."""
        data = self._layer_box.currentData()
        return None if data is None else str(data)

    def set_layer(self, node_id: str) -> None:
        """Show ``node_id`` (as if the person chose it); unknown ids are ignored."""
        index = self._layer_box.findData(node_id)
        if index >= 0:
            self._layer_box.setCurrentIndex(index)

    def set_weights(self, weights: np.ndarray) -> None:
        """Show these weights of the current layer: (out, in, kh, kw), or (out, in, k) for Conv1d."""
        self._weights = np.asarray(weights)
        self._render()

    def set_colormap(self, colormap: str) -> None:
        """``"diverging"`` (blue negative, red positive) or ``"grey"``; colour tiles (in == 3) are unaffected."""
        index = self._colormap_box.findData(colormap)
        if index < 0:
            raise ValueError(f"unknown colour map {colormap!r}; expected one of {', '.join(COLORMAPS)}")
        self._colormap_box.setCurrentIndex(index)

    def image(self) -> np.ndarray | None:
        """The mosaic as shown (height × width × 4, uint8), or None before any weights."""
        return None if self._mosaic is None else self._rgba

    def tile_text(self, row: int, column: int) -> str:
        """What hovering mosaic pixel (row, column) says, e.g. "filter 3, channel 2"; "" on a gap."""
        if self._mosaic is None:
            return ""
        tile = self._mosaic.tile_at(row, column)
        if tile is None:
            return ""
        filter_index, channel = tile
        text = f"filter {filter_index + 1}" if channel < 0 else f"filter {filter_index + 1}, channel {channel + 1}"
        if self._weights is not None:
            values = self._weights[filter_index] if channel < 0 else self._weights[filter_index, channel]
            text += f": weights {float(values.min()):.3g} to {float(values.max()):.3g}"
        return text

    # ---- internals ------------------------------------------------------------------------------------

    def _render(self) -> None:
        if self._weights is None:
            self._show_placeholder()
            return
        previous_shape = None if self._mosaic is None else self._mosaic.image.shape[:2]
        self._mosaic = filter_mosaic(self._weights)
        self._rgba = mosaic_rgba(self._mosaic, self._colormap)
        self._image.setImage(self._rgba, autoLevels=False, levels=(0, 255))
        if self._mosaic.image.shape[:2] != previous_shape:
            self._box.autoRange(padding=0.02)  # only on a new layout: a zoom the person chose survives updates
        filters, channels = self._mosaic.filters, self._mosaic.channels
        kh, kw = self._mosaic.kernel
        kernel = f"{kh}×{kw}" if kh > 1 else f"{kw}"
        self._details.setText(f"{filters} filter{'s' * (filters != 1)} × {channels} "
                              f"channel{'s' * (channels != 1)}, {kernel}")
        self._colormap_box.setEnabled(not self._mosaic.colour)
        self._stack.setCurrentWidget(self._view)

    def _show_placeholder(self) -> None:
        self._mosaic, self._rgba = None, None
        self._details.setText("")
        if self._layer_box.count():
            text = TRAIN_HINT.format(name=self._layer_box.currentText())
        else:
            text = NO_CONV_HINT if self._layers_known else UNKNOWN_HINT
        self._placeholder.setText(text)
        self._stack.setCurrentWidget(self._placeholder)

    def _on_layer_box_changed(self, _index: int) -> None:
        self._weights = None
        self._show_placeholder()
        current = self.current_layer()
        if current is not None:
            self.layer_chosen.emit(current)

    def _on_colormap_box_changed(self, _index: int) -> None:
        self._colormap = str(self._colormap_box.currentData())
        if self._weights is not None:
            self._render()

    def eventFilter(self, watched: QObject, event: QEvent) -> bool:
        if event.type() == QEvent.Type.MouseMove and watched is self._view.viewport():
            point = self._image.mapFromScene(self._view.mapToScene(event.position().toPoint()))
            self._view.setToolTip(self.tile_text(math.floor(point.y()), math.floor(point.x())))
        return super().eventFilter(watched, event)

    def _apply_style(self) -> None:
        colours = plot_colors(self.palette())
        # Zero weights are near white: a mid-grey backdrop in the light theme keeps the tiles' edges visible.
        backdrop = colours.background if colours.dark else self.palette().color(QPalette.ColorRole.Mid)
        self._view.setBackground(backdrop)
        self._details.setStyleSheet(f"color: {colours.muted.name(colours.muted.NameFormat.HexArgb)};")

    def changeEvent(self, event: QEvent) -> None:
        if event.type() in (QEvent.Type.PaletteChange, QEvent.Type.ApplicationPaletteChange):
            self._apply_style()
        super().changeEvent(event)

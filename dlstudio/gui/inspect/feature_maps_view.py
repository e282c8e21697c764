"""Feature maps: what one layer of the loaded model outputs for the current image.

Image-like outputs (C, H, W) are one mosaic of channel tiles in one image
item, coloured through a colour map; vector outputs (dense layers) are bars.
The maps are computed off the GUI thread whenever the image or the layer
changes (a newer request supersedes an older one); colour map and scaling
are re-applied on the GUI thread from the cached maps.
"""

from __future__ import annotations

from typing import Any

import numpy as np
import pyqtgraph as pg
from PySide6.QtCore import QEvent, QObject, Qt, Signal
from PySide6.QtGui import QFont
from PySide6.QtWidgets import QComboBox, QHBoxLayout, QLabel, QPushButton, QStackedLayout, QVBoxLayout, QWidget

from dlstudio.gui.inspect.image_view import COLORMAPS, ImageView, colorize
from dlstudio.gui.inspect.model_session import ModelSession
from dlstudio.gui.inspect.node_outputs import shape_text
from dlstudio.gui.inspect.sample_picker import SamplePicker
from dlstudio.gui.inspect.session_view import SessionView
from dlstudio.gui.plots.style import plot_colors, style_plot

_MAPS = "maps"
NO_MODEL = "Load a trained model to see its feature maps."


def compute_feature_maps(context: Any, trained: Any, raw: Any, node_id: str) -> np.ndarray:
    """The activations of ``node_id`` for a raw image (worker thread): (C, H, W) or (F,)."""
    import torch

    from dlstudio.core.inspect import feature_maps

    x = trained.preprocessor.normalize(torch.as_tensor(np.asarray(raw, dtype=np.float32)))
    return feature_maps(trained.model, x, node_id)


def _plural(count: int, word: str) -> str:
    return f"{count} {word}{'s' * (count != 1)}"


class FeatureMapsView(SessionView):
    """The activations of a chosen node for the session's current image.

    ``show_node(node_id)`` selects the layer (the window calls it when a
    canvas node is clicked); clicking a tile enlarges that channel.
    ``maps_shown(node_id)`` follows every completed update.
    """

    maps_shown = Signal(str)

    def __init__(self, session: ModelSession, parent: QWidget | None = None) -> None:
        super().__init__(session, parent)
        self._maps: np.ndarray | None = None
        self._maps_node: str | None = None
        self._mosaic: Any = None
        self._focused: int | None = None
        self._wanted_node: str | None = None

        self._layer_box = QComboBox()
        self._layer_box.setToolTip("The layer whose output is shown (or click its node on the canvas)")
        self._layer_box.setSizeAdjustPolicy(QComboBox.SizeAdjustPolicy.AdjustToContents)
        self._layer_box.currentIndexChanged.connect(self._on_layer_box_changed)
        self._scale_box = QComboBox()
        self._scale_box.addItem("Each channel", True)
        self._scale_box.addItem("All channels", False)
        self._scale_box.setToolTip("Each channel stretched to its own range, or all on one range to compare "
                                   "their strengths")
        self._scale_box.currentIndexChanged.connect(self._render)
        self._colormap_box = QComboBox()
        for name, label in COLORMAPS.items():
            self._colormap_box.addItem(label, name)
        self._colormap_box.currentIndexChanged.connect(self._render)
        self._back = QPushButton("All channels")
        self._back.setToolTip("Back to the grid of all channels (Esc)")
        self._back.clicked.connect(self.show_all_channels)
        self._back.setVisible(False)
        self._title = QLabel()
        title_font = QFont(self._title.font())
        title_font.setBold(True)
        self._title.setFont(title_font)
        self._title.setTextInteractionFlags(Qt.TextInteractionFlag.TextSelectableByMouse)
        self._status = QLabel()
        self._status.setWordWrap(True)
        self._status.setContentsMargins(6, 0, 6, 0)
        self._status.setVisible(False)

        controls = QHBoxLayout()
        controls.setContentsMargins(6, 4, 6, 0)
        for label, box in (("Layer", self._layer_box), ("Scale", self._scale_box), ("Colours", self._colormap_box)):
            text = QLabel(label)
            text.setBuddy(box)
            controls.addWidget(text)
            controls.addWidget(box)
            controls.addSpacing(6)
        controls.addStretch(1)
        heading = QHBoxLayout()
        heading.setContentsMargins(6, 2, 6, 2)
        self._title.setMinimumWidth(60)  # a long title is cut rather than widening the dock
        heading.addWidget(self._title, 1)
        # Beside the title, not among the controls: the controls row sets the dock's narrowest width.
        self.sample = SamplePicker(self)
        heading.addWidget(self.sample)
        heading.addWidget(self._back)

        self._image = ImageView(NO_MODEL)
        self._image.hovered.connect(self._on_image_hovered)
        self._image.clicked.connect(self._on_image_clicked)
        self._bars_plot = pg.PlotWidget()
        self._bars_plot.setMenuEnabled(False)
        self._bars_plot.setMouseEnabled(False, False)
        self._bars_plot.hideButtons()
        self._bars_plot.getPlotItem().setLabel("left", "activation")
        self._bars = pg.BarGraphItem(x=[], height=[], width=0.8)
        self._bars_plot.addItem(self._bars)
        self._bars_plot.viewport().installEventFilter(self)
        self._body = QStackedLayout()
        self._body.addWidget(self._image)
        self._body.addWidget(self._bars_plot)

        layout = QVBoxLayout(self)
        layout.setContentsMargins(0, 0, 0, 0)
        layout.setSpacing(2)
        layout.addLayout(controls)
        layout.addLayout(heading)
        layout.addWidget(self._status)
        layout.addLayout(self._body, 1)
        self._apply_style()
        self._set_enabled(False)

    # ---- API --------------------------------------------------------------------------------------------

    def show_node(self, node_id: str, name: str | None = None) -> bool:
        """Show ``node_id``'s output (the layer combo follows); False, with a note, if the model has no such node.

        ``name`` is what the person calls the node in the project (for that note: a node added after the run is
        not in the trained graph, so the view cannot know its name). Before a model is loaded the wish is kept
        and honoured when it arrives.
        """
        if not self.outputs:
            self._wanted_node = node_id
            return False
        index = self._layer_box.findData(node_id)
        if index < 0:
            self._set_status(f"{self._quoted_name(node_id, name)} is not a layer of the trained model (was it "
                             f"added after this run?)")
            return False
        self._set_status("")
        if index == self._layer_box.currentIndex():
            self._request_maps()  # e.g. the same node clicked again after its maps failed
        else:
            self._layer_box.setCurrentIndex(index)
        return True

    def current_node(self) -> str | None:
        data = self._layer_box.currentData()
        return None if data is None else str(data)

    def set_per_channel(self, per_channel: bool) -> None:
        """Scale each channel on its own (True) or all channels on one range (False)."""
        self._scale_box.setCurrentIndex(self._scale_box.findData(per_channel))

    def set_colormap(self, name: str) -> None:
        index = self._colormap_box.findData(name)
        if index < 0:
            raise ValueError(f"unknown colour map {name!r}; expected one of {', '.join(COLORMAPS)}")
        self._colormap_box.setCurrentIndex(index)

    def focus_channel(self, channel: int) -> None:
        """Enlarge one channel of the current maps."""
        if self._maps is not None and self._maps.ndim == 3 and 0 <= channel < len(self._maps):
            self._focused = channel
            self._render()

    def show_all_channels(self) -> None:
        self._focused = None
        self._render()

    @property
    def mosaic(self) -> Any:
        """The core :class:`~dlstudio.core.inspect.Mosaic` shown (None for bars or an enlarged channel)."""
        return self._mosaic if self._focused is None else None

    def maps(self) -> np.ndarray | None:
        """The activations shown: (C, H, W) or (F,)."""
        return self._maps

    def displayed_image(self) -> np.ndarray | None:
        """The RGBA pixels of the image shown (None when bars or a placeholder are shown)."""
        return self._image.image() if self._body.currentWidget() is self._image else None

    def bar_heights(self) -> np.ndarray | None:
        """The bar heights shown for a vector output."""
        return self._maps if self._maps is not None and self._maps.ndim == 1 else None

    def title(self) -> str:
        return self._title.text()

    def tile_text(self, row: int, column: int) -> str:
        """What hovering pixel (row, column) of the image says, e.g. "channel 3, max 2.41"."""
        if self._maps is None or self._maps.ndim != 3:
            return ""
        if self._focused is not None:
            channel = self._maps[self._focused]
            if 0 <= row < channel.shape[0] and 0 <= column < channel.shape[1]:
                return f"channel {self._focused}, row {row}, column {column}: {float(channel[row, column]):.3g}"
            return ""
        index = self._mosaic.tile_at(row, column) if self._mosaic is not None else None
        if index is None:
            return ""
        tile = self._maps[index]
        return f"channel {index}, max {float(tile.max()):.3g}, mean {float(tile.mean()):.3g}"

    def clear(self) -> None:
        """Drop the maps, the layer choices and any wish for a layer; running work stops (see SessionView)."""
        super().clear()
        self._wanted_node, self._maps_node = None, None
        self._clear(NO_MODEL)

    # ---- session hooks ---------------------------------------------------------------------------------

    def _on_loading(self) -> None:
        self._clear("Loading the model…")

    def _on_model_failed(self, message: str) -> None:
        self._clear(message)

    def _on_outputs(self) -> None:
        wanted = self._wanted_node or self.current_node()
        self._layer_box.blockSignals(True)
        self._layer_box.clear()
        for output in self.outputs:
            if not output.is_input:
                self._layer_box.addItem(f"{output.label} · {shape_text(output.shape)}", output.node_id)
        index = self._layer_box.findData(wanted) if wanted else -1
        if index < 0:  # the first layer with image output, or simply the first layer
            spatial = [output.node_id for output in self.outputs if output.spatial and not output.is_input]
            index = self._layer_box.findData(spatial[0]) if spatial else 0
        self._layer_box.setCurrentIndex(index)
        self._layer_box.blockSignals(False)
        self._wanted_node = None
        self._set_enabled(self._layer_box.count() > 0)
        self._request_maps()

    def _on_image(self) -> None:
        self._request_maps()

    def _on_request_failed(self, message: str) -> None:
        self._maps = None
        self._mosaic = None
        self._title.setText("")
        self._image.set_placeholder(message)
        self._body.setCurrentWidget(self._image)

    # ---- internals -------------------------------------------------------------------------------------------

    def _clear(self, message: str) -> None:
        self._maps, self._mosaic, self._focused = None, None, None
        self._bars.setOpts(x=[], height=[], width=0.8)
        self._back.setVisible(False)
        self._layer_box.clear()
        self._title.setText("")
        self._set_status("")
        self._set_enabled(False)
        self._image.set_placeholder(message)
        self._body.setCurrentWidget(self._image)

    def _set_status(self, text: str) -> None:
        self._status.setText(text)
        self._status.setVisible(bool(text))

    def _quoted_name(self, node_id: str, name: str | None) -> str:
        """The person's name for a node, quoted; never its id."""
        graph = self.session.trained.graph if self.session.is_loaded else None
        if name is None and graph is not None and node_id in graph:
            name = graph.node(node_id).name
        return f"“{name}”" if name else "This node"

    def _node_name(self) -> str:
        output = self.output(self._maps_node or "")
        return output.name if output is not None else ""

    def _set_enabled(self, enabled: bool) -> None:
        for widget in (self._layer_box, self._scale_box, self._colormap_box):
            widget.setEnabled(enabled)

    def _request_maps(self) -> None:
        node_id = self.current_node()
        if node_id is None or not self.session.is_loaded:
            return
        image = self.session.image
        if image is None:
            self._image.set_placeholder("Choose an image (Sample image, classify one, or drop one on the window) to "
                                        "see what each layer makes of it.")
            self._body.setCurrentWidget(self._image)
            return
        self.request(_MAPS, compute_feature_maps, image["raw"], node_id,
                     on_finished=lambda maps, node_id=node_id: self._on_maps(node_id, maps))

    def _on_maps(self, node_id: str, maps: np.ndarray) -> None:
        maps = np.asarray(maps)
        # The enlarged channel stays enlarged for a new image of the same layer.
        keep_focus = (self._focused is not None and node_id == self._maps_node and maps.ndim == 3
                      and self._focused < len(maps))
        self._focused = self._focused if keep_focus else None
        self._maps, self._maps_node = maps, node_id
        self._render()
        self.maps_shown.emit(node_id)

    def _render(self) -> None:
        if self._maps is None:
            return
        self._back.setVisible(self._focused is not None)
        self._scale_box.setEnabled(self._maps.ndim == 3)
        self._colormap_box.setEnabled(self._maps.ndim == 3)
        if self._maps.ndim == 1:
            self._render_bars()
        elif self._focused is not None:
            self._render_channel()
        else:
            self._render_mosaic()

    def _colormap(self) -> str:
        return str(self._colormap_box.currentData())

    def _render_mosaic(self) -> None:
        from dlstudio.core.inspect import channel_mosaic, tile

        per_channel = bool(self._scale_box.currentData())
        self._mosaic = channel_mosaic(self._maps, per_channel=per_channel)
        occupied = tile(np.ones((self._mosaic.count, *self._mosaic.tile_shape), dtype=np.float32),
                        self._mosaic.columns, self._mosaic.gap).image > 0
        self._image.set_rgba(colorize(self._mosaic.image, self._colormap(), occupied))
        self._body.setCurrentWidget(self._image)
        channels, height, width = self._maps.shape
        self._title.setText(f"{self._node_name()} · {_plural(channels, 'channel')} · {height}×{width}")

    def _render_channel(self) -> None:
        from dlstudio.core.inspect import scale_each

        channel = self._maps[self._focused]
        self._mosaic = None
        self._image.set_rgba(colorize(scale_each(channel[None])[0], self._colormap()))
        self._body.setCurrentWidget(self._image)
        height, width = channel.shape
        self._title.setText(f"{self._node_name()} · channel {self._focused} of {len(self._maps)} · {height}×{width}"
                            f" · max {float(channel.max()):.3g}")

    def _render_bars(self) -> None:
        self._mosaic = None
        values = self._maps
        self._bars.setOpts(x=np.arange(len(values)), height=values, width=0.8)
        self._bars_plot.getPlotItem().setXRange(-0.6, len(values) - 0.4, padding=0)
        low, high = min(0.0, float(values.min())), max(0.0, float(values.max()))
        self._bars_plot.getPlotItem().setYRange(low, high if high > low else low + 1.0, padding=0.05)
        self._body.setCurrentWidget(self._bars_plot)
        names = self.session.trained.class_names if self.session.is_loaded else []
        axis = self._bars_plot.getPlotItem().getAxis("bottom")
        output = self.output(self._maps_node or "")
        if output is not None and self._maps_node in self.session.trained.model.output_ids \
                and len(names) == len(values) and len(values) <= 20:
            axis.setTicks([list(enumerate(names))])
            unit = "classes"
        else:
            axis.setTicks(None)
            unit = "units"
        self._title.setText(f"{self._node_name()} · {len(values)} {unit} · max {float(values.max()):.3g}")

    def _on_layer_box_changed(self, _index: int) -> None:
        self._focused = None
        self._set_status("")
        self._request_maps()

    def _on_image_hovered(self, row: int, column: int) -> None:
        self._image.set_tooltip(self.tile_text(row, column))

    def _on_image_clicked(self, row: int, column: int) -> None:
        if self._focused is not None:
            return
        index = self._mosaic.tile_at(row, column) if self._mosaic is not None else None
        if index is not None:
            self.focus_channel(index)

    def keyPressEvent(self, event) -> None:  # noqa: ANN001 - Qt override
        if event.key() == Qt.Key.Key_Escape and self._focused is not None:
            self.show_all_channels()
            return
        super().keyPressEvent(event)

    def eventFilter(self, watched: QObject, event: QEvent) -> bool:
        if event.type() == QEvent.Type.MouseMove and watched is self._bars_plot.viewport() \
                and self.bar_heights() is not None:
            point = self._bars_plot.getPlotItem().vb.mapSceneToView(
                self._bars_plot.mapToScene(event.position().toPoint()))
            unit = int(round(point.x()))
            values = self.bar_heights()
            text = f"unit {unit}: {float(values[unit]):.3g}" if 0 <= unit < len(values) else ""
            self._bars_plot.setToolTip(text)
        return super().eventFilter(watched, event)

    def _apply_style(self) -> None:
        colours = plot_colors(self.palette())
        self._bars_plot.setBackground(colours.background)
        style_plot(self._bars_plot.getPlotItem(), colours)
        self._bars.setOpts(brush=pg.mkBrush(colours.train), pen=pg.mkPen(colours.train))
        self._status.setStyleSheet(f"color: {colours.mistake.name()};")

    def changeEvent(self, event: QEvent) -> None:
        if event.type() in (QEvent.Type.PaletteChange, QEvent.Type.ApplicationPaletteChange):
            self._apply_style()
        super().changeEvent(event)

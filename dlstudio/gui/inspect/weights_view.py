"""The loaded checkpoint's weights: filters of any conv layer, and weight and gradient histograms per layer.

Filters reuse the training view's :class:`~dlstudio.gui.plots.filters.FiltersView`
(RGB tiles for a first layer on colour images). Histograms are step plots
made once and fed with ``setData``. Gradients are those of the loss on one
batch of the run's validation data, or on the current image taken as its
predicted class; the plot says which.
"""

from __future__ import annotations

from typing import Any

import numpy as np
import pyqtgraph as pg
from PySide6.QtCore import QEvent, Qt, Signal
from PySide6.QtGui import QColor
from PySide6.QtWidgets import QComboBox, QHBoxLayout, QLabel, QSplitter, QVBoxLayout, QWidget

from dlstudio.gui.inspect.model_session import ModelSession
from dlstudio.gui.inspect.session_view import SessionView
from dlstudio.gui.plots.filters import FiltersView
from dlstudio.gui.plots.style import plot_colors, set_title, style_plot

VALIDATION = "validation"
IMAGE = "image"
_BATCH = 64
NO_MODEL = "Load a trained model to see its weights."
_WEIGHTS, _GRADIENTS = "weights", "gradients"


def checkpoint_weights(context: Any, trained: Any) -> dict[str, Any]:
    """Conv filters and weight histograms of every layer of the loaded model (worker thread)."""
    from dlstudio.core.inspect import conv_weight, weight_histograms

    model = trained.model
    conv = {}
    for node_id in trained.graph.topological_order():
        if trained.graph.node(node_id).type == "Conv2d":
            conv[node_id] = conv_weight(model, node_id)
    context.check()
    return {"conv": conv, "histograms": weight_histograms(model)}


def gradients(context: Any, trained: Any, source: str, raw: Any) -> dict[str, Any]:
    """Gradient histograms per layer from one validation batch or from the current image (worker thread)."""
    import torch

    from dlstudio.core.inspect import gradient_histograms, probabilities

    classifier = trained.task == "classification"
    if source == VALIDATION:
        x, y = next(iter(trained.validation_split().in_order(_BATCH)), (None, None))
        if x is None or len(x) == 0:
            raise ValueError("the run's validation split is empty")
        description = f"{len(x)} validation samples"
    else:
        x = trained.preprocessor.normalize(torch.as_tensor(np.asarray(raw, dtype=np.float32))).unsqueeze(0)
        y = probabilities(trained.model, x).argmax(dim=1) if classifier else None
        description = (f"the current image as its predicted “{_class_name(trained, int(y[0]))}”" if classifier
                       else "the current image")
    context.check()
    histograms = gradient_histograms(trained.model, x, y if classifier else None)
    return {"histograms": histograms, "description": description}


def _class_name(trained: Any, index: int) -> str:
    return trained.class_names[index] if index < len(trained.class_names) else str(index)


class WeightsView(SessionView):
    """Filters (conv layers) and weight/gradient histograms of one layer of the loaded checkpoint.

    ``show_node(node_id)`` picks the layer (the window calls it for canvas
    clicks); ``histograms_shown`` follows each histogram update.
    """

    histograms_shown = Signal()

    def __init__(self, session: ModelSession, parent: QWidget | None = None) -> None:
        super().__init__(session, parent)
        self._conv: dict[str, np.ndarray] = {}
        self._weight_histograms: dict[str, Any] = {}
        self._gradient_results: dict[str, dict[str, Any]] = {}
        self._gradient_error: dict[str, str] = {}

        self.filters = FiltersView()
        self.filters.layer_chosen.connect(self._on_filters_layer_chosen)

        self._layer_box = QComboBox()
        self._layer_box.setToolTip("The layer whose weights and gradients are shown")
        self._layer_box.setSizeAdjustPolicy(QComboBox.SizeAdjustPolicy.AdjustToContents)
        self._layer_box.currentIndexChanged.connect(self._on_layer_box_changed)
        self._source_box = QComboBox()
        self._source_box.addItem(f"One validation batch ({_BATCH})", VALIDATION)
        self._source_box.addItem("The current image", IMAGE)
        self._source_box.setToolTip("Where the gradients come from: the loss on a batch of the run's validation "
                                    "data, or on the current image taken as its predicted class")
        self._source_box.currentIndexChanged.connect(self._request_gradients)

        controls = QHBoxLayout()
        controls.setContentsMargins(6, 4, 6, 0)
        for text, box in (("Histograms of", self._layer_box), ("Gradients from", self._source_box)):
            label = QLabel(text)
            label.setBuddy(box)
            controls.addWidget(label)
            controls.addWidget(box)
            controls.addSpacing(6)
        controls.addStretch(1)

        self._plots = pg.GraphicsLayoutWidget()
        self._weights_plot = self._plots.addPlot(row=0, col=0)
        self._gradients_plot = self._plots.addPlot(row=0, col=1)
        self._curves = {}
        for kind, plot in ((_WEIGHTS, self._weights_plot), (_GRADIENTS, self._gradients_plot)):
            plot.setMenuEnabled(False)
            plot.setMouseEnabled(False, False)
            plot.hideButtons()
            plot.setLabel("left", "count")
            self._curves[kind] = plot.plot([0.0, 1.0], [0.0], stepMode="center", fillLevel=0)
        self._stats = QLabel()
        self._stats.setContentsMargins(6, 0, 6, 0)
        self._stats.setWordWrap(True)
        self._message = QLabel()
        self._message.setWordWrap(True)
        self._message.setContentsMargins(6, 0, 6, 0)
        self._message.setVisible(False)

        histograms = QWidget()
        histogram_layout = QVBoxLayout(histograms)
        histogram_layout.setContentsMargins(0, 0, 0, 0)
        histogram_layout.setSpacing(2)
        histogram_layout.addLayout(controls)
        histogram_layout.addWidget(self._stats)
        histogram_layout.addWidget(self._message)
        histogram_layout.addWidget(self._plots, 1)

        self._splitter = QSplitter(Qt.Orientation.Vertical)
        self._splitter.addWidget(self.filters)
        self._splitter.addWidget(histograms)
        self._splitter.setStretchFactor(0, 3)
        self._splitter.setStretchFactor(1, 2)
        self._splitter.setSizes([1, 1])  # proportions: half filters, half histograms
        self._splitter.setChildrenCollapsible(False)
        layout = QVBoxLayout(self)
        layout.setContentsMargins(0, 0, 0, 0)
        layout.addWidget(self._splitter)
        self._apply_style()
        self._clear(NO_MODEL)

    # ---- API ------------------------------------------------------------------------------------------------

    def show_node(self, node_id: str) -> bool:
        """Show ``node_id``'s histograms (and its filters if it is a conv layer); False if it has no weights."""
        index = self._layer_box.findData(node_id)
        if index < 0:
            return False
        self._layer_box.setCurrentIndex(index)
        return True

    def current_node(self) -> str | None:
        data = self._layer_box.currentData()
        return None if data is None else str(data)

    def set_gradient_source(self, source: str) -> None:
        """``"validation"`` (one batch of the run's validation data) or ``"image"`` (the current image)."""
        index = self._source_box.findData(source)
        if index < 0:
            raise ValueError(f"unknown gradient source {source!r}; expected {VALIDATION!r} or {IMAGE!r}")
        self._source_box.setCurrentIndex(index)

    def weight_histogram(self) -> tuple[np.ndarray, np.ndarray] | None:
        """(counts, edges) of the weight histogram shown."""
        histogram = self._weight_histograms.get(self.current_node() or "")
        return None if histogram is None else (histogram.counts, histogram.edges)

    def gradient_histogram(self) -> tuple[np.ndarray, np.ndarray] | None:
        """(counts, edges) of the gradient histogram shown, once computed."""
        result = self._gradient_results.get(self._source())
        histogram = None if result is None else result["histograms"].get(self.current_node() or "")
        return None if histogram is None else (histogram.counts, histogram.edges)

    def plot_titles(self) -> tuple[str, str]:
        return self._weights_plot.titleLabel.text, self._gradients_plot.titleLabel.text

    def clear(self) -> None:
        """Drop the histograms, the filters and the layer choices; running work stops (see SessionView)."""
        super().clear()
        self._clear(NO_MODEL)

    # ---- session hooks ------------------------------------------------------------------------------------------

    def _on_loading(self) -> None:
        self._clear("Loading the model…")

    def _on_model_failed(self, message: str) -> None:
        self._clear(message)

    def _on_outputs(self) -> None:
        self.request(_WEIGHTS, checkpoint_weights, on_finished=self._on_checkpoint_weights)

    def _on_image(self) -> None:
        if self._source() == IMAGE:
            self._gradient_results.pop(IMAGE, None)
            self._request_gradients()

    def _on_request_failed(self, message: str) -> None:
        self._set_message(message)

    # ---- internals -------------------------------------------------------------------------------------------------

    def _source(self) -> str:
        return str(self._source_box.currentData())

    def _clear(self, message: str) -> None:
        self._conv, self._weight_histograms = {}, {}
        self._gradient_results, self._gradient_error = {}, {}
        self._note = ""  # what the view says about the model as long as it is loaded
        self._layer_box.clear()
        self._layer_box.setEnabled(False)
        self._source_box.setEnabled(False)
        self.filters.clear()
        self.filters.setVisible(True)  # until the next model says whether it has conv layers
        for kind in self._curves:
            self._curves[kind].setData([0.0, 1.0], [0.0])
        self._set_titles("Weights", "Gradients")
        self._stats.setText("")
        self._set_message(message)

    def _set_message(self, text: str) -> None:
        self._message.setText(text)
        self._message.setVisible(bool(text))

    def _on_checkpoint_weights(self, result: dict[str, Any]) -> None:
        self._conv = result["conv"]
        self._weight_histograms = result["histograms"]
        labels = {output.node_id: output.label for output in self.outputs}
        self._layer_box.blockSignals(True)
        self._layer_box.clear()
        for output in self.outputs:
            if output.node_id in self._weight_histograms:
                self._layer_box.addItem(output.label, output.node_id)
        self._layer_box.blockSignals(False)
        self._layer_box.setEnabled(self._layer_box.count() > 0)
        self._source_box.setEnabled(self._layer_box.count() > 0)
        # Without a conv layer there are no filters: the histograms get the whole view, and a line says why.
        self.filters.setVisible(bool(self._conv))
        if not self._layer_box.count():
            self._set_message("This model has no layers with weights.")
        else:
            self._note = ("" if self._conv else "This network has no convolution layer, so no filters to show; "
                                                "these are its layers' weights.")
            self._set_message(self._note)
        # The filters view picks its first layer and asks for its weights through layer_chosen.
        self.filters.set_layers([(node_id, labels.get(node_id) or self._name(node_id)) for node_id in self._conv])
        self._layer_box.setCurrentIndex(0 if self._layer_box.count() else -1)
        self._on_layer_box_changed()

    def _on_filters_layer_chosen(self, node_id: str) -> None:
        if node_id in self._conv:
            self.filters.set_weights(self._conv[node_id])
        index = self._layer_box.findData(node_id)
        if index >= 0:
            self._layer_box.setCurrentIndex(index)

    def _on_layer_box_changed(self, _index: int = -1) -> None:
        node_id = self.current_node()
        if node_id is None:
            return
        if node_id in self._conv:
            self.filters.set_layer(node_id)
        self._render_weights()
        if self._source() in self._gradient_results:
            self._render_gradients()
        else:
            self._request_gradients()

    def _render_weights(self) -> None:
        node_id = self.current_node()
        histogram = self._weight_histograms.get(node_id or "")
        if histogram is None:
            return
        self._curves[_WEIGHTS].setData(histogram.edges, histogram.counts)
        self._weights_plot.enableAutoRange()
        set_title(self._weights_plot, plot_colors(self.palette()), f"Weights of {self._name(node_id)}")
        self._update_stats()
        self.histograms_shown.emit()

    def _request_gradients(self) -> None:
        if not self.session.is_loaded or self.current_node() is None:
            return
        source = self._source()
        if source in self._gradient_results:
            self._render_gradients()
            return
        image = self.session.image
        if source == IMAGE and image is None:
            self._set_gradient_title("Gradients (choose an image first)")
            return
        self._set_gradient_title("Gradients (computing…)")
        self.request(_GRADIENTS, gradients, source, None if image is None else image["raw"],
                     on_finished=lambda result, source=source: self._on_gradients(source, result),
                     on_failed=self._on_gradients_failed)

    def _on_gradients(self, source: str, result: dict[str, Any]) -> None:
        self._gradient_results[source] = result
        self._set_message(self._note)  # a failure's message goes; the standing note stays
        if source == self._source():
            self._render_gradients()

    def _on_gradients_failed(self, message: str) -> None:
        self._set_gradient_title("Gradients (not available)")
        hint = " Choose “The current image” instead." if self._source() == VALIDATION else ""
        self._set_message(f"No gradients: {message}.{hint}" if not message.endswith(".") else
                          f"No gradients: {message}{hint}")

    def _render_gradients(self) -> None:
        result = self._gradient_results[self._source()]
        node_id = self.current_node()
        histogram = result["histograms"].get(node_id or "")
        if histogram is None:
            self._curves[_GRADIENTS].setData([0.0, 1.0], [0.0])
            self._set_gradient_title(f"No gradient reaches {self._name(node_id)}")
            return
        self._curves[_GRADIENTS].setData(histogram.edges, histogram.counts)
        self._gradients_plot.enableAutoRange()
        self._set_gradient_title(f"Gradients of {self._name(node_id)}")
        self._update_stats()
        self.histograms_shown.emit()

    def _update_stats(self) -> None:
        """One line of numbers under the controls: the plots' titles stay short enough for a narrow dock."""
        node_id = self.current_node() or ""
        weights = self._weight_histograms.get(node_id)
        parts = []
        if weights is not None:
            parts.append(f"{int(weights.counts.sum()):,} weights · mean {weights.mean:.2g} · std {weights.std:.2g}")
        result = self._gradient_results.get(self._source())
        gradient = None if result is None else result["histograms"].get(node_id)
        if gradient is not None:
            parts.append(f"gradients on {result['description']}: std {gradient.std:.2g}")
        self._stats.setText(" · ".join(parts))

    def _set_gradient_title(self, text: str) -> None:
        set_title(self._gradients_plot, plot_colors(self.palette()), text)

    def _set_titles(self, weights: str, gradients_title: str) -> None:
        colours = plot_colors(self.palette())
        set_title(self._weights_plot, colours, weights)
        set_title(self._gradients_plot, colours, gradients_title)

    def _name(self, node_id: str | None) -> str:
        output = self.output(node_id or "")
        if output is not None:
            return output.name
        graph = self.session.trained.graph if self.session.is_loaded else None
        return graph.node(node_id).name if graph is not None and node_id in graph else "this layer"

    def _apply_style(self) -> None:
        colours = plot_colors(self.palette())
        self._plots.setBackground(colours.background)
        for kind, colour in ((_WEIGHTS, colours.train), (_GRADIENTS, colours.validation)):
            fill = QColor(colour)
            fill.setAlphaF(0.35)
            self._curves[kind].setPen(pg.mkPen(colour, width=1.5))
            self._curves[kind].setBrush(pg.mkBrush(fill))
        style_plot(self._weights_plot, colours)
        style_plot(self._gradients_plot, colours)
        self._message.setStyleSheet(f"color: {colours.muted.name(QColor.NameFormat.HexArgb)};")

    def changeEvent(self, event: QEvent) -> None:
        if event.type() in (QEvent.Type.PaletteChange, QEvent.Type.ApplicationPaletteChange):
            self._apply_style()
        super().changeEvent(event)

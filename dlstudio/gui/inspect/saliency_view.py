"""Where the model looks: Grad-CAM (conv models) or plain gradient saliency over the current image.

The heat map is computed off the GUI thread for the predicted class or a
chosen one; the blend with the image (opacity) is redone on the GUI thread
from the cached heat map, so the slider is instant.
"""

from __future__ import annotations

from typing import Any

import numpy as np
from PySide6.QtCore import Qt, Signal
from PySide6.QtGui import QColor, QFont
from PySide6.QtWidgets import QComboBox, QHBoxLayout, QLabel, QSlider, QVBoxLayout, QWidget

from dlstudio.gui.inspect.image_view import ImageView
from dlstudio.gui.inspect.model_session import ModelSession
from dlstudio.gui.inspect.sample_picker import SamplePicker
from dlstudio.gui.inspect.session_view import SessionView
from dlstudio.gui.plots.style import plot_colors

GRAD_CAM = "grad-cam"
SALIENCY = "saliency"
_HEAT = "heat"
NO_MODEL = "Load a trained model to see where it looks."
_NO_CONV = "Grad-CAM needs a convolutional layer (an output with height and width); this model has none."


def compute_heatmap(context: Any, trained: Any, raw: Any, method: str, target: int | None,
                    node_id: str | None) -> dict[str, Any]:
    """Heat map and class probabilities for a raw image (worker thread)."""
    import torch

    from dlstudio.core.inspect import grad_cam, probabilities, saliency

    x = trained.preprocessor.normalize(torch.as_tensor(np.asarray(raw, dtype=np.float32)))
    heat = grad_cam(trained.model, x, target, node_id) if method == GRAD_CAM else saliency(trained.model, x, target)
    context.check()
    probs = probabilities(trained.model, x.unsqueeze(0))[0].numpy()
    return {"values": heat.values, "target": heat.target, "probability": heat.probability,
            "node_id": heat.node_id, "probabilities": probs}


class SaliencyView(SessionView):
    """The current image with a Grad-CAM or saliency overlay; ``heatmap_shown`` follows every update."""

    heatmap_shown = Signal()

    def __init__(self, session: ModelSession, parent: QWidget | None = None) -> None:
        super().__init__(session, parent)
        self._result: dict[str, Any] | None = None
        self._raw: np.ndarray | None = None
        self._class_names: list[str] = []

        self._method_box = QComboBox()
        self._method_box.addItem("Grad-CAM", GRAD_CAM)
        self._method_box.addItem("Saliency", SALIENCY)
        self._method_box.setItemData(0, "Which regions of a conv layer's output raised the class score "
                                        "(coarse, class-specific)", Qt.ItemDataRole.ToolTipRole)
        self._method_box.setItemData(1, "How much each input pixel changes the class score (fine, noisy)",
                                     Qt.ItemDataRole.ToolTipRole)
        self._method_box.currentIndexChanged.connect(self._on_method_changed)
        self._layer_box = QComboBox()
        self._layer_box.setToolTip("The conv layer Grad-CAM looks at (the last one is usual: most meaning, "
                                   "enough resolution)")
        self._layer_box.setSizeAdjustPolicy(QComboBox.SizeAdjustPolicy.AdjustToContents)
        self._layer_box.currentIndexChanged.connect(self._request_heatmap)
        self._layer_label = QLabel("at")
        self._class_box = QComboBox()
        self._class_box.setToolTip("The class whose evidence is shown, with its probability for this image")
        self._class_box.setSizeAdjustPolicy(QComboBox.SizeAdjustPolicy.AdjustToContents)
        self._class_box.currentIndexChanged.connect(self._request_heatmap)
        self._opacity = QSlider(Qt.Orientation.Horizontal)
        self._opacity.setRange(0, 100)
        self._opacity.setValue(60)
        self._opacity.setFixedWidth(110)
        self._opacity.setToolTip("Opacity of the heat map over the image")
        self._opacity.valueChanged.connect(self._render)

        # Two rows: class names and layer labels are long, and the view often lives in a narrow dock.
        method_row = QHBoxLayout()
        method_row.setContentsMargins(6, 4, 6, 0)
        method_row.addWidget(self._method_box)
        method_row.addWidget(self._layer_label)
        method_row.addWidget(self._layer_box)
        method_row.addStretch(1)
        opacity_label = QLabel("Opacity")
        opacity_label.setBuddy(self._opacity)
        method_row.addWidget(opacity_label)
        method_row.addWidget(self._opacity)
        class_row = QHBoxLayout()
        class_row.setContentsMargins(6, 0, 6, 0)
        class_label = QLabel("Class")
        class_label.setBuddy(self._class_box)
        class_row.addWidget(class_label)
        class_row.addWidget(self._class_box)
        class_row.addSpacing(12)
        self.sample = SamplePicker(self)
        class_row.addWidget(self.sample)
        class_row.addStretch(1)

        self._title = QLabel()
        font = QFont(self._title.font())
        font.setBold(True)
        self._title.setFont(font)
        self._title.setContentsMargins(6, 2, 6, 0)
        self._note = QLabel()
        self._note.setWordWrap(True)
        self._note.setContentsMargins(6, 0, 6, 0)
        self._note.setVisible(False)
        self._image = ImageView(NO_MODEL)
        self._image.hovered.connect(self._on_image_hovered)

        layout = QVBoxLayout(self)
        layout.setContentsMargins(0, 0, 0, 0)
        layout.setSpacing(2)
        layout.addLayout(method_row)
        layout.addLayout(class_row)
        layout.addWidget(self._title)
        layout.addWidget(self._note)
        layout.addWidget(self._image, 1)
        self._apply_style()
        self._set_enabled(False)

    # ---- API ------------------------------------------------------------------------------------------

    def set_method(self, method: str) -> None:
        """``"grad-cam"`` or ``"saliency"``; Grad-CAM is refused (stays saliency) for models without conv layers."""
        index = self._method_box.findData(method)
        if index < 0:
            raise ValueError(f"unknown method {method!r}; expected {GRAD_CAM!r} or {SALIENCY!r}")
        if self._method_enabled(index):
            self._method_box.setCurrentIndex(index)

    def method(self) -> str:
        return str(self._method_box.currentData())

    def set_target(self, target: int | None) -> None:
        """Explain class ``target`` (an index), or the predicted class (None)."""
        index = self._class_box.findData(-1 if target is None else int(target))
        if index >= 0:
            self._class_box.setCurrentIndex(index)

    def set_cam_layer(self, node_id: str) -> None:
        index = self._layer_box.findData(node_id)
        if index >= 0:
            self._layer_box.setCurrentIndex(index)

    def cam_layer(self) -> str | None:
        data = self._layer_box.currentData()
        return None if data is None else str(data)

    def set_opacity(self, opacity: float) -> None:
        self._opacity.setValue(round(opacity * 100))

    def heatmap(self) -> np.ndarray | None:
        """The heat map shown, (H, W) in [0, 1] at the input's resolution."""
        return None if self._result is None else self._result["values"]

    def result(self) -> dict[str, Any] | None:
        """The last result: values, target, probability, node_id, probabilities."""
        return self._result

    def displayed_image(self) -> np.ndarray | None:
        return self._image.image()

    def title(self) -> str:
        return self._title.text()

    def note(self) -> str:
        return self._note.text()

    def grad_cam_available(self) -> bool:
        return self._method_enabled(self._method_box.findData(GRAD_CAM))

    def clear(self) -> None:
        """Drop the heat map and the layer and class choices; running work stops (see SessionView)."""
        super().clear()
        self._class_names = []
        self._clear(NO_MODEL)

    # ---- session hooks ------------------------------------------------------------------------------------

    def _on_loading(self) -> None:
        self._clear("Loading the model…")

    def _on_model_failed(self, message: str) -> None:
        self._clear(message)

    def _on_outputs(self) -> None:
        trained = self.session.trained
        self._class_names = list(trained.class_names)
        takes_images = len(trained.input_shape) == 3
        conv_layers = [output for output in self.outputs if output.spatial and not output.is_input]
        for widget in (self._method_box, self._layer_box, self._class_box):
            widget.blockSignals(True)
        self._layer_box.clear()
        for output in conv_layers:
            self._layer_box.addItem(output.label, output.node_id)
        self._layer_box.setCurrentIndex(len(conv_layers) - 1)  # the last one, as core's default_cam_node
        self._class_box.clear()
        self._class_box.addItem("Predicted", -1)
        for index, name in enumerate(self._class_names):
            self._class_box.addItem(name, index)
        self._set_method_enabled(self._method_box.findData(GRAD_CAM), bool(conv_layers) and takes_images,
                                 _NO_CONV)
        if not conv_layers:
            self._method_box.setCurrentIndex(self._method_box.findData(SALIENCY))
        for widget in (self._method_box, self._layer_box, self._class_box):
            widget.blockSignals(False)
        self._set_enabled(takes_images)
        self._show_layer_box()
        if not takes_images:
            self._image.set_placeholder("Saliency maps need a model with image input; this one takes "
                                        f"{list(trained.input_shape)}.")
            return
        self._set_note("" if conv_layers else _NO_CONV + " Showing gradient saliency.")
        self._request_heatmap()

    def _on_image(self) -> None:
        self._request_heatmap()

    def _on_request_failed(self, message: str) -> None:
        self._result = None
        self._title.setText("")
        self._image.set_placeholder(message)

    # ---- internals ----------------------------------------------------------------------------------------

    def _clear(self, message: str) -> None:
        self._result = None
        self._title.setText("")
        self._set_note("")
        self._layer_box.clear()
        self._class_box.clear()
        self._set_enabled(False)
        self._image.set_placeholder(message)

    def _set_enabled(self, enabled: bool) -> None:
        for widget in (self._method_box, self._layer_box, self._class_box, self._opacity):
            widget.setEnabled(enabled)

    def _set_note(self, text: str) -> None:
        self._note.setText(text)
        self._note.setVisible(bool(text))

    def _method_enabled(self, index: int) -> bool:
        return index >= 0 and self._method_box.model().item(index).isEnabled()

    def _set_method_enabled(self, index: int, enabled: bool, reason: str) -> None:
        item = self._method_box.model().item(index)
        item.setEnabled(enabled)
        item.setToolTip("" if enabled else reason)

    def _show_layer_box(self) -> None:
        cam = self.method() == GRAD_CAM
        self._layer_box.setVisible(cam)
        self._layer_label.setVisible(cam)

    def _on_method_changed(self, _index: int) -> None:
        self._show_layer_box()
        self._request_heatmap()

    def _request_heatmap(self) -> None:
        if not self.session.is_loaded or not self.outputs or self._class_box.count() == 0:
            return
        image = self.session.image
        if image is None:
            self._image.set_placeholder("Choose an image (Sample image, classify one, or drop one on the window) to "
                                        "see which parts of it decide the class.")
            return
        target = self._class_box.currentData()
        self._raw = np.asarray(image["raw"], dtype=np.float32)
        self.request(_HEAT, compute_heatmap, self._raw, self.method(), None if target in (None, -1) else int(target),
                     self.cam_layer() if self.method() == GRAD_CAM else None, on_finished=self._on_heatmap)

    def _on_heatmap(self, result: dict[str, Any]) -> None:
        self._result = result
        self._update_class_texts(result["probabilities"])
        self._render()
        self.heatmap_shown.emit()

    def _update_class_texts(self, probabilities: np.ndarray) -> None:
        predicted = int(np.argmax(probabilities))
        name = self._class_label(predicted)
        self._class_box.setItemText(0, f"Predicted: {name} ({probabilities[predicted]:.1%})")
        for index in range(len(probabilities)):
            row = self._class_box.findData(index)
            if row >= 0:
                self._class_box.setItemText(row, f"{self._class_label(index)} · {probabilities[index]:.1%}")

    def _class_label(self, index: int) -> str:
        return self._class_names[index] if 0 <= index < len(self._class_names) else f"class {index}"

    def _render(self) -> None:
        if self._result is None or self._raw is None:
            return
        from dlstudio.core.inspect import overlay

        pixels = overlay(self._raw, self._result["values"], self._opacity.value() / 100.0)
        rgba = np.empty((*pixels.shape[:2], 4), dtype=np.uint8)
        rgba[..., :3] = pixels
        rgba[..., 3] = 255
        self._image.set_rgba(rgba)
        result = self._result
        where = f"Grad-CAM at {self._node_name(result['node_id'])}" if result["node_id"] else "Saliency"
        label = self._class_label(result["target"])
        self._title.setText(f"{where} for “{label}” ({result['probability']:.1%})")
        empty = not np.any(result["values"] > 0)
        where_empty = f"at {self._node_name(result['node_id'])}" if result["node_id"] else "in the input"
        self._set_note(f"The map is empty: nothing {where_empty} raises the score of “{label}”. Try another layer "
                       "or Saliency." if empty else "" if self.grad_cam_available() else
                       _NO_CONV + " Showing gradient saliency.")

    def _node_name(self, node_id: str) -> str:
        output = self.output(node_id)
        return output.name if output is not None else "this layer"

    def _on_image_hovered(self, row: int, column: int) -> None:
        values = self.heatmap()
        inside = values is not None and 0 <= row < values.shape[0] and 0 <= column < values.shape[1]
        self._image.set_tooltip(f"row {row}, column {column}: heat {float(values[row, column]):.2f}"
                                if inside else "")

    def _apply_style(self) -> None:
        muted = plot_colors(self.palette()).muted
        self._note.setStyleSheet(f"color: {muted.name(QColor.NameFormat.HexArgb)};")

"""A "Sample image" button: a random image of the loaded run's validation data becomes the current image.

The feature maps and Grad-CAM views show what the model makes of *an* image; a student who has no picture
at hand gets one of the images the model was checked on, with its true class, in one click. The split is
prepared once per loaded model (``TrainedModel.validation_split``, on the session's worker, as the run made it).
"""

from __future__ import annotations

from typing import Any

import numpy as np
from PySide6.QtCore import Slot
from PySide6.QtWidgets import QHBoxLayout, QLabel, QPushButton, QWidget

from dlstudio.gui.inspect.session_view import SessionView

_KIND = "sample image"


def pick_validation_image(context: Any, trained: Any, seed: int) -> dict[str, Any]:
    """One validation image of ``trained``'s run as raw (C, H, W) values in [0, 1], its index and true class."""
    import torch

    from dlstudio.core.data.prepare import DataSplit
    from dlstudio.core.inspect import InspectError

    split = trained.validation_split()  # prepared once per model, shared with the other views
    context.check()
    if not isinstance(split, DataSplit):
        raise InspectError("this run's images are too many to hold in memory; open one of them instead")
    if len(split) == 0:
        raise InspectError("this run has no validation images (its validation fraction is 0)")
    index = int(np.random.default_rng(seed).integers(len(split)))
    if split.pixels:  # image folders keep uint8 pixels: raw values are the pixels / 255
        raw = split.stored[index].to(torch.float32) / 255.0
    else:
        raw = trained.preprocessor.denormalize(split.stored[index:index + 1].to(torch.float32)).clamp(0.0, 1.0)[0]
    label = int(split.y[index])
    name = trained.class_names[label] if label < len(trained.class_names) else str(label)
    return {"raw": raw.cpu().numpy(), "index": index, "count": len(split), "class": name}


class SamplePicker(QWidget):
    """The button and, before it, which image it picked ("validation image 17 of 269 · true class 3")."""

    def __init__(self, view: SessionView, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.view = view
        self.session = view.session
        self._draws = 0
        self.button = QPushButton("Sample image")
        self.button.setToolTip("Show a random image of the data this model was checked on (its validation "
                               "split), with its true class")
        self.button.clicked.connect(self.pick)
        self.caption = QLabel()
        self.caption.setMinimumWidth(40)  # a long caption is cut, never widens the dock (its tooltip has it whole)
        layout = QHBoxLayout(self)
        layout.setContentsMargins(0, 0, 0, 0)
        layout.addWidget(self.caption, 1)
        layout.addWidget(self.button)
        self.session.loading.connect(self._on_session_loading)
        self.session.unloaded.connect(self._on_session_unloaded)
        self.session.image_changed.connect(self._on_session_image_changed)
        self.button.setEnabled(self.session.is_loaded)
        self.session.model_loaded.connect(self._on_session_model_loaded)
        self._on_session_image_changed(self.session.image)  # made after a pick: says what is shown already

    def pick(self) -> bool:
        """Ask for the next random validation image; False without a model."""
        if not self.session.is_loaded:
            return False
        self._draws += 1
        self.caption.setText("picking…")
        task = self.view.request(_KIND, pick_validation_image, self._draws,
                                 on_finished=self._on_picked, on_failed=self._on_failed)
        return task is not None

    def _on_picked(self, result: dict[str, Any]) -> None:
        caption = f"validation image {result['index'] + 1} of {result['count']} · true class {result['class']}"
        self.session.set_image(result["raw"], None, caption)  # every view's picker shows the caption

    def _on_failed(self, message: str) -> None:
        self.caption.setText(message)

    @Slot(str)
    def _on_session_loading(self, _run_dir: str) -> None:
        self._on_session_unloaded()

    @Slot()
    def _on_session_unloaded(self) -> None:
        self.caption.setText("")
        self.button.setEnabled(False)

    @Slot(dict)
    def _on_session_model_loaded(self, _info: dict) -> None:
        self.button.setEnabled(True)

    @Slot(object)
    def _on_session_image_changed(self, image: object) -> None:
        # A sampled image's caption, whichever view sampled it; another image (a file) has none here.
        text = image.get("caption", "") if isinstance(image, dict) else ""
        self.caption.setText(text)
        self.caption.setToolTip(text)

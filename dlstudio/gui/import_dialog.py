"""File › Import Model: choose a network to bring in, then import it on a worker thread.

Three sources, one tab each: a torchvision architecture (optionally with its pretrained ImageNet
weights), a person's own ``nn.Module`` class (``package.module:Class`` or ``file.py:Class``), or an
ONNX file. The dialog only gathers an :class:`ImportRequest`; :func:`run_import` does the work (Qt-free,
so it runs on a :class:`~dlstudio.gui.worker.BackgroundTask`), and the window puts the result on the
canvas.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from PySide6.QtCore import Qt
from PySide6.QtWidgets import (QCheckBox, QDialog, QDialogButtonBox, QFileDialog, QFormLayout, QHBoxLayout, QLabel,
                               QLineEdit, QListWidget, QPushButton, QSpinBox, QTabWidget, QVBoxLayout, QWidget)

from dlstudio.gui.start_folders import MODELS, remember, start_folder

TORCHVISION, MODULE, ONNX = "torchvision", "module", "onnx"


@dataclass(frozen=True)
class ImportRequest:
    """What to import. ``source`` is a torchvision name, a ``module:Class`` spec or an ONNX file path."""

    kind: str
    source: str
    classes: int | None = None
    pretrained: bool = False
    input_shape: tuple[int, ...] = ()
    args: list[Any] = field(default_factory=list)
    kwargs: dict[str, Any] = field(default_factory=dict)

    @property
    def title(self) -> str:
        """How the person called it: the architecture, the class, or the file's name."""
        if self.kind == ONNX:
            return Path(self.source).name
        return self.source.rpartition(":")[2] if self.kind == MODULE else self.source


def pretrained_weights_name(model: str) -> str | None:
    """The name of torchvision's default pretrained weights for ``model`` (e.g. IMAGENET1K_V1), or None."""
    import torchvision

    try:
        weights = torchvision.models.get_model_weights(model)
    except (KeyError, ValueError):
        return None
    default = getattr(weights, "DEFAULT", None)
    return None if default is None else default.name


def run_import(context: Any, request: ImportRequest) -> Any:
    """Import ``request`` (on a worker thread); returns the ImportResult with the weights source set.

    Raises DlstudioError with one line when the model cannot be imported.
    """
    from dlstudio.core.importer import import_module_class, import_onnx, import_torchvision
    from dlstudio.core.project.pretrained import WeightsSource

    context.report(f"Importing {request.title}…", force=True)
    if request.kind == TORCHVISION:
        result = import_torchvision(request.source, num_classes=request.classes, opaque=True)
        if request.pretrained:
            weights = pretrained_weights_name(request.source)
            if weights is not None:
                result.project.set_weights(WeightsSource("torchvision", model=request.source, weights=weights,
                                                         key_map=dict(result.key_map)))
    elif request.kind == MODULE:
        result = import_module_class(request.source, args=list(request.args), kwargs=dict(request.kwargs),
                                     input_shape=request.input_shape)
    else:
        from dlstudio.core.importer.weights_file import imported_state, stash_weights

        result = import_onnx(request.source)
        context.check()
        # The file's own weights: kept in the user's data folder until the project is saved (then beside it).
        result.project.set_weights(stash_weights(imported_state(result), Path(request.source).name))
    context.check()
    return result


class ImportDialog(QDialog):
    """Asks what to import; :meth:`request` gives the answer after ``exec()`` returned Accepted."""

    def __init__(self, models: list[str], classes: int, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.setWindowTitle("Import Model")
        self.setMinimumWidth(520)
        self.tabs = QTabWidget()
        self.tabs.addTab(self._torchvision_tab(models, classes), "torchvision")
        self.tabs.addTab(self._module_tab(), "Your own module")
        self.tabs.addTab(self._onnx_tab(), "ONNX file")
        self.error = QLabel()
        self.error.setWordWrap(True)
        self.error.setStyleSheet("color: palette(link);")
        buttons = QDialogButtonBox(QDialogButtonBox.StandardButton.Ok | QDialogButtonBox.StandardButton.Cancel)
        buttons.button(QDialogButtonBox.StandardButton.Ok).setText("Import")
        buttons.accepted.connect(self._accept_if_valid)
        buttons.rejected.connect(self.reject)
        layout = QVBoxLayout(self)
        layout.addWidget(self.tabs)
        layout.addWidget(self.error)
        layout.addWidget(buttons)
        self._request: ImportRequest | None = None
        self.model_filter.setFocus()  # type to narrow the list at once

    # -- tabs --------------------------------------------------------------

    def _torchvision_tab(self, models: list[str], classes: int) -> QWidget:
        page = QWidget()
        self.model_filter = QLineEdit()
        self.model_filter.setPlaceholderText("Filter, e.g. resnet, mobilenet, efficientnet")
        self.model_filter.setClearButtonEnabled(True)
        self.model_list = QListWidget()
        self.model_list.addItems(models)
        if "resnet18" in models:
            self.model_list.setCurrentRow(models.index("resnet18"))
        self.model_list.itemDoubleClicked.connect(lambda _item: self._accept_if_valid())
        self.model_filter.textChanged.connect(self._filter_models)
        self.classes = QSpinBox()
        self.classes.setRange(2, 100_000)
        self.classes.setValue(max(2, classes))
        self.classes.setToolTip("Outputs of the classifier: the number of classes of your data")
        self.pretrained = QCheckBox("Start from pretrained ImageNet weights")
        self.pretrained.setChecked(True)
        self.pretrained.setToolTip("torchvision's weights, read from torch's cache when a run starts (downloaded "
                                   "there once if missing). The classifier layer is sized for your classes and "
                                   "starts from random weights.")
        form = QFormLayout()
        form.addRow("Classes:", self.classes)
        form.addRow("", self.pretrained)
        layout = QVBoxLayout(page)
        layout.addWidget(self.model_filter)
        layout.addWidget(self.model_list, 1)
        layout.addLayout(form)
        return page

    def _module_tab(self) -> QWidget:
        page = QWidget()
        self.module_spec = QLineEdit()
        self.module_spec.setPlaceholderText("package.module:Class  or  path/to/file.py:Class")
        browse = QPushButton("Browse…")
        browse.clicked.connect(self._browse_python_file)
        row = QHBoxLayout()
        row.addWidget(self.module_spec, 1)
        row.addWidget(browse)
        self.input_shape = QLineEdit("3, 224, 224")
        self.input_shape.setToolTip("The shape of one sample, without the batch: channels, height, width")
        self.module_args = QLineEdit()
        self.module_args.setPlaceholderText('constructor arguments as JSON: [10]  or  {"num_classes": 10}')
        note = QLabel("Importing runs that Python code: import only your own modules.")
        note.setWordWrap(True)
        form = QFormLayout(page)
        form.addRow("Class:", row)
        form.addRow("Input shape:", self.input_shape)
        form.addRow("Arguments:", self.module_args)
        form.addRow("", note)
        return page

    def _onnx_tab(self) -> QWidget:
        page = QWidget()
        self.onnx_path = QLineEdit()
        self.onnx_path.setPlaceholderText("model.onnx (opset 13 or newer)")
        browse = QPushButton("Browse…")
        browse.clicked.connect(self._browse_onnx)
        row = QHBoxLayout()
        row.addWidget(self.onnx_path, 1)
        row.addWidget(browse)
        form = QFormLayout(page)
        form.addRow("File:", row)
        form.addRow("", QLabel("The network and its weights are imported."))
        return page

    # -- behaviour -----------------------------------------------------------

    def _filter_models(self, text: str) -> None:
        words = text.lower().split()
        first_visible = None
        for row in range(self.model_list.count()):
            item = self.model_list.item(row)
            hidden = not all(word in item.text().lower() for word in words)
            item.setHidden(hidden)
            if not hidden and first_visible is None:
                first_visible = row
        current = self.model_list.currentItem()
        if (current is None or current.isHidden()) and first_visible is not None:
            self.model_list.setCurrentRow(first_visible)

    def _browse_python_file(self) -> None:
        path = QFileDialog.getOpenFileName(self, "A Python file with your model class", start_folder(MODELS),
                                           "Python (*.py)")[0]
        remember(MODELS, path)
        if path:
            current = self.module_spec.text()
            cls = current.rpartition(":")[2] if ":" in current else "Model"
            self.module_spec.setText(f"{path}:{cls}")

    def _browse_onnx(self) -> None:
        path = QFileDialog.getOpenFileName(self, "Import an ONNX model", start_folder(MODELS),
                                           "ONNX models (*.onnx)")[0]
        remember(MODELS, path)
        if path:
            self.onnx_path.setText(path)

    def _accept_if_valid(self) -> None:
        try:
            self._request = self._read()
        except ValueError as error:
            self.error.setText(str(error))
            return
        self.accept()

    def _read(self) -> ImportRequest:
        """The request the fields describe; ValueError with a sentence for the person when they do not."""
        kind = (TORCHVISION, MODULE, ONNX)[self.tabs.currentIndex()]
        if kind == TORCHVISION:
            item = self.model_list.currentItem()
            if item is None or item.isHidden():
                raise ValueError("Choose an architecture from the list.")
            return ImportRequest(TORCHVISION, item.text(), classes=self.classes.value(),
                                 pretrained=self.pretrained.isChecked())
        if kind == MODULE:
            spec = self.module_spec.text().strip()
            if ":" not in spec:
                raise ValueError("Give the class as package.module:Class or path/to/file.py:Class.")
            return ImportRequest(MODULE, spec, input_shape=parse_shape(self.input_shape.text()),
                                 **parse_arguments(self.module_args.text()))
        path = self.onnx_path.text().strip()
        if not path:
            raise ValueError("Choose an ONNX file.")
        return ImportRequest(ONNX, path)

    def request(self) -> ImportRequest | None:
        return self._request

    def select(self, kind: str) -> None:
        """Show the tab of ``kind`` (torchvision, module or onnx)."""
        self.tabs.setCurrentIndex((TORCHVISION, MODULE, ONNX).index(kind))


def parse_shape(text: str) -> tuple[int, ...]:
    """"3, 32, 32" -> (3, 32, 32); ValueError with a sentence otherwise."""
    parts = [part for part in text.replace("x", ",").replace(" ", ",").split(",") if part]
    try:
        shape = tuple(int(part) for part in parts)
    except ValueError:
        raise ValueError(f"Input shape: whole numbers separated by commas, e.g. 3, 224, 224 (got {text!r}).") \
            from None
    if not 1 <= len(shape) <= 3 or any(size < 1 for size in shape):
        raise ValueError("Input shape: one to three positive sizes, e.g. 3, 224, 224 or 784.")
    return shape


def parse_arguments(text: str) -> dict[str, Any]:
    """Constructor arguments: a JSON list (positional) or object (keywords); empty means none."""
    if not text.strip():
        return {}
    try:
        value = json.loads(text)
    except ValueError as error:
        raise ValueError(f"Arguments: not valid JSON ({error.args[0].split(':')[0]}).") from None
    if isinstance(value, list):
        return {"args": value}
    if isinstance(value, dict):
        return {"kwargs": value}
    return {"args": [value]}


def ask_import(parent: QWidget, models: list[str], classes: int) -> ImportRequest | None:
    """Show the dialog; the request, or None when the person cancelled."""
    dialog = ImportDialog(models, classes, parent)
    dialog.setWindowModality(Qt.WindowModality.WindowModal)
    try:
        return dialog.request() if dialog.exec() == QDialog.DialogCode.Accepted else None
    finally:
        dialog.deleteLater()

"""File › Export Model: write the trained network as ONNX, TorchScript, safetensors or a training script.

Every file that carries weights is checked as it is written (:func:`dlstudio.core.export.verified.
export_verified`: reloaded and compared with the model on random inputs and validation samples), and the
dialog shows that result; a file that does not match is removed and the reason shown. The work runs on a
worker thread; the dialog stays open to export again in another format.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any

from PySide6.QtCore import Qt, QUrl
from PySide6.QtGui import QDesktopServices
from PySide6.QtWidgets import (QComboBox, QDialog, QDialogButtonBox, QFileDialog, QFormLayout, QHBoxLayout, QLabel,
                               QLineEdit, QMessageBox, QPushButton, QVBoxLayout, QWidget)

from dlstudio.gui.start_folders import EXPORTS, remember, start_folder
from dlstudio.gui.theme import ERROR, HINT, set_tone
from dlstudio.gui.worker import BackgroundTask

# Format id -> (menu text, file suffix, what it is for).
FORMATS: dict[str, tuple[str, str, str]] = {
    "onnx": ("ONNX", ".onnx", "Runs with onnxruntime in any language; checked against onnxruntime."),
    "torchscript": ("TorchScript", ".pt", "Loads with torch.jit.load, without dlstudio or the model's code."),
    "safetensors": ("Weights (safetensors)", ".safetensors",
                    "The trained weights with class names, normalization and input shape in the file."),
    "python": ("Model code (Python)", ".py",
               "The network as one Python class that needs only torch; it holds no weights (its docstring shows "
               "how to load a run's safetensors export into it)."),
    "script": ("Training script (Python)", ".py",
               "A standalone script that trains this network on this data as dlstudio does."),
}
NEEDS_RUN = ("onnx", "torchscript", "safetensors")  # a run's weights, or the weights the project starts from
STARTING = "starting weights"  # the weights row's value for the project's starting weights (no run)
# What the result says when a preprocess.json beside the export was not replaced (write_preprocess keeps
# one only when its contents differ: it describes another model or run).
KEPT_PREPROCESS = ("preprocess.json beside it was kept: it describes another export (another model or run), not "
                   "this one. Export into a folder of its own, or replace the existing file, to get this one's.")


@dataclass(frozen=True)
class ExportRequest:
    """What to write: ``format`` (a FORMATS key), the run whose weights go in (None: none), and where.

    ``replace``: the person agreed to replace ``path``; a preprocess.json beside it that describes
    another model is then replaced too (otherwise it is kept and the result says so).
    """

    format: str
    run_dir: Path | None
    path: Path
    project_path: Path | None = None
    replace: bool = False
    class_name: str = "Model"  # the Python class of the model code
    starting_weights: Any = None  # the project's WeightsSource, exported when no run is chosen


def run_export(context: Any, request: ExportRequest, graph: dict[str, Any], data: dict[str, Any],
               training: dict[str, Any], description: str) -> list[str]:
    """Write and verify the export (on a worker thread); returns the lines the dialog shows.

    ``graph``, ``data`` and ``training`` are plain copies of the project's (used by the training script
    when no run is chosen). Raises DlstudioError (one line) when the export is refused.
    """
    from dlstudio.core.export.preprocess_info import check_export_target, write_preprocess
    from dlstudio.core.export.source import from_graph, from_run
    from dlstudio.core.graph import Graph

    context.report("Writing…", force=True)
    check_export_target(request.path)  # a planted link there refuses the export before anything is written
    if request.format == "python":
        return _write_model_code(request, Graph.from_dict(graph), data, training, description)
    if request.format == "script":
        from dlstudio.core.export.python_code import required_packages
        from dlstudio.core.export.training_script import export_training_script
        from dlstudio.core.safe_io import write_text

        where, changed = "the project's settings", None
        if request.run_dir is not None:
            from dlstudio.core.export.source import graph_hash
            from dlstudio.core.training.runs import validated_run_settings

            _, run_graph, data, training = validated_run_settings(request.run_dir, for_resume=False)
            where = f"the settings of run {request.run_dir.name}"
            if graph_hash(run_graph) != graph_hash(Graph.from_dict(graph)):
                changed = (f"Note: the network was changed after run {request.run_dir.name}: the script trains "
                           f"the network as that run had it (choose the project's settings for the changes).")
            graph = run_graph.to_dict()
        data = dict(data)
        if data.get("source") == "folder" and data.get("path") and request.project_path is not None \
                and not Path(data["path"]).expanduser().is_absolute():
            # The script may run from anywhere: a folder relative to the project is written out in full.
            data["path"] = str((request.project_path.parent / data["path"]).resolve())
        network = Graph.from_dict(graph)
        write_text(request.path, export_training_script(network, data, training, description=description))
        source = from_graph(network, data_settings=data, training_settings=training)
        _, written = write_preprocess(source, request.path, replace=request.replace)
        needs = ", ".join(required_packages(network, script=True))
        return [f"Wrote {request.path.name}: a standalone training script with {where} (needs {needs}). "
                f"Run: python {request.path.name} --help",
                "preprocess.json written beside it." if written else KEPT_PREPROCESS, *([changed] if changed else [])]
    from dlstudio.core.export.source import changed_since_run
    from dlstudio.core.export.verified import export_verified

    if request.run_dir is not None:
        source = from_run(request.run_dir)
    else:  # a network not trained here (an import), with the weights it starts from
        from dlstudio.core.export.source import from_starting_weights
        from dlstudio.core.project.model import Project

        source = from_starting_weights(Project(graph=Graph.from_dict(graph), data=dict(data),
                                               training=dict(training), weights=request.starting_weights,
                                               path=request.project_path))
    done = export_verified(source, request.format, request.path, replace_preprocess=request.replace)
    check = done.verification
    lines = [f"Wrote {request.path.name} with the {source.weights_text()}.",
             f"{'✓' if check.passed else '✗'} {check.text()[:1].upper()}{check.text()[1:]}."]
    lines.append("preprocess.json (input size, channels, normalization, class names) written beside it."
                 if done.preprocess_written else KEPT_PREPROCESS)
    changed = changed_since_run(Graph.from_dict(graph), source)
    if changed:
        lines.append(f"Note: {changed[:1].upper()}{changed[1:]}.")
    if source.starting_summary:
        lines.append(f"{source.starting_summary[:1].upper()}{source.starting_summary[1:]}.")
    return lines


def _write_model_code(request: ExportRequest, network: Any, data: dict[str, Any], training: dict[str, Any],
                      description: str) -> list[str]:
    """The model class as Python source, with preprocess.json beside it (from the chosen run, else the project)."""
    from dlstudio.core.export.preprocess_info import write_preprocess
    from dlstudio.core.export.python_code import export_python, required_packages
    from dlstudio.core.export.source import from_graph, from_run, graph_hash
    from dlstudio.core.safe_io import write_text

    write_text(request.path, export_python(network, class_name=request.class_name, description=description))
    if request.run_dir is not None:
        source = from_run(request.run_dir)
        weights = (f"Load run {request.run_dir.name}'s weights into it from a safetensors export of that run "
                   "(its docstring shows how).")
    else:
        source = from_graph(network, data_settings=data, training_settings=training)
        weights = "It starts from random weights."
    _, written = write_preprocess(source, request.path, replace=request.replace)
    lines = [f"Wrote {request.path.name}: class {request.class_name} (needs "
             f"{', '.join(required_packages(network))}). Try it with: python {request.path.name}",
             weights, "preprocess.json written beside it." if written else KEPT_PREPROCESS]
    if request.run_dir is not None and graph_hash(network) != graph_hash(source.graph):
        lines.append(f"Note: the network was changed after run {request.run_dir.name} was trained: this class is "
                     "the network as it is now, so that run's weights may not fit it (train again).")
    return lines


class ExportDialog(QDialog):
    """Choose the format, the run and the file; Export writes and verifies it and shows the result."""

    def __init__(self, project: Any, runs: list[tuple[str, Path]], parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.setWindowTitle("Export Model")
        self.setMinimumWidth(560)
        self.project = project
        self.task: BackgroundTask | None = None
        self.format_box = QComboBox()
        for key, (text, _suffix, _help) in FORMATS.items():
            self.format_box.addItem(text, key)
        self.format_help = QLabel()
        self.format_help.setWordWrap(True)
        set_tone(self.format_help, HINT)
        self.run_box = QComboBox()
        for label, run_dir in runs:
            self.run_box.addItem(label, str(run_dir))
        if project.weights is not None:  # an import not trained yet exports with the weights it came with
            self.run_box.addItem(f"The starting weights: {project.weights.describe()} (not trained here)", STARTING)
        self.run_box.addItem("None: the project's settings (training script, model code)", "")
        self.path_edit = QLineEdit()
        browse = QPushButton("Browse…")
        browse.clicked.connect(lambda _checked=False: self._browse())
        path_row = QHBoxLayout()
        path_row.addWidget(self.path_edit, 1)
        path_row.addWidget(browse)
        form = QFormLayout()
        form.addRow("Format:", self.format_box)
        form.addRow("", self.format_help)
        self.run_label = QLabel("Weights from:")
        form.addRow(self.run_label, self.run_box)
        form.addRow("File:", path_row)
        self.result_label = QLabel()
        self.result_label.setObjectName("export_result")
        self.result_label.setWordWrap(True)
        self.result_label.setTextInteractionFlags(Qt.TextInteractionFlag.TextSelectableByMouse)
        self.error_label = QLabel()
        self.error_label.setObjectName("export_error")
        self.error_label.setWordWrap(True)
        set_tone(self.error_label, ERROR)
        self.buttons = QDialogButtonBox(QDialogButtonBox.StandardButton.Close)
        self.export_button = self.buttons.addButton("Export", QDialogButtonBox.ButtonRole.ActionRole)
        self.export_button.setDefault(True)
        self.export_button.clicked.connect(lambda _checked=False: self.start_export())
        self.folder_button = self.buttons.addButton("Show in Folder", QDialogButtonBox.ButtonRole.ActionRole)
        self.folder_button.clicked.connect(lambda _checked=False: self._show_folder())
        self.folder_button.hide()
        self.buttons.rejected.connect(self.reject)
        layout = QVBoxLayout(self)
        layout.addLayout(form)
        layout.addWidget(self.result_label)
        layout.addWidget(self.error_label)
        layout.addStretch(1)
        layout.addWidget(self.buttons)
        self.format_box.currentIndexChanged.connect(lambda _index: self._format_changed())
        self.run_box.currentIndexChanged.connect(lambda _index: self._update_button())
        self.path_edit.textChanged.connect(lambda _text: self._update_button())
        self._written: Path | None = None
        self._confirmed: Path | None = None  # a file the person agreed to replace in the file dialog
        self._reason = ""  # why Export is disabled, as shown in the error line
        self._proposed = ""  # the file name the dialog proposed last (follows the format until edited)
        self._format_changed()

    @property
    def format(self) -> str:
        return str(self.format_box.currentData())

    def select_format(self, key: str) -> None:
        self.format_box.setCurrentIndex(list(FORMATS).index(key))

    def _run_dir(self) -> Path | None:
        value = self.run_box.currentData()
        return Path(value) if value and value != STARTING else None

    def _weights_chosen(self) -> bool:
        """A run's weights or the project's starting weights: what the weight formats carry."""
        return self._run_dir() is not None or self.run_box.currentData() == STARTING

    def _format_changed(self) -> None:
        text, suffix, help_text = FORMATS[self.format]
        self.format_help.setText(help_text)
        # A training script carries settings, not weights; by default the project's as they are now (as
        # 'dlstudio export --format script' does), so changes made since the last run are in it.
        self.run_label.setText({"script": "Settings from:", "python": "For run:"}.get(self.format, "Weights from:"))
        if self.format == "script":
            self.run_box.setCurrentIndex(self.run_box.count() - 1)
        elif not self._weights_chosen() and self.run_box.count() > 1:
            self.run_box.setCurrentIndex(0)
        path = self.path_edit.text().strip()
        if path and path != self._proposed:  # the person's own file name: only its suffix follows the format
            self.path_edit.setText(str(Path(path).with_suffix(suffix)))
        else:
            # Beside the project; an untitled one's where exports went last (else Documents).
            folder = self.project.path.parent if self.project.path is not None else Path(start_folder(EXPORTS))
            name = self.project.name + ("_train" if self.format == "script" else "")
            self._proposed = str(folder / f"{name}{suffix}")
            self.path_edit.setText(self._proposed)
        self._update_button()

    def _update_button(self) -> None:
        reason = ""
        if self.format in NEEDS_RUN and not self._weights_chosen():
            reason = ("Train the network first: this format carries a run's trained weights."
                      if self.run_box.count() == 1 else "Choose the run whose trained weights to export.")
        elif not self.path_edit.text().strip():
            reason = "Choose where to write the file."
        busy = self.task is not None
        self.export_button.setEnabled(not reason and not busy)
        self.export_button.setToolTip(reason)
        if reason and not busy:
            self.error_label.setText(reason)
        elif self.error_label.text() == self._reason:  # the reason no longer holds; a failure's message stays
            self.error_label.setText("")
        self._reason = reason

    def _browse(self) -> None:
        text, suffix, _ = FORMATS[self.format]
        path = QFileDialog.getSaveFileName(self, f"Export {text}", self.path_edit.text(), f"{text} (*{suffix})")[0]
        if path:
            remember(EXPORTS, path)
            self.path_edit.setText(path)
            self._confirmed = Path(path).expanduser()  # the file dialog asked before replacing it

    def start_export(self) -> bool:
        """Write the chosen export on a worker thread; the result arrives in the dialog."""
        if self.task is not None or not self.export_button.isEnabled():
            return False
        import copy

        path = Path(self.path_edit.text().strip()).expanduser()
        if path.is_dir():
            self.error_label.setText(f"Not exported: {path.name or path} is a folder; give a file name.")
            return False
        replace = path.is_file() and not path.is_symlink()  # a link is refused by the export, with its reason
        if replace and path != self._confirmed and not self._confirm_replace(path):
            return False
        from dlstudio.core.export.python_code import class_name_for

        request = ExportRequest(self.format, self._run_dir(), path, self.project.path, replace,
                                class_name_for(self.project.name),
                                self.project.weights if self.run_box.currentData() == STARTING else None)
        self.result_label.setText(f"Writing {request.path.name} and checking it…")
        self.error_label.setText("")
        self.folder_button.hide()
        self.task = BackgroundTask(run_export, request, copy.deepcopy(self.project.graph.to_dict()),
                                   copy.deepcopy(self.project.data), copy.deepcopy(self.project.training),
                                   self.project.description, parent=self)
        self.task.finished.connect(lambda lines: self._show_result(request.path, lines))
        self.task.failed.connect(self._show_failure)
        self.task.done.connect(self._task_done)
        self._update_button()
        self.task.start()
        return True

    def _confirm_replace(self, path: Path) -> bool:
        """Ask before replacing an existing file (and a preprocess.json beside it that describes another model)."""
        from dlstudio.core.export.preprocess_info import preprocess_path

        text = f"{path.name} already exists in {path.parent}. Replace it?"
        if preprocess_path(path).is_file() and preprocess_path(path) != path:
            text += "\n\nThe preprocess.json beside it is replaced too if it describes another model."
        answer = QMessageBox.question(self, "Replace file", text,
                                      QMessageBox.StandardButton.Yes | QMessageBox.StandardButton.Cancel,
                                      QMessageBox.StandardButton.Cancel)
        return answer == QMessageBox.StandardButton.Yes

    def _show_result(self, path: Path, lines: list[str]) -> None:
        self.result_label.setText("\n".join(lines))
        self._written = path
        self.folder_button.show()
        self._fit_text()

    def _show_failure(self, message: str) -> None:
        self.result_label.setText("")
        self.error_label.setText(f"Not exported: {message}")
        self._fit_text()

    def _fit_text(self) -> None:
        """Grow to show every line of the result (a word-wrapped label does not raise the window's minimum)."""
        layout = self.layout()
        width = self.width()
        needed = layout.totalHeightForWidth(width) if layout.hasHeightForWidth() else layout.sizeHint().height()
        if needed > self.height():
            self.resize(width, needed)

    def _task_done(self) -> None:
        if self.task is not None:
            self.task.deleteLater()
        self.task = None
        self._update_button()

    def _show_folder(self) -> None:
        if self._written is not None:
            QDesktopServices.openUrl(QUrl.fromLocalFile(str(self._written.parent)))

    def done(self, result: int) -> None:
        if self.task is not None:
            self.task.wait(60_000)  # an export takes seconds; the file is written whole or not at all
        super().done(result)

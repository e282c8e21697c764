"""Inspect › Evaluate: the loaded model on a labelled folder (one subfolder per class), scored by sklearn.metrics.

"Evaluate a labelled folder…" runs :func:`dlstudio.core.inspect.evaluate.evaluate_folder`
(the same figures as ``dlstudio evaluate``) on a worker thread through the
ModelSession, with progress and Cancel. The result shows accuracy and top-k
accuracy, the per-class table (sortable, the worst F1 in red), the confusion
matrix, and the misclassified files the model was surest of as thumbnails;
clicking one emits ``file_activated(path)`` (the Inspect dock opens it in
Classify). Files that could not be read, and a folder that cannot be
evaluated, are said in one line each.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from PySide6.QtCore import (
    QAbstractListModel,
    QEvent,
    QModelIndex,
    QObject,
    QPersistentModelIndex,
    QSize,
    Qt,
    Signal,
    Slot,
)
from PySide6.QtGui import QImage, QPalette
from PySide6.QtWidgets import (
    QFileDialog,
    QHBoxLayout,
    QLabel,
    QListView,
    QProgressBar,
    QPushButton,
    QSizePolicy,
    QSplitter,
    QStackedWidget,
    QVBoxLayout,
    QWidget,
)

from dlstudio.gui.inspect.model_session import ModelSession
from dlstudio.gui.inspect.thumbnails import scaled
from dlstudio.gui.plots.confusion import ConfusionView
from dlstudio.gui.plots.confusion_table import PerClassTable
from dlstudio.gui.start_folders import IMAGES, remember, start_folder
from dlstudio.gui.theme import ERROR, HINT, set_tone
from dlstudio.gui.worker import BackgroundTask, TaskContext

NO_MODEL = "Train a model or choose a run to evaluate it on a labelled folder"
READY = ("Evaluate a labelled folder (one subfolder of images per class, named after the model's classes) to "
         "see accuracy, per-class precision, recall and F1, the confusion matrix and the worst mistakes.")
TOP_K = 5
WORST = 24
THUMBNAIL = 56
# Skipped files are listed one line each up to this many; the rest are counted.
MAX_SKIPPED_SHOWN = 5
# Wider than tall by this much, the table, matrix and worst files sit side by side.
_TABLE_WIDTH = 360
# Side by side, the worst files want at least this much room (two or three thumbnails across).
_WORST_WIDTH = 220


# -- worker-thread job ------------------------------------------------------------------------------


def _evaluate_job(context: TaskContext, trained: Any, folder: str, top_k: int, worst: int) -> dict[str, Any]:
    """The evaluation as plain data, with thumbnails of the worst-classified files (QImage is thread-safe)."""
    from dlstudio.core.inspect.errors import InspectError
    from dlstudio.core.inspect.evaluate import evaluate_folder

    if trained.task != "classification" or not trained.preprocessor.takes_images:
        raise InspectError("this model does not classify images, so it cannot be evaluated on a folder")

    def progress(done: int, total: int) -> None:
        context.check()
        context.report({"done": done, "total": total}, force=done == total)

    evaluation = evaluate_folder(trained, folder, top_k=top_k, progress=progress)
    mistakes = evaluation.worst(worst)
    for mistake in mistakes:
        context.check()
        mistake["thumbnail"] = scaled(QImage(mistake["file"]), THUMBNAIL)
    # With no more classes than k, every image is right "in the top k": the figure says nothing (and sklearn
    # warns on stderr), so it is left out.
    top_k = evaluation.top_k if evaluation.top_k < len(evaluation.class_names) else None
    return {"folder": evaluation.folder, "images": len(evaluation.files), "accuracy": evaluation.accuracy,
            "top_k": top_k, "top_k_accuracy": evaluation.top_k_accuracy if top_k is not None else None,
            "per_class": evaluation.per_class(), "labels": [evaluation.class_names[i] for i in evaluation.labels],
            "confusion": evaluation.confusion(), "worst": mistakes, "skipped": list(evaluation.skipped)}


# -- the worst files ---------------------------------------------------------------------------------------


class WorstFilesModel(QAbstractListModel):
    """The misclassified files, surest mistakes first: thumbnail, "true → predicted" caption, path."""

    PATH_ROLE = Qt.ItemDataRole.UserRole

    def __init__(self, parent: Any = None) -> None:
        super().__init__(parent)
        self.mistakes: list[dict[str, Any]] = []

    def set_mistakes(self, mistakes: list[dict[str, Any]]) -> None:
        self.beginResetModel()
        self.mistakes = mistakes
        self.endResetModel()

    def rowCount(self, parent: QModelIndex | QPersistentModelIndex = QModelIndex()) -> int:
        return 0 if parent.isValid() else len(self.mistakes)

    def data(self, index: QModelIndex | QPersistentModelIndex, role: int = Qt.ItemDataRole.DisplayRole) -> Any:
        if not index.isValid():
            return None
        mistake = self.mistakes[index.row()]
        if role == Qt.ItemDataRole.DisplayRole:
            return f"{mistake['true']} → {mistake['predicted']}"
        if role == Qt.ItemDataRole.DecorationRole:
            return mistake.get("thumbnail")
        if role == Qt.ItemDataRole.ToolTipRole:
            return (f"{mistake['file']}\nclass {mistake['true']} taken for {mistake['predicted']} "
                    f"({mistake['predicted_probability']:.1%}; {mistake['true']}: {mistake['true_probability']:.1%})"
                    f"\nClick to open it in Classify")
        if role == self.PATH_ROLE:
            return mistake["file"]
        return None


# -- the view ------------------------------------------------------------------------------------------------


class EvaluateView(QWidget):
    """Evaluate the session's model on a labelled folder and show sklearn's figures for it."""

    file_activated = Signal(str)      # a worst-classified file was clicked: open it in Classify
    evaluated = Signal(dict)          # the result, once shown (tests and the window may follow it)

    def __init__(self, session: ModelSession, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.setObjectName("EvaluateView")
        self.session = session
        self.result: dict[str, Any] | None = None
        self._task: BackgroundTask | None = None
        self._folder = ""

        self.evaluate_button = QPushButton("Evaluate a labelled folder…")
        self.evaluate_button.setToolTip("Classify every image of a folder with one subfolder per class and score "
                                        "the model on it (as dlstudio evaluate does)")
        self.evaluate_button.clicked.connect(self._on_evaluate_clicked)
        self.progress = QProgressBar()
        self.progress.setFormat("%v / %m images")
        self.progress.setMinimumWidth(60)
        self.progress.hide()
        self.cancel_button = QPushButton("Cancel")
        self.cancel_button.clicked.connect(self.cancel)
        self.cancel_button.hide()
        controls = QHBoxLayout()
        controls.addWidget(self.evaluate_button)
        controls.addWidget(self.progress, 1)
        controls.addWidget(self.cancel_button)
        controls.addStretch(0)

        self.summary = QLabel()
        self.summary.setObjectName("evaluate_summary")
        font = self.summary.font()
        font.setBold(True)
        self.summary.setFont(font)
        self.summary.setTextInteractionFlags(Qt.TextInteractionFlag.TextSelectableByMouse)
        self.summary.setSizePolicy(QSizePolicy.Policy.Ignored, QSizePolicy.Policy.Preferred)  # never widens the dock
        self.errors = QLabel()
        self.errors.setObjectName("evaluate_errors")
        self.errors.setWordWrap(True)
        self.errors.setTextInteractionFlags(Qt.TextInteractionFlag.TextSelectableByMouse)
        self.errors.setSizePolicy(QSizePolicy.Policy.Ignored, QSizePolicy.Policy.Preferred)
        set_tone(self.errors, ERROR)
        self.errors.hide()

        self.per_class_table = PerClassTable()
        self.confusion = ConfusionView(accuracy_label="Accuracy", empty_hint="")
        self.confusion.setMinimumSize(120, 120)

        self.worst_title = QLabel()
        self.worst_title.setWordWrap(True)  # a long caption wraps rather than widening the dock
        self.worst_title.setMinimumWidth(60)
        self.worst_model = WorstFilesModel(self)
        self.worst_list = QListView()
        self.worst_list.setObjectName("EvaluateWorst")
        self.worst_list.setViewMode(QListView.ViewMode.IconMode)
        self.worst_list.setMovement(QListView.Movement.Static)
        self.worst_list.setResizeMode(QListView.ResizeMode.Adjust)
        self.worst_list.setWrapping(True)
        self.worst_list.setUniformItemSizes(True)
        self.worst_list.setIconSize(QSize(THUMBNAIL, THUMBNAIL))
        self.worst_list.setGridSize(QSize(THUMBNAIL + 40, THUMBNAIL + 24))
        self.worst_list.setModel(self.worst_model)
        self.worst_list.clicked.connect(self._on_worst_clicked)
        self.worst_list.setMinimumHeight(THUMBNAIL + 30)
        worst = QWidget()
        worst_layout = QVBoxLayout(worst)
        worst_layout.setContentsMargins(0, 4, 0, 0)
        worst_layout.addWidget(self.worst_title)
        worst_layout.addWidget(self.worst_list, 1)

        # The table beside the matrix; the worst files beside both in a wide dock, under them in a narrow one.
        self._figures = QSplitter(Qt.Orientation.Horizontal)
        self._figures.setChildrenCollapsible(False)
        self._figures.addWidget(self.per_class_table)
        self._figures.addWidget(self.confusion)
        self.results = QSplitter(Qt.Orientation.Vertical)
        self.results.setObjectName("EvaluateResults")
        self.results.setChildrenCollapsible(False)
        self.results.addWidget(self._figures)
        self.results.addWidget(worst)
        self._split_arranged = False

        self.message = QLabel()
        self.message.setAlignment(Qt.AlignmentFlag.AlignCenter)
        self.message.setWordWrap(True)
        self.message.setForegroundRole(QPalette.ColorRole.PlaceholderText)
        self.message.setMinimumWidth(60)
        self.stack = QStackedWidget()
        self.stack.addWidget(self.message)
        self.stack.addWidget(self.results)
        self.results.installEventFilter(self)  # its own size decides the panes' direction

        layout = QVBoxLayout(self)
        layout.setContentsMargins(6, 6, 6, 6)
        layout.addLayout(controls)
        layout.addWidget(self.summary)
        layout.addWidget(self.errors)
        layout.addWidget(self.stack, 1)

        session.loading.connect(self._on_session_changed)
        session.model_loaded.connect(self._on_session_changed)
        session.model_failed.connect(self._on_session_changed)
        session.unloaded.connect(self.clear)
        self.clear()

    # -- API ---------------------------------------------------------------------------------------

    @property
    def busy(self) -> bool:
        return self._task is not None

    def choose_folder(self) -> str:
        """Ask for the labelled folder (tests replace this); empty when cancelled."""
        folder = QFileDialog.getExistingDirectory(self, "Evaluate a labelled folder (one subfolder per class)",
                                                  start_folder(IMAGES))
        remember(IMAGES, folder)
        return folder

    def evaluate(self, folder: str | Path) -> bool:
        """Start evaluating ``folder`` with the loaded model; False (and why, in the view) if it cannot start."""
        self.cancel()
        if not self.session.is_loaded:
            self._show_errors(["No model is loaded: train the network or choose a run first."])
            return False
        self._folder = str(folder)
        self._show_errors([])
        self.summary.setText(f"Evaluating {Path(folder).name}…")
        self.summary.setToolTip(self._folder)
        self.progress.setRange(0, 0)  # busy until the first file is counted
        self.progress.show()
        self.cancel_button.show()
        self.evaluate_button.setEnabled(False)
        task = self.session.submit(_evaluate_job, self._folder, TOP_K, WORST)
        task.progress.connect(self._on_task_progress)
        task.finished.connect(self._on_task_finished)
        task.failed.connect(self._on_task_failed)
        task.cancelled.connect(self._on_task_cancelled)
        self._task = task
        return True

    def cancel(self) -> None:
        """Stop a running evaluation; what was shown before stays."""
        if self._task is not None:
            self._task.cancel()
            self._task = None
            self._end_running()
            self.summary.setText(self._summary_text(self.result) if self.result else "")

    def clear(self) -> None:
        """Show nothing of an earlier evaluation (another project or model)."""
        self.cancel()
        self.result = None
        self.summary.setText("")
        self.summary.setToolTip("")
        self._show_errors([])
        self.per_class_table.set_rows([])
        self.confusion.clear()
        self.worst_model.set_mistakes([])
        self._show_message(READY if self.session.is_loaded else NO_MODEL)
        self.evaluate_button.setEnabled(self.session.is_loaded)

    # -- internals ---------------------------------------------------------------------------------

    def eventFilter(self, watched: QObject, event: QEvent) -> bool:
        if watched is self.results and event.type() == QEvent.Type.Resize:
            self._arrange_split()
        return super().eventFilter(watched, event)

    def _arrange_split(self) -> None:
        """The panes follow the view's shape; their sizes are set when the direction changes, then are the person's."""
        width, height = self.results.width(), self.results.height()
        table = min(_TABLE_WIDTH, width * 2 // 5)
        # Wide enough for the table, a square matrix as tall as the view and a column of thumbnails.
        wide = width >= table + height + _WORST_WIDTH
        orientation = Qt.Orientation.Horizontal if wide else Qt.Orientation.Vertical
        if self.results.orientation() == orientation and self._split_arranged:
            return
        self.results.setOrientation(orientation)
        if wide:  # the table as wide as its columns need, the matrix about a square, the thumbnails the rest
            matrix = min(height + 60, (width - table) // 2)
            self._figures.setSizes([table, matrix])
            self.results.setSizes([table + matrix, width - table - matrix])
        else:
            table = min(_TABLE_WIDTH, width // 2)
            self._figures.setSizes([table, width - table])
            self.results.setSizes([height * 2 // 3, height - height * 2 // 3])
        self._split_arranged = True

    def _show_message(self, text: str) -> None:
        self.message.setText(text)
        self.stack.setCurrentWidget(self.message)

    def _show_errors(self, lines: list[str]) -> None:
        self.errors.setText("\n".join(lines))
        self.errors.setVisible(bool(lines))

    def _end_running(self) -> None:
        self.progress.hide()
        self.cancel_button.hide()
        self.evaluate_button.setEnabled(self.session.is_loaded)

    @staticmethod
    def _summary_text(result: dict[str, Any]) -> str:
        text = f"{Path(result['folder']).name}: {result['images']} images · accuracy {result['accuracy']:.1%}"
        if result.get("top_k") is None:  # no more classes than k: "top-k accuracy" would always be 100%
            return text
        return f"{text} · top-{result['top_k']} accuracy {result['top_k_accuracy']:.1%}"

    def _show_result(self, result: dict[str, Any]) -> None:
        self.result = result
        self.summary.setText(self._summary_text(result))
        self.summary.setToolTip(f"{result['folder']}: {result['images']} images classified, "
                                f"{len(result['skipped'])} skipped")
        self.per_class_table.set_rows(result["per_class"])
        self.confusion.set_matrix(result["confusion"], result["labels"])
        self.worst_model.set_mistakes(result["worst"])
        count = len(result["worst"])
        self.worst_title.setText(
            "No file was misclassified." if not count else
            f"The {count} worst-classified file{'s' * (count != 1)}, surest mistake first (click one to open it "
            f"in Classify):")
        set_tone(self.worst_title, HINT)
        skipped = result["skipped"]
        lines = [f"Skipped {Path(file).name} ({Path(file).parent.name}): {reason}"
                 for file, reason in skipped[:MAX_SKIPPED_SHOWN]]
        if len(skipped) > MAX_SKIPPED_SHOWN:
            lines.append(f"…and {len(skipped) - MAX_SKIPPED_SHOWN} more files skipped")
        self._show_errors(lines)
        self.stack.setCurrentWidget(self.results)

    # -- slots -------------------------------------------------------------------------------------

    @Slot()
    def _on_evaluate_clicked(self) -> None:
        folder = self.choose_folder()
        if folder:
            self.evaluate(folder)

    @Slot(object)
    def _on_task_progress(self, payload: dict[str, Any]) -> None:
        if self.sender() is self._task:
            self.progress.setRange(0, max(1, payload["total"]))
            self.progress.setValue(payload["done"])

    @Slot(object)
    def _on_task_finished(self, result: dict[str, Any]) -> None:
        if self.sender() is not self._task:
            return
        self._task = None
        self._end_running()
        self._show_result(result)
        self.evaluated.emit(result)

    @Slot(str)
    def _on_task_failed(self, message: str) -> None:
        if self.sender() is not self._task:
            return
        self._task = None
        self._end_running()
        self.summary.setText(self._summary_text(self.result) if self.result else "")
        self._show_errors([f"Cannot evaluate {Path(self._folder).name}: {message}"])

    @Slot()
    def _on_task_cancelled(self) -> None:
        if self.sender() is self._task:
            self._task = None
            self._end_running()

    @Slot(QModelIndex)
    def _on_worst_clicked(self, index: QModelIndex) -> None:
        path = index.data(WorstFilesModel.PATH_ROLE)
        if path:
            self.file_activated.emit(path)

    @Slot()
    def _on_session_changed(self, *_args: Any) -> None:
        """Another model (or none): an earlier evaluation no longer describes it."""
        self.clear()

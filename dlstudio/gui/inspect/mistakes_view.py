"""The Mistakes gallery: the validation images of one confusion-matrix cell, most confident first.

``show_cell(true, predicted)`` (the window calls it on a confusion-matrix
click) computes the cell on a worker thread through the ModelSession: the
run's validation split is prepared once and the model's predictions on it
are computed once per loaded model; every later cell is a lookup. The
gallery is one QListView in icon mode over a list model, so hundreds of
thumbnails cost no widgets. Activating a thumbnail (double-click, Enter)
emits ``image_activated(raw, label)`` for the classify view.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import numpy as np
from PySide6.QtCore import QAbstractListModel, QModelIndex, QPersistentModelIndex, QSize, Qt, Signal, Slot
from PySide6.QtGui import QImage, QPalette
from PySide6.QtWidgets import (QHBoxLayout, QLabel, QListView, QListWidget, QListWidgetItem, QPushButton,
                               QStackedWidget, QVBoxLayout, QWidget)

from dlstudio.gui.inspect.model_session import ModelSession
from dlstudio.gui.inspect.thumbnails import raw_to_qimage, scaled
from dlstudio.gui.worker import BackgroundTask, TaskContext

NO_MODEL = "Train a model or choose a run to see its mistakes"
CHOOSE_CELL = "Pick a pair below, or click a cell of the confusion matrix (Metrics), to see its validation images"
MAX_PAIRS = 20  # the most frequent confusions listed
LOADING = "Loading the model…"
THUMBNAIL = 64
# A diagonal cell of a large split can hold thousands of images; the most confident ones are enough to browse.
MAX_SHOWN = 500


# -- worker-thread job ------------------------------------------------------------------------------


def _cell_job(context: TaskContext, trained: Any, cache: dict[str, Any], true: int, predicted: int) -> dict[str, Any]:
    """The validation samples of (true, predicted), most confident first, as raw images and thumbnails.

    ``cache`` belongs to one loaded model: the split and its predictions are
    computed on the first call and reused (the session runs one job at a
    time, so no two jobs fill it at once).
    """
    _predict(context, trained, cache)
    split, predictions = cache["split"], cache["predictions"]
    members = predictions.cell(true, predicted)
    shown = members[:MAX_SHOWN]
    context.check()
    raws = trained.preprocessor.denormalize(split.x[shown]).clamp(0.0, 1.0).numpy() if len(shown) else np.empty(0)
    # QImage (unlike QPixmap) may be made off the GUI thread: the thumbnails arrive ready to show.
    thumbnails = [scaled(raw_to_qimage(raw), THUMBNAIL) for raw in raws]
    return {"true": true, "predicted": predicted, "count": len(members), "split_size": len(split),
            "indices": shown.tolist(), "confidence": predictions.confidence[shown].tolist(),
            "raws": list(raws), "thumbnails": thumbnails}


def _predict(context: TaskContext, trained: Any, cache: dict[str, Any]) -> None:
    """Fill ``cache`` with the run's validation split and the model's predictions on it (once per model)."""
    if "predictions" not in cache:
        from dlstudio.core.inspect import predict_split

        split = trained.validation_split()
        context.check()
        cache["split"] = split
        cache["predictions"] = predict_split(trained.model, split.x, split.y)


def _pairs_job(context: TaskContext, trained: Any, cache: dict[str, Any]) -> dict[str, Any]:
    """The most frequent confusions of the validation split: (true, predicted, count), most images first."""
    _predict(context, trained, cache)
    predictions = cache["predictions"]
    matrix = predictions.confusion(max(len(trained.class_names), int(predictions.true.max(initial=-1)) + 1,
                                       int(predictions.predicted.max(initial=-1)) + 1))
    off = matrix.copy()
    np.fill_diagonal(off, 0)
    pairs = sorted(((int(off[t, p]), int(t), int(p)) for t, p in zip(*np.nonzero(off))),
                   key=lambda item: (-item[0], item[1], item[2]))
    return {"pairs": [(t, p, count) for count, t, p in pairs[:MAX_PAIRS]], "pair_count": len(pairs),
            "total": int(matrix.sum()), "correct": int(np.trace(matrix))}


# -- the gallery model -----------------------------------------------------------------------------------


@dataclass(frozen=True)
class _Sample:
    index: int
    confidence: float
    raw: np.ndarray
    thumbnail: QImage


class GalleryModel(QAbstractListModel):
    """Thumbnails of validation samples with their confidence as the caption."""

    RAW_ROLE = Qt.ItemDataRole.UserRole
    INDEX_ROLE = Qt.ItemDataRole.UserRole + 1

    def __init__(self, parent: Any = None) -> None:
        super().__init__(parent)
        self.samples: list[_Sample] = []
        self.predicted_name = ""

    def rowCount(self, parent: QModelIndex | QPersistentModelIndex = QModelIndex()) -> int:
        return 0 if parent.isValid() else len(self.samples)

    def data(self, index: QModelIndex | QPersistentModelIndex, role: int = Qt.ItemDataRole.DisplayRole) -> Any:
        if not index.isValid():
            return None
        sample = self.samples[index.row()]
        if role == Qt.ItemDataRole.DisplayRole:
            return f"{sample.confidence:.0%}"
        if role == Qt.ItemDataRole.DecorationRole:
            return sample.thumbnail
        if role == Qt.ItemDataRole.ToolTipRole:
            return (f"validation sample #{sample.index}: predicted {self.predicted_name} "
                    f"with {sample.confidence:.1%} confidence")
        if role == self.RAW_ROLE:
            return sample.raw
        if role == self.INDEX_ROLE:
            return sample.index
        return None

    def set_samples(self, samples: list[_Sample], predicted_name: str) -> None:
        self.beginResetModel()
        self.samples = samples
        self.predicted_name = predicted_name
        self.endResetModel()


# -- the view ------------------------------------------------------------------------------------------------


class MistakesView(QWidget):
    """The validation images of one (true, predicted) cell as a gallery sorted by confidence.

    ``show_cell(true, predicted)`` fills it; ``image_activated(raw, label)``
    is emitted when a thumbnail is double-clicked (raw: (C, H, W) floats in
    [0, 1]; label: a short description for a card title).

    A cell asked for while no model is loaded, or while one is loading, is
    kept and carried out once the model is loaded (a click on the matrix
    often is what starts the load); a load never discards it. ``clear()``
    (and the session's ``unloaded``) drops it with everything else.
    """

    image_activated = Signal(object, str)
    cell_shown = Signal(dict)  # {"true", "predicted", "count"} once a cell's gallery is filled

    def __init__(self, session: ModelSession, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.session = session
        self.class_names: list[str] = []
        self.cell: tuple[int, int] | None = None
        self.count = 0
        self._cache: dict[str, Any] = {}
        self._cache_model: Any = None    # the model the cache's split predictions belong to
        self._task: BackgroundTask | None = None
        self._task_model: Any = None     # the model the running task computes with
        self._pending: tuple[int, int] | None = None  # asked for, waiting for a model to be loaded
        self._loading = False
        self._overview_task: BackgroundTask | None = None
        self._overview: dict[str, Any] | None = None  # the loaded model's most frequent confusions
        self.setObjectName("MistakesView")

        self.title = QLabel()
        font = self.title.font()
        font.setBold(True)
        font.setPointSizeF(font.pointSizeF() * 1.1)
        self.title.setFont(font)
        self.subtitle = QLabel()
        self.subtitle.setForegroundRole(QPalette.ColorRole.PlaceholderText)
        self.subtitle.setWordWrap(True)

        self.model = GalleryModel(self)
        self.gallery = QListView()
        self.gallery.setObjectName("MistakesGallery")
        self.gallery.setViewMode(QListView.ViewMode.IconMode)
        self.gallery.setMovement(QListView.Movement.Static)
        self.gallery.setResizeMode(QListView.ResizeMode.Adjust)
        self.gallery.setWrapping(True)
        self.gallery.setUniformItemSizes(True)
        self.gallery.setIconSize(QSize(THUMBNAIL, THUMBNAIL))
        self.gallery.setGridSize(QSize(THUMBNAIL + 16, THUMBNAIL + 26))
        self.gallery.setSpacing(4)
        self.gallery.setModel(self.model)
        self.gallery.activated.connect(self._on_gallery_activated)
        self.message = QLabel()
        self.message.setAlignment(Qt.AlignmentFlag.AlignCenter)
        self.message.setWordWrap(True)
        self.message.setForegroundRole(QPalette.ColorRole.PlaceholderText)
        # The overview, until a cell is chosen: the pairs of classes the model mixes up most, each a link to its
        # gallery (the confusion matrix itself is in the Metrics dock, which shares this dock's place).
        self.pairs = QListWidget()
        self.pairs.setObjectName("MistakesPairs")
        self.pairs.itemActivated.connect(self._on_pair_chosen)
        self.pairs.itemClicked.connect(self._on_pair_chosen)
        self.overview_caption = QLabel()
        self.overview_caption.setWordWrap(True)
        overview = QWidget()
        overview_layout = QVBoxLayout(overview)
        overview_layout.setContentsMargins(0, 0, 0, 0)
        overview_layout.addWidget(self.overview_caption)
        overview_layout.addWidget(self.pairs, 1)
        self.overview_page = overview
        self.stack = QStackedWidget()
        self.stack.addWidget(self.message)
        self.stack.addWidget(self.gallery)
        self.stack.addWidget(overview)
        self.back_button = QPushButton("All mistakes")
        self.back_button.setToolTip("Back to the list of the classes the model mixes up most")
        self.back_button.clicked.connect(self.show_overview)
        self.back_button.hide()

        heading = QHBoxLayout()
        heading.addWidget(self.title, 1)
        heading.addWidget(self.back_button)
        layout = QVBoxLayout(self)
        layout.setContentsMargins(6, 6, 6, 6)
        layout.addLayout(heading)
        layout.addWidget(self.subtitle)
        layout.addWidget(self.stack, 1)

        session.loading.connect(self._on_session_loading)
        session.model_loaded.connect(self._on_session_model_loaded)
        session.model_failed.connect(self._on_session_model_failed)
        session.unloaded.connect(self.clear)
        if session.is_loaded:
            self.class_names = list(session.trained.class_names)
        self.show_overview()

    @property
    def busy(self) -> bool:
        return self._task is not None

    @property
    def pending_cell(self) -> tuple[int, int] | None:
        """The cell asked for that waits for a model to be loaded, if any."""
        return self._pending

    def show_cell(self, true: int, predicted: int) -> None:
        """Show the validation images of class ``true`` that the model predicted as ``predicted``.

        Without a loaded model, or while one loads, the request waits and is carried out once a model is loaded.
        """
        self.cell = (int(true), int(predicted))
        self._cancel_task()  # a newer click supersedes it
        self.model.set_samples([], "")
        self.back_button.show()
        if self._loading or not self.session.is_loaded:
            self._pending = self.cell
            self._show_message(LOADING if self._loading else NO_MODEL, f"{self._cell_title()}: waiting for the model")
            return
        self._pending = None
        self._start(self.cell)

    def clear(self) -> None:
        """Show nothing: the gallery empties, a running or waiting cell request is dropped."""
        self._cancel_task()
        self._pending = None
        self.cell = None
        self.count = 0
        self.model.set_samples([], "")
        if not self.session.is_loaded:
            self.class_names = []
            self._cache, self._cache_model = {}, None
            self._forget_overview()
        self.show_overview()

    def show_overview(self) -> None:
        """The classes the model mixes up most, each opening its gallery (computed when the view is on screen)."""
        self._cancel_task()
        self._pending = None
        self.cell = None
        self.back_button.hide()
        if self._loading or not self.session.is_loaded:
            self._show_message(LOADING if self._loading else NO_MODEL)
            return
        if self._overview is not None:
            self._show_pairs(self._overview)
            return
        self._show_message(CHOOSE_CELL)
        if self.isVisible():
            self._start_overview()

    def showEvent(self, event: Any) -> None:  # noqa: N802 - Qt override
        super().showEvent(event)
        if self.cell is None and self._overview is None and self.session.is_loaded and not self._loading:
            self._start_overview()  # the tab was opened: now it is worth predicting the split

    def _start_overview(self) -> None:
        if self._overview_task is not None:
            return
        trained = self.session.trained
        if self._cache_model is not trained:
            self._cache, self._cache_model = {}, trained
        self._show_message("Predicting the validation split to find the classes mixed up most…")
        task = self.session.submit(_pairs_job, self._cache)
        task.finished.connect(self._on_overview_finished)
        task.failed.connect(self._on_overview_failed)
        self._overview_task = task

    def _forget_overview(self) -> None:
        if self._overview_task is not None:
            self._overview_task.cancel()
        self._overview_task, self._overview = None, None

    def _show_pairs(self, overview: dict[str, Any]) -> None:
        self.pairs.clear()
        total, correct = overview["total"], overview["correct"]
        if not overview["pairs"]:
            self._show_message(f"No mistakes: all {total} validation images are classified right. Click a cell of "
                               "the confusion matrix (Metrics) to see the images of a class.")
            return
        for true, predicted, count in overview["pairs"]:
            item = QListWidgetItem(f"true {self._name(true)} → predicted {self._name(predicted)}: "
                                   f"{count} image{'s' if count != 1 else ''}")
            item.setData(Qt.ItemDataRole.UserRole, (true, predicted))
            self.pairs.addItem(item)
        more = overview["pair_count"] - len(overview["pairs"])
        self.overview_caption.setText(
            f"{total - correct} of {total} validation images are misclassified; the pairs of classes mixed up most"
            f"{f' (and {more} more pairs)' if more > 0 else ''}. Click one to see its images, or a cell of the "
            "confusion matrix (Metrics).")
        self.title.setText("Most confused classes")
        self.title.show()
        self.subtitle.setText("")
        self.stack.setCurrentWidget(self.overview_page)

    @Slot(object)
    def _on_overview_finished(self, overview: dict[str, Any]) -> None:
        if self.sender() is not self._overview_task:
            return
        self._overview_task, self._overview = None, overview
        if self.cell is None and not self._loading:
            self._show_pairs(overview)

    @Slot(str)
    def _on_overview_failed(self, message: str) -> None:
        if self.sender() is not self._overview_task:
            return
        self._overview_task = None
        if self.cell is None:
            self._show_message(f"Could not predict the validation split: {message}")

    @Slot(QListWidgetItem)
    def _on_pair_chosen(self, item: QListWidgetItem) -> None:
        true, predicted = item.data(Qt.ItemDataRole.UserRole)
        self.show_cell(true, predicted)

    def _start(self, cell: tuple[int, int]) -> None:
        trained = self.session.trained
        if self._cache_model is not trained:  # a new model: its own split predictions (an old job fills the old dict)
            self._cache, self._cache_model = {}, trained
        self.title.setText(f"{self._cell_title()}: looking…")
        self.title.show()
        self.subtitle.setText("Predicting the validation split (once per model)…" if not self._cache else "")
        task = self.session.submit(_cell_job, self._cache, *cell)
        task.finished.connect(self._on_task_finished)
        task.failed.connect(self._on_task_failed)
        self._task, self._task_model = task, trained

    def _cancel_task(self) -> None:
        if self._task is not None:
            self._task.cancel()
        self._task, self._task_model = None, None

    def _name(self, index: int) -> str:
        return self.class_names[index] if 0 <= index < len(self.class_names) else str(index)

    def _cell_title(self) -> str:
        true, predicted = self.cell or (0, 0)
        return f"true {self._name(true)} → predicted {self._name(predicted)}"

    def _show_message(self, text: str, title: str = "") -> None:
        self.title.setText(title)
        self.title.setVisible(bool(title))
        self.subtitle.setText("")
        self.message.setText(text)
        self.stack.setCurrentWidget(self.message)

    @Slot(object)
    def _on_task_finished(self, result: dict[str, Any]) -> None:
        if self.sender() is not self._task:
            return
        self._task, self._task_model = None, None
        self.count = result["count"]
        true, predicted = result["true"], result["predicted"]
        samples = [_Sample(index, confidence, raw, thumbnail) for index, confidence, raw, thumbnail
                   in zip(result["indices"], result["confidence"], result["raws"], result["thumbnails"])]
        self.model.set_samples(samples, self._name(predicted))
        title = self._cell_title()
        if not self.count:
            what = "correctly classified" if true == predicted else f"predicted as {self._name(predicted)}"
            self._show_message(f"No validation image of class {self._name(true)} was {what}.",
                               f"{title}: no images")
        else:
            self.title.setText(f"{title}: {self.count} image{'s' if self.count != 1 else ''}")
            self.title.show()
            shown = "" if len(samples) == self.count else f"; the {len(samples)} most confident are shown"
            self.subtitle.setText(f"Most confident first, of {result['split_size']} validation images{shown}. "
                                  f"Double-click one to classify it.")
            self.stack.setCurrentWidget(self.gallery)
            self.gallery.scrollToTop()
        self.cell_shown.emit({"true": true, "predicted": predicted, "count": self.count})

    @Slot(str)
    def _on_task_failed(self, message: str) -> None:
        if self.sender() is self._task:
            self._task, self._task_model = None, None
            self._show_message(f"Could not compute this cell: {message}", self._cell_title())

    @Slot(QModelIndex)
    def _on_gallery_activated(self, index: QModelIndex) -> None:
        sample = self.model.samples[index.row()]
        true, predicted = self.cell or (0, 0)
        self.image_activated.emit(sample.raw, f"validation #{sample.index}: true {self._name(true)}, "
                                              f"predicted {self._name(predicted)} ({sample.confidence:.0%})")

    @Slot(str)
    def _on_session_loading(self, _run_dir: str) -> None:
        self._loading = True
        self._forget_overview()
        if self._task is not None:
            self._pending = self.cell  # asked for and not shown yet: carried out with the model that loads
        self._cancel_task()
        self.model.set_samples([], "")
        if self._pending is not None:
            self._show_message(LOADING, f"{self._cell_title()}: waiting for the model")
        else:
            self.cell = None
            self._show_message(LOADING)

    @Slot(dict)
    def _on_session_model_loaded(self, info: dict[str, Any]) -> None:
        self._loading = False
        self.class_names = list(info.get("class_names") or [])
        if self._task is not None and self._task_model is self.session.trained:
            return  # a cell asked for once this model was in place: it is being computed with it already
        pending = self._pending
        self._cancel_task()
        self._pending = None
        self.model.set_samples([], "")
        if pending is not None:
            self.cell = pending
            self._start(pending)
        else:
            self.count = 0
            self.show_overview()

    @Slot(str)
    def _on_session_model_failed(self, message: str) -> None:
        self._loading = False
        if self._pending is not None:  # kept: the next model that loads shows it
            self._show_message(f"The model could not be loaded: {message}", self._cell_title())
        elif not self.session.is_loaded:
            self._show_message(NO_MODEL)

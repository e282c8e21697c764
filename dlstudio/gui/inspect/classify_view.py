"""The Classify view: the person's own images through the trained model, as cards with top-k bars, or a folder table.

Images arrive by "Open images…", by dropping files or folders on the view,
by pasting (Ctrl+V), or from the window (``add_images``, ``add_image``,
``add_raw``). Each becomes a card at once ("Classifying…") and is filled in
when its batch comes back from the worker thread (``ModelSession.submit``):
the image at the model's input resolution, the original, and the top-k
classes as bars. Selecting a card makes it the session's current image, so
the other inspect views follow it.

A folder is classified into a sortable table with progress and Cancel; rows
arrive in batches (a report carries all rows since the previous one), so a
thousand files do not stall the GUI. Unreadable files are listed apart.
"""

from __future__ import annotations

import csv
import itertools
import os
import tempfile
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
from PySide6.QtCore import (
    QAbstractTableModel, QEvent, QModelIndex, QPersistentModelIndex, QRectF, QSize, QSortFilterProxyModel, Qt,
    QUrl, Signal, Slot,
)
from PySide6.QtGui import QColor, QFont, QFontMetrics, QImage, QKeySequence, QPainter, QPalette, QPen, QPixmap
from PySide6.QtWidgets import (
    QAbstractItemView, QApplication, QFileDialog, QFrame, QHBoxLayout, QHeaderView, QLabel, QListWidget,
    QProgressBar, QPushButton, QScrollArea, QSizePolicy, QSpinBox, QStackedWidget, QTableView, QTabWidget,
    QVBoxLayout, QWidget,
)

from dlstudio.gui.inspect.model_session import ModelSession
from dlstudio.gui.inspect.thumbnails import (
    pixels_to_qimage, qimage_to_array, raw_to_qimage, scaled, scaled_pixmap, to_pixels,
)
from dlstudio.gui.start_folders import EXPORTS, IMAGES, remember, start_folder, start_path
from dlstudio.gui.theme import DARK_CANVAS, LIGHT_CANVAS
from dlstudio.gui.worker import BackgroundTask, TaskContext

PLACEHOLDER = "Train a model or choose a run to classify images"
DROP_HINT = "Drop images or folders here, paste an image (Ctrl+V), or use Open images…"
FOLDER_HINT = "Classify a folder to list every image with its top class."
IMAGE_FILTER = "Images (*.png *.jpg *.jpeg *.bmp *.gif *.tif *.tiff *.webp);;All files (*)"
DEFAULT_TOP_K = 5
MAX_TOP_K = 20
# Cards are classified this many at a time: one forward pass each, and the first cards appear quickly.
CARD_BATCH = 32
FOLDER_BATCH = 64
MODEL_THUMBNAIL = 96    # the model's input, enlarged with whole nearest-neighbour pixels
ORIGINAL_THUMBNAIL = 48
TABLE_THUMBNAIL = 32
_ORIGINAL_PIXELS = 160  # the worker reduces originals to this before sending them to the GUI


# -- worker-thread jobs (torch is imported here, never at module level) ------------------------------


@dataclass(frozen=True)
class _Source:
    """One image to classify: a file path, or pixels (an array from a paste or another view)."""

    key: int
    name: str
    path: str | None = None
    pixels: np.ndarray | None = None
    replay: bool = True  # False: the pixels already are a model input (another view's image of the data)


def _original_pixels(path: str, size: int) -> np.ndarray:
    """The file reduced to at most ``size`` pixels a side, as (H, W) or (H, W, 3) uint8."""
    from PIL import Image

    with Image.open(path) as image:
        image.draft("RGB", (size, size))  # JPEG decodes at a reduced scale: cheap for large photos
        image.thumbnail((size, size))
        converted = image.convert("L" if image.mode in ("1", "L", "I", "I;16", "F") else "RGB")
        return np.asarray(converted, dtype=np.uint8).copy()


def _classify_sources(context: TaskContext, trained: Any, sources: list[_Source]) -> list[dict[str, Any]]:
    """Per source: its raw input (C, H, W), a small original, all class probabilities, or the reason it failed.

    Files go through ``classify_paths`` (the core's preprocessing and its
    reasons for unreadable files); pixels through the preprocessor. All
    classes are kept so that the top-k spin box needs no new pass. ``steps``
    says what the run's recipe did to make the picture look like the training
    data ("inverted to match the training data").
    """
    import torch

    from dlstudio.core.inspect.input_recipe import describe

    classes = max(1, len(trained.class_names))
    results: dict[int, dict[str, Any]] = {}
    files = [source for source in sources if source.path is not None]
    if files:
        outcomes = trained.classify_paths([source.path for source in files], top_k=classes,
                                          batch_size=FOLDER_BATCH)
        for source, outcome in zip(files, outcomes):
            context.check()
            if not outcome.ok:
                results[source.key] = {"error": outcome.error}
                continue
            raw = trained.preprocessor.raw(source.path).numpy()
            results[source.key] = {"raw": raw, "original": _original_pixels(source.path, _ORIGINAL_PIXELS),
                                   "probabilities": outcome.prediction.probabilities,
                                   "steps": describe(outcome.prediction.steps)}
    arrays = [source for source in sources if source.pixels is not None]
    if arrays:
        prepared = [trained.preprocessor.prepare(source.pixels, replay=source.replay) for source in arrays]
        batch = trained.preprocessor.normalize(torch.stack([p.raw for p in prepared]))
        for source, done, prediction in zip(arrays, prepared, trained.classify(batch, top_k=classes)):
            results[source.key] = {"raw": done.raw.numpy(), "original": _reduced(source.pixels),
                                   "probabilities": prediction.probabilities, "steps": describe(done.steps)}
    return [{"key": source.key, **results[source.key]} for source in sources]


def _reduced(pixels: np.ndarray) -> np.ndarray:
    """Pasted pixels as an original thumbnail: float raws become uint8, big pictures shrink."""
    from PIL import Image

    array = np.asarray(pixels)
    if array.dtype != np.uint8:  # a raw (C, H, W) float image from another view
        array = to_pixels(array)
    if array.ndim == 3 and array.shape[2] == 4:
        array = array[:, :, :3]
    if array.ndim == 3 and array.shape[2] == 1:
        array = array[:, :, 0]
    image = Image.fromarray(np.ascontiguousarray(array))
    image.thumbnail((_ORIGINAL_PIXELS, _ORIGINAL_PIXELS))
    return np.asarray(image, dtype=np.uint8).copy()


def _classify_folder(context: TaskContext, trained: Any, paths: list[str], top_k: int) -> dict[str, Any]:
    """Classify every image under ``paths``; progress reports carry the rows since the previous report."""
    from dlstudio.core.inspect import find_images

    total = sum(1 for _ in find_images(paths))
    context.report({"done": 0, "total": total, "rows": []}, force=True)
    pending: list[dict[str, Any]] = []
    done = 0
    for outcome in trained.classify_paths(paths, top_k=top_k, batch_size=FOLDER_BATCH):
        context.check()
        done += 1
        row: dict[str, Any] = {"path": outcome.path, "error": outcome.error, "top": [], "thumbnail": None}
        if outcome.ok:
            row["top"] = [(score.label, float(score.probability)) for score in outcome.prediction.top]
            try:
                row["thumbnail"] = _original_pixels(outcome.path, TABLE_THUMBNAIL)
            except Exception:  # noqa: BLE001 - classified already; a missing thumbnail is no reason to fail
                pass
        pending.append(row)
        if context.report({"done": done, "total": total, "rows": pending}):
            pending = []  # handed to the GUI thread; the next rows go in a new list
    return {"done": done, "total": total, "rows": pending}


# -- small helpers ----------------------------------------------------------------------------------


def _is_dark(widget: QWidget) -> bool:
    return widget.palette().color(QPalette.ColorRole.Window).lightness() < 128


def _error_color(widget: QWidget) -> QColor:
    return QColor((DARK_CANVAS if _is_dark(widget) else LIGHT_CANVAS).error)


def _unreadable_pixmap(widget: QWidget, size: int) -> QPixmap:
    """A crossed-out square in the palette's colours: the picture of a file that could not be read."""
    pixmap = QPixmap(size, size)
    pixmap.fill(Qt.GlobalColor.transparent)
    painter = QPainter(pixmap)
    painter.setRenderHint(QPainter.RenderHint.Antialiasing)
    color = _error_color(widget)
    painter.setPen(QPen(color, 2.0))
    frame = QRectF(3, 3, size - 6, size - 6)
    painter.drawRoundedRect(frame, 4, 4)
    inset = frame.adjusted(size * 0.25, size * 0.25, -size * 0.25, -size * 0.25)
    painter.drawLine(inset.topLeft(), inset.bottomRight())
    painter.drawLine(inset.topRight(), inset.bottomLeft())
    painter.end()
    return pixmap


def top_classes(probabilities: np.ndarray, class_names: list[str], k: int) -> list[tuple[str, float]]:
    """The ``k`` most probable (label, probability), most probable first (ties keep class order)."""
    order = np.argsort(-np.asarray(probabilities), kind="stable")[:max(1, k)]
    return [(class_names[i] if i < len(class_names) else str(i), float(probabilities[i])) for i in order]


def _local_paths(urls: list[QUrl]) -> list[str]:
    return [url.toLocalFile() for url in urls if url.isLocalFile() and url.toLocalFile()]


def write_csv_atomically(path: Path, header: list[str], rows: list[list[str]]) -> None:
    """Write a CSV file through a temporary file in the same folder, so a failure leaves no half file."""
    path = Path(path)
    handle, temporary = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=path.parent)
    try:
        with os.fdopen(handle, "w", newline="", encoding="utf-8") as stream:
            writer = csv.writer(stream)
            writer.writerow(header)
            writer.writerows(rows)
        os.replace(temporary, path)
    except BaseException:
        Path(temporary).unlink(missing_ok=True)
        raise


# -- the cards --------------------------------------------------------------------------------------


class ProbabilityBars(QWidget):
    """Classes as horizontal bars: label column, bar, percentage column, one row per class."""

    ROW_HEIGHT = 20
    GAP = 8
    MAX_LABEL = 140

    def __init__(self, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.rows: list[tuple[str, float]] = []
        self.setSizePolicy(QSizePolicy.Policy.Expanding, QSizePolicy.Policy.Fixed)
        self.setMinimumWidth(180)

    def set_rows(self, rows: list[tuple[str, float]]) -> None:
        self.rows = list(rows)
        self.updateGeometry()
        self.update()

    def sizeHint(self) -> QSize:
        return QSize(280, self.ROW_HEIGHT * max(1, len(self.rows)))

    def minimumSizeHint(self) -> QSize:
        return QSize(180, self.ROW_HEIGHT * max(1, len(self.rows)))

    def paintEvent(self, event: Any) -> None:
        painter = QPainter(self)
        painter.setRenderHint(QPainter.RenderHint.Antialiasing)
        palette = self.palette()
        # Widths from the bold font: the first row is bold and must fit the same columns.
        bold = QFont(self.font())
        bold.setBold(True)
        metrics = QFontMetrics(bold)
        label_width = min(self.MAX_LABEL, max((metrics.horizontalAdvance(label) for label, _ in self.rows),
                                              default=0))
        percent_width = metrics.horizontalAdvance("100.0%")
        bar_left = label_width + self.GAP
        bar_width = max(10, self.width() - bar_left - self.GAP - percent_width)
        highlight = palette.color(QPalette.ColorRole.Highlight)
        second = QColor(highlight)
        second.setAlpha(130)
        track = QColor(palette.color(QPalette.ColorRole.Text))
        track.setAlpha(28)
        text = palette.color(QPalette.ColorRole.Text)
        for row, (label, probability) in enumerate(self.rows):
            top = row * self.ROW_HEIGHT
            bar = QRectF(bar_left, top + 4, bar_width, self.ROW_HEIGHT - 8)
            painter.setPen(Qt.PenStyle.NoPen)
            painter.setBrush(track)
            painter.drawRoundedRect(bar, 3, 3)
            filled = QRectF(bar.left(), bar.top(), max(0.0, min(1.0, probability)) * bar.width(), bar.height())
            if filled.width() >= 1:
                painter.setBrush(highlight if row == 0 else second)
                painter.drawRoundedRect(filled, 3, 3)
            painter.setPen(text)
            font = painter.font()
            font.setBold(row == 0)
            painter.setFont(font)
            shown = metrics.elidedText(label, Qt.TextElideMode.ElideRight, label_width)
            painter.drawText(QRectF(0, top, label_width, self.ROW_HEIGHT),
                             Qt.AlignmentFlag.AlignRight | Qt.AlignmentFlag.AlignVCenter, shown)
            painter.drawText(QRectF(self.width() - percent_width, top, percent_width, self.ROW_HEIGHT),
                             Qt.AlignmentFlag.AlignRight | Qt.AlignmentFlag.AlignVCenter, f"{probability:.1%}")
        painter.end()


class ImageCard(QFrame):
    """One image: what the model saw (enlarged crisply), the original, and its top-k bars or why it failed."""

    clicked = Signal(object)  # the card

    def __init__(self, source: _Source, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.source = source
        self.raw: np.ndarray | None = None
        self.probabilities: np.ndarray | None = None
        self.error: str | None = None
        self.selected = False
        self.setObjectName("ImageCard")
        self.setSizePolicy(QSizePolicy.Policy.Expanding, QSizePolicy.Policy.Fixed)

        self.model_image = QLabel()
        self.model_image.setFixedSize(MODEL_THUMBNAIL, MODEL_THUMBNAIL)
        self.model_image.setAlignment(Qt.AlignmentFlag.AlignCenter)
        self.model_caption = QLabel("model input")
        self.original_image = QLabel()
        self.original_image.setFixedSize(ORIGINAL_THUMBNAIL, ORIGINAL_THUMBNAIL)
        self.original_image.setAlignment(Qt.AlignmentFlag.AlignCenter)
        self.original_caption = QLabel("original")
        for caption in (self.model_caption, self.original_caption):
            caption.setAlignment(Qt.AlignmentFlag.AlignCenter)
            caption.setForegroundRole(QPalette.ColorRole.PlaceholderText)
            font = caption.font()
            font.setPointSizeF(font.pointSizeF() * 0.85)
            caption.setFont(font)
        originals = QHBoxLayout()
        originals.setSpacing(6)
        originals.addWidget(self.original_image)
        originals.addWidget(self.original_caption)
        originals.addStretch(1)
        pictures = QVBoxLayout()
        pictures.setSpacing(2)
        pictures.addWidget(self.model_image)
        pictures.addWidget(self.model_caption)
        pictures.addLayout(originals)
        pictures.addStretch(1)

        self.title = QLabel()
        title_font = self.title.font()
        title_font.setBold(True)
        self.title.setFont(title_font)
        self.title.setToolTip(source.path or source.name)
        self.title.setMinimumWidth(60)
        self.title.setSizePolicy(QSizePolicy.Policy.Ignored, QSizePolicy.Policy.Preferred)
        self.status = QLabel("Classifying…")
        self.status.setWordWrap(True)
        self.status.setForegroundRole(QPalette.ColorRole.PlaceholderText)
        self.bars = ProbabilityBars()
        self.bars.hide()
        self.steps = QLabel()  # what was done to look like the training data: "Inverted to match…"
        self.steps.setObjectName("CardSteps")
        self.steps.setWordWrap(True)
        self.steps.setForegroundRole(QPalette.ColorRole.PlaceholderText)
        steps_font = self.steps.font()
        steps_font.setPointSizeF(steps_font.pointSizeF() * 0.85)
        self.steps.setFont(steps_font)
        self.steps.hide()
        details = QVBoxLayout()
        details.setSpacing(6)
        details.addWidget(self.title)
        details.addWidget(self.status)
        details.addWidget(self.bars)
        details.addWidget(self.steps)
        details.addStretch(1)

        layout = QHBoxLayout(self)
        layout.setContentsMargins(10, 10, 10, 10)
        layout.setSpacing(14)
        layout.addLayout(pictures)
        layout.addLayout(details, 1)
        self._set_title()

    @property
    def ok(self) -> bool:
        return self.probabilities is not None

    def set_pending(self, message: str = "Classifying…") -> None:
        self.raw, self.probabilities, self.error = None, None, None
        self.bars.hide()
        self.steps.hide()
        self.status.setText(message)
        self.status.setForegroundRole(QPalette.ColorRole.PlaceholderText)
        self.status.setStyleSheet("")
        self.status.show()

    def set_result(self, result: dict[str, Any], class_names: list[str], top_k: int) -> None:
        """Show a worker result: ``raw``, ``original`` and ``probabilities``, or ``error``."""
        self.error = result.get("error")
        self.raw = result.get("raw")
        self.probabilities = result.get("probabilities")
        self.steps.setText(result.get("steps") or "")
        self.steps.setVisible(self.error is None and bool(result.get("steps")))
        if self.error is not None:
            self.bars.hide()
            self.status.setText(f"Cannot classify this file: {self.error}")
            self.status.setForegroundRole(QPalette.ColorRole.WindowText)
            self.status.setStyleSheet(f"color: {_error_color(self).name()};")
            self.status.show()
            self.model_image.setPixmap(_unreadable_pixmap(self, ORIGINAL_THUMBNAIL))
            self.model_image.setFixedSize(MODEL_THUMBNAIL, ORIGINAL_THUMBNAIL)
            for widget in (self.model_caption, self.original_image, self.original_caption):
                widget.hide()
            self._set_title()
            return
        self.status.hide()
        self.model_image.setFixedSize(MODEL_THUMBNAIL, MODEL_THUMBNAIL)
        for widget in (self.model_caption, self.original_image, self.original_caption):
            widget.show()
        self.set_top_k(class_names, top_k)
        model_picture = raw_to_qimage(self.raw)
        self.model_image.setPixmap(scaled_pixmap(model_picture, MODEL_THUMBNAIL))
        self.model_caption.setText(f"model input {model_picture.width()}×{model_picture.height()}")
        self.original_image.setPixmap(scaled_pixmap(pixels_to_qimage(result["original"]), ORIGINAL_THUMBNAIL))
        self._set_title()

    def set_top_k(self, class_names: list[str], top_k: int) -> None:
        if self.probabilities is None:
            return
        self.bars.set_rows(top_classes(self.probabilities, class_names, top_k))
        self.bars.show()

    def set_selected(self, selected: bool) -> None:
        self.selected = selected
        self.update()

    def _set_title(self) -> None:
        metrics = self.title.fontMetrics()
        width = max(60, self.title.width())
        self.title.setText(metrics.elidedText(self.source.name, Qt.TextElideMode.ElideMiddle, width))

    def resizeEvent(self, event: Any) -> None:
        super().resizeEvent(event)
        self._set_title()

    def mousePressEvent(self, event: Any) -> None:
        if event.button() == Qt.MouseButton.LeftButton:
            self.clicked.emit(self)
        super().mousePressEvent(event)

    def paintEvent(self, event: Any) -> None:
        painter = QPainter(self)
        painter.setRenderHint(QPainter.RenderHint.Antialiasing)
        palette = self.palette()
        border = palette.color(QPalette.ColorRole.Highlight) if self.selected else palette.color(
            QPalette.ColorRole.Mid)
        painter.setPen(QPen(border, 2.0 if self.selected else 1.0))
        painter.setBrush(palette.color(QPalette.ColorRole.Base))
        painter.drawRoundedRect(QRectF(self.rect()).adjusted(1, 1, -1, -1), 6, 6)
        painter.end()


# -- the folder table -------------------------------------------------------------------------------

_THUMB, _FILE, _TOP, _PROBABILITY = range(4)
_COLUMNS = ("", "File", "Top class", "Probability")
_SORT_ROLE = Qt.ItemDataRole.UserRole
_PATH_ROLE = Qt.ItemDataRole.UserRole + 1


@dataclass
class _FolderRow:
    path: str
    name: str
    top: list[tuple[str, float]]
    thumbnail: QImage | None


class FolderResultsModel(QAbstractTableModel):
    """Classified files of a folder: thumbnail, file, top class, probability; rows appended in batches."""

    def __init__(self, parent: Any = None) -> None:
        super().__init__(parent)
        self.rows: list[_FolderRow] = []
        self.root: Path | None = None

    def rowCount(self, parent: QModelIndex | QPersistentModelIndex = QModelIndex()) -> int:
        return 0 if parent.isValid() else len(self.rows)

    def columnCount(self, parent: QModelIndex | QPersistentModelIndex = QModelIndex()) -> int:
        return 0 if parent.isValid() else len(_COLUMNS)

    def headerData(self, section: int, orientation: Qt.Orientation, role: int = Qt.ItemDataRole.DisplayRole) -> Any:
        if orientation == Qt.Orientation.Horizontal and role == Qt.ItemDataRole.DisplayRole:
            return _COLUMNS[section]
        return None

    def data(self, index: QModelIndex | QPersistentModelIndex, role: int = Qt.ItemDataRole.DisplayRole) -> Any:
        if not index.isValid():
            return None
        row, column = self.rows[index.row()], index.column()
        if role == Qt.ItemDataRole.DisplayRole:
            if column == _FILE:
                return row.name
            if column == _TOP:
                return row.top[0][0]
            if column == _PROBABILITY:
                return f"{row.top[0][1]:.1%}"
        elif role == Qt.ItemDataRole.DecorationRole and column == _THUMB:
            return row.thumbnail
        elif role == _SORT_ROLE:
            return (row.name, row.name, row.top[0][0], row.top[0][1])[column]
        elif role == _PATH_ROLE:
            return row.path
        elif role == Qt.ItemDataRole.ToolTipRole:
            return row.path + "\n" + "\n".join(f"{label}: {p:.1%}" for label, p in row.top)
        elif role == Qt.ItemDataRole.TextAlignmentRole and column == _PROBABILITY:
            return int(Qt.AlignmentFlag.AlignRight | Qt.AlignmentFlag.AlignVCenter)
        return None

    def clear(self, root: Path | None = None) -> None:
        self.beginResetModel()
        self.rows = []
        self.root = root
        self.endResetModel()

    def append(self, rows: list[_FolderRow]) -> None:
        if not rows:
            return
        self.beginInsertRows(QModelIndex(), len(self.rows), len(self.rows) + len(rows) - 1)
        self.rows.extend(rows)
        self.endInsertRows()


class FolderPanel(QWidget):
    """Progress and Cancel, the sortable results table, unreadable files, Save as CSV."""

    row_activated = Signal(str)  # a file's path (double-click)
    cancel_requested = Signal()
    save_requested = Signal()

    def __init__(self, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.status = QLabel(FOLDER_HINT)
        self.status.setWordWrap(True)
        self.progress = QProgressBar()
        self.progress.setFormat("%v / %m images")
        self.progress.hide()
        self.cancel_button = QPushButton("Cancel")
        self.cancel_button.hide()
        self.cancel_button.clicked.connect(self.cancel_requested)
        self.save_button = QPushButton("Save as CSV…")
        self.save_button.setEnabled(False)
        self.save_button.clicked.connect(self.save_requested)
        heading = QHBoxLayout()
        heading.addWidget(self.status, 1)
        heading.addWidget(self.save_button, 0, Qt.AlignmentFlag.AlignTop)
        controls = QHBoxLayout()
        controls.addWidget(self.progress, 1)
        controls.addWidget(self.cancel_button)

        self.model = FolderResultsModel(self)
        self.proxy = QSortFilterProxyModel(self)
        self.proxy.setSourceModel(self.model)
        self.proxy.setSortRole(_SORT_ROLE)
        self.table = QTableView()
        self.table.setObjectName("FolderResults")
        self.table.setModel(self.proxy)
        self.table.setSortingEnabled(True)
        self.table.setSelectionBehavior(QAbstractItemView.SelectionBehavior.SelectRows)
        self.table.setEditTriggers(QAbstractItemView.EditTrigger.NoEditTriggers)
        self.table.setAlternatingRowColors(True)
        self.table.setWordWrap(False)
        self.table.setIconSize(QSize(TABLE_THUMBNAIL, TABLE_THUMBNAIL))
        self.table.verticalHeader().hide()
        self.table.verticalHeader().setDefaultSectionSize(TABLE_THUMBNAIL + 4)
        header = self.table.horizontalHeader()
        header.setSectionResizeMode(_THUMB, QHeaderView.ResizeMode.Fixed)
        header.setSectionResizeMode(_FILE, QHeaderView.ResizeMode.Stretch)
        header.setSectionResizeMode(_TOP, QHeaderView.ResizeMode.ResizeToContents)
        header.setSectionResizeMode(_PROBABILITY, QHeaderView.ResizeMode.ResizeToContents)
        self.table.setColumnWidth(_THUMB, TABLE_THUMBNAIL + 12)
        self.table.sortByColumn(_FILE, Qt.SortOrder.AscendingOrder)
        self.table.doubleClicked.connect(self._on_table_double_clicked)

        self.unreadable_label = QLabel()
        self.unreadable = QListWidget()
        self.unreadable.setObjectName("UnreadableFiles")
        self.unreadable_label.hide()
        self.unreadable.hide()

        layout = QVBoxLayout(self)
        layout.setContentsMargins(0, 6, 0, 0)
        layout.addLayout(heading)
        layout.addLayout(controls)
        layout.addWidget(self.table, 1)
        layout.addWidget(self.unreadable_label)
        layout.addWidget(self.unreadable)

    def start(self, root: Path | None, description: str) -> None:
        self.model.clear(root)
        self.unreadable.clear()
        self.unreadable.hide()
        self.unreadable_label.hide()
        self.status.setText(f"Classifying {description}…")
        self.progress.setRange(0, 0)  # busy until the files are counted
        self.progress.show()
        self.cancel_button.show()
        self.cancel_button.setEnabled(True)
        self.save_button.setEnabled(False)

    def add_rows(self, rows: list[dict[str, Any]], done: int, total: int) -> None:
        self.progress.setRange(0, max(total, 1))
        self.progress.setValue(done)
        readable = []
        for row in rows:
            if row["error"] is not None:
                self.unreadable.addItem(f"{self._name(row['path'])}: {row['error']}")
                continue
            thumbnail = pixels_to_qimage(row["thumbnail"]) if row["thumbnail"] is not None else None
            readable.append(_FolderRow(row["path"], self._name(row["path"]), row["top"],
                                       scaled(thumbnail, TABLE_THUMBNAIL) if thumbnail is not None else None))
        self.model.append(readable)
        if self.unreadable.count():
            shown_rows = min(4, self.unreadable.count())  # a short list grows with its rows, a long one scrolls
            self.unreadable.setFixedHeight(shown_rows * self.unreadable.sizeHintForRow(0)
                                           + 2 * self.unreadable.frameWidth() + 2)
            self.unreadable_label.setText(f"{self.unreadable.count()} file(s) could not be classified:")
            self.unreadable_label.show()
            self.unreadable.show()

    def reset(self) -> None:
        """Back to the empty panel: no rows, no unreadable files, no progress."""
        self.model.clear()
        self.unreadable.clear()
        self.unreadable.hide()
        self.unreadable_label.hide()
        self.progress.hide()
        self.cancel_button.hide()
        self.save_button.setEnabled(False)
        self.status.setText(FOLDER_HINT)

    def finish(self, message: str) -> None:
        self.progress.hide()
        self.cancel_button.hide()
        self.status.setText(message)
        self.save_button.setEnabled(self.model.rowCount() + self.unreadable.count() > 0)

    def _name(self, path: str) -> str:
        root = self.model.root
        if root is not None:
            try:
                return str(Path(path).relative_to(root))
            except ValueError:
                pass
        return Path(path).name

    @Slot(QModelIndex)
    def _on_table_double_clicked(self, index: QModelIndex) -> None:
        path = index.data(_PATH_ROLE)
        if path:
            self.row_activated.emit(path)


# -- the view ---------------------------------------------------------------------------------------


class ClassifyView(QWidget):
    """Classify the person's images with the session's model: cards with top-k bars, or a whole folder.

    Public methods for the window: ``add_images(paths)`` (files become
    cards, folders fill the table), ``add_image(QImage)`` (a pasted
    picture), ``add_raw(raw, name)`` (an image from another view, e.g. the
    mistakes gallery), ``classify_folder(paths)``, ``save_csv(path)``.
    """

    def __init__(self, session: ModelSession, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.session = session
        self.cards: list[ImageCard] = []
        self.selected_card: ImageCard | None = None
        self.class_names: list[str] = []
        self._keys = itertools.count(1)
        self._queue: list[_Source] = []
        self._card_task: BackgroundTask | None = None
        self._folder_task: BackgroundTask | None = None
        self._folder_rows: list[dict[str, Any]] = []
        self._folder_top_k = DEFAULT_TOP_K
        self._select_key: int | None = None
        self.setObjectName("ClassifyView")
        self.setAcceptDrops(True)
        self.setFocusPolicy(Qt.FocusPolicy.StrongFocus)

        self.open_button = QPushButton("Open images…")
        self.open_button.clicked.connect(self._on_open_clicked)
        self.folder_button = QPushButton("Classify folder…")
        self.folder_button.clicked.connect(self._on_folder_clicked)
        self.clear_button = QPushButton("Clear")
        self.clear_button.setToolTip("Remove all image cards")
        self.clear_button.clicked.connect(self.clear_cards)
        self._wanted_top_k = DEFAULT_TOP_K  # what the person set; shown as far as the model's classes allow
        self.top_k_spin = QSpinBox()
        self.top_k_spin.setRange(1, MAX_TOP_K)
        self.top_k_spin.setValue(DEFAULT_TOP_K)
        self.top_k_spin.setPrefix("top ")
        self.top_k_spin.setToolTip("How many of the most probable classes each card shows")
        self.top_k_spin.valueChanged.connect(self._on_top_k_changed)
        toolbar = QHBoxLayout()
        toolbar.addWidget(self.open_button)
        toolbar.addWidget(self.folder_button)
        toolbar.addStretch(1)
        toolbar.addWidget(self.top_k_spin)
        toolbar.addWidget(self.clear_button)

        self.cards_widget = QWidget()
        self.cards_layout = QVBoxLayout(self.cards_widget)
        self.cards_layout.setContentsMargins(2, 2, 2, 2)
        self.cards_layout.setSpacing(8)
        self.drop_hint = QLabel(DROP_HINT)
        self.drop_hint.setAlignment(Qt.AlignmentFlag.AlignCenter)
        self.drop_hint.setWordWrap(True)
        self.drop_hint.setForegroundRole(QPalette.ColorRole.PlaceholderText)
        self.drop_hint.setMinimumHeight(120)
        self.cards_layout.addWidget(self.drop_hint)
        self.cards_layout.addStretch(1)
        self.cards_scroll = QScrollArea()
        self.cards_scroll.setWidgetResizable(True)
        self.cards_scroll.setFrameShape(QFrame.Shape.NoFrame)
        self.cards_scroll.setWidget(self.cards_widget)

        self.folder_panel = FolderPanel()
        self.folder_panel.row_activated.connect(self._on_folder_row_activated)
        self.folder_panel.cancel_requested.connect(self.cancel_folder)
        self.folder_panel.save_requested.connect(self._on_save_requested)
        self.tabs = QTabWidget()
        self.tabs.setDocumentMode(True)
        # Imported here: the pad's module uses this one's probability bars.
        from dlstudio.gui.inspect.drawing_pad import DrawingPad

        self.pad = DrawingPad(session)
        self.tabs.addTab(self.cards_scroll, "Images")
        self.tabs.addTab(self.folder_panel, "Folder")
        self.tabs.addTab(self.pad, "Draw")
        self.tabs.currentChanged.connect(self._on_tab_changed)

        content = QWidget()
        content_layout = QVBoxLayout(content)
        content_layout.setContentsMargins(0, 0, 0, 0)
        content_layout.addLayout(toolbar)
        content_layout.addWidget(self.tabs, 1)
        self.placeholder = QLabel(PLACEHOLDER)
        self.placeholder.setObjectName("ClassifyPlaceholder")
        self.placeholder.setAlignment(Qt.AlignmentFlag.AlignCenter)
        self.placeholder.setWordWrap(True)
        self.placeholder.setForegroundRole(QPalette.ColorRole.PlaceholderText)
        self.stack = QStackedWidget()
        self.stack.addWidget(self.placeholder)
        self.stack.addWidget(content)
        layout = QVBoxLayout(self)
        layout.setContentsMargins(6, 6, 6, 6)
        layout.addWidget(self.stack)

        session.model_loaded.connect(self._on_session_model_loaded)
        session.model_failed.connect(self._on_session_model_failed)
        session.unloaded.connect(self.clear)
        if session.is_loaded:
            self.class_names = list(session.trained.class_names)
            self._limit_top_k()
            self._set_pad_model()
        self.stack.setCurrentIndex(1 if session.is_loaded else 0)

    # -- adding images ---------------------------------------------------------------------------

    def add_images(self, paths: list[str | Path]) -> None:
        """Files become cards; folders are classified into the Folder table."""
        folders = [str(path) for path in paths if Path(path).is_dir()]
        files = [str(path) for path in paths if not Path(path).is_dir()]
        if files:
            self._add_sources([_Source(next(self._keys), Path(path).name, path=path) for path in files])
        if folders:
            self.classify_folder(folders)

    def add_image(self, image: QImage, name: str = "pasted image") -> None:
        """A picture (pasted, or dropped as image data) becomes a card."""
        if image.isNull():
            return
        self._add_sources([_Source(next(self._keys), name, pixels=qimage_to_array(image))])

    def add_raw(self, raw: np.ndarray, name: str) -> None:
        """An image another view already holds as raw (C, H, W) floats in [0, 1] becomes a card."""
        # Already a model input (e.g. a training image from the mistakes gallery): no recipe replayed on it.
        self._add_sources([_Source(next(self._keys), name, pixels=np.asarray(raw, dtype=np.float32), replay=False)])

    def paste(self) -> bool:
        """Classify the clipboard's image, or its image files. Returns whether there was something to paste."""
        mime = QApplication.clipboard().mimeData()
        if mime is None:
            return False
        if mime.hasImage():
            self.add_image(QImage(mime.imageData()))
            return True
        paths = _local_paths(mime.urls()) if mime.hasUrls() else []
        if paths:
            self.add_images(paths)
        return bool(paths)

    def choose_images(self) -> list[str]:
        """Ask for image files (tests replace this)."""
        paths, _ = QFileDialog.getOpenFileNames(self, "Open images", start_folder(IMAGES), IMAGE_FILTER)
        remember(IMAGES, paths)
        return paths

    def choose_folder(self) -> str:
        """Ask for a folder to classify (tests replace this); empty when cancelled."""
        folder = QFileDialog.getExistingDirectory(self, "Classify folder", start_folder(IMAGES))
        remember(IMAGES, folder)
        return folder

    def choose_csv_path(self) -> str:
        """Ask where to save the table (tests replace this); empty when cancelled."""
        path, _ = QFileDialog.getSaveFileName(self, "Save as CSV", start_path(EXPORTS, "classified.csv"),
                                              "CSV files (*.csv)")
        remember(EXPORTS, path)
        return path

    def clear(self) -> None:
        """Show nothing of what was classified: cards and the folder table go, a folder run is cancelled.

        The session's ``unloaded`` calls it (the window opened another project). Without a model the view
        shows its placeholder again, and nothing is classified until a model is loaded.
        """
        if self._folder_task is not None:
            self._folder_task.cancel()
            self._folder_task = None  # its late signals are ignored
        if self._card_task is not None:
            self._card_task.cancel()
            self._card_task = None
        self.clear_cards()
        self._folder_rows = []
        self._select_key = None
        self.folder_panel.reset()
        self.pad.clear()
        self.tabs.setCurrentWidget(self.cards_scroll)
        if not self.session.is_loaded:
            self.class_names = []
            self.placeholder.setText(PLACEHOLDER)
            self.stack.setCurrentIndex(0)

    def clear_cards(self) -> None:
        for card in self.cards:
            card.deleteLater()
        self.cards.clear()
        self._queue.clear()
        self.selected_card = None
        self.drop_hint.show()

    def _add_sources(self, sources: list[_Source]) -> None:
        self.tabs.setCurrentWidget(self.cards_scroll)
        self.drop_hint.hide()
        for source in sources:
            card = ImageCard(source)
            card.clicked.connect(self._on_card_clicked)
            self.cards.insert(0, card)
            self.cards_layout.insertWidget(0, card)  # newest on top
        self._queue.extend(sources)
        self._select_key = sources[-1].key if sources else self._select_key
        if not self.session.is_loaded:
            for card in self.cards[:len(sources)]:
                card.set_pending("Waiting for a model…")
        self._pump()

    def _pump(self) -> None:
        """Submit the next batch of queued cards, one batch at a time."""
        if self._card_task is not None or not self._queue or not self.session.is_loaded:
            return
        batch, self._queue = self._queue[:CARD_BATCH], self._queue[CARD_BATCH:]
        task = self.session.submit(_classify_sources, batch)
        task.finished.connect(self._on_card_task_finished)
        task.failed.connect(self._on_card_task_failed)
        task.done.connect(self._on_card_task_done)
        task.setProperty("keys", [source.key for source in batch])
        self._card_task = task

    def _card(self, key: int) -> ImageCard | None:
        return next((card for card in self.cards if card.source.key == key), None)

    def select_card(self, card: ImageCard) -> None:
        """Make ``card`` the selected one and its image the session's current image."""
        if self.selected_card is not None and self.selected_card is not card:
            self.selected_card.set_selected(False)
        self.selected_card = card
        card.set_selected(True)
        if card.raw is not None:
            self.session.set_image(card.raw, card.source.path)

    # -- the folder --------------------------------------------------------------------------------

    def classify_folder(self, paths: str | Path | list[str | Path]) -> None:
        """Classify every image under ``paths`` (folders walked recursively) into the Folder table."""
        paths = [str(p) for p in (paths if isinstance(paths, list) else [paths])]
        self.tabs.setCurrentWidget(self.folder_panel)
        if not self.session.is_loaded:
            self.folder_panel.finish("Load a model first: " + PLACEHOLDER.lower())
            return
        self.cancel_folder()
        root = Path(paths[0]) if len(paths) == 1 and Path(paths[0]).is_dir() else None
        self.folder_panel.start(root, repr(Path(paths[0]).name) if len(paths) == 1 else f"{len(paths)} folders")
        self._folder_rows = []
        self._folder_top_k = self.top_k_spin.value()
        task = self.session.submit(_classify_folder, paths, self._folder_top_k)
        task.progress.connect(self._on_folder_progress)
        task.finished.connect(self._on_folder_finished)
        task.failed.connect(self._on_folder_failed)
        task.cancelled.connect(self._on_folder_cancelled)
        self._folder_task = task

    def cancel_folder(self) -> None:
        """Stop classifying the folder; the rows so far stay."""
        if self._folder_task is not None:
            self._folder_task.cancel()
            self.folder_panel.cancel_button.setEnabled(False)

    @property
    def folder_running(self) -> bool:
        return self._folder_task is not None

    def save_csv(self, path: str | Path) -> None:
        """Write the folder's results: file, top class, probability, the other top-k classes, error."""
        k = max((len(row["top"]) for row in self._folder_rows), default=1)
        header = ["file", "top_class", "probability"]
        for rank in range(2, k + 1):
            header += [f"class_{rank}", f"probability_{rank}"]
        header.append("error")
        rows = []
        for row in self._folder_rows:
            cells = [row["path"]]
            for rank in range(k):
                label, probability = row["top"][rank] if rank < len(row["top"]) else ("", None)
                cells += [label, "" if probability is None else f"{probability:.6f}"]
            cells.append(row["error"] or "")
            rows.append(cells)
        write_csv_atomically(Path(path), header, rows)

    # -- events --------------------------------------------------------------------------------------

    def dragEnterEvent(self, event: Any) -> None:
        mime = event.mimeData()
        if self.session.is_loaded and ((mime.hasUrls() and _local_paths(mime.urls())) or mime.hasImage()):
            event.acceptProposedAction()
        else:
            event.ignore()

    def dragMoveEvent(self, event: Any) -> None:
        self.dragEnterEvent(event)

    def dropEvent(self, event: Any) -> None:
        mime = event.mimeData()
        paths = _local_paths(mime.urls()) if mime.hasUrls() else []
        if paths:
            self.add_images(paths)
        elif mime.hasImage():
            self.add_image(QImage(mime.imageData()), "dropped image")
        else:
            event.ignore()
            return
        event.acceptProposedAction()

    def event(self, event: QEvent) -> bool:
        # Claim Ctrl+V before the window's Paste action (which pastes graph nodes) sees it.
        if (event.type() == QEvent.Type.ShortcutOverride and self.session.is_loaded
                and event.matches(QKeySequence.StandardKey.Paste)):
            event.accept()
            return True
        return super().event(event)

    def keyPressEvent(self, event: Any) -> None:
        if event.matches(QKeySequence.StandardKey.Paste) and self.session.is_loaded:
            self.paste()
            event.accept()
            return
        super().keyPressEvent(event)

    # -- slots ----------------------------------------------------------------------------------------

    @Slot()
    def _on_open_clicked(self) -> None:
        paths = self.choose_images()
        if paths:
            self.add_images(paths)

    @Slot()
    def _on_folder_clicked(self) -> None:
        folder = self.choose_folder()
        if folder:
            self.classify_folder(folder)

    @Slot()
    def _on_save_requested(self) -> None:
        path = self.choose_csv_path()
        if not path:
            return
        try:
            self.save_csv(path)
        except OSError as error:
            self.folder_panel.status.setText(f"Could not save {Path(path).name!r}: {error.strerror or error}")
        else:
            self.folder_panel.status.setText(f"Saved {len(self._folder_rows)} rows to {Path(path).name!r}")

    @Slot(object)
    def _on_card_clicked(self, card: ImageCard) -> None:
        self.setFocus(Qt.FocusReason.MouseFocusReason)  # so that Ctrl+V reaches the view
        self.select_card(card)

    def _limit_top_k(self) -> None:
        """No more "top" places than the model has classes (a 3-class model offers top 1 to 3); the person's own
        choice comes back for a model with more."""
        limit = min(MAX_TOP_K, len(self.class_names)) if self.class_names else MAX_TOP_K
        wanted = self._wanted_top_k
        self.top_k_spin.setMaximum(max(1, limit))
        self.top_k_spin.setValue(min(wanted, self.top_k_spin.maximum()))
        self._wanted_top_k = wanted  # the clamp above is not the person's choice

    @Slot(int)
    def _on_top_k_changed(self, value: int) -> None:
        self._wanted_top_k = value
        for card in self.cards:
            card.set_top_k(self.class_names, value)
        self.pad.set_top_k(value)

    @Slot(int)
    def _on_tab_changed(self, index: int) -> None:
        # The pad has its own Clear beside the canvas; the toolbar's removes image cards, which the pad hides.
        self.clear_button.setVisible(self.tabs.widget(index) is not self.pad)

    def show_pad(self) -> None:
        """Show the drawing pad (the window's "Draw a digit" entry, and tests)."""
        self.tabs.setCurrentWidget(self.pad)

    def _set_pad_model(self) -> None:
        preprocessor = self.session.trained.preprocessor
        recipe = getattr(preprocessor, "recipe", None)
        self.pad.set_model(self.class_names, bool(getattr(recipe, "light_on_dark", False)),
                           bool(getattr(preprocessor, "takes_images", True)))

    @Slot(object)
    def _on_card_task_finished(self, results: list[dict[str, Any]]) -> None:
        if self.sender() is not self._card_task:
            return
        newest_ok, wanted_failed = None, False
        for result in results:
            card = self._card(result["key"])
            if card is None:
                continue  # cleared meanwhile
            card.set_result(result, self.class_names, self.top_k_spin.value())
            newest_ok = card if card.ok else newest_ok
            if result["key"] == self._select_key and card.ok:
                self.select_card(card)
            elif result["key"] == self._select_key:
                wanted_failed = True
            elif card is self.selected_card and card.ok:
                self.select_card(card)  # classified again by a new model: the others follow its new input
        if wanted_failed and newest_ok is not None:
            self.select_card(newest_ok)  # the newest file was unreadable: show the newest image that was not

    @Slot(str)
    def _on_card_task_failed(self, message: str) -> None:
        task = self.sender()
        if task is not self._card_task:
            return
        for key in task.property("keys") or []:
            card = self._card(key)
            if card is not None:
                card.set_result({"error": message}, self.class_names, self.top_k_spin.value())

    @Slot()
    def _on_card_task_done(self) -> None:
        if self.sender() is self._card_task:
            self._card_task = None
            self._pump()

    @Slot(object)
    def _on_folder_progress(self, report: dict[str, Any]) -> None:
        if self.sender() is self._folder_task:
            self._add_folder_rows(report)

    @Slot(object)
    def _on_folder_finished(self, result: dict[str, Any]) -> None:
        if self.sender() is not self._folder_task:
            return
        self._add_folder_rows(result)
        self._folder_task = None
        readable = self.folder_panel.model.rowCount()
        unreadable = self.folder_panel.unreadable.count()
        self.folder_panel.finish(f"{readable} image(s) classified" + (f", {unreadable} unreadable" if unreadable
                                                                      else "")
                                 + ". Sort by probability to find the doubtful ones; double-click a row to see it.")

    @Slot(str)
    def _on_folder_failed(self, message: str) -> None:
        if self.sender() is self._folder_task:
            self._folder_task = None
            self.folder_panel.finish(f"Classifying the folder failed: {message}")

    @Slot()
    def _on_folder_cancelled(self) -> None:
        if self.sender() is self._folder_task:
            self._folder_task = None
            done = len(self._folder_rows)
            self.folder_panel.finish(f"Cancelled after {done} of {self.folder_panel.progress.maximum()} files.")

    def _add_folder_rows(self, report: dict[str, Any]) -> None:
        self._folder_rows.extend(report["rows"])
        self.folder_panel.add_rows(report["rows"], report["done"], report["total"])

    @Slot(str)
    def _on_folder_row_activated(self, path: str) -> None:
        self.add_images([path])

    @Slot(dict)
    def _on_session_model_loaded(self, info: dict[str, Any]) -> None:
        self.class_names = list(info.get("class_names") or [])
        self._limit_top_k()
        self.placeholder.setText(PLACEHOLDER)
        self.stack.setCurrentIndex(1)
        self._set_pad_model()
        # The cards were classified by the previous model (or wait for one): classify them all again.
        if self._card_task is not None:
            self._card_task.cancel()
            self._card_task = None
        if self._folder_task is not None:
            self._folder_task.cancel()
            self._folder_task = None
            self.folder_panel.finish("Stopped: another model was loaded. Classify the folder again to use it.")
        self._queue = [card.source for card in reversed(self.cards)]
        for card in self.cards:
            card.set_pending()
        self._pump()

    @Slot(str)
    def _on_session_model_failed(self, message: str) -> None:
        if not self.session.is_loaded:
            self.placeholder.setText(f"{PLACEHOLDER}.\n\nThe model could not be loaded: {message}")

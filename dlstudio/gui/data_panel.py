"""The Data panel: choose the source, see labelled samples, the split and class counts, and what is wrong.

Settings edits leave as ``setting_edit_requested`` (the window turns them
into undoable commands) and come back through ``project.settings_changed``,
so undo refreshes the panel like any edit. Loading runs on a worker thread
(``gui.worker``); the previous preview stays until the new one arrives and a
newer request cancels an older one. The loaded dataset is kept, so a new
split, other samples or the augmented view need no reload.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np
from PySide6.QtCore import QEvent, QMetaMethod, QRectF, QSize, Qt, QTimer, Signal
from PySide6.QtGui import QColor, QFontMetrics, QImage, QPainter, QPalette
from PySide6.QtWidgets import (
    QCheckBox, QFileDialog, QFormLayout, QFrame, QHBoxLayout, QLabel, QListView, QListWidget, QProgressBar, QPushButton,
    QScrollArea, QSizePolicy, QToolButton, QToolTip, QVBoxLayout, QWidget,
)

from dlstudio.core.project import DATA_SETTINGS, Project, input_shape
from dlstudio.gui.settings_form import SettingsForm
from dlstudio.gui.theme import ERROR, HINT, WARNING, set_tone, tone_color
from dlstudio.gui.worker import BackgroundTask, TaskContext, run_task

_SOURCE_KEYS = ("source", "path", "dataset", "label_column")
_SPLIT_KEYS = ("val_fraction", "test_fraction", "split_seed")
_AUGMENT_KEYS = ("augment_crop_padding", "augment_hflip", "augment_rotation", "augment_color_jitter")
_PREPARE_KEYS = ("normalize", *_AUGMENT_KEYS)
_PATH_LABELS = {"folder": "Image folder", "torchvision": "Dataset folder", "csv": "CSV file"}
_PATH_HINTS = {"folder": "a folder with one subfolder per class", "torchvision": "default: ~/.cache/dlstudio/datasets",
               "csv": "a .csv file with a header row"}
# Train / validation / test hues: mid-saturation, readable on light and dark backgrounds.
SPLIT_COLORS = {"train": "#1e88e5", "val": "#fb8c00", "test": "#8e24aa"}
SPLIT_NAMES = {"train": "train", "val": "validation", "test": "test"}
# Settings edits arrive in bursts (a spin box held down); one preview after the burst is enough.
_COALESCE_MS = 40
_FIRST_LOAD_DELAY_MS = 600  # after the panel first shows


def split_refusal(values: dict[str, Any]) -> str:
    """Why fractions leave nothing to train on, in the words of the form; '' when they leave some."""
    validation, test = float(values.get("val_fraction", 0.0)), float(values.get("test_fraction", 0.0))
    if validation + test < 1.0:
        return ""
    return (f"Validation and test fractions take {validation + test:.0%} of the data ({validation:.0%} + "
            f"{test:.0%}): leave some for training.")


def _load_preview_job(context: TaskContext, request: dict[str, Any]) -> tuple[tuple, Any]:
    """Worker-thread side: read the graph snapshot's requirements, load (or reuse) the data, describe it."""
    from dlstudio.core.data import DataError
    from dlstudio.core.data.preview import DataPreview, graph_requirements, load_key, load_preview

    try:
        requirements = graph_requirements(request["graph"])
    except DataError as error:
        return (), DataPreview(problems=[error.message])
    key = load_key(request["settings"], requirements.input_shape, request["base_dir"])
    cached_key, cached_data = request["cache"]
    preview = load_preview(request["settings"], requirements.input_shape, requirements.classes,
                           base_dir=request["base_dir"], task=requirements.task, seed=request["seed"],
                           augmented=request["augmented"], data=cached_data if cached_key == key else None,
                           check=context.check)
    return key, preview


def _fitted(metrics: QFontMetrics, text: str, width: int) -> str:
    """``text`` whole when it fits ``width`` pixels, else shortened with an ellipsis (elide only when needed)."""
    return text if metrics.horizontalAdvance(text) <= width else metrics.elidedText(
        text, Qt.TextElideMode.ElideRight, width)


class SkippedList(QListWidget):
    """The skipped files, one per entry, each wrapped to the list's width so its whole reason can be read.

    As tall as its first :attr:`MAX_ROWS` entries (a scroll bar beyond), refitted when its width changes.
    """

    MAX_ROWS = 8

    def __init__(self, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.setWordWrap(True)
        self.setTextElideMode(Qt.TextElideMode.ElideNone)
        self.setUniformItemSizes(False)
        self.setResizeMode(QListView.ResizeMode.Adjust)
        self.setHorizontalScrollBarPolicy(Qt.ScrollBarPolicy.ScrollBarAlwaysOff)
        self._fitted_width = -1

    def fit_height(self) -> None:
        """Height for the first rows as wrapped at the present width (0 when empty)."""
        # A list that fits needs no scroll bar: none comes and goes to change the width the rows wrap to.
        fits = self.count() <= self.MAX_ROWS
        self.setVerticalScrollBarPolicy(Qt.ScrollBarPolicy.ScrollBarAlwaysOff if fits
                                        else Qt.ScrollBarPolicy.ScrollBarAsNeeded)
        self._fitted_width = self.viewport().width()
        if not self.count():
            self.setFixedHeight(0)
            return
        self.doItemsLayout()
        if fits:
            rows = self.contentsSize().height()
        else:  # down to the top of the first row left out
            rows = self.visualItemRect(self.item(self.MAX_ROWS)).top() - self.visualItemRect(self.item(0)).top()
        self.setFixedHeight(rows + 2 * self.frameWidth())

    def resizeEvent(self, event: Any) -> None:
        super().resizeEvent(event)
        if self.viewport().width() != self._fitted_width:
            self.fit_height()


class SampleGrid(QWidget):
    """Sample images with their labels, drawn from one mosaic image (one row per class, or a labelled grid).

    Pixels are shown as they are (nearest neighbour when enlarged), at the
    model's input resolution. Table rows are listed as text instead.
    """

    GAP = 3
    COLUMNS = 8
    MAX_TILE = 48
    MIN_TILE = 14
    TEXT_ROWS = 12

    def __init__(self, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.mosaic: QImage | None = None
        self.tile_shape = (0, 0)
        self.labels: list[int] = []
        self.class_names: list[str] = []
        self.rows: np.ndarray | None = None
        self.grouped = False
        self.dimmed = False
        self.placeholder = "No samples to show"
        policy = QSizePolicy(QSizePolicy.Policy.Preferred, QSizePolicy.Policy.Preferred)
        policy.setHeightForWidth(True)
        self.setSizePolicy(policy)
        self.setMinimumWidth(160)

    def set_samples(self, images: np.ndarray | None, labels: np.ndarray, class_names: list[str], grouped: bool,
                    rows: np.ndarray | None = None) -> None:
        """Show ``images`` (N, H, W, C uint8, C of 1 or 3) labelled by ``labels``; or table ``rows``."""
        self.labels = [int(v) for v in labels]
        self.class_names = list(class_names)
        self.grouped = grouped
        self.rows = rows
        self.mosaic = None
        if images is not None and len(images):
            count, height, width, channels = images.shape
            # One strip of tiles side by side: a single image, each tile drawn from its own source rectangle.
            strip = np.ascontiguousarray(images.transpose(1, 0, 2, 3).reshape(height, count * width, channels))
            image_format = QImage.Format.Format_Grayscale8 if channels == 1 else QImage.Format.Format_RGB888
            self.mosaic = QImage(strip.data, count * width, height, strip.strides[0], image_format).copy()
            self.tile_shape = (height, width)
        self.updateGeometry()
        self.update()

    def set_dimmed(self, dimmed: bool) -> None:
        """Grey the samples out while newer ones load."""
        self.dimmed = dimmed
        self.update()

    # -- geometry ------------------------------------------------------------

    def _row_groups(self) -> list[tuple[str, list[int]]]:
        """(row label, sample positions) for each drawn row."""
        if self.grouped:
            groups: dict[int, list[int]] = {}
            for position, label in enumerate(self.labels):
                groups.setdefault(label, []).append(position)
            return [(self._class_name(label), groups[label]) for label in sorted(groups)]
        positions = list(range(len(self.labels)))
        return [("", positions[i:i + self.COLUMNS]) for i in range(0, len(positions), self.COLUMNS)]

    def _class_name(self, label: int) -> str:
        return self.class_names[label] if 0 <= label < len(self.class_names) else str(label)

    def _label_width(self, width: int | None = None) -> int:
        """The class name column: as wide as the widest name while the tiles keep half their full size."""
        if not self.grouped:
            return 0
        width = self.width() if width is None else width
        metrics = self.fontMetrics()
        widest = max((metrics.horizontalAdvance(self._class_name(label)) for label in set(self.labels)), default=0)
        room = width - 10 - self._columns() * (self.MAX_TILE // 2 + self.GAP) - self.GAP
        return min(widest, max(room, 110)) + 10

    def row_label(self, name: str) -> str:
        """A row's class name as drawn: whole when it fits its column, else shortened with an ellipsis."""
        return _fitted(self.fontMetrics(), name, self._label_width() - 6)

    def _columns(self) -> int:
        return max((len(positions) for _, positions in self._row_groups()), default=self.COLUMNS)

    def _tile(self, width: int) -> int:
        columns = self._columns()
        free = width - self._label_width(width) - self.GAP * (columns + 1)
        return int(max(self.MIN_TILE, min(self.MAX_TILE, free // max(columns, 1))))

    def _caption_height(self) -> int:
        return 0 if self.grouped else self.fontMetrics().height()

    def hasHeightForWidth(self) -> bool:
        return True

    def heightForWidth(self, width: int) -> int:
        if self.mosaic is None:
            lines = 0 if self.rows is None else min(len(self.rows), self.TEXT_ROWS) + 1
            return max(60, lines * (self.fontMetrics().height() + 2) + 8)
        rows = len(self._row_groups())
        return rows * (self._tile(width) + self._caption_height() + self.GAP) + self.GAP

    def sizeHint(self) -> QSize:
        return QSize(360, self.heightForWidth(360))

    # -- painting ------------------------------------------------------------

    def paintEvent(self, event: Any) -> None:
        painter = QPainter(self)
        palette = self.palette()
        if self.dimmed:
            painter.setOpacity(0.45)
        if self.mosaic is None:
            self._paint_text(painter, palette)
            return
        tile = self._tile(self.width())
        height, width = self.tile_shape
        # Shrinking big photos needs smoothing; enlarging tiny digits should show their real pixels.
        painter.setRenderHint(QPainter.RenderHint.SmoothPixmapTransform, tile < max(height, width))
        label_width = self._label_width()
        metrics = self.fontMetrics()
        caption = self._caption_height()
        painter.setPen(palette.color(QPalette.ColorRole.WindowText))
        y = self.GAP
        for row_label, positions in self._row_groups():
            if row_label:
                text = _fitted(metrics, row_label, label_width - 6)
                painter.drawText(QRectF(0, y, label_width - 6, tile),
                                 Qt.AlignmentFlag.AlignRight | Qt.AlignmentFlag.AlignVCenter, text)
            x = label_width + self.GAP
            for position in positions:
                target = QRectF(x, y, tile, tile)
                painter.drawImage(target, self.mosaic, QRectF(position * width, 0, width, height))
                if caption:
                    text = _fitted(metrics, self._class_name(self.labels[position]), tile + 4)
                    painter.drawText(QRectF(x - 2, y + tile, tile + 4, caption), Qt.AlignmentFlag.AlignHCenter,
                                     text)
                x += tile + self.GAP
            y += tile + caption + self.GAP

    def _paint_text(self, painter: QPainter, palette: QPalette) -> None:
        if self.rows is None or not len(self.rows):
            painter.setPen(palette.color(QPalette.ColorRole.PlaceholderText))
            painter.drawText(self.rect(), Qt.AlignmentFlag.AlignCenter, self.placeholder)
            return
        painter.setPen(palette.color(QPalette.ColorRole.WindowText))
        metrics = self.fontMetrics()
        line = metrics.height() + 2
        features = self.rows.shape[1]
        painter.drawText(4, 4 + metrics.ascent(), f"{len(self.rows)} training rows of {features} feature"
                                                  f"{'s' if features != 1 else ''}, for example:")
        shown_rows = self._text_rows()
        label_width = min(max((metrics.horizontalAdvance(self._class_name(self.labels[i])) for i in shown_rows),
                              default=0), max(110, self.width() // 3)) + 10
        columns = min(features, 8)
        texts = {i: [f"{v:.4g}" for v in self.rows[i][:columns]] for i in shown_rows}
        # Right-aligned columns as wide as their widest value, so the numbers line up without a monospace font.
        widths = [max(metrics.horizontalAdvance(texts[i][c]) for i in shown_rows) + 12 for c in range(columns)]
        for line_index, position in enumerate(shown_rows):
            y = 4 + (line_index + 1) * line
            name = _fitted(metrics, self._class_name(self.labels[position]), label_width - 6)
            painter.drawText(QRectF(0, y, label_width, line), Qt.AlignmentFlag.AlignRight, name)
            x = label_width
            for column, text in enumerate(texts[position]):
                if x + widths[column] > self.width():
                    break
                painter.drawText(QRectF(x, y, widths[column], line), Qt.AlignmentFlag.AlignRight, text)
                x += widths[column]
            if features > columns and x + 16 < self.width():
                painter.drawText(QRectF(x + 4, y, 16, line), Qt.AlignmentFlag.AlignLeft, "…")

    def _text_rows(self) -> list[int]:
        """Up to TEXT_ROWS row positions, taking the classes in turn so that each shows."""
        groups: dict[int, list[int]] = {}
        for position, label in enumerate(self.labels):
            groups.setdefault(label, []).append(position)
        order = [group[i] for i in range(max(map(len, groups.values()), default=0))
                 for _, group in sorted(groups.items()) if i < len(group)]
        return order[:self.TEXT_ROWS]


class ClassCountsChart(QWidget):
    """One stacked bar per class (train, validation, test), scaled to the largest class."""

    MIN_BAR = 60

    def __init__(self, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.class_names: list[str] = []
        self.counts: dict[str, list[int]] = {}
        self.setSizePolicy(QSizePolicy.Policy.Preferred, QSizePolicy.Policy.Fixed)
        self.setMouseTracking(True)

    def set_counts(self, class_names: list[str], counts: dict[str, list[int]]) -> None:
        self.class_names = list(class_names)
        self.counts = {split: list(counts.get(split) or [0] * len(class_names)) for split in SPLIT_NAMES}
        self.setFixedHeight(self._row_height() * (len(self.class_names) + 1) + 4 if self.class_names else 0)
        self.update()

    def totals(self) -> list[int]:
        return [sum(self.counts[split][i] for split in SPLIT_NAMES) for i in range(len(self.class_names))]

    def _row_height(self) -> int:
        return self.fontMetrics().height() + 4

    def _number_width(self) -> int:
        return self.fontMetrics().horizontalAdvance("000,000") + 6

    def _label_width(self) -> int:
        """The class name column: as wide as the widest name while the bars keep MIN_BAR pixels."""
        widest = max((self.fontMetrics().horizontalAdvance(n) for n in self.class_names), default=0)
        room = self.width() - 10 - 4 - self._number_width() - self.MIN_BAR
        return min(widest, max(room, 40)) + 10

    def row_label(self, index: int) -> str:
        """A class name as drawn: whole when it fits its column, else shortened with an ellipsis."""
        return _fitted(self.fontMetrics(), self.class_names[index], self._label_width() - 6)

    def row_text(self, index: int) -> str:
        """The numbers of one class, as the tooltip shows them."""
        parts = " · ".join(f"{self.counts[split][index]:,} {SPLIT_NAMES[split]}" for split in SPLIT_NAMES)
        return f"{self.class_names[index]}: {parts}"

    def event(self, event: QEvent) -> bool:
        if event.type() == QEvent.Type.ToolTip:
            row = int(event.pos().y() // self._row_height()) - 1
            if 0 <= row < len(self.class_names):
                QToolTip.showText(event.globalPos(), self.row_text(row), self)
            else:
                QToolTip.hideText()
            return True
        return super().event(event)

    def paintEvent(self, event: Any) -> None:
        if not self.class_names:
            return
        painter = QPainter(self)
        palette = self.palette()
        metrics = self.fontMetrics()
        row = self._row_height()
        label_width = self._label_width()
        number_width = self._number_width()
        bar_left = label_width + 4
        bar_width = max(20, self.width() - bar_left - number_width)
        text_color = palette.color(QPalette.ColorRole.WindowText)
        # Legend on the first row.
        x = bar_left
        for split, name in SPLIT_NAMES.items():
            painter.fillRect(QRectF(x, (row - 8) / 2, 8, 8), QColor(SPLIT_COLORS[split]))
            painter.setPen(text_color)
            painter.drawText(QRectF(x + 11, 0, 100, row), Qt.AlignmentFlag.AlignVCenter, name)
            x += 11 + metrics.horizontalAdvance(name) + 12
        totals = self.totals()
        largest = max(max(totals, default=0), 1)
        track = palette.color(QPalette.ColorRole.AlternateBase)
        for index, name in enumerate(self.class_names):
            y = row * (index + 1)
            painter.setPen(text_color)
            painter.drawText(QRectF(0, y, label_width - 6, row), Qt.AlignmentFlag.AlignRight |
                             Qt.AlignmentFlag.AlignVCenter, self.row_label(index))
            bar = QRectF(bar_left, y + 3, bar_width, row - 6)
            painter.fillRect(bar, track)
            left = bar.left()
            for split in SPLIT_NAMES:
                width = bar_width * self.counts[split][index] / largest
                painter.fillRect(QRectF(left, bar.top(), width, bar.height()), QColor(SPLIT_COLORS[split]))
                left += width
            painter.setPen(text_color)
            painter.drawText(QRectF(bar.right() + 4, y, number_width, row), Qt.AlignmentFlag.AlignVCenter,
                             f"{totals[index]:,}")


class DataPanel(QWidget):
    """Choose and check a project's data: settings, samples, split, class counts, skipped files, problems."""

    setting_edit_requested = Signal(str, object)  # data setting key, validated value
    # Several data settings that change together as one undo step ({key: value}, in order). Emitted instead
    # of setting_edit_requested for each key when something is connected to it (a source switch and its path).
    settings_edit_requested = Signal(object)
    preview_shown = Signal(object)                # the DataPreview now on screen
    fit_network_requested = Signal(str)           # the image folder or CSV file (resolved) to shape the network for
    loading_changed = Signal(bool)

    def __init__(self, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.project: Project | None = None
        self.preview: Any = None  # the DataPreview on screen
        self.seed = 0
        self._task: BackgroundTask | None = None
        self._retired: list[BackgroundTask] = []  # cancelled tasks kept alive until their thread ends
        self._cache: tuple[tuple, Any] = ((), None)  # (load key, LabeledTensors) of the last load
        self._reload = False
        self._pending = False  # a preview was asked for while the panel was hidden
        self._timer = QTimer(self)
        self._timer.setSingleShot(True)
        self._timer.setInterval(_COALESCE_MS)
        self._timer.timeout.connect(self._start_loading)
        self._shown_once = False
        # The path each source had when the person left it: a source switch puts that source's own back
        # (an image folder is not where torchvision keeps its datasets, nor a CSV file).
        self._source_paths: dict[str, str] = {}
        self._build()
        self._show_preview(None)

    # -- building --------------------------------------------------------------

    def _build(self) -> None:
        specs = {spec.name: spec for spec in DATA_SETTINGS}
        self.source_form = SettingsForm(tuple(specs[k] for k in _SOURCE_KEYS))
        self.split_form = SettingsForm(tuple(specs[k] for k in _SPLIT_KEYS))
        self.prepare_form = SettingsForm(tuple(specs[k] for k in _PREPARE_KEYS))
        self.forms = (self.source_form, self.split_form, self.prepare_form)
        for form in self.forms:
            form.edit_requested.connect(self._on_form_edit_requested)
        self._align_labels()
        self.path_edit = self.source_form.editors["path"]
        self.browse_button = QPushButton("Browse…")
        self.browse_button.setObjectName("data_browse")
        self.browse_button.clicked.connect(self._on_browse_clicked)
        self._put_browse_button()
        self.source_form.editors["label_column"].setPlaceholderText("empty: the last column")

        self.problem_label = self._message_label("data_problems")
        self.error_label = self._message_label("data_load_error")
        self.fit_button = QPushButton("Fit the network to these images")
        self.fit_button.setObjectName("data_fit_network")
        self.fit_button.setToolTip("Set the Input's shape from the data (the pictures' channels and size, or the "
                                   "table's feature columns), and the last layer and the Output to one score per "
                                   "class (one undo step)")
        self.fit_button.clicked.connect(self._on_fit_button_clicked)
        self.fit_button.hide()
        self.warning_label = self._message_label("data_warnings")

        self.busy = QProgressBar()
        self.busy.setRange(0, 0)
        self.busy.setTextVisible(False)
        self.busy.setFixedSize(56, 6)
        self.busy.setToolTip("Loading the data…")
        self.busy.setVisible(False)
        self.augmented_box = QCheckBox("Augmented")
        self.augmented_box.setObjectName("data_augmented")
        self.augmented_box.setToolTip("Show the samples as a training batch sees them, with the augmentation "
                                      "settings below applied")
        self.augmented_box.toggled.connect(self._on_augmented_toggled)
        self.shuffle_button = QPushButton("Shuffle")
        self.shuffle_button.setObjectName("data_shuffle")
        self.shuffle_button.setToolTip("Show other samples")
        self.shuffle_button.clicked.connect(self._on_shuffle_clicked)
        self.sample_grid = SampleGrid()
        self.sample_caption = QLabel()
        self.sample_caption.setWordWrap(True)  # a dock's width is narrower than the caption
        set_tone(self.sample_caption, HINT)
        self.split_summary = QLabel()
        self.split_summary.setObjectName("data_split_summary")
        self.split_summary.setWordWrap(True)
        self.counts_chart = ClassCountsChart()
        self.normalization_label = QLabel()
        self.normalization_label.setWordWrap(True)
        set_tone(self.normalization_label, HINT)
        self.skipped_button = QToolButton()
        self.skipped_button.setObjectName("data_skipped_toggle")
        self.skipped_button.setCheckable(True)
        self.skipped_button.setToolButtonStyle(Qt.ToolButtonStyle.ToolButtonTextBesideIcon)
        self.skipped_button.setArrowType(Qt.ArrowType.RightArrow)
        self.skipped_button.setAutoRaise(True)
        self.skipped_button.toggled.connect(self._on_skipped_toggled)
        self.skipped_list = SkippedList()
        self.skipped_list.setObjectName("data_skipped_list")
        self.skipped_list.setVisible(False)

        sample_bar = QHBoxLayout()
        sample_bar.addWidget(self._header("Samples"))
        sample_bar.addStretch(1)
        sample_bar.addWidget(self.busy)
        sample_bar.addWidget(self.augmented_box)
        sample_bar.addWidget(self.shuffle_button)

        body = QWidget()
        layout = QVBoxLayout(body)
        layout.setContentsMargins(8, 6, 8, 8)
        layout.setSpacing(6)
        layout.addWidget(self._header("Source"))
        layout.addWidget(self.source_form)
        layout.addWidget(self.problem_label)
        layout.addWidget(self.fit_button, 0, Qt.AlignmentFlag.AlignLeft)
        layout.addWidget(self.error_label)
        layout.addLayout(sample_bar)
        layout.addWidget(self.sample_grid)
        layout.addWidget(self.sample_caption)
        layout.addWidget(self._header("Split"))
        layout.addWidget(self.split_form)
        layout.addWidget(self.split_summary)
        layout.addWidget(self.counts_chart)
        layout.addWidget(self.warning_label)
        self.prepare_header = self._header("Normalization and augmentation")
        layout.addWidget(self.prepare_header)
        layout.addWidget(self.prepare_form)
        layout.addWidget(self.normalization_label)
        layout.addWidget(self.skipped_button)
        layout.addWidget(self.skipped_list)
        layout.addStretch(1)
        scroll = QScrollArea()
        scroll.setWidgetResizable(True)
        scroll.setFrameShape(QFrame.Shape.NoFrame)
        scroll.setHorizontalScrollBarPolicy(Qt.ScrollBarPolicy.ScrollBarAlwaysOff)
        scroll.setWidget(body)
        outer = QVBoxLayout(self)
        outer.setContentsMargins(0, 0, 0, 0)
        outer.addWidget(scroll)

    def _header(self, text: str) -> QLabel:
        label = QLabel(text)
        font = label.font()
        font.setBold(True)
        label.setFont(font)
        label.setContentsMargins(0, 6, 0, 0)
        return label

    def _message_label(self, name: str) -> QLabel:
        label = QLabel()
        label.setObjectName(name)
        label.setWordWrap(True)
        label.setTextInteractionFlags(Qt.TextInteractionFlag.TextSelectableByMouse)
        label.setVisible(False)
        return label

    def _style_message(self, label: QLabel, tone: str) -> None:
        # A box tinted with the tone's colour; the text keeps 4.5:1 on the tinted window in both themes.
        color = tone_color(self.palette(), tone)
        label.setStyleSheet(f"QLabel {{ color: {color.name()}; background: rgba({color.red()}, {color.green()}, "
                            f"{color.blue()}, 28); border: 1px solid rgba({color.red()}, {color.green()}, "
                            f"{color.blue()}, 110); border-radius: 4px; padding: 5px 7px; }}")

    def _align_labels(self) -> None:
        # Three forms, one column of labels: give every label the widest one's width.
        labels = [label for form in self.forms for label in form.labels.values()]
        width = max(label.sizeHint().width() for label in labels)
        for label in labels:
            label.setMinimumWidth(width)

    def _put_browse_button(self) -> None:
        form = self.source_form.form
        row, _ = form.getWidgetPosition(self.path_edit)
        form.removeWidget(self.path_edit)
        holder = QWidget()
        line = QHBoxLayout(holder)
        line.setContentsMargins(0, 0, 0, 0)
        line.addWidget(self.path_edit, 1)
        line.addWidget(self.browse_button)
        form.setWidget(row, QFormLayout.ItemRole.FieldRole, holder)
        self._path_row = row

    # -- project -------------------------------------------------------------

    def set_project(self, project: Project | None) -> None:
        """Show ``project``'s data settings and load its preview (the old project is let go)."""
        if self.project is not None:
            self.project.settings_changed.disconnect(self._on_project_settings_changed)
            graph = self.project.graph
            graph.param_changed.disconnect(self._on_graph_param_changed)
            graph.node_added.disconnect(self._on_graph_node_changed)
            graph.node_removed.disconnect(self._on_graph_node_changed)
        self.project = project
        self._cache = ((), None)
        self.seed = 0
        self._source_paths = {}
        # Nothing of the old project stays on screen: not its load (it could still arrive), samples, counts,
        # problems, skipped files, refusals or load error; the new project's preview replaces "Loading…".
        self._cancel_current()
        self._pending = False
        for form in self.forms:
            form.clear_refusal()
        self.error_label.clear()
        self.error_label.hide()
        self.augmented_box.blockSignals(True)
        self.augmented_box.setChecked(False)
        self.augmented_box.blockSignals(False)
        self._show_preview(None)
        if project is None:
            return
        project.settings_changed.connect(self._on_project_settings_changed)
        project.graph.param_changed.connect(self._on_graph_param_changed)
        project.graph.node_added.connect(self._on_graph_node_changed)
        project.graph.node_removed.connect(self._on_graph_node_changed)
        self._show_settings()
        self.refresh()

    def refresh(self) -> None:
        """Load the data again from disk (files may have changed) and show a new preview."""
        self._reload = True
        self._schedule()

    def input_shape_changed(self, shape: Any = None) -> None:
        """The Input node's shape changed: the samples are fitted to it again."""
        self._schedule()

    def set_read_only(self, read_only: bool) -> None:
        """Lock the settings (while training); samples can still be browsed."""
        for form in self.forms:
            form.set_read_only(read_only)
        self.browse_button.setEnabled(not read_only)

    def _on_form_edit_requested(self, key: str, value: Any) -> None:
        if self.project is not None and key in _SPLIT_KEYS:
            message = split_refusal({**self.project.data, key: value})
            if message:  # said here in the words of the form, before the project refuses it in its own
                self.split_form.show_refusal(message)
                return
        if self.project is not None and key == "source":
            self._request_edits(self._source_switch(value))
            return
        self.setting_edit_requested.emit(key, value)

    def _source_switch(self, source: str) -> dict[str, Any]:
        """The edits that switch to ``source``: the source, and that source's own path instead of the old one's."""
        data = self.project.data
        old_source, path = data.get("source", "digits"), data.get("path", "")
        edits: dict[str, Any] = {"source": source}
        if source == old_source:
            return edits
        if old_source != "digits":
            self._source_paths[old_source] = path
        if source != "digits":  # digits has no path: the old one stays, hidden, until another source is chosen
            own = self._source_paths.get(source, "")
            if own != path:
                edits["path"] = own
        return edits

    def _request_edits(self, edits: dict[str, Any]) -> None:
        if len(edits) > 1 and self.isSignalConnected(QMetaMethod.fromSignal(self.settings_edit_requested)):
            self.settings_edit_requested.emit(edits)
            return
        for key, value in edits.items():
            self.setting_edit_requested.emit(key, value)

    def show_refusal(self, message: str) -> None:
        """Say why the project refused an edit (a rule across settings, like fractions that leave nothing to train)."""
        self.split_form.show_refusal(message)

    def is_loading(self) -> bool:
        return self._task is not None

    def current_problems(self) -> list[str] | None:
        """What the shown preview says would stop training, when it describes the data and network as they are
        now (None while a newer preview is due or loading: it may be out of date)."""
        if self.preview is None or self._pending or self._timer.isActive() or self.is_loading():
            return None
        return list(self.preview.problems)

    def cancel_loading(self, wait_ms: int = 5000) -> bool:
        """Stop any load and wait for its thread (call before the panel goes away). True when all ended."""
        self._timer.stop()
        self._cancel_current()
        ended = all(task.wait(wait_ms) for task in list(self._retired))
        return ended

    def base_dir(self) -> Path | None:
        """Where relative data paths start: the project file's folder (None for an unsaved project)."""
        if self.project is None or self.project.path is None:
            return None
        return Path(self.project.path).resolve().parent

    def _show_settings(self) -> None:
        data = self.project.data if self.project is not None else {}
        for form in self.forms:
            form.set_values(data)
        source = data.get("source", "digits")
        form = self.source_form
        form.form.setRowVisible(self._path_row, source != "digits")
        form.set_row_visible("dataset", source == "torchvision")
        form.set_row_visible("label_column", source == "csv")
        form.labels["path"].setText(_PATH_LABELS.get(source, "Path"))
        self.path_edit.setPlaceholderText(_PATH_HINTS.get(source, ""))
        resolved = self._resolved_path(data.get("path", ""))
        self.path_edit.setToolTip(str(resolved) if resolved else self.source_form.specs["path"].help)
        for key in _AUGMENT_KEYS:
            self.prepare_form.set_row_visible(key, source != "csv")
        self.augmented_box.setVisible(source != "csv")
        self.prepare_header.setText("Normalization" if source == "csv" else "Normalization and augmentation")

    def _resolved_path(self, value: str) -> Path | None:
        if not value:
            return None
        path = Path(value).expanduser()
        base = self.base_dir()
        return path if path.is_absolute() or base is None else base / path

    def _on_project_settings_changed(self, section: str, key: str, value: Any) -> None:
        if section != "data":
            return
        for form in self.forms:
            form.clear_refusal()  # the project took a valid value: an earlier refusal is over
        self._show_settings()
        self._schedule()

    def _on_graph_param_changed(self, node_id: str, name: str, old: Any, value: Any) -> None:
        if self.project is not None and node_id in self.project.graph:
            if self.project.graph.node(node_id).spec.role in ("input", "output"):
                self._schedule()

    def _on_graph_node_changed(self, node: Any) -> None:
        if node.spec.role in ("input", "output"):
            self._schedule()

    # -- browsing --------------------------------------------------------------

    def choose_folder(self, title: str, start: str) -> str:
        """Ask for a folder (tests replace this); '' when cancelled."""
        return QFileDialog.getExistingDirectory(self, title, start)

    def choose_file(self, title: str, start: str, filters: str) -> str:
        """Ask for a file (tests replace this); '' when cancelled."""
        return QFileDialog.getOpenFileName(self, title, start, filters)[0]

    def _on_browse_clicked(self) -> None:
        if self.project is None:
            return
        source = self.project.data.get("source", "digits")
        current = self._resolved_path(self.project.data.get("path", ""))
        start = str(current if current is not None else (self.base_dir() or Path.home()))
        if source == "csv":
            chosen = self.choose_file("Choose a CSV file", start, "CSV files (*.csv);;All files (*)")
        else:
            title = "Choose the dataset folder" if source == "torchvision" else "Choose an image folder"
            chosen = self.choose_folder(title, start)
        if chosen:
            self.setting_edit_requested.emit("path", self._stored_path(Path(chosen)))

    def _stored_path(self, chosen: Path) -> str:
        """Relative to the project's folder when inside it (the project can move with its data), else absolute."""
        base = self.base_dir()
        resolved = chosen.resolve()
        if base is not None and resolved.is_relative_to(base):
            return resolved.relative_to(base).as_posix() or "."
        return str(chosen)

    # -- samples -----------------------------------------------------------------

    def _on_shuffle_clicked(self) -> None:
        self.seed += 1
        self._schedule()

    def _on_augmented_toggled(self, checked: bool) -> None:
        self._schedule()

    def _on_skipped_toggled(self, expanded: bool) -> None:
        self.skipped_list.setVisible(expanded)
        self.skipped_button.setArrowType(Qt.ArrowType.DownArrow if expanded else Qt.ArrowType.RightArrow)

    # -- loading -----------------------------------------------------------------

    def _schedule(self) -> None:
        """Ask for a new preview soon (edits in one burst give one load); nothing loads while hidden."""
        if self.project is None:
            return
        self._pending = True
        if self.isVisible() and not self._timer.isActive():
            self._timer.start(_COALESCE_MS)

    def showEvent(self, event: Any) -> None:
        super().showEvent(event)
        if self._pending:
            # The first load imports torch: let the window paint and settle first (start-up speed).
            self._timer.start(_COALESCE_MS if self._shown_once else _FIRST_LOAD_DELAY_MS)
        self._shown_once = True

    def _start_loading(self) -> None:
        if self.project is None:
            return
        self._pending = False
        if self._reload:
            self._cache = ((), None)
            self._reload = False
        self._cancel_current()
        request = {
            "graph": self.project.graph.copy(),  # a snapshot: the worker must not read a graph being edited
            "settings": dict(self.project.data),
            "base_dir": self.base_dir(),
            "seed": self.seed,
            "augmented": self.augmented_box.isChecked(),
            "cache": self._cache,
        }
        task = run_task(_load_preview_job, request)
        task.finished.connect(lambda result, t=task: self._on_task_finished(t, result))
        task.failed.connect(lambda message, t=task: self._on_task_failed(t, message))
        task.done.connect(lambda t=task: self._on_task_done(t))
        self._task = task
        self._set_busy(True)

    def _cancel_current(self) -> None:
        if self._task is not None:
            self._task.cancel()
            self._retired.append(self._task)
            self._task = None
            self._set_busy(False)

    def _set_busy(self, busy: bool) -> None:
        self.busy.setVisible(busy)
        self.sample_grid.set_dimmed(busy)
        self.loading_changed.emit(busy)

    def _on_task_finished(self, task: BackgroundTask, result: tuple[tuple, Any]) -> None:
        if task is not self._task:
            return  # superseded by a newer request
        key, preview = result
        if preview.data is not None:
            self._cache = (key, preview.data)
        self.error_label.setVisible(False)
        self._show_preview(preview)

    def _on_task_failed(self, task: BackgroundTask, message: str) -> None:
        if task is not self._task:
            return
        # The previous preview stays; the reason shows above it.
        self.error_label.setText(f"Could not load the data: {message}")
        self._style_message(self.error_label, ERROR)
        self.error_label.setVisible(True)

    def _on_task_done(self, task: BackgroundTask) -> None:
        if task is self._task:
            self._task = None
            self._set_busy(False)
        elif task in self._retired:
            self._retired.remove(task)
        # The connections above hold the task (a cycle Python cannot see); deleting it releases them.
        # ``done`` can run a moment before the thread has returned, so wait for that first.
        task.wait(2000)
        task.deleteLater()

    # -- showing -----------------------------------------------------------------

    def _on_fit_button_clicked(self) -> None:
        folder = self._resolved_path(self.project.data.get("path", "")) if self.project is not None else None
        if folder is not None:
            self.fit_network_requested.emit(str(folder))

    def _show_preview(self, preview: Any) -> None:
        self.preview = preview
        source = self.project.data.get("source") if self.project is not None else None
        self.fit_button.setText("Fit the network to this table" if source == "csv"
                                else "Fit the network to these images")
        # A table's mismatch (feature count) leaves no class names in the preview: offered on its problem too.
        shown = preview is not None and (bool(preview.class_names) or bool(preview.problems))
        chosen = self.project is not None and bool(str(self.project.data.get("path") or "").strip())
        self.fit_button.setVisible(source in ("folder", "csv") and chosen and shown)
        problems = list(preview.problems) if preview is not None else []
        self.problem_label.setText("\n".join(problems))
        self._style_message(self.problem_label, ERROR)
        self.problem_label.setVisible(bool(problems))
        if preview is None or (preview.images is None and preview.rows is None):
            self.sample_grid.placeholder = "Loading…" if preview is None and self.project else "No samples to show"
            self.sample_grid.set_samples(None, np.zeros(0, dtype=np.int64), [], False)
        else:
            self.sample_grid.placeholder = "No samples to show"
            self.sample_grid.set_samples(preview.images, preview.labels, preview.class_names, preview.grouped,
                                         preview.rows)
        has_samples = self.sample_grid.mosaic is not None or self.sample_grid.rows is not None
        self.shuffle_button.setEnabled(has_samples)
        self.augmented_box.setEnabled(has_samples)
        self.sample_caption.setText(self._sample_caption(preview))
        self.sample_caption.setVisible(bool(self.sample_caption.text()))
        sizes = preview.split_sizes if preview is not None else {}
        self.split_summary.setText(" · ".join(f"{sizes[s]:,} {SPLIT_NAMES[s]}" for s in SPLIT_NAMES if s in sizes))
        self.split_summary.setVisible(bool(sizes))
        self.counts_chart.set_counts(preview.class_names if preview is not None and sizes else [],
                                     preview.class_counts if preview is not None else {})
        warnings = list(preview.warnings) if preview is not None else []
        self.warning_label.setText("\n".join(f"• {w}" for w in warnings) if len(warnings) > 1 else "".join(warnings))
        self._style_message(self.warning_label, WARNING)
        self.warning_label.setVisible(bool(warnings))
        self.show_normalization()
        self._show_skipped(preview.skipped if preview is not None else [])
        if preview is not None:
            self.preview_shown.emit(preview)

    def _sample_caption(self, preview: Any) -> str:
        if preview is None or preview.images is None or not len(preview.images):
            return ""
        _, height, width, channels = preview.images.shape
        colour = "grey" if channels == 1 else "colour"
        if preview.grouped:
            most = max(np.bincount(preview.labels).max(initial=0), 1)
            how = f"{len(preview.images)} training samples, up to {most} per class"
        else:
            how = f"{len(preview.images)} random training samples"
        state = "augmented" if self.augmented_box.isChecked() else "raw pixels"
        return f"{how} · {width}×{height} {colour} · {state}"

    def show_normalization(self) -> None:
        """Show the normalization line again (the preview's statistics, and whether the project's still hold)."""
        self.normalization_label.setText(self._normalization_text(self.preview))
        self.normalization_label.setVisible(bool(self.normalization_label.text()))

    def _normalization_text(self, preview: Any) -> str:
        if preview is None or preview.normalization is None:
            return ""
        mean, std = preview.normalization.mean, preview.normalization.std
        if len(mean) > 4:
            return f"Normalized per feature ({len(mean)}) with the training split's mean and std. {self._stored_text()}"

        def numbers(values: tuple[float, ...]) -> str:
            text = ", ".join(f"{v:.3f}" for v in values)
            return text if len(values) == 1 else f"({text})"

        return (f"Normalized with the training split's mean {numbers(mean)} and std {numbers(std)}. "
                f"{self._stored_text()}")

    def _stored_text(self) -> str:
        """Where the project's own statistics stand: not yet computed, from which run, or out of date and why."""
        stored = self.project.normalization if self.project is not None else None
        if stored is None:
            return "Stored in the project when training starts."
        run = Path(stored.run).name
        reason = stored.stale_reason(self.project.data, input_shape(self.project.graph))
        if reason:
            return f"The project's statistics from run {run} are out of date ({reason}); training computes new ones."
        return f"Stored in the project from run {run}."

    def add_training_skipped(self, entries: list[dict[str, str]]) -> None:
        """Add the files a run skipped while training (a streamed folder finds unreadable files only then)."""
        from dlstudio.core.data import SkippedFile

        shown = {item.path: item for item in (self.preview.skipped if self.preview is not None else [])}
        shown.update({entry["path"]: SkippedFile(entry["path"], entry["reason"]) for entry in entries})
        self._show_skipped(list(shown.values()))

    def _show_skipped(self, skipped: list[Any]) -> None:
        self.skipped_list.clear()
        root = self._resolved_path(self.project.data.get("path", "")) if self.project is not None else None
        for item in skipped:
            path = Path(item.path)
            shown = path.relative_to(root).as_posix() if root is not None and path.is_relative_to(root) else item.path
            self.skipped_list.addItem(f"{shown} — {item.reason}")
            self.skipped_list.item(self.skipped_list.count() - 1).setToolTip(f"{item.path}\n{item.reason}")
        count = len(skipped)
        self.skipped_list.fit_height()
        self.skipped_button.setText(f"{count:,} file{'s' if count != 1 else ''} skipped ({_why_skipped(skipped)})")
        self.skipped_button.setVisible(bool(count))
        self.skipped_list.setVisible(bool(count) and self.skipped_button.isChecked())

    def changeEvent(self, event: QEvent) -> None:
        # A theme switch changes the palette: restyle the coloured message boxes.
        if event.type() in (QEvent.Type.PaletteChange, QEvent.Type.ApplicationPaletteChange):
            for label, colors in ((self.problem_label, ERROR), (self.error_label, ERROR),
                                  (self.warning_label, WARNING)):
                self._style_message(label, colors)
        super().changeEvent(event)


def _why_skipped(skipped: list[Any]) -> str:
    """The kinds of skipped file, in a few words: "unreadable", "not images" or "2 not images, 1 unreadable"."""
    others = sum(1 for item in skipped if str(item.reason).startswith("not an image file type"))
    unreadable = len(skipped) - others
    if not others:
        return "unreadable"
    if not unreadable:
        return "not images" if others > 1 else "not an image"
    return f"{others:,} not image{'s' if others != 1 else ''}, {unreadable:,} unreadable"

"""Per-class precision, recall, F1 and support as a compact sortable table (under a confusion matrix).

Rows are plain dicts as :func:`dlstudio.core.inspect.evaluate.per_class_from_confusion`
and ``Evaluation.per_class`` give them. The F1 cell carries a bar as long as
the score, tinted from the theme's mistake colour (0) to its correct colour
(1; by the cube of the score, so 0.8 already looks half wrong), so the
classes the model handles worst stand out without sorting; the header sorts
by any column (numbers as numbers).
"""

from __future__ import annotations

from typing import Any

from PySide6.QtCore import (
    QAbstractTableModel,
    QEvent,
    QModelIndex,
    QPersistentModelIndex,
    QRect,
    QSortFilterProxyModel,
    Qt,
)
from PySide6.QtGui import QColor, QPainter
from PySide6.QtWidgets import (
    QAbstractItemView,
    QHeaderView,
    QStyledItemDelegate,
    QStyleOptionViewItem,
    QTableView,
    QWidget,
)

from dlstudio.gui.plots.style import plot_colors

COLUMNS = ("class", "precision", "recall", "F1", "support")
_KEYS = ("class", "precision", "recall", "f1", "support")
F1_COLUMN = 3
SORT_ROLE = Qt.ItemDataRole.UserRole


class PerClassModel(QAbstractTableModel):
    """One row per class; the display shows three decimals, the sort role the number itself."""

    def __init__(self, parent: Any = None) -> None:
        super().__init__(parent)
        self.rows: list[dict[str, Any]] = []

    def set_rows(self, rows: list[dict[str, Any]]) -> None:
        self.beginResetModel()
        self.rows = [dict(row, order=index) for index, row in enumerate(rows)]
        self.endResetModel()

    def rowCount(self, parent: QModelIndex | QPersistentModelIndex = QModelIndex()) -> int:
        return 0 if parent.isValid() else len(self.rows)

    def columnCount(self, parent: QModelIndex | QPersistentModelIndex = QModelIndex()) -> int:
        return 0 if parent.isValid() else len(COLUMNS)

    def headerData(self, section: int, orientation: Qt.Orientation, role: int = Qt.ItemDataRole.DisplayRole) -> Any:
        if orientation == Qt.Orientation.Horizontal and role == Qt.ItemDataRole.DisplayRole:
            return COLUMNS[section]
        if orientation == Qt.Orientation.Horizontal and role == Qt.ItemDataRole.ToolTipRole:
            return _HEADER_TIPS[section]
        return None

    def data(self, index: QModelIndex | QPersistentModelIndex, role: int = Qt.ItemDataRole.DisplayRole) -> Any:
        if not index.isValid():
            return None
        row, key = self.rows[index.row()], _KEYS[index.column()]
        value = row[key]
        if role == Qt.ItemDataRole.DisplayRole:
            return value if key in ("class", "support") else f"{value:.3f}"
        if role == SORT_ROLE:
            return row["order"] if key == "class" else value  # classes sort in the model's order
        if role == Qt.ItemDataRole.TextAlignmentRole:
            return int((Qt.AlignmentFlag.AlignLeft if key == "class" else Qt.AlignmentFlag.AlignRight)
                       | Qt.AlignmentFlag.AlignVCenter)
        if role == Qt.ItemDataRole.ToolTipRole:
            return (f"{row['class']}: precision {row['precision']:.1%} (of those predicted {row['class']}, how many "
                    f"were), recall {row['recall']:.1%} (of the {row['support']} that were, how many were found), "
                    f"F1 {row['f1']:.3f}")
        return None


_HEADER_TIPS = ("The class (sorts in the model's order)",
                "Of the samples predicted as this class, the share that were",
                "Of the samples of this class, the share predicted as it",
                "The harmonic mean of precision and recall; the bar is red for the worst classes",
                "How many samples of this class there were")


class _ScoreBarDelegate(QStyledItemDelegate):
    """The F1 cell: a bar as long as the score, red for 0 to the theme's correct colour for 1, under the number."""

    def paint(self, painter: QPainter, option: QStyleOptionViewItem,
              index: QModelIndex | QPersistentModelIndex) -> None:
        score = index.data(SORT_ROLE)
        if isinstance(score, float):
            colours = plot_colors(option.palette)
            low, high = colours.mistake, colours.correct
            share = max(0.0, min(1.0, score))
            # Cubed for the colour: scores of trained models crowd between 0.8 and 1, where the difference matters.
            tint = share ** 3
            colour = QColor.fromRgbF(low.redF() + (high.redF() - low.redF()) * tint,
                                     low.greenF() + (high.greenF() - low.greenF()) * tint,
                                     low.blueF() + (high.blueF() - low.blueF()) * tint, 0.45)
            bar = QRect(option.rect.adjusted(2, 3, -2, -3))
            bar.setWidth(max(2, round(bar.width() * share)))
            painter.fillRect(bar, colour)
        super().paint(painter, option, index)


class PerClassTable(QTableView):
    """The per-class table: compact rows, sortable, narrow enough to sit under a matrix in a small dock."""

    def __init__(self, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.setObjectName("PerClassTable")
        self.table_model = PerClassModel(self)
        self.proxy = QSortFilterProxyModel(self)
        self.proxy.setSortRole(SORT_ROLE)
        self.proxy.setSourceModel(self.table_model)
        self.setModel(self.proxy)
        self.setItemDelegateForColumn(F1_COLUMN, _ScoreBarDelegate(self))
        self.setSortingEnabled(True)
        self.sortByColumn(0, Qt.SortOrder.AscendingOrder)
        self.setSelectionBehavior(QAbstractItemView.SelectionBehavior.SelectRows)
        self.setEditTriggers(QAbstractItemView.EditTrigger.NoEditTriggers)
        self.setAlternatingRowColors(True)
        self.setWordWrap(False)
        self.verticalHeader().hide()
        self.verticalHeader().setSectionResizeMode(QHeaderView.ResizeMode.Fixed)
        self.verticalHeader().setDefaultSectionSize(self.fontMetrics().height() + 6)
        header = self.horizontalHeader()
        # Columns as wide as their names and numbers (a narrow table scrolls rather than cutting them);
        # room to spare lengthens the F1 bars.
        header.setSectionResizeMode(QHeaderView.ResizeMode.ResizeToContents)
        header.setSectionResizeMode(F1_COLUMN, QHeaderView.ResizeMode.Stretch)
        header.setStretchLastSection(False)
        header.setMinimumSectionSize(36)
        header.setHighlightSections(False)
        # Small minimum: the table must never widen the dock it sits in (the window fits 700 px).
        self.setMinimumSize(120, 60)

    def set_rows(self, rows: list[dict[str, Any]]) -> None:
        """Show these rows (dicts with class, precision, recall, f1, support); [] empties the table."""
        self.table_model.set_rows(rows)

    def rows(self) -> list[dict[str, Any]]:
        """The rows as given (class order), without the view's sorting."""
        return [{key: row[key] for key in _KEYS} for row in self.table_model.rows]

    def shown_column(self, column: int) -> list[str]:
        """The texts of a column top to bottom, as sorted on screen."""
        return [self.proxy.index(row, column).data() for row in range(self.proxy.rowCount())]

    def changeEvent(self, event: QEvent) -> None:
        if event.type() in (QEvent.Type.PaletteChange, QEvent.Type.ApplicationPaletteChange):
            self.viewport().update()  # the bars follow the theme
        super().changeEvent(event)

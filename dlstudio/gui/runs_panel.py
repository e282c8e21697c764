"""The run history: past runs of the project in a table to sort, filter and compare; selecting several
overlays their curves.

Fed with ``summarize_run`` dicts (``dlstudio.core.training.runs``), or the richer
rows of ``dlstudio.core.runs_compare.read_runs_for_comparison`` (settings,
network, curves), by the owner. The settings that differ between the listed runs
get a column each (all of them with "Show all settings"); two selected runs open
side by side (:mod:`dlstudio.gui.run_compare`) from the rows in memory; "Apply
This Run's Settings" hands the row to the owner (``apply_settings_requested``),
who makes it one undo step. The owner, who also reads the selected runs' metrics for the overlays and starts
a run the person asked to continue or deletes the run the person asked to
delete (the panel asks for confirmation first and never touches the disk: the
project's document decides what may be deleted). The owner tells it when a run trains
(:meth:`RunsPanel.set_training`): the folder of that run is being written, so
it can be neither deleted nor continued, and no other run can be continued.
"""

from __future__ import annotations

from datetime import datetime
from pathlib import Path
from typing import Any

from PySide6.QtCore import QPoint, Qt, QUrl, Signal
from PySide6.QtGui import QAction, QColor, QDesktopServices, QPalette
from PySide6.QtWidgets import (
    QAbstractItemView,
    QCheckBox,
    QHBoxLayout,
    QHeaderView,
    QLabel,
    QLineEdit,
    QMenu,
    QMessageBox,
    QPushButton,
    QStackedLayout,
    QTreeWidget,
    QTreeWidgetItem,
    QVBoxLayout,
    QWidget,
)

from dlstudio.core import runs_compare
from dlstudio.core.sweep.study import pruned_by_sweep
from dlstudio.gui.theme import DARK_CANVAS, LIGHT_CANVAS

# The columns every run has: (key, title, header tooltip). The settings that differ go between the run's
# result (name, status, best validation and test accuracy: what a narrow dock shows without scrolling) and
# the rest, so that what was changed stands next to what it gave.
_LEADING = (("run", "Run", "The run's folder, named by its start time"), ("status", "Status", "How the run ended"),
            ("best", "Best val", "Best validation accuracy over the epochs (a reconstruction: lowest loss)"),
            ("test", "Test", "Accuracy on the test split at the end of the run (a reconstruction: its loss)"))
_TRAILING = (("final", "Final val", "Validation accuracy of the last epoch (a reconstruction: its loss)"),
             ("epochs", "Epochs", "Epochs finished (of those planned)"),
             ("time", "Time", "Training time: the epochs' time together"),
             ("speed", "Samples/s", "Training samples per second, the mean over the epochs (blank when the run did "
                                    "not record it)"),
             ("started", "Started", "When the run started"))
COLUMNS = tuple(title for _key, title, _tip in _LEADING + _TRAILING)  # the columns without settings
_RUN, _STATUS = 0, 1
_NUMERIC = ("epochs", "best", "final", "test", "time", "speed")
_SETTING = "setting:"  # column keys of settings: "setting:training.learning_rate"
# Widest a column opens at (the person may widen it; the full value is in each cell's tooltip).
_MAX_COLUMN_WIDTH = 150
_RUN_DIR_ROLE = Qt.ItemDataRole.UserRole
_SORT_ROLE = Qt.ItemDataRole.UserRole + 1
_RESUMABLE_ROLE = Qt.ItemDataRole.UserRole + 2
_STATUS_TEXT = {"completed": "completed", "early_stopped": "stopped early", "stopped": "stopped",
                "failed": "failed", "incomplete": "incomplete", "damaged": "damaged", "missing": "missing",
                "training": "training", "paused": "paused"}
_PROBLEMS = ("failed", "damaged", "missing")
_RIGHT = Qt.AlignmentFlag.AlignRight | Qt.AlignmentFlag.AlignVCenter
_CONTINUE_TIP = "Train on from the run's last checkpoint (weights, optimizer and curves as they were) up to its epochs"
_DELETE_TIP = "Delete the run's folder with its metrics and checkpoints"
_REMOVE_TIP = "Take the run off the list; its files (if any) are left where they are"
_COMPARE_TIP = "Show the two selected runs side by side: settings, network and curves"
_APPLY_TIP = ("Set the project's training settings to this run's (and its layer parameters, when the network has "
              "the same layers and connections), as one step to undo")
_SHOW_ALL_TIP = ("Show a column for every training and data setting, also those all listed runs share (layer "
                 "parameters get a column only where runs differ)")
# Why a run that is not training cannot be continued, by how it ended.
_FINISHED_REASONS = {"completed": "The run trained all its epochs.",
                     "early_stopped": "Early stopping ended this run: more epochs did not improve it.",
                     "damaged": "The run's files cannot be read.",
                     "missing": "The run's folder is no longer on disk."}


class _RunItem(QTreeWidgetItem):
    """A row that sorts numbers as numbers (and missing values last), not as text."""

    def __lt__(self, other: QTreeWidgetItem) -> bool:
        column = self.treeWidget().sortColumn() if self.treeWidget() else 0
        mine, theirs = self.data(column, _SORT_ROLE), other.data(column, _SORT_ROLE)
        if mine is None or theirs is None:
            return mine is None and theirs is not None
        return mine < theirs


class RunsPanel(QWidget):
    """Past runs: name (the timestamp folder), status, epochs, best validation and test accuracy, start time.

    Signals: ``selection_changed(list[str])`` with the selected run folders
    (in the list's order), ``delete_requested(str)`` when the person confirmed
    deleting a run's folder, ``remove_requested(str)`` to take a missing run
    off the list, ``continue_requested(str)`` when the person asked to continue
    a run (Continue Training button or context menu; only for a run that can be).
    """

    selection_changed = Signal(list)
    delete_requested = Signal(str)
    remove_requested = Signal(str)
    continue_requested = Signal(str)
    apply_settings_requested = Signal(object)  # the run's row: the owner makes the project's settings its own

    def __init__(self, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self._selected: list[str] = []
        self._training = False
        self._active_run: Path | None = None  # the folder a run is writing now
        self._rows: dict[str, dict[str, Any]] = {}  # by run folder, as given to set_runs
        self._columns: list[tuple[str, str, str]] = []  # (key, title, header tooltip) of the tree's columns
        self._differing: set[str] = set()  # setting column keys whose values differ between the runs
        self._widths: dict[str, int] = {}  # column widths the person set, by key
        self._setting_widths: dict[str, int] = {}  # widths of setting columns, sized once when they appeared
        self.compare_dialog: Any = None  # the RunCompareDialog open, if any
        self._tree = QTreeWidget()
        self._tree.setObjectName("RunsList")
        self._tree.setRootIsDecorated(False)
        self._tree.setUniformRowHeights(True)
        self._tree.setAlternatingRowColors(True)
        self._tree.setSelectionMode(QAbstractItemView.SelectionMode.ExtendedSelection)
        self._tree.setSelectionBehavior(QAbstractItemView.SelectionBehavior.SelectRows)
        self._tree.setTextElideMode(Qt.TextElideMode.ElideRight)
        self._tree.header().setTextElideMode(Qt.TextElideMode.ElideRight)  # a right-aligned title keeps its start
        self._tree.setHorizontalScrollMode(QAbstractItemView.ScrollMode.ScrollPerPixel)
        self._tree.setContextMenuPolicy(Qt.ContextMenuPolicy.CustomContextMenu)
        self._tree.customContextMenuRequested.connect(self._on_tree_context_menu_requested)
        self._tree.itemSelectionChanged.connect(self._on_tree_selection_changed)
        self._tree.setToolTip("Select several runs (Ctrl or Shift + click) to overlay their curves; two to compare")
        header = self._tree.header()
        header.setStretchLastSection(True)
        header.setSectionResizeMode(QHeaderView.ResizeMode.Interactive)
        header.setSortIndicatorShown(True)
        header.sectionResized.connect(self._on_header_section_resized)
        self._set_columns([])
        self._tree.setSortingEnabled(True)
        self._tree.sortByColumn(self.column_of("Started"), Qt.SortOrder.DescendingOrder)  # newest first

        self.filter_edit = QLineEdit()
        self.filter_edit.setObjectName("runs_filter")
        self.filter_edit.setPlaceholderText("Filter: adam, completed, 0.01…")
        self.filter_edit.setClearButtonEnabled(True)
        self.filter_edit.setToolTip("Show only the runs with a cell that contains this text (any column, "
                                    "also settings all runs share)")
        self.filter_edit.textChanged.connect(self._on_filter_edit_text_changed)
        self.show_all_check = QCheckBox("Show all settings")
        self.show_all_check.setObjectName("runs_show_all")
        self.show_all_check.setToolTip(_SHOW_ALL_TIP)
        self.show_all_check.toggled.connect(self._on_show_all_check_toggled)
        tools = QHBoxLayout()
        tools.setContentsMargins(4, 4, 4, 0)
        tools.addWidget(self.filter_edit, 1)
        tools.addWidget(self.show_all_check)

        self._placeholder = QLabel("No runs yet. Press Train: every run is kept here with its settings and curves.")
        self._placeholder.setAlignment(Qt.AlignmentFlag.AlignCenter)
        self._placeholder.setWordWrap(True)
        self._placeholder.setForegroundRole(QPalette.ColorRole.PlaceholderText)
        self.compare_button = QPushButton("Compare")
        self.compare_button.setObjectName("runs_compare")
        self.compare_button.clicked.connect(self._on_compare_button_clicked)
        # "Continue" alone: with Compare and Delete it keeps the dock narrow enough for a 700-pixel window.
        self.continue_button = QPushButton("Continue")
        self.continue_button.setObjectName("runs_continue")
        self.continue_button.clicked.connect(self._on_continue_button_clicked)
        self.delete_button = QPushButton("Delete…")
        self.delete_button.setObjectName("runs_delete")
        self.delete_button.clicked.connect(self._on_delete_button_clicked)
        self._refusal = QLabel()
        self._refusal.setObjectName("runs_refusal")
        self._refusal.setWordWrap(True)
        self._refusal.hide()
        for button in (self.compare_button, self.continue_button, self.delete_button):
            # Narrower than the style's 80-pixel minimum, wide enough for the word: the dock (beside the
            # Metrics dock) then fits a 700-pixel window.
            button.setMinimumWidth(button.fontMetrics().horizontalAdvance(button.text()) + 12)
        buttons = QHBoxLayout()
        buttons.setContentsMargins(4, 0, 4, 4)
        buttons.addWidget(self._refusal, 1)
        buttons.addStretch(1)
        buttons.addWidget(self.compare_button)
        buttons.addWidget(self.continue_button)
        buttons.addWidget(self.delete_button)
        self._list_page = QWidget()
        page_layout = QVBoxLayout(self._list_page)
        page_layout.setContentsMargins(0, 0, 0, 0)
        page_layout.setSpacing(4)
        page_layout.addLayout(tools)
        page_layout.addWidget(self._tree, 1)
        page_layout.addLayout(buttons)

        self._stack = QStackedLayout(self)
        self._stack.setContentsMargins(0, 0, 0, 0)
        self._stack.addWidget(self._placeholder)
        self._stack.addWidget(self._list_page)
        self._update_buttons()

    # ---- API ------------------------------------------------------------------------------------------

    def set_runs(self, runs: list[dict[str, Any]]) -> None:
        """Show these runs (``summarize_run`` dicts, or rows with settings); runs still listed stay selected.

        The settings that differ between the runs get a column each; the sort
        column, the person's column widths and the filter stay as they were.
        """
        self.show_refusal("")
        previous = list(self._selected)
        sort_key = self._columns[self._tree.sortColumn()][0] if 0 <= self._tree.sortColumn() < len(self._columns) \
            else "started"
        sort_order = self._tree.header().sortIndicatorOrder()
        self._rows = {str(run["run_dir"]): run for run in runs}
        if self.compare_dialog is not None and not set(self.compare_dialog.run_dirs) <= set(self._rows):
            self._close_compare_dialog()  # a run it shows was deleted, or another project opened
        self._tree.blockSignals(True)
        self._tree.setSortingEnabled(False)  # sorting while inserting would move rows under our hands
        self._tree.clear()
        self._set_columns(runs)
        for run in runs:
            self._tree.addTopLevelItem(self._make_item(run))
        self._tree.setSortingEnabled(True)
        keys = [key for key, _title, _tip in self._columns]
        self._tree.sortByColumn(keys.index(sort_key) if sort_key in keys else keys.index("started"), sort_order)
        for item in self._items():
            item.setSelected(item.data(_RUN, _RUN_DIR_ROLE) in previous)
        self._tree.blockSignals(False)
        self._show_setting_columns()
        self._apply_filter()
        self._stack.setCurrentWidget(self._list_page if runs else self._placeholder)
        self._update_selection()

    def column_of(self, title: str) -> int:
        """The index of the column with this header ("Best val", "Learning rate", "conv1.out_channels"); -1 if none."""
        return next((index for index, (_key, name, _tip) in enumerate(self._columns) if name == title), -1)

    def visible_columns(self) -> list[str]:
        """The headers of the columns shown, in the table's order."""
        return [title for index, (_key, title, _tip) in enumerate(self._columns) if not self._tree.isColumnHidden(index)]

    def cell(self, run_dir: str, title: str) -> str:
        """The text of a run's cell in the column with this header ("" when there is no such run or column)."""
        item, column = self.item_for(run_dir), self.column_of(title)
        return item.text(column) if item is not None and column >= 0 else ""

    def visible_runs(self) -> list[str]:
        """The run folders the filter lets through, in the list's order."""
        return [str(item.data(_RUN, _RUN_DIR_ROLE)) for item in self._items() if not item.isHidden()]

    def set_filter(self, text: str) -> None:
        self.filter_edit.setText(text)

    def set_show_all_settings(self, show: bool) -> None:
        self.show_all_check.setChecked(show)

    def run_row(self, run_dir: str) -> dict[str, Any] | None:
        """The row this run was listed with (settings, network and curves when the owner read them)."""
        return self._rows.get(run_dir)

    def compare_blocked_reason(self, run_dirs: list[str] | None = None) -> str:
        """Why these runs (the selected ones by default) cannot be compared; "" when they can."""
        run_dirs = self._selected if run_dirs is None else run_dirs
        if len(run_dirs) != 2:
            return "Select two runs (Ctrl + click) to compare them."
        unreadable = [Path(run_dir).name for run_dir in run_dirs if not self._has_settings(run_dir)]
        if unreadable:
            return f"The settings of the run {unreadable[0]} cannot be read."
        return ""

    def compare(self, run_dirs: list[str] | None = None) -> Any:
        """Open the two runs (the selected ones by default) side by side, the older as A; None if they cannot be."""
        run_dirs = list(self._selected if run_dirs is None else run_dirs)
        if self.compare_blocked_reason(run_dirs):
            return None
        from dlstudio.gui.run_compare import RunCompareDialog

        first, second = sorted((self._rows[run_dir] for run_dir in run_dirs), key=lambda row: str(row.get("started")))
        self._close_compare_dialog()
        self.compare_dialog = RunCompareDialog(first, second, self)
        self.compare_dialog.apply_requested.connect(self.apply_settings)
        self.compare_dialog.show()
        return self.compare_dialog

    def _close_compare_dialog(self) -> None:
        if self.compare_dialog is not None:
            self.compare_dialog.close()
            self.compare_dialog.deleteLater()
            self.compare_dialog = None

    def apply_blocked_reason(self, run_dir: str) -> str:
        if not self._has_settings(run_dir):
            return "The run's settings cannot be read."
        if self._training:
            return "A run is training: the settings cannot change until it ends."
        return ""

    def apply_settings(self, run_dir: str) -> bool:
        """Ask the owner to make the project's settings this run's (apply_settings_requested); False if it cannot."""
        if self.apply_blocked_reason(run_dir):
            return False
        self.apply_settings_requested.emit(self._rows[run_dir])
        return True

    def runs(self) -> list[str]:
        """The run folders listed, in the list's order."""
        return [str(item.data(_RUN, _RUN_DIR_ROLE)) for item in self._items()]

    def selected_runs(self) -> list[str]:
        return list(self._selected)

    def select_runs(self, run_dirs: list[str]) -> None:
        """Select exactly these runs (those listed); emits selection_changed if that changes the selection."""
        self._tree.blockSignals(True)
        for item in self._items():
            item.setSelected(item.data(_RUN, _RUN_DIR_ROLE) in run_dirs)
        self._tree.blockSignals(False)
        self._update_selection()

    def item_for(self, run_dir: str) -> QTreeWidgetItem | None:
        return next((item for item in self._items() if item.data(_RUN, _RUN_DIR_ROLE) == run_dir), None)

    def set_training(self, training: bool, active_run: str | Path | None = None) -> None:
        """Say whether a run trains now, and which folder it writes (None while it is being prepared)."""
        self._training = training
        self._active_run = Path(active_run).resolve() if training and active_run is not None else None
        self._update_buttons()

    def is_active(self, run_dir: str | Path) -> bool:
        """Whether ``run_dir`` is the folder of the run training now."""
        return self._active_run is not None and Path(run_dir).resolve() == self._active_run

    def continue_blocked_reason(self, run_dir: str) -> str:
        """Why the run cannot be continued now (one sentence for a tooltip or a message); "" when it can."""
        if self.is_active(run_dir):
            return "This run is training now."
        if self._training:
            return "Another run is training: stop it before continuing this one."
        item = self.item_for(run_dir)
        if item is None:
            return "The run is not in the list."
        if item.data(_RUN, _RESUMABLE_ROLE):
            return ""
        return _FINISHED_REASONS.get(str(item.data(_STATUS, _SORT_ROLE)),
                                     "The run has no checkpoint (last.pt) to continue from.")

    def delete_blocked_reason(self, run_dir: str) -> str:
        """Why the run cannot be deleted now; "" when it can."""
        if self.is_active(run_dir):
            return "This run is training and writing its folder: stop it before deleting it."
        return ""

    def show_refusal(self, message: str) -> None:
        """Say why the last delete or removal was refused (one line under the list); "" hides it."""
        self._refusal.setText(message)
        self._refusal.setToolTip(message)
        self._refusal.setVisible(bool(message))

    def is_missing(self, run_dir: str) -> bool:
        item = self.item_for(run_dir)
        return item is not None and item.data(_STATUS, _SORT_ROLE) == "missing"

    def continue_run(self, run_dir: str) -> bool:
        """Ask the owner to continue the run (emits continue_requested); False, and nothing emitted, if it cannot."""
        if self.continue_blocked_reason(run_dir):
            return False
        self.continue_requested.emit(run_dir)
        return True

    def context_menu(self, run_dir: str) -> QMenu:
        """The menu of one run (what a right click on it opens); unavailable actions say why in their tooltip."""
        menu = QMenu(self)
        menu.setToolTipsVisible(True)
        continue_action = QAction("Continue Training", menu)
        continue_action.triggered.connect(lambda: self.continue_run(run_dir))
        _explain(continue_action, self.continue_blocked_reason(run_dir), _CONTINUE_TIP)
        open_action = QAction("Open Run Folder", menu)
        open_action.triggered.connect(lambda: self.open_run_folder(run_dir))
        open_action.setEnabled(not self.is_missing(run_dir))
        delete_action = QAction("Delete Run…", menu)
        delete_action.triggered.connect(lambda: self.delete_run(run_dir))
        _explain(delete_action, self.delete_blocked_reason(run_dir), _DELETE_TIP)
        remove_action = QAction("Remove from List", menu)
        remove_action.triggered.connect(lambda: self.remove_run(run_dir))
        _explain(remove_action, self.delete_blocked_reason(run_dir), _REMOVE_TIP)
        apply_action = QAction("Apply This Run's Settings to the Project", menu)
        apply_action.triggered.connect(lambda: self.apply_settings(run_dir))
        _explain(apply_action, self.apply_blocked_reason(run_dir), _APPLY_TIP)
        compare_action = QAction("Compare Selected Runs", menu)
        compare_action.triggered.connect(lambda: self.compare())
        _explain(compare_action, self.compare_blocked_reason(), _COMPARE_TIP)
        menu.addAction(continue_action)
        menu.addSeparator()
        menu.addActions([compare_action, apply_action])
        menu.addSeparator()
        menu.addActions([open_action, delete_action, remove_action])
        return menu

    def open_run_folder(self, run_dir: str) -> bool:
        """Show the folder in the system's file manager."""
        return QDesktopServices.openUrl(QUrl.fromLocalFile(run_dir))

    def delete_run(self, run_dir: str, confirm: bool = True) -> bool:
        """Ask the owner to delete the run folder (after asking the person); False if not asked.

        The folder of the run training now is refused (False), however this is called.
        A missing run is only taken off the list (:meth:`remove_run`).
        """
        name = Path(run_dir).name
        if self.delete_blocked_reason(run_dir):
            return False
        if self.is_missing(run_dir):
            return self.remove_run(run_dir)
        if confirm:
            answer = QMessageBox.question(
                self, "Delete Run", f"Delete the run {name} with its metrics and checkpoints? This cannot be undone.",
                QMessageBox.StandardButton.Yes | QMessageBox.StandardButton.Cancel, QMessageBox.StandardButton.Cancel)
            if answer != QMessageBox.StandardButton.Yes:
                return False
        self.delete_requested.emit(run_dir)
        return True

    def remove_run(self, run_dir: str) -> bool:
        """Ask the owner to take the run off the list, leaving its files; False if refused."""
        if self.delete_blocked_reason(run_dir):
            return False
        self.remove_requested.emit(run_dir)
        return True

    # ---- internals ------------------------------------------------------------------------------------

    def _items(self) -> list[QTreeWidgetItem]:
        return [self._tree.topLevelItem(index) for index in range(self._tree.topLevelItemCount())]

    def _set_columns(self, runs: list[dict[str, Any]]) -> None:
        """The tree's columns for these runs: name, status, each setting, then the results."""
        columns = runs_compare.table_columns(runs)
        self._differing = {_SETTING + key for key in columns.differing}
        self._numeric_settings = {_SETTING + key for key in columns.numeric}
        settings = [(_SETTING + key, columns.labels.get(key, key), columns.labels.get(key, key)) for key in columns.keys]
        self._columns = [*_LEADING, *settings, *_TRAILING]
        self._tree.setColumnCount(len(self._columns))
        self._tree.setHeaderLabels([title for _key, title, _tip in self._columns])
        header_item = self._tree.headerItem()
        for column, (key, title, tip) in enumerate(self._columns):
            header_item.setToolTip(column, tip if not key.startswith(_SETTING) else
                                   f"{tip}: the setting the run started with (differs between the runs)"
                                   if key in self._differing else f"{tip}: the same in every run listed")
            if key in _NUMERIC or key in self._numeric_settings:
                header_item.setTextAlignment(column, _RIGHT)

    def _show_setting_columns(self) -> None:
        """Hide the setting columns all runs share (unless "Show all settings"); size new columns to their cells."""
        show_all = self.show_all_check.isChecked()
        header = self._tree.header()
        header.blockSignals(True)  # sizing here is not the person's doing
        for column, (key, _title, _tip) in enumerate(self._columns):
            hidden = key.startswith(_SETTING) and key not in self._differing and not show_all
            self._tree.setColumnHidden(column, hidden)
            if hidden or column == len(self._columns) - 1:
                continue
            if key in self._widths:
                self._tree.setColumnWidth(column, self._widths[key])
            elif key in self._setting_widths:  # sized when it first appeared: sizing is dear on a long list
                self._tree.setColumnWidth(column, self._setting_widths[key])
            else:
                content = max(self._tree.sizeHintForColumn(column), 24) + 16
                title = header.sectionSizeHint(column)
                width = min(max(content, min(title, 90)), _MAX_COLUMN_WIDTH)
                self._tree.setColumnWidth(column, width)
                if key.startswith(_SETTING):
                    self._setting_widths[key] = width
        header.blockSignals(False)

    def _make_item(self, run: dict[str, Any]) -> QTreeWidgetItem:
        item = _RunItem()
        run_dir = str(run["run_dir"])
        name = str(run.get("name") or Path(run_dir).name)
        status = str(run.get("status") or "")
        message = str(run.get("message") or "")
        shown = "pruned" if pruned_by_sweep(status, message) else _STATUS_TEXT.get(status, status)
        epochs, planned = run.get("epochs"), run.get("planned_epochs")
        best, test, final = run.get("best_val_accuracy"), run.get("test_accuracy"), run.get("final_val_accuracy")
        seconds, speed = run.get("seconds"), run.get("samples_per_second")
        cells = {
            "run": (name, name),
            "status": (shown, status),
            "epochs": (_epochs_text(epochs, planned), epochs),
            "best": _score(best, run.get("best_val_loss")),
            "final": _score(final, run.get("last_val_loss")),
            "test": _score(test, run.get("test_loss")),
            "time": (_duration_text(seconds), seconds),
            "speed": ("" if speed is None else f"{float(speed):,.0f}", speed),
            "started": (_date_text(run.get("started")), run.get("started")),
        }
        settings = run.get("settings") or {}
        message = message or ("stopped by the user; it can be resumed" if status == "stopped" else "")
        tooltip = run_dir + (f"\n{message}" if message else "")
        for column, (key, title, _tip) in enumerate(self._columns):
            if key.startswith(_SETTING):
                setting = key[len(_SETTING):]
                value = settings.get(setting) if settings else None
                text = runs_compare.format_value(value) if settings else ""
                sort_key = (value if key in self._numeric_settings else text) if value is not None else None
                item.setToolTip(column, f"{title}: {text}\n{tooltip}" if settings else tooltip)
            else:
                text, sort_key = cells[key]
                item.setToolTip(column, tooltip)
            item.setText(column, text)
            item.setData(column, _SORT_ROLE, sort_key)
            if key in _NUMERIC or key in self._numeric_settings:
                item.setTextAlignment(column, _RIGHT)
        item.setData(_RUN, _RUN_DIR_ROLE, run_dir)
        item.setData(_RUN, _RESUMABLE_ROLE, bool(run.get("resumable")))
        if status in _PROBLEMS:
            dark = self.palette().color(QPalette.ColorRole.Window).lightness() < 128
            item.setForeground(_STATUS, QColor((DARK_CANVAS if dark else LIGHT_CANVAS).error))
        return item

    def _has_settings(self, run_dir: str) -> bool:
        return bool((self._rows.get(run_dir) or {}).get("settings"))

    def _apply_filter(self) -> None:
        """Hide the rows with no cell (shown or not) that contains the filter's text, ignoring case."""
        needle = self.filter_edit.text().strip().casefold()
        for item in self._items():
            cells = [item.text(column) for column in range(len(self._columns))]
            cells.append(str(item.data(_STATUS, _SORT_ROLE) or ""))  # "early_stopped" as well as "stopped early"
            item.setHidden(bool(needle) and not any(needle in cell.casefold() for cell in cells))

    def _update_selection(self) -> None:
        selected = [str(item.data(_RUN, _RUN_DIR_ROLE)) for item in self._items() if item.isSelected()]
        if selected != self._selected:
            self._selected = selected
            self.selection_changed.emit(list(selected))
        self._update_buttons()  # also when the selection stayed: the rows' statuses may have changed

    def _single_selection(self) -> str | None:
        return self._selected[0] if len(self._selected) == 1 else None

    def _update_buttons(self) -> None:
        _explain(self.compare_button, self.compare_blocked_reason(), _COMPARE_TIP)
        run_dir = self._single_selection()
        if run_dir is None:
            _explain(self.continue_button, "Select one run to continue it.", _CONTINUE_TIP)
            _explain(self.delete_button, "Select one run to delete it.", _DELETE_TIP)
            return
        _explain(self.continue_button, self.continue_blocked_reason(run_dir), _CONTINUE_TIP)
        missing = self.is_missing(run_dir)
        self.delete_button.setText("Remove from List" if missing else "Delete…")
        _explain(self.delete_button, self.delete_blocked_reason(run_dir), _REMOVE_TIP if missing else _DELETE_TIP)

    def _on_tree_selection_changed(self) -> None:
        self._update_selection()

    def _on_filter_edit_text_changed(self, _text: str) -> None:
        self._apply_filter()

    def _on_show_all_check_toggled(self, _checked: bool) -> None:
        self._show_setting_columns()

    def _on_header_section_resized(self, column: int, _old: int, new: int) -> None:
        if 0 <= column < len(self._columns) and new > 0:
            self._widths[self._columns[column][0]] = new  # the person's width is kept over refreshes

    def _on_compare_button_clicked(self) -> None:
        self.compare()

    def _on_continue_button_clicked(self) -> None:
        run_dir = self._single_selection()
        if run_dir is not None:
            self.continue_run(run_dir)

    def _on_delete_button_clicked(self) -> None:
        run_dir = self._single_selection()
        if run_dir is not None:
            self.delete_run(run_dir)

    def _on_tree_context_menu_requested(self, position: QPoint) -> None:
        item = self._tree.itemAt(position)
        if item is None:
            return
        menu = self.context_menu(str(item.data(_RUN, _RUN_DIR_ROLE)))
        menu.exec(self._tree.viewport().mapToGlobal(position))
        menu.deleteLater()


def _explain(target: QAction | QPushButton, reason: str, tip: str) -> None:
    """Enable ``target`` when there is no ``reason`` against it; its tooltip is the reason, or what it does."""
    target.setEnabled(not reason)
    target.setToolTip(reason or tip)


def _percent(value: Any) -> str:
    return "—" if value is None else f"{float(value):.1%}"


def _score(accuracy: Any, loss: Any) -> tuple[str, Any]:
    """A result cell's text and sort value: the accuracy; for a run without one (a reconstruction), its loss,
    sorted so that lower comes first where higher accuracy does."""
    if accuracy is not None or loss is None:
        return _percent(accuracy), accuracy
    return f"loss {float(loss):.3g}", -float(loss)


def _epochs_text(epochs: Any, planned: Any) -> str:
    if epochs is None:
        return "—"
    return f"{epochs} of {planned}" if planned is not None and planned != epochs else str(epochs)


def _duration_text(seconds: Any) -> str:
    """12.3 s, 4 min 05 s, 2 h 03 min; blank when the run recorded no time."""
    if seconds is None:
        return ""
    seconds = float(seconds)
    if seconds < 60:
        return f"{seconds:.1f} s"
    minutes, rest = divmod(round(seconds), 60)
    if minutes < 60:
        return f"{minutes} min {rest:02d} s"
    hours, minutes = divmod(minutes, 60)
    return f"{hours} h {minutes:02d} min"


def _date_text(started: Any) -> str:
    """ISO time -> "2026-11-23 09:05" (unparsable text is shown as it is)."""
    if not started:
        return "—"
    try:
        return datetime.fromisoformat(str(started)).strftime("%Y-%m-%d %H:%M")
    except ValueError:
        return str(started)

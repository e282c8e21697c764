"""The run history: past runs of the project in a sortable list; selecting several overlays their curves.

Fed with ``summarize_run`` dicts (``dlstudio.core.training.runs``) by the
owner, who also reads the selected runs' metrics for the overlays and starts
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
    QHBoxLayout,
    QHeaderView,
    QLabel,
    QMenu,
    QMessageBox,
    QPushButton,
    QStackedLayout,
    QTreeWidget,
    QTreeWidgetItem,
    QVBoxLayout,
    QWidget,
)

from dlstudio.gui.theme import DARK_CANVAS, LIGHT_CANVAS

COLUMNS = ("Run", "Status", "Epochs", "Best val", "Test", "Started")
_HEADER_TIPS = ("The run's folder, named by its start time", "How the run ended",
                "Epochs finished (of those planned)", "Best validation accuracy over the epochs",
                "Accuracy on the test split at the end of the run", "When the run started")
_RUN, _STATUS, _EPOCHS, _BEST, _TEST, _STARTED = range(len(COLUMNS))
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

    def __init__(self, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self._selected: list[str] = []
        self._training = False
        self._active_run: Path | None = None  # the folder a run is writing now
        self._tree = QTreeWidget()
        self._tree.setObjectName("RunsList")
        self._tree.setColumnCount(len(COLUMNS))
        self._tree.setHeaderLabels(list(COLUMNS))
        self._tree.setRootIsDecorated(False)
        self._tree.setUniformRowHeights(True)
        self._tree.setAlternatingRowColors(True)
        self._tree.setSelectionMode(QAbstractItemView.SelectionMode.ExtendedSelection)
        self._tree.setSelectionBehavior(QAbstractItemView.SelectionBehavior.SelectRows)
        self._tree.setSortingEnabled(True)
        self._tree.sortByColumn(_STARTED, Qt.SortOrder.DescendingOrder)  # newest first
        self._tree.setContextMenuPolicy(Qt.ContextMenuPolicy.CustomContextMenu)
        self._tree.customContextMenuRequested.connect(self._on_tree_context_menu_requested)
        self._tree.itemSelectionChanged.connect(self._on_tree_selection_changed)
        self._tree.setToolTip("Select several runs (Ctrl or Shift + click) to compare their curves")
        header = self._tree.header()
        header.setStretchLastSection(True)
        header.setSectionResizeMode(QHeaderView.ResizeMode.ResizeToContents)
        for column, tip in enumerate(_HEADER_TIPS):
            self._tree.headerItem().setToolTip(column, tip)
        for column in (_EPOCHS, _BEST, _TEST):
            self._tree.headerItem().setTextAlignment(column, _RIGHT)

        self._placeholder = QLabel("No runs yet. Press Train: every run is kept here with its settings and curves.")
        self._placeholder.setAlignment(Qt.AlignmentFlag.AlignCenter)
        self._placeholder.setWordWrap(True)
        self._placeholder.setForegroundRole(QPalette.ColorRole.PlaceholderText)
        self.continue_button = QPushButton("Continue Training")
        self.continue_button.setObjectName("runs_continue")
        self.continue_button.clicked.connect(self._on_continue_button_clicked)
        self.delete_button = QPushButton("Delete…")
        self.delete_button.setObjectName("runs_delete")
        self.delete_button.clicked.connect(self._on_delete_button_clicked)
        self._refusal = QLabel()
        self._refusal.setObjectName("runs_refusal")
        self._refusal.setWordWrap(True)
        self._refusal.hide()
        buttons = QHBoxLayout()
        buttons.setContentsMargins(4, 0, 4, 4)
        buttons.addWidget(self._refusal, 1)
        buttons.addStretch(1)
        buttons.addWidget(self.continue_button)
        buttons.addWidget(self.delete_button)
        self._list_page = QWidget()
        page_layout = QVBoxLayout(self._list_page)
        page_layout.setContentsMargins(0, 0, 0, 0)
        page_layout.setSpacing(4)
        page_layout.addWidget(self._tree, 1)
        page_layout.addLayout(buttons)

        self._stack = QStackedLayout(self)
        self._stack.setContentsMargins(0, 0, 0, 0)
        self._stack.addWidget(self._placeholder)
        self._stack.addWidget(self._list_page)
        self._update_buttons()

    # ---- API ------------------------------------------------------------------------------------------

    def set_runs(self, runs: list[dict[str, Any]]) -> None:
        """Show these runs (``summarize_run`` dicts); runs still listed stay selected."""
        self.show_refusal("")
        previous = list(self._selected)
        self._tree.blockSignals(True)
        self._tree.setSortingEnabled(False)  # sorting while inserting would move rows under our hands
        self._tree.clear()
        for run in runs:
            self._tree.addTopLevelItem(self._make_item(run))
        self._tree.setSortingEnabled(True)
        for item in self._items():
            item.setSelected(item.data(_RUN, _RUN_DIR_ROLE) in previous)
        self._tree.blockSignals(False)
        self._stack.setCurrentWidget(self._list_page if runs else self._placeholder)
        self._update_selection()

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
        menu.addAction(continue_action)
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

    def _make_item(self, run: dict[str, Any]) -> QTreeWidgetItem:
        item = _RunItem()
        run_dir = str(run["run_dir"])
        name = str(run.get("name") or Path(run_dir).name)
        status = str(run.get("status") or "")
        epochs, planned = run.get("epochs"), run.get("planned_epochs")
        best, test = run.get("best_val_accuracy"), run.get("test_accuracy")
        cells = {
            _RUN: (name, name),
            _STATUS: (_STATUS_TEXT.get(status, status), status),
            _EPOCHS: (_epochs_text(epochs, planned), epochs),
            _BEST: (_percent(best), best),
            _TEST: (_percent(test), test),
            _STARTED: (_date_text(run.get("started")), run.get("started")),
        }
        for column, (text, sort_key) in cells.items():
            item.setText(column, text)
            item.setData(column, _SORT_ROLE, sort_key)
        for column in (_EPOCHS, _BEST, _TEST):
            item.setTextAlignment(column, _RIGHT)
        item.setData(_RUN, _RUN_DIR_ROLE, run_dir)
        item.setData(_RUN, _RESUMABLE_ROLE, bool(run.get("resumable")))
        message = run.get("message") or ("stopped by the user; it can be resumed" if status == "stopped" else "")
        tooltip = run_dir + (f"\n{message}" if message else "")
        for column in range(len(COLUMNS)):
            item.setToolTip(column, tooltip)
        if status in _PROBLEMS:
            dark = self.palette().color(QPalette.ColorRole.Window).lightness() < 128
            item.setForeground(_STATUS, QColor((DARK_CANVAS if dark else LIGHT_CANVAS).error))
        return item

    def _update_selection(self) -> None:
        selected = [str(item.data(_RUN, _RUN_DIR_ROLE)) for item in self._items() if item.isSelected()]
        if selected != self._selected:
            self._selected = selected
            self.selection_changed.emit(list(selected))
        self._update_buttons()  # also when the selection stayed: the rows' statuses may have changed

    def _single_selection(self) -> str | None:
        return self._selected[0] if len(self._selected) == 1 else None

    def _update_buttons(self) -> None:
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


def _epochs_text(epochs: Any, planned: Any) -> str:
    if epochs is None:
        return "—"
    return f"{epochs} of {planned}" if planned is not None and planned != epochs else str(epochs)


def _date_text(started: Any) -> str:
    """ISO time -> "2026-11-23 09:05" (unparsable text is shown as it is)."""
    if not started:
        return "—"
    try:
        return datetime.fromisoformat(str(started)).strftime("%Y-%m-%d %H:%M")
    except ValueError:
        return str(started)

"""Help › Keyboard Shortcuts: every menu command that has a shortcut, read from the menus themselves, and the
canvas's mouse and keyboard gestures.

Built from the window's actions when it opens, so it cannot drift from what the keys really do.
"""

from __future__ import annotations

from PySide6.QtGui import QKeySequence
from PySide6.QtWidgets import (QDialog, QDialogButtonBox, QHeaderView, QLineEdit, QMenu, QMenuBar, QTableWidget,
                               QTableWidgetItem, QVBoxLayout, QWidget)

# What the canvas does with the mouse and keys beyond its menu commands (see canvas/view.py and block_items.py).
CANVAS_GESTURES = (
    ("Canvas", "Add a layer", "drag it from the Layers palette, or double-click it there"),
    ("Canvas", "Connect two layers", "drag from an output port (right) to an input port (left)"),
    ("Canvas", "Select several", "drag a rectangle on empty canvas, or Ctrl+click"),
    ("Canvas", "Pan", "middle-drag, or hold Space and drag"),
    ("Canvas", "Zoom", "mouse wheel"),
    ("Canvas", "Expand or collapse a block", "double-click it"),
    ("Canvas", "More for a layer", "right-click it (Fix, Copy, Freeze, Group)"),
)


def _plain(text: str) -> str:
    return text.replace("&&", "\0").replace("&", "").replace("\0", "&").rstrip(".…")


def shortcut_rows(menu_bar: QMenuBar) -> list[tuple[str, str, str]]:
    """(menu, command, keys) for every action under ``menu_bar`` with a shortcut, in menu order."""
    rows: list[tuple[str, str, str]] = []

    def walk(menu: QMenu, path: str) -> None:
        for action in menu.actions():
            if action.isSeparator():
                continue
            submenu = action.menu()
            if isinstance(submenu, QMenu):
                walk(submenu, f"{path} › {_plain(action.text())}")
                continue
            keys = [sequence.toString(QKeySequence.SequenceFormat.NativeText) for sequence in action.shortcuts()]
            keys = [key for key in keys if key]
            if keys:
                rows.append((path, _plain(action.text()), ", ".join(keys)))

    for action in menu_bar.actions():
        menu = action.menu()
        if isinstance(menu, QMenu):
            walk(menu, _plain(action.text()))
    return rows


class ShortcutsDialog(QDialog):
    """A searchable table: where the command is, what it does, its keys."""

    def __init__(self, menu_bar: QMenuBar, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.setWindowTitle("Keyboard Shortcuts")
        self.resize(620, 560)
        rows = shortcut_rows(menu_bar) + list(CANVAS_GESTURES)
        self.search = QLineEdit()
        self.search.setPlaceholderText("Search commands or keys…")
        self.search.setClearButtonEnabled(True)
        self.search.textChanged.connect(self._filter)
        self.table = QTableWidget(len(rows), 3)
        self.table.setHorizontalHeaderLabels(["Where", "Command", "Keys or gesture"])
        self.table.verticalHeader().hide()
        self.table.setEditTriggers(QTableWidget.EditTrigger.NoEditTriggers)
        self.table.setSelectionBehavior(QTableWidget.SelectionBehavior.SelectRows)
        for row, values in enumerate(rows):
            for column, text in enumerate(values):
                self.table.setItem(row, column, QTableWidgetItem(text))
        header = self.table.horizontalHeader()
        header.setSectionResizeMode(0, QHeaderView.ResizeMode.ResizeToContents)
        header.setSectionResizeMode(1, QHeaderView.ResizeMode.ResizeToContents)
        header.setSectionResizeMode(2, QHeaderView.ResizeMode.Stretch)
        buttons = QDialogButtonBox(QDialogButtonBox.StandardButton.Close)
        buttons.rejected.connect(self.reject)
        layout = QVBoxLayout(self)
        layout.addWidget(self.search)
        layout.addWidget(self.table, 1)
        layout.addWidget(buttons)

    def visible_rows(self) -> list[tuple[str, ...]]:
        return [tuple(self.table.item(row, column).text() for column in range(3))
                for row in range(self.table.rowCount()) if not self.table.isRowHidden(row)]

    def _filter(self, text: str) -> None:
        needle = text.strip().lower()
        for row in range(self.table.rowCount()):
            line = " ".join(self.table.item(row, column).text() for column in range(3)).lower()
            self.table.setRowHidden(row, bool(needle) and needle not in line)

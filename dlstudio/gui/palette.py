"""The layer palette: layers by category, a search field, drag to the canvas or double-click to add.

"My blocks" lists the blocks the person saved (Save Block to Palette…); they are dragged or
double-clicked onto the canvas like a layer and arrive as a new collapsed block.
"""

from __future__ import annotations

from PySide6.QtCore import QMimeData, Qt, Signal
from PySide6.QtGui import QColor, QDrag, QIcon, QPainter, QPixmap
from PySide6.QtWidgets import QLineEdit, QTreeWidget, QTreeWidgetItem, QVBoxLayout, QWidget

from pathlib import Path

from dlstudio.core.layers import CATEGORIES, LayerSpec, all_specs
from dlstudio.core.project.block_library import SavedBlock, list_saved_blocks
from dlstudio.gui.canvas.block_items import BLOCK_GLYPH, BLOCK_HEADER
from dlstudio.gui.canvas.view import LAYER_MIME_TYPE, SAVED_BLOCK_MIME_TYPE
from dlstudio.gui.theme import category_color

TYPE_ROLE = Qt.ItemDataRole.UserRole
BLOCK_PATH_ROLE = Qt.ItemDataRole.UserRole + 1  # a saved block's file
MY_BLOCKS = "My blocks"


def _swatch(color: QColor) -> QIcon:
    pixmap = QPixmap(12, 12)
    pixmap.fill(Qt.GlobalColor.transparent)
    painter = QPainter(pixmap)
    painter.setRenderHint(QPainter.RenderHint.Antialiasing)
    painter.setBrush(color)
    painter.setPen(Qt.PenStyle.NoPen)
    painter.drawRoundedRect(1, 1, 10, 10, 3, 3)
    painter.end()
    return QIcon(pixmap)


class LayerTree(QTreeWidget):
    """Categories with their layers; dragging a layer starts a QDrag with the layer MIME type."""

    def __init__(self, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.setHeaderHidden(True)
        self.setDragEnabled(True)
        self.setDragDropMode(QTreeWidget.DragDropMode.DragOnly)
        self.setRootIsDecorated(True)
        self.setIndentation(14)

    def startDrag(self, supported_actions: Qt.DropAction) -> None:
        item = self.currentItem()
        type_id = item.data(0, TYPE_ROLE) if item is not None else None
        path = item.data(0, BLOCK_PATH_ROLE) if item is not None else None
        if not type_id and not path:
            return
        drag = QDrag(self)
        drag.setMimeData(layer_mime_data(type_id) if type_id else saved_block_mime_data(path))
        drag.setPixmap(item.icon(0).pixmap(16, 16))
        drag.exec(Qt.DropAction.CopyAction)


def layer_mime_data(type_id: str) -> QMimeData:
    """What a palette drag carries: the layer's type id under dlstudio's own MIME type."""
    mime = QMimeData()
    mime.setData(LAYER_MIME_TYPE, type_id.encode("utf-8"))
    mime.setText(type_id)
    return mime


def saved_block_mime_data(path: str) -> QMimeData:
    """What dragging a saved block carries: its file's path."""
    mime = QMimeData()
    mime.setData(SAVED_BLOCK_MIME_TYPE, str(path).encode("utf-8"))
    return mime


class Palette(QWidget):
    """The dock's content: a search field over the layer tree."""

    layer_activated = Signal(str)  # double-click or Enter: add the layer at the view centre
    saved_block_activated = Signal(str)  # double-click or Enter on one of "My blocks": its file

    def __init__(self, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.search = QLineEdit()
        self.search.setPlaceholderText("Search layers…")
        self.search.setClearButtonEnabled(True)
        self.tree = LayerTree()
        layout = QVBoxLayout(self)
        layout.setContentsMargins(4, 4, 4, 4)
        layout.addWidget(self.search)
        layout.addWidget(self.tree)
        self._layer_items: dict[str, QTreeWidgetItem] = {}
        self._populate([spec for spec in all_specs() if spec.in_palette])
        self.my_blocks = QTreeWidgetItem([MY_BLOCKS])
        self.my_blocks.setFlags(Qt.ItemFlag.ItemIsEnabled)
        self.my_blocks.setIcon(0, _swatch(QColor(BLOCK_HEADER)))
        font = self.my_blocks.font(0)
        font.setBold(True)
        self.my_blocks.setFont(0, font)
        self.reload_saved_blocks()
        self.search.textChanged.connect(self.filter)
        self.tree.itemActivated.connect(self._on_tree_item_activated)

    def _populate(self, specs: list[LayerSpec]) -> None:
        categories: dict[str, QTreeWidgetItem] = {}
        for category in CATEGORIES:
            group = QTreeWidgetItem([category])
            group.setFlags(Qt.ItemFlag.ItemIsEnabled)
            group.setIcon(0, _swatch(category_color(category)))
            font = group.font(0)
            font.setBold(True)
            group.setFont(0, font)
            categories[category] = group
        for spec in specs:
            item = QTreeWidgetItem([spec.display_name])
            item.setData(0, TYPE_ROLE, spec.type_id)
            item.setToolTip(0, f"<b>{spec.display_name}</b><br>{spec.help}")
            item.setIcon(0, _swatch(category_color(spec.category)))
            item.setFlags(Qt.ItemFlag.ItemIsEnabled | Qt.ItemFlag.ItemIsSelectable | Qt.ItemFlag.ItemIsDragEnabled)
            categories[spec.category].addChild(item)
            self._layer_items[spec.type_id] = item
        for group in categories.values():
            if group.childCount():
                self.tree.addTopLevelItem(group)
                group.setExpanded(True)

    def layer_item(self, type_id: str) -> QTreeWidgetItem:
        return self._layer_items[type_id]

    def reload_saved_blocks(self, folder: Path | None = None) -> list[SavedBlock]:
        """List the saved blocks under "My blocks" (first, shown only when there are some)."""
        blocks, refused = list_saved_blocks(folder)
        self.my_blocks.takeChildren()
        for block in blocks:
            item = QTreeWidgetItem([f"{BLOCK_GLYPH} {block.name}"])
            item.setData(0, BLOCK_PATH_ROLE, str(block.path))
            item.setToolTip(0, f"<b>{block.name}</b><br>A saved block of {block.layers} layers: drag it onto "
                               f"the canvas, or double-click to add it")
            item.setFlags(Qt.ItemFlag.ItemIsEnabled | Qt.ItemFlag.ItemIsSelectable | Qt.ItemFlag.ItemIsDragEnabled)
            self.my_blocks.addChild(item)
        if refused:  # a file another version or a hand edit broke is named, not silently skipped
            self.my_blocks.setToolTip(0, "Not listed:<br>" + "<br>".join(refused[:10]))
        inside = self.tree.indexOfTopLevelItem(self.my_blocks) >= 0
        if blocks and not inside:
            self.tree.insertTopLevelItem(0, self.my_blocks)
            self.my_blocks.setExpanded(True)
        elif not blocks and inside:
            self.tree.takeTopLevelItem(self.tree.indexOfTopLevelItem(self.my_blocks))
        self.filter(self.search.text())
        return blocks

    def saved_block_item(self, name: str) -> QTreeWidgetItem:
        for index in range(self.my_blocks.childCount()):
            child = self.my_blocks.child(index)
            if child.text(0) == f"{BLOCK_GLYPH} {name}":
                return child
        raise KeyError(name)

    def filter(self, text: str) -> None:
        """Show layers whose name, type or help contains every word of ``text``."""
        words = text.lower().split()
        for index in range(self.tree.topLevelItemCount()):
            group = self.tree.topLevelItem(index)
            visible = 0
            for child_index in range(group.childCount()):
                child = group.child(child_index)
                haystack = f"{child.text(0)} {child.data(0, TYPE_ROLE)} {child.toolTip(0)}".lower()
                hide = not all(word in haystack for word in words)
                child.setHidden(hide)
                visible += not hide
            group.setHidden(visible == 0)

    def _on_tree_item_activated(self, item: QTreeWidgetItem, column: int) -> None:
        type_id = item.data(0, TYPE_ROLE)
        if type_id:
            self.layer_activated.emit(type_id)
        path = item.data(0, BLOCK_PATH_ROLE)
        if path:
            self.saved_block_activated.emit(path)

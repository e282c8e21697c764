"""The canvas's block and freeze actions: Group into Block, Ungroup, Collapse/Expand, Rename, Freeze.

Each action reads the canvas selection, checks what it can say in words first (a node already in a
block, a name taken), and pushes one undo command through the window, so every one of them is one
undo step that marks the window dirty.
"""

from __future__ import annotations

from typing import Any, Protocol

from PySide6.QtCore import QObject, QPointF, Signal
from PySide6.QtGui import QAction, QKeySequence, QUndoCommand
from PySide6.QtWidgets import QInputDialog, QLineEdit, QMenu, QWidget

from dlstudio.core.errors import DlstudioError, GraphError
from dlstudio.core.project import Project
from dlstudio.core.project.block_library import load_block, save_block
from dlstudio.gui import clipboard
from dlstudio.gui.canvas import arrange
from dlstudio.gui.canvas.items import HEADER_HEIGHT, NODE_WIDTH
from dlstudio.gui.canvas.scene import GraphScene
from dlstudio.gui.commands import (AddNodeCommand, FreezeCommand, GroupBlockCommand, MacroCommand, MoveNodesCommand,
                                   RenameBlockCommand, SetBlockCollapsedCommand, UngroupBlockCommand,
                                   check_block_name)


class BlockHost(Protocol):
    """What the actions need of the window that shows them."""

    project: Project
    scene: GraphScene
    view: Any

    def push(self, command: QUndoCommand) -> bool: ...

    def statusBar(self) -> Any: ...


class BlockActions(QObject):
    """The actions (for the Edit menu and the canvas's context menus) and what they do."""

    saved_blocks_changed = Signal()  # a block was saved to "My blocks": the palette lists it

    def __init__(self, host: BlockHost, parent: QWidget) -> None:
        super().__init__(parent)
        self.host = host
        self.parent_widget = parent
        self.group_action = self._action("&Group into Block", self.group_selection, "Ctrl+G",
                                         "Group the selected layers into a block that can be collapsed")
        self.ungroup_action = self._action("U&ngroup Block", self.ungroup_selection, "Ctrl+Shift+G",
                                           "Dissolve the selected blocks (their layers stay)")
        self.collapse_action = self._action("C&ollapse Block", lambda: self.set_selection_collapsed(True), None,
                                            "Show the selected blocks as one item each")
        self.expand_action = self._action("E&xpand Block", lambda: self.set_selection_collapsed(False), None,
                                          "Show the layers of the selected blocks")
        self.rename_action = self._action("Re&name Block…", self.rename_selection, "F2", "Rename the selected block")
        self.freeze_action = self._action("&Freeze Weights", lambda: self.set_selection_frozen(True), "Ctrl+K",
                                          "Keep the selected layers' weights as they are while training")
        self.unfreeze_action = self._action("Unf&reeze Weights", lambda: self.set_selection_frozen(False),
                                            "Ctrl+Shift+K", "Train the selected layers' weights again")
        self.save_to_palette_action = self._action("Save Block to &Palette…", self.save_selection_to_palette, None,
                                                   "Keep the selected block under My blocks, to add it again")

    def _action(self, text: str, slot: Any, shortcut: str | None, tip: str) -> QAction:
        action = QAction(text, self.parent_widget)
        if shortcut is not None:
            action.setShortcut(QKeySequence(shortcut))
        action.setStatusTip(tip)
        action.triggered.connect(lambda checked=False: slot())
        return action

    @property
    def actions(self) -> list[QAction]:
        return [self.group_action, self.ungroup_action, self.collapse_action, self.expand_action,
                self.rename_action, self.freeze_action, self.unfreeze_action, self.save_to_palette_action]

    def set_enabled(self, enabled: bool) -> None:
        for action in self.actions:
            action.setEnabled(enabled)

    def _say(self, message: str, milliseconds: int = 5000) -> None:
        self.host.statusBar().showMessage(message, milliseconds)

    # -- what is selected ------------------------------------------------------

    def selected_blocks(self) -> list[str]:
        """The selected blocks, and the blocks of selected nodes when no block itself is selected."""
        scene, blocks = self.host.scene, self.host.project.blocks
        chosen = scene.selected_block_ids()
        if chosen:
            return chosen
        owners = [blocks.block_of(n) for n in scene.selected_node_ids()]
        return list(dict.fromkeys(block.id for block in owners if block is not None))

    def selected_nodes(self) -> list[str]:
        """The selected nodes, with the members of every selected block (collapsed or by its frame)."""
        scene, blocks = self.host.scene, self.host.project.blocks
        ids = set(scene.selected_node_ids())
        for block_id in scene.selected_block_ids():
            ids.update(blocks.get(block_id).nodes)
        return [n for n in self.host.project.graph.nodes if n in ids]

    # -- the actions -------------------------------------------------------------

    def group_selection(self) -> bool:
        project = self.host.project
        nodes = self.host.scene.selected_node_ids()
        if not nodes:
            self._say("Select the layers to group into a block first")
            return False
        for node_id in nodes:
            owner = project.blocks.block_of(node_id)
            if owner is not None:
                name = project.graph.node(node_id).name
                self._say(f"Cannot group: {name} is already in block {owner.name}; ungroup that block first")
                return False
        command = GroupBlockCommand(project.blocks, project.graph, nodes)
        if not self.host.push(command):
            return False
        self.host.scene.select_block(command.block_id)
        self._say(f"Grouped {len(nodes)} layer{'s' if len(nodes) != 1 else ''} into {command.name}", 3000)
        return True

    def ungroup_selection(self) -> bool:
        blocks = self.selected_blocks()
        if not blocks:
            self._say("Select a block to ungroup")
            return False
        return self._push_each([UngroupBlockCommand(self.host.project.blocks, b) for b in blocks], "Ungroup")

    def set_selection_collapsed(self, collapsed: bool) -> bool:
        project = self.host.project
        blocks = [b for b in self.selected_blocks() if project.blocks.get(b).collapsed != collapsed]
        if not blocks:
            self._say(f"Select an {'expanded' if collapsed else 'collapsed'} block to "
                      f"{'collapse' if collapsed else 'expand'}")
            return False
        if not collapsed:
            return self._expand(blocks)
        return self._push_each([SetBlockCollapsedCommand(project.blocks, b, collapsed) for b in blocks], "Collapse")

    def set_collapsed(self, block_id: str, collapsed: bool) -> bool:
        """Collapse or expand one block (a double-click on it, the button on its frame)."""
        blocks = self.host.project.blocks
        if block_id not in blocks or blocks.get(block_id).collapsed == collapsed:
            return False
        pushed = (self._expand([block_id]) if not collapsed
                  else self.host.push(SetBlockCollapsedCommand(blocks, block_id, collapsed)))
        if pushed:
            self.host.scene.select_block(block_id)
        return pushed

    def _expand(self, block_ids: list[str]) -> bool:
        """Expand blocks as one undo step; when their layers would cover others, the network re-flows
        (laid out as Auto-layout would) within that same step."""
        blocks = self.host.project.blocks
        commands = [SetBlockCollapsedCommand(blocks, b, False) for b in block_ids]
        text = commands[0].text() if len(commands) == 1 else f"Expand {len(commands)} blocks"
        macro = MacroCommand(text, commands)
        if not self.host.push(macro):
            return False
        scene = self.host.scene
        if scene.drawn_items_overlap():
            layout = self.host.project.layout
            new = arrange.layered_positions(self.host.project.graph, scene, self.host.view)
            old = {node_id: layout.position(node_id) or (0.0, 0.0) for node_id in new}
            changed = {node_id: point for node_id, point in new.items() if old[node_id] != point}
            if changed:
                # Added to the pushed step and applied here: undo moves them back, then collapses.
                move = macro.add(MoveNodesCommand(layout, {n: old[n] for n in changed}, changed, text))
                with scene.batched():
                    move.redo()
        return True

    def rename_selection(self) -> bool:
        blocks = self.selected_blocks()
        if len(blocks) != 1:
            self._say("Select one block to rename" if blocks else "Select a block to rename (F2)")
            return False
        name = self._ask_block_name(self.host.project.blocks.get(blocks[0]).name)
        if name is None:
            return False
        return self.rename(blocks[0], name)

    def rename(self, block_id: str, name: str) -> bool:
        blocks = self.host.project.blocks
        try:
            name = check_block_name(blocks, block_id, name)
        except GraphError as error:
            self._say(f"Cannot rename the block: {error.message}", 6000)
            return False
        if name == blocks.get(block_id).name:
            return False
        return self.host.push(RenameBlockCommand(blocks, block_id, name))

    def set_selection_frozen(self, frozen: bool) -> bool:
        nodes = self.selected_nodes()
        if not nodes:
            self._say(f"Select the layers or blocks to {'freeze' if frozen else 'unfreeze'}")
            return False
        return self.set_frozen(nodes, frozen)

    def freeze_node(self, node_id: str, frozen: bool) -> bool:
        return self.set_frozen([node_id], frozen)

    def freeze_block(self, block_id: str, frozen: bool) -> bool:
        """Freeze or unfreeze all the layers of a block (the inspector's box for a selected block)."""
        return self.set_frozen(list(self.host.project.blocks.get(block_id).nodes), frozen)

    def set_frozen(self, node_ids: list[str], frozen: bool) -> bool:
        project = self.host.project
        command = FreezeCommand(project.frozen, project.graph, node_ids, frozen)
        if not command.node_ids:
            self._say(f"Already {'frozen' if frozen else 'trained'}: nothing to change", 3000)
            return False
        return self.host.push(command)

    def save_selection_to_palette(self) -> bool:
        """Save the selected block under "My blocks" (the user data folder), under a name the person gives."""
        blocks = self.selected_blocks()
        if len(blocks) != 1:
            self._say("Select one block to save to the palette" if blocks else "Select a block to save to the palette")
            return False
        project = self.host.project
        name = self._ask_palette_name(project.blocks.get(blocks[0]).name)
        if name is None:
            return False
        if not name.strip():
            self._say("Cannot save the block: it needs a name")
            return False
        try:
            path = save_block(project, blocks[0], " ".join(name.split()))
        except DlstudioError as error:
            self._say(f"Cannot save the block: {error.message}", 8000)
            return False
        self.saved_blocks_changed.emit()
        self._say(f"Saved {' '.join(name.split())} to My blocks ({path.name})", 4000)
        return True

    def insert_saved_block(self, path: str, scene_pos: QPointF) -> bool:
        """Add a saved block's layers with their first at ``scene_pos``, as a new collapsed block: one undo step.

        The layers get fresh ids and free names, and the block a free name, as a paste does.
        """
        project = self.host.project
        try:
            saved = load_block(path)
        except DlstudioError as error:
            self._say(f"Cannot add the block: {error.message}", 8000)
            return False
        origin = (scene_pos.x() - NODE_WIDTH / 2, scene_pos.y() - HEADER_HEIGHT / 2)
        paste, new_ids = clipboard.make_paste_command(project.graph, project.layout, saved.fragment(origin), 0.0)
        names = {c.node_id: c.name for c in paste.commands if isinstance(c, AddNodeCommand)}
        name = project.blocks.unique_name(saved.name)
        paste.add(GroupBlockCommand(project.blocks, project.graph, new_ids, name, collapsed=True, names=names))
        paste.setText(f"Add block {name}")
        if not self.host.push(paste):
            return False
        self.host.scene.select_block(paste.commands[-1].block_id)
        self._say(f"Added block {name} ({saved.layers} layers)", 3000)
        return True

    def _push_each(self, commands: list[QUndoCommand], verb: str) -> bool:
        """Several blocks at once are one undo step."""
        if len(commands) == 1:
            return self.host.push(commands[0])
        return self.host.push(MacroCommand(f"{verb} {len(commands)} blocks", commands))

    # -- menus -----------------------------------------------------------------

    def add_node_entries(self, menu: QMenu) -> None:
        """A node's context menu: group it (with the rest of the selection), freeze it."""
        menu.addAction(self.group_action)
        nodes = self.selected_nodes()
        frozen = self.host.project.frozen
        if any(n not in frozen for n in nodes):
            menu.addAction(self.freeze_action)
        if any(n in frozen for n in nodes):
            menu.addAction(self.unfreeze_action)
        if self.selected_blocks():
            menu.addAction(self.ungroup_action)

    def fill_block_menu(self, menu: QMenu, block_id: str) -> None:
        """A block's context menu: expand or collapse, rename, ungroup, freeze its layers."""
        block = self.host.project.blocks.get(block_id)
        menu.addAction(self.expand_action if block.collapsed else self.collapse_action)
        menu.addActions([self.rename_action, self.ungroup_action])
        menu.addSeparator()
        frozen = self.host.project.frozen
        if any(n not in frozen for n in block.nodes):
            menu.addAction(self.freeze_action)
        if any(n in frozen for n in block.nodes):
            menu.addAction(self.unfreeze_action)
        menu.addAction(self.save_to_palette_action)

    # -- questions (tests answer them by replacing the method) ---------------------

    def _ask_palette_name(self, current: str) -> str | None:
        name, ok = QInputDialog.getText(self.parent_widget, "Save Block to Palette", "Name under My blocks:",
                                        QLineEdit.EchoMode.Normal, current)
        return name if ok else None

    def _ask_block_name(self, current: str) -> str | None:
        name, ok = QInputDialog.getText(self.parent_widget, "Rename Block", "Block name:", QLineEdit.EchoMode.Normal,
                                        current)
        return name if ok else None

"""The inspector: typed editors generated from a node's parameter specs, its shapes, counts and help.

It reads the model and refuses invalid values on the spot (with the reason);
accepted edits leave as signals that the main window turns into undo
commands, so every change is one undo step.
"""

from __future__ import annotations

import html
from typing import Any

from PySide6.QtCore import QEvent, Qt, Signal
from PySide6.QtWidgets import (QCheckBox, QFormLayout, QFrame, QLabel, QLineEdit, QPushButton, QScrollArea,
                               QVBoxLayout, QWidget)

from dlstudio.core.errors import ParamError
from dlstudio.core.graph import Graph
from dlstudio.core.project.blocks import Blocks, FrozenNodes
from dlstudio.core.layers.spec import ParamSpec, format_shape
from dlstudio.core.shapes import ShapeInference
from dlstudio.gui.canvas.block_items import shapes_text, summarize_block
from dlstudio.gui.canvas.items import format_count
from dlstudio.gui.commands import check_param_value
from dlstudio.gui.param_editors import make_editor, set_editor_value
from dlstudio.gui.theme import ERROR, HINT, set_tone, tone_color

IMPORTED = "Imported"  # the layer category of opaque imported modules (core.layers)


class Inspector(QWidget):
    """Shows the selected node; one editor per parameter."""

    param_edit_requested = Signal(str, str, object)  # node id, parameter, validated value
    rename_requested = Signal(str, str)
    fix_requested = Signal(str)
    freeze_requested = Signal(str, bool)  # node id, frozen
    block_rename_requested = Signal(str, str)  # block id, name
    block_freeze_requested = Signal(str, bool)  # block id, frozen (all its nodes)

    def __init__(self, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.graph: Graph | None = None
        self.inference: ShapeInference | None = None
        self.frozen: FrozenNodes | None = None
        self.blocks: Blocks | None = None
        self.node_id: str | None = None
        self.block_id: str | None = None  # a block shown instead of a node (selected on the canvas)
        self.editors: dict[str, QWidget] = {}
        scroll = QScrollArea()
        scroll.setWidgetResizable(True)
        scroll.setFrameShape(QFrame.Shape.NoFrame)
        self._body = QWidget()
        scroll.setWidget(self._body)
        outer = QVBoxLayout(self)
        outer.setContentsMargins(0, 0, 0, 0)
        outer.addWidget(scroll)

        self.title = QLabel()
        self.title.setTextFormat(Qt.TextFormat.RichText)
        self.name_edit = QLineEdit()
        self.name_edit.setPlaceholderText("Name")
        self.name_edit.editingFinished.connect(self._on_name_edited)
        self.error_label = QLabel()
        self.error_label.setWordWrap(True)
        set_tone(self.error_label, ERROR)
        self.fix_button = QPushButton()
        self.fix_button.clicked.connect(self._on_fix_clicked)
        self.refusal = QLabel()  # why the last edit was refused
        self.refusal.setWordWrap(True)
        set_tone(self.refusal, ERROR)
        # Checked while training leaves the node's weights as they are; a click asks for the undoable change.
        self.frozen_box = QCheckBox("Frozen: weights are not trained")
        self.frozen_box.setToolTip("Keep this layer's weights as they are while training (Edit › Freeze Weights)")
        self.frozen_box.clicked.connect(self._on_frozen_clicked)
        self.form_host = QWidget()
        self.form = QFormLayout(self.form_host)
        self.form.setContentsMargins(0, 0, 0, 0)
        self.shapes = QLabel()
        self.shapes.setTextInteractionFlags(Qt.TextInteractionFlag.TextSelectableByMouse)
        self.help = QLabel()
        self.help.setWordWrap(True)
        set_tone(self.help, HINT)

        layout = QVBoxLayout(self._body)
        for widget in (self.title, self.name_edit, self.frozen_box, self.error_label, self.fix_button, self.form_host,
                       self.refusal,
                       self.shapes, self.help):
            layout.addWidget(widget)
        layout.addStretch(1)
        self.show_node(None)

    def set_model(self, graph: Graph, inference: ShapeInference, frozen: FrozenNodes | None = None,
                  blocks: Blocks | None = None) -> None:
        if self.frozen is not None:
            self.frozen.changed.disconnect(self._on_frozen_changed)
        if self.blocks is not None:
            self.blocks.changed.disconnect(self._on_blocks_changed)
        self.graph, self.inference, self.frozen, self.blocks = graph, inference, frozen, blocks
        if frozen is not None:
            frozen.changed.connect(self._on_frozen_changed)
        if blocks is not None:
            blocks.changed.connect(self._on_blocks_changed)
        self.show_node(None)

    # -- showing -------------------------------------------------------------

    def _may_have_weights(self) -> bool:
        """Whether freezing the shown node can mean anything: not an Input or Output, and not a layer known to
        have no parameters (a ReLU, a pooling); one whose shapes are unknown yet, or already frozen, keeps it."""
        if self.graph is None or self.node_id is None:
            return False
        node = self.graph.node(self.node_id)
        if node.spec.role in ("input", "output"):
            return False
        if self.frozen is not None and self.node_id in self.frozen:
            return True
        info = self.inference.info(self.node_id) if self.inference is not None else None
        return info is None or info.error is not None or info.blocked or info.params > 0

    def show_node(self, node_id: str | None, selected_count: int = 0) -> None:
        """Build the editors for ``node_id`` (or a summary when none or many are selected)."""
        self.node_id = node_id if self.graph is not None and node_id in (self.graph or {}) else None
        self.block_id = None
        self.frozen_box.setTristate(False)  # a block's box shows "some frozen" as partly checked
        self.refusal.clear()
        while self.form.rowCount():
            self.form.removeRow(0)
        self.editors = {}
        has_node = self.node_id is not None
        for widget in (self.name_edit, self.form_host):
            widget.setVisible(has_node)
        self.frozen_box.setVisible(has_node and self.frozen is not None and self._may_have_weights())
        if not has_node:
            self.title.setText("<b>Inspector</b>")
            message = (f"{selected_count} nodes selected." if selected_count > 1
                       else "Select a node to edit its parameters.")
            self.help.setText(message)
            self.shapes.clear()
            self.error_label.hide()
            self.fix_button.hide()
            return
        node = self.graph.node(self.node_id)
        spec = node.spec
        self._show_title()
        self.help.setText(spec.help)
        for param in spec.params:
            if param.hidden:
                continue
            editor = self._make_editor(param)
            label = QLabel(param.display_name)
            label.setToolTip(param.help)
            self.form.addRow(label, editor)
            self.editors[param.name] = editor
        self.refresh()

    def show_block(self, block_id: str) -> None:
        """Show a block: its name (editable), layers, boundary shapes, totals, errors and frozen state."""
        if self.blocks is None or block_id not in self.blocks:
            self.show_node(None)
            return
        self.show_node(None)
        self.block_id = block_id
        self.name_edit.setVisible(True)
        self.frozen_box.setVisible(self.frozen is not None)
        self.help.setText("A block of layers. Double-click it on the canvas to show its layers (or collapse them "
                          "again from its frame); Edit › Ungroup Block dissolves it.")
        self.refresh()

    def _refresh_block(self) -> None:
        if self.blocks is None or self.block_id not in self.blocks or self.graph is None or self.inference is None:
            self.show_node(None)
            return
        block = self.blocks.get(self.block_id)
        hint = tone_color(self.palette(), HINT).name()
        self.title.setText(f"<b>Block</b> &nbsp;<span style='color:{hint}'>{html.escape(block.name)}</span>")
        if not self.name_edit.hasFocus():
            self.name_edit.setText(block.name)
        frozen = self.frozen if self.frozen is not None else frozenset()
        summary = summarize_block(block, self.blocks.boundary(block.id), self.graph, self.inference, frozen)
        state = {"all": Qt.CheckState.Checked, "some": Qt.CheckState.PartiallyChecked}.get(summary.frozen,
                                                                                          Qt.CheckState.Unchecked)
        self.frozen_box.setCheckState(state)
        rows = [("Layers", str(summary.layers)), ("Input", shapes_text(summary.input_shapes)),
                ("Output", shapes_text(summary.output_shapes) if not summary.blocked else "?"),
                ("Parameters", f"{summary.params:,} ({format_count(summary.params)})"),
                ("MACs", f"{summary.macs:,} ({format_count(summary.macs)})")]
        self.shapes.setText("<table>" + "".join(f"<tr><td>{name}</td><td>&nbsp;{html.escape(value)}</td></tr>"
                                                for name, value in rows) + "</table>")
        self.error_label.setVisible(bool(summary.errors))
        self.error_label.setText("\n".join(summary.errors))
        self.fix_button.hide()

    def _on_blocks_changed(self) -> None:
        if self.block_id is not None:
            self.refresh()

    def _show_title(self) -> None:
        if self.node_id is None or self.graph is None or self.node_id not in self.graph:
            return
        node = self.graph.node(self.node_id)
        hint = tone_color(self.palette(), HINT).name()  # 'gray' was 3.4:1 on the light window
        # The person's name for the node, never its id (design.md §12); names are free text, so escaped.
        self.title.setText(f"<b>{html.escape(node.spec.display_name)}</b> &nbsp;"
                           f"<span style='color:{hint}'>{html.escape(node.name)}</span>")

    def changeEvent(self, event: QEvent) -> None:
        if event.type() in (QEvent.Type.PaletteChange, QEvent.Type.ApplicationPaletteChange):
            self._show_title()  # the title's second colour follows the theme
        super().changeEvent(event)

    def refresh(self) -> None:
        """Re-read the node: values, name, shapes, error (after any model change)."""
        if self.block_id is not None:
            self._refresh_block()
            return
        if self.node_id is None or self.graph is None:
            return
        if self.node_id not in self.graph:
            self.show_node(None)
            return
        node = self.graph.node(self.node_id)
        self._show_title()  # a rename shows in the title at once
        if not self.name_edit.hasFocus():
            self.name_edit.setText(node.name)
        self.frozen_box.setChecked(self.frozen is not None and self.node_id in self.frozen)
        self.frozen_box.setVisible(self.frozen is not None and self._may_have_weights())
        for name, editor in self.editors.items():
            set_editor_value(editor, node.params[name])
        info = self.inference.info(self.node_id) if self.inference is not None else None
        if info is None:
            return
        inputs = ", ".join(format_shape(s) for s in info.input_shapes) or "—"
        output = format_shape(info.output_shape) if info.ok else "?"
        self.shapes.setText(f"<table><tr><td>Input</td><td>&nbsp;{inputs}</td></tr>"
                            f"<tr><td>Output</td><td>&nbsp;{output}</td></tr>"
                            f"<tr><td>Parameters</td><td>&nbsp;{info.params:,} ({format_count(info.params)})</td></tr>"
                            f"<tr><td>MACs</td><td>&nbsp;{self._macs_text(node, info.macs)}</td></tr></table>")
        error = info.error
        self.error_label.setVisible(error is not None)
        self.error_label.setText(error.message if error is not None else "")
        fix = error.fix if error is not None else None
        self.fix_button.setVisible(fix is not None)
        self.fix_button.setText(f"Fix: {fix.description}" if fix is not None else "")

    @staticmethod
    def _macs_text(node: Any, macs: int) -> str:
        # An opaque imported module's operations are not counted (its shape is recorded, not computed).
        if node.spec.category == IMPORTED and not macs:
            return "not counted (opaque module)"
        return f"{macs:,} ({format_count(macs)})"

    def on_infos_changed(self, node_ids: list[str]) -> None:
        if self.block_id is not None:
            self.refresh()
            return
        if self.node_id is not None and (self.node_id in node_ids or self.node_id not in (self.graph or {})):
            self.refresh()

    # -- editors ---------------------------------------------------------------

    def _make_editor(self, param: ParamSpec) -> QWidget:
        return make_editor(param, self._commit, self._refuse)

    def _commit(self, param: ParamSpec, value: Any) -> None:
        if self.node_id is None or self.graph is None:
            return
        try:
            value = check_param_value(self.graph, self.node_id, param.name, value)
        except ParamError as error:
            self._refuse(param, error.message)
            return
        self.refusal.clear()
        current = self.graph.node(self.node_id).params[param.name]
        if value == current and type(value) is type(current):
            return
        self.param_edit_requested.emit(self.node_id, param.name, value)

    def _refuse(self, param: ParamSpec, message: str) -> None:
        self.refusal.setText(message)
        # Put the editor back to the model's value: the refused text is not what the model holds.
        if self.node_id is not None and self.graph is not None and param.name in self.editors:
            editor = self.editors[param.name]
            editor.clearFocus()
            set_editor_value(editor, self.graph.node(self.node_id).params[param.name])

    def _on_name_edited(self) -> None:
        if self.block_id is not None and self.blocks is not None and self.block_id in self.blocks:
            name = self.name_edit.text().strip()
            current = self.blocks.get(self.block_id).name
            if not name:
                self.refusal.setText("A block name may not be empty.")
                self.name_edit.setText(current)
            elif name != current:
                self.block_rename_requested.emit(self.block_id, name)
            return
        if self.node_id is None or self.graph is None:
            return
        name = self.name_edit.text().strip()
        node = self.graph.node(self.node_id)
        if not name:
            self.refusal.setText("A node name may not be empty.")
            self.name_edit.setText(node.name)
            return
        if name != node.name:
            self.rename_requested.emit(self.node_id, name)

    def _on_frozen_changed(self, node_ids: tuple[str, ...], frozen: bool) -> None:
        if self.block_id is not None:
            self.refresh()
        elif self.node_id in node_ids and self.frozen is not None:
            self.frozen_box.setChecked(self.node_id in self.frozen)

    def _on_frozen_clicked(self, checked: bool) -> None:
        if self.block_id is not None and self.blocks is not None and self.frozen is not None:
            # A click freezes the block's layers unless all are frozen already (then it unfreezes them).
            block = self.blocks.get(self.block_id)
            freeze = not all(n in self.frozen for n in block.nodes)
            self.refresh()  # the model says, once the change is made
            self.block_freeze_requested.emit(self.block_id, freeze)
            return
        if self.node_id is None or self.frozen is None:
            return
        self.frozen_box.setChecked(self.node_id in self.frozen)  # the model says, once the change is made
        self.freeze_requested.emit(self.node_id, checked)

    def _on_fix_clicked(self) -> None:
        if self.node_id is not None:
            self.fix_requested.emit(self.node_id)

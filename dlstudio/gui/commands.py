"""Every edit of the network is a QUndoCommand here (design.md §2).

``redo`` and ``undo`` call the core :class:`Graph` / :class:`Layout` API and
nothing else; the scene, the inspector and the status bar follow the model's
events. Composite edits (paste, fixes) are one :class:`MacroCommand`, so
they are one undo step.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from PySide6.QtGui import QUndoCommand

from dlstudio.core.errors import Fix, GraphError, ParamError
from dlstudio.core.graph import Edge, Graph
from dlstudio.core.layers import get_spec
from dlstudio.core.layout import Layout, Point
from dlstudio.core.project import Project

# How far a fix pushes the failing node (and what follows it) to make room for the inserted node.
FIX_SHIFT = 230.0


class AddNodeCommand(QUndoCommand):
    """Add one node at a scene position. The id is chosen once, so redo after undo gives the same node."""

    def __init__(self, graph: Graph, layout: Layout, type_id: str, pos: Point, *,
                 params: Mapping[str, Any] | None = None, name: str | None = None, node_id: str | None = None,
                 parent: QUndoCommand | None = None) -> None:
        super().__init__(parent)
        self.graph, self.layout = graph, layout
        self.type_id = type_id
        self.node_id = node_id or graph.new_node_id(type_id)
        self.params = dict(params or {})
        self.name = name
        self.pos = (float(pos[0]), float(pos[1]))
        self.setText(f"add {self.node_id}")

    def redo(self) -> None:
        # Position first: the scene places the item where the layout says when node_added arrives.
        self.layout.move(self.node_id, *self.pos)
        self.graph.add_node(self.type_id, self.params, name=self.name, node_id=self.node_id)

    def undo(self) -> None:
        self.graph.remove_node(self.node_id)
        self.layout.remove(self.node_id)


class RemoveCommand(QUndoCommand):
    """Remove nodes (with all their edges) and single edges; undo restores order, edges and positions."""

    def __init__(self, graph: Graph, layout: Layout, node_ids: list[str], edges: list[Edge] | None = None,
                 parent: QUndoCommand | None = None) -> None:
        super().__init__(parent)
        self.graph, self.layout = graph, layout
        order = list(graph.nodes)
        self.node_ids = sorted(set(node_ids), key=order.index)
        self.indices = {node_id: order.index(node_id) for node_id in self.node_ids}
        self.nodes = [graph.node(n).to_dict() for n in self.node_ids]
        self.positions = {n: layout.position(n) for n in self.node_ids}
        touching = {e for n in self.node_ids for e in graph.input_edges(n) + graph.output_edges(n)}
        self.edges = sorted(touching | set(edges or ()))
        removed = len(self.node_ids)
        what = f"{removed} node{'s' if removed != 1 else ''}" if removed else f"{len(self.edges)} edge(s)"
        self.setText(f"delete {what}")

    def redo(self) -> None:
        for edge in self.edges:
            if self.graph.input_edge(edge.dst, edge.dst_port) == edge:
                self.graph.disconnect(edge)
        for node_id in reversed(self.node_ids):
            self.graph.remove_node(node_id)
            self.layout.remove(node_id)

    def undo(self) -> None:
        for data in self.nodes:
            node_id = data["id"]
            position = self.positions[node_id]
            if position is not None:
                self.layout.move(node_id, *position)
            self.graph.add_node(data["type"], data["params"], name=data["name"], node_id=node_id,
                                index=self.indices[node_id])
        for edge in self.edges:
            self.graph.connect(edge.src, edge.src_port, edge.dst, edge.dst_port)


class ConnectCommand(QUndoCommand):
    """Connect an output port to an input port (validated by the caller with ``Graph.can_connect``)."""

    def __init__(self, graph: Graph, src: str, src_port: str, dst: str, dst_port: str,
                 parent: QUndoCommand | None = None) -> None:
        super().__init__(parent)
        self.graph = graph
        self.edge = Edge(src, src_port, dst, dst_port)
        self.setText(f"connect {src} to {dst}")

    def redo(self) -> None:
        e = self.edge
        self.graph.connect(e.src, e.src_port, e.dst, e.dst_port)

    def undo(self) -> None:
        self.graph.disconnect(self.edge)


class DisconnectCommand(QUndoCommand):
    """Remove one edge."""

    def __init__(self, graph: Graph, edge: Edge, parent: QUndoCommand | None = None) -> None:
        super().__init__(parent)
        self.graph = graph
        self.edge = edge
        self.setText(f"disconnect {edge.src} from {edge.dst}")

    def redo(self) -> None:
        self.graph.disconnect(self.edge)

    def undo(self) -> None:
        e = self.edge
        self.graph.connect(e.src, e.src_port, e.dst, e.dst_port)


class MoveNodesCommand(QUndoCommand):
    """Move any number of nodes: one drag, one auto-layout, one undo step."""

    def __init__(self, layout: Layout, old: Mapping[str, Point], new: Mapping[str, Point], text: str = "",
                 parent: QUndoCommand | None = None) -> None:
        super().__init__(parent)
        self.layout = layout
        self.old = dict(old)
        self.new = dict(new)
        count = len(self.new)
        self.setText(text or f"move {count} node{'s' if count != 1 else ''}")

    def redo(self) -> None:
        for node_id, (x, y) in self.new.items():
            self.layout.move(node_id, x, y)

    def undo(self) -> None:
        for node_id, (x, y) in self.old.items():
            self.layout.move(node_id, x, y)


class SetParamCommand(QUndoCommand):
    """Change one parameter of one node."""

    def __init__(self, graph: Graph, node_id: str, name: str, value: Any,
                 parent: QUndoCommand | None = None) -> None:
        super().__init__(parent)
        self.graph = graph
        self.node_id, self.name = node_id, name
        self.old = graph.node(node_id).params[name]
        self.new = value
        self.setText(f"set {node_id}.{name}")

    def redo(self) -> None:
        self.graph.set_param(self.node_id, self.name, self.new)

    def undo(self) -> None:
        self.graph.set_param(self.node_id, self.name, self.old)


class RenameCommand(QUndoCommand):
    """Change a node's user-visible name."""

    def __init__(self, graph: Graph, node_id: str, name: str, parent: QUndoCommand | None = None) -> None:
        super().__init__(parent)
        self.graph = graph
        self.node_id = node_id
        self.old = graph.node(node_id).name
        self.new = name
        self.setText(f"rename {node_id}")

    def redo(self) -> None:
        self.graph.rename(self.node_id, self.new)

    def undo(self) -> None:
        self.graph.rename(self.node_id, self.old)


class SetSettingCommand(QUndoCommand):
    """Change one data or training setting of the project (already validated by the caller).

    Consecutive edits of the same setting merge into one undo step, so
    spinning a value up by ten clicks is undone at once.
    """

    _ID = 0x5e7

    def __init__(self, project: Project, section: str, key: str, value: Any,
                 parent: QUndoCommand | None = None) -> None:
        super().__init__(parent)
        self.project = project
        self.section, self.key = section, key
        self.old = getattr(project, section)[key]
        self.new = value
        self.setText(f"set {section} {key}")

    def id(self) -> int:
        return self._ID

    def mergeWith(self, other: QUndoCommand) -> bool:
        if not isinstance(other, SetSettingCommand) or (other.section, other.key) != (self.section, self.key):
            return False
        self.new = other.new
        return True

    def redo(self) -> None:
        self.project.set_setting(self.section, self.key, self.new)

    def undo(self) -> None:
        self.project.set_setting(self.section, self.key, self.old)


class MacroCommand(QUndoCommand):
    """Several commands as one undo step: redo in order, undo in reverse.

    Children are held here rather than through Qt's parent mechanism: a Python
    subclass given only to a C++ parent may lose its Python side (and its redo).
    """

    def __init__(self, text: str, commands: list[QUndoCommand] | None = None) -> None:
        super().__init__(text)
        self.commands: list[QUndoCommand] = list(commands or [])

    def add(self, command: QUndoCommand) -> QUndoCommand:
        self.commands.append(command)
        return command

    def redo(self) -> None:
        for command in self.commands:
            command.redo()

    def undo(self) -> None:
        for command in reversed(self.commands):
            command.undo()


def check_param_value(graph: Graph, node_id: str, name: str, value: Any) -> Any:
    """The normalized value if ``Graph.set_param`` would accept it; raise ParamError with the reason if not.

    The inspector asks first so that an invalid value is refused on the spot,
    before any command is pushed.
    """
    node = graph.node(node_id)
    spec = node.spec
    try:
        value = spec.param(name).validate(value)
    except ParamError as error:
        raise ParamError(f"{node.name}: {error.message}", node_id, name) from None
    if name == spec.variadic_param:
        remaining = set(spec.input_ports({**node.params, name: value}))
        taken = [p for p in node.input_ports if p not in remaining and graph.input_edge(node_id, p) is not None]
        if taken:
            raise ParamError(f"{node.name}: disconnect input {taken[0]!r} first", node_id, name)
    return value


def make_fix_command(graph: Graph, layout: Layout, node_id: str, fix: Fix) -> MacroCommand:
    """One undo step applying ``fix`` to ``node_id`` (insert a node before an input, or set a parameter)."""
    macro = MacroCommand(f"fix {node_id}: {fix.description}")
    if fix.action == "set_param":
        macro.add(SetParamCommand(graph, node_id, fix.param, fix.value))
        return macro
    if fix.action != "insert_before":
        raise GraphError(f"unknown fix {fix.action!r} for {node_id}", node_id)
    target = graph.node(node_id)
    port = fix.port or target.input_ports[0]
    x, y = layout.position(node_id) or (0.0, 0.0)
    # Make room: the failing node and everything after it slide right by one node's width.
    downstream = graph.descendants([node_id])
    old = {n: p for n in downstream if (p := layout.position(n)) is not None}
    new = {n: (px + FIX_SHIFT, py) for n, (px, py) in old.items()}
    macro.add(MoveNodesCommand(layout, old, new))
    added = macro.add(AddNodeCommand(graph, layout, fix.layer_type, (x, y), params=fix.params))
    spec = get_spec(fix.layer_type)
    new_in, new_out = spec.input_ports(added.params)[0], spec.output_ports(added.params)[0]
    existing = graph.input_edge(node_id, port)
    if existing is not None:
        macro.add(DisconnectCommand(graph, existing))
        macro.add(ConnectCommand(graph, existing.src, existing.src_port, added.node_id, new_in))
    macro.add(ConnectCommand(graph, added.node_id, new_out, node_id, port))
    return macro

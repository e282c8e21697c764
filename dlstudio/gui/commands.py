"""Every edit of the network is a QUndoCommand here (design.md §2).

``redo`` and ``undo`` call the core :class:`Graph` / :class:`Layout` API and
nothing else; the scene, the inspector and the status bar follow the model's
events. Composite edits (paste, fixes) are one :class:`MacroCommand`, so
they are one undo step.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from typing import Any

from PySide6.QtGui import QUndoCommand

from dlstudio.core.errors import Fix, GraphError, ParamError
from dlstudio.core.graph import Edge, Graph
from dlstudio.core.layers import get_spec
from dlstudio.core.layout import Layout, Point
from dlstudio.core.project import Project
from dlstudio.core.project.blocks import Block, Blocks, FrozenNodes

# Room a fix leaves on each side of an inserted node, so the shape labels of its two edges stay readable
# (a label such as "(N, 16, 5, 5)" is about 70 px wide at the canvas's label font).
FIX_LABEL_ROOM = 90.0
# The size a node is assumed to have on the canvas when placing one (the canvas's NodeItem: 196 x 82).
NODE_SIZE = (196.0, 82.0)


def node_name(graph: Graph, node_id: str, names: Mapping[str, str] | None = None) -> str:
    """The name a person knows the node by (``names`` gives those of nodes a macro has yet to add)."""
    if names and node_id in names:
        return names[node_id]
    return graph.node(node_id).name


def describe_nodes(names: Iterable[str]) -> str:
    """``"conv1"`` for one node, ``"3 layers"`` for several: for undo texts and status messages."""
    names = list(names)
    return names[0] if len(names) == 1 else f"{len(names)} layers"


def describe_edge(graph: Graph, edge: Edge, names: Mapping[str, str] | None = None) -> str:
    return f"{node_name(graph, edge.src, names)} \u2192 {node_name(graph, edge.dst, names)}"


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
        # The name is chosen once too (the id, or the next free name when another node carries it).
        self.name = name if name is not None else graph.unique_name(self.node_id)
        self.pos = (float(pos[0]), float(pos[1]))
        self.setText(f"Add {self.name}")

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
                 parent: QUndoCommand | None = None, *, blocks: Blocks | None = None,
                 frozen: FrozenNodes | None = None) -> None:
        super().__init__(parent)
        self.graph, self.layout = graph, layout
        self.blocks, self.frozen = blocks, frozen
        order = list(graph.nodes)
        self.node_ids = sorted(set(node_ids), key=order.index)
        self.indices = {node_id: order.index(node_id) for node_id in self.node_ids}
        self.nodes = [graph.node(n).to_dict() for n in self.node_ids]
        self.positions = {n: layout.position(n) for n in self.node_ids}
        touching = {e for n in self.node_ids for e in graph.input_edges(n) + graph.output_edges(n)}
        self.edges = sorted(touching | set(edges or ()))
        # The core drops a removed node from its block and from the frozen set; undo puts both back as they were.
        self.touched_blocks: list[tuple[int, Block]] = []
        if blocks is not None:
            block_order = [block.id for block in blocks]
            for block in blocks:
                if any(n in block.nodes for n in self.node_ids):
                    self.touched_blocks.append((block_order.index(block.id), block))
        self.frozen_ids = [n for n in self.node_ids if frozen is not None and n in frozen]
        if self.node_ids:
            what = describe_nodes(node_name(graph, n) for n in self.node_ids)
        elif len(self.edges) == 1:
            what = f"connection {describe_edge(graph, self.edges[0])}"
        else:
            what = f"{len(self.edges)} connections"
        self.setText(f"Delete {what}")

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
        if self.blocks is not None:
            for index, block in self.touched_blocks:  # in their old order, so each goes back to its place
                if block.id in self.blocks:  # still there with the members that were not removed
                    self.blocks.ungroup(block.id)
                self.blocks.add(block, index)
        if self.frozen is not None and self.frozen_ids:
            self.frozen.set(self.frozen_ids, True)


class ConnectCommand(QUndoCommand):
    """Connect an output port to an input port (validated by the caller with ``Graph.can_connect``)."""

    def __init__(self, graph: Graph, src: str, src_port: str, dst: str, dst_port: str,
                 parent: QUndoCommand | None = None, *, names: Mapping[str, str] | None = None) -> None:
        super().__init__(parent)
        self.graph = graph
        self.edge = Edge(src, src_port, dst, dst_port)
        self.setText(f"Connect {describe_edge(graph, self.edge, names)}")

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
        self.setText(f"Disconnect {describe_edge(graph, edge)}")

    def redo(self) -> None:
        self.graph.disconnect(self.edge)

    def undo(self) -> None:
        e = self.edge
        self.graph.connect(e.src, e.src_port, e.dst, e.dst_port)


class MoveNodesCommand(QUndoCommand):
    """Move any number of nodes: one drag, one auto-layout, one undo step."""

    def __init__(self, layout: Layout, old: Mapping[str, Point], new: Mapping[str, Point], text: str = "",
                 parent: QUndoCommand | None = None, *, graph: Graph | None = None) -> None:
        super().__init__(parent)
        self.layout = layout
        self.old = dict(old)
        self.new = dict(new)
        if not text:
            if graph is not None:
                text = f"Move {describe_nodes(node_name(graph, n) for n in self.new if n in graph)}"
            else:  # without the graph there are no names to say, and ids are not for people
                count = len(self.new)
                text = f"Move {count} layer{'s' if count != 1 else ''}"
        self.setText(text)

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
        self.setText(f"Change {name} of {node_name(graph, node_id)}")

    def redo(self) -> None:
        self.graph.set_param(self.node_id, self.name, self.new)

    def undo(self) -> None:
        self.graph.set_param(self.node_id, self.name, self.old)


class RenameCommand(QUndoCommand):
    """Change a node's user-visible name.

    A refused name (another node has it) makes the command obsolete, so pushing it changes nothing and
    leaves no step; callers ask ``Graph.check_rename`` first to tell the person why.
    """

    def __init__(self, graph: Graph, node_id: str, name: str, parent: QUndoCommand | None = None) -> None:
        super().__init__(parent)
        self.graph = graph
        self.node_id = node_id
        self.old = graph.node(node_id).name
        self.new = name
        self.refusal: GraphError | None = None
        try:
            graph.check_rename(node_id, name)
        except GraphError as error:
            self.refusal = error
        self.setText(f"Rename {self.old} to {name}")

    def redo(self) -> None:
        if self.refusal is not None:
            self.setObsolete(True)
            return
        self.graph.rename(self.node_id, self.new)

    def undo(self) -> None:
        self.graph.rename(self.node_id, self.old)


class GroupBlockCommand(QUndoCommand):
    """Group nodes into a new block, shown collapsed. The block id and name are chosen once, for redo."""

    def __init__(self, blocks: Blocks, graph: Graph, node_ids: list[str], name: str | None = None,
                 collapsed: bool = True, parent: QUndoCommand | None = None, *,
                 names: Mapping[str, str] | None = None, block_id: str | None = None) -> None:
        super().__init__(parent)
        self.blocks = blocks
        order = list(graph.nodes)
        self.node_ids = list(dict.fromkeys(node_ids))
        if all(n in graph for n in self.node_ids):  # in the graph's order (``names``: nodes a macro adds first)
            self.node_ids.sort(key=order.index)
        # ``block_id``: given when one macro groups several blocks before any of them exists (a paste).
        self.block_id = blocks.new_block_id() if block_id is None else block_id
        self.name = blocks.unique_name("block") if name is None else name
        self.collapsed = collapsed
        what = describe_nodes(node_name(graph, n, names) for n in self.node_ids)
        self.setText(f"Group {what} into {self.name}")

    def redo(self) -> None:
        self.blocks.group(self.node_ids, self.name, block_id=self.block_id, collapsed=self.collapsed)

    def undo(self) -> None:
        self.blocks.ungroup(self.block_id)


class UngroupBlockCommand(QUndoCommand):
    """Dissolve a block (its nodes stay where they are); undo makes the same block at the same place."""

    def __init__(self, blocks: Blocks, block_id: str, parent: QUndoCommand | None = None) -> None:
        super().__init__(parent)
        self.blocks = blocks
        self.block = blocks.get(block_id)
        self.index = [block.id for block in blocks].index(block_id)
        self.setText(f"Ungroup {self.block.name}")

    def redo(self) -> None:
        self.blocks.ungroup(self.block.id)

    def undo(self) -> None:
        self.blocks.add(self.block, self.index)


class SetBlockCollapsedCommand(QUndoCommand):
    """Collapse a block into one item on the canvas, or expand it into its nodes."""

    def __init__(self, blocks: Blocks, block_id: str, collapsed: bool, parent: QUndoCommand | None = None) -> None:
        super().__init__(parent)
        self.blocks = blocks
        self.block_id = block_id
        self.old = blocks.get(block_id).collapsed
        self.new = bool(collapsed)
        self.setText(f"{'Collapse' if collapsed else 'Expand'} {blocks.get(block_id).name}")

    def redo(self) -> None:
        self.blocks.set_collapsed(self.block_id, self.new)

    def undo(self) -> None:
        self.blocks.set_collapsed(self.block_id, self.old)


class RenameBlockCommand(QUndoCommand):
    """Change a block's name. Callers check the name first (``check_block_name``) to say why it is refused."""

    def __init__(self, blocks: Blocks, block_id: str, name: str, parent: QUndoCommand | None = None) -> None:
        super().__init__(parent)
        self.blocks = blocks
        self.block_id = block_id
        self.old = blocks.get(block_id).name
        self.new = " ".join(name.split())
        self.setText(f"Rename block {self.old} to {self.new}")

    def redo(self) -> None:
        self.blocks.rename(self.block_id, self.new)

    def undo(self) -> None:
        self.blocks.rename(self.block_id, self.old)


def check_block_name(blocks: Blocks, block_id: str, name: str) -> str:
    """The name ``block_id`` would get (spaces tidied); GraphError saying why when it is refused."""
    name = Blocks._check_name(name)
    if any(other.name == name for other in blocks if other.id != block_id):
        raise GraphError(f"another block is already called {name}")
    return name


class FreezeCommand(QUndoCommand):
    """Freeze (or unfreeze) the weights of nodes; undo changes back only those whose state it changed."""

    def __init__(self, frozen: FrozenNodes, graph: Graph, node_ids: list[str], freeze: bool,
                 parent: QUndoCommand | None = None, *, names: Mapping[str, str] | None = None) -> None:
        super().__init__(parent)
        self.frozen = frozen
        self.node_ids = [n for n in dict.fromkeys(node_ids) if (n in frozen) != bool(freeze)]
        self.freeze = bool(freeze)
        # ``names``: nodes a macro adds before this command runs (a paste), not in the graph yet.
        what = describe_nodes(node_name(graph, n, names) for n in self.node_ids) if self.node_ids else "nothing"
        self.setText(f"{'Freeze' if freeze else 'Unfreeze'} {what}")

    def redo(self) -> None:
        self.frozen.set(self.node_ids, self.freeze)

    def undo(self) -> None:
        self.frozen.set(self.node_ids, not self.freeze)


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
        self._applied = False

    def apply(self) -> None:
        """Do it now, before it is pushed, so that a failure (raised, nothing left half done) can be told
        and nothing is pushed; the undo stack's own first redo then does nothing."""
        self.redo()
        self._applied = True

    def add(self, command: QUndoCommand) -> QUndoCommand:
        self.commands.append(command)
        return command

    def redo(self) -> None:
        """All or nothing: when one child fails, the ones done before it are undone and the error raised."""
        if self._applied:  # done by apply() just before the push
            self._applied = False
            return
        done: list[QUndoCommand] = []
        try:
            for command in self.commands:
                command.redo()
                done.append(command)
        except BaseException:
            for command in reversed(done):
                command.undo()
            raise

    def undo(self) -> None:
        for command in reversed(self.commands):
            command.undo()


def check_rename(graph: Graph, node_id: str, name: str) -> str:
    """The checked name if ``node_id`` may be renamed to it; raise GraphError (DuplicateNameError) if not."""
    return graph.check_rename(node_id, name)


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


def make_fix_command(graph: Graph, layout: Layout, node_id: str, fix: Fix,
                     sizes: Mapping[str, tuple[float, float]] | None = None) -> MacroCommand:
    """One undo step applying ``fix`` to ``node_id``: set a parameter (of it, or of ``fix.node_id``), or
    insert a node before one of its inputs, with room for the edge labels on both sides.

    ``sizes`` gives the nodes' sizes on the canvas (``GraphScene.node_sizes()``); unknown ones are
    taken as :data:`NODE_SIZE`.
    """
    macro = MacroCommand(f"Fix {node_name(graph, node_id)}: {fix.description}")
    if fix.action == "set_param":
        macro.add(SetParamCommand(graph, fix.node_id or node_id, fix.param, fix.value))
        return macro
    if fix.action != "insert_before":
        raise GraphError(f"{node_name(graph, node_id)}: this fix cannot be applied ({fix.description})", node_id)
    target = graph.node(node_id)
    port = fix.port or target.input_ports[0]
    existing = graph.input_edge(node_id, port)
    position, moves = _insertion_place(graph, layout, node_id, existing.src if existing is not None else None,
                                       dict(sizes or {}))
    if moves:
        macro.add(MoveNodesCommand(layout, {n: layout.position(n) for n in moves}, moves, graph=graph))
    added = macro.add(AddNodeCommand(graph, layout, fix.layer_type, position, params=fix.params))
    spec = get_spec(fix.layer_type)
    new_in, new_out = spec.input_ports(added.params)[0], spec.output_ports(added.params)[0]
    if existing is not None:
        macro.add(DisconnectCommand(graph, existing))
        macro.add(ConnectCommand(graph, existing.src, existing.src_port, added.node_id, new_in,
                                 names={added.node_id: added.name}))
    macro.add(ConnectCommand(graph, added.node_id, new_out, node_id, port, names={added.node_id: added.name}))
    return macro


def _insertion_place(graph: Graph, layout: Layout, node_id: str, source: str | None,
                     sizes: dict[str, tuple[float, float]]) -> tuple[Point, dict[str, Point]]:
    """Where a node inserted between ``source`` and ``node_id`` goes, and which nodes move to make room.

    The new node sits in the flow between the two, at least :data:`FIX_LABEL_ROOM` from each; when the
    gap is too narrow, ``node_id`` and everything downstream of it slide along the flow (right in a row
    drawn left to right, left in a row drawn right to left, down in a column) by what is missing.
    """
    width, height = NODE_SIZE
    x, y = layout.position(node_id) or (0.0, 0.0)
    src_pos = layout.position(source) if source is not None else None
    if src_pos is None:  # nothing before it: put the new node in front and push the rest along
        src_pos = (x - sizes.get(node_id, NODE_SIZE)[0] - FIX_LABEL_ROOM, y)
    sx, sy = src_pos
    src_w, src_h = sizes.get(source, NODE_SIZE) if source is not None else NODE_SIZE
    dx, dy = x - sx, y - sy
    if abs(dx) >= abs(dy):  # a row: flow along x, either way
        sign = 1.0 if dx >= 0 else -1.0
        gap = (x - (sx + src_w)) if sign > 0 else (sx - (x + sizes.get(node_id, NODE_SIZE)[0]))
        needed = width + 2 * FIX_LABEL_ROOM
        shift = max(0.0, needed - gap)
        start = (sx + src_w) if sign > 0 else (sx - gap)  # the left edge of the gap
        free = gap + shift
        new_x = start + (free - width) / 2 if sign > 0 else start - shift + (free - width) / 2
        position = (new_x, y)
        offset = (sign * shift, 0.0)
    else:  # a column: flow along y
        sign = 1.0 if dy >= 0 else -1.0
        gap = (y - (sy + src_h)) if sign > 0 else (sy - (y + sizes.get(node_id, NODE_SIZE)[1]))
        needed = height + 2 * FIX_LABEL_ROOM
        shift = max(0.0, needed - gap)
        start = (sy + src_h) if sign > 0 else (sy - gap)
        free = gap + shift
        new_y = start + (free - height) / 2 if sign > 0 else start - shift + (free - height) / 2
        position = (x, new_y)
        offset = (0.0, sign * shift)
    moves: dict[str, Point] = {}
    if shift > 0:
        for n in graph.descendants([node_id]):
            p = layout.position(n)
            if p is not None:
                moves[n] = (p[0] + offset[0], p[1] + offset[1])
    return position, moves

"""The scene follows the model: graph and layout events in, items out (design.md §2).

It never mutates the graph or the layout. Gestures that would (a port drag,
a node drag) end in a signal carrying the intent; the main window turns it
into an undo command, whose effect comes back here as a model event.
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

from PySide6.QtCore import QPointF, QRectF, Qt, Signal
from PySide6.QtWidgets import QGraphicsItem, QGraphicsScene, QGraphicsSceneContextMenuEvent, QGraphicsSceneMouseEvent

from dlstudio.core.graph import Edge, Graph, Node
from dlstudio.core.layers.spec import format_shape
from dlstudio.core.layout import Layout, Point
from dlstudio.core.project.blocks import Block, Blocks, FrozenNodes
from dlstudio.core.shapes import ShapeInference
from dlstudio.gui.canvas.block_items import BlockFrame, BlockItem, BlockSummary, frozen_state, summarize_block
from dlstudio.gui.canvas.connect import ConnectGesture
from dlstudio.gui.canvas.items import INPUT, OUTPUT, EdgeItem, NodeItem, PortItem
from dlstudio.gui.theme import CanvasColors


class GraphScene(QGraphicsScene):
    """Items for every node and edge of a graph, kept in step with its events."""

    connect_requested = Signal(str, str, str, str)  # src, src_port, dst, dst_port
    nodes_dragged = Signal(object, object)  # {node_id: old Point}, {node_id: new Point}
    status_message = Signal(str)
    # Node ids whose info, name or params changed, or that were added or removed (so the totals and the
    # error count follow every change of the node set, even one that changes no shape).
    infos_changed = Signal(list)
    context_menu_requested = Signal(object, object)  # node id or None, screen QPoint
    block_context_menu_requested = Signal(str, object)  # block id, screen QPoint
    block_collapse_requested = Signal(str, bool)  # block id, collapsed (a double-click or the frame's button)

    def __init__(self, graph: Graph, layout: Layout, inference: ShapeInference, colors: CanvasColors,
                 parent: Any = None, *, blocks: Blocks | None = None, frozen: FrozenNodes | None = None) -> None:
        super().__init__(parent)
        self.graph = graph
        self.layout = layout
        self.inference = inference
        self.colors = colors
        # A scene made for a bare graph (tests, previews) gets empty blocks and frozen sets of its own.
        self.blocks = blocks if blocks is not None else Blocks(graph)
        self.frozen = frozen if frozen is not None else FrozenNodes(graph)
        self.node_items: dict[str, NodeItem] = {}
        self.edge_items: dict[Edge, EdgeItem] = {}
        self.block_items: dict[str, BlockItem] = {}  # collapsed blocks
        self.frame_items: dict[str, BlockFrame] = {}  # expanded blocks
        self._blocks_dirty = True
        self._block_drag_start: dict[str, Point] = {}
        self._hidden: dict[str, str] = {}  # node id -> the collapsed block drawn in its place
        # Each block's crossing edges and each node's block, worked out once per change of the graph or the
        # blocks (the core's Blocks.boundary walks every edge, for one block).
        self._boundaries: dict[str, tuple[list[Edge], list[Edge]]] | None = None
        self._owners: dict[str, str] = {}
        self._batch_depth = 0
        self._pending: set[str] = set()
        self._removed: set[str] = set()
        self._gesture: ConnectGesture | None = None
        self._drag_start: dict[str, Point] = {}
        self.read_only = False
        self.setItemIndexMethod(QGraphicsScene.ItemIndexMethod.BspTreeIndex)
        with self.batched():
            for node in graph:
                self._on_node_added(node)
            for edge in graph.edges:
                self._on_edge_added(edge)
            self._pending.update(graph.nodes)
        graph.node_added.connect(self._on_node_added)
        graph.node_removed.connect(self._on_node_removed)
        graph.edge_added.connect(self._on_edge_added)
        graph.edge_removed.connect(self._on_edge_removed)
        graph.param_changed.connect(self._on_param_changed)
        graph.node_renamed.connect(self._on_node_renamed)
        layout.node_moved.connect(self._on_node_moved)
        self.blocks.changed.connect(self._on_blocks_changed)
        self.frozen.changed.connect(self._on_frozen_changed)
        with self.batched():
            self._on_frozen_changed(tuple(self.frozen), True)

    def detach(self) -> None:
        """Stop following the model (before the scene is dropped for another project)."""
        self.graph.node_added.disconnect(self._on_node_added)
        self.graph.node_removed.disconnect(self._on_node_removed)
        self.graph.edge_added.disconnect(self._on_edge_added)
        self.graph.edge_removed.disconnect(self._on_edge_removed)
        self.graph.param_changed.disconnect(self._on_param_changed)
        self.graph.node_renamed.disconnect(self._on_node_renamed)
        self.layout.node_moved.disconnect(self._on_node_moved)
        self.blocks.changed.disconnect(self._on_blocks_changed)
        self.frozen.changed.disconnect(self._on_frozen_changed)

    # -- batching ----------------------------------------------------------

    def drawn_items_overlap(self) -> bool:
        """Whether any two drawn layers or collapsed blocks cover each other (an expanded block's layers
        laid out for the collapsed network overlap what follows them)."""
        rects = [item.sceneBoundingRect() for item in (*self.node_items.values(), *self.block_items.values())
                 if item.isVisible()]
        rects.sort(key=lambda rect: rect.left())
        for index, rect in enumerate(rects):  # a sweep along x: only neighbours in x can overlap
            for other in rects[index + 1:]:
                if other.left() >= rect.right():
                    break
                if rect.intersects(other):
                    return True
        return False

    @contextmanager
    def batched(self) -> Iterator[None]:
        """Defer shape refreshes until the outermost block ends (paste, auto-layout, undo of a macro)."""
        self._batch_depth += 1
        try:
            yield
        finally:
            self._batch_depth -= 1
            if self._batch_depth == 0:
                self._refresh()

    def _touch(self, *node_ids: str) -> None:
        self._pending.update(node_ids)
        if self._batch_depth == 0:
            self._refresh()

    def _refresh(self) -> None:
        recomputed = self.inference.update()
        changed = [n for n in dict.fromkeys([*recomputed, *self._pending]) if n in self.node_items]
        removed = sorted(n for n in self._removed if n not in self.node_items)
        self._pending.clear()
        self._removed.clear()
        if self._blocks_dirty:
            self._apply_blocks()
        if changed or removed:
            self._update_block_summaries()
        if not changed and not removed:
            return
        for node_id in changed:
            info = self.inference.info(node_id)
            self.node_items[node_id].set_info(info)
            for edge in self.graph.output_edges(node_id):
                item = self.edge_items.get(edge)
                if item is not None:
                    item.set_label(format_shape(info.output_shapes.get(edge.src_port)))
        self.infos_changed.emit(changed + removed)

    # -- model events --------------------------------------------------------

    def _on_node_added(self, node: Node) -> None:
        self._boundaries = None
        item = NodeItem(node, self.colors)
        position = self.layout.position(node.id) or (0.0, 0.0)
        item.setPos(*position)
        item.setFlag(QGraphicsItem.GraphicsItemFlag.ItemIsMovable, not self.read_only)
        item.set_frozen(node.id in self.frozen)
        self.addItem(item)
        self.node_items[node.id] = item
        if self.blocks.block_of(node.id) is not None:
            self._blocks_dirty = True
        self._touch(node.id)

    def _on_node_removed(self, node: Node) -> None:
        item = self.node_items.pop(node.id, None)
        if item is not None:
            self.removeItem(item)
        self._boundaries = None
        self._blocks_dirty = self._blocks_dirty or bool(self.block_items or self.frame_items)
        self._removed.add(node.id)
        self._touch()

    def _on_edge_added(self, edge: Edge) -> None:
        self._boundaries = None
        source = self.node_items[edge.src].port(edge.src_port, OUTPUT)
        target = self.node_items[edge.dst].port(edge.dst_port, INPUT)
        item = EdgeItem(edge, source, target, self.colors)
        self.addItem(item)
        self.edge_items[edge] = item
        source.update()
        target.update()
        if self.in_collapsed_block(edge.src) or self.in_collapsed_block(edge.dst):
            self._blocks_dirty = True  # the edge goes to a block's port, which may be a new one
        self._orient(edge.src, edge.dst)
        self._touch(edge.src, edge.dst)

    def _on_edge_removed(self, edge: Edge) -> None:
        self._boundaries = None
        item = self.edge_items.pop(edge, None)
        if item is not None:
            item.detach()
            self.removeItem(item)
        if self.block_items:
            self._blocks_dirty = True  # a block's port may have lost its last edge
        ends = [n for n in (edge.src, edge.dst) if n in self.node_items]
        self._orient(*ends)
        self._touch(*ends)

    def _on_param_changed(self, node_id: str, name: str, old: Any, new: Any) -> None:
        item = self.node_items[node_id]
        if name == item.node.spec.variadic_param:
            item.rebuild_ports()
            for edge_item in item.edges:  # re-attach edges to the new port objects
                if edge_item.edge.dst == node_id:
                    edge_item.target = item.port(edge_item.edge.dst_port, INPUT)
                if edge_item.edge.src == node_id:
                    edge_item.source = item.port(edge_item.edge.src_port, OUTPUT)
                edge_item.update_path()
        self._touch(node_id)

    def _on_node_renamed(self, node_id: str, old: str, new: str) -> None:
        self._touch(node_id)

    def _on_node_moved(self, node_id: str, old: Point | None, new: Point | None) -> None:
        item = self.node_items.get(node_id)
        if item is not None and new is not None and (item.pos().x(), item.pos().y()) != new:
            item.setPos(*new)
        block = self._block_of(node_id)
        if block is not None and block.id in self.block_items:
            self._place_block_item(block)

    # -- blocks ----------------------------------------------------------------

    def _on_blocks_changed(self) -> None:
        self._boundaries = None
        self._blocks_dirty = True
        self._touch()

    def _block_index(self) -> dict[str, tuple[list[Edge], list[Edge]]]:
        if self._boundaries is None:
            self._owners = {n: block.id for block in self.blocks for n in block.nodes}
            boundaries: dict[str, tuple[list[Edge], list[Edge]]] = {block.id: ([], []) for block in self.blocks}
            for edge in self.graph.edges:
                src, dst = self._owners.get(edge.src), self._owners.get(edge.dst)
                if src == dst:
                    continue
                if dst is not None:
                    boundaries[dst][0].append(edge)
                if src is not None:
                    boundaries[src][1].append(edge)
            self._boundaries = boundaries
        return self._boundaries

    def _boundary(self, block_id: str) -> tuple[list[Edge], list[Edge]]:
        """The edges entering and leaving the block, in graph order (as ``Blocks.boundary``)."""
        return self._block_index().get(block_id, ([], []))

    def _block_of(self, node_id: str) -> Block | None:
        self._block_index()
        block_id = self._owners.get(node_id)
        return self.blocks.get(block_id) if block_id is not None and block_id in self.blocks else None

    def _on_frozen_changed(self, node_ids: tuple[str, ...], frozen: bool) -> None:
        for node_id in node_ids:
            item = self.node_items.get(node_id)
            if item is not None:
                item.set_frozen(node_id in self.frozen)
        for block in self.blocks:
            if block.id in self.frame_items and any(n in block.nodes for n in node_ids):
                self._place_frame(block)
        self._touch(*[n for n in node_ids if n in self.node_items])  # block summaries follow at the refresh

    def in_collapsed_block(self, node_id: str) -> bool:
        block = self.blocks.block_of(node_id)
        return block is not None and block.collapsed

    def _apply_blocks(self) -> None:
        """Make the canvas show the blocks as they are: an item per collapsed block (its nodes and inner
        edges hidden, crossing edges on its ports), a frame behind each expanded one."""
        self._blocks_dirty = False
        blocks = [block for block in self.blocks if any(n in self.node_items for n in block.nodes)]
        collapsed = {block.id: block for block in blocks if block.collapsed}
        expanded = {block.id: block for block in blocks if not block.collapsed}
        for block_id in [b for b in self.block_items if b not in collapsed]:
            item = self.block_items.pop(block_id)
            for edge_item in list(item.edges):  # back to the nodes' ports before the item goes
                self._attach(edge_item, {})
            self.removeItem(item)
        for block_id in [b for b in self.frame_items if b not in expanded]:
            self.removeItem(self.frame_items.pop(block_id))
        hidden: dict[str, str] = {}  # node id -> its collapsed block's id
        for block in collapsed.values():
            item = self.block_items.get(block.id)
            if item is None:
                item = BlockItem(block.id, self.colors)
                item.setFlag(QGraphicsItem.GraphicsItemFlag.ItemIsMovable, not self.read_only)
                self.addItem(item)
                self.block_items[block.id] = item
            entering, leaving = self._boundary(block.id)
            item.set_ports(list(dict.fromkeys(self._port_key(e.src, e.src_port) for e in entering)),
                           list(dict.fromkeys(self._port_key(e.src, e.src_port) for e in leaving)))
            self._place_block_item(block)
            hidden.update(dict.fromkeys(block.nodes, block.id))
        self._hidden = hidden
        for node_id, node_item in self.node_items.items():
            node_item.setVisible(node_id not in hidden)
        for edge_item in self.edge_items.values():
            self._attach(edge_item, hidden)
        for block in expanded.values():
            frame = self.frame_items.get(block.id)
            if frame is None:
                frame = BlockFrame(block.id, self.colors)
                self.addItem(frame)
                self.frame_items[block.id] = frame
            self._place_frame(block)
        self._update_block_summaries()
        self._orient(*self.block_items, *self.graph.nodes)

    @staticmethod
    def _port_key(node_id: str, port: str) -> str:
        return f"{node_id}:{port}"

    def _attach(self, edge_item: EdgeItem, hidden: dict[str, str]) -> None:
        """Put an edge on its nodes' ports, or on the ports of the collapsed blocks they are in (``hidden``:
        node id -> block id); an edge inside one collapsed block is hidden."""
        edge = edge_item.edge
        src_block, dst_block = hidden.get(edge.src), hidden.get(edge.dst)
        if src_block is not None and src_block == dst_block:
            edge_item.setVisible(False)
            edge_item.reattach(self.node_items[edge.src].port(edge.src_port, OUTPUT),
                               self.node_items[edge.dst].port(edge.dst_port, INPUT))
            return
        key = self._port_key(edge.src, edge.src_port)
        source = (self.block_items[src_block].port(key, OUTPUT) if src_block is not None
                  else self.node_items[edge.src].port(edge.src_port, OUTPUT))
        target = (self.block_items[dst_block].port(key, INPUT) if dst_block is not None
                  else self.node_items[edge.dst].port(edge.dst_port, INPUT))
        edge_item.reattach(source, target)
        edge_item.setVisible(True)

    def _place_block_item(self, block: Block) -> None:
        """A collapsed block sits where its first node is (as an import lays it out); moving it moves all
        its nodes by as much, so expanded they keep their arrangement."""
        first = next((self.node_items[n] for n in block.nodes if n in self.node_items), None)
        if first is None:
            return
        x, y = first.pos().x(), first.pos().y()
        item = self.block_items[block.id]
        if (item.pos().x(), item.pos().y()) != (x, y):
            item.setPos(x, y)

    def _place_frame(self, block: Block) -> None:
        index: dict[str, int] = {}
        rects: list[QRectF] = []
        for node_id in block.nodes:
            item = self.node_items.get(node_id)
            if item is not None:
                index[node_id] = len(rects)
                rects.append(item.mapRectToScene(QRectF(0, 0, *item.size())))
        links = [(index[e.src], index[e.dst]) for n in index for e in self.graph.output_edges(n) if e.dst in index]
        self.frame_items[block.id].set_frame(rects, links, block.name, self._frozen_state(block))

    def _frozen_state(self, block: Block) -> str:
        return frozen_state(block, self.frozen)

    def block_summary(self, block: Block) -> BlockSummary:
        """Name, size, boundary shapes (from the shape engine), totals and errors of a block."""
        return summarize_block(block, self._boundary(block.id), self.graph, self.inference, self.frozen)

    def _update_block_summaries(self) -> None:
        for block in self.blocks:
            item = self.block_items.get(block.id)
            if item is not None:
                item.set_summary(self.block_summary(block))
            frame = self.frame_items.get(block.id)
            if frame is not None:
                self._place_frame(block)

    def collapsed_members(self) -> dict[str, str]:
        """Node id -> the id of the collapsed block that hides it (the nodes drawn as a block item)."""
        return dict(self._hidden)

    def content_rect(self) -> QRectF:
        """The scene rectangle of what is drawn (a collapsed block's hidden nodes take no room)."""
        rect = QRectF()
        for item in [*self.node_items.values(), *self.block_items.values(), *self.frame_items.values(),
                     *self.edge_items.values()]:
            if item.isVisible():
                rect = rect.united(item.sceneBoundingRect())
        return rect

    # -- orientation -----------------------------------------------------------

    def node_item_moved(self, item: NodeItem | BlockItem) -> None:
        """A node or a collapsed block moved (drag, undo, layout): it and its neighbours may now face the
        other way."""
        if isinstance(item, BlockItem):
            if item.block_id in self.blocks:
                entering, leaving = self._boundary(item.block_id)
                self._orient(item.block_id, *[e.src for e in entering], *[e.dst for e in leaving])
            return
        if item.node_id in self.node_items:
            self._orient(item.node_id, *self.graph.predecessors(item.node_id), *self.graph.successors(item.node_id))
            block = self._block_of(item.node_id)
            if block is not None and block.id in self.frame_items:
                self._place_frame(block)

    def _drawn_id(self, node_id: str) -> str:
        """The id of the item that draws ``node_id``: its collapsed block's, or its own."""
        return self._hidden.get(node_id, node_id)

    def _orient(self, *item_ids: str) -> None:
        """Turn each node (or collapsed block) to face its flow: one whose edges run right to left (a
        backwards row of a snake layout) gets its inputs on the right, so its edges run straight instead
        of looping back."""
        for item_id in dict.fromkeys(self._drawn_id(n) for n in item_ids):
            item: NodeItem | BlockItem | None
            if item_id in self.block_items and item_id in self.blocks:
                item = self.block_items[item_id]
                entering, leaving = self._boundary(item_id)
                sources, targets = [e.src for e in entering], [e.dst for e in leaving]
            elif item_id in self.graph and item_id in self.node_items:
                item = self.node_items[item_id]
                sources = [e.src for e in self.graph.input_edges(item_id)]
                targets = [e.dst for e in self.graph.output_edges(item_id)]
            else:
                continue
            centre = item.pos().x() + item.size()[0] / 2
            flow = 0.0
            for other_id, sign in [*((n, -1.0) for n in sources), *((n, 1.0) for n in targets)]:
                other_id = self._drawn_id(other_id)
                other = self.block_items.get(other_id) or self.node_items.get(other_id)
                if other is not None and other is not item:
                    flow += sign * (other.pos().x() + other.size()[0] / 2 - centre)
            # Edges straight above or below say nothing; a small lean keeps the side it has.
            if abs(flow) > item.size()[0] / 2:
                item.set_flipped(flow < 0)

    def flipped_node_ids(self) -> list[str]:
        return [node_id for node_id, item in self.node_items.items() if item.flipped]

    # -- reading -----------------------------------------------------------

    def selected_node_ids(self) -> list[str]:
        """The selected nodes, a selected collapsed block standing for its nodes."""
        ids = {item.node_id for item in self.selectedItems() if isinstance(item, NodeItem)}
        for item in self.selectedItems():
            if isinstance(item, BlockItem) and item.block_id in self.blocks:
                ids.update(self.blocks.get(item.block_id).nodes)
        return [n for n in self.graph.nodes if n in ids]

    def selected_block_ids(self) -> list[str]:
        """The selected blocks: collapsed ones, expanded ones by their frame's label, in the blocks' order."""
        ids = {item.block_id for item in self.selectedItems() if isinstance(item, (BlockItem, BlockFrame))}
        return [block.id for block in self.blocks if block.id in ids]

    def select_block(self, block_id: str) -> None:
        self.clearSelection()
        item = self.block_items.get(block_id) or self.frame_items.get(block_id)
        if item is not None:
            item.setSelected(True)

    def selected_edges(self) -> list[Edge]:
        return [item.edge for item in self.selectedItems() if isinstance(item, EdgeItem)]

    def select_nodes(self, node_ids: list[str]) -> None:
        self.clearSelection()
        for node_id in node_ids:
            if node_id in self.node_items:
                self.node_items[node_id].setSelected(True)  # a hidden one (in a collapsed block) stays unselected
        chosen = set(node_ids)
        for block_id, item in self.block_items.items():
            if chosen.issuperset(self.blocks.get(block_id).nodes):
                item.setSelected(True)

    def node_sizes(self) -> dict[str, tuple[float, float]]:
        return {node_id: item.size() for node_id, item in self.node_items.items()}

    def set_colors(self, colors: CanvasColors) -> None:
        self.colors = colors
        for item in self.node_items.values():
            item.set_colors(colors)
        for edge_item in self.edge_items.values():
            edge_item.set_colors(colors)
        for block_item in [*self.block_items.values(), *self.frame_items.values()]:
            block_item.set_colors(colors)

    def all_ports(self) -> list[PortItem]:
        """The ports a connection can start or end at: those of the nodes drawn (not hidden in a block)."""
        return [port for item in self.node_items.values() if item.isVisible()
                for port in (*item.inputs.values(), *item.outputs.values())]

    def set_read_only(self, read_only: bool) -> None:
        """While read-only (training), nodes cannot be moved and ports start no connection; selection still works."""
        self.read_only = read_only
        for item in [*self.node_items.values(), *self.block_items.values()]:
            item.setFlag(QGraphicsItem.GraphicsItemFlag.ItemIsMovable, not read_only)

    # -- gestures ----------------------------------------------------------

    def mousePressEvent(self, event: QGraphicsSceneMouseEvent) -> None:
        if event.button() == Qt.MouseButton.LeftButton:
            port = self._port_at(event.scenePos())
            if port is not None and self.read_only:
                self.status_message.emit("Training — editing is locked: stop training to connect layers")
                event.accept()
                return
            if port is not None:
                self._gesture = ConnectGesture(self, self.graph, port, self.all_ports(), self.colors)
                event.accept()
                return
        super().mousePressEvent(event)
        if event.button() == Qt.MouseButton.LeftButton:
            self._drag_start = {item.node_id: (item.pos().x(), item.pos().y())
                                for item in self.selectedItems() if isinstance(item, NodeItem)}
            self._block_drag_start = {item.block_id: (item.pos().x(), item.pos().y())
                                      for item in self.selectedItems() if isinstance(item, BlockItem)}

    def mouseMoveEvent(self, event: QGraphicsSceneMouseEvent) -> None:
        if self._gesture is not None:
            self._gesture.move(event.scenePos())
            self.status_message.emit(self._gesture.reason)
            event.accept()
            return
        super().mouseMoveEvent(event)

    def mouseReleaseEvent(self, event: QGraphicsSceneMouseEvent) -> None:
        if self._gesture is not None and event.button() == Qt.MouseButton.LeftButton:
            connection, reason = self._gesture.finish(event.scenePos())
            self._gesture = None
            event.accept()
            if connection is not None:
                self.connect_requested.emit(*connection)
            elif reason:
                self.status_message.emit(f"Cannot connect: {reason}")
            return
        super().mouseReleaseEvent(event)
        if event.button() == Qt.MouseButton.LeftButton and (self._drag_start or self._block_drag_start):
            old, new = {}, {}
            for node_id, start in self._drag_start.items():
                item = self.node_items.get(node_id)
                if item is None:
                    continue
                end = (item.pos().x(), item.pos().y())
                if end != start:
                    old[node_id], new[node_id] = start, end
            # A collapsed block carries its nodes' stored positions along: one drag, one undo step.
            for block_id, (x0, y0) in self._block_drag_start.items():
                item = self.block_items.get(block_id)
                if item is None or block_id not in self.blocks:
                    continue
                dx, dy = item.pos().x() - x0, item.pos().y() - y0
                if (dx, dy) == (0.0, 0.0):
                    continue
                for node_id in self.blocks.get(block_id).nodes:
                    position = self.layout.position(node_id)
                    if position is not None:
                        old[node_id], new[node_id] = position, (position[0] + dx, position[1] + dy)
            self._drag_start = {}
            self._block_drag_start = {}
            if new:
                self.nodes_dragged.emit(old, new)

    def contextMenuEvent(self, event: QGraphicsSceneContextMenuEvent) -> None:
        node_id = None
        for item in self.items(event.scenePos()):
            while item is not None and not isinstance(item, (NodeItem, BlockItem, BlockFrame)):
                item = item.parentItem()
            if isinstance(item, (BlockItem, BlockFrame)):
                if not item.isSelected():
                    self.select_block(item.block_id)
                self.block_context_menu_requested.emit(item.block_id, event.screenPos())
                event.accept()
                return
            if isinstance(item, NodeItem):
                node_id = item.node_id
                break
        if node_id is not None and not self.node_items[node_id].isSelected():
            self.select_nodes([node_id])
        self.context_menu_requested.emit(node_id, event.screenPos())
        event.accept()

    def _port_at(self, pos: QPointF) -> PortItem | None:
        for item in self.items(pos):
            if isinstance(item, PortItem) and not isinstance(item.node_item, NodeItem):
                break  # a collapsed block's port: the press selects or drags the block
            if isinstance(item, PortItem) and item.isVisible():
                return item
            if isinstance(item, QGraphicsItem) and not isinstance(item, EdgeItem):
                break  # something opaque (a node body) lies over any port below
        return None

"""Arranging a whole network on the canvas: the layered layout sized for the view, and the tidy pass on open.

The main window calls these; the maths lives in :mod:`dlstudio.core.autolayout` (Qt-free). What this
module adds is what only the canvas knows: the nodes' drawn sizes and the viewport they must fit.
"""

from __future__ import annotations

from dataclasses import dataclass

from dlstudio.core.autolayout import LEFT_TO_RIGHT, Size, is_cramped, layered_layout
from dlstudio.core.graph import Graph
from dlstudio.core.layout import Layout, Point
from dlstudio.gui.canvas.block_items import STACK_OFFSET
from dlstudio.gui.canvas.scene import GraphScene
from dlstudio.gui.canvas.view import FIT_MARGIN, GraphView

# Room between nodes for the shape label on an edge, e.g. "(N, 16, 10, 10)" (about 75 px at the label font).
LABEL_ROOM = 80.0
LAYER_GAP = LABEL_ROOM + 12.0
# Between the rows of a wrapped (snake) layout: the rows join by a turn at the side, so only the
# nodes need keeping apart, with room for a selection outline and a little air.
BAND_GAP = 44.0
# Across the flow, between nodes of one layer and the lanes of edges that skip layers (residual blocks).
NODE_GAP = 28.0
# How far the turn between two rows (and its shape label) reaches out beyond the nodes at the side.
TURN_ROOM = 50.0
# The canvas of a first launch (a 1600x1000 window with its docks) before the window is on screen,
# when the viewport has no real size yet. Its aspect ratio is what matters: it decides where rows wrap.
DEFAULT_CANVAS = (980.0, 580.0)


def canvas_size(view: GraphView) -> tuple[float, float]:
    """The viewport's size, or :data:`DEFAULT_CANVAS` while the view is not laid out yet."""
    viewport = view.viewport().size()
    if viewport.width() > 300 and viewport.height() > 200:
        return float(viewport.width()), float(viewport.height())
    return DEFAULT_CANVAS


@dataclass
class DrawnGraph:
    """The graph as the canvas draws it: loose nodes, and one item per collapsed block (at its first node)."""

    items: list[str]  # node ids and collapsed block ids, in topological order
    edges: list[tuple[str, str]]
    sizes: dict[str, Size]
    positions: dict[str, Point]
    anchors: dict[str, str]  # collapsed block id -> its first node (where the block item stands)


def drawn_graph(graph: Graph, layout: Layout, scene: GraphScene) -> DrawnGraph:
    hidden = scene.collapsed_members()
    anchors: dict[str, str] = {}
    for node_id, block_id in hidden.items():
        if block_id not in anchors and node_id in graph:
            anchors[block_id] = scene.blocks.get(block_id).nodes[0]
    items = list(dict.fromkeys(hidden.get(n, n) for n in graph.topological_order()))
    edges = [(hidden.get(e.src, e.src), hidden.get(e.dst, e.dst)) for e in graph.edges]
    edges = list(dict.fromkeys((s, d) for s, d in edges if s != d))
    sizes = {n: size for n, size in scene.node_sizes().items() if n not in hidden}
    for block_id in anchors:
        width, height = scene.block_items[block_id].size()
        sizes[block_id] = (width + STACK_OFFSET, height + STACK_OFFSET)
    positions = {item: p for item in items
                 if (p := layout.position(anchors.get(item, item))) is not None}
    return DrawnGraph(items, edges, sizes, positions, anchors)


def layered_positions(graph: Graph, scene: GraphScene, view: GraphView,
                      direction: str = LEFT_TO_RIGHT, layout: Layout | None = None) -> dict[str, Point]:
    """Top-left position per node for a layered drawing that fits the view's shape (see ``layered_layout``).

    Chains wrap into rows that alternate direction (a snake); the canvas turns the nodes of backwards
    rows around, so every edge is short: no edge runs back across the drawing. A collapsed block is laid
    out as the one item it is drawn as; its nodes move with it, keeping their arrangement inside.
    """
    layout = layout if layout is not None else scene.layout
    drawn = drawn_graph(graph, layout, scene)
    placed = layered_layout(drawn.items, drawn.edges, sizes=drawn.sizes, direction=direction,
                            viewport=canvas_size(view), layer_gap=LAYER_GAP, band_gap=BAND_GAP,
                            node_gap=NODE_GAP, margin=FIT_MARGIN + TURN_ROOM)
    positions = {n: p for n, p in placed.items() if n in graph}
    for block_id, anchor in drawn.anchors.items():
        x, y = placed[block_id]
        ax, ay = layout.position(anchor) or (x, y)
        for node_id in scene.blocks.get(block_id).nodes:
            nx, ny = layout.position(node_id) or (ax, ay)
            positions[node_id] = (x + nx - ax, y + ny - ay)
    return positions


def tidy_cramped_layout(graph: Graph, layout: Layout, scene: GraphScene, view: GraphView) -> bool:
    """Lay out a network whose nodes lack positions or sit too close for edge labels; True if it did.

    What counts is the drawing: a collapsed block is one item, and its hidden nodes may overlap others.
    Part of opening a project (like placing the nodes of a file without a layout), so not an undo
    step; the next save keeps the new positions.
    """
    hidden = scene.collapsed_members()
    if any(n not in layout for n in hidden):
        return _lay_out(graph, layout, scene, view, every_node=True)
    drawn = drawn_graph(graph, layout, scene)
    if not is_cramped(drawn.positions, drawn.sizes, drawn.items, gap=LABEL_ROOM):
        return False
    return _lay_out(graph, layout, scene, view)


def _lay_out(graph: Graph, layout: Layout, scene: GraphScene, view: GraphView, every_node: bool = False) -> bool:
    """Move every node to the layered drawing (``every_node``: first each on its own, for the blocks whose
    nodes have no place yet and so no arrangement to keep)."""
    if every_node:
        positions = layered_layout(graph.topological_order(), [(e.src, e.dst) for e in graph.edges],
                                   sizes=scene.node_sizes(), viewport=canvas_size(view), layer_gap=LAYER_GAP,
                                   band_gap=BAND_GAP, node_gap=NODE_GAP, margin=FIT_MARGIN + TURN_ROOM)
        with scene.batched():  # first an arrangement inside each block, then the blocks as items
            for node_id, (x, y) in positions.items():
                layout.move(node_id, x, y)
    with scene.batched():
        for node_id, (x, y) in layered_positions(graph, scene, view).items():
            layout.move(node_id, x, y)
    return True

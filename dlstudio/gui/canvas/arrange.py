"""Arranging a whole network on the canvas: the layered layout sized for the view, and the tidy pass on open.

The main window calls these; the maths lives in :mod:`dlstudio.core.autolayout` (Qt-free). What this
module adds is what only the canvas knows: the nodes' drawn sizes and the viewport they must fit.
"""

from __future__ import annotations

from dlstudio.core.autolayout import LEFT_TO_RIGHT, is_cramped, layered_layout
from dlstudio.core.graph import Graph
from dlstudio.core.layout import Layout, Point
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


def layered_positions(graph: Graph, scene: GraphScene, view: GraphView,
                      direction: str = LEFT_TO_RIGHT) -> dict[str, Point]:
    """Top-left position per node for a layered drawing that fits the view's shape (see ``layered_layout``).

    Chains wrap into rows that alternate direction (a snake); the canvas turns the nodes of backwards
    rows around, so every edge is short: no edge runs back across the drawing.
    """
    return layered_layout(graph.topological_order(), [(e.src, e.dst) for e in graph.edges],
                          sizes=scene.node_sizes(), direction=direction, viewport=canvas_size(view),
                          layer_gap=LAYER_GAP, band_gap=BAND_GAP, node_gap=NODE_GAP,
                          margin=FIT_MARGIN + TURN_ROOM)


def tidy_cramped_layout(graph: Graph, layout: Layout, scene: GraphScene, view: GraphView) -> bool:
    """Lay out a network whose nodes lack positions or sit too close for edge labels; True if it did.

    Part of opening a project (like placing the nodes of a file without a layout), so not an undo
    step; the next save keeps the new positions.
    """
    if not is_cramped(layout.positions, scene.node_sizes(), graph.nodes, gap=LABEL_ROOM):
        return False
    with scene.batched():
        for node_id, (x, y) in layered_positions(graph, scene, view).items():
            layout.move(node_id, x, y)
    return True

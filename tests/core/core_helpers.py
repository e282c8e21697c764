"""Small graphs shared by the core tests (imported as ``core_helpers``: pytest puts this folder on the path)."""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any

from dlstudio.core.graph import Graph


def chain_graph(layers: Iterable[tuple[str, dict[str, Any]]]) -> Graph:
    """Nodes in a row, each one's ``out`` port connected to the next one's ``in``."""
    graph, previous = Graph(), None
    for type_id, params in layers:
        node = graph.add_node(type_id, params)
        if previous is not None:
            graph.connect(previous.id, "out", node.id, "in")
        previous = node
    return graph

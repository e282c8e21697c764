"""Shape, parameter and MAC inference for a graph, kept up to date incrementally.

Torch-free and fast: it runs after every edit. An edit marks the touched node
dirty; :meth:`ShapeInference.update` recomputes only the dirty nodes and what
lies downstream of them. A node whose inputs are fine but do not fit gets a
:class:`ShapeError`; nodes downstream of it are "blocked" (no shape, no error
of their own), and every other node keeps its shape.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from dlstudio.core.errors import LayerShapeError, ShapeError
from dlstudio.core.graph import Edge, Graph, Node
from dlstudio.core.layers.spec import Shape


@dataclass(frozen=True)
class NodeInfo:
    """What inference knows about one node."""

    node_id: str
    input_shapes: tuple[Shape | None, ...]
    output_shapes: dict[str, Shape]
    params: int = 0
    macs: int = 0
    error: ShapeError | None = None
    blocked: bool = False  # an upstream node has an error or is incomplete

    @property
    def ok(self) -> bool:
        return self.error is None and not self.blocked

    @property
    def output_shape(self) -> Shape | None:
        """The shape to show for the node: its first output, or for a sink (Output) its input."""
        if self.output_shapes:
            return next(iter(self.output_shapes.values()))
        if self.ok and self.input_shapes:
            return self.input_shapes[0]
        return None


@dataclass(frozen=True)
class Totals:
    params: int
    macs: int
    errors: tuple[ShapeError, ...]
    nodes: int


def infer_node(node: Node, in_shapes: list[Shape]) -> NodeInfo:
    """Infer one node from the shapes arriving at its input ports (all known)."""
    spec = node.spec
    try:
        inferred = spec.infer(in_shapes, node.params)
    except LayerShapeError as error:
        return NodeInfo(node.id, tuple(in_shapes), {}, error=ShapeError(node.id, error.message, error.fix))
    outputs = dict(zip(spec.output_ports(node.params), inferred.outputs))
    return NodeInfo(node.id, tuple(in_shapes), outputs, inferred.params, inferred.macs)


class ShapeInference:
    """Follows a graph's events and keeps a :class:`NodeInfo` per node.

    Reading :meth:`info`, :attr:`infos` or :meth:`totals` brings it up to date
    first, so callers never see stale shapes.
    """

    def __init__(self, graph: Graph) -> None:
        self.graph = graph
        self._infos: dict[str, NodeInfo] = {}
        self._dirty: set[str] = set(graph.nodes)
        graph.node_added.connect(self._on_node_added)
        graph.node_removed.connect(self._on_node_removed)
        graph.edge_added.connect(self._on_edge_changed)
        graph.edge_removed.connect(self._on_edge_changed)
        graph.param_changed.connect(self._on_param_changed)

    def close(self) -> None:
        """Stop following the graph."""
        self.graph.node_added.disconnect(self._on_node_added)
        self.graph.node_removed.disconnect(self._on_node_removed)
        self.graph.edge_added.disconnect(self._on_edge_changed)
        self.graph.edge_removed.disconnect(self._on_edge_changed)
        self.graph.param_changed.disconnect(self._on_param_changed)

    # -- graph events ----------------------------------------------------

    def _on_node_added(self, node: Node) -> None:
        self._dirty.add(node.id)

    def _on_node_removed(self, node: Node) -> None:
        self._infos.pop(node.id, None)
        self._dirty.discard(node.id)

    def _on_edge_changed(self, edge: Edge) -> None:
        self._dirty.add(edge.dst)

    def _on_param_changed(self, node_id: str, name: str, old: Any, new: Any) -> None:
        self._dirty.add(node_id)

    # -- results ---------------------------------------------------------

    def update(self) -> list[str]:
        """Recompute dirty nodes and their descendants; returns the ids recomputed, in order."""
        if not self._dirty:
            return []
        affected = self.graph.descendants(self._dirty)
        self._dirty.clear()
        order = self.graph.topological_order(affected)
        for node_id in order:
            self._infos[node_id] = self._compute(self.graph.node(node_id))
        return order

    def _compute(self, node: Node) -> NodeInfo:
        shapes: list[Shape | None] = []
        missing: list[str] = []
        blocked = False
        for port in node.input_ports:
            edge = self.graph.input_edge(node.id, port)
            if edge is None:
                missing.append(port)
                shapes.append(None)
                continue
            shape = self._infos[edge.src].output_shapes.get(edge.src_port)
            blocked |= shape is None
            shapes.append(shape)
        if missing:
            ports = ", ".join(repr(p) for p in missing)
            plural = "s" if len(missing) > 1 else ""
            error = ShapeError(node.id, f"{node.spec.display_name}: input{plural} {ports} not connected")
            return NodeInfo(node.id, tuple(shapes), {}, error=error)
        if blocked:
            return NodeInfo(node.id, tuple(shapes), {}, blocked=True)
        return infer_node(node, shapes)  # type: ignore[arg-type]

    def info(self, node_id: str) -> NodeInfo:
        self.update()
        return self._infos[node_id]

    @property
    def infos(self) -> dict[str, NodeInfo]:
        self.update()
        return {node_id: self._infos[node_id] for node_id in self.graph.nodes}

    def errors(self) -> list[ShapeError]:
        return [info.error for info in self.infos.values() if info.error is not None]

    def totals(self) -> Totals:
        infos = self.infos.values()
        return Totals(
            params=sum(info.params for info in infos),
            macs=sum(info.macs for info in infos),
            errors=tuple(info.error for info in infos if info.error is not None),
            nodes=len(self.graph),
        )


def infer_graph(graph: Graph) -> dict[str, NodeInfo]:
    """One-off full inference (for the CLI, the compiler and tests)."""
    engine = ShapeInference(graph)
    try:
        return engine.infos
    finally:
        engine.close()

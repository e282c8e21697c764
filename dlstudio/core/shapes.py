"""Shape, parameter and MAC inference for a graph, kept up to date incrementally.

Torch-free and fast: it runs after every edit. An edit marks the touched node
dirty; :meth:`ShapeInference.update` recomputes only the dirty nodes and what
lies downstream of them. A node whose inputs are fine but do not fit gets a
:class:`ShapeError`; nodes downstream of it are "blocked" (no shape, no error
of their own), and every other node keeps its shape.
"""

from __future__ import annotations

from dataclasses import dataclass, replace
from typing import Any

from dlstudio.core.errors import Fix, LayerShapeError, ShapeError
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
        # A fix may name an upstream node ("Set out_features of fc3 to 10"): a rename re-describes what follows.
        graph.node_renamed.connect(self._on_node_renamed)

    def close(self) -> None:
        """Stop following the graph."""
        self.graph.node_added.disconnect(self._on_node_added)
        self.graph.node_removed.disconnect(self._on_node_removed)
        self.graph.edge_added.disconnect(self._on_edge_changed)
        self.graph.edge_removed.disconnect(self._on_edge_changed)
        self.graph.param_changed.disconnect(self._on_param_changed)
        self.graph.node_renamed.disconnect(self._on_node_renamed)

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

    def _on_node_renamed(self, node_id: str, old: str, new: str) -> None:
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
            error = ShapeError(node.id, f"{node.spec.display_name}: {_unconnected(missing, len(shapes))}")
            return NodeInfo(node.id, tuple(shapes), {}, error=error)
        if blocked:
            return NodeInfo(node.id, tuple(shapes), {}, blocked=True)
        info = infer_node(node, shapes)  # type: ignore[arg-type]
        error = info.error
        if error is not None and error.fix is not None and error.fix.action == "set_source_param":
            fix = self._resolve_source_fix(node, error.fix)
            info = replace(info, error=ShapeError(node.id, error.message, fix))
        return info

    def _resolve_source_fix(self, node: Node, fix: Fix) -> Fix:
        """Turn a spec's "set this on the layer feeding me" into a fix on that node of the graph.

        The feeding node is followed back through nodes that keep the shape and hold no weights (an
        activation, a dropout), since editing the layer before them changes what they pass on. Without
        such a layer, the fix inserts one.
        """
        port = fix.port or node.input_ports[0]
        edge = self.graph.input_edge(node.id, port)
        seen: set[str] = set()
        while edge is not None and edge.src not in seen:
            source = self.graph.node(edge.src)
            seen.add(source.id)
            if source.type == fix.layer_type and source.spec.has_param(fix.param):
                return Fix("set_param", f"Set {fix.param} of {source.name} to {fix.value}", param=fix.param,
                           value=fix.value, node_id=source.id)
            info = self._infos.get(source.id)
            passes_through = (info is not None and info.ok and info.params == 0 and len(info.input_shapes) == 1
                              and len(source.output_ports) == 1
                              and info.output_shapes.get(source.output_ports[0]) == info.input_shapes[0])
            if not passes_through:
                break
            edge = self.graph.input_edge(source.id, source.input_ports[0])
        outputs = fix.params.get(fix.param, fix.value)
        return Fix("insert_before", f"Insert a {fix.layer_type} with {outputs} outputs", layer_type=fix.layer_type,
                   port=port, params=dict(fix.params))

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


def _unconnected(missing: list[str], count: int) -> str:
    """What is missing, in the canvas's terms: a merge's inputs by number ("in2" is the second), else by name."""
    if count == 1:
        return "its input is not connected (drag a wire to it from another layer's output)"
    if all(port.startswith("in") and port[2:].isdigit() for port in missing):
        numbers = [port[2:] for port in missing]
        listed = numbers[0] if len(numbers) == 1 else ", ".join(numbers[:-1]) + " and " + numbers[-1]
        return f"input{'s' if len(numbers) > 1 else ''} {listed} of {count} not connected"
    return f"input{'s' if len(missing) > 1 else ''} {', '.join(repr(p) for p in missing)} not connected"

"""Random sequences of edits never leave a cycle or a dangling edge behind."""

from __future__ import annotations

from hypothesis import given, settings
from hypothesis import strategies as st

from dlstudio.core.errors import GraphError
from dlstudio.core.graph import Graph
from dlstudio.core.layers import all_specs

TYPES = [spec.type_id for spec in all_specs()]

edit = st.one_of(
    st.tuples(st.just("add"), st.sampled_from(TYPES)),
    st.tuples(st.just("remove"), st.integers(0, 50)),
    st.tuples(st.just("connect"), st.integers(0, 50), st.integers(0, 50), st.integers(0, 7)),
    st.tuples(st.just("disconnect"), st.integers(0, 200)),
    st.tuples(st.just("inputs"), st.integers(0, 50), st.integers(1, 9)),
)


def apply(graph: Graph, step: tuple) -> None:
    ids = list(graph.nodes)
    kind = step[0]
    try:
        if kind == "add":
            graph.add_node(step[1])
        elif kind == "remove" and ids:
            graph.remove_node(ids[step[1] % len(ids)])
        elif kind == "connect" and ids:
            src, dst = graph.node(ids[step[1] % len(ids)]), graph.node(ids[step[2] % len(ids)])
            if src.output_ports and dst.input_ports:
                graph.connect(src.id, src.output_ports[0], dst.id, dst.input_ports[step[3] % len(dst.input_ports)])
        elif kind == "disconnect" and graph.edges:
            graph.disconnect(graph.edges[step[1] % len(graph.edges)])
        elif kind == "inputs" and ids:
            node = graph.node(ids[step[1] % len(ids)])
            if node.spec.variadic_param:
                graph.set_param(node.id, node.spec.variadic_param, step[2])
    except GraphError:
        pass  # refused edits are fine; the invariants below must hold either way


def assert_invariants(graph: Graph) -> None:
    nodes = graph.nodes
    seen_inputs = set()
    for edge in graph.edges:
        assert edge.src in nodes and edge.dst in nodes, f"dangling edge {edge}"
        assert edge.src_port in nodes[edge.src].output_ports
        assert edge.dst_port in nodes[edge.dst].input_ports
        assert (edge.dst, edge.dst_port) not in seen_inputs
        seen_inputs.add((edge.dst, edge.dst_port))
    order = graph.topological_order()
    assert sorted(order) == sorted(nodes), "a cycle keeps nodes out of the topological order"
    position = {node_id: i for i, node_id in enumerate(order)}
    assert all(position[e.src] < position[e.dst] for e in graph.edges)


@settings(max_examples=150, deadline=None)
@given(st.lists(edit, max_size=60))
def test_random_edits_keep_the_graph_a_valid_dag(steps):
    graph = Graph()
    for step in steps:
        apply(graph, step)
        assert_invariants(graph)
    assert Graph.from_dict(graph.to_dict()).to_dict() == graph.to_dict()


param_edit = st.tuples(st.just("param"), st.integers(0, 50), st.sampled_from(
    [("out_channels", 4), ("out_channels", 8), ("kernel_size", 1), ("kernel_size", 3), ("out_features", 5),
     ("shape", [2, 6, 6]), ("shape", [12]), ("stride", 2), ("padding", "same"), ("classes", 5)]))


@settings(max_examples=100, deadline=None)
@given(st.lists(st.one_of(edit, param_edit), max_size=50))
def test_incremental_inference_always_equals_a_fresh_full_inference(steps):
    from dlstudio.core.shapes import ShapeInference

    graph = Graph()
    live = ShapeInference(graph)
    for step in steps:
        if step[0] == "param":
            ids = list(graph.nodes)
            if ids:
                node = graph.node(ids[step[1] % len(ids)])
                name, value = step[2]
                if node.spec.has_param(name):
                    try:
                        graph.set_param(node.id, name, value)
                    except GraphError:
                        pass
        else:
            apply(graph, step)
        if len(graph) % 3 == 0:
            live.update()  # interleave partial updates with batches of edits
    assert live.infos == ShapeInference(graph).infos

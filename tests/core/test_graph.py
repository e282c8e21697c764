"""Graph rules: validation on every mutation, and events after every change."""

from __future__ import annotations

import subprocess
import sys

import pytest

from dlstudio.core.errors import CycleError, GraphError, ParamError, PortError
from dlstudio.core.graph import RESERVED_IDS, Edge, Graph


def chain(graph: Graph, *type_ids: str) -> list[str]:
    ids = [graph.add_node(t).id for t in type_ids]
    for src, dst in zip(ids, ids[1:]):
        graph.connect(src, "out", dst, graph.node(dst).input_ports[0])
    return ids


def test_ids_are_generated_from_the_type_and_never_reused_while_present():
    graph = Graph()
    assert [graph.add_node("Conv2d").id for _ in range(3)] == ["conv1", "conv2", "conv3"]
    graph.remove_node("conv2")
    assert graph.add_node("Conv2d").id == "conv4"
    assert graph.add_node("Conv1d").id == "conv1d_1"
    assert graph.add_node("BatchNorm1d").id == "bn1d_1"


def test_events_are_emitted_after_each_change():
    graph = Graph()
    seen = []
    for name in ("node_added", "node_removed", "edge_added", "edge_removed", "param_changed", "node_renamed"):
        getattr(graph, name).connect(lambda *args, name=name: seen.append((name, args)))
    a, b = chain(graph, "Input", "ReLU")
    graph.set_param(a, "shape", [3, 4, 4])
    graph.rename(b, "act")
    graph.remove_node(b)
    names = [name for name, _ in seen]
    assert names == ["node_added", "node_added", "edge_added", "param_changed", "node_renamed",
                     "edge_removed", "node_removed"]
    assert seen[3][1] == (a, "shape", [1, 8, 8], [3, 4, 4])
    assert seen[4][1] == (b, "relu1", "act")


def test_cycles_are_refused_and_leave_the_graph_unchanged():
    graph = Graph()
    a, b, c = chain(graph, "ReLU", "ReLU", "Add")
    before = graph.to_dict()
    with pytest.raises(CycleError):
        graph.connect(c, "out", a, "in")
    with pytest.raises(CycleError):
        graph.connect(c, "out", c, "in2")
    assert graph.to_dict() == before
    ok, reason = graph.can_connect(c, "out", a, "in")
    assert not ok and "cycle" in reason


def test_one_edge_per_input_port_and_ports_must_exist():
    graph = Graph()
    a, b = chain(graph, "Input", "ReLU")
    other = graph.add_node("Input").id
    with pytest.raises(PortError, match="already connected"):
        graph.connect(other, "out", b, "in")
    with pytest.raises(PortError, match="no output"):
        graph.connect(b, "result", other, "in")
    with pytest.raises(PortError, match="no input"):
        graph.connect(other, "out", a, "in")  # Input has no input port
    # An output port may feed several inputs (branches).
    c = graph.add_node("ReLU").id
    graph.connect(a, "out", c, "in")
    assert graph.successors(a) == [b, c]


def test_parameters_are_validated_with_the_node_named():
    graph = Graph()
    conv = graph.add_node("Conv2d").id
    with pytest.raises(ParamError) as caught:
        graph.set_param(conv, "kernel_size", 0)
    assert caught.value.node_id == conv and caught.value.param == "kernel_size"
    assert "at least 1" in caught.value.message
    with pytest.raises(ParamError, match="one of"):
        graph.set_param(conv, "padding", "full")
    with pytest.raises(ParamError, match="no parameter"):
        graph.set_param(conv, "kernel", 3)
    with pytest.raises(ParamError):
        graph.add_node("Linear", {"out_features": -1})
    graph.set_param(conv, "padding", "same")
    assert graph.node(conv).params["padding"] == "same"


def test_merge_ports_follow_the_inputs_parameter():
    graph = Graph()
    add = graph.add_node("Add", {"inputs": 3}).id
    assert graph.node(add).input_ports == ("in1", "in2", "in3")
    src = graph.add_node("Input").id
    graph.connect(src, "out", add, "in3")
    with pytest.raises(ParamError, match="disconnect input 'in3' first"):
        graph.set_param(add, "inputs", 2)
    graph.disconnect(graph.input_edge(add, "in3"))
    graph.set_param(add, "inputs", 2)
    assert graph.node(add).input_ports == ("in1", "in2")


def test_removing_a_node_takes_its_edges_along():
    graph = Graph()
    a, b, c = chain(graph, "Input", "ReLU", "Output")
    node, edges = graph.remove_node(b)
    assert node.id == b and set(edges) == {Edge(a, "out", b, "in"), Edge(b, "out", c, "in")}
    assert graph.edges == [] and b not in graph


def test_topological_order_with_branches_and_merges():
    graph = Graph()
    x = graph.add_node("Input").id
    left, right = graph.add_node("ReLU").id, graph.add_node("Tanh").id
    add = graph.add_node("Add").id
    graph.connect(left, "out", add, "in2")  # wired before its own input, on purpose
    graph.connect(x, "out", left, "in")
    graph.connect(x, "out", right, "in")
    graph.connect(right, "out", add, "in1")
    order = graph.topological_order()
    assert order.index(x) < order.index(left) < order.index(add)
    assert order.index(right) < order.index(add)


def test_invalid_and_reserved_ids_are_refused():
    graph = Graph()
    for bad in ("1conv", "a-b", "", "forward", "state_dict", "class", "_private"):
        with pytest.raises(GraphError):
            graph.add_node("ReLU", node_id=bad)
    graph.add_node("ReLU", node_id="ok_1")
    with pytest.raises(GraphError, match="already exists"):
        graph.add_node("ReLU", node_id="ok_1")


def test_reserved_ids_cover_every_public_nn_module_attribute():
    import torch

    public = {name for name in dir(torch.nn.Module) if not name.startswith("_")}
    assert public <= RESERVED_IDS, sorted(public - RESERVED_IDS)


def test_names_are_user_labels():
    graph = Graph()
    node = graph.add_node("Conv2d", name="First conv")
    assert node.name == "First conv" and node.id == "conv1"
    with pytest.raises(GraphError):
        graph.rename(node.id, "  ")


def test_to_dict_from_dict_round_trip():
    graph = Graph()
    x, conv, relu = chain(graph, "Input", "Conv2d", "ReLU")
    graph.set_param(conv, "kernel_size", [3, 5])
    copy = Graph.from_dict(graph.to_dict())
    assert copy.to_dict() == graph.to_dict()


def test_graph_and_shapes_do_not_import_torch():
    code = ("import sys; import dlstudio.core.graph, dlstudio.core.shapes, dlstudio.core.layout; "
            "assert 'torch' not in sys.modules, 'torch imported'")
    subprocess.run([sys.executable, "-c", code], check=True)


def test_names_with_line_breaks_and_huge_numbers_are_refused():
    graph = Graph()
    node = graph.add_node("Dropout")
    with pytest.raises(GraphError, match="line breaks"):
        graph.rename(node.id, "two\nlines")
    with pytest.raises(ParamError, match="out of range"):
        graph.set_param(node.id, "p", 10**400)


def test_renaming_to_another_nodes_name_is_refused_naming_the_nodes_by_name():
    from dlstudio.core.errors import DuplicateNameError

    graph = Graph()
    conv, pool, fc = chain(graph, "Input", "MaxPool2d", "Flatten")[0:3]
    graph.rename(pool, "p2")
    events = []
    graph.node_renamed.connect(lambda *args: events.append(args))
    with pytest.raises(DuplicateNameError) as caught:
        graph.rename(pool, graph.node(conv).name)
    assert caught.value.node_id == pool and caught.value.name == "input1"
    assert "p2" in caught.value.message and "input1" in caught.value.message
    assert "maxpool" not in caught.value.message  # the id is internal
    assert graph.node(pool).name == "p2" and events == []
    with pytest.raises(DuplicateNameError):
        graph.check_rename(fc, "p2")
    graph.rename(pool, "p2")  # its own name again is fine
    graph.rename(pool, "pool")
    assert graph.node(pool).name == "pool"


def test_free_names_continue_a_series_or_take_a_suffix():
    from dlstudio.core.graph import unique_name

    assert unique_name("conv1", {"relu1"}) == "conv1"
    assert unique_name("conv1", {"conv1", "conv2"}) == "conv3"
    assert unique_name("classifier", {"classifier"}) == "classifier_2"
    assert unique_name("classifier", {"classifier", "classifier_2"}) == "classifier_3"
    assert unique_name("bn1d_1", {"bn1d_1", "bn1d_2"}) == "bn1d_3"


def test_a_free_name_stays_within_the_length_limit():
    """A copy of a layer whose name is at the limit (an imported module path) gets a name a node may have."""
    from dlstudio.core.graph import MAX_NAME_LENGTH, unique_name

    long = "features." + "x" * (MAX_NAME_LENGTH - 9)
    assert len(long) == MAX_NAME_LENGTH
    first = unique_name(long, {long})
    second = unique_name(long, {long, first})
    assert len(first) <= MAX_NAME_LENGTH and len(second) <= MAX_NAME_LENGTH and first != second != long
    numbered = "block" * 15 + "99999"  # a series at the limit: its next number would not fit
    assert len(unique_name(numbered, {numbered})) <= MAX_NAME_LENGTH
    graph = Graph()
    node = graph.add_node("Conv2d", name=long)
    assert graph.add_node("Conv2d", name=graph.unique_name(node.name)).name == first


def test_a_new_node_without_a_name_does_not_take_a_name_in_use():
    graph = Graph()
    first = graph.add_node("Conv2d")
    graph.rename(first.id, "conv2")
    second = graph.add_node("Conv2d")
    assert second.id == "conv2" and second.name != "conv2"
    assert len({node.name for node in graph}) == 2

"""The compiled model follows the graph and agrees with inference."""

from __future__ import annotations

import pytest
import torch

from dlstudio.core.compiler import compile_graph
from dlstudio.core.errors import CompileError
from dlstudio.core.graph import Graph
from dlstudio.core.shapes import infer_graph


def residual_graph() -> Graph:
    graph = Graph()
    x = graph.add_node("Input", {"shape": [4, 8, 8]}).id
    conv = graph.add_node("Conv2d", {"out_channels": 4, "kernel_size": 3, "padding": 1}).id
    bn = graph.add_node("BatchNorm2d").id
    add = graph.add_node("Add").id
    relu = graph.add_node("ReLU").id
    cat = graph.add_node("Concat").id
    flat = graph.add_node("Flatten").id
    fc = graph.add_node("Linear", {"out_features": 3}).id
    out = graph.add_node("Output", {"classes": 3}).id
    for src, dst, port in [(x, conv, "in"), (conv, bn, "in"), (bn, add, "in1"), (x, add, "in2"),
                           (add, relu, "in"), (relu, cat, "in1"), (x, cat, "in2"), (cat, flat, "in"),
                           (flat, fc, "in"), (fc, out, "in")]:
        graph.connect(src, "out", dst, port)
    return graph


def test_forward_follows_branches_and_merges():
    graph = residual_graph()
    model = compile_graph(graph).eval()
    x = torch.randn(2, 4, 8, 8)
    expected = model.linear1(torch.flatten(torch.cat([torch.relu(model.bn1(model.conv1(x)) + x), x], 1), 1))
    torch.testing.assert_close(model(x), expected)
    assert tuple(model(x).shape) == (2, *infer_graph(graph)["output1"].output_shape)


def test_state_dict_keys_are_stable_per_node():
    model = compile_graph(residual_graph())
    assert set(model.state_dict()) == {
        "conv1.weight", "conv1.bias", "bn1.weight", "bn1.bias", "bn1.running_mean", "bn1.running_var",
        "bn1.num_batches_tracked", "linear1.weight", "linear1.bias"}
    # Recompiling the same graph gives the same keys, so weights carry over.
    other = compile_graph(residual_graph())
    other.load_state_dict(model.state_dict())


def test_every_intermediate_shape_equals_inference():
    graph = residual_graph()
    infos = infer_graph(graph)
    model = compile_graph(graph).eval()
    seen = {}
    for name, module in model.named_children():
        module.register_forward_hook(lambda m, args, out, name=name: seen.__setitem__(name, tuple(out.shape[1:])))
    model(torch.randn(1, 4, 8, 8))
    assert seen == {name: infos[name].output_shape for name in seen}
    assert len(seen) == 7


def test_a_graph_with_errors_refuses_to_compile_with_that_error():
    graph = residual_graph()
    graph.disconnect(graph.input_edge("linear1", "in"))
    graph.connect("concat1", "out", "linear1", "in")
    with pytest.raises(CompileError) as caught:
        compile_graph(graph)
    assert "linear1: Linear expects (N, features); received (N, 8, 8, 8)" in caught.value.message
    assert [e.node_id for e in caught.value.errors] == ["linear1"]  # a dangling Flatten is not an error


def test_a_graph_without_input_or_output_refuses_to_compile():
    graph = Graph()
    graph.add_node("Input", {"shape": [3]})
    with pytest.raises(CompileError, match="no Output"):
        compile_graph(graph)
    with pytest.raises(CompileError, match="no Input"):
        compile_graph(Graph())


def test_wrong_number_of_inputs_is_a_clear_error():
    model = compile_graph(residual_graph())
    with pytest.raises(TypeError, match="takes 1 input"):
        model(torch.zeros(1, 4, 8, 8), torch.zeros(1, 4, 8, 8))

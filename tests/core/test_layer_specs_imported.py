"""The layer specs that importing torchvision classification models needs (issue 12).

The spec walk in test_layer_specs.py checks each of them alone (shape, parameter count, JSON, a bad
input naming the node). Here: graphs that use every one of them compile, export to Python that
reproduces the compiled outputs, and each layer computes what the torch / torchvision code it
stands for computes, so an importer can map those modules and calls onto them.
"""

from __future__ import annotations

import subprocess
import sys
from collections.abc import Callable
from pathlib import Path

import pytest
import torch
import torchvision
from test_export_python import assert_exported_equals_compiled, chain, classify, import_code, imported_roots, \
    with_input
from torch import nn

from dlstudio.core.compiler import compile_graph
from dlstudio.core.errors import ShapeError
from dlstudio.core.export.python_code import export_python
from dlstudio.core.graph import Graph
from dlstudio.core.layers import get_spec
from dlstudio.core.shapes import infer_graph, infer_node

pytestmark = pytest.mark.usefixtures("one_torch_thread")

NEW_TYPES = ("ReLU6", "Hardswish", "Hardsigmoid", "ELU", "PReLU", "Mish", "AdaptiveMaxPool2d", "ZeroPad2d",
             "MaxPool1d", "ChannelShuffle", "Permute", "Mean", "StochasticDepth", "Slice")


# -- graphs in the shape of the torchvision blocks these layers come from ---------------

def mobilenet_v3_block() -> Graph:
    """Uneven padding, Hardswish, a squeeze-and-excitation gate with ReLU6 and Hardsigmoid."""
    graph = with_input([3, 15, 15])
    stem = chain(graph, "input1", ("pad", "ZeroPad2d", {"left": 0, "right": 1, "top": 0, "bottom": 1}),
                 ("conv1", "Conv2d", {"out_channels": 8, "stride": 2}), ("bn1", "BatchNorm2d", {}),
                 ("hswish", "Hardswish", {}))
    gate = chain(graph, stem, ("squeeze", "AdaptiveAvgPool2d", {}),
                 ("fc1", "Conv2d", {"out_channels": 4, "kernel_size": 1}), ("relu6", "ReLU6", {}),
                 ("fc2", "Conv2d", {"out_channels": 8, "kernel_size": 1}), ("hsigmoid", "Hardsigmoid", {}))
    graph.add_node("Multiply", node_id="scale")
    graph.connect(gate, "out", "scale", "in1")
    graph.connect(stem, "out", "scale", "in2")
    last = chain(graph, "scale", ("prelu_shared", "PReLU", {}), ("prelu_channels", "PReLU", {"num_parameters": None}),
                 ("elu", "ELU", {"alpha": 0.7}), ("mish", "Mish", {}), ("gmp", "AdaptiveMaxPool2d", {"output_size": 2}))
    return classify(graph, last)


def shufflenet_block() -> Graph:
    """x.chunk(2, dim=1) as two Slices, one branch convolved, concatenated, shuffled; x.mean([2, 3]) at the end."""
    graph = with_input([8, 6, 6])
    keep = chain(graph, "input1", ("half1", "Slice", {"end": 4}))
    branch = chain(graph, "input1", ("half2", "Slice", {"start": 4}),
                   ("conv1", "Conv2d", {"out_channels": 4, "kernel_size": 1, "bias": False}),
                   ("bn1", "BatchNorm2d", {}), ("relu1", "ReLU", {}))
    graph.add_node("Concat", node_id="joined")
    graph.connect(keep, "out", "joined", "in1")
    graph.connect(branch, "out", "joined", "in2")
    last = chain(graph, "joined", ("shuffle", "ChannelShuffle", {"groups": 2}),
                 ("rows", "Slice", {"dim": 2, "start": 1, "end": 5}), ("mean", "Mean", {}))
    chain(graph, last, ("fc", "Linear", {"out_features": 5}), ("output1", "Output", {"classes": 5}))
    return graph


def convnext_block() -> Graph:
    """Depthwise conv, LayerNorm over channels between two Permutes, stochastic depth before the residual Add."""
    graph = with_input([4, 7, 7])
    branch = chain(graph, "input1", ("dwconv", "Conv2d", {"out_channels": 4, "kernel_size": 7, "padding": 3,
                                                           "groups": 4}),
                   ("to_last", "Permute", {"dims": [2, 3, 1]}), ("norm", "LayerNorm", {"over": "last"}),
                   ("to_first", "Permute", {"dims": [3, 1, 2]}), ("drop_path", "StochasticDepth", {"p": 0.2}),
                   ("drop_batch", "StochasticDepth", {"p": 0.3, "mode": "batch"}),
                   ("drop_none", "StochasticDepth", {"p": 0.0}))
    graph.add_node("Add", node_id="residual")
    graph.connect(branch, "out", "residual", "in1")
    graph.connect("input1", "out", "residual", "in2")
    last = chain(graph, "residual", ("pooled", "Mean", {"keepdim": True}))
    return classify(graph, last)


def signal_1d() -> Graph:
    graph = with_input([2, 30])
    last = chain(graph, "input1", ("conv1", "Conv1d", {"out_channels": 4, "kernel_size": 5}),
                 ("pool1", "MaxPool1d", {"kernel_size": 3, "stride": 2, "padding": 1, "ceil_mode": True}),
                 ("prelu1", "PReLU", {"num_parameters": 4, "init": 0.1}),
                 ("pool2", "MaxPool1d", {"kernel_size": 2, "dilation": 2}), ("swap", "Permute", {"dims": [2, 1]}),
                 ("relu6", "ReLU6", {}), ("mean", "Mean", {}))
    return classify(graph, last, classes=3)


GRAPHS: dict[str, Callable[[], Graph]] = {
    "mobilenet_v3_block": mobilenet_v3_block,
    "shufflenet_block": shufflenet_block,
    "convnext_block": convnext_block,
    "signal_1d": signal_1d,
}


def test_the_graphs_use_every_new_layer() -> None:
    used = {node.type for make in GRAPHS.values() for node in make()}
    assert set(NEW_TYPES) <= used, sorted(set(NEW_TYPES) - used)


@pytest.mark.parametrize("name", list(GRAPHS))
def test_graph_compiles_and_exports_to_code_with_identical_outputs(name: str, tmp_path: Path) -> None:
    graph = GRAPHS[name]()
    assert all(info.error is None for info in infer_graph(graph).values())
    code = assert_exported_equals_compiled(graph, tmp_path, name)
    assert imported_roots(code) == {"torch"}


def test_exported_code_reads_like_pytorch() -> None:
    code = export_python(mobilenet_v3_block())
    assert "self.pad = nn.ZeroPad2d((0, 1, 0, 1))\n" in code
    assert "self.relu6 = nn.ReLU6()\n" in code
    assert "self.prelu_shared = nn.PReLU()\n" in code
    assert "self.prelu_channels = nn.PReLU(num_parameters=8)\n" in code
    assert "self.elu = nn.ELU(alpha=0.7)\n" in code
    assert "self.gmp = nn.AdaptiveMaxPool2d(2)\n" in code
    code = export_python(shufflenet_block())
    assert "half1 = input1[:, :4]  #" in code and "half2 = input1[:, 4:8]  #" in code
    assert "rows = shuffle[:, :, 1:5]  #" in code
    assert "self.shuffle = nn.ChannelShuffle(2)\n" in code
    assert "mean = rows.mean((2, 3))  #" in code
    code = export_python(convnext_block())
    assert "to_last = dwconv.permute(0, 2, 3, 1)  #" in code
    assert ("drop_path = to_first * nn.functional.dropout(to_first.new_ones(to_first.shape[0], 1, 1, 1), p=0.2, "
            "training=self.training)  #") in code
    assert "drop_batch = drop_path * nn.functional.dropout(drop_path.new_ones(1, 1, 1, 1), p=0.3," in code
    assert "drop_none = drop_batch  #" in code
    assert "pooled = residual.mean((2, 3), keepdim=True)  #" in code
    code = export_python(signal_1d())
    assert "self.pool1 = nn.MaxPool1d(3, stride=2, padding=1, ceil_mode=True)\n" in code
    assert "self.pool2 = nn.MaxPool1d(2, dilation=2)\n" in code
    assert "self.prelu1 = nn.PReLU(num_parameters=4, init=0.1)\n" in code


def test_stochastic_depth_trains_the_same_in_the_compiled_and_the_exported_model(tmp_path: Path) -> None:
    graph = convnext_block()
    compiled = compile_graph(graph)
    exported = import_code(export_python(graph, class_name="Exported"), tmp_path, "drop_path").Exported()
    exported.load_state_dict(compiled.state_dict(), strict=True)
    batch = torch.randn(64, 4, 7, 7)
    compiled.train()
    exported.train()
    outputs = []
    for model in (compiled, exported):
        torch.manual_seed(5)
        with torch.no_grad():
            outputs.append(model(batch))
    assert torch.equal(*outputs)
    compiled.eval()
    with torch.no_grad():
        assert not torch.equal(outputs[0], compiled(batch))  # training really dropped something


def test_exported_file_runs_standalone(tmp_path: Path) -> None:
    path = tmp_path / "model.py"
    path.write_text(export_python(shufflenet_block()), encoding="utf-8")
    result = subprocess.run([sys.executable, "-I", str(path)], capture_output=True, text=True, timeout=60,
                            cwd=tmp_path)
    assert result.returncode == 0, result.stderr
    assert result.stdout.strip() == "output shape: (2, 5)"


# -- each layer computes what the torchvision code it stands for computes -----------------

def build(type_id: str, params: dict, in_shape: tuple[int, ...]) -> nn.Module:
    spec = get_spec(type_id)
    return spec.build(spec.validate_params(params), [in_shape]).eval()


def test_activations_equal_torch_functions() -> None:
    x = torch.randn(3, 4, 5, 5) * 5
    functional = nn.functional
    assert torch.equal(build("ReLU6", {}, (4, 5, 5))(x), functional.relu6(x))
    assert torch.equal(build("Hardswish", {}, (4, 5, 5))(x), functional.hardswish(x))
    assert torch.equal(build("Hardsigmoid", {}, (4, 5, 5))(x), functional.hardsigmoid(x))
    assert torch.equal(build("ELU", {"alpha": 0.3}, (4, 5, 5))(x), functional.elu(x, alpha=0.3))
    assert torch.equal(build("Mish", {}, (4, 5, 5))(x), functional.mish(x))
    prelu = build("PReLU", {"num_parameters": None}, (4, 5, 5))
    assert prelu.weight.shape == (4,)
    with torch.no_grad():
        prelu.weight.copy_(torch.tensor([0.1, 0.2, 0.3, 0.4]))
        assert torch.equal(prelu(x), functional.prelu(x, prelu.weight))


def test_pooling_equals_torch_functions() -> None:
    x = torch.randn(2, 3, 9, 7)
    assert torch.equal(build("AdaptiveMaxPool2d", {"output_size": [2, 3]}, (3, 9, 7))(x),
                       nn.functional.adaptive_max_pool2d(x, (2, 3)))
    assert torch.equal(build("Mean", {}, (3, 9, 7))(x), x.mean([2, 3]))  # ShuffleNetV2's last step
    assert torch.equal(build("Mean", {"keepdim": True}, (3, 9, 7))(x), x.mean([2, 3], keepdim=True))
    signal = torch.randn(2, 3, 11)
    assert torch.equal(build("MaxPool1d", {"kernel_size": 3, "stride": 2, "padding": 1}, (3, 11))(signal),
                       nn.functional.max_pool1d(signal, 3, 2, 1))


def test_shufflenet_split_and_shuffle_equal_torchvision() -> None:
    from torchvision.models.shufflenetv2 import channel_shuffle

    x = torch.randn(2, 12, 3, 3)
    assert torch.equal(build("ChannelShuffle", {"groups": 3}, (12, 3, 3))(x), channel_shuffle(x, 3))
    first, second = x.chunk(2, dim=1)
    assert torch.equal(build("Slice", {"end": 6}, (12, 3, 3))(x), first)
    assert torch.equal(build("Slice", {"start": 6}, (12, 3, 3))(x), second)


def test_zero_pad_equals_torch_pad() -> None:
    x = torch.randn(2, 3, 4, 5)
    pad = build("ZeroPad2d", {"left": 1, "right": 2, "top": 3, "bottom": 0}, (3, 4, 5))
    assert torch.equal(pad(x), nn.functional.pad(x, (1, 2, 3, 0)))


def test_convnext_layer_norm_2d_is_permute_layer_norm_permute() -> None:
    """How an importer maps torchvision's LayerNorm2d: three nodes, the LayerNorm holding its weights."""
    from torchvision.models.convnext import LayerNorm2d

    source = LayerNorm2d(6, eps=1e-6).eval()
    with torch.no_grad():
        source.weight.copy_(torch.randn(6))
        source.bias.copy_(torch.randn(6))
    graph = with_input([6, 5, 4])
    last = chain(graph, "input1", ("to_last", "Permute", {"dims": [2, 3, 1]}),
                 ("norm", "LayerNorm", {"over": "last", "eps": 1e-6}), ("to_first", "Permute", {"dims": [3, 1, 2]}))
    chain(graph, last, ("output1", "Output", {"task": "reconstruction"}))
    model = compile_graph(graph).eval()
    model.norm.load_state_dict(source.state_dict())
    x = torch.randn(3, 6, 5, 4)
    with torch.no_grad():
        torch.testing.assert_close(model(x), source(x))


def test_stochastic_depth_is_torchvisions_rule() -> None:
    x = torch.randn(2000, 3, 2, 2) + 10
    reference = torchvision.ops.StochasticDepth(0.25, "row")
    for mode in ("row", "batch"):
        layer = build("StochasticDepth", {"p": 0.25, "mode": mode}, (3, 2, 2))
        assert torch.equal(layer(x), torchvision.ops.StochasticDepth(0.25, mode).eval()(x))  # eval: identity
    layer = build("StochasticDepth", {"p": 0.25}, (3, 2, 2)).train()
    reference.train()
    torch.manual_seed(0)
    ours = layer(x)
    theirs = reference(x)
    for result in (ours, theirs):
        dropped = (result == 0).flatten(1).all(1)
        kept = ~dropped
        assert (result[dropped] == 0).all()
        torch.testing.assert_close(result[kept], x[kept] / 0.75)  # a whole sample is dropped or scaled up
        assert 0.2 < dropped.float().mean() < 0.3
    batch_mode = build("StochasticDepth", {"p": 0.5, "mode": "batch"}, (3, 2, 2)).train()
    for seed in range(6):
        torch.manual_seed(seed)
        result = batch_mode(x)
        assert (result == 0).all() or torch.allclose(result, x * 2)


# -- refusals name the node and say what is expected and what came ----------------------

def refusal(type_id: str, params: dict, in_shape: tuple[int, ...]) -> ShapeError:
    graph = Graph()
    node = graph.add_node(type_id, params, node_id="block3")
    error = infer_node(node, [in_shape]).error
    assert isinstance(error, ShapeError) and error.node_id == "block3"
    return error


def test_channel_shuffle_refuses_channels_not_divisible_by_groups() -> None:
    error = refusal("ChannelShuffle", {"groups": 4}, (6, 8, 8))
    assert str(error) == ("block3: ChannelShuffle: groups=4 does not divide the 6 input channels of "
                          "(N, 6, 8, 8)")
    assert error.fix is not None and (error.fix.param, error.fix.value) == ("groups", 3)
    assert "(N, C, H, W)" in refusal("ChannelShuffle", {}, (12,)).message


def test_permute_refuses_dims_that_are_not_a_permutation_of_the_input() -> None:
    message = refusal("Permute", {"dims": [2, 3, 1]}, (4, 10)).message
    assert message == ("Permute: dims=[2, 3, 1] must list each of 1, 2 once (the batch, 0, stays first) for its "
                       "input (N, 4, 10)")
    assert "each of 1, 2, 3 once" in refusal("Permute", {"dims": [1, 1, 2]}, (3, 4, 4)).message


def test_prelu_refuses_a_slope_count_that_is_neither_one_nor_the_channels() -> None:
    error = refusal("PReLU", {"num_parameters": 3}, (8, 4, 4))
    assert "num_parameters=3" in error.message and "(N, 8, 4, 4) has 8 channels" in error.message
    assert (error.fix.param, error.fix.value) == ("num_parameters", 8)


def test_slice_refuses_ranges_outside_the_input() -> None:
    assert "end=9 is past the 6 entries of dimension 1 of (N, 6, 4, 4)" in \
        refusal("Slice", {"end": 9}, (6, 4, 4)).message
    assert "start=6 must be less than end=6" in refusal("Slice", {"start": 6}, (6, 4, 4)).message
    assert "dim=3 is not a dimension of (N, 6, 4)" in refusal("Slice", {"dim": 3}, (6, 4)).message


def test_shape_only_layers_refuse_the_wrong_rank() -> None:
    assert refusal("ZeroPad2d", {}, (12,)).message == "ZeroPad2d expects (N, C, H, W); received (N, 12)"
    assert refusal("MaxPool1d", {}, (3, 8, 8)).message == "MaxPool1d expects (N, C, L); received (N, 3, 8, 8)"
    assert "expects (N, C, L) or (N, C, H, W); received (N, 12)" in refusal("Mean", {}, (12,)).message
    assert refusal("MaxPool1d", {"kernel_size": 4}, (2, 3)).message.startswith("MaxPool1d: the window does not fit")


def test_shape_inference_of_the_new_layers_does_not_import_torch() -> None:
    code = ("import sys\n"
            "from dlstudio.core.graph import Graph\n"
            "from dlstudio.core.shapes import infer_node\n"
            "cases = {'ReLU6': (4,), 'Hardswish': (4,), 'Hardsigmoid': (4,), 'ELU': (4,), 'PReLU': (3, 4, 4),\n"
            "         'Mish': (4,), 'AdaptiveMaxPool2d': (3, 4, 4), 'ZeroPad2d': (3, 4, 4), 'MaxPool1d': (3, 8),\n"
            "         'ChannelShuffle': (4, 2, 2), 'Permute': (3, 4, 4), 'Mean': (3, 4, 4),\n"
            "         'StochasticDepth': (3, 4, 4), 'Slice': (3, 4, 4)}\n"
            "graph = Graph()\n"
            "for type_id, shape in cases.items():\n"
            "    assert infer_node(graph.add_node(type_id), [shape]).error is None, type_id\n"
            "assert 'torch' not in sys.modules, 'torch imported'\n")
    subprocess.run([sys.executable, "-c", code], check=True)

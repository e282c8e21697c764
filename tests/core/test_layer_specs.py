"""One parametrized walk over every registered layer spec (design.md §3).

For each spec and each case: the inferred output shape equals a real forward
pass (batch sizes 1 and 3), the parameter count equals the built module's,
MACs match PyTorch's FLOP counter for weighted layers, parameters round-trip
through JSON, and a bad input yields a ShapeError naming the node.
"""

from __future__ import annotations

import json

import pytest
import torch
from torch.utils.flop_counter import FlopCounterMode

from dlstudio.core.errors import ParamError, ShapeError
from dlstudio.core.graph import Graph
from dlstudio.core.layers import all_specs, get_spec
from dlstudio.core.shapes import ShapeInference, infer_node

# type id -> list of (params, input shapes). Every registered spec must appear here.
CASES: dict[str, list[tuple[dict, list[tuple[int, ...]]]]] = {
    "Input": [({"shape": [1, 8, 8]}, []), ({"shape": [20]}, []), ({"shape": [3, 50]}, [])],
    "Output": [({"classes": 10}, [(10,)]), ({"task": "reconstruction"}, [(1, 28, 28)])],
    "Linear": [({"out_features": 7}, [(12,)]), ({"in_features": 5, "out_features": 3, "bias": False}, [(5,)])],
    "Conv1d": [({"out_channels": 4, "kernel_size": 3}, [(2, 20)]),
               ({"out_channels": 6, "kernel_size": 5, "stride": 2, "padding": 2, "dilation": 2, "groups": 2},
                [(4, 31)]),
               ({"out_channels": 3, "kernel_size": 5, "padding": "same"}, [(3, 17)])],
    "Conv2d": [({"out_channels": 8, "kernel_size": 3}, [(3, 16, 16)]),
               ({"out_channels": 6, "kernel_size": [3, 5], "stride": [2, 1], "padding": [1, 2], "bias": False},
                [(2, 15, 11)]),
               ({"out_channels": 8, "kernel_size": 3, "padding": "same", "dilation": 2, "groups": 4}, [(4, 9, 9)]),
               ({"out_channels": 4, "kernel_size": 2, "padding": "valid", "stride": 3}, [(1, 10, 7)]),
               ({"in_channels": 1, "out_channels": 6, "kernel_size": 5, "padding": 2}, [(1, 28, 28)])],
    "ConvTranspose2d": [({"out_channels": 4, "kernel_size": 3, "stride": 2, "padding": 1, "output_padding": 1},
                         [(8, 7, 7)]),
                        ({"out_channels": 6, "kernel_size": [2, 3], "groups": 3, "dilation": 2}, [(3, 5, 4)])],
    "MaxPool2d": [({"kernel_size": 2}, [(3, 8, 8)]),
                  ({"kernel_size": 3, "stride": 2, "padding": 1, "ceil_mode": True}, [(2, 9, 10)]),
                  ({"kernel_size": [2, 3], "stride": 1, "dilation": 2}, [(1, 7, 9)]),
                  ({"kernel_size": 3, "stride": 2, "ceil_mode": True}, [(1, 6, 6)])],
    "AvgPool2d": [({"kernel_size": 2}, [(3, 9, 8)]),
                  ({"kernel_size": 3, "stride": 2, "padding": 1, "ceil_mode": True, "count_include_pad": False},
                   [(2, 10, 7)])],
    "AdaptiveAvgPool2d": [({"output_size": 1}, [(5, 7, 9)]), ({"output_size": [2, 3]}, [(2, 8, 8)])],
    "BatchNorm1d": [({}, [(12,)]), ({"affine": False}, [(4, 10)])],
    "BatchNorm2d": [({}, [(6, 5, 5)]), ({"num_features": 3, "momentum": 0.2}, [(3, 4, 4)])],
    "LayerNorm": [({}, [(4, 6, 6)]), ({"over": "last", "elementwise_affine": False}, [(3, 10)])],
    "GroupNorm": [({"num_groups": 2}, [(4, 5, 5)]), ({"num_groups": 3, "affine": False}, [(6, 11)])],
    "Dropout": [({"p": 0.3}, [(10,)]), ({}, [(2, 4, 4)])],
    "Dropout2d": [({"p": 0.2}, [(3, 6, 6)])],
    "ReLU": [({}, [(5,)]), ({}, [(2, 3, 3)])],
    "LeakyReLU": [({"negative_slope": 0.2}, [(4, 4, 4)])],
    "GELU": [({}, [(7,)]), ({"approximate": "tanh"}, [(2, 5)])],
    "SiLU": [({}, [(3, 4, 4)])],
    "Sigmoid": [({}, [(6,)])],
    "Tanh": [({}, [(2, 3)])],
    "Softmax": [({}, [(10,)]), ({"dim": -1}, [(3, 4, 5)])],
    "Add": [({}, [(4, 5, 5), (4, 5, 5)]), ({"inputs": 3}, [(8,), (8,), (1,)])],
    "Concat": [({}, [(2, 4, 4), (3, 4, 4)]), ({"inputs": 3, "dim": -1}, [(2, 3), (2, 4), (2, 1)])],
    "Multiply": [({}, [(6, 4, 4), (6, 1, 1)])],
    "Flatten": [({}, [(3, 4, 5)]), ({}, [(7,)])],
    "Reshape": [({"shape": [4, -1]}, [(24,)]), ({"shape": [2, 3, 4]}, [(4, 6)])],
    "Upsample": [({"scale_factor": 2}, [(3, 4, 5)]), ({"scale_factor": 3, "mode": "bilinear"}, [(2, 3, 3)]),
                 ({}, [(2, 7)])],
    "Identity": [({}, [(3, 3)])],
    # Layers for imported torchvision models (issue 12).
    "ReLU6": [({}, [(4,)]), ({}, [(2, 3, 3)])],
    "Hardswish": [({}, [(3, 4, 4)])],
    "Hardsigmoid": [({}, [(6,)]), ({}, [(5, 1, 1)])],
    "ELU": [({}, [(7,)]), ({"alpha": 0.5}, [(2, 4, 4)])],
    "PReLU": [({}, [(3, 5, 5)]), ({"num_parameters": None}, [(4, 6, 6)]), ({"num_parameters": 6, "init": 0.1},
                                                                           [(6, 9)]),
              ({"num_parameters": 8}, [(8,)])],
    "Mish": [({}, [(2, 5)])],
    "MaxPool1d": [({}, [(3, 16)]), ({"kernel_size": 3, "stride": 2, "padding": 1, "ceil_mode": True}, [(2, 10)]),
                  ({"kernel_size": 2, "stride": 1, "dilation": 3}, [(1, 9)])],
    "AdaptiveMaxPool2d": [({}, [(5, 7, 9)]), ({"output_size": [2, 3]}, [(2, 8, 7)])],
    "Mean": [({}, [(4, 5, 6)]), ({"keepdim": True}, [(3, 4, 4)]), ({}, [(2, 9)]), ({"keepdim": True}, [(2, 9)])],
    "StochasticDepth": [({}, [(4, 5, 5)]), ({"p": 0.5, "mode": "batch"}, [(6,)]), ({"p": 0.0}, [(2, 3, 3)])],
    "Permute": [({}, [(3, 4, 5)]), ({"dims": [3, 1, 2]}, [(2, 5, 6)]), ({"dims": [2, 1]}, [(3, 7)]),
                ({"dims": [1]}, [(5,)])],
    "ChannelShuffle": [({}, [(6, 4, 4)]), ({"groups": 3}, [(6, 5)]), ({"groups": 1}, [(3, 2, 2)])],
    "Slice": [({"end": 3}, [(6, 4, 4)]), ({"start": 3}, [(6, 4, 4)]), ({"dim": 3, "start": 1, "end": 4}, [(2, 5, 6)]),
              ({"start": 2, "end": 5}, [(10,)])],
    "ZeroPad2d": [({}, [(3, 5, 5)]), ({"left": 0, "right": 1, "top": 2, "bottom": 0}, [(2, 4, 6)])],
    # An opaque submodule of an imported torchvision model: mobilenet_v3_small's stem (Conv2d, BatchNorm, Hardswish).
    "TorchvisionModule": [({"model": "mobilenet_v3_small", "num_classes": 10, "path": "features.0",
                            "input_shape": [3, 32, 32], "output_shape": [16, 16, 16], "param_count": 464,
                            "reason": "An example."}, [(3, 32, 32)])],
    # Opaque ONNX operations of an imported file: erf (the default), and a MatMul by a weight with an Add.
    "OnnxModule": [({}, [(4,)]),
                   ({"operations": "MatMul, Add", "input_shape": [5, 6], "output_shape": [5, 3],
                     "onnx": json.dumps({"opset": 17, "input": "x", "input_dtype": 1, "output": "y", "nodes": [
                         {"op_type": "MatMul", "domain": "", "inputs": ["x", "W"], "outputs": ["m"], "attributes": {}},
                         {"op_type": "Add", "domain": "", "inputs": ["m", "b"], "outputs": ["y"], "attributes": {}}],
                         "initializers": [{"name": "W", "dtype": 1, "shape": [6, 3]},
                                          {"name": "b", "dtype": 1, "shape": [3], "values": [0.5, 1.0, -1.0]}]})},
                    [(5, 6)])],
}

# type id -> (params, input shapes) that the layer must refuse with a ShapeError.
BAD_INPUTS: dict[str, tuple[dict, list[tuple[int, ...]]]] = {
    "Output": ({"classes": 10}, [(84,)]),
    "Linear": ({}, [(64, 5, 5)]),
    "Conv1d": ({}, [(3, 8, 8)]),
    "Conv2d": ({}, [(784,)]),
    "ConvTranspose2d": ({}, [(10,)]),
    "MaxPool2d": ({"kernel_size": 5}, [(1, 3, 3)]),
    "AvgPool2d": ({}, [(10,)]),
    "AdaptiveAvgPool2d": ({}, [(4, 10)]),
    "BatchNorm1d": ({}, [(3, 4, 4)]),
    "BatchNorm2d": ({"num_features": 5}, [(4, 3, 3)]),
    "GroupNorm": ({"num_groups": 3}, [(4, 2, 2)]),
    "Dropout2d": ({}, [(12,)]),
    "Softmax": ({"dim": 3}, [(5,)]),
    "Add": ({}, [(4, 5, 5), (8, 5, 5)]),
    "Concat": ({}, [(2, 4, 4), (3, 5, 4)]),
    "Multiply": ({}, [(3,), (4,)]),
    "Reshape": ({"shape": [5, 5]}, [(24,)]),
    "Upsample": ({"mode": "bilinear"}, [(3, 8)]),
    "PReLU": ({"num_parameters": 3}, [(4, 5, 5)]),
    "MaxPool1d": ({}, [(3, 8, 8)]),
    "AdaptiveMaxPool2d": ({}, [(4, 10)]),
    "Mean": ({}, [(12,)]),
    "Permute": ({}, [(4, 10)]),
    "ChannelShuffle": ({"groups": 4}, [(6, 4, 4)]),
    "Slice": ({"start": 4, "end": 9}, [(6, 4, 4)]),
    "ZeroPad2d": ({}, [(12,)]),
    "TorchvisionModule": ({}, [(3, 32, 32)]),
    "OnnxModule": ({}, [(5,)]),
}

WEIGHTED = {"Linear", "Conv1d", "Conv2d", "ConvTranspose2d"}


def _cases():
    for spec in all_specs():
        for i, (params, shapes) in enumerate(CASES.get(spec.type_id, [])):
            yield pytest.param(spec.type_id, params, shapes, id=f"{spec.type_id}-{i}")


def test_every_spec_has_cases():
    missing = [spec.type_id for spec in all_specs() if spec.type_id not in CASES]
    assert not missing, f"add test cases for {missing}"


def test_every_spec_is_documented():
    for spec in all_specs():
        assert len(spec.help) > 60, spec.type_id
        assert all(param.help for param in spec.params), spec.type_id
        assert all(spec.has_param(name) for name in spec.key_params), spec.type_id


@pytest.mark.parametrize(("type_id", "params", "in_shapes"), list(_cases()))
def test_inferred_shape_params_and_macs_match_pytorch(type_id, params, in_shapes):
    spec = get_spec(type_id)
    values = spec.validate_params(params)
    assert spec.validate_params(json.loads(json.dumps(values))) == values  # JSON round-trip

    graph = Graph()
    node = graph.add_node(type_id, values)
    info = infer_node(node, list(in_shapes))
    assert info.error is None, info.error
    module = spec.build(values, list(in_shapes))
    assert isinstance(module, torch.nn.Module)
    assert info.params == sum(p.numel() for p in module.parameters())

    if spec.role == "input":
        assert info.output_shapes["out"] == tuple(values["shape"])
        return
    for batch in (1, 3):
        module.train(batch > 1)  # BatchNorm needs more than one value per channel when training
        inputs = [torch.randn(batch, *shape) for shape in in_shapes]
        with torch.no_grad(), FlopCounterMode(display=False) as counter:
            output = module(*inputs)
        expected = info.output_shape if spec.role == "output" else info.output_shapes["out"]
        assert tuple(output.shape) == (batch, *expected)
        if type_id in WEIGHTED:
            assert counter.get_total_flops() == 2 * info.macs * batch


@pytest.mark.parametrize("type_id", sorted(BAD_INPUTS))
def test_bad_input_is_a_shape_error_naming_the_node(type_id):
    params, in_shapes = BAD_INPUTS[type_id]
    graph = Graph()
    node = graph.add_node(type_id, params, node_id="suspect")
    info = infer_node(node, list(in_shapes))
    assert isinstance(info.error, ShapeError)
    assert info.error.node_id == "suspect"
    assert str(info.error).startswith("suspect: ")
    assert "\n" not in info.error.message
    # The message quotes what arrived.
    assert "(N, " in info.error.message or "=" in info.error.message


@pytest.mark.parametrize("spec", [s for s in all_specs() if s.inputs or s.variadic_param],
                         ids=lambda s: s.type_id)
def test_unconnected_input_is_an_error_on_that_node(spec):
    graph = Graph()
    node = graph.add_node(spec.type_id)
    error = ShapeInference(graph).info(node.id).error
    assert isinstance(error, ShapeError) and error.node_id == node.id
    assert "not connected" in error.message


@pytest.mark.parametrize("spec", all_specs(), ids=lambda s: s.type_id)
def test_invalid_parameter_values_are_refused_with_the_reason(spec):
    for param in spec.params:
        bad = "not a value" if param.kind != "str" else 42
        with pytest.raises(ParamError) as caught:
            spec.validate_params({param.name: bad})
        assert param.display_name in caught.value.message
        assert caught.value.param == param.name


def test_an_unconnected_input_is_named_as_the_canvas_shows_it():
    graph = Graph()
    source = graph.add_node("Input", {"shape": [4]})
    relu = graph.add_node("ReLU")
    merge = graph.add_node("Add", {"inputs": 3})
    graph.connect(source.id, "out", merge.id, "in1")
    inference = ShapeInference(graph)
    assert inference.info(relu.id).error.message.startswith("ReLU: its input is not connected")
    assert inference.info(merge.id).error.message == "Add: inputs 2 and 3 of 3 not connected"
    assert "'in" not in inference.info(relu.id).error.message

"""Opaque parts of an imported ONNX file: operations that no layer type expresses, kept as ONNX (issue 12).

An ONNX import keeps such operations as one "Module (ONNX)" node instead of refusing the file. The node
holds the operations themselves, as JSON in its ``onnx`` parameter (see :func:`region_model`): each
operation's type, domain, inputs, outputs and attributes, the opset, and the initializers it reads by
name, dtype and shape. An initializer of a few values (a Reshape's target shape, a Slice's bounds, a clamp's
bound) is written out too, since onnx2torch reads those while converting; a weight is not: ``build``
fills it with zeros and the import loads the file's values through its ``key_map``, as for every node.

So the project file stays self-contained (no path to the .onnx file), and shape inference stays torch-free:
``infer`` only checks that the input is the one recorded at import. ``build`` writes the operations as a
one-input, one-output ONNX model and converts it with onnx2torch (imported there, as onnx is).
"""

from __future__ import annotations

import json
from typing import Any

from dlstudio.core.errors import LayerShapeError
from dlstudio.core.layers.spec import (
    INT, INTS, STR, Inferred, LayerCode, LayerSpec, ParamSpec, Shape, code_literal, format_shape,
)

SMALL_INITIALIZER = 64
"""Initializers with at most this many values are written into the node (onnx2torch reads them as settings)."""

_MAX_RANK = 8  # dimensions after the batch an opaque node's input or output may have

_IMPORT = ("from dlstudio.core.layers.imported_onnx import onnx_module  # operations of an imported ONNX file "
           "without a layer type: running this file needs dlstudio, onnx and onnx2torch")

# The default (and the spec walk's example): erf(x), which has no layer type, on a vector of 4.
_EXAMPLE = json.dumps({
    "opset": 17, "input": "x", "input_dtype": 1, "output": "y", "initializers": [],
    "nodes": [{"op_type": "Erf", "domain": "", "inputs": ["x"], "outputs": ["y"], "attributes": {}}],
})


def _infer(in_shapes: list[Shape], params: dict[str, Any]) -> Inferred:
    (shape,) = in_shapes
    recorded = tuple(params["input_shape"])
    if tuple(shape) != recorded:
        raise LayerShapeError(f"these ONNX operations were imported for {format_shape(recorded)}; they receive "
                              f"{format_shape(shape)}")
    return Inferred((tuple(params["output_shape"]),), params=params["param_count"])


def region_model(region: dict[str, Any], input_shape: Any, weights: dict[str, Any] | None = None) -> Any:
    """The ONNX model of the operations ``region`` describes: one input of (N, *input_shape), one output.

    ``input_shape`` may name a dimension instead of sizing it (an import knows some only while running);
    ``weights`` (numpy arrays by initializer name) fill the initializers that ``region`` does not hold.

    ``region`` holds ``opset``, ``input`` and ``input_dtype`` (the input's name and ONNX element type),
    ``output`` (the output's name), ``nodes`` (each with ``op_type``, ``domain``, ``inputs``, ``outputs``
    and ``attributes``, as :func:`attribute_json` writes them) and ``initializers`` (each with ``name``,
    ``dtype``, ``shape`` and, for a small one, ``values``; the others are zeros here).
    """
    import numpy as np
    from onnx import helper, numpy_helper

    initializers = []
    for entry in region["initializers"]:
        dtype = helper.tensor_dtype_to_np_dtype(entry["dtype"])
        if "values" in entry:
            array = np.array(entry["values"], dtype=dtype).reshape(entry["shape"])
        elif weights is not None and entry["name"] in weights:
            array = np.asarray(weights[entry["name"]], dtype=dtype).reshape(entry["shape"])
        else:
            array = np.zeros(entry["shape"], dtype=dtype)
        initializers.append(numpy_helper.from_array(array, entry["name"]))
    nodes = [helper.make_node(node["op_type"], node["inputs"], node["outputs"], domain=node["domain"] or None,
                              **{name: _attribute_value(value) for name, value in node["attributes"].items()})
             for node in region["nodes"]]
    graph = helper.make_graph(
        nodes, "opaque", [helper.make_tensor_value_info(region["input"], region["input_dtype"],
                                                        ["N", *input_shape])],
        [helper.make_tensor_value_info(region["output"], region["input_dtype"], None)], initializers)
    domains = sorted({node["domain"] for node in region["nodes"]} - {"", "ai.onnx"})
    opsets = [helper.make_opsetid("", region["opset"])] + [helper.make_opsetid(d, 1) for d in domains]
    return helper.make_model(graph, opset_imports=opsets)


def attribute_json(attribute: Any) -> dict[str, Any]:
    """An ONNX attribute (AttributeProto) as JSON: its type and value; a tensor by dtype, shape and values.

    Raises ValueError for an attribute holding a graph (If, Loop, Scan), which a node cannot keep as JSON.
    """
    from onnx import AttributeProto, helper, numpy_helper

    kind = AttributeProto.AttributeType.Name(attribute.type)
    value = helper.get_attribute_value(attribute)
    if kind in ("GRAPH", "GRAPHS", "SPARSE_TENSOR", "SPARSE_TENSORS", "TYPE_PROTO", "TYPE_PROTOS"):
        raise ValueError(f"its attribute {attribute.name} holds a {kind.lower().replace('_', ' ')}, which an "
                         "opaque ONNX node does not keep")
    if kind == "TENSOR":
        array = numpy_helper.to_array(value)
        value = {"dtype": int(value.data_type), "shape": list(array.shape), "values": array.ravel().tolist()}
    elif kind == "TENSORS":
        raise ValueError(f"its attribute {attribute.name} holds several tensors, which an opaque ONNX node does "
                         "not keep")
    elif kind == "STRING":
        value = value.decode("utf-8")
    elif kind == "STRINGS":
        value = [item.decode("utf-8") for item in value]
    elif kind in ("INTS", "FLOATS"):
        value = list(value)
    return {"type": kind, "value": value}


def _attribute_value(entry: dict[str, Any]) -> Any:
    """What ``helper.make_node`` takes for an attribute :func:`attribute_json` wrote."""
    import numpy as np
    from onnx import helper, numpy_helper

    kind, value = entry["type"], entry["value"]
    if kind == "TENSOR":
        dtype = helper.tensor_dtype_to_np_dtype(value["dtype"])
        return numpy_helper.from_array(np.array(value["values"], dtype=dtype).reshape(value["shape"]))
    if kind == "FLOAT":
        return float(value)
    if kind == "FLOATS":
        return [float(v) for v in value]
    return value


def onnx_module(region_json: str, input_shape: Shape) -> Any:
    """The torch module computing the operations of ``region_json`` (zeros where the weights go)."""
    import onnx2torch

    return onnx2torch.convert(region_model(json.loads(region_json), tuple(input_shape)))


def _build(params: dict[str, Any], in_shapes: list[Shape]) -> Any:
    return onnx_module(params["onnx"], params["input_shape"])


def _code(params: dict[str, Any], in_shapes: list[Shape]) -> str:
    return f"onnx_module({code_literal(params['onnx'])}, {code_literal(params['input_shape'])})"


_HELP = ("ONNX operations of an imported file that no layer type expresses, kept as they are with their "
         "weights. The node takes the input shape recorded at import and gives the output shape recorded then; "
         "building it converts the operations with onnx2torch, and the exported Python file needs dlstudio, "
         "onnx and onnx2torch for it.")

SPECS = [
    LayerSpec(
        "OnnxModule", "Module (ONNX)", "Imported", _HELP,
        (
            ParamSpec("operations", STR, "Erf", "The ONNX operations the node computes, in order (e.g. "
                      "Transpose, MatMul)."),
            ParamSpec("onnx", STR, _EXAMPLE, "The operations as JSON: their types, attributes and inputs, the "
                      "opset, and the initializers they read (the weights' shapes; the values of small ones).",
                      label="ONNX operations"),
            ParamSpec("input_shape", INTS, [4], "The input shape recorded at import (without the batch).", min=1,
                      max_len=_MAX_RANK, label="input shape"),
            ParamSpec("output_shape", INTS, [4], "The output shape recorded at import (without the batch).",
                      min=1, max_len=_MAX_RANK, label="output shape"),
            ParamSpec("param_count", INT, 0, "The operations' number of parameters.", min=0, label="parameters"),
            ParamSpec("reason", STR, "", "Why the operations are opaque: what in them has no layer type."),
        ),
        _infer, _build, key_params=("operations",), id_stem="onnx",
        code=LayerCode(module=_code, imports=(_IMPORT,)), in_palette=False,
    ),
]

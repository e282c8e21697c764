"""Opaque parts of an imported ONNX file: operations that no layer type expresses, kept as ONNX (issue 12).

An ONNX import keeps such operations as one "Module (ONNX)" node instead of refusing the file. The node
holds the operations themselves, as JSON in its ``onnx`` parameter (see
``imported_onnx_code.region_model``): each operation's type, domain, inputs, outputs and attributes, the
opset, and the initializers it reads by name, dtype and shape. An initializer of a few values (a Reshape's
target shape, a Slice's bounds, a clamp's bound) is written out too, since onnx2torch reads those while
converting; a weight is not: ``build`` fills it with zeros and the import loads the file's values through
its ``key_map``, as for every node.

So the project file stays self-contained (no path to the .onnx file), and shape inference stays torch-free:
``infer`` only checks that the input is the one recorded at import. ``build`` writes the operations as a
one-input, one-output ONNX model and converts it with onnx2torch (imported there, as onnx is); the
exported Python file carries those functions (``imported_onnx_code``) instead of importing dlstudio.
"""

from __future__ import annotations

import inspect
import json
from typing import Any

from dlstudio.core.layers.imported import recorded_infer
from dlstudio.core.layers.imported_onnx_code import onnx_attribute, onnx_module, region_model
from dlstudio.core.layers.spec import INT, INTS, STR, LayerCode, LayerSpec, ParamSpec, Shape, code_literal

SMALL_INITIALIZER = 64
"""Initializers with at most this many values are written into the node (onnx2torch reads them as settings)."""

_MAX_RANK = 8  # dimensions after the batch an opaque node's input or output may have

# The exported file defines the functions that rebuild the operations (imported_onnx_code), so it runs with
# torch, numpy, onnx and onnx2torch, without dlstudio.
_IMPORTS = ("import json  # onnx_module (below) rebuilds ONNX operations kept at import from JSON; it needs numpy, "
            "onnx and onnx2torch", "from typing import Any  # in the annotations of onnx_module and its helpers")
_DEFINITIONS = tuple(inspect.getsource(function) for function in (region_model, onnx_attribute, onnx_module))

# The default (and the spec walk's example): erf(x), which has no layer type, on a vector of 4.
_EXAMPLE = json.dumps({
    "opset": 17, "input": "x", "input_dtype": 1, "output": "y", "initializers": [],
    "nodes": [{"op_type": "Erf", "domain": "", "inputs": ["x"], "outputs": ["y"], "attributes": {}}],
})


_infer = recorded_infer("these ONNX operations were imported for", "they receive")


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


def _build(params: dict[str, Any], in_shapes: list[Shape]) -> Any:
    return onnx_module(params["onnx"], params["input_shape"])


def _code(params: dict[str, Any], in_shapes: list[Shape]) -> str:
    return f"onnx_module({code_literal(params['onnx'])}, {code_literal(params['input_shape'])})"


_HELP = ("ONNX operations of an imported file that no layer type expresses, kept as they are with their "
         "weights. The node takes the input shape recorded at import and gives the output shape recorded then; "
         "building it converts the operations with onnx2torch, and the exported Python file needs numpy, "
         "onnx and onnx2torch for it.")

SPECS = [
    LayerSpec(
        "OnnxModule", "Module (ONNX)", "Imported", _HELP,
        (
            ParamSpec("operations", STR, "Erf", "The ONNX operations the node computes, in order (e.g. "
                      "Transpose, MatMul).", recorded=True),
            ParamSpec("onnx", STR, _EXAMPLE, "The operations as JSON: their types, attributes and inputs, the "
                      "opset, and the initializers they read (the weights' shapes; the values of small ones).",
                      label="ONNX operations", recorded=True, hidden=True),
            ParamSpec("input_shape", INTS, [4], "The input shape recorded at import (without the batch).", min=1,
                      max_len=_MAX_RANK, label="input shape", recorded=True),
            ParamSpec("output_shape", INTS, [4], "The output shape recorded at import (without the batch).",
                      min=1, max_len=_MAX_RANK, label="output shape", recorded=True),
            ParamSpec("param_count", INT, 0, "The operations' number of parameters.", min=0, label="parameters",
                      recorded=True),
            ParamSpec("macs", INT, 0, "Multiply-accumulates of one sample, counted at import by torch's flop "
                      "counter (0: not counted).", min=0, label="MACs", recorded=True, hidden=True),
            ParamSpec("reason", STR, "", "Why the operations are opaque: what in them has no layer type.",
                      recorded=True),
        ),
        _infer, _build, key_params=("operations",), id_stem="onnx",
        code=LayerCode(module=_code, imports=_IMPORTS, definitions=_DEFINITIONS,
                       packages=("numpy", "onnx", "onnx2torch")), in_palette=False,
    ),
]

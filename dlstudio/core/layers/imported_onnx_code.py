"""What a "Module (ONNX)" node runs: its operations, kept as JSON, rebuilt as ONNX and converted by onnx2torch.

The exported Python file of a project with such a node carries these functions verbatim (see
``imported_onnx.CODE_DEFINITIONS``), so that it runs with torch, numpy, onnx and onnx2torch and without
dlstudio. Hence the rules here: no import of dlstudio, and no ``from __future__ import annotations`` (the
annotations must be valid where they are copied to: ``Any`` comes from the exported file's own import).
"""

import json
from typing import Any


def region_model(region: dict[str, Any], input_shape: Any, weights: dict[str, Any] | None = None) -> Any:
    """The ONNX model of the operations ``region`` describes: one input of (N, *input_shape), one output.

    ``input_shape`` may name a dimension instead of sizing it (an import knows some only while running);
    ``weights`` (numpy arrays by initializer name) fill the initializers that ``region`` does not hold.

    ``region`` holds ``opset``, ``input`` and ``input_dtype`` (the input's name and ONNX element type),
    ``output`` (the output's name), ``nodes`` (each with ``op_type``, ``domain``, ``inputs``, ``outputs``
    and ``attributes``, each attribute as ``{"type": ..., "value": ...}``) and ``initializers`` (each with
    ``name``, ``dtype``, ``shape`` and, for a small one, ``values``; the others are zeros here).
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
                              **{name: onnx_attribute(value) for name, value in node["attributes"].items()})
             for node in region["nodes"]]
    graph = helper.make_graph(
        nodes, "opaque", [helper.make_tensor_value_info(region["input"], region["input_dtype"],
                                                        ["N", *input_shape])],
        [helper.make_tensor_value_info(region["output"], region["input_dtype"], None)], initializers)
    domains = sorted({node["domain"] for node in region["nodes"]} - {"", "ai.onnx"})
    opsets = [helper.make_opsetid("", region["opset"])] + [helper.make_opsetid(d, 1) for d in domains]
    return helper.make_model(graph, opset_imports=opsets)


def onnx_attribute(entry: dict[str, Any]) -> Any:
    """What ``onnx.helper.make_node`` takes for an attribute written as ``{"type": ..., "value": ...}``."""
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


def onnx_module(region_json: str, input_shape: Any) -> Any:
    """The torch module computing the operations of ``region_json`` (zeros where the weights go)."""
    import onnx2torch

    return onnx2torch.convert(region_model(json.loads(region_json), tuple(input_shape)))

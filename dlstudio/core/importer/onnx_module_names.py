"""The names onnx2torch gives the modules it makes of an ONNX file's nodes.

An ONNX import finds its way back from onnx2torch's modules to the file's nodes by these names: to name a
node after its source module (the exporter's scopes in the ONNX node's name) and to tell which ONNX node an
unmapped module stands for. Needs nothing but the ONNX model (a ``ModelProto``).
"""

from __future__ import annotations

from typing import Any


def onnx2torch_module_names(model: Any) -> list[str]:
    """The name of each ONNX node's module, in the graph's order, as onnx2torch's ``OnnxGraph`` gives it.

    That is the node's domain and name with dots made slashes (its operation type when it has no name),
    with ``_1``, ``_2``, ... after the second, third, ... node of one name.
    """
    names: list[str] = []
    seen: dict[str, int] = {}
    for node in model.graph.node:
        base = (f"{node.domain}/" + (node.name.replace(".", "/") or node.op_type)).lstrip("/")
        count = seen.get(base, 0)
        seen[base] = count + 1
        names.append(base + (f"_{count}" if count else ""))
    return names

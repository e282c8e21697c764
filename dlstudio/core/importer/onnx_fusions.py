"""ONNX operations that together are one layer type, rewritten as one operation before onnx2torch converts them.

torch's exporter writes a Linear on more than two dimensions (ConvNeXt's channels-last blocks) as a
MatMul with the transposed weight and an Add of the bias, and an exact GELU as
``x * 0.5 * (1 + erf(x / sqrt(2)))``. onnx2torch converts each operation alone (MatMul to a function, erf to
a module no layer type has), so those would stay opaque. :func:`fuse` replaces each such pattern by one
operation of the domain ``DOMAIN`` whose converter (registered here) gives ``nn.Linear`` or ``nn.GELU``,
which the import maps to the Linear and GELU layer types.

Only operations outside opaque regions are fused (the import fuses the model after cutting them): a
region keeps the file's own operations, which its "Module (ONNX)" node rebuilds without dlstudio.
Needs onnx and torch.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import numpy as np
from onnx import ModelProto, NodeProto, helper, numpy_helper

DOMAIN = "dlstudio"  # as onnx_opaque's Region; without a dot, since onnx2torch names modules after it
_LINEAR, _GELU = "Linear", "Gelu"
_TOLERANCE = 1e-6  # a GELU's constants as float32 writes them (sqrt(2) is 1.4142135)


@dataclass
class Fused:
    """A model with patterns fused, and the operations of the model before that each fused one stands for."""

    model: ModelProto
    originals: dict[int, list[int]] = field(default_factory=dict)  # fused node index -> original node indices

    def original_indices(self, found: dict[int, str]) -> dict[int, str]:
        """``found`` (node indices of the fused model, and why) as indices of the model before fusing."""
        result: dict[int, str] = {}
        for index, why in found.items():
            for original in self.originals.get(index, [index]):
                result.setdefault(original, why)
        return result


class _Graph:
    """The nodes of an ONNX graph, their readers and the initializers' values (numpy)."""

    def __init__(self, model: ModelProto) -> None:
        self.nodes = list(model.graph.node)
        self.values = {init.name: init for init in model.graph.initializer}
        self.outputs = {value.name for value in model.graph.output}
        self.producer = {name: index for index, node in enumerate(self.nodes) for name in node.output}
        self.readers: dict[str, list[int]] = {}
        for index, node in enumerate(self.nodes):
            for name in node.input:
                self.readers.setdefault(name, []).append(index)

    def array(self, name: str) -> np.ndarray | None:
        return numpy_helper.to_array(self.values[name]) if name in self.values else None

    def only_reader(self, index: int) -> int | None:
        """The one operation reading ``index``'s single output (None when it is read elsewhere or given out)."""
        (output,) = self.nodes[index].output
        readers = self.readers.get(output, [])
        return readers[0] if len(readers) == 1 and output not in self.outputs else None

    def is_scalar(self, name: str, value: float) -> bool:
        array = self.array(name)
        return array is not None and array.size == 1 and abs(float(array.ravel()[0]) - value) < _TOLERANCE


def _standard(node: NodeProto, op_type: str) -> bool:
    return node.op_type == op_type and node.domain in ("", "ai.onnx")


def _other(node: NodeProto, name: str) -> str | None:
    """The input of a two-input ``node`` that is not ``name`` (None when neither or both are)."""
    inputs = list(node.input)
    if len(inputs) != 2 or inputs.count(name) != 1:
        return None
    return inputs[1 - inputs.index(name)]


def _linear(graph: _Graph, index: int) -> tuple[list[int], NodeProto, list[Any]] | None:
    """MatMul(x, W^T) [+ b], W of (out, in) a constant (transposed by a Transpose or already): nn.Linear."""
    node = graph.nodes[index]
    if not _standard(node, "MatMul"):
        return None
    x, operand = node.input
    members = [index]
    transpose = graph.producer.get(operand)
    if transpose is not None:  # the exporter's Transpose(weight, perm=[1, 0]), read by this MatMul alone
        t_node = graph.nodes[transpose]
        perm = [list(a.ints) for a in t_node.attribute if a.name == "perm"]
        weight = graph.array(t_node.input[0]) if _standard(t_node, "Transpose") and perm == [[1, 0]] else None
        if weight is None or graph.only_reader(transpose) != index:
            return None
        members.insert(0, transpose)
    else:
        transposed = graph.array(operand)
        if transposed is None:
            return None
        weight = transposed.T
    if weight.ndim != 2 or weight.dtype != np.float32:
        return None
    output, bias = node.output[0], None
    add = graph.only_reader(index)
    if add is not None and _standard(graph.nodes[add], "Add"):
        other = _other(graph.nodes[add], output)
        candidate = graph.array(other) if other is not None else None
        if candidate is not None and candidate.shape == (weight.shape[0],) and candidate.dtype == np.float32:
            members.append(add)
            output, bias = graph.nodes[add].output[0], candidate
    tensors = [numpy_helper.from_array(np.ascontiguousarray(weight), f"{output}/weight")]
    if bias is not None:
        tensors.append(numpy_helper.from_array(bias, f"{output}/bias"))
    fused = helper.make_node(_LINEAR, [x, *(tensor.name for tensor in tensors)], [output], domain=DOMAIN,
                             name=_renamed(node.name, _LINEAR))
    return members, fused, tensors


def _gelu(graph: _Graph, index: int) -> tuple[list[int], NodeProto, list[Any]] | None:
    """Div(x, sqrt 2) -> Erf -> Add 1 -> Mul x -> Mul 0.5, each read by the next alone: nn.GELU()."""
    div = graph.nodes[index]
    if not _standard(div, "Div") or not graph.is_scalar(div.input[1], 2 ** 0.5):
        return None
    x = div.input[0]
    erf = graph.only_reader(index)
    if erf is None or not _standard(graph.nodes[erf], "Erf"):
        return None
    add = graph.only_reader(erf)
    if add is None or not _standard(graph.nodes[add], "Add"):
        return None
    one = _other(graph.nodes[add], graph.nodes[erf].output[0])
    times_x = graph.only_reader(add)
    if one is None or not graph.is_scalar(one, 1.0) or times_x is None or not _standard(graph.nodes[times_x], "Mul") \
            or _other(graph.nodes[times_x], graph.nodes[add].output[0]) != x:
        return None
    half = graph.only_reader(times_x)
    if half is None or not _standard(graph.nodes[half], "Mul"):
        return None
    factor = _other(graph.nodes[half], graph.nodes[times_x].output[0])
    if factor is None or not graph.is_scalar(factor, 0.5):
        return None
    output = graph.nodes[half].output[0]
    fused = helper.make_node(_GELU, [x], [output], domain=DOMAIN, name=_renamed(graph.nodes[erf].name, "GELU"))
    return [index, erf, add, times_x, half], fused, []


def _renamed(name: str, operation: str) -> str:
    """The exporter's node name with the operation replaced (``/block/block.3/MatMul`` -> ``.../Linear``)."""
    return name.rpartition("/")[0] + "/" + operation if name.startswith("/") else ""


def fuse(model: ModelProto) -> Fused:
    """A copy of ``model`` with its Linear and GELU patterns as single operations (``model`` stays as it is)."""
    from onnx import shape_inference

    graph = _Graph(model)
    replaced: dict[int, NodeProto] = {}  # the pattern's last node -> the fused operation
    members_of: dict[int, list[int]] = {}
    taken: set[int] = set()
    tensors: list[Any] = []
    for index in range(len(graph.nodes)):
        match = _linear(graph, index) or _gelu(graph, index)
        if match is None or taken & set(match[0]):
            continue
        members, fused, weights = match
        taken |= set(members)
        replaced[max(members)] = fused
        members_of[max(members)] = sorted(members)
        tensors += weights
    copy = ModelProto()
    copy.CopyFrom(model)
    if not replaced:
        return Fused(copy)
    del copy.graph.node[:]
    originals: dict[int, list[int]] = {}
    for index, node in enumerate(graph.nodes):
        if index in replaced:
            originals[len(copy.graph.node)] = members_of[index]
            copy.graph.node.append(replaced[index])
        elif index not in taken:
            originals[len(copy.graph.node)] = [index]
            copy.graph.node.append(node)
    copy.graph.initializer.extend(tensors)
    read = {name for node in copy.graph.node for name in node.input}
    kept = [init for init in copy.graph.initializer if init.name in read]
    del copy.graph.initializer[:]
    copy.graph.initializer.extend(kept)
    # ONNX's shape inference does not know the fused operations: it is told their results' types, which
    # onnx2torch and the operations after them read.
    results = {node.output[0] for node in replaced.values()}
    inferred = shape_inference.infer_shapes(model)
    copy.graph.value_info.extend(value for value in inferred.graph.value_info if value.name in results)
    if not any(entry.domain == DOMAIN for entry in copy.opset_import):
        copy.opset_import.append(helper.make_opsetid(DOMAIN, 1))
    return Fused(copy, originals)


def _convert(node: Any, graph: Any) -> Any:
    """onnx2torch's converter of a ``DOMAIN`` operation: nn.Linear with the file's weight and bias, or nn.GELU."""
    import torch
    from onnx2torch.utils.common import OnnxMapping, OperationConverterResult
    from torch import nn

    if node.operation_type == _LINEAR:
        weight = graph.initializers[node.input_values[1]].to_torch()
        bias = graph.initializers[node.input_values[2]].to_torch() if len(node.input_values) > 2 else None
        module: nn.Module = nn.Linear(weight.shape[1], weight.shape[0], bias=bias is not None)
        with torch.no_grad():
            module.weight.copy_(weight)
            if bias is not None:
                module.bias.copy_(bias)
    else:
        module = nn.GELU()
    return OperationConverterResult(torch_module=module, onnx_mapping=OnnxMapping(
        inputs=(node.input_values[0],), outputs=node.output_values))


def register_converters() -> None:
    """Teach onnx2torch the ``DOMAIN`` operations (once per process: its registry is global)."""
    from onnx2torch.node_converters.registry import OperationDescription, _CONVERTER_REGISTRY, add_converter

    for operation in (_LINEAR, _GELU):
        if OperationDescription(domain=DOMAIN, operation_type=operation, version=1) not in _CONVERTER_REGISTRY:
            add_converter(operation_type=operation, version=1, domain=DOMAIN)(_convert)

"""ONNX operations that no layer type expresses, gathered into regions that become opaque nodes (issue 12).

An ONNX import keeps what it cannot map as "Module (ONNX)" nodes (``dlstudio.core.layers.imported_onnx``)
instead of refusing the file. One operation alone is often not a node: a ``Shape`` gives no activation (a
channel shuffle computes its Reshape targets from the input's shape while running), a weight is transposed
before a MatMul uses it, a chunk gives two tensors. So the unit kept is a *region*: the operations that have
no layer type, with the constant operations feeding them, the operations between them, and, when that still
does not take one tensor and give one, the rest of the smallest source module around them (the exporter's
scopes), up to the whole model.

:func:`cut_regions` replaces each region in the ONNX model by one operation of the domain ``DOMAIN``, which
onnx2torch converts (through the converter registered here) to a :class:`RegionModule` holding the region's
own onnx2torch module with the file's weights. The import maps that module to one OnnxModule node whose
weights point at it, so they load through ``key_map`` like every other node's. Needs torch, onnx, onnx2torch.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from typing import Any

from onnx import ModelProto, helper, numpy_helper
from torch import nn

from dlstudio.core.importer.grouping import onnx_scope_path
from dlstudio.core.importer.onnx_module_names import onnx2torch_module_names
from dlstudio.core.importer.opaque_macs import counted_macs
from dlstudio.core.importer.result import ModelImportError, Unmapped
from dlstudio.core.layers.imported_onnx import SMALL_INITIALIZER, attribute_json
from dlstudio.core.layers.imported_onnx_code import region_model

DOMAIN = "dlstudio"
OPERATION = "Region"
_SHAPE_SOURCES = ("Shape", "Size")


@dataclass
class Region:
    """ONNX node indices kept as one opaque node, and why (one sentence)."""

    nodes: set[int]
    reason: str


class RegionModule(nn.Module):
    """A region of an ONNX file as onnx2torch converts it; ``module`` is what an OnnxModule node builds."""

    def __init__(self, module: nn.Module, region_json: str, operations: str, reason: str) -> None:
        super().__init__()
        self.module = module
        self.region_json = region_json
        self.operations = operations
        self.reason = reason

    def forward(self, x: Any) -> Any:
        return self.module(x)


class _Flow:
    """Who produces and who reads each value of an ONNX graph, and which values are constants or shapes."""

    def __init__(self, model: ModelProto) -> None:
        graph = model.graph
        self.nodes = list(graph.node)
        self.initializers = {init.name: init for init in graph.initializer}
        self.outputs = {value.name for value in graph.output}
        self.producer: dict[str, int] = {}
        self.readers: dict[str, list[int]] = {}
        self.constants = set(self.initializers)  # values known before running: initializers and what they give
        self.shapes: set[str] = set()  # values computed from a tensor's shape while running
        for index, node in enumerate(self.nodes):
            inputs = [name for name in node.input if name]
            for name in inputs:
                self.readers.setdefault(name, []).append(index)
            for name in node.output:
                self.producer[name] = index
            variable = [name for name in inputs if name not in self.constants]
            if not variable and node.op_type not in _SHAPE_SOURCES:
                self.constants.update(node.output)
            elif node.op_type in _SHAPE_SOURCES or all(name in self.shapes for name in variable):
                self.shapes.update(node.output)

    def is_constant(self, index: int) -> bool:
        return all(name in self.constants for name in self.nodes[index].output)

    def variable_inputs(self, index: int) -> list[str]:
        return [name for name in self.nodes[index].input if name and name not in self.constants]

    def scope(self, index: int) -> str:
        return onnx_scope_path(self.nodes[index].name)


def shape_computations(model: ModelProto) -> dict[int, str]:
    """The operations computing with a tensor's shape while running, which no layer type expresses, and why.

    torch's exporter writes ``x.view(n, groups, -1, h, w)`` for a dynamic batch as Shape, Gather, Concat and a
    Reshape reading the result; onnx2torch's Slice cannot even be traced when its bounds are such values.
    """
    flow = _Flow(model)
    found: dict[int, str] = {}
    for index, node in enumerate(flow.nodes):
        reads_shape = any(name in flow.shapes for name in node.input)
        if node.op_type in _SHAPE_SOURCES or reads_shape:
            found[index] = "computes with a tensor's shape while running, which no layer type expresses"
    return found


def unmapped_operations(model: ModelProto, unmapped: list[Unmapped]) -> dict[int, str] | None:
    """The ONNX node of each unmapped entry (by its onnx2torch module's name) and why; None if one names none.

    A function in the forward of an onnx2torch module is named after the module (``.../Erf.erf``).
    """
    index_of = {name: index for index, name in enumerate(onnx2torch_module_names(model))}
    found: dict[int, str] = {}
    for entry in unmapped:
        index = index_of.get(entry.name, index_of.get(entry.name.partition(".")[0]))
        if index is None:
            return None
        found.setdefault(index, entry.reason)
    return found


def plan_regions(model: ModelProto, reasons: dict[int, str]) -> list[Region]:
    """Gather the operations of ``reasons`` into regions that each take one tensor and give one.

    A constant operation (a weight transposed) goes with the operations reading it; operations connected
    by the shapes they compute, and those between them, are one region (a channel shuffle's Shape, Gather,
    Concat, Reshape, Transpose and Reshape); a region that still takes several tensors or
    gives several grows to the source module around it (by the exporter's scopes), up to the whole model.
    """
    flow = _Flow(model)
    core = {index: why for index, why in reasons.items() if not flow.is_constant(index)}
    for index, why in reasons.items():  # a weight's Transpose: the operations reading it are kept
        for reader in _variable_readers(flow, index):
            core.setdefault(reader, f"reads a constant that {flow.nodes[index].op_type} computes, which {why}")
    regions = _joined_by_shapes(flow, set(core))
    grown: dict[int, str] = {}  # a node of a grown region -> the scope it grew to and why
    changed = True
    while changed:
        regions, changed = _merged(flow, regions)
        for region in regions:
            region |= _between(flow, region)
            inputs, outputs = _boundary(flow, region)
            if len(inputs) == 1 and len(outputs) == 1:
                continue
            scope, members = _enclosing_scope(flow, region)
            why = (f"they are kept with the rest of {scope or 'the model'}: alone they take {len(inputs)} "
                   f"tensor{'s' * (len(inputs) != 1)} and give {len(outputs)}, and a node takes one and gives one")
            for index in members - region:
                grown[index] = why
            region |= members
            grown.setdefault(min(region), why)
            changed = True
    return [Region(region, _reason(flow, region, core, grown)) for region in regions]


def _variable_readers(flow: _Flow, index: int) -> set[int]:
    """``index`` itself, or for a constant operation the first non-constant operations reading it."""
    if not flow.is_constant(index):
        return {index}
    found: set[int] = set()
    for name in flow.nodes[index].output:
        for reader in flow.readers.get(name, []):
            found |= _variable_readers(flow, reader)
    return found


def _joined_by_shapes(flow: _Flow, core: set[int]) -> list[set[int]]:
    """The operations of ``core`` in groups: one reading a shape another computes joins its group."""
    group = {index: {index} for index in core}
    for index in sorted(core):
        for name in flow.nodes[index].input:
            producer = flow.producer.get(name)
            if name in flow.shapes and producer in core and group[producer] is not group[index]:
                joined = group[producer] | group[index]
                for member in joined:
                    group[member] = joined
    return list({id(members): members for members in group.values()}.values())


def _merged(flow: _Flow, regions: list[set[int]]) -> tuple[list[set[int]], bool]:
    """Regions joined where they overlap (and whether any were joined)."""
    result: list[set[int]] = []
    joined = False
    for region in regions:
        for other in [other for other in result if other & region]:
            region = region | other
            result.remove(other)
            joined = True
        result.append(region)
    return result, joined


def _between(flow: _Flow, region: set[int]) -> set[int]:
    """The operations on a path from one of ``region`` to another (a Transpose between two Reshapes)."""
    after = _reach(region, lambda i: [r for name in flow.nodes[i].output for r in flow.readers.get(name, [])])
    before = _reach(region, lambda i: [flow.producer[name] for name in flow.nodes[i].input if name in flow.producer])
    return after & before


def _reach(start: set[int], step: Any) -> set[int]:
    seen: set[int] = set()
    todo = list(start)
    while todo:
        for nxt in step(todo.pop()):
            if nxt not in seen:
                seen.add(nxt)
                todo.append(nxt)
    return seen


def _boundary(flow: _Flow, region: set[int]) -> tuple[set[str], set[str]]:
    """The variable values ``region`` reads from outside, and the values it gives that are read outside."""
    given = {name for index in region for name in flow.nodes[index].output}
    inputs = {name for index in region for name in flow.variable_inputs(index) if name not in given}
    outputs = {name for name in given if name in flow.outputs
               or any(reader not in region for reader in flow.readers.get(name, []))}
    return inputs, outputs


def _enclosing_scope(flow: _Flow, region: set[int]) -> tuple[str, set[int]]:
    """The smallest source module holding ``region`` and more, and its non-constant operations ('' = all)."""
    scopes = [flow.scope(index).split(".") if flow.scope(index) else [] for index in region]
    common: list[str] = []
    for parts in zip(*scopes):
        if len(set(parts)) != 1:
            break
        common.append(parts[0])
    while True:
        scope = ".".join(common)
        members = {index for index in range(len(flow.nodes)) if not flow.is_constant(index)
                   and (not scope or flow.scope(index) == scope or flow.scope(index).startswith(scope + "."))}
        if members - region or not common:
            return scope, members
        common.pop()


def _reason(flow: _Flow, region: set[int], core: dict[int, str], grown: dict[int, str]) -> str:
    """One sentence naming the operations without a layer type and why, and why the region is larger."""
    whys: dict[str, list[str]] = {}
    for index in sorted(core.keys() & region):
        whys.setdefault(core[index], []).append(flow.nodes[index].op_type)
    parts = [f"{', '.join(dict.fromkeys(ops))}: {why}" for why, ops in whys.items()]
    ops = list(dict.fromkeys(op for found in whys.values() for op in found))
    subject = f"The ONNX operation{'s' * (len(ops) != 1)} {', '.join(ops)} ha{'ve' if len(ops) != 1 else 's'}"
    sentence = f"{subject} no layer type ({'; '.join(parts)})"
    extra = {grown[index] for index in region if index in grown}
    if extra:
        sentence += "; " + sorted(extra, key=len)[-1]
    return sentence + "."


def cut_regions(model: ModelProto, regions: list[Region], opset: int) -> ModelProto:
    """A copy of ``model`` with each region replaced by one ``DOMAIN`` operation holding it as JSON."""
    from onnx import shape_inference

    flow = _Flow(model)
    inferred = shape_inference.infer_shapes(model)
    types = _value_types(inferred)
    copy = ModelProto()
    copy.CopyFrom(model)
    replaced: dict[int, Any] = {}  # the region's last node -> the operation standing in for it
    removed: set[int] = set()
    for region in regions:
        members = region.nodes
        nodes = sorted(members | _constant_feeders(flow, members))
        (source,), (result,) = _boundary(flow, members)
        dtype, dims = types.get(source, (1, []))
        region_json = json.dumps(_region_description(flow, nodes, source, dtype, result, opset))
        operations = ", ".join(dict.fromkeys(flow.nodes[i].op_type for i in nodes))
        # Named like the exporter names a node: its module's scopes, then a word for what it is, so the node
        # is named after its module (stage2.1, or stage2.0.Module beside the module's other layers).
        name = _common_directory([flow.nodes[i].name for i in sorted(members)]) + "Module"
        replaced[max(members)] = helper.make_node(
            OPERATION, [source], [result], name=name, domain=DOMAIN, region=region_json, operations=operations,
            reason=region.reason, input_dims=[str(d) for d in dims])
        removed |= members
    del copy.graph.node[:]
    for index, node in enumerate(flow.nodes):
        if index in replaced:
            copy.graph.node.append(replaced[index])
        elif index not in removed:
            copy.graph.node.append(node)
    _drop_unread(copy)
    # ONNX's shape inference does not know the stand-in operations: it is told their results' types, which
    # onnx2torch reads after them (BatchNormalization's converter reads its input's rank).
    results = {node.output[0] for node in replaced.values()}
    copy.graph.value_info.extend(value for value in inferred.graph.value_info if value.name in results)
    copy.opset_import.append(helper.make_opsetid(DOMAIN, 1))
    return copy


def _constant_feeders(flow: _Flow, region: set[int]) -> set[int]:
    """The constant operations whose values the region reads (copied into it: a weight's Transpose)."""
    return _reach(region, lambda i: [flow.producer[name] for name in flow.nodes[i].input
                                     if name in flow.producer and flow.is_constant(flow.producer[name])])


def _common_directory(names: list[str]) -> str:
    """The scopes the exporter's node names share (``/features/features.1/``), '' for names without any."""
    split = [name.split("/")[:-1] for name in names if name.startswith("/")]
    if len(split) != len(names) or not split:
        return ""
    common: list[str] = []
    for parts in zip(*split):
        if len(set(parts)) != 1:
            break
        common.append(parts[0])
    return "/".join(common) + "/"


def _region_description(flow: _Flow, nodes: list[int], source: str, dtype: int, result: str,
                        opset: int) -> dict[str, Any]:
    """What an OnnxModule node keeps of the region (see ``region_model``)."""
    described, read = [], []
    for index in nodes:
        node = flow.nodes[index]
        try:
            attributes = {attribute.name: attribute_json(attribute) for attribute in node.attribute}
        except ValueError as error:
            raise ModelImportError(f"{node.op_type} {error}") from None
        described.append({"op_type": node.op_type, "domain": node.domain, "inputs": list(node.input),
                          "outputs": list(node.output), "attributes": attributes})
        read += [name for name in node.input if name in flow.initializers and name not in read]
    initializers = []
    for name in read:
        tensor = flow.initializers[name]
        entry: dict[str, Any] = {"name": name, "dtype": int(tensor.data_type), "shape": list(tensor.dims)}
        array = numpy_helper.to_array(tensor)
        if array.size <= SMALL_INITIALIZER:
            entry["values"] = array.ravel().tolist()
        initializers.append(entry)
    return {"opset": opset, "input": source, "input_dtype": dtype, "output": result, "nodes": described,
            "initializers": initializers}


def _value_types(inferred: ModelProto) -> dict[str, tuple[int, list[int | str]]]:
    """The element type and the dimensions after the batch of each value ONNX's shape inference knows.

    A dimension known only while running is named instead (onnx2torch reads the rank, not the sizes).
    """
    types: dict[str, tuple[int, list[int | str]]] = {}
    for value in [*inferred.graph.value_info, *inferred.graph.input]:
        tensor = value.type.tensor_type
        if value.type.HasField("tensor_type") and tensor.HasField("shape"):
            dims = [dim.dim_value if dim.HasField("dim_value") else f"d{i}" for i, dim in enumerate(tensor.shape.dim)]
            types[value.name] = (int(tensor.elem_type) or 1, dims[1:])
    return types


def _drop_unread(model: ModelProto) -> None:
    """Remove operations whose results nothing reads any more (constants that only a region read)."""
    graph = model.graph
    outputs = {value.name for value in graph.output}
    while True:
        read = {name for node in graph.node for name in node.input} | outputs
        unread = [node for node in graph.node if not any(name in read for name in node.output)]
        if not unread:
            return
        for node in unread:
            graph.node.remove(node)


def _convert_region(node: Any, graph: Any) -> Any:
    """onnx2torch's converter of a ``DOMAIN`` operation: the region's module with the file's weights."""
    import onnx2torch
    from onnx2torch.utils.common import OnnxMapping, OperationConverterResult

    attributes = {attribute.name: helper.get_attribute_value(attribute) for attribute in node.proto.attribute}
    region_json = attributes["region"].decode("utf-8")
    region = json.loads(region_json)
    weights = {entry["name"]: graph.initializers[entry["name"]].to_numpy() for entry in region["initializers"]
               if "values" not in entry}
    dims = [int(d) if d.isdigit() else d for d in (value.decode("utf-8") for value in attributes["input_dims"])]
    module = onnx2torch.convert(region_model(region, dims, weights))
    wrapped = RegionModule(module, region_json, attributes["operations"].decode("utf-8"),
                           attributes["reason"].decode("utf-8"))
    return OperationConverterResult(torch_module=wrapped,
                                    onnx_mapping=OnnxMapping(inputs=(node.input_values[0],),
                                                             outputs=node.output_values))


def register_converter() -> None:
    """Teach onnx2torch the ``DOMAIN`` operation (once per process: its registry is global)."""
    from onnx2torch.node_converters.registry import OperationDescription, _CONVERTER_REGISTRY, add_converter

    if OperationDescription(domain=DOMAIN, operation_type=OPERATION, version=1) not in _CONVERTER_REGISTRY:
        add_converter(operation_type=OPERATION, version=1, domain=DOMAIN)(_convert_region)


def map_region(conv: Any, node: Any, module: RegionModule) -> Any:
    """The Converter's mapper of a RegionModule: one OnnxModule node whose weights are the region's."""
    (arg,) = node.args
    input_shape = [int(d) for d in conv.shape(arg)[1:]]
    params = {"operations": module.operations, "onnx": module.region_json, "input_shape": input_shape,
              "output_shape": [int(d) for d in conv.shape(node)[1:]],
              "param_count": sum(p.numel() for p in module.module.parameters()),
              "macs": counted_macs(module.module, input_shape), "reason": module.reason}
    weights = {key: f"{node.target}.module.{key}" for key in module.module.state_dict()}
    return conv.add("OnnxModule", params, str(node.target), [conv.value(arg)], weights)

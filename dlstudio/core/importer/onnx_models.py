"""Import an ONNX file (opset 13 or newer) through onnx2torch into the same graph form.

onnx2torch turns the ONNX graph into a ``torch.fx`` GraphModule whose modules hold the file's initializers;
:func:`convert_module` then maps it like any other module, so ``ImportResult.key_map`` points the compiled
graph's weights at that module's ``state_dict`` (the initializers). onnx and onnx2torch are imported inside
the functions: they load only for an ONNX import.
"""

from __future__ import annotations

import re
import warnings
from pathlib import Path
from typing import Any

from dlstudio.core.importer.result import ImportResult, ModelImportError
from dlstudio.core.importer.torchvision_models import convert_module
from dlstudio.core.importer.user_modules import _data_source

MAX_ONNX_BYTES = 512 * 1024 * 1024
"""Files larger than this are refused before they are read (a classifier to edit is far smaller)."""

MIN_OPSET = 13
_MAX_DIM = 100_000  # the Input layer's limit on one dimension
_SLICE_WARNING = "Using a non-tuple sequence for multidimensional indexing"  # torch's words, silenced in _convert


def import_onnx(path: str | Path, *, refuse_larger_than: int = MAX_ONNX_BYTES) -> ImportResult:
    """Import the ONNX classifier at ``path`` as a project (graph and layout) with its weights.

    The file must be a valid ONNX model of opset 13 or newer with one input whose batch dimension is
    dynamic (or 1) and whose other dimensions are fixed; the input shape without the batch becomes the
    Input node's. The model must give one (N, C) tensor of class scores. Raises ModelImportError with one
    line for anything else, and (naming the first operation without a layer type; ``error.result.unmapped``
    lists them all) when the model cannot be mapped completely. ``result.source`` is onnx2torch's module,
    whose ``state_dict`` holds the initializers that ``result.load_into`` copies.
    """
    path = Path(path)
    name = path.name
    if not path.exists():
        raise ModelImportError(f"{path}: no such file")
    if not path.is_file():
        raise ModelImportError(f"{path} is not a file (give an .onnx file)")
    size = path.stat().st_size
    if size > refuse_larger_than:
        raise ModelImportError(f"{path} is {size / 2**20:,.0f} MB, larger than the {refuse_larger_than / 2**20:,.0f} "
                               "MB an ONNX import reads")
    model = _load(path)
    opset = _opset(model, name)
    if opset < MIN_OPSET:
        raise ModelImportError(f"{name} uses ONNX opset {opset}; only opset {MIN_OPSET} or newer is imported "
                               f"(export it again with opset_version={MIN_OPSET} or newer)")
    shape = _input_shape(model, name)
    _inline_identities(model)
    _constants_as_initializers(model)
    return _import_with_opaque_regions(model, name, shape, opset)


_OPAQUE_ROUNDS = 8  # mappings of one file at most: each finds operations without a layer type downstream


def _import_with_opaque_regions(model: Any, name: str, shape: tuple[int, ...], opset: int) -> ImportResult:
    """Map the file; what has no layer type becomes opaque "Module (ONNX)" nodes, found in rounds.

    The first round already keeps the operations that compute with shapes while running (onnx2torch's
    Slice of such bounds cannot be traced); each round keeps the operations the last one could not map
    (those downstream of them show only then). When a round cannot even trace the model, or names an
    operation it cannot place, the whole model becomes one node. Outside the regions, the operations that
    together are a Linear or a GELU are fused first (``onnx_fusions``).
    """
    from dlstudio.core.importer import onnx_fusions, onnx_opaque

    onnx_opaque.register_converter()
    onnx_fusions.register_converters()
    whole = set(range(len(model.graph.node)))
    reasons = onnx_opaque.shape_computations(model)
    for _ in range(_OPAQUE_ROUNDS):
        regions = onnx_opaque.plan_regions(model, reasons) if reasons else []
        try:
            cut = onnx_opaque.cut_regions(model, regions, opset) if regions else model
        except ModelImportError as error:
            raise ModelImportError(f"cannot import {name}: {error.message}") from None
        fused = onnx_fusions.fuse(cut)
        try:
            result = _convert(fused.model, name, shape, opset)
        except ModelImportError as error:
            if reasons.keys() == whole:
                raise
            reasons = dict.fromkeys(whole, f"cannot be followed by the import ({error.message})")
            continue
        if not result.unmapped:
            _name_by_source_path(result.project.graph, fused.model)
            return result
        if reasons.keys() == whole:
            break
        found = fused.original_indices(onnx_opaque.unmapped_operations(fused.model, result.unmapped) or {})
        found = {index: why for index, why in _original_indices(cut, model, found).items() if index not in reasons}
        if found:
            reasons.update(found)
        else:  # nothing new to keep (or nothing to place it on): the whole model is one node
            first = result.unmapped[0]
            reasons = dict.fromkeys(whole, f"cannot be mapped ({first.name}: {first.reason})")
    result.refuse_unmapped()
    return result


def _original_indices(cut: Any, model: Any, found: dict[int, str]) -> dict[int, str]:
    """Node indices of ``cut`` (the model with regions replaced) as indices of ``model`` (the same nodes)."""
    by_content = {node.SerializeToString(): index for index, node in enumerate(model.graph.node)}
    result: dict[int, str] = {}
    for index, why in found.items():
        original = by_content.get(cut.graph.node[index].SerializeToString())
        if original is not None:
            result[original] = why
    return result


def _convert(model: Any, name: str, shape: tuple[int, ...], opset: int) -> ImportResult:
    """One mapping of ``model`` through onnx2torch; the result lists what could not be mapped."""
    import onnx2torch

    from dlstudio.core.importer.fx_convert import onnx2torch_modules
    from dlstudio.core.importer.onnx_opaque import RegionModule, map_region

    with warnings.catch_warnings():
        # onnx2torch's Slice indexes a tensor with a list, which torch warns is deprecated, once per import
        # of a file with a Slice (its modules run while the import records shapes): the person importing
        # can do nothing about it, and it is no reason to stop.
        warnings.filterwarnings("ignore", message=_SLICE_WARNING, category=UserWarning)
        try:
            module = onnx2torch.convert(model)
        except Exception as error:  # noqa: BLE001 - onnx2torch raises NotImplementedError, KeyError, ... per operation
            raise ModelImportError(f"onnx2torch cannot convert {name}: {_one_line(error)}") from None
        scopes = _scope_paths(model)
        return convert_module(name, module.eval(), shape, None,
                              leaf_modules={**onnx2torch_modules(), RegionModule: map_region},
                              description=f"{name}, imported from ONNX (opset {opset})",
                              data_source=_data_source(shape),
                              module_paths=lambda node_paths: _source_module_paths(node_paths, scopes))


def _load(path: Path) -> Any:
    import onnx

    try:
        model = onnx.load(str(path))
    except Exception as error:  # noqa: BLE001 - protobuf raises its own DecodeError and others on a bad file
        raise ModelImportError(f"{path.name} is not an ONNX model: {_one_line(error)}") from None
    try:
        onnx.checker.check_model(model)
    except Exception as error:  # noqa: BLE001 - ValidationError, or an unknown-schema error
        raise ModelImportError(f"{path.name} is not a valid ONNX model: {_one_line(error)}") from None
    return model


def _opset(model: Any, name: str) -> int:
    versions = [entry.version for entry in model.opset_import if entry.domain in ("", "ai.onnx")]
    if not versions:
        raise ModelImportError(f"{name} uses no standard ONNX operator set")
    return int(versions[0])


def _input_shape(model: Any, name: str) -> tuple[int, ...]:
    """The shape of one sample of the model's single input: the batch dynamic or 1, the rest fixed."""
    initializers = {init.name for init in model.graph.initializer}
    inputs = [value for value in model.graph.input if value.name not in initializers]
    if len(inputs) != 1:
        raise ModelImportError(f"{name} takes {len(inputs)} inputs; only a model with one input is imported")
    (value,) = inputs
    tensor = value.type.tensor_type if value.type.HasField("tensor_type") else None
    if tensor is None or not tensor.HasField("shape"):
        raise ModelImportError(f"{name}: its input {value.name!r} has no tensor shape")
    dims = [dim.dim_value if dim.HasField("dim_value") else (dim.dim_param or "?") for dim in tensor.shape.dim]
    shown = "(" + ", ".join(str(d) for d in dims) + ")"
    if not 2 <= len(dims) <= 4:
        raise ModelImportError(f"{name}: its input has shape {shown}; only (N, features), (N, C, L) and "
                               "(N, C, H, W) are imported")
    batch, *sample = dims
    if isinstance(batch, int) and batch != 1:
        raise ModelImportError(f"{name}: its input has a fixed batch of {batch} {shown}; only a dynamic batch or a "
                               "batch of 1 is imported")
    if not all(isinstance(d, int) and 1 <= d <= _MAX_DIM for d in sample):
        raise ModelImportError(f"{name}: its input has shape {shown}; every dimension but the batch must be a fixed "
                               f"size of 1 to {_MAX_DIM:,}")
    return tuple(int(d) for d in sample)


def _inline_identities(model: Any) -> None:
    """Replace ``Identity(initializer)`` nodes by copies of the initializer under the output's name.

    torch's exporter writes equal weights once and passes them on through Identity nodes (a freshly built
    BatchNorm's ones and zeros, for one); onnx2torch keeps a BatchNormalization fed so as a functional
    operation, whereas one fed by initializers becomes nn.BatchNorm2d, which maps.
    """
    import onnx

    graph = model.graph
    initializers = {init.name: init for init in graph.initializer}
    outputs = {value.name for value in graph.output}
    for node in list(graph.node):
        if (node.op_type == "Identity" and node.domain in ("", "ai.onnx") and node.input[0] in initializers
                and node.output[0] not in outputs):
            copy = onnx.TensorProto()
            copy.CopyFrom(initializers[node.input[0]])
            copy.name = node.output[0]
            graph.initializer.append(copy)
            initializers[copy.name] = copy
            graph.node.remove(node)


def _constants_as_initializers(model: Any) -> None:
    """Replace ``Constant`` nodes holding a tensor by initializers of the same name.

    torch's exporter writes the bounds of a clamp (Clip's min and max) and the operands of arithmetic as
    Constant nodes; onnx2torch reads Clip's bounds only from initializers (ReLU6 is a Clip from 0 to 6),
    and an initializer becomes a buffer of the module, whose value the import can map (``x - mean``).
    """
    from onnx import helper, numpy_helper

    graph = model.graph
    outputs = {value.name for value in graph.output}
    values = {init.name: init for init in graph.initializer}
    for node in list(graph.node):  # in order: a Cast of a constant comes after the constant
        if node.domain not in ("", "ai.onnx") or node.output[0] in outputs:
            continue
        attributes = {attribute.name: attribute for attribute in node.attribute}
        if node.op_type == "Constant" and set(attributes) == {"value"}:
            tensor = numpy_helper.to_array(attributes["value"].t)
        elif node.op_type == "Cast" and node.input[0] in values and set(attributes) == {"to"}:
            # The exporter casts a clamp's integer bounds to float: the cast constant is a constant too.
            dtype = helper.tensor_dtype_to_np_dtype(attributes["to"].i)
            tensor = numpy_helper.to_array(values[node.input[0]]).astype(dtype)
        else:
            continue  # value_float, value_ints, ... stay Constant nodes (onnx2torch reads those itself)
        initializer = numpy_helper.from_array(tensor, node.output[0])
        graph.initializer.append(initializer)
        values[initializer.name] = initializer
        graph.node.remove(node)


def _name_by_source_path(graph: Any, model: Any) -> None:
    """Name each node by its source's module path, as a torchvision import does (``layer1.0.conv1``).

    A node is named after the onnx2torch module it came from (``layer1/layer1/0/conv1/Conv``, the ONNX
    node's name); the exporter's scopes give the module path, which names the node when it is the only one
    of that module, else with the operation after it (``layer1.0.Add``). A file without scopes keeps its
    names.
    """
    from dlstudio.core.graph import MAX_NAME_LENGTH
    from dlstudio.core.importer.grouping import onnx_scope_path
    from dlstudio.core.importer.onnx_module_names import onnx2torch_module_names

    # onnx2torch's module name -> (the source module path, the operation); keyed as the import named the
    # nodes, within the length of a node name (a long module name was cut short there).
    sources = {module[:MAX_NAME_LENGTH]: (onnx_scope_path(node.name), node.name.split("/")[-1])
               for module, node in zip(onnx2torch_module_names(model), model.graph.node) if node.name.startswith("/")}
    named = []
    for node in graph:
        module, _, word = node.name.rpartition(".")
        if node.name in sources:
            named.append((node.id, sources[node.name]))
        elif module in sources:  # a function in an onnx2torch module's forward (``...Concat.cat``)
            named.append((node.id, (sources[module][0], word)))
    per_path: dict[str, int] = {}
    for _, (path, _) in named:
        per_path[path] = per_path.get(path, 0) + 1
    # A module with submodules (layer1.0) computes its own operations between them: those get a word more.
    composite = {".".join(path.split(".")[:end]) for _, (path, _) in named for end in range(1, path.count(".") + 1)}
    for node_id, (path, operation) in named:
        alone = path and per_path[path] == 1 and path not in composite
        wanted = path if alone else ".".join(filter(None, (path, operation)))
        if wanted and wanted != graph.node(node_id).name:
            graph.rename(node_id, graph.unique_name(wanted))


def _scope_paths(model: Any) -> dict[str, str]:
    """The source module path of each module onnx2torch makes, by its name (see ``onnx_scope_path``)."""
    from dlstudio.core.importer.grouping import onnx_scope_path
    from dlstudio.core.importer.onnx_module_names import onnx2torch_module_names

    return {module: onnx_scope_path(node.name)
            for module, node in zip(onnx2torch_module_names(model), model.graph.node)}


def _source_module_paths(node_paths: dict[str, str], scopes: dict[str, str]) -> tuple[dict[str, str], dict[str, Any]]:
    """The source's module path of each node (from its onnx2torch module's name) and the modules on them.

    The exporter's names say nothing of module types. A module whose children are numbered (``layer1.0``,
    ``layer1.1``) is taken for a container (``nn.Sequential``), so its children are the blocks; modules
    named alike (``layer1.0`` and ``layer2.0``, ``denseblock1`` and ``denseblock2``) are taken for one type,
    so that they stay blocks as repeated modules do (see ``plan_blocks``).
    """
    from dlstudio.core.importer.grouping import ModuleKind

    source = {node_id: scopes.get(path, "") for node_id, path in node_paths.items()}
    children: dict[str, set[str]] = {}
    for path in source.values():
        parts = path.split(".") if path else []
        for end in range(1, len(parts)):
            children.setdefault(".".join(parts[:end]), set()).add(parts[end])
    modules = {prefix: ModuleKind(_kind_of_name(prefix), container=all(child.isdigit() for child in names))
               for prefix, names in children.items()}
    return source, modules


def _kind_of_name(path: str) -> str:
    """A stand-in for the module type of ``path``: its name without a number (``denseblock1`` -> ``denseblock``)."""
    name = path.rpartition(".")[2]
    return re.sub(r"\d+$", "", name) or "#"


def _one_line(error: BaseException) -> str:
    return " ".join(str(error).split()) or type(error).__name__

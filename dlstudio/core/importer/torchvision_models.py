"""Import a torchvision classification architecture by name (random weights; nothing is downloaded).

:func:`convert_module` (trace, map, check, lay out) is shared with the import of a person's own module class.
"""

from __future__ import annotations

import contextlib
import io
from collections.abc import Callable, Sequence
from typing import Any

from dlstudio.core.importer.opaque_macs import counted_macs
from dlstudio.core.importer.result import ImportResult, ModelImportError, Unmapped
from dlstudio.core.layers.spec import format_shape

INPUT_SHAPE = (3, 224, 224)
"""The Input node's shape: one ImageNet-sized colour image."""


def classification_models() -> list[str]:
    """The names of torchvision's image classification architectures."""
    import torchvision

    return sorted(torchvision.models.list_models(module=torchvision.models))


def trace_torchvision(name: str, *, num_classes: int | None = None, opaque: bool = False) -> ImportResult:
    """Build, trace and map ``name``; the result lists what could not be mapped instead of raising.

    With ``opaque``, a submodule that has no layer type (its class, or a function in its forward) becomes
    one opaque "Module (torchvision)" node that keeps the submodule's weights (issue 12); a module that
    cannot be kept whole (it takes several inputs or gives several outputs, as maxvit_t's window
    partitions) gives way to the smallest module around it that can; and when the model's own forward
    computes what no layer type expresses (vit_b_16's class token and reshapes), or torch.fx cannot trace
    it, the whole model becomes one such node. Nothing stays unmapped then.

    Raises ModelImportError only when there is nothing to map: an unknown name, a model that is not a
    classifier, or one that cannot be built (or, without ``opaque``, traced).
    """
    import torchvision
    from torchvision.models import shufflenetv2

    from dlstudio.core.importer.fx_convert import channel_shuffle_mapper, torchvision_modules

    names = classification_models()
    if name not in names:
        if name in torchvision.models.list_models():
            raise ModelImportError(f"{name} is not an image classification model; only classifiers can be "
                                   "imported (e.g. resnet18, mobilenet_v2)")
        raise ModelImportError(f"unknown torchvision model {name!r} (e.g. resnet18, mobilenet_v2, efficientnet_b0; "
                               f"{len(names)} classifiers in all)")
    if num_classes is not None and not 2 <= num_classes <= 100_000:
        raise ModelImportError(f"the number of classes must be 2 to 100000, got {num_classes}")
    kwargs: dict[str, Any] = {} if num_classes is None else {"num_classes": num_classes}
    if name in ("inception_v3", "googlenet"):
        kwargs["aux_logits"] = False  # their auxiliary heads only train; the imported graph has one output
        kwargs["init_weights"] = True  # torchvision's own initialization, said explicitly (else it warns)
    try:
        model = torchvision.models.get_model(name, weights=None, **kwargs).eval()
    except (TypeError, ValueError) as error:
        raise ModelImportError(f"torchvision cannot build {name}: {error}") from None
    classes = num_classes if num_classes is not None else _class_count(model)

    return convert_module(name, model, INPUT_SHAPE, classes, leaf_modules=torchvision_modules(),
                          autowrap_functions=(shufflenetv2.channel_shuffle,),
                          leaf_functions={shufflenetv2.channel_shuffle: channel_shuffle_mapper()},
                          description=f"torchvision {name}, imported with random weights", data_source="folder",
                          opaque_source=(name, classes) if opaque else None)


def convert_module(name: str, model: Any, input_shape: tuple[int, ...], classes: int | None, *,
                   description: str, data_source: str, leaf_modules: dict[type, Any] | None = None,
                   autowrap_functions: tuple[Any, ...] = (), leaf_functions: dict[Any, Any] | None = None,
                   opaque_source: tuple[str, int] | None = None,
                   module_paths: Callable[[dict[str, str]], tuple[dict[str, str], dict[str, Any]]] | None = None,
                   ) -> ImportResult:
    """Trace ``model`` (eval mode) with torch.fx and map it; the result lists what could not be mapped.

    Shared by every importer of an ``nn.Module``. ``classes`` sizes the classification Output; None takes
    it from what the model gives, which must be one (N, C) tensor of class scores (ModelImportError
    otherwise, saying what it gives). Raises ModelImportError when the model cannot be traced or run on
    an input of ``input_shape``.

    ``opaque_source`` (torchvision's model name and num_classes, only for a torchvision model, which the
    opaque node rebuilds) keeps each unmappable submodule whole as one TorchvisionModule node: a module
    whose forward uses functions without a layer type is traced again as a leaf (at most a few rounds).

    The project is grouped into collapsed blocks by the model's module hierarchy (see
    :mod:`dlstudio.core.importer.grouping`). ``module_paths`` turns the converter's module path of each node
    into the source's and describes the source's modules, for a model whose module names are not the
    source's (onnx2torch's); by default the paths and module types are ``model``'s own.
    """
    leaf_modules = leaf_modules or {}
    reasons: dict[str, str] = {}  # module path kept whole -> why
    for _ in range(_OPAQUE_ROUNDS):
        try:
            converter, model_classes = _trace_and_map(name, model, input_shape, classes, leaf_modules,
                                                      autowrap_functions, leaf_functions, opaque_source, reasons)
        except _Untraceable as error:
            if opaque_source is None:
                raise ModelImportError(error.message) from None
            return _whole_model(name, model, input_shape, opaque_source, description, data_source,
                                f"torch.fx cannot trace its forward ({error.detail})")
        if opaque_source is None:
            break
        wanted = _modules_to_keep_whole(model, converter, reasons)
        if "" in wanted:
            return _whole_model(name, model, input_shape, opaque_source, description, data_source, wanted[""])
        if not wanted:
            break
        reasons = _outermost({**reasons, **wanted})
    classes = model_classes
    param_count = sum(p.numel() for p in model.parameters())
    result = ImportResult(name, None, list(converter.unmapped), dict(converter.key_map), model, classes,
                          param_count, dict(converter.derived))
    if not result.unmapped:
        _check_shapes(result, converter.graph, converter.constant_nodes)
    if result.unmapped:
        if opaque_source is not None:  # what is left has no smaller module to keep whole
            first = result.unmapped[0]
            return _whole_model(name, model, input_shape, opaque_source, description, data_source,
                                f"{first.name} ({first.operation}) has no layer type: {first.reason}")
        return result
    if module_paths is None:
        node_paths, modules = converter.node_paths, module_kinds(model)
    else:
        node_paths, modules = module_paths(converter.node_paths)
    result.project = _project(converter.graph, description, data_source, node_paths, modules)
    # Constants of the source that became weights (a normalization's mean and std) stay as they are.
    result.project.frozen.set(converter.constant_nodes, True)
    return result


_OPAQUE_ROUNDS = 8  # traces of one model at most: modules found to use unmappable functions become leaves


class _Untraceable(ModelImportError):
    """torch.fx cannot trace the model (``detail`` says where, in one line)."""

    def __init__(self, message: str, detail: str) -> None:
        super().__init__(message)
        self.detail = detail


def _modules_to_keep_whole(model: Any, converter: Any, reasons: dict[str, str]) -> dict[str, str]:
    """Module paths to keep whole in the next trace, with why ('' is the model itself: keep it all).

    A module whose forward computes with functions that have no layer type is kept whole; one that cannot
    be (it takes several inputs or gives several tensors) gives way to the smallest module around it that is
    called (a ModuleList or ModuleDict is never called itself), up to the model.
    """
    wanted: dict[str, str] = {}
    for path, ops in converter.unmapped_scopes.items():
        if path in reasons:
            continue
        what = f"computes with {', '.join(dict.fromkeys(ops))} in its forward, which no layer type expresses"
        if path:
            wanted[path] = f"{type(model.get_submodule(path)).__qualname__} {what}"
        else:
            wanted[""] = f"it {what}"
    for path, why in converter.unkeepable.items():
        inner = f"{path} ({type(model.get_submodule(path)).__qualname__})"
        parent = path
        while parent:
            parent = parent.rpartition(".")[0]
            module = model.get_submodule(parent)
            if type(module).__name__ not in ("ModuleList", "ModuleDict"):
                break
        detail = f"{inner}, which has no layer type and cannot be kept whole on its own: {why}"
        if parent:
            wanted.setdefault(parent, f"{type(model.get_submodule(parent)).__qualname__} holds {detail}")
        else:
            wanted.setdefault("", f"it holds {detail}")
    return wanted


def _outermost(reasons: dict[str, str]) -> dict[str, str]:
    """The paths of ``reasons`` that are not inside another (a module kept whole hides its submodules)."""
    return {path: why for path, why in reasons.items()
            if not any(path.startswith(other + ".") for other in reasons if other != path)}


def _whole_model(name: str, model: Any, input_shape: tuple[int, ...], opaque_source: tuple[str, int],
                 description: str, data_source: str, reason: str) -> ImportResult:
    """The last resort: the whole model as one opaque node between the Input and the Output (issue 12).

    It keeps every weight under its own key and computes what the model computes; the node shows the shapes
    and says why nothing smaller could be kept.
    """
    import torch

    from dlstudio.core.graph import Graph

    with torch.no_grad():
        out = model(torch.zeros(1, *input_shape))
    if not isinstance(out, torch.Tensor) or out.dim() != 2:
        raise ModelImportError(f"cannot import {name}: it does not give one (N, classes) tensor of class scores")
    model_name, classes = opaque_source
    param_count = sum(p.numel() for p in model.parameters())
    sentence = f"The whole model is one node: {reason}"
    graph = Graph()
    graph.add_node("Input", {"shape": list(input_shape)}, name="input", node_id="input")
    graph.add_node("TorchvisionModule", {
        "model": model_name, "num_classes": classes, "path": "", "input_shape": list(input_shape),
        "output_shape": [int(out.shape[1])], "param_count": param_count, "macs": counted_macs(model, input_shape),
        "reason": sentence if sentence.endswith(".") else sentence + "."}, name=name, node_id="model")
    graph.add_node("Output", {"task": "classification", "classes": int(out.shape[1])}, name="output",
                   node_id="output")
    graph.connect("input", "out", "model", "in")
    graph.connect("model", "out", "output", "in")
    key_map = {f"model.{key}": key for key in model.state_dict()}
    result = ImportResult(name, None, [], key_map, model, int(out.shape[1]), param_count)
    _check_shapes(result, graph)
    if not result.unmapped:
        result.project = _project(graph, description, data_source, {}, {})
    return result


def _trace_and_map(name: str, model: Any, input_shape: tuple[int, ...], classes: int | None,
                   leaf_modules: dict[type, Any], autowrap_functions: tuple[Any, ...],
                   leaf_functions: dict[Any, Any] | None, opaque_source: tuple[str, int] | None,
                   reasons: dict[str, str]) -> tuple[Any, int]:
    """Trace (keeping the modules of ``reasons`` whole), record shapes and map; the converter and classes."""
    import torch
    from torch import fx
    from torch.fx.passes.shape_prop import ShapeProp

    from dlstudio.core.importer.fx_convert import Converter

    tracer = _Tracer(tuple(leaf_modules), autowrap_functions=autowrap_functions, leaf_paths=frozenset(reasons))
    try:
        traced = fx.GraphModule(model, tracer.trace(model))
    except Exception as error:  # noqa: BLE001 - fx raises anything a forward does on proxies
        raise _Untraceable(f"{name} cannot be traced by torch.fx: {_one_line(error)}", _one_line(error)) from None
    try:
        # ShapeProp prints the traceback of a failing node itself; the message below says what failed.
        with torch.no_grad(), contextlib.redirect_stderr(io.StringIO()):
            ShapeProp(traced).propagate(torch.zeros(1, *input_shape))
    except Exception as error:  # noqa: BLE001 - the forward is the model's own code
        cause = error.__cause__ or error
        raise ModelImportError(f"{name} fails on an input of shape {format_shape(input_shape)}: "
                               f"{_one_line(cause)}") from None
    if classes is None:
        classes = _output_classes(name, traced)

    converter = Converter(traced, input_shape, classes, leaf_functions=leaf_functions, leaf_modules=leaf_modules,
                          opaque_source=opaque_source, opaque_reasons=reasons)
    converter.run()
    return converter, classes


def import_torchvision(name: str, *, num_classes: int | None = None, opaque: bool = False) -> ImportResult:
    """Import the torchvision classifier ``name`` as a project (graph and layout) with random weights.

    ``num_classes`` sizes the classification head (default: the architecture's 1000). Raises
    ModelImportError (one line naming the first operation that has no layer type; ``error.result.unmapped``
    lists them all) when the model cannot be mapped completely. With ``opaque``, a submodule that has no
    layer type becomes one opaque "Module (torchvision)" node that keeps its weights instead, up to the
    whole model as one node (see :func:`trace_torchvision`): a torchvision classifier is never refused.
    """
    result = trace_torchvision(name, num_classes=num_classes, opaque=opaque)
    result.refuse_unmapped()
    return result


class _Tracer:
    """torch.fx's Tracer, with torchvision's own leaf modules kept whole (built lazily: torch loads late)."""

    def __new__(cls, leaves: tuple[type, ...], autowrap_functions: tuple[Any, ...],
                leaf_paths: frozenset[str] = frozenset()) -> Any:
        from torch import fx

        class Tracer(fx.Tracer):
            def is_leaf_module(self, m: Any, module_qualified_name: str) -> bool:
                return (isinstance(m, leaves) or module_qualified_name in leaf_paths
                        or super().is_leaf_module(m, module_qualified_name))

        return Tracer(autowrap_functions=autowrap_functions)


def _class_count(model: Any) -> int:
    from torch import nn

    last = [m for m in model.modules() if isinstance(m, (nn.Linear, nn.Conv2d))][-1]
    return int(last.out_features if isinstance(last, nn.Linear) else last.out_channels)


def _check_shapes(result: ImportResult, graph: Any, constant_nodes: Sequence[str] = ()) -> None:
    """Shape inference must accept every node and count the source's parameters.

    ``constant_nodes`` hold constants of the source as weights (not parameters there): they are not counted.
    """
    from dlstudio.core.shapes import infer_graph

    infos = infer_graph(graph)
    for node_id, info in infos.items():
        if info.error is not None:
            node = graph.node(node_id)
            result.unmapped.append(Unmapped(node.name, node.type, info.error.message))
    if not result.unmapped:
        counted = sum(info.params for node_id, info in infos.items() if node_id not in constant_nodes)
        if counted != result.param_count:
            result.unmapped.append(Unmapped(result.name, "parameters", f"the graph has {counted:,} parameters, "
                                            f"the source model {result.param_count:,}"))


def _output_classes(name: str, traced: Any) -> int:
    """The number of classes of a model that gives one (N, C) tensor; ModelImportError for anything else."""
    from torch import fx

    (output,) = [node for node in traced.graph.nodes if node.op == "output"]
    (value,) = output.args
    later = "importing a model for reconstruction or other tasks comes later"
    if not isinstance(value, fx.Node):
        count = len(value) if isinstance(value, (tuple, list, dict)) else 0
        what = f"{count} values" if count else repr(value)
        raise ModelImportError(f"cannot import {name}: it returns {what}, not one (N, classes) tensor of class "
                               f"scores ({later})")
    meta = value.meta.get("tensor_meta")
    shape = tuple(meta.shape) if meta is not None and hasattr(meta, "shape") else None
    if shape is None:
        raise ModelImportError(f"cannot import {name}: it does not return one tensor, so it gives no (N, classes) "
                               f"class scores ({later})")
    if len(shape) != 2 or shape[1] < 2:
        raise ModelImportError(f"cannot import {name}: it gives {format_shape(shape[1:])}, not (N, classes) class "
                               f"scores with 2 classes or more ({later})")
    return int(shape[1])


def _one_line(error: BaseException) -> str:
    return " ".join(str(error).split()) or type(error).__name__


def _project(graph: Any, description: str, data_source: str, node_paths: dict[str, str],
             modules: dict[str, Any]) -> Any:
    """The project of an imported graph: grouped into collapsed blocks by module, laid out collapsed."""
    from dlstudio.core.importer.grouping import collapsed_layout, plan_blocks
    from dlstudio.core.layout import Layout
    from dlstudio.core.project.model import Project
    from dlstudio.core.project.settings import DATA_SETTINGS, default_training_settings, validate_settings

    order = graph.topological_order()
    blocks = plan_blocks(order, node_paths, modules, taken_ids=graph.nodes)
    positions = collapsed_layout(order, [(e.src, e.dst) for e in graph.edges], blocks)
    data = validate_settings(DATA_SETTINGS, {"source": data_source}, "data")
    project = Project(graph=graph, layout=Layout(positions), data=data, training=default_training_settings(),
                      description=description)
    for block in blocks:
        project.blocks.group(block.nodes, block.name, block_id=block.id, collapsed=True)
    return project


def module_kinds(model: Any) -> dict[str, Any]:
    """The grouping's view of an ``nn.Module``'s submodules by path: type name, and plain container or not."""
    from torch import nn

    from dlstudio.core.importer.grouping import ModuleKind

    containers = (nn.Sequential, nn.ModuleList, nn.ModuleDict)
    return {path: ModuleKind(type(module).__qualname__, type(module) in containers)
            for path, module in model.named_modules() if path}

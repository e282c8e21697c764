"""Import a torchvision classification architecture by name (random weights; nothing is downloaded)."""

from __future__ import annotations

from typing import Any

from dlstudio.core.importer.result import ImportResult, ModelImportError, Unmapped

INPUT_SHAPE = (3, 224, 224)
"""The Input node's shape: one ImageNet-sized colour image."""

_VIEWPORT = (1600.0, 1000.0)  # the window the first layout is wrapped for (the canvas re-wraps to its own)


def classification_models() -> list[str]:
    """The names of torchvision's image classification architectures."""
    import torchvision

    return sorted(torchvision.models.list_models(module=torchvision.models))


def trace_torchvision(name: str, *, num_classes: int | None = None) -> ImportResult:
    """Build, trace and map ``name``; the result lists what could not be mapped instead of raising.

    Raises ModelImportError only when there is nothing to map: an unknown name, a model that is not a
    classifier, or one that cannot be built or traced.
    """
    import torch
    import torchvision
    from torch import fx
    from torch.fx.passes.shape_prop import ShapeProp
    from torchvision.models import shufflenetv2

    from dlstudio.core.importer.fx_convert import Converter, channel_shuffle_mapper, torchvision_modules

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

    leaf_modules = torchvision_modules()
    tracer = _Tracer(tuple(leaf_modules), autowrap_functions=(shufflenetv2.channel_shuffle,))
    try:
        traced = fx.GraphModule(model, tracer.trace(model))
    except Exception as error:  # noqa: BLE001 - fx raises anything a forward does on proxies
        raise ModelImportError(f"{name} cannot be traced by torch.fx: {' '.join(str(error).split())}") from None
    with torch.no_grad():
        ShapeProp(traced).propagate(torch.zeros(1, *INPUT_SHAPE))

    converter = Converter(traced, INPUT_SHAPE, classes, leaf_functions={shufflenetv2.channel_shuffle:
                                                                         channel_shuffle_mapper()},
                          leaf_modules=leaf_modules)
    converter.run()
    param_count = sum(p.numel() for p in model.parameters())
    result = ImportResult(name, None, list(converter.unmapped), dict(converter.key_map), model, classes,
                          param_count)
    if result.unmapped:
        return result
    graph = converter.graph
    _check_shapes(result, graph)
    if result.unmapped:
        return result
    result.project = _project(name, graph)
    return result


def import_torchvision(name: str, *, num_classes: int | None = None) -> ImportResult:
    """Import the torchvision classifier ``name`` as a project (graph and layout) with random weights.

    ``num_classes`` sizes the classification head (default: the architecture's 1000). Raises
    ModelImportError (one line naming the first operation that has no layer type; ``error.result.unmapped``
    lists them all) when the model cannot be mapped completely. Such operations will become opaque
    "Module" nodes that keep their weights in a later step.
    """
    result = trace_torchvision(name, num_classes=num_classes)
    if result.unmapped:
        first = result.unmapped[0]
        more = f" (and {len(result.unmapped) - 1} more)" if len(result.unmapped) > 1 else ""
        raise ModelImportError(f"cannot import {name}: {first.name} ({first.operation}) has no layer type: "
                               f"{first.reason}{more}", result)
    return result


class _Tracer:
    """torch.fx's Tracer, with torchvision's own leaf modules kept whole (built lazily: torch loads late)."""

    def __new__(cls, leaves: tuple[type, ...], autowrap_functions: tuple[Any, ...]) -> Any:
        from torch import fx

        class Tracer(fx.Tracer):
            def is_leaf_module(self, m: Any, module_qualified_name: str) -> bool:
                return isinstance(m, leaves) or super().is_leaf_module(m, module_qualified_name)

        return Tracer(autowrap_functions=autowrap_functions)


def _class_count(model: Any) -> int:
    from torch import nn

    last = [m for m in model.modules() if isinstance(m, (nn.Linear, nn.Conv2d))][-1]
    return int(last.out_features if isinstance(last, nn.Linear) else last.out_channels)


def _check_shapes(result: ImportResult, graph: Any) -> None:
    """Shape inference must accept every node and count the source's parameters."""
    from dlstudio.core.shapes import infer_graph

    infos = infer_graph(graph)
    for node_id, info in infos.items():
        if info.error is not None:
            node = graph.node(node_id)
            result.unmapped.append(Unmapped(node.name, node.type, info.error.message))
    if not result.unmapped:
        counted = sum(info.params for info in infos.values())
        if counted != result.param_count:
            result.unmapped.append(Unmapped(result.name, "parameters", f"the graph has {counted:,} parameters, "
                                            f"the source model {result.param_count:,}"))


def _project(name: str, graph: Any) -> Any:
    from dlstudio.core.autolayout import layered_layout
    from dlstudio.core.layout import Layout
    from dlstudio.core.project.model import Project
    from dlstudio.core.project.settings import DATA_SETTINGS, default_training_settings, validate_settings

    positions = layered_layout(graph.topological_order(), [(e.src, e.dst) for e in graph.edges],
                               viewport=_VIEWPORT)
    data = validate_settings(DATA_SETTINGS, {"source": "folder"}, "data")
    return Project(graph=graph, layout=Layout(positions), data=data, training=default_training_settings(),
                   description=f"torchvision {name}, imported with random weights")

"""Opaque modules of an imported network: a submodule of a torchvision model that no layer type expresses.

An import keeps such a submodule whole as one "Module (torchvision)" node (issue 12). The node records
where the module comes from (the torchvision model and its ``num_classes``, and the submodule's path), the
shapes it was traced with, its parameter count and why it is opaque, so shape inference stays torch-free:
``infer`` only checks that the input is the traced one. ``build`` constructs the whole source model with
``torchvision.models.get_model(model, weights=None, num_classes=...)`` and takes the submodule; an import
then loads the source's weights into it (its ``state_dict`` keys are the submodule's own).
"""

from __future__ import annotations

import copy
from collections.abc import Callable
from typing import Any

from dlstudio.core.errors import LayerShapeError
from dlstudio.core.layers.spec import (
    INT, INTS, STR, Inferred, LayerCode, LayerSpec, ParamSpec, Shape, code_literal, format_shape,
)

_IMPORT = ("import torchvision  # imported (opaque) modules are built from torchvision models: running this "
           "file needs torchvision")
_MAX_RANK = 8  # dimensions after the batch an opaque module's input or output may have


def recorded_infer(recorded_for: str, receives: str) -> Callable[[list[Shape], dict[str, Any]], Inferred]:
    """Shape inference of an opaque imported node, torch-free: the input must be the shape recorded at
    import ("``recorded_for`` (3, 224, 224); ``receives`` (1, 28, 28)" otherwise), and the output shape,
    parameters and MACs are the recorded ones."""

    def infer(in_shapes: list[Shape], params: dict[str, Any]) -> Inferred:
        (shape,) = in_shapes
        recorded = tuple(params["input_shape"])
        if tuple(shape) != recorded:
            raise LayerShapeError(f"{recorded_for} {format_shape(recorded)}; {receives} {format_shape(shape)}")
        return Inferred((tuple(params["output_shape"]),), params=params["param_count"], macs=params["macs"])

    return infer


_infer = recorded_infer("this imported module was traced for", "it receives")


# Building the source model is the expensive part (a whole swin_t for one attention block): the last
# source built is kept, and each node gets a deep copy of its submodule, so a graph with many opaque nodes
# of one model builds that model once and no two compiled graphs share a module.
_LAST_SOURCE: dict[tuple[str, int], Any] = {}


def source_model(model: str, num_classes: int) -> Any:
    """torchvision's ``model`` with random weights and ``num_classes`` outputs (the last one is reused)."""
    import torchvision

    key = (model, num_classes)
    if key not in _LAST_SOURCE:
        _LAST_SOURCE.clear()
        _LAST_SOURCE[key] = torchvision.models.get_model(model, weights=None, num_classes=num_classes).eval()
    return _LAST_SOURCE[key]


def _build(params: dict[str, Any], in_shapes: list[Shape]) -> Any:
    source = source_model(params["model"], params["num_classes"])
    return copy.deepcopy(source.get_submodule(params["path"]))


def _code(params: dict[str, Any], in_shapes: list[Shape]) -> str:
    return (f"torchvision.models.get_model({code_literal(params['model'])}, weights=None, "
            f"num_classes={params['num_classes']}).get_submodule({code_literal(params['path'])})")


_HELP = ("A submodule of an imported torchvision model that no layer type expresses, kept whole with its "
         "weights. It takes the input shape it was traced with and gives the output shape recorded then; "
         "building it builds the whole torchvision model (random weights) and takes the submodule, and the "
         "exported Python file needs torchvision for it.")

SPECS = [
    LayerSpec(
        "TorchvisionModule", "Module (torchvision)", "Imported", _HELP,
        (
            ParamSpec("model", STR, "mobilenet_v3_small", "The torchvision model the module belongs to.",
                      recorded=True),
            ParamSpec("num_classes", INT, 1000, "The source model's number of classes (its constructor's "
                      "num_classes).", min=2, max=100_000, label="classes", recorded=True),
            ParamSpec("path", STR, "features.0", "The submodule's path in the source model, e.g. "
                      "features.1.0.attn.", recorded=True),
            ParamSpec("input_shape", INTS, [3, 224, 224], "The input shape the module was traced with "
                      "(without the batch).", min=1, max_len=_MAX_RANK, label="input shape", recorded=True),
            ParamSpec("output_shape", INTS, [16, 112, 112], "The output shape recorded at import "
                      "(without the batch).", min=1, max_len=_MAX_RANK, label="output shape", recorded=True),
            ParamSpec("param_count", INT, 464, "The module's number of parameters.", min=0, label="parameters",
                      recorded=True),
            ParamSpec("macs", INT, 0, "Multiply-accumulates of one sample, counted at import by torch's flop "
                      "counter (0: not counted).", min=0, label="MACs", recorded=True, hidden=True),
            ParamSpec("reason", STR, "", "Why the module is opaque: what in it has no layer type.", recorded=True),
        ),
        _infer, _build, key_params=("path",), id_stem="module", code=LayerCode(module=_code, imports=(_IMPORT,), packages=("torchvision",)),
        in_palette=False,
    ),
]

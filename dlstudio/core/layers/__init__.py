"""The layer registry: every layer type dlstudio knows, by stable type id.

The palette, the inspector, shape inference, the compiler and the exporters
read these specs; nothing else in the code base branches on a layer type.
"""

from __future__ import annotations

from dlstudio.core.errors import GraphError
from dlstudio.core.text import quote
from dlstudio.core.layers import (
    activations, conv, dense, imported, imported_onnx, io, merges, normalization, pooling, structure,
)
from dlstudio.core.layers.spec import INT, LayerSpec, ParamSpec, Shape, format_shape

CATEGORIES = ("Input & Output", "Dense", "Convolution", "Pooling", "Normalization", "Regularization",
              "Activation", "Merge", "Shape", "Imported")

_SPECS: dict[str, LayerSpec] = {}
_ALIASES: dict[str, str] = {}


def register(spec: LayerSpec) -> LayerSpec:
    """Add a layer type. Type ids and aliases must be unique."""
    if spec.type_id in _SPECS or spec.type_id in _ALIASES:
        raise ValueError(f"layer type {spec.type_id!r} is registered twice")
    if spec.category not in CATEGORIES:
        raise ValueError(f"layer type {spec.type_id!r} has unknown category {spec.category!r}")
    _SPECS[spec.type_id] = spec
    for alias in spec.aliases:
        _ALIASES[alias] = spec.type_id
    return spec


def get_spec(type_id: str) -> LayerSpec:
    """The spec of ``type_id`` (or of a former name of it); GraphError if unknown."""
    spec = _SPECS.get(_ALIASES.get(type_id, type_id))
    if spec is None:
        raise GraphError(f"unknown layer type {quote(type_id)}")
    return spec


def canonical_type(type_id: str) -> str:
    return get_spec(type_id).type_id


def all_specs() -> list[LayerSpec]:
    """Every spec, in palette order (by category, then as registered)."""
    order = {category: i for i, category in enumerate(CATEGORIES)}
    return sorted(_SPECS.values(), key=lambda spec: order[spec.category])


for _module in (io, dense, conv, pooling, normalization, activations, merges, structure, imported, imported_onnx):
    for _spec in _module.SPECS:
        register(_spec)

__all__ = ["CATEGORIES", "INT", "LayerSpec", "ParamSpec", "Shape", "all_specs", "canonical_type",
           "format_shape", "get_spec", "register"]

"""The normalization statistics a project keeps: mean/std per channel and what they were computed from (no torch).

Training computes them on the training split (``dlstudio.core.data``); a
recorded run copies them into the project, together with the data settings
and the Input shape they came from. Comparing that basis with the project's
current settings tells whether they still hold: a later change of the source,
the split or the Input shape makes them visibly stale instead of silently wrong.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Any

from dlstudio.core.errors import ParamError, ProjectError
from dlstudio.core.graph import Graph
from dlstudio.core.project.jsontypes import describe, is_number
from dlstudio.core.project.settings import DATA_SETTINGS

_KEYS = ("mean", "std", "run", "computed_from")
# The data settings that decide which samples land in the training split, for every source...
_SPLIT_KEYS = ("source", "val_fraction", "test_fraction", "split_seed")
# ...and those that decide which samples there are, for the source that reads them.
_SOURCE_KEYS = {"digits": (), "folder": ("path",), "torchvision": ("path", "dataset"), "csv": ("path", "label_column")}
_INPUT_SHAPE = "input_shape"
# Per-feature statistics of a wide table are long but bounded by the Input node's largest size.
_MAX_VALUES = 100_000
_LABELS = {"source": "the data source", "path": "the data path", "dataset": "the dataset",
           "label_column": "the label column", "val_fraction": "the validation fraction",
           "test_fraction": "the test fraction", "split_seed": "the split seed", _INPUT_SHAPE: "the Input shape"}


def input_shape(graph: Graph) -> tuple[int, ...] | None:
    """The shape of the graph's one Input node (what training fits the data to); None without exactly one."""
    shapes = [tuple(node.params["shape"]) for node in graph if node.type == "Input"]
    return shapes[0] if len(shapes) == 1 else None


def statistics_basis(data_settings: dict[str, Any], shape: tuple[int, ...] | list[int]) -> dict[str, Any]:
    """The settings normalization statistics depend on: source, split, the source's own keys, Input shape.

    ``data_settings`` are a project's data settings (defaults filled in for missing keys).
    """
    values = {spec.name: data_settings.get(spec.name, spec.default) for spec in DATA_SETTINGS}
    keys = _SPLIT_KEYS + _SOURCE_KEYS.get(values["source"], ())
    return {**{key: values[key] for key in keys}, _INPUT_SHAPE: [int(size) for size in shape]}


@dataclass(frozen=True)
class NormalizationStats:
    """Mean and std per channel (per feature for a table) of a training split, as a project stores them.

    ``run`` is the run entry (as in ``Project.runs``) that computed them;
    ``computed_from`` is their :func:`statistics_basis`.
    """

    mean: tuple[float, ...]
    std: tuple[float, ...]
    run: str
    computed_from: dict[str, Any]

    @classmethod
    def from_run_settings(cls, settings: dict[str, Any], run: str) -> NormalizationStats | None:
        """The statistics a run computed, from its ``settings.json`` (None when it trained unnormalized).

        Raises ProjectError when the settings do not hold valid statistics.
        """
        summary = settings.get("data_summary") if isinstance(settings, dict) else None
        if not isinstance(summary, dict):
            raise ProjectError(f"run {run}: its settings have no data summary")
        normalization = summary.get("normalization")
        if normalization is None:
            return None
        data = settings.get("data")
        if not isinstance(data, dict) or not isinstance(normalization, dict):
            raise ProjectError(f"run {run}: its settings hold no data settings or statistics")
        basis = statistics_basis(data, summary.get("sample_shape") or [])
        return cls.from_doc({"mean": normalization.get("mean"), "std": normalization.get("std"), "run": run,
                             "computed_from": basis}, f"run {run}")

    @classmethod
    def from_doc(cls, value: Any, where: str = "normalization") -> NormalizationStats:
        """Build from the project file's object; ProjectError naming ``where`` and the value otherwise."""
        if not isinstance(value, dict):
            raise ProjectError(f"{where}: expected an object, got {describe(value)}")
        for key in value:
            if key not in _KEYS:
                raise ProjectError(f"{where}: unknown field {key!r}")
        for key in _KEYS:
            if key not in value:
                raise ProjectError(f"{where}.{key}: missing")
        if not isinstance(value["run"], str):
            raise ProjectError(f"{where}.run: expected a run folder, got {describe(value['run'])}")
        computed_from = _basis(value["computed_from"], f"{where}.computed_from")
        mean = _numbers(value["mean"], f"{where}.mean")
        std = _numbers(value["std"], f"{where}.std")
        channels = computed_from[_INPUT_SHAPE][0]
        for key, values in (("mean", mean), ("std", std)):
            if len(values) != channels:
                raise ProjectError(f"{where}.{key}: expected {channels} values (one per channel of the Input "
                                   f"shape {computed_from[_INPUT_SHAPE]}), got {len(values)}")
        low = min(std)
        if not low > 0:
            raise ProjectError(f"{where}.std: every value must be above 0, got {low:g}")
        return cls(mean, std, value["run"], computed_from)

    def to_doc(self) -> dict[str, Any]:
        """The project file's object (lists and plain numbers)."""
        return {"mean": list(self.mean), "std": list(self.std), "run": self.run,
                "computed_from": {key: (list(item) if isinstance(item, (list, tuple)) else item)
                                  for key, item in self.computed_from.items()}}

    def stale_reason(self, data_settings: dict[str, Any], shape: tuple[int, ...] | list[int] | None) -> str:
        """Why these statistics no longer fit ``data_settings`` and the Input ``shape``; "" while they do.

        E.g. "the split seed changed (0 → 3)". A graph without one Input (``shape`` None) has nothing to
        compare against, so only the data settings are compared.
        """
        current = statistics_basis(data_settings, shape if shape is not None else
                                   self.computed_from[_INPUT_SHAPE])
        recorded = self.computed_from
        for key in _LABELS:  # the source first: when it changed, its own keys differ as a consequence
            if current.get(key) != recorded.get(key):
                return (f"{_LABELS.get(key, key)} changed ({_shown(recorded.get(key))} → "
                        f"{_shown(current.get(key))})")
        return ""


def _shown(value: Any) -> str:
    if value is None:
        return "none"
    if isinstance(value, str):
        return repr(value) if value else "empty"
    return f"{value:g}" if isinstance(value, float) else str(value)


def _numbers(value: Any, where: str) -> tuple[float, ...]:
    if not isinstance(value, list) or not value:
        raise ProjectError(f"{where}: expected a non-empty list of numbers, got {describe(value)}")
    if len(value) > _MAX_VALUES:
        raise ProjectError(f"{where}: at most {_MAX_VALUES:,} values, got {len(value):,}")
    for index, item in enumerate(value):
        if not is_number(item) or not math.isfinite(item):
            raise ProjectError(f"{where}[{index}]: expected a finite number, got {describe(item)}")
    return tuple(float(item) for item in value)


def _basis(value: Any, where: str) -> dict[str, Any]:
    """A recorded basis, checked with the data settings' own rules (so a stored one compares like a live one)."""
    if not isinstance(value, dict):
        raise ProjectError(f"{where}: expected an object, got {describe(value)}")
    specs = {spec.name: spec for spec in DATA_SETTINGS}
    if "source" not in value:
        raise ProjectError(f"{where}.source: missing")
    allowed = (*_SPLIT_KEYS, *_SOURCE_KEYS.get(value["source"], ()), _INPUT_SHAPE)
    result: dict[str, Any] = {}
    for key, item in value.items():
        if key not in allowed:
            raise ProjectError(f"{where}: unknown field {key!r}")
        if key == _INPUT_SHAPE:
            continue
        try:
            result[key] = specs[key].validate(item)
        except ParamError as error:
            raise ProjectError(f"{where}.{key}: {error.message.removeprefix(specs[key].display_name + ': ')}") \
                from None
    for key in allowed:
        if key not in value:
            raise ProjectError(f"{where}.{key}: missing")
    shape = value[_INPUT_SHAPE]
    if (not isinstance(shape, list) or not 1 <= len(shape) <= 3
            or not all(isinstance(size, int) and not isinstance(size, bool) and 1 <= size <= _MAX_VALUES
                       for size in shape)):
        shown = repr(shape) if len(repr(shape)) <= 60 else repr(shape)[:57] + "..."
        raise ProjectError(f"{where}.{_INPUT_SHAPE}: expected 1 to 3 whole numbers from 1 to {_MAX_VALUES:,}, "
                           f"got {shown}")
    return {**{key: result[key] for key in allowed if key != _INPUT_SHAPE}, _INPUT_SHAPE: list(shape)}

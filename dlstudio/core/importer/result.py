"""What an import gives back: the project, what could not be mapped, and how the source weights map."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

from dlstudio.core.errors import DlstudioError
from dlstudio.core.project.model import Project


class ModelImportError(DlstudioError):
    """An import was refused; ``result`` (when there is one) lists everything that could not be mapped."""

    def __init__(self, message: str, result: ImportResult | None = None) -> None:
        super().__init__(message)
        self.result = result


@dataclass(frozen=True)
class Unmapped:
    """One operation of the source model that has no layer type: where it is (a node name) and why."""

    name: str
    operation: str
    reason: str

    def __str__(self) -> str:
        return f"{self.name} ({self.operation}): {self.reason}"


@dataclass
class ImportResult:
    """The imported network and how to give it the source model's weights.

    ``key_map`` maps each ``state_dict`` key of the compiled graph (``node_id.weight``) to the source
    model's key (``layer1.0.conv1.weight``). ``source`` is the source ``nn.Module`` (eval mode, the weights
    it was built with); ``param_count`` its parameter count. ``derived`` maps the keys whose values are
    computed from a constant of the source (an ONNX normalization ``(x - mean) / std`` becomes depthwise
    convolutions) to ``(source key, how)``, ``how`` one of ``same``, ``negative``, ``reciprocal``, ``ones``.
    """

    name: str
    project: Project | None
    unmapped: list[Unmapped] = field(default_factory=list)
    key_map: dict[str, str] = field(default_factory=dict)
    source: Any = None
    num_classes: int = 0
    param_count: int = 0
    derived: dict[str, tuple[str, str]] = field(default_factory=dict)

    @property
    def ok(self) -> bool:
        return self.project is not None and not self.unmapped

    def refuse_unmapped(self) -> None:
        """Raise ModelImportError (one line naming the first operation without a layer type) if any."""
        if self.unmapped:
            first = self.unmapped[0]
            more = f" (and {len(self.unmapped) - 1} more)" if len(self.unmapped) > 1 else ""
            raise ModelImportError(f"cannot import {self.name}: {first.name} ({first.operation}) has no layer "
                                   f"type: {first.reason}{more}", self)

    def state_dict_for(self, compiled: Any, source_state: Mapping[str, Any] | None = None) -> dict[str, Any]:
        """The ``state_dict`` for ``compiled`` (the compiled graph) holding the source model's weights.

        ``source_state`` defaults to the source model's own ``state_dict()``. Every key of ``compiled``
        must be mapped and have as many values as its source (a tensor of another shape with the same
        count, e.g. a per-channel scale used as a 1x1 depthwise convolution, is reshaped); otherwise
        ModelImportError names the key.
        """
        source = self.source.state_dict() if source_state is None else source_state
        result: dict[str, Any] = {}
        for key, target in compiled.state_dict().items():
            source_key, how = self.derived.get(key) or (self.key_map.get(key), "same")
            if source_key is None or source_key not in source:
                raise ModelImportError(f"{key}: no weights of the source model map to it")
            value = _DERIVE[how](source[source_key])
            if value.numel() == 1 and target.numel() > 1:  # one constant for every channel
                value = value.reshape(()).expand(target.shape)
            if tuple(value.shape) != tuple(target.shape):
                if value.numel() != target.numel():
                    raise ModelImportError(f"{key}: the source's {source_key} has shape {tuple(value.shape)}, "
                                           f"the graph's {tuple(target.shape)}")
                value = value.reshape(target.shape)
            result[key] = value
        return result

    def load_into(self, compiled: Any, source_state: Mapping[str, Any] | None = None) -> None:
        """Load the source weights into ``compiled`` (strict: every key of it is set)."""
        compiled.load_state_dict(self.state_dict_for(compiled, source_state), strict=True)


_DERIVE = {
    "same": lambda value: value,
    "negative": lambda value: -value,
    "reciprocal": lambda value: 1 / value,
    "ones": lambda value: value.new_ones(value.shape),
}

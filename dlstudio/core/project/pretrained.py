"""Where a project's starting weights come from (no Qt, no torch): the ``weights`` field of a project file.

A project trains from random weights unless it names a source: torchvision's pretrained weights of the
architecture it was imported from, a ``.pth`` / ``.safetensors`` file, or the checkpoint of an earlier run.
The weights themselves are never copied into the project file; they are read when a run starts
(:mod:`dlstudio.core.training.pretrained`), and only those whose node and shape match load.
``key_map`` (graph ``state_dict`` key -> the source's key) is kept for sources whose keys are the
original model's (torchvision, a person's own module); without it keys are matched by node name.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from dlstudio.core.errors import ProjectError
from dlstudio.core.project.jsontypes import describe
from dlstudio.core.text import quote

SOURCES = ("torchvision", "file", "run")
MAX_KEY_MAP = 100_000
_FIELDS = {"torchvision": ("model", "weights"), "file": ("path",), "run": ("path",)}


@dataclass(frozen=True)
class WeightsSource:
    """``kind``: torchvision (``model``, ``weights`` = a weights name such as IMAGENET1K_V1 or DEFAULT),
    file (``path``) or run (``path`` = the run folder); paths relative to the project file or absolute."""

    kind: str
    model: str = ""
    weights: str = ""
    path: str = ""
    key_map: dict[str, str] = field(default_factory=dict, compare=False, hash=False)

    def describe(self) -> str:
        """How a person reads it: "torchvision resnet18 (IMAGENET1K_V1)", "file backbone.safetensors"."""
        if self.kind == "torchvision":
            return f"torchvision {self.model} ({self.weights})"
        return f"{self.kind} {self.path}"

    def to_doc(self) -> dict[str, Any]:
        doc: dict[str, Any] = {"source": self.kind}
        for key in _FIELDS[self.kind]:
            doc[key] = getattr(self, key)
        if self.key_map:
            doc["key_map"] = dict(sorted(self.key_map.items()))
        return doc

    @classmethod
    def from_doc(cls, value: Any, where: str = "weights") -> WeightsSource:
        """Read a project file's ``weights`` object; ProjectError naming the field."""
        if not isinstance(value, dict):
            raise ProjectError(f"{where}: expected an object, got {describe(value)}")
        kind = value.get("source")
        if kind not in SOURCES:
            raise ProjectError(f"{where}.source: expected one of {', '.join(SOURCES)}, got {describe(kind)}")
        allowed = ("source", "key_map", *_FIELDS[kind])
        unknown = [key for key in value if key not in allowed]
        if unknown:
            raise ProjectError(f"{where}: unknown field {quote(unknown[0])} for source {kind}")
        texts = {}
        for key in _FIELDS[kind]:
            text = value.get(key)
            if not isinstance(text, str) or not text:
                raise ProjectError(f"{where}.{key}: expected text, got {describe(text)}")
            texts[key] = text
        key_map = value.get("key_map", {})
        if not isinstance(key_map, dict) or not all(isinstance(v, str) for v in key_map.values()):
            raise ProjectError(f"{where}.key_map: expected an object of key names, got {describe(key_map)}")
        if len(key_map) > MAX_KEY_MAP:
            raise ProjectError(f"{where}.key_map: more than {MAX_KEY_MAP:,} keys")
        return cls(kind, key_map=dict(key_map), **texts)

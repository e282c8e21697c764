"""What a data source gives back: samples as tensors, labels, class names, skipped files."""

from __future__ import annotations

from dataclasses import dataclass, field

import torch


@dataclass(frozen=True)
class SkippedFile:
    """A file a source could not read, with the reason (shown to the user, never dropped silently)."""

    path: str
    reason: str


@dataclass
class LabeledTensors:
    """A whole dataset held in memory.

    ``x`` is float32, shaped (N, *sample_shape) with values in [0, 1] for
    images (raw feature values for tables); ``y`` holds int64 class indices
    into ``class_names``. ``fixed_test`` marks samples that belong to a
    source's official test split (torchvision datasets); None when the source
    has none.
    """

    x: torch.Tensor
    y: torch.Tensor
    class_names: list[str]
    skipped: list[SkippedFile] = field(default_factory=list)
    fixed_test: torch.Tensor | None = None

    def __len__(self) -> int:
        return int(self.x.shape[0])

    def class_counts(self) -> list[int]:
        """Samples per class, in the order of ``class_names``."""
        return torch.bincount(self.y, minlength=len(self.class_names)).tolist()

"""Checking a written export against the compiled model: the same inputs in, the largest difference out.

Every verified export runs the compiled model and the exported file on random
inputs (two batch sizes, so a batch dimension baked in by mistake shows) and
on real validation samples when the run's data can be read, and reports the
largest absolute difference of any output value.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass

import torch

from dlstudio.core.export.source import ExportSource

# Batch sizes of the random inputs: the dynamic batch axis must take both.
RANDOM_BATCHES = (1, 5)
REAL_SAMPLES = 8


@dataclass(frozen=True)
class Verification:
    """How an export compared with the compiled model."""

    format: str
    max_abs_diff: float
    tolerance: float
    random_samples: int
    real_samples: int

    @property
    def passed(self) -> bool:
        return self.max_abs_diff <= self.tolerance

    def text(self) -> str:
        """One line: what was compared and the largest difference."""
        real = (f" and {self.real_samples} validation samples" if self.real_samples
                else " (no validation samples: the run's data could not be read, or there is no run)")
        return (f"verified on {self.random_samples} random inputs{real}: max abs difference "
                f"{self.max_abs_diff:.3g} (tolerance {self.tolerance:g})")


def comparison_batches(source: ExportSource, real_samples: int = REAL_SAMPLES,
                       seed: int = 0) -> tuple[list[tuple[torch.Tensor, ...]], int, int]:
    """Input batches to compare on: random ones of each size in RANDOM_BATCHES, then real samples if any.

    Returns (batches, random sample count, real sample count). Each batch has
    one tensor per Input node.
    """
    generator = torch.Generator().manual_seed(seed)
    shapes = [tuple(source.model.input_shapes[node_id]) for node_id in source.model.input_ids]
    batches = [tuple(torch.randn(size, *shape, generator=generator) for shape in shapes) for size in RANDOM_BATCHES]
    real = source.validation_samples(real_samples) if len(shapes) == 1 and real_samples else None
    if real is not None and len(real):
        batches.append((real,))
    return batches, sum(RANDOM_BATCHES), 0 if real is None else len(real)


def reference_outputs(model: torch.nn.Module, batch: Sequence[torch.Tensor]) -> list[torch.Tensor]:
    """The compiled model's outputs for one batch, as a list (one tensor per Output node)."""
    with torch.inference_mode():
        result = model(*batch)
    return [result] if isinstance(result, torch.Tensor) else list(result)


def largest_difference(expected: Sequence[torch.Tensor], actual: Sequence[object]) -> float:
    """The largest absolute difference between two lists of outputs; infinity when their shapes differ."""
    if len(expected) != len(actual):
        return float("inf")
    worst = 0.0
    for want, got in zip(expected, actual):
        got_tensor = torch.as_tensor(got).to(torch.float32)
        if tuple(got_tensor.shape) != tuple(want.shape):
            return float("inf")
        if want.numel():
            difference = (want.detach().float() - got_tensor).abs().max()
            if not bool(torch.isfinite(difference)):
                return float("inf")
            worst = max(worst, float(difference))
    return worst


def verify(source: ExportSource, format_name: str, tolerance: float,
           run_export: Callable[[Sequence[torch.Tensor]], Sequence[object]]) -> Verification:
    """Compare ``run_export(batch)`` (the reloaded file's outputs) with the compiled model on every batch."""
    batches, random_count, real_count = comparison_batches(source)
    worst = 0.0
    for batch in batches:
        worst = max(worst, largest_difference(reference_outputs(source.model, batch), run_export(batch)))
    return Verification(format_name, worst, tolerance, random_count, real_count)

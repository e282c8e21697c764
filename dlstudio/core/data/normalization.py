"""Per-channel (or per-feature) mean and standard deviation, from the training split only."""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass

import torch

# Samples per chunk when statistics are computed over a stored split (bounded float64 temporaries).
_CHUNK_ELEMENTS = 2**22


class RunningStats:
    """Per-channel (dim 1) mean and variance over chunks, merged exactly (Chan et al.), in float64.

    Memory stays one chunk's worth whatever the data's size; uint8 chunks count as pixels / 255.
    """

    def __init__(self) -> None:
        self.count = 0
        self.mean: torch.Tensor | None = None
        self.m2: torch.Tensor | None = None

    def update(self, x: torch.Tensor) -> None:
        """Add a chunk (N, C, ...) or (N, F)."""
        if not len(x):
            return
        chunk = x.detach().to("cpu", torch.float64)
        if x.dtype == torch.uint8:
            chunk.div_(255.0)
        dims = [d for d in range(chunk.ndim) if d != 1]
        n = chunk.numel() // chunk.shape[1]
        mean = chunk.mean(dim=dims)
        m2 = ((chunk - mean.view([1, -1] + [1] * (chunk.ndim - 2))) ** 2).sum(dim=dims)
        if self.mean is None or self.m2 is None:
            self.count, self.mean, self.m2 = n, mean, m2
            return
        total = self.count + n
        delta = mean - self.mean
        self.mean = self.mean + delta * (n / total)
        self.m2 = self.m2 + m2 + delta**2 * (self.count * n / total)
        self.count = total

    def result(self) -> Normalization:
        if self.mean is None or self.m2 is None or self.count == 0:
            raise ValueError("no samples to compute statistics of")
        std = torch.sqrt(self.m2 / self.count)
        # A constant channel (a blank border column, a flag feature) would divide by zero.
        std = torch.where(std > 1e-8, std, torch.ones_like(std))
        return Normalization(tuple(self.mean.tolist()), tuple(std.tolist()))


@dataclass(frozen=True)
class Normalization:
    """Mean and std per channel of images (dim 1 of N, C, H, W) or per feature of rows (dim 1 of N, F)."""

    mean: tuple[float, ...]
    std: tuple[float, ...]

    @classmethod
    def fit(cls, x: torch.Tensor) -> Normalization:
        """Compute the statistics of ``x`` (call it on the training split only, so nothing leaks).

        uint8 pixels count as values / 255. Computed a chunk of samples at a
        time: no float64 copy of the whole split.
        """
        per_sample = max(1, x[0].numel()) if len(x) else 1
        return cls.fit_chunks(x[start:start + max(1, _CHUNK_ELEMENTS // per_sample)]
                              for start in range(0, len(x), max(1, _CHUNK_ELEMENTS // per_sample)))

    @classmethod
    def fit_chunks(cls, chunks: Iterable[torch.Tensor]) -> Normalization:
        """The statistics of all the chunks together (e.g. images decoded one at a time)."""
        stats = RunningStats()
        for chunk in chunks:
            stats.update(chunk)
        return stats.result()

    def _view(self, values: tuple[float, ...], x: torch.Tensor) -> torch.Tensor:
        shape = [1, len(values)] + [1] * (x.ndim - 2)
        return torch.tensor(values, dtype=x.dtype, device=x.device).view(shape)

    def apply(self, x: torch.Tensor) -> torch.Tensor:
        """Return ``(x - mean) / std``."""
        return (x - self._view(self.mean, x)) / self._view(self.std, x)

    def invert(self, x: torch.Tensor) -> torch.Tensor:
        """Return ``x * std + mean`` (back to the raw value range)."""
        return x * self._view(self.std, x) + self._view(self.mean, x)

    def to_dict(self) -> dict[str, list[float]]:
        return {"mean": list(self.mean), "std": list(self.std)}

    @classmethod
    def from_dict(cls, data: dict[str, list[float]]) -> Normalization:
        return cls(tuple(float(v) for v in data["mean"]), tuple(float(v) for v in data["std"]))

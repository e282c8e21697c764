"""Per-channel (or per-feature) mean and standard deviation, from the training split only."""

from __future__ import annotations

from dataclasses import dataclass

import torch


@dataclass(frozen=True)
class Normalization:
    """Mean and std per channel of images (dim 1 of N, C, H, W) or per feature of rows (dim 1 of N, F)."""

    mean: tuple[float, ...]
    std: tuple[float, ...]

    @classmethod
    def fit(cls, x: torch.Tensor) -> Normalization:
        """Compute the statistics of ``x`` (call it on the training split only, so nothing leaks)."""
        dims = [d for d in range(x.ndim) if d != 1]
        mean = x.double().mean(dim=dims)
        std = x.double().std(dim=dims, correction=0)
        # A constant channel (a blank border column, a flag feature) would divide by zero.
        std = torch.where(std > 1e-8, std, torch.ones_like(std))
        return cls(tuple(mean.tolist()), tuple(std.tolist()))

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

"""Image augmentation applied to whole training batches on the device, driven by one generator.

All randomness comes from the generator the trainer passes (a CPU
``torch.Generator`` saved in checkpoints), so a resumed run draws the same
crops and flips as an uninterrupted one.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import torch
from torch.nn import functional

from dlstudio.core.data.normalization import Normalization


def _uniform(n: int, low: float, high: float, generator: torch.Generator, device: torch.device) -> torch.Tensor:
    return (torch.rand(n, generator=generator) * (high - low) + low).to(device)


@dataclass(frozen=True)
class Augmentation:
    """Random crop with zero padding, horizontal flip, small rotation (degrees), colour jitter (strength).

    ``normalization`` is the one applied to the stored samples: colour jitter
    works on raw values, so it undoes and redoes it around the jitter.
    """

    crop_padding: int = 0
    hflip: bool = False
    rotation: float = 0.0
    color_jitter: float = 0.0
    normalization: Normalization | None = None

    @property
    def enabled(self) -> bool:
        return bool(self.crop_padding or self.hflip or self.rotation or self.color_jitter)

    def __call__(self, x: torch.Tensor, generator: torch.Generator) -> torch.Tensor:
        """Augment an (N, C, H, W) batch; other shapes (table rows) pass through unchanged."""
        if x.ndim != 4 or not self.enabled:
            return x
        if self.crop_padding:
            x = self._crop(x, generator)
        if self.hflip:
            flip = (torch.rand(len(x), generator=generator) < 0.5).to(x.device)
            x = torch.where(flip.view(-1, 1, 1, 1), x.flip(3), x)
        if self.rotation:
            x = self._rotate(x, generator)
        if self.color_jitter:
            x = self._jitter(x, generator)
        return x

    def _crop(self, x: torch.Tensor, generator: torch.Generator) -> torch.Tensor:
        n, _, height, width = x.shape
        pad = int(self.crop_padding)
        padded = functional.pad(x, (pad, pad, pad, pad))
        offsets = torch.randint(0, 2 * pad + 1, (2, n), generator=generator).to(x.device)
        rows = (offsets[0].view(n, 1) + torch.arange(height, device=x.device)).view(n, 1, height, 1)
        cols = (offsets[1].view(n, 1) + torch.arange(width, device=x.device)).view(n, 1, 1, width)
        batch = torch.arange(n, device=x.device).view(n, 1, 1, 1)
        channels = torch.arange(x.shape[1], device=x.device).view(1, -1, 1, 1)
        return padded[batch, channels, rows, cols]

    def _rotate(self, x: torch.Tensor, generator: torch.Generator) -> torch.Tensor:
        angles = _uniform(len(x), -self.rotation, self.rotation, generator, x.device) * (math.pi / 180.0)
        cos, sin = torch.cos(angles), torch.sin(angles)
        zeros = torch.zeros_like(cos)
        theta = torch.stack([torch.stack([cos, -sin, zeros], 1), torch.stack([sin, cos, zeros], 1)], 1)
        grid = functional.affine_grid(theta.to(x.dtype), list(x.shape), align_corners=False)
        return functional.grid_sample(x, grid, mode="bilinear", padding_mode="zeros", align_corners=False)

    def _jitter(self, x: torch.Tensor, generator: torch.Generator) -> torch.Tensor:
        n = len(x)
        strength = float(self.color_jitter)
        brightness = _uniform(n, 1 - strength, 1 + strength, generator, x.device).view(n, 1, 1, 1)
        contrast = _uniform(n, 1 - strength, 1 + strength, generator, x.device).view(n, 1, 1, 1)
        raw = self.normalization.invert(x) if self.normalization is not None else x
        mean = raw.mean(dim=(1, 2, 3), keepdim=True)
        raw = ((raw - mean) * contrast + mean) * brightness
        raw = raw.clamp(0.0, 1.0)
        return self.normalization.apply(raw) if self.normalization is not None else raw

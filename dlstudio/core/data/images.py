"""Bring image batches to the Input node's channel count and size."""

from __future__ import annotations

import torch
from torch.nn import functional

from dlstudio.core.data.errors import DataError
from dlstudio.core.data.normalization import Normalization

# ITU-R BT.601 luma weights, the ones PIL's convert("L") uses, so that a
# grey version of a colour dataset matches what a folder of the same images gives.
_LUMA = (0.299, 0.587, 0.114)


def image_input_shape(shape: tuple[int, ...], source: str) -> tuple[int, int, int]:
    """Check that an Input shape can take images: [C, H, W] with C of 1, 3 or 4."""
    if len(shape) != 3 or shape[0] not in (1, 3, 4):
        raise DataError(f"{source} gives images, which need an Input shape of [C, H, W] with 1, 3 or 4 channels; "
                        f"the Input node has {list(shape)}")
    return shape[0], shape[1], shape[2]


def convert_channels(x: torch.Tensor, channels: int) -> torch.Tensor:
    """Convert an (N, C, H, W) batch with C in 1/3/4 to ``channels`` channels, consistently.

    Alpha is composited onto black; grey becomes RGB by repetition; RGB
    becomes grey by luma weights.
    """
    have = x.shape[1]
    if have == 4:
        x = x[:, :3] * x[:, 3:4]
        if channels == 4:
            return torch.cat([x, torch.ones_like(x[:, :1])], dim=1)
        have = 3
    if have == channels:
        return x
    if have == 1:
        x = x.expand(-1, 3, -1, -1)
        return x if channels == 3 else torch.cat([x, torch.ones_like(x[:, :1])], dim=1)
    grey = sum(weight * x[:, i:i + 1] for i, weight in enumerate(_LUMA))
    return grey if channels == 1 else torch.cat([grey.expand(-1, 3, -1, -1), torch.ones_like(grey)], dim=1)


def fit_images(x: torch.Tensor, shape: tuple[int, int, int]) -> torch.Tensor:
    """Return ``x`` (N, C, H, W), float in [0, 1], with the channels and size of ``shape``."""
    channels, height, width = shape
    x = convert_channels(x, channels)
    if x.shape[2:] != (height, width):
        # Antialiasing keeps downscaled images from aliasing; for upscaling it is a no-op.
        x = functional.interpolate(x, size=(height, width), mode="bilinear", align_corners=False, antialias=True)
        x = x.clamp_(0.0, 1.0)
    return x.contiguous()


def pixels_to_input(pixels: torch.Tensor, normalization: Normalization | None,
                    layout: torch.memory_format = torch.contiguous_format) -> torch.Tensor:
    """A batch of uint8 pixels (N, C, H, W) as the model's float32 input: / 255, normalized, in ``layout``.

    One conversion pass and two in-place ones, on the pixels' device; the
    in-memory and the streamed splits both go through here, so they give the same values.
    """
    out = torch.empty(pixels.shape, dtype=torch.float32, device=pixels.device,
                      memory_format=layout if pixels.ndim == 4 else torch.contiguous_format)
    out.copy_(pixels)
    if normalization is None:
        return out.div_(255.0)
    shape = [1, len(normalization.mean)] + [1] * (pixels.ndim - 2)
    mean = torch.tensor(normalization.mean, dtype=torch.float64).mul_(255.0).to(out.device, torch.float32)
    std = torch.tensor(normalization.std, dtype=torch.float64).mul_(255.0).to(out.device, torch.float32)
    return out.sub_(mean.view(shape)).div_(std.view(shape))

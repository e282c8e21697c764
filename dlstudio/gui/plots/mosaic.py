"""Convolution weights as one RGBA mosaic image (numpy only, no Qt, no torch).

A conv weight ``(out, in, kh, kw)`` becomes a grid of ``kh × kw`` tiles:
each filter is a block of its ``in`` channel tiles side by side, and the
blocks wrap into columns so the whole image is roughly square. Filters with
three input channels (the first layer of an RGB network) are drawn as one
colour tile each. Gaps are transparent so the view's background shows.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np

DIVERGING = "diverging"
GREY = "grey"
COLORMAPS = (DIVERGING, GREY)

# Blue (negative) - near white (zero) - red (positive): ColorBrewer RdBu, reversed so red is positive.
_DIVERGING_ANCHORS = np.array([
    [33, 102, 172], [146, 197, 222], [247, 247, 247], [244, 165, 130], [178, 24, 43]], dtype=float)


def _lookup_table(colormap: str) -> np.ndarray:
    """256 RGB entries for values from -1 (index 0) to +1 (index 255)."""
    if colormap == GREY:
        ramp = np.arange(256, dtype=np.uint8)
        return np.stack([ramp, ramp, ramp], axis=1)
    positions = np.linspace(0.0, 255.0, len(_DIVERGING_ANCHORS))
    index = np.arange(256)
    return np.stack([np.interp(index, positions, _DIVERGING_ANCHORS[:, channel]) for channel in range(3)],
                    axis=1).round().astype(np.uint8)


_TABLES = {name: _lookup_table(name) for name in COLORMAPS}


@dataclass(frozen=True)
class Mosaic:
    """The mosaic image (``rgba``: height × width × 4, uint8) and where its tiles are."""

    rgba: np.ndarray
    filters: int
    channels: int
    kernel: tuple[int, int]
    block_channels: int  # tiles per filter: 1 for colour tiles, else the input channels
    block_columns: int
    gap: int
    block_gap: int

    @property
    def colour_tiles(self) -> bool:
        return self.block_channels == 1 and self.channels == 3

    def tile_at(self, row: int, column: int) -> tuple[int, int] | None:
        """(filter, input channel) of the tile under pixel (row, column), or None on a gap; channel -1 for colour."""
        height, width = self.rgba.shape[:2]
        if not (0 <= row < height and 0 <= column < width) or self.rgba[row, column, 3] == 0:
            return None
        kh, kw = self.kernel
        block_width = self.block_channels * (kw + self.gap) - self.gap
        block_row, in_tile_row = divmod(row, kh + self.gap)
        block_column, in_block = divmod(column, block_width + self.block_gap)
        channel, in_tile_column = divmod(in_block, kw + self.gap)
        if in_tile_row >= kh or in_block >= block_width or in_tile_column >= kw:
            return None
        filter_index = block_row * self.block_columns + block_column
        if filter_index >= self.filters:
            return None
        return filter_index, (-1 if self.colour_tiles else channel)


def filter_mosaic(weights: np.ndarray, colormap: str = DIVERGING, gap: int = 1) -> Mosaic:
    """Tile conv ``weights`` (out, in, kh, kw) — or (out, in, k) for Conv1d — into one RGBA image.

    Each filter is scaled on its own: symmetric around zero by its largest
    magnitude (diverging or grey map, zero in the middle), or min–max per
    filter for colour tiles (``in == 3``).
    """
    weights = np.asarray(weights, dtype=np.float32)
    if weights.ndim == 3:
        weights = weights[:, :, None, :]
    if weights.ndim != 4 or 0 in weights.shape:
        raise ValueError(f"filter weights must have shape (out, in, kh, kw); got {weights.shape}")
    if colormap not in COLORMAPS:
        raise ValueError(f"unknown colour map {colormap!r}; expected one of {', '.join(COLORMAPS)}")
    weights = np.nan_to_num(weights, nan=0.0, posinf=0.0, neginf=0.0)
    filters, channels, kh, kw = weights.shape
    colour = channels == 3
    tiles = _colour_tiles(weights) if colour else _mapped_tiles(weights, colormap)  # (out, tiles, kh, kw, 4)
    block_channels = tiles.shape[1]
    block_gap = gap if block_channels == 1 else 3 * gap  # filters with several channels stand apart
    block_width = block_channels * (kw + gap) - gap
    # As many block columns as make the image about square.
    block_columns = int(np.clip(round(math.sqrt(filters * (kh + gap) / (block_width + block_gap))), 1, filters))
    block_rows = math.ceil(filters / block_columns)
    height = block_rows * (kh + gap) - gap
    width = block_columns * (block_width + block_gap) - block_gap
    rgba = np.zeros((height, width, 4), dtype=np.uint8)

    # One strip per filter: its channel tiles side by side with gaps, (kh, block_width, 4).
    padded = np.zeros((filters, block_channels, kh, kw + gap, 4), dtype=np.uint8)
    padded[:, :, :, :kw] = tiles
    strips = padded.transpose(0, 2, 1, 3, 4).reshape(filters, kh, block_channels * (kw + gap), 4)[:, :, :block_width]
    for index in range(filters):
        block_row, block_column = divmod(index, block_columns)
        top = block_row * (kh + gap)
        left = block_column * (block_width + block_gap)
        rgba[top:top + kh, left:left + block_width] = strips[index]
    return Mosaic(rgba, filters, channels, (kh, kw), block_channels, block_columns, gap, block_gap)


def _mapped_tiles(weights: np.ndarray, colormap: str) -> np.ndarray:
    scale = np.abs(weights).reshape(len(weights), -1).max(axis=1)
    scale[scale == 0] = 1.0  # an all-zero filter shows as zero, not as a division by zero
    unit = weights / scale[:, None, None, None]  # in [-1, 1]
    index = np.clip(np.rint((unit + 1.0) * 127.5), 0, 255).astype(np.uint8)
    tiles = np.empty((*weights.shape, 4), dtype=np.uint8)
    tiles[..., :3] = _TABLES[colormap][index]
    tiles[..., 3] = 255
    return tiles


def _colour_tiles(weights: np.ndarray) -> np.ndarray:
    flat = weights.reshape(len(weights), -1)
    low = flat.min(axis=1)[:, None, None, None]
    span = (flat.max(axis=1) - flat.min(axis=1))[:, None, None, None]
    unit = np.where(span > 0, (weights - low) / np.where(span > 0, span, 1.0), 0.5)
    tiles = np.empty((len(weights), 1, *weights.shape[2:], 4), dtype=np.uint8)
    tiles[:, 0, ..., :3] = np.rint(unit.transpose(0, 2, 3, 1) * 255.0).astype(np.uint8)
    tiles[..., 3] = 255
    return tiles

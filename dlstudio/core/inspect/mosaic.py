"""Tile many small images (channels, filters) into one array for one image item; the GUI colours it."""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np


@dataclass(frozen=True)
class Mosaic:
    """``image`` is (height, width) or (height, width, 3), float32 in [0, 1]; tile ``i`` is at row-major
    position ``i`` of a ``rows`` x ``columns`` grid of ``tile_shape`` tiles separated by ``gap`` pixels."""

    image: np.ndarray
    rows: int
    columns: int
    tile_shape: tuple[int, int]
    gap: int
    count: int

    def tile_at(self, y: int, x: int) -> int | None:
        """The tile index under pixel (y, x), or None on a gap or an empty cell (for clicks on a tile)."""
        height, width = self.tile_shape
        row, row_offset = divmod(int(y), height + self.gap)
        column, column_offset = divmod(int(x), width + self.gap)
        if row_offset >= height or column_offset >= width or not (0 <= row < self.rows and 0 <= column < self.columns):
            return None
        index = row * self.columns + column
        return index if index < self.count else None


def scale_each(tiles: np.ndarray) -> np.ndarray:
    """Stretch each tile (first axis) to [0, 1] on its own min..max; a constant tile becomes 0."""
    tiles = np.asarray(tiles, dtype=np.float32)
    flat = tiles.reshape(len(tiles), -1)
    low = flat.min(axis=1, keepdims=True) if flat.size else flat
    span = (flat.max(axis=1, keepdims=True) - low) if flat.size else flat
    scaled = np.divide(flat - low, span, out=np.zeros_like(flat), where=span > 0)
    return scaled.reshape(tiles.shape)


def scale_together(tiles: np.ndarray) -> np.ndarray:
    """Stretch all tiles to [0, 1] on one shared min..max (to compare channels' strengths)."""
    tiles = np.asarray(tiles, dtype=np.float32)
    if tiles.size == 0:
        return tiles
    low, high = float(tiles.min()), float(tiles.max())
    return (tiles - low) / (high - low) if high > low else np.zeros_like(tiles)


def tile(tiles: np.ndarray, columns: int | None = None, gap: int = 1, fill: float = 0.0) -> Mosaic:
    """Lay out (N, H, W) or (N, H, W, 3) tiles, already in [0, 1], in a grid (square-ish by default)."""
    tiles = np.asarray(tiles, dtype=np.float32)
    count = len(tiles)
    columns = max(1, min(count, columns or math.ceil(math.sqrt(count)))) if count else 1
    rows = max(1, math.ceil(count / columns))
    height, width = tiles.shape[1:3]
    shape = (rows * (height + gap) - gap, columns * (width + gap) - gap, *tiles.shape[3:])
    image = np.full(shape, fill, dtype=np.float32)
    for index in range(count):
        row, column = divmod(index, columns)
        top, left = row * (height + gap), column * (width + gap)
        image[top:top + height, left:left + width] = tiles[index]
    return Mosaic(image, rows, columns, (height, width), gap, count)


def channel_mosaic(maps: np.ndarray, per_channel: bool = True, columns: int | None = None, gap: int = 1) -> Mosaic:
    """Feature maps (C, H, W) as one grid, each channel scaled on its own (or all on one scale)."""
    maps = np.asarray(maps, dtype=np.float32)
    if maps.ndim == 1:  # a dense layer: one row of 1x1 tiles would be unreadable, show it as a strip
        maps = maps.reshape(1, 1, -1)
    if maps.ndim != 3:
        raise ValueError(f"feature maps must be (C, H, W) or (F,); got shape {list(maps.shape)}")
    scaled = scale_each(maps) if per_channel else scale_together(maps)
    return tile(scaled, columns, gap)

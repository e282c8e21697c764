"""Many small images (feature-map channels, conv filters) tiled into one array (numpy only: no torch, no Qt).

A :class:`Grid` says where equally sized tiles sit: row-major, ``columns``
per row, ``gap`` pixels between rows and ``column_gap`` between columns. A
:class:`Mosaic` is a grid with its image (``tile``, ``channel_mosaic``). A
:class:`FilterMosaic` has two levels: each filter is a block of its input
channels' tiles side by side, and the blocks wrap into a grid of their own
(``filter_mosaic``). The scaling helpers bring values into [0, 1]; colouring
them is the caller's business (the GUI has colour maps, the core has none).

Importing this module does not import torch: the GUI uses it at start-up.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np

# How a colour filter (three input channels drawn as one RGB tile) is brought into [0, 1].
RANGE = "range"  # its own min..max: the most contrast
SYMMETRIC = "symmetric"  # by its largest magnitude, zero at 0.5: the same scale as single-channel tiles
COLOUR_SCALES = (RANGE, SYMMETRIC)


@dataclass(frozen=True)
class Grid:
    """``count`` tiles of ``tile_shape`` (height, width), row-major, ``columns`` per row, with gaps between."""

    count: int
    columns: int
    tile_shape: tuple[int, int]
    gap: int
    column_gap: int

    @property
    def rows(self) -> int:
        return max(1, math.ceil(self.count / self.columns))

    @property
    def shape(self) -> tuple[int, int]:
        """(height, width) of the whole grid in pixels."""
        height, width = self.tile_shape
        return (self.rows * (height + self.gap) - self.gap,
                self.columns * (width + self.column_gap) - self.column_gap)

    def origin(self, index: int) -> tuple[int, int]:
        """(top, left) pixel of tile ``index``."""
        row, column = divmod(index, self.columns)
        return row * (self.tile_shape[0] + self.gap), column * (self.tile_shape[1] + self.column_gap)

    def tile_at(self, y: int, x: int) -> int | None:
        """The tile index under pixel (y, x), or None on a gap, an empty cell or outside (for clicks on a tile)."""
        height, width = self.tile_shape
        row, row_offset = divmod(int(y), height + self.gap)
        column, column_offset = divmod(int(x), width + self.column_gap)
        if row_offset >= height or column_offset >= width or not (0 <= row < self.rows and 0 <= column < self.columns):
            return None
        index = row * self.columns + column
        return index if index < self.count else None

    def occupied(self) -> np.ndarray:
        """A (height, width) bool mask: True on tiles, False on gaps and empty cells."""
        return _arrange(np.ones((1, self.count, *self.tile_shape), dtype=bool), self, False)[0]


@dataclass(frozen=True, kw_only=True)
class Mosaic(Grid):
    """A grid with its ``image``: (height, width) or (height, width, 3), float32, tiles as given, gaps filled."""

    image: np.ndarray


def grid(count: int, tile_shape: tuple[int, int], columns: int | None = None, gap: int = 1,
         column_gap: int | None = None) -> Grid:
    """The layout of ``count`` tiles: ``columns`` per row (default square-ish), ``column_gap`` defaults to ``gap``."""
    columns = max(1, min(count, columns or math.ceil(math.sqrt(count)))) if count else 1
    return Grid(count, columns, (int(tile_shape[0]), int(tile_shape[1])), gap,
                gap if column_gap is None else column_gap)


def _arrange(tiles: np.ndarray, layout: Grid, fill: float | bool) -> np.ndarray:
    """Place a batch of tile sets (B, count, h, w, ...) into B images (B, height, width, ...) at once.

    Every cell is padded by its gaps, so the grid is a reshape of the cells
    rather than one copy per tile (64 filters: one numpy call instead of 64).
    """
    batch = tiles.shape[0]
    height, width = layout.tile_shape
    extra = tiles.shape[4:]
    cell_height, cell_width = height + layout.gap, width + layout.column_gap
    cells = np.full((batch, layout.rows * layout.columns, cell_height, cell_width, *extra), fill, dtype=tiles.dtype)
    cells[:, :layout.count, :height, :width] = tiles
    cells = cells.reshape(batch, layout.rows, layout.columns, cell_height, cell_width, *extra).swapaxes(2, 3)
    image = cells.reshape(batch, layout.rows * cell_height, layout.columns * cell_width, *extra)
    grid_height, grid_width = layout.shape
    return image[:, :grid_height, :grid_width]


def tile(tiles: np.ndarray, columns: int | None = None, gap: int = 1, fill: float = 0.0,
         column_gap: int | None = None) -> Mosaic:
    """Lay out (N, H, W) or (N, H, W, 3) tiles, already in [0, 1], in a grid (square-ish by default)."""
    tiles = np.asarray(tiles, dtype=np.float32)
    layout = grid(len(tiles), tiles.shape[1:3], columns, gap, column_gap)
    return Mosaic(layout.count, layout.columns, layout.tile_shape, layout.gap, layout.column_gap,
                  image=_arrange(tiles[None], layout, fill)[0])


# ---- scaling: each maps to [0, 1] ---------------------------------------------------------------------------------

def scale_each(tiles: np.ndarray, constant: float = 0.0) -> np.ndarray:
    """Stretch each tile (first axis) to [0, 1] on its own min..max; a constant tile becomes ``constant``."""
    tiles = np.asarray(tiles, dtype=np.float32)
    flat = tiles.reshape(len(tiles), -1)
    low = flat.min(axis=1, keepdims=True) if flat.size else flat
    span = (flat.max(axis=1, keepdims=True) - low) if flat.size else flat
    scaled = np.divide(flat - low, span, out=np.full_like(flat, constant), where=span > 0)
    return scaled.reshape(tiles.shape)


def scale_together(tiles: np.ndarray) -> np.ndarray:
    """Stretch all tiles to [0, 1] on one shared min..max (to compare channels' strengths)."""
    tiles = np.asarray(tiles, dtype=np.float32)
    if tiles.size == 0:
        return tiles
    low, high = float(tiles.min()), float(tiles.max())
    return (tiles - low) / (high - low) if high > low else np.zeros_like(tiles)


def scale_symmetric(tiles: np.ndarray) -> np.ndarray:
    """Scale each tile (first axis) by its largest magnitude so that zero is 0.5 and ±peak are 0 and 1.

    Signs stay readable (weights: negative below 0.5, positive above), and a
    filter a thousand times weaker than another looks the same.
    """
    tiles = np.asarray(tiles, dtype=np.float32)
    peak = np.abs(tiles.reshape(len(tiles), -1)).max(axis=1) if tiles.size else np.ones(len(tiles), np.float32)
    peak[peak == 0] = 1.0  # an all-zero tile shows as zero, not as a division by zero
    unit = tiles / peak.reshape(-1, *([1] * (tiles.ndim - 1)))  # in [-1, 1]
    return (unit + 1.0) * 0.5


def channel_mosaic(maps: np.ndarray, per_channel: bool = True, columns: int | None = None, gap: int = 1) -> Mosaic:
    """Feature maps (C, H, W) as one grid, each channel scaled on its own (or all on one scale)."""
    maps = np.asarray(maps, dtype=np.float32)
    if maps.ndim == 1:  # a dense layer: one row of 1x1 tiles would be unreadable, show it as a strip
        maps = maps.reshape(1, 1, -1)
    if maps.ndim != 3:
        raise ValueError(f"feature maps must be (C, H, W) or (F,); got shape {list(maps.shape)}")
    scaled = scale_each(maps) if per_channel else scale_together(maps)
    return tile(scaled, columns, gap)


# ---- filters: two levels -------------------------------------------------------------------------------------------

@dataclass(frozen=True)
class FilterMosaic:
    """Conv filters as one image: ``blocks`` places a block per filter, ``block`` the tiles inside a block.

    ``image`` is (height, width), or (height, width, 3) for colour tiles,
    float32 in [0, 1] with the gaps filled; ``channels`` is the input
    channels shown (3 for colour tiles, which have one tile per filter).
    """

    image: np.ndarray
    blocks: Grid
    block: Grid
    colour: bool

    @property
    def filters(self) -> int:
        return self.blocks.count

    @property
    def channels(self) -> int:
        return 3 if self.colour else self.block.count

    @property
    def kernel(self) -> tuple[int, int]:
        return self.block.tile_shape

    def tile_at(self, y: int, x: int) -> tuple[int, int] | None:
        """(filter, input channel) under pixel (y, x), or None on a gap; the channel is -1 for a colour tile."""
        filter_index = self.blocks.tile_at(y, x)
        if filter_index is None:
            return None
        top, left = self.blocks.origin(filter_index)
        channel = self.block.tile_at(int(y) - top, int(x) - left)
        if channel is None:
            return None
        return filter_index, (-1 if self.colour else channel)

    def occupied(self) -> np.ndarray:
        """A (height, width) bool mask: True on tiles, False on gaps."""
        in_block = np.broadcast_to(self.block.occupied(), (self.filters, *self.block.shape))
        return _arrange(in_block[None], self.blocks, False)[0]


def filter_weights(weights: np.ndarray) -> np.ndarray:
    """Conv weights as float32 (out, in, kh, kw): a Conv1d's (out, in, k) gets kh = 1; NaN and inf become 0."""
    weights = np.asarray(weights, dtype=np.float32)
    if weights.ndim == 3:
        weights = weights[:, :, None, :]
    if weights.ndim != 4 or 0 in weights.shape:
        raise ValueError(f"filter weights must have shape (out, in, kh, kw); got {weights.shape}")
    return np.nan_to_num(weights, nan=0.0, posinf=0.0, neginf=0.0)


def filter_mosaic(weights: np.ndarray, *, colour: bool | None = None, colour_scale: str = RANGE,
                  max_inputs: int | None = None, columns: int | None = None, gap: int = 1,
                  block_gap: int | None = None, fill: float = 0.0) -> FilterMosaic:
    """Tile conv ``weights`` (out, in, kh, kw), or (out, in, k), into one image with values in [0, 1].

    Each filter is a block of its first ``max_inputs`` (default all) input
    channel tiles side by side, each filter scaled on its own around zero
    (:func:`scale_symmetric`). With ``colour`` (default: when ``in == 3``)
    a filter is one RGB tile instead, scaled by ``colour_scale``. Blocks wrap
    into ``columns`` (default: an about square image); ``block_gap``
    separates blocks side by side (default: wider than ``gap`` when a block
    has several tiles, so filters stand apart).
    """
    weights = filter_weights(weights)
    filters, channels, kh, kw = weights.shape
    colour = channels == 3 if colour is None else colour
    if colour_scale not in COLOUR_SCALES:
        raise ValueError(f"unknown colour scale {colour_scale!r}; expected one of {', '.join(COLOUR_SCALES)}")
    if colour and channels != 3:
        raise ValueError(f"colour tiles need 3 input channels; these filters have {channels}")
    if colour:
        scaled = scale_each(weights, constant=0.5) if colour_scale == RANGE else scale_symmetric(weights)
        tiles = scaled.transpose(0, 2, 3, 1)[:, None]  # (out, 1, kh, kw, 3)
    else:
        tiles = scale_symmetric(weights)[:, :max_inputs]  # scaled by the whole filter, shown or not
    per_filter = tiles.shape[1]
    block = grid(per_filter, (kh, kw), per_filter, gap)
    block_gap = (gap if per_filter == 1 else 3 * gap) if block_gap is None else block_gap
    block_height, block_width = block.shape
    if columns is None:  # as many block columns as make the image about square
        columns = int(np.clip(round(math.sqrt(filters * (block_height + gap) / (block_width + block_gap))),
                              1, filters))
    blocks = grid(filters, block.shape, columns, gap, block_gap)
    strips = _arrange(tiles, block, fill)  # every filter's block at once: (out, kh, block width[, 3])
    return FilterMosaic(_arrange(strips[None], blocks, fill)[0], blocks, block, colour)

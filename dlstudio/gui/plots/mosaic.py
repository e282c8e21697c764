"""Colours for a filter mosaic: the core lays the tiles out and scales them (:mod:`dlstudio.core.mosaic`), this
turns the result into the RGBA image the filter views show (numpy only, no Qt, no torch).

Single-channel tiles go through a colour map (diverging or grey, zero in
the middle); colour tiles (three input channels) are their own RGB. Gaps are
transparent so the view's background shows.
"""

from __future__ import annotations

import numpy as np

from dlstudio.core.mosaic import FilterMosaic

DIVERGING = "diverging"
GREY = "grey"
COLORMAPS = (DIVERGING, GREY)

# Blue (negative) - near white (zero) - red (positive): ColorBrewer RdBu, reversed so red is positive.
_DIVERGING_ANCHORS = np.array([
    [33, 102, 172], [146, 197, 222], [247, 247, 247], [244, 165, 130], [178, 24, 43]], dtype=float)


def _lookup_table(colormap: str) -> np.ndarray:
    """256 RGB entries for values from 0 (index 0, the most negative) to 1 (index 255)."""
    if colormap == GREY:
        ramp = np.arange(256, dtype=np.uint8)
        return np.stack([ramp, ramp, ramp], axis=1)
    positions = np.linspace(0.0, 255.0, len(_DIVERGING_ANCHORS))
    index = np.arange(256)
    return np.stack([np.interp(index, positions, _DIVERGING_ANCHORS[:, channel]) for channel in range(3)],
                    axis=1).round().astype(np.uint8)


_TABLES = {name: _lookup_table(name) for name in COLORMAPS}


def mosaic_rgba(mosaic: FilterMosaic, colormap: str = DIVERGING) -> np.ndarray:
    """The mosaic as (height, width, 4) uint8: tiles opaque, coloured by ``colormap`` unless they are RGB."""
    if colormap not in COLORMAPS:
        raise ValueError(f"unknown colour map {colormap!r}; expected one of {', '.join(COLORMAPS)}")
    index = np.clip(np.rint(mosaic.image * 255.0), 0, 255).astype(np.uint8)
    occupied = mosaic.occupied()
    rgba = np.empty((*occupied.shape, 4), dtype=np.uint8)
    # Whole-image operations, then the gaps zeroed by the mask: boolean indexing here was 4x slower.
    np.multiply(index if mosaic.colour else _TABLES[colormap][index], occupied[..., None], out=rgba[..., :3])
    np.multiply(occupied, 255, out=rgba[..., 3], casting="unsafe")
    return rgba

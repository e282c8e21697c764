"""The one mosaic module: grids of tiles, scaling into [0, 1], conv filters as blocks of channel tiles (no torch)."""

from __future__ import annotations

import subprocess
import sys

import numpy as np
import pytest

from dlstudio.core.mosaic import (
    SYMMETRIC,
    channel_mosaic,
    filter_mosaic,
    grid,
    scale_each,
    scale_symmetric,
    tile,
)


def test_importing_the_mosaic_imports_neither_torch_nor_qt() -> None:
    # A fresh interpreter: this test process may have imported torch already.
    code = ("import sys, dlstudio.core.mosaic; "
            "print(sorted(m for m in ('torch', 'PySide6', 'pyqtgraph') if m in sys.modules))")
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True, timeout=60)
    assert result.stdout.strip() == "[]"


def test_channel_mosaic_tiles_each_channel_scaled_on_its_own() -> None:
    maps = np.stack([np.full((4, 6), 5.0), np.arange(24.0).reshape(4, 6), -np.arange(24.0).reshape(4, 6)])
    mosaic = channel_mosaic(maps, gap=1)
    assert (mosaic.rows, mosaic.columns, mosaic.count) == (2, 2, 3)
    assert mosaic.image.shape == (2 * 4 + 1, 2 * 6 + 1)
    assert mosaic.image.min() == 0.0 and mosaic.image.max() == 1.0
    np.testing.assert_allclose(mosaic.image[:4, :6], 0.0)  # a constant channel is flat, not noise
    np.testing.assert_allclose(mosaic.image[:4, 7:13], np.arange(24.0).reshape(4, 6) / 23.0)
    assert mosaic.tile_at(1, 8) == 1 and mosaic.tile_at(5, 2) == 2
    assert mosaic.tile_at(4, 0) is None and mosaic.tile_at(6, 9) is None  # the gap; the empty fourth cell
    together = channel_mosaic(maps, per_channel=False)
    assert together.image[:4, :6].max() > 0.0
    assert channel_mosaic(np.arange(7.0)).image.shape == (1, 7)  # a dense layer: one strip
    with pytest.raises(ValueError, match=r"\(C, H, W\)"):
        channel_mosaic(np.zeros((1, 2, 3, 4)))


def test_tile_places_each_tile_at_its_origin_and_fills_the_gaps() -> None:
    tiles = np.arange(5 * 2 * 3, dtype=np.float32).reshape(5, 2, 3)
    mosaic = tile(tiles, columns=2, gap=1, fill=-1.0, column_gap=2)
    assert (mosaic.rows, mosaic.columns) == (3, 2) and mosaic.image.shape == (3 * 3 - 1, 2 * 5 - 2)
    for index in range(5):
        top, left = mosaic.origin(index)
        np.testing.assert_array_equal(mosaic.image[top:top + 2, left:left + 3], tiles[index])
        assert mosaic.tile_at(top + 1, left + 2) == index
    assert (mosaic.image[mosaic.occupied()] >= 0).all() and (mosaic.image[~mosaic.occupied()] == -1).all()
    assert mosaic.occupied().sum() == 5 * 2 * 3  # the empty sixth cell is not a tile
    assert mosaic.tile_at(0, 3) is None and mosaic.tile_at(0, 4) is None  # the two-pixel column gap
    assert mosaic.tile_at(-1, 0) is None and mosaic.tile_at(0, 99) is None
    rgb = tile(np.ones((3, 2, 2, 3)), columns=3, gap=0)
    assert rgb.image.shape == (2, 6, 3) and (rgb.rows, rgb.columns) == (1, 3)
    assert grid(0, (4, 4)).shape == (4, 4)  # nothing to show is one empty cell, not a crash


def test_scaling_keeps_zero_in_the_middle_or_stretches_each_tile() -> None:
    weights = np.array([[-2.0, 0.0, 1.0], [-0.002, 0.0, 0.001], [0.0, 0.0, 0.0]], dtype=np.float32)
    symmetric = scale_symmetric(weights)
    np.testing.assert_allclose(symmetric[0], [0.0, 0.5, 0.75])
    np.testing.assert_array_equal(symmetric[0], symmetric[1])  # a thousand times weaker looks the same
    np.testing.assert_array_equal(symmetric[2], 0.5)  # all zero: mid-grey, no division by zero
    stretched = scale_each(weights, constant=0.5)
    np.testing.assert_allclose(stretched[0], [0.0, 2.0 / 3.0, 1.0])
    np.testing.assert_array_equal(stretched[2], 0.5)


def test_filters_with_several_channels_are_blocks_that_wrap_into_a_square_image() -> None:
    weights = np.random.default_rng(0).normal(size=(16, 6, 5, 5)).astype(np.float32)
    mosaic = filter_mosaic(weights)
    assert (mosaic.filters, mosaic.channels, mosaic.kernel, mosaic.colour) == (16, 6, (5, 5), False)
    assert mosaic.block.shape == (5, 6 * 6 - 1)  # six 5x5 tiles side by side, one-pixel gaps
    assert mosaic.blocks.column_gap == 3  # filters stand apart from each other
    height, width = mosaic.image.shape
    assert 0.5 < height / width < 2.0
    assert mosaic.occupied().sum() == weights.size  # every weight is one pixel
    top, left = mosaic.blocks.origin(9)
    channel_left = left + 4 * 6  # channel 4 of filter 9
    np.testing.assert_array_equal(mosaic.image[top:top + 5, channel_left:channel_left + 5],
                                  scale_symmetric(weights)[9, 4])
    assert mosaic.tile_at(top + 2, channel_left + 2) == (9, 4)
    assert mosaic.tile_at(top + 2, channel_left + 5) is None  # the gap after the channel


def test_colour_filters_are_one_rgb_tile_each() -> None:
    weights = -np.ones((4, 3, 3, 3), dtype=np.float32)
    weights[0, 0] = 1.0  # filter 1 responds to red
    weights[3] = 2.0  # constant: no contrast to stretch
    mosaic = filter_mosaic(weights)
    assert mosaic.colour and mosaic.channels == 3 and mosaic.image.shape == (7, 7, 3)
    assert mosaic.image[0, 0].tolist() == [1.0, 0.0, 0.0]
    assert mosaic.image[4, 4].tolist() == [0.5, 0.5, 0.5]
    assert mosaic.tile_at(4, 4) == (3, -1)
    symmetric = filter_mosaic(weights, colour_scale=SYMMETRIC)
    assert symmetric.image[4, 4].tolist() == [1.0, 1.0, 1.0]  # all positive: the top of the scale
    assert not filter_mosaic(weights, colour=False).colour  # three channels shown as three grey tiles


def test_conv1d_nan_and_truncated_inputs() -> None:
    conv1d = filter_mosaic(np.ones((2, 1, 7)))
    assert conv1d.kernel == (1, 7) and conv1d.image.shape[1] >= 7
    with_nan = np.ones((1, 1, 2, 2), dtype=np.float32)
    with_nan[0, 0, 0, 0] = np.nan
    assert filter_mosaic(with_nan).image[0, 0] == 0.5  # a NaN weight shows as zero
    weights = np.ones((1, 4, 1, 1), dtype=np.float32)
    weights[0, 3] = 4.0  # the filter's peak is in a channel that is not shown
    shown = filter_mosaic(weights, max_inputs=2)
    assert shown.channels == 2 and shown.image.tolist() == [[0.625, 0.0, 0.625]]  # 0.5 + 1 / 4 / 2
    with pytest.raises(ValueError, match=r"\(out, in, kh, kw\)"):
        filter_mosaic(np.zeros((3, 3)))
    with pytest.raises(ValueError, match="colour tiles need 3 input channels; these filters have 2"):
        filter_mosaic(np.zeros((1, 2, 3, 3)), colour=True)
    with pytest.raises(ValueError, match="unknown colour scale 'log'"):
        filter_mosaic(weights, colour_scale="log")

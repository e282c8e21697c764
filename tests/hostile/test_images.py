"""Hostile and unusual single images: wide bit depths, odd modes, decompression bombs, warnings, FIFOs.

Every image goes through the one reader (dlstudio.core.data.reader) that the
folder loader, the streamed splits, the Data panel and classify share; each
case is read right or refused with a plain reason, never a traceback or a raw warning.
"""

from __future__ import annotations

import os
import warnings
from pathlib import Path

import numpy as np
import pytest
import torch
from PIL import Image

from dlstudio.core.data import reader
from dlstudio.core.data.folder import load_image_folder
from dlstudio.core.data.reader import MAX_IMAGE_PIXELS, UnreadableImage, read_image
from dlstudio.core.inspect.classify import find_images
from dlstudio.core.inspect.preprocess import Preprocessor, UnreadableFile
from hostile_images import dark_16bit_png, save, write_huge_png, write_png_header_only

pytestmark = pytest.mark.timeout(60)


def test_a_dark_16bit_png_reads_dark_everywhere(tmp_path: Path) -> None:
    path = dark_16bit_png(tmp_path / "data" / "dark" / "a.png")
    dark_16bit_png(tmp_path / "data" / "light" / "b.png", value=60000)
    with Image.open(path) as image:
        assert image.mode.startswith("I;16")
    assert read_image(path, 1, 8, 8).max() == 4  # 1000 / 65535 * 255, not clipped to 255
    loaded = load_image_folder(tmp_path / "data", (1, 8, 8))
    assert loaded.x[loaded.y == 0].max() == pytest.approx(4 / 255)
    assert loaded.x[loaded.y == 1].min() == pytest.approx(233 / 255)
    for source in ("folder", "digits"):
        raw = Preprocessor((1, 8, 8), source)(path)
        assert float(raw.max()) == pytest.approx(4 / 255, abs=1e-6), source


@pytest.mark.parametrize(("array", "mode", "suffix", "expected"), [
    (np.full((8, 8), 40000, np.uint16), None, ".tif", round(40000 / 65535 * 255)),   # I;16 TIFF
    (np.full((8, 8), 2**30, np.int32), "I", ".tif", 128),                          # 32-bit integer TIFF
    (np.full((8, 8), 0.25, np.float32), "F", ".tif", 64),                          # float TIFF in 0..1
])
def test_wide_modes_are_scaled_by_their_bit_depth(tmp_path: Path, array: np.ndarray, mode: str | None,
                                                  suffix: str, expected: int) -> None:
    path = save(tmp_path / f"image{suffix}", array, mode)
    for channels in (1, 3, 4):
        pixels = read_image(path, channels, 4, 4)
        assert pixels.shape == (channels, 4, 4)
        assert np.all(pixels[:3] == expected)
        if channels == 4:
            assert np.all(pixels[3] == 255)


@pytest.mark.parametrize(("value", "words"), [(3.5, "0..1"), (float("nan"), "not numbers")])
def test_float_images_outside_0_to_1_are_refused_with_the_reason(tmp_path: Path, value: float, words: str) -> None:
    path = save(tmp_path / "f.tif", np.full((8, 8), value, np.float32), "F")
    with pytest.raises(UnreadableImage, match=words):
        read_image(path, 1, 8, 8)


def test_alpha_palette_and_cmyk_images_are_converted_sanely(tmp_path: Path) -> None:
    grey_alpha = np.zeros((8, 8, 2), np.uint8)
    grey_alpha[..., 0], grey_alpha[..., 1] = 200, 255
    la = save(tmp_path / "la.png", grey_alpha, "LA")
    assert np.all(read_image(la, 1, 8, 8) == 200) and np.all(read_image(la, 4, 8, 8)[3] == 255)
    palette = Image.new("P", (8, 8), 0)
    palette.putpalette([255, 0, 0] * 256)
    palette.info["transparency"] = 0
    palette.save(tmp_path / "p.png")
    assert np.all(read_image(tmp_path / "p.png", 3, 8, 8) == 0)  # fully transparent: composited onto black
    Image.new("CMYK", (8, 8), (0, 255, 255, 0)).save(tmp_path / "c.tif")
    red = read_image(tmp_path / "c.tif", 3, 8, 8)
    assert np.all(red[0] == 255) and np.all(red[1:] == 0)


def test_a_13000_pixel_square_png_is_refused_from_its_header(tmp_path: Path) -> None:
    path = write_png_header_only(tmp_path / "bomb.png", 13000, 13000)
    assert path.stat().st_size < 10_000
    assert 13000 * 13000 > MAX_IMAGE_PIXELS > 0
    with warnings.catch_warnings():
        warnings.simplefilter("error")  # nothing may warn: Pillow's bomb warning must not escape
        with pytest.raises(UnreadableImage, match=r"too large: 13000x13000 pixels \(169 megapixels\)"):
            read_image(path, 1, 8, 8)
        with pytest.raises(UnreadableFile, match="bomb.png.*too large"):
            Preprocessor((1, 8, 8), "folder")(path)


def test_a_real_oversized_png_between_the_limits_is_refused_without_decoding(tmp_path: Path) -> None:
    side = int(MAX_IMAGE_PIXELS ** 0.5) + 64  # over our limit, under Pillow's bomb error
    path = write_huge_png(tmp_path / "big.png", side, side)
    with pytest.raises(UnreadableImage, match="too large"):
        read_image(path, 1, 8, 8)


def test_a_pillow_warning_while_decoding_becomes_the_skip_reason(tmp_path: Path,
                                                                 monkeypatch: pytest.MonkeyPatch) -> None:
    path = save(tmp_path / "a.png", np.zeros((20, 20), np.uint8))
    monkeypatch.setattr(Image, "MAX_IMAGE_PIXELS", 300)  # 400 pixels: Pillow warns (an error only over 600)
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        with pytest.raises(UnreadableImage, match="not a readable image.*decompression bomb"):
            read_image(path, 1, 8, 8)
    (tmp_path / "cats").mkdir()
    (tmp_path / "dogs").mkdir()
    os.replace(path, tmp_path / "cats" / "a.png")
    save(tmp_path / "dogs" / "ok.png", np.zeros((10, 10), np.uint8))
    save(tmp_path / "cats" / "ok.png", np.zeros((10, 10), np.uint8))
    loaded = load_image_folder(tmp_path, (1, 8, 8))
    assert [Path(s.path).name for s in loaded.skipped] == ["a.png"]
    assert "decompression bomb" in loaded.skipped[0].reason.lower()


def test_a_fifo_named_directly_is_refused_without_opening_it(tmp_path: Path) -> None:
    fifo = tmp_path / "pipe.png"
    os.mkfifo(fifo)
    with pytest.raises(UnreadableImage, match="not a regular file"):
        read_image(fifo, 1, 8, 8)
    assert list(find_images([fifo])) == [(fifo, "not a regular file (a pipe, socket or device)")]
    with pytest.raises(UnreadableFile, match="not a regular file"):
        Preprocessor((1, 8, 8), "folder")(fifo)


def test_a_jpeg_far_larger_than_the_input_is_decoded_reduced(tmp_path: Path) -> None:
    rng = np.random.default_rng(0)
    path = save(tmp_path / "big.jpg", rng.integers(0, 256, (1024, 1024, 3), dtype=np.uint8))
    opened: list[tuple[int, int]] = []
    real_fit = reader.fit_pil_image

    def spy(image, channels, height, width):  # noqa: ANN001, ANN202 - the reader's own signature
        opened.append(image.size)
        return real_fit(image, channels, height, width)

    with pytest.MonkeyPatch.context() as patch:
        patch.setattr(reader, "fit_pil_image", spy)
        pixels = read_image(path, 3, 16, 16)
    assert pixels.shape == (3, 16, 16) and opened == [(128, 128)]  # 1/8 scale, still twice the size asked
    assert torch.from_numpy(pixels).float().std() > 0

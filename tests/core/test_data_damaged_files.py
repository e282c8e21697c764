"""Damaged image files (cut short, corrupt data) are skipped with a reason in plain words, not Pillow's."""

from __future__ import annotations

import io
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from dlstudio.core.data.folder import load_image_folder
from dlstudio.core.data.reader import UnreadableImage, read_image

CUT_SHORT = ("not a readable image: the file is truncated, it ends before the image does "
             "(an unfinished download or copy?)")
DAMAGED = "not a readable image: the file is damaged, its image data cannot be decoded"


def _encoded(fmt: str, size: int = 120) -> bytes:
    pixels = np.random.default_rng(0).integers(0, 256, (size, size, 3), dtype=np.uint8)
    buffer = io.BytesIO()
    Image.fromarray(pixels).save(buffer, fmt)
    return buffer.getvalue()


@pytest.mark.parametrize(("fmt", "fraction"), [("JPEG", 0.9), ("JPEG", 0.3), ("PNG", 0.5), ("GIF", 0.6),
                                               ("BMP", 0.5), ("TIFF", 0.5)])
def test_a_file_cut_short_says_so(tmp_path: Path, fmt: str, fraction: float) -> None:
    data = _encoded(fmt)
    path = tmp_path / f"photo.{fmt.lower()}"
    path.write_bytes(data[:int(len(data) * fraction)])
    with pytest.raises(UnreadableImage) as error:
        read_image(path, 3, 16, 16)
    assert str(error.value) == CUT_SHORT


def test_a_small_jpeg_cut_in_its_header_says_so(tmp_path: Path) -> None:
    # Pillow's own words for this one are "Truncated File Read".
    data = _encoded("JPEG", size=64)
    path = tmp_path / "small.jpg"
    path.write_bytes(data[:len(data) // 3])
    with pytest.raises(UnreadableImage) as error:
        read_image(path, 3, 16, 16)
    assert str(error.value) == CUT_SHORT


def test_a_png_with_broken_data_says_it_is_damaged(tmp_path: Path) -> None:
    data = bytearray(_encoded("PNG"))
    middle = len(data) // 2
    data[middle:middle + 200] = bytes(200)
    path = tmp_path / "damaged.png"
    path.write_bytes(bytes(data))
    with pytest.raises(UnreadableImage) as error:
        read_image(path, 3, 16, 16)
    assert str(error.value) == DAMAGED


def test_the_folder_loader_lists_a_cut_short_file_with_the_plain_reason(tmp_path: Path) -> None:
    for name in ("cats", "dogs"):
        (tmp_path / name).mkdir()
        for index in range(3):
            Image.new("RGB", (10, 10), (40 * index, 90, 200)).save(tmp_path / name / f"{index}.png")
    data = _encoded("JPEG")
    (tmp_path / "dogs" / "half.jpg").write_bytes(data[:len(data) // 2])
    loaded = load_image_folder(tmp_path, (3, 8, 8))
    assert len(loaded) == 6
    assert [(Path(item.path).name, item.reason) for item in loaded.skipped] == [("half.jpg", CUT_SHORT)]

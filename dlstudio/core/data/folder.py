"""An image folder: one subfolder per class, the layout torchvision's ImageFolder reads."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np
import torch

from dlstudio.core.data.dataset import LabeledTensors, SkippedFile
from dlstudio.core.data.errors import DataError
from dlstudio.core.data.images import image_input_shape

IMAGE_EXTENSIONS = frozenset({".png", ".jpg", ".jpeg", ".bmp", ".gif", ".webp", ".tif", ".tiff"})
_MODES = {1: "L", 3: "RGB", 4: "RGBA"}


def read_image(path: Path, channels: int, height: int, width: int) -> np.ndarray:
    """Decode one file to a (C, H, W) uint8 array; raises on anything unreadable."""
    from PIL import Image

    with Image.open(path) as image:
        image.load()  # decoding happens here: a truncated file raises now, not later
        return fit_pil_image(image, channels, height, width)


def fit_pil_image(image: Any, channels: int, height: int, width: int) -> np.ndarray:
    """A decoded PIL image as a (C, H, W) uint8 array with this folder loader's channel and resize rules.

    Public so that classifying a user's image (core.inspect) prepares it exactly as training did.
    """
    from PIL import Image

    image = image.convert("RGBA") if image.mode in ("P", "PA", "LA", "La", "RGBa") else image
    if image.mode == "RGBA" and channels != 4:
        # Composite transparency onto black, the same rule as images.convert_channels.
        background = Image.new("RGBA", image.size, (0, 0, 0, 255))
        image = Image.alpha_composite(background, image)
    image = image.convert(_MODES[channels])
    if image.size != (width, height):
        image = image.resize((width, height), Image.Resampling.BILINEAR)
    # A copy: np.asarray gives a read-only view of Pillow's buffer, which torch.from_numpy warns about.
    array = np.array(image, dtype=np.uint8)
    return array[None] if array.ndim == 2 else array.transpose(2, 0, 1)


def scan_folder(root: Path) -> tuple[list[str], list[list[Path]], list[SkippedFile]]:
    """Class names, image paths per class, and files skipped for not being images (sorted, deterministic)."""
    if not root.is_dir():
        raise DataError(f"the image folder {str(root)!r} does not exist")
    class_dirs = sorted(p for p in root.iterdir() if p.is_dir() and not p.name.startswith("."))
    if len(class_dirs) < 2:
        found = f"only {class_dirs[0].name!r}" if class_dirs else "none"
        raise DataError(f"the image folder {str(root)!r} needs one subfolder per class and at least two classes; "
                        f"found {found}")
    files: list[list[Path]] = []
    skipped: list[SkippedFile] = []
    for class_dir in class_dirs:
        images = []
        for path in sorted(p for p in class_dir.rglob("*") if p.is_file() and not p.name.startswith(".")):
            if path.suffix.lower() in IMAGE_EXTENSIONS:
                images.append(path)
            else:
                skipped.append(SkippedFile(str(path), f"not an image file type ({path.suffix or 'no extension'})"))
        files.append(images)
    return [d.name for d in class_dirs], files, skipped


def load_image_folder(root: Path, input_shape: tuple[int, ...]) -> LabeledTensors:
    """Read every image under ``root`` into memory, converted and resized to ``input_shape``.

    Unreadable files are skipped and listed in ``skipped``; a class left with
    no readable image is refused, naming it.
    """
    channels, height, width = image_input_shape(input_shape, f"the image folder {str(root)!r}")
    class_names, files, skipped = scan_folder(root)
    arrays: list[np.ndarray] = []
    labels: list[int] = []
    for label, (name, paths) in enumerate(zip(class_names, files)):
        read = 0
        for path in paths:
            try:
                arrays.append(read_image(path, channels, height, width))
            except Exception as error:  # noqa: BLE001 - PIL raises many types for bad files; each is reported
                skipped.append(SkippedFile(str(path), f"{type(error).__name__}: {error}".splitlines()[0]))
                continue
            labels.append(label)
            read += 1
        if read == 0:
            raise DataError(f"class folder {name!r} in {str(root)!r} has no readable images "
                            f"({len(paths)} file(s) could not be read)")
    x = torch.from_numpy(np.stack(arrays)).float().div_(255.0)
    return LabeledTensors(x, torch.tensor(labels, dtype=torch.int64), class_names, skipped)

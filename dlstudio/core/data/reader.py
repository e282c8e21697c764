"""The one image reader: training (in memory and streamed), the Data panel's preview and classify decode here.

Every file goes through :func:`read_image`, so a model sees its images the
same way wherever they come from:

- only regular files are opened (a FIFO would block ``open`` for ever);
- the size is read from the header and an image over :data:`MAX_IMAGE_PIXELS`
  is refused before anything is decoded (a 690 KB PNG can hold 13000x13000
  pixels: 2.7 GB decoded); JPEGs are decoded at a reduced scale (``draft``)
  when the model wants far fewer pixels;
- pixel values are scaled by the image's real bit depth: 16-bit (``I;16*``),
  32-bit integer (``I``) and float (``F``) images become 8-bit by scaling,
  never by clipping (PIL's ``convert("L")`` clips, so a dark 16-bit image
  read as white); palette, grey+alpha, CMYK and other modes go through RGB(A);
- a warning Pillow raises while decoding (a decompression bomb, a corrupt
  chunk) makes the file unreadable with that warning as the reason, instead
  of reaching stderr; warnings about metadata only (EXIF) are dropped.

The result is a (C, H, W) ``uint8`` array at the Input node's size.
"""

from __future__ import annotations

import os
import stat
import threading
import warnings
from pathlib import Path
from typing import Any

import numpy as np

# Largest image decoded, in pixels (64 Mpx: a 48 Mpx phone photo passes). Below Pillow's own limit
# (Image.MAX_IMAGE_PIXELS, 89.5 Mpx), whose warning would otherwise reach stderr first.
MAX_IMAGE_PIXELS = 64 * 2**20
_CHANNEL_MODES = {1: "L", 3: "RGB", 4: "RGBA"}
# Modes whose values are not 8-bit: scaled by their range instead of PIL's clipping conversion.
_WIDE_MODES = ("I;16", "I;16L", "I;16B", "I;16N", "I", "F")
# Modes that carry transparency: composited through RGBA by one rule.
_ALPHA_MODES = ("RGBA", "RGBa", "LA", "La", "PA")
# A warning with one of these words is about metadata, not pixels: the image itself is fine.
_HARMLESS_WARNINGS = ("exif", "metadata", "icc")
# Pillow's messages for a damaged file ("Truncated File Read", "image file is truncated (110 bytes not processed)",
# "broken data stream when reading image file", WebP's "could not create decoder object"), in plain words.
_DECODER_REASONS = (
    (("truncated",), "the file is truncated, it ends before the image does (an unfinished download or copy?)"),
    (("broken data stream", "could not create decoder"), "the file is damaged, its image data cannot be decoded"),
)
# catch_warnings swaps process-wide state: one decoding thread at a time may hold it.
_WARNINGS_LOCK = threading.RLock()


class UnreadableImage(Exception):
    """A file that is not decoded, with the reason in plain words (``str(error)``)."""


def check_regular_file(path: Path) -> None:
    """Refuse what is not a regular file (FIFO, device, folder, broken link) before anything opens it."""
    try:
        info = os.stat(path)
    except FileNotFoundError:
        if os.path.islink(path):
            raise UnreadableImage("a broken link (its target does not exist)") from None
        raise UnreadableImage("the file does not exist") from None
    except OSError as error:
        raise UnreadableImage(_os_reason(error)) from None
    if not stat.S_ISREG(info.st_mode):
        kind = "a folder" if stat.S_ISDIR(info.st_mode) else "not a regular file (a pipe, socket or device)"
        raise UnreadableImage(kind)


def read_image(path: Path | str, channels: int, height: int, width: int, *, resize: bool = True) -> np.ndarray:
    """Decode one file to a (C, H, W) uint8 array of ``channels`` channels; raises UnreadableImage with the reason.

    With ``resize`` (the folder loader's rule) the image is resized to
    ``height`` x ``width`` by PIL (bilinear, antialiased); without it the
    native size is kept (digits and torchvision models are resized by torch
    later), though a JPEG may be decoded at a reduced scale that stays at least
    that size.
    """
    from PIL import Image

    path = Path(path)
    check_regular_file(path)
    with _WARNINGS_LOCK, warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        try:
            with Image.open(path) as image:
                _check_size(image.size)
                _raise_on(caught)
                if image.format == "JPEG" and image.mode in ("L", "RGB", "CMYK", "YCbCr"):
                    # Decode at 1/2, 1/4 or 1/8 scale when that still leaves at least twice the pixels needed.
                    image.draft(image.mode, (2 * width, 2 * height))
                image.load()  # decoding happens here: a truncated file raises now, not later
                _raise_on(caught)
                array = fit_pil_image(image, channels, height if resize else image.height,
                                      width if resize else image.width)
                _raise_on(caught)
                return array
        except UnreadableImage:
            raise
        except Exception as error:  # noqa: BLE001 - PIL raises many types for bad files; each becomes a reason
            raise UnreadableImage(unreadable_reason(error)) from None


def fit_pil_image(image: Any, channels: int, height: int, width: int) -> np.ndarray:
    """A decoded PIL image as a (C, H, W) uint8 array: bit depth scaled, channels converted, resized.

    Public so that an image given as a PIL object (the window's drop, a
    paste) is prepared exactly as a file is. Transparency is composited onto
    black, the same rule as ``images.convert_channels``.
    """
    from PIL import Image

    _check_size(image.size)
    if image.mode in _WIDE_MODES:
        image = Image.fromarray(_wide_to_uint8(image), "L")
    elif image.mode == "1":
        image = image.convert("L")
    elif image.mode == "P":
        image = image.convert("RGBA" if "transparency" in image.info else "RGB")
    elif image.mode not in ("L", "RGB", *_ALPHA_MODES):
        image = image.convert("RGB")  # CMYK, YCbCr, LAB, HSV...
    if image.mode in _ALPHA_MODES:
        image = image.convert("RGBA")
        if channels != 4:
            background = Image.new("RGBA", image.size, (0, 0, 0, 255))
            image = Image.alpha_composite(background, image)
    image = image.convert(_CHANNEL_MODES[channels])
    if image.size != (width, height):
        image = image.resize((width, height), Image.Resampling.BILINEAR)
    # A copy: np.asarray gives a read-only view of Pillow's buffer, which torch.from_numpy warns about.
    array = np.array(image, dtype=np.uint8)
    return array[None] if array.ndim == 2 else array.transpose(2, 0, 1)


def _wide_to_uint8(image: Any) -> np.ndarray:
    """A 16-bit, 32-bit integer or float grey image as 8-bit, scaled by its real range."""
    values = np.asarray(image)
    if image.mode == "F":
        values = values.astype(np.float64, copy=False)
        if not np.isfinite(values).all():
            raise UnreadableImage("a float image with values that are not numbers (NaN or infinity)")
        low, high = float(values.min()), float(values.max())
        if low < 0.0 or high > 1.0:
            raise UnreadableImage(f"a float image with values from {low:.4g} to {high:.4g}; float images must "
                                  f"hold 0..1")
        return np.rint(values * 255.0).astype(np.uint8)
    top = float(2 ** _bit_depth(image) - 1)
    scaled = np.clip(values.astype(np.float64), 0.0, top) * (255.0 / top)
    return np.rint(scaled).astype(np.uint8)


def _bit_depth(image: Any) -> int:
    """Bits per sample of an integer image: 16 for I;16 modes and 16-bit PNGs, a TIFF's own BitsPerSample,
    else 32 (signed: values above 2**31 - 1 cannot occur)."""
    if image.mode.startswith("I;16") or image.format == "PNG":
        return 16
    tags = getattr(image, "tag_v2", None)
    if tags is not None:
        bits = tags.get(258)
        bits = bits[0] if isinstance(bits, tuple) and bits else bits
        if isinstance(bits, int) and 1 <= bits <= 31:
            return bits
    return 31


def _check_size(size: tuple[int, int]) -> None:
    width, height = size
    if width * height > MAX_IMAGE_PIXELS:
        raise UnreadableImage(f"too large: {width}x{height} pixels ({width * height / 1e6:.0f} megapixels); images "
                              f"over {MAX_IMAGE_PIXELS / 1e6:.0f} megapixels are not read")


def _raise_on(caught: list[warnings.WarningMessage]) -> None:
    for warning in caught:
        text = str(warning.message).splitlines()[0] if str(warning.message) else warning.category.__name__
        if not any(word in text.lower() for word in _HARMLESS_WARNINGS):
            raise UnreadableImage(_decoder_reason(text))
    caught.clear()


def unreadable_reason(error: BaseException) -> str:
    """Why an image could not be read, in plain words (never an exception's class name)."""
    if isinstance(error, UnreadableImage):
        return str(error)
    name = type(error).__name__
    if name == "UnidentifiedImageError":
        return "not an image (the file's contents are not a known image format)"
    if name == "DecompressionBombError":
        return f"too large: over {MAX_IMAGE_PIXELS / 1e6:.0f} megapixels"
    if isinstance(error, MemoryError):
        return "too large to decode in the memory available"
    if isinstance(error, OSError) and error.strerror:
        return _os_reason(error)
    text = str(error).splitlines()[0] if str(error) else ""
    return _decoder_reason(text) if text else "not a readable image"


def _decoder_reason(text: str) -> str:
    """A decoder's own message (Pillow's, in its words) as a reason a person can act on, where it is a known one."""
    for words, reason in _DECODER_REASONS:
        if any(word in text.lower() for word in words):
            return f"not a readable image: {reason}"
    return f"not a readable image ({_cut(text)})"


def _os_reason(error: OSError) -> str:
    return f"cannot read the file ({error.strerror or 'input/output error'})"


def _cut(text: str, limit: int = 200) -> str:
    return text if len(text) <= limit else text[:limit - 1] + "…"

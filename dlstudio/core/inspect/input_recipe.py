"""Replay how a run's training images were made, so that a person's own picture looks like them.

A model trained on sklearn's digits has only ever seen digits that fill an
8×8 grid, drawn thick and white on black: the UCI/NIST preprocessing
size-normalized each handwritten digit into a 32×32 bitmap and counted the
"on" pixels of every 4×4 block (values 0..16). A typed "7", thin and black on
white in the middle of a large canvas, looks like none of them, and the
model answers at random. :class:`InputRecipe` brings such a picture to the
training data's form: grey, the training data's polarity, cropped to its
content, the same size normalization and reduction as the source, and only
then the resize and normalization that every training image went through
(``Preprocessor``). Every step taken is said in words (``steps``) for the
classify card.

Recipes by data source (:func:`recipe_for_run`):

- ``digits``: the NIST/UCI recipe above: the digit's longer side fills the
  32×32 box, a digit wider for its height than the bundled ones are on
  average is narrowed to them, it is centred by its centre of mass, and its
  strokes are grown with a round pen until it has as much ink as they do;
- ``torchvision`` MNIST: MNIST's own recipe, the digit fitted into 20×20
  and centred by its centre of mass in 28×28; Fashion-MNIST: the object
  fitted into 28×28 and centred; both light on dark;
- ``folder``: resized as the folder was; inverted only when the folder's
  images are mostly light on dark and the picture is not;
- anything else (CIFAR-10, tables): resized as the data was, nothing more.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import torch
from torch.nn import functional

from dlstudio.core.data.images import convert_channels

DIGITS = "digits"
MNIST = "mnist"
FASHION = "fashion"
PLAIN = "plain"

INVERTED = "inverted to match the training data"
# The bundled digits: 32×32 bitmaps, 4×4 blocks counted into 8×8 (UCI "Optical Recognition of Handwritten Digits").
_NIST_BOX = 32
_NIST_BLOCK = 4
# Share of a digit's 32×32 bitmap that the pen fills. The bundled digits measure 30.5% (the mean of their
# 8×8 counts over 16, the same for every class: the strokes were normalized too); 35% was chosen over it
# because typed strokes are even, with no blots, and it classified typed digits better with models of five
# seeds of the default project (tests/core/test_classify_typed_digits.py).
_NIST_INK = 0.35
# Horizontal over vertical spread (second moments) of the bundled digits' ink, on average. Typed digits are
# wider for their height (an "8" 0.65-0.73 against 0.52); they are narrowed to it, never widened (a "1").
_NIST_SPREAD_RATIO = 0.56
_NARROWEST = 0.6
# A picture whose brightest pixel is this close to its background has nothing drawn on it.
_MIN_CONTRAST = 0.1
# Ink is what lies above this share of the way from the background to the brightest pixel.
_INK_LEVEL = 0.35
# Border pixels brighter than this on average: a light background.
_LIGHT = 0.5
# Folder images sampled to tell whether the training data is light on dark.
_FOLDER_SAMPLE = 48


@dataclass(frozen=True)
class PreparedImage:
    """A picture brought to the training data's form: ``raw`` (C, H, W) in [0, 1], and what was done to it."""

    raw: torch.Tensor
    steps: tuple[str, ...] = ()

    @property
    def inverted(self) -> bool:
        return INVERTED in self.steps

    @property
    def description(self) -> str:
        """The steps as one phrase: "inverted to match the training data, cropped to the digit, …"."""
        return ", ".join(self.steps)


@dataclass(frozen=True)
class InputRecipe:
    """How a run's training images were made, replayed on a person's picture before the usual resize.

    ``kind`` is one of ``digits``, ``mnist``, ``fashion`` or ``plain``;
    ``light_on_dark`` says whether the training images are light drawings on a
    dark background (pictures with a light background are then inverted).
    """

    kind: str = PLAIN
    light_on_dark: bool = False

    def apply(self, image: torch.Tensor) -> PreparedImage:
        """Replay the recipe on ``image`` (C, H, W) in [0, 1] at its own size; the result is not yet resized
        to the model's Input (``fit_images`` does that, as it did for the training data)."""
        if self.kind == PLAIN:
            return self._polarity_only(image)
        grey = _grey(image)
        steps: list[str] = []
        if self.light_on_dark and _border_mean(grey) > _LIGHT:
            grey = 1.0 - grey
            steps.append(INVERTED)
        ink = _ink(grey)
        if ink is None:
            return PreparedImage(grey[None], tuple(steps + ["nothing drawn found: resized as it is"]))
        ink = _crop(ink)
        if self.kind == DIGITS:
            digit, thickened = _nist_digit(ink)
            done = ["cropped to the digit"] + (["strokes thickened"] if thickened else [])
            return PreparedImage(digit[None], tuple(steps + done + ["reduced to 8×8 like the training digits"]))
        if self.kind == MNIST:
            return PreparedImage(_mnist_digit(ink)[None], tuple(
                steps + ["cropped to the digit", "fitted into 20×20 and centred in 28×28 like MNIST"]))
        return PreparedImage(_centred(ink, 28, 28)[None], tuple(
            steps + ["cropped to the object", "fitted into 28×28 like Fashion-MNIST"]))

    def _polarity_only(self, image: torch.Tensor) -> PreparedImage:
        if self.light_on_dark and _border_mean(_grey(image)) > _LIGHT:
            return PreparedImage(1.0 - image, (INVERTED,))
        return PreparedImage(image)


def recipe_for_run(data_settings: dict[str, Any], base_dir: Path | None = None) -> InputRecipe:
    """The recipe of a run's data settings (``settings.json``'s ``data``); ``base_dir`` resolves a folder path."""
    source = str(data_settings.get("source", DIGITS))
    if source == DIGITS:
        return InputRecipe(DIGITS, light_on_dark=True)
    if source == "torchvision":
        dataset = str(data_settings.get("dataset", ""))
        if dataset == "mnist":
            return InputRecipe(MNIST, light_on_dark=True)
        if dataset == "fashion-mnist":
            return InputRecipe(FASHION, light_on_dark=True)
        return InputRecipe(PLAIN)
    if source == "folder":
        path = str(data_settings.get("path") or "")
        if not path:
            return InputRecipe(PLAIN)
        folder = Path(path).expanduser()  # the training's own rule (data.prepare)
        if base_dir is not None and not folder.is_absolute():
            folder = base_dir / folder
        return InputRecipe(PLAIN, light_on_dark=folder_is_light_on_dark(folder))
    return InputRecipe(PLAIN)


def folder_is_light_on_dark(folder: Path, sample: int = _FOLDER_SAMPLE) -> bool:
    """Whether most images of an image folder (a sample, spread over its classes) have a dark background.

    False when the folder cannot be read any more: then no picture is inverted.
    """
    from dlstudio.core.data.folder import walk_images
    from dlstudio.core.data.reader import read_image

    if not folder.is_dir():
        return False
    paths = [path for path, reason in walk_images(folder) if reason is None]
    if not paths:
        return False
    chosen = [paths[int(i)] for i in np.linspace(0, len(paths) - 1, min(sample, len(paths)))]
    dark = readable = 0
    for path in dict.fromkeys(chosen):
        try:
            pixels = read_image(path, 1, 64, 64)
        except Exception:  # noqa: BLE001 - an unreadable file says nothing about the others
            continue
        readable += 1
        dark += _border_mean(torch.from_numpy(pixels[0]).float() / 255.0) < _LIGHT
    return readable > 0 and dark >= 0.75 * readable


# -- the steps ----------------------------------------------------------------------------------------


def _grey(image: torch.Tensor) -> torch.Tensor:
    """(C, H, W) -> (H, W) by the luma weights the data loaders use (alpha composited onto black)."""
    return convert_channels(image.float().unsqueeze(0), 1)[0, 0]


def _border(grey: torch.Tensor) -> torch.Tensor:
    """The outermost rows and columns, where a picture's background shows."""
    return torch.cat([grey[0], grey[-1], grey[:, 0], grey[:, -1]])


def _border_mean(grey: torch.Tensor) -> float:
    """The background's brightness: the mean of the border (the polarity test)."""
    return float(_border(grey).mean())


def _ink(grey: torch.Tensor) -> torch.Tensor | None:
    """How much of the drawing each pixel holds, 0 (background) to 1, or None when nothing is drawn."""
    # The median: a stroke that touches the border does not lift the background level.
    background = float(torch.quantile(_border(grey), 0.5))
    top = float(grey.max())
    if top - background < _MIN_CONTRAST:
        return None
    return ((grey - background) / (top - background)).clamp_(0.0, 1.0)


def _crop(ink: torch.Tensor) -> torch.Tensor:
    """The bounding box of the pixels that are clearly ink."""
    rows = torch.nonzero((ink > _INK_LEVEL).any(dim=1)).flatten()
    columns = torch.nonzero((ink > _INK_LEVEL).any(dim=0)).flatten()
    return ink[int(rows[0]):int(rows[-1]) + 1, int(columns[0]):int(columns[-1]) + 1]


def _fit(ink: torch.Tensor, box: int) -> torch.Tensor:
    """Scale ``ink`` so that its longer side is ``box`` pixels, aspect kept (area averaging when shrinking)."""
    height, width = ink.shape
    scale = box / max(height, width)
    size = (max(1, round(height * scale)), max(1, round(width * scale)))
    return functional.interpolate(ink[None, None], size=size, mode="bilinear", align_corners=False,
                                  antialias=True)[0, 0].clamp_(0.0, 1.0)


def _centred(ink: torch.Tensor, box: int, canvas: int) -> torch.Tensor:
    """Fitted into ``box`` and placed in the middle of a ``canvas`` square."""
    fitted = _fit(ink, box)
    out = torch.zeros(canvas, canvas)
    top, left = (canvas - fitted.shape[0]) // 2, (canvas - fitted.shape[1]) // 2
    out[top:top + fitted.shape[0], left:left + fitted.shape[1]] = fitted
    return out


def _spread_ratio(ink: torch.Tensor) -> float:
    """Horizontal over vertical standard deviation of the ink around its centre of mass."""
    rows = torch.arange(ink.shape[0], dtype=torch.float32)[:, None]
    columns = torch.arange(ink.shape[1], dtype=torch.float32)[None, :]
    total = ink.sum()
    centre_row, centre_column = (ink * rows).sum() / total, (ink * columns).sum() / total
    vertical = torch.sqrt((ink * (rows - centre_row) ** 2).sum() / total)
    horizontal = torch.sqrt((ink * (columns - centre_column) ** 2).sum() / total)
    return float(horizontal / vertical) if float(vertical) > 0 else 1.0


def _nist_normalized(ink: torch.Tensor) -> torch.Tensor:
    """The digit in the 32×32 box as the bundled digits are: its longer side filling the box, no wider for its
    height than they are on average, centred horizontally by its centre of mass."""
    height, width = ink.shape
    scale = _NIST_BOX / max(height, width)
    narrowing = min(1.0, max(_NARROWEST, _NIST_SPREAD_RATIO / _spread_ratio(ink)))
    size = (max(1, round(height * scale)), max(1, round(width * scale * narrowing)))
    fitted = functional.interpolate(ink[None, None], size=size, mode="bilinear", align_corners=False,
                                    antialias=True)[0, 0].clamp_(0.0, 1.0)
    columns = torch.arange(size[1], dtype=torch.float32)
    centre = float((fitted.sum(dim=0) * columns).sum() / fitted.sum())
    top = (_NIST_BOX - size[0]) // 2
    left = _clamp(round((_NIST_BOX - 1) / 2 - centre), 0, _NIST_BOX - size[1])
    out = torch.zeros(_NIST_BOX, _NIST_BOX)
    out[top:top + size[0], left:left + size[1]] = fitted
    return out


def _dilate(bitmap: torch.Tensor, radius: int) -> torch.Tensor:
    """Grow a binary drawing by ``radius`` pixels with a round pen."""
    if radius <= 0:
        return bitmap
    span = torch.arange(-radius, radius + 1, dtype=torch.float32)
    disk = ((span[:, None] ** 2 + span[None, :] ** 2) <= radius * radius + 0.5).float()
    grown = functional.conv2d(bitmap[None, None], disk[None, None], padding=radius)[0, 0]
    return (grown > 0).float()


def _nist_bitmap(ink: torch.Tensor) -> tuple[torch.Tensor, int]:
    """The digit size-normalized into a 32×32 bitmap (centred), with as much ink as the bundled digits have.

    Every class of the bundled digits has 30-32% of its 32×32 pixels on, a
    "1" as much as an "8": the strokes were normalized too. A thin typed digit
    is grown with a round pen until it has that much ink. Returns the bitmap
    and the pen's radius.
    """
    bitmap = (_nist_normalized(ink) > 0.5).float()
    best, best_radius, best_gap = bitmap, 0, abs(float(bitmap.mean()) - _NIST_INK)
    for radius in range(1, _NIST_BOX // 4):
        grown = _dilate(bitmap, radius)
        gap = abs(float(grown.mean()) - _NIST_INK)
        if gap >= best_gap:
            break  # growing further only moves away from the bundled digits' ink
        best, best_radius, best_gap = grown, radius, gap
    return best, best_radius


def _nist_digit(ink: torch.Tensor) -> tuple[torch.Tensor, bool]:
    """The 8×8 digit in [0, 1]: on-pixels of each 4×4 block counted (0..16), over 16, as sklearn's digits;
    and whether its strokes had to be thickened."""
    bitmap, radius = _nist_bitmap(ink)
    counts = functional.avg_pool2d(bitmap[None, None], _NIST_BLOCK)[0, 0] * (_NIST_BLOCK * _NIST_BLOCK)
    return counts.round_() / float(_NIST_BLOCK * _NIST_BLOCK), radius > 0


def _mnist_digit(ink: torch.Tensor) -> torch.Tensor:
    """MNIST's recipe: fitted into 20×20 (aspect kept), its centre of mass moved to the middle of 28×28."""
    fitted = _fit(ink, 20)
    total = float(fitted.sum())
    rows = torch.arange(fitted.shape[0], dtype=torch.float32)
    columns = torch.arange(fitted.shape[1], dtype=torch.float32)
    centre_row = float((fitted.sum(dim=1) * rows).sum()) / total
    centre_column = float((fitted.sum(dim=0) * columns).sum()) / total
    top = _clamp(round(14 - centre_row - 0.5), 0, 28 - fitted.shape[0])
    left = _clamp(round(14 - centre_column - 0.5), 0, 28 - fitted.shape[1])
    out = torch.zeros(28, 28)
    out[top:top + fitted.shape[0], left:left + fitted.shape[1]] = fitted
    return out


def _clamp(value: int, low: int, high: int) -> int:
    return max(low, min(high, value))


def describe(steps: Iterable[str]) -> str:
    """Steps as a sentence for a card ("Cropped to the digit, …"), or "" when nothing was done."""
    text = ", ".join(steps)
    return text[:1].upper() + text[1:] + "." if text else ""

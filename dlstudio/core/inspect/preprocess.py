"""Turn a user's image (file, PIL image, array) into the tensor the model saw during validation.

The same loader code as the data sources is used: files are decoded by the
one image reader (``data.reader.read_image``: size limit, bit depth, modes);
an image-folder model gets PIL's channel conversion and bilinear resize as
its folder did; digits and torchvision models get their images through
``images.fit_images`` (torch, antialiased), as their datasets did. Before
that resize, the run's :class:`~dlstudio.core.inspect.input_recipe.InputRecipe`
replays how the training images were made (a typed digit cropped and reduced
to 8×8 like sklearn's digits, inverted to white on black), and says so in the
steps of :meth:`Preprocessor.prepare`. Then the run's normalization.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import torch

from dlstudio.core.data.images import fit_images, image_input_shape
from dlstudio.core.data.normalization import Normalization
from dlstudio.core.data.reader import UnreadableImage, fit_pil_image, read_image
from dlstudio.core.inspect.errors import InspectError
from dlstudio.core.inspect.input_recipe import InputRecipe, PreparedImage

ImageLike = Any  # a path (str or Path), a PIL image, a numpy array or a tensor of raw values
_TABLE_SOURCES = ("csv",)


class UnreadableFile(InspectError):
    """An image file that cannot be read; ``reason`` is why, in plain words (the message names the file)."""

    def __init__(self, path: Path, reason: str) -> None:
        super().__init__(f"cannot read {str(path)!r}: {reason}")
        self.path, self.reason = path, reason


@dataclass(frozen=True)
class Preprocessor:
    """Prepares one sample for a model trained on ``source`` data with ``input_shape`` and ``normalization``.

    ``recipe`` replays how the training images were made (the default only resizes);
    ``load_trained`` gives each run the recipe of its data settings.
    """

    input_shape: tuple[int, ...]
    source: str = "digits"
    normalization: Normalization | None = None
    recipe: InputRecipe = InputRecipe()

    @property
    def takes_images(self) -> bool:
        return self.source not in _TABLE_SOURCES and len(self.input_shape) == 3

    def __call__(self, image: ImageLike) -> torch.Tensor:
        """The normalized sample, shaped like ``input_shape`` (no batch dimension), float32 on the CPU."""
        return self.normalize(self.raw(image))

    def normalize(self, raw: torch.Tensor) -> torch.Tensor:
        """Apply the run's normalization to raw samples ((C, H, W) or a batch)."""
        if self.normalization is None:
            return raw
        return self._on_batch(raw, self.normalization.apply)

    def denormalize(self, x: torch.Tensor) -> torch.Tensor:
        """Back from model input to raw values (images: [0, 1]), e.g. to show or save what the model saw."""
        if self.normalization is None:
            return x
        return self._on_batch(x, self.normalization.invert)

    def _on_batch(self, x: torch.Tensor, transform: Callable[[torch.Tensor], torch.Tensor]) -> torch.Tensor:
        """``transform`` works on batches: a single sample goes through as a batch of one."""
        if x.ndim == len(self.input_shape):
            return transform(x.unsqueeze(0))[0]
        return transform(x)

    def raw(self, image: ImageLike) -> torch.Tensor:
        """The sample before normalization: images (C, H, W) in [0, 1], table rows (F,) as given."""
        return self.prepare(image).raw

    def prepare(self, image: ImageLike, replay: bool = True) -> PreparedImage:
        """The sample before normalization and the steps that made it look like the training data.

        ``replay=False`` leaves the recipe out: for a picture that already is a
        model input (an image of the training data shown by another view).
        """
        if not self.takes_images:
            return PreparedImage(self._table_row(image))
        channels, height, width = image_input_shape(self.input_shape, "this model")
        if isinstance(image, (str, Path)):
            native = self._from_file(Path(image), channels, height, width)
        elif _is_pil(image):
            native = self._from_pil(image, channels, height, width)
        else:
            native = self._from_array(image, channels, height, width)
        prepared = self.recipe.apply(native) if replay else PreparedImage(native)
        # Digits and torchvision images were resized by fit_images (torch), a folder's by PIL (done above:
        # then this only converts the channels a recipe changed).
        return PreparedImage(fit_images(prepared.raw.unsqueeze(0), (channels, height, width))[0], prepared.steps)

    def _from_file(self, path: Path, channels: int, height: int, width: int) -> torch.Tensor:
        folder = self.source == "folder"
        try:
            array = read_image(path, channels, height, width, resize=folder)
        except UnreadableImage as error:
            raise UnreadableFile(path, str(error)) from None
        return torch.from_numpy(array).float().div_(255.0)

    def _from_pil(self, image: Any, channels: int, height: int, width: int) -> torch.Tensor:
        # torch.tensor copies: PIL's buffers are read-only, which torch.from_numpy warns about.
        if self.source == "folder":
            array = fit_pil_image(image, channels, height, width)
        else:
            array = fit_pil_image(image, channels, image.height, image.width)  # only decoded: resized later
        return torch.tensor(array, dtype=torch.float32).div_(255.0)

    def _from_array(self, image: Any, channels: int, height: int, width: int) -> torch.Tensor:
        array = image.detach().cpu().numpy() if isinstance(image, torch.Tensor) else np.asarray(image)
        if array.ndim == 2:
            array = array[None]
        elif array.ndim == 3 and array.shape[-1] in (1, 3, 4) and array.shape[0] not in (1, 3, 4):
            array = array.transpose(2, 0, 1)  # (H, W, C) as PIL and most libraries give it
        if array.ndim != 3 or array.shape[0] not in (1, 3, 4):
            raise InspectError(f"an image array must be (H, W), (H, W, C) or (C, H, W) with 1, 3 or 4 channels; "
                               f"got shape {list(array.shape)}")
        if np.issubdtype(array.dtype, np.integer):
            top = 65535.0 if array.dtype == np.uint16 else 255.0  # 16-bit pixels scaled by their own range
            raw = torch.from_numpy(np.clip(array.astype(np.float32) / top, 0.0, 1.0))
        else:
            raw = torch.from_numpy(np.clip(array.astype(np.float32), 0.0, 1.0))
        if self.source == "folder":
            # A folder model saw 8-bit files through PIL: go the same way.
            from PIL import Image

            pixels = np.rint(raw.numpy() * 255.0).astype(np.uint8)
            pil = Image.fromarray(pixels[0] if pixels.shape[0] == 1 else pixels.transpose(1, 2, 0))
            return self._from_pil(pil, channels, height, width)
        return fit_images(raw.unsqueeze(0), (channels, raw.shape[1], raw.shape[2]))[0]  # channels only

    def _table_row(self, row: Any) -> torch.Tensor:
        values = row.detach().cpu().float() if isinstance(row, torch.Tensor) else torch.as_tensor(
            np.asarray(row, dtype=np.float32))
        if tuple(values.shape) != tuple(self.input_shape):
            raise InspectError(f"this model takes rows of {list(self.input_shape)} values; got shape "
                               f"{list(values.shape)}")
        return values


def _is_pil(value: Any) -> bool:
    return hasattr(value, "convert") and hasattr(value, "mode") and hasattr(value, "size")


def to_uint8(raw: torch.Tensor | np.ndarray) -> np.ndarray:
    """A raw (C, H, W) image in [0, 1] as (H, W) or (H, W, C) uint8, ready for PIL or a thumbnail."""
    array = raw.detach().cpu().numpy() if isinstance(raw, torch.Tensor) else np.asarray(raw)
    pixels = np.rint(np.clip(array, 0.0, 1.0) * 255.0).astype(np.uint8)
    return pixels[0] if pixels.shape[0] == 1 else pixels.transpose(1, 2, 0)


def save_png(raw: torch.Tensor | np.ndarray, path: Path | str) -> None:
    """Write a raw (C, H, W) image in [0, 1] as an 8-bit PNG (grey, RGB or RGBA by its channels)."""
    from PIL import Image

    Image.fromarray(to_uint8(raw)).save(Path(path), format="PNG")

"""The input recipes: a person's picture made to look like the training data, and each step said in words."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import torch
from PIL import Image, ImageDraw

from dlstudio.core.inspect import Preprocessor
from dlstudio.core.inspect.input_recipe import (
    DIGITS, FASHION, INVERTED, MNIST, PLAIN, InputRecipe, describe, recipe_for_run,
)


def drawn_seven(size: int = 120, white_on_black: bool = True, width: int = 3) -> torch.Tensor:
    """A thin "7" in the upper left part of a large canvas, as (1, H, W) in [0, 1]."""
    image = Image.new("L", (size, size), 0 if white_on_black else 255)
    ink = 255 if white_on_black else 0
    draw = ImageDraw.Draw(image)
    draw.line([(20, 15), (60, 15), (35, 80)], fill=ink, width=width)
    return torch.from_numpy(np.asarray(image, dtype=np.float32) / 255.0)[None]


def test_digits_recipe_makes_an_8x8_digit_of_counts_that_fills_the_height_like_sklearns() -> None:
    prepared = InputRecipe(DIGITS, light_on_dark=True).apply(drawn_seven())
    digit = prepared.raw[0]
    assert tuple(digit.shape) == (8, 8)
    counts = digit * 16
    torch.testing.assert_close(counts, counts.round())  # whole counts 0..16 of 4×4 blocks
    rows = torch.nonzero(digit.sum(dim=1) > 0).flatten()
    assert int(rows[0]) == 0 and int(rows[-1]) == 7  # size-normalized: the digit is as tall as the box
    centre = float((digit.sum(dim=0) * torch.arange(8.0)).sum() / digit.sum())
    assert abs(centre - 3.5) <= 0.5  # and centred across it by its centre of mass
    assert 0.25 <= float(digit.mean()) <= 0.45  # a thin line thickened to the bundled digits' ink
    assert prepared.steps == ("cropped to the digit", "strokes thickened", "reduced to 8×8 like the training digits")
    assert not prepared.inverted


def test_a_dark_drawing_on_light_paper_is_inverted_and_said_so() -> None:
    recipe = InputRecipe(DIGITS, light_on_dark=True)
    light = recipe.apply(drawn_seven(white_on_black=True))
    dark = recipe.apply(drawn_seven(white_on_black=False))
    assert dark.inverted and INVERTED in dark.description
    torch.testing.assert_close(dark.raw, light.raw)
    # Said first: it is what a person most needs to know about the picture the model saw.
    assert describe(dark.steps) == ("Inverted to match the training data, cropped to the digit, strokes thickened, "
                                    "reduced to 8×8 like the training digits.")


def test_a_blank_picture_is_resized_as_it_is() -> None:
    blank = torch.full((1, 40, 30), 0.2)
    prepared = InputRecipe(DIGITS, light_on_dark=True).apply(blank)
    torch.testing.assert_close(prepared.raw, blank)
    assert prepared.steps == ("nothing drawn found: resized as it is",)


def test_mnist_recipe_fits_20x20_and_centres_the_mass_in_28x28() -> None:
    prepared = InputRecipe(MNIST, light_on_dark=True).apply(drawn_seven(white_on_black=False))
    digit = prepared.raw[0]
    assert tuple(digit.shape) == (28, 28) and prepared.inverted
    rows = torch.nonzero(digit.sum(dim=1) > 0.01).flatten()
    columns = torch.nonzero(digit.sum(dim=0) > 0.01).flatten()
    assert int(rows[-1] - rows[0]) + 1 <= 21 and int(columns[-1] - columns[0]) + 1 <= 21
    grid = torch.arange(28, dtype=torch.float32)
    centre_row = float((digit.sum(dim=1) * grid).sum() / digit.sum())
    centre_column = float((digit.sum(dim=0) * grid).sum() / digit.sum())
    assert abs(centre_row - 13.5) <= 1.0 and abs(centre_column - 13.5) <= 1.0


def test_fashion_recipe_fits_the_object_into_28x28() -> None:
    prepared = InputRecipe(FASHION, light_on_dark=True).apply(drawn_seven())
    assert tuple(prepared.raw.shape) == (1, 28, 28)
    rows = torch.nonzero(prepared.raw[0].sum(dim=1) > 0.01).flatten()
    assert int(rows[-1] - rows[0]) + 1 >= 26


def test_plain_recipe_only_inverts_for_light_on_dark_training_data() -> None:
    picture = drawn_seven(white_on_black=False)
    assert InputRecipe(PLAIN).apply(picture).raw is picture
    flipped = InputRecipe(PLAIN, light_on_dark=True).apply(picture)
    assert flipped.steps == (INVERTED,)
    torch.testing.assert_close(flipped.raw, 1.0 - picture)
    assert InputRecipe(PLAIN, light_on_dark=True).apply(drawn_seven()).steps == ()


def _folder(root: Path, background: int) -> Path:
    for name in ("a", "b"):
        (root / name).mkdir(parents=True)
        for index in range(3):
            image = Image.new("L", (16, 16), background)
            ImageDraw.Draw(image).ellipse((4, 4, 11, 11), fill=255 - background)
            image.save(root / name / f"{index}.png")
    return root


@pytest.mark.parametrize(("settings", "kind", "light_on_dark"), [
    ({"source": "digits"}, DIGITS, True),
    ({"source": "torchvision", "dataset": "mnist"}, MNIST, True),
    ({"source": "torchvision", "dataset": "fashion-mnist"}, FASHION, True),
    ({"source": "torchvision", "dataset": "cifar10"}, PLAIN, False),
    ({"source": "csv", "path": "rows.csv"}, PLAIN, False),
    ({"source": "folder", "path": "gone"}, PLAIN, False),  # a folder moved away: nothing inverted
])
def test_each_data_source_has_its_recipe(settings: dict, kind: str, light_on_dark: bool, tmp_path: Path) -> None:
    recipe = recipe_for_run(settings, base_dir=tmp_path)
    assert (recipe.kind, recipe.light_on_dark) == (kind, light_on_dark)


def test_a_folder_of_light_drawings_on_black_inverts_light_pictures(tmp_path: Path) -> None:
    _folder(tmp_path / "stars", background=0)
    _folder(tmp_path / "photos", background=255)
    assert recipe_for_run({"source": "folder", "path": "stars"}, base_dir=tmp_path).light_on_dark
    assert not recipe_for_run({"source": "folder", "path": str(tmp_path / "photos")}).light_on_dark
    preprocessor = Preprocessor((1, 16, 16), "folder", None, recipe_for_run({"source": "folder", "path": "stars"},
                                                                              base_dir=tmp_path))
    light_paper = Image.new("L", (16, 16), 255)
    prepared = preprocessor.prepare(light_paper)
    assert prepared.inverted and float(prepared.raw.max()) == 0.0
    # A picture that already is a model input is left alone.
    assert not preprocessor.prepare(light_paper, replay=False).inverted

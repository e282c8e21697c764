"""Typed digits, as a person brings them, classified by a lenet5 trained on the default project (issue 13).

The ten digits are rendered in two fonts the system has, white on black and
black on white, as 28×28 and 128×128 pictures (the digit drawn large and
centred), and classified through the run folder as ``dlstudio classify``
and the window do. Each polarity must get at least 16 of its 20 right at
each size. The figures of every combination are printed (``-s`` shows them).
"""

from __future__ import annotations

import shutil
import subprocess
from pathlib import Path

import pytest
import torch
from PIL import Image, ImageDraw, ImageFont

from dlstudio.core.inspect import load_trained
from dlstudio.core.inspect.input_recipe import INVERTED
from dlstudio.core.project import save_project
from dlstudio.core.project.templates import default_project
from dlstudio.core.training.session import start_session

pytestmark = [pytest.mark.usefixtures("one_torch_thread"), pytest.mark.timeout(180)]

# Preferred families first: a sans and a serif face differ the most.
_WANTED = ("DejaVuSans.ttf", "DejaVuSerif.ttf", "LiberationSans-Regular.ttf", "LiberationSerif-Regular.ttf",
           "NotoSans-Regular.ttf", "FreeSans.ttf", "FreeSerif.ttf")
_FONT_FOLDERS = ("/usr/share/fonts", "/usr/local/share/fonts", "/Library/Fonts", "/System/Library/Fonts",
                 "C:/Windows/Fonts")


def system_fonts() -> dict[str, Path]:
    """Up to two TrueType fonts of this system, by file name (fc-list first, then the usual folders)."""
    found: dict[str, Path] = {}
    candidates: list[Path] = []
    if shutil.which("fc-list"):
        listing = subprocess.run(["fc-list", "--format", "%{file}\n"], capture_output=True, text=True, check=False)
        candidates += [Path(line) for line in listing.stdout.splitlines() if line.endswith(".ttf")]
    for folder in _FONT_FOLDERS:
        if Path(folder).is_dir():
            candidates += sorted(Path(folder).rglob("*.ttf"))
    for name in _WANTED:
        for path in candidates:
            if path.name == name and path.is_file() and len(found) < 2:
                found.setdefault(path.stem, path)
    return found


def fonts_to_render(size: int) -> dict[str, ImageFont.FreeTypeFont | ImageFont.ImageFont]:
    """Two fonts at ``size`` pixels; PIL's own scalable font stands in when the system has fewer than two."""
    fonts: dict[str, ImageFont.FreeTypeFont | ImageFont.ImageFont] = {
        name: ImageFont.truetype(str(path), size) for name, path in system_fonts().items()}
    if len(fonts) < 2:
        fonts["Pillow default (Aileron)"] = ImageFont.load_default(size=size)  # Pillow >= 10.1: scalable
    if len(fonts) < 2:
        pytest.skip("the system has no TrueType font besides Pillow's own: two fonts are needed")
    return dict(list(fonts.items())[:2])


def typed_digit(digit: int, font: ImageFont.FreeTypeFont | ImageFont.ImageFont, size: int,
                white_on_black: bool) -> Image.Image:
    """The digit in the middle of a ``size`` square, about three quarters of its height, as a grey image."""
    image = Image.new("L", (size, size), 0 if white_on_black else 255)
    ImageDraw.Draw(image).text((size / 2, size / 2), str(digit), font=font, fill=255 if white_on_black else 0,
                               anchor="mm")
    return image


@pytest.fixture(scope="module")
def default_run(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The default project (lenet5 on the bundled digits) trained with its own settings, as `dlstudio train`."""
    project = default_project()
    path = tmp_path_factory.mktemp("typed") / "digits.dlstudio"
    save_project(project, path)
    torch.manual_seed(0)
    session = start_session(project.graph, project.data, {**project.training, "device": "cpu",
                                                          "channels_last": "off"}, path)
    session.record_in_file()
    result = session.finish(session.trainer().fit())
    assert result["test_accuracy"] >= 0.97  # the model itself reads its own kind of digits
    return session.run_dir


def test_typed_digits_are_read_in_both_polarities_and_sizes(default_run: Path, tmp_path: Path) -> None:
    trained = load_trained(default_run, device="cpu")
    correct: dict[tuple[str, str, int], int] = {}
    for size in (28, 128):
        for font_name, font in fonts_to_render(round(size * 0.75)).items():
            for polarity, white_on_black in (("white on black", True), ("black on white", False)):
                paths = []
                for digit in range(10):
                    paths.append(tmp_path / f"{size}-{font_name}-{int(white_on_black)}-{digit}.png")
                    typed_digit(digit, font, size, white_on_black).save(paths[-1])
                results = list(trained.classify_paths(paths, top_k=1))
                labels = [result.prediction.label for result in results]
                correct[(font_name, polarity, size)] = sum(label == str(d) for d, label in enumerate(labels))
                # What was done is said; only the dark-on-light pictures were inverted.
                for result in results:
                    assert "cropped to the digit" in result.prediction.steps
                    assert (INVERTED in result.prediction.steps) == (not white_on_black)
                print(f"{font_name:>12} {polarity:>14} {size:>3}×{size:<3} "
                      f"{correct[(font_name, polarity, size)]:>2}/10 read as {''.join(labels)}")
    for size in (28, 128):
        for polarity in ("white on black", "black on white"):
            total = sum(count for (_, kind, at), count in correct.items() if kind == polarity and at == size)
            assert total >= 16, f"{polarity} at {size}×{size}: {total}/20 ({correct})"


def test_the_card_input_is_the_tensor_the_model_classified(default_run: Path) -> None:
    """The picture shown as "model input" is exactly what was classified (the recipe's 8×8, upscaled)."""
    trained = load_trained(default_run, device="cpu")
    font = next(iter(fonts_to_render(96).values()))
    picture = typed_digit(7, font, 128, white_on_black=False)
    prepared = trained.prepare(picture)
    assert prepared.inverted and tuple(prepared.raw.shape) == trained.input_shape
    [from_picture] = trained.classify([picture])
    [from_tensor] = trained.classify(trained.preprocessor.normalize(prepared.raw).unsqueeze(0))
    assert from_picture.label == from_tensor.label == "7"
    torch.testing.assert_close(torch.from_numpy(from_picture.probabilities),
                               torch.from_numpy(from_tensor.probabilities))

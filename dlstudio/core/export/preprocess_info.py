"""``preprocess.json``: how to turn an image into the exported model's input, for code outside dlstudio.

It travels beside every export (and inside the safetensors metadata), so a
person with only the exported file and this one can prepare inputs the way
the run's validation data was prepared: channels, resize, scale to [0, 1],
normalization, and the class names that the outputs stand for.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from dlstudio import __version__
from dlstudio.core.export.source import ExportSource, graph_hash

PREPROCESS_FILE = "preprocess.json"
FORMAT = "dlstudio-preprocess"
VERSION = 1

# How each data source made its training images, in words and as the resize a reader should replay.
_RESIZE = {
    "folder": ("PIL bilinear resize of each file to the Input size (PIL's Image.resize, BILINEAR)",
               "pil-bilinear"),
    "digits": ("torch bilinear interpolation with antialiasing (align_corners=False) of the source images",
               "bilinear-antialias"),
    "torchvision": ("torch bilinear interpolation with antialiasing (align_corners=False) of the source images",
                    "bilinear-antialias"),
}
_TRAINING_IMAGES = {
    "digits": "scikit-learn's bundled 8x8 digits: white strokes on black, each pixel the count (0-16) of ink in a "
              "4x4 block of a 32x32 bitmap of a digit cropped to its bounding box, divided by 16, then resized "
              "to the Input size",
    "folder": "image files from one subfolder per class, converted to the Input's channels and resized",
    "torchvision": "a standard torchvision dataset, converted to the Input's channels and resized",
    "csv": "rows of numbers from a CSV table (not images)",
}
# PIL's mode names, so that a reader can call Image.convert(mode) with them.
_CHANNEL_MODES = {1: "L", 3: "RGB", 4: "RGBA"}


def preprocess_description(source: ExportSource) -> dict[str, Any]:
    """The preprocess.json object of an export of ``source``."""
    shape = list(source.input_shape)
    data_source = str(source.data_settings.get("source", "digits"))
    images = data_source != "csv" and len(shape) == 3
    description: dict[str, Any] = {
        "format": FORMAT, "version": VERSION, "dlstudio_version": __version__,
        "task": source.task,
        "input_shape": shape,
        "input_layout": "NCHW (batch, channels, height, width)" if images else "N, features",
        "class_names": list(source.class_names),
        "data_source": data_source,
        "training_images": _TRAINING_IMAGES.get(data_source, data_source),
        "normalization": source.normalization.to_dict() if source.normalization else None,
        "graph_sha256": graph_hash(source.graph),
    }
    if images:
        channels, height, width = shape
        how, method = _RESIZE.get(data_source, _RESIZE["digits"])
        description["image"] = {
            "channels": channels, "mode": _CHANNEL_MODES.get(channels, "RGB"),
            "height": height, "width": width, "resize": method, "resize_described": how,
            "scale": "pixel values / 255, so that they lie in [0, 1]",
            "alpha": "composited onto black",
        }
    description["steps"] = _steps(images, source.normalization is not None)
    making = _image_making(source) if images else None
    if making is not None:
        description["image_making"] = making
    if source.run_dir is not None:
        description["run"] = source.run_dir.name
    return description


def _steps(images: bool, normalized: bool) -> list[str]:
    steps = (["convert the image to image.mode (PIL: L grey, RGB, RGBA)", "resize it to width x height",
              "divide the pixel values by 255", "lay it out as (channels, height, width) and add a batch dimension"] if images
             else ["give a (batch, features) float32 array"])
    if normalized:
        steps.append("subtract normalization.mean and divide by normalization.std, per channel (or feature)")
    steps.append("output index i is class_names[i]")
    return steps


def _image_making(source: ExportSource) -> dict[str, Any] | None:
    """How the training images were made, as dlstudio's classification replays it (core.inspect.input_recipe)."""
    from dlstudio.core.inspect.input_recipe import recipe_for_run

    try:
        recipe = recipe_for_run(source.data_settings, source.data_dir)
    except (OSError, ValueError):  # a folder that cannot be sampled now: nothing to say about it
        return None
    replay = {
        "digits": "crop to the ink, size-normalize into a 32x32 bitmap as the UCI digits were, count 4x4 blocks "
                  "into 8x8, then resize to the Input",
        "mnist": "crop to the ink, fit into 20x20, centre by the centre of mass in 28x28",
        "fashion": "crop to the object, fit into 28x28, centred",
    }.get(recipe.kind, "resize as the training images were")
    return {"recipe": recipe.kind, "light_on_dark": recipe.light_on_dark,
            "to_replay_on_your_pictures": replay + ("; invert a picture with a light background" if
                                                     recipe.light_on_dark else ""),
            "note": "dlstudio classify replays this before the steps above; the README's predict.py does not"}


def preprocess_path(export_path: Path) -> Path:
    """Where the preprocess.json of an export goes: beside it."""
    return export_path.with_name(PREPROCESS_FILE)


def check_export_target(export_path: Path | str) -> None:
    """Refuse, before the model is compiled and anything is written, an export that could not be written whole.

    Its folder must exist; a preprocess.json beside it that is a symbolic link (never written through)
    or not a regular file would otherwise fail after the export itself was written, leaving a file
    without its description. Raises ExportError with one line naming the folder or the file.
    """
    import os

    from dlstudio.core.export.errors import ExportError

    export_path = Path(export_path)
    folder = export_path.parent
    if not folder.is_dir():
        what = "is not a folder" if folder.exists() else "does not exist"
        raise ExportError(f"{export_path}: cannot write: the folder {folder} {what}; nothing was exported "
                          f"(create it or choose another)")
    path = preprocess_path(export_path)
    for link in (export_path, path):
        if link.is_symlink():
            try:
                target = os.readlink(link)
            except OSError:
                target = "somewhere else"
            raise ExportError(f"{link}: cannot write: it is a symbolic link (to {target}); dlstudio does not write "
                              f"through links, so nothing was exported (remove the link or choose another name)")
    if path.exists() and not path.is_file():
        raise ExportError(f"{path}: cannot write: it is not a regular file, so nothing was exported "
                          f"(choose another folder)")


def write_preprocess(source: ExportSource, export_path: Path, *, replace: bool = False) -> tuple[Path, bool]:
    """Write preprocess.json beside ``export_path``; (its path, whether it was written).

    One that exists with other contents (it describes another model) is kept unless ``replace``.
    """
    import json

    from dlstudio.core.safe_io import write_text

    path = preprocess_path(export_path)
    text = json.dumps(preprocess_description(source), indent=2) + "\n"
    if path.exists() and not replace:
        try:
            if path.read_text(encoding="utf-8") != text:
                return path, False
        except (OSError, UnicodeDecodeError):
            return path, False
    write_text(path, text)
    return path, True

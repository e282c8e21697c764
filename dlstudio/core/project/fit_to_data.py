"""Shape a network for the person's data: a folder of pictures (input channels and size) or a CSV table (its
feature columns), and one output per class.

A template drawn for the 8x8 grey digits takes 1x28x28 inputs and gives 10 scores; a folder of colour photos
of three kinds of bird needs 3 input channels, a size the photos survive being shrunk to, and 3 scores.
:func:`survey_image_folder` reads the folder's class subfolders and a few image headers (no pixels
decoded), :func:`survey_table` a table's columns; :func:`fit_network` sets the Input node and the head,
returning what it changed so that the window can make it one undo step. No Qt.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from dlstudio.core.errors import GraphError
from dlstudio.core.project.head import ParamChange, find_head, replace_head
from dlstudio.core.project.model import Project

# Square input sides offered: small pictures keep their detail at 32, photos are shrunk to 64 (a CNN of the
# templates' size trains at a few hundred images a second on a laptop's CPU at 64x64).
SMALL_SIDE, PHOTO_SIDE = 32, 64
_SAMPLED = 24  # image headers read to decide colour and size
_GREY_MODES = frozenset({"1", "L", "LA", "I", "I;16", "F"})  # PIL's modes of one intensity channel


@dataclass(frozen=True)
class FolderSurvey:
    """What a network needs to know of an image folder: its classes, and the input it should take."""

    folder: Path
    class_names: tuple[str, ...]
    channels: int  # 3 when any sampled image has colour, else 1
    side: int  # the square input size proposed

    @property
    def name(self) -> str:
        return self.folder.name

    @property
    def input_shape(self) -> list[int]:
        return [self.channels, self.side, self.side]

    def describe(self) -> str:
        colour = "colour" if self.channels == 3 else "grey"
        return (f"{len(self.class_names)} classes ({', '.join(self.class_names[:4])}"
                f"{', …' if len(self.class_names) > 4 else ''}); {colour} images at {self.side}×{self.side}")


def survey_image_folder(folder: Path | str) -> FolderSurvey:
    """The classes of ``folder`` (one subfolder each) and the input its images suggest.

    Reads the directory tree and the headers of up to a few dozen images, spread over the classes.
    DataError (one line) for a folder that is not a folder of classes.
    """
    from dlstudio.core.data.folder import scan_folder

    root = Path(folder)
    names, files, _skipped = scan_folder(root)
    sampled = _spread(files, _SAMPLED)
    modes, sides = [], []
    for path in sampled:
        header = _header(path)
        if header is not None:
            modes.append(header[0])
            sides.append(min(header[1]))
    colour = any(mode not in _GREY_MODES for mode in modes)  # a palette image may hold colours: counted as colour
    side = PHOTO_SIDE if sides and sorted(sides)[len(sides) // 2] > 48 else SMALL_SIDE
    return FolderSurvey(root, tuple(names), 3 if colour else 1, side)


def fit_network(project: Project, survey: FolderSurvey | TableSurvey) -> list[ParamChange]:
    """Set ``project``'s Input shape and classification head for ``survey`` (an image folder's or a CSV
    table's); returns the changes (may be empty).

    GraphError when the network has no single Input or no classification head to size.
    """
    graph = project.graph
    inputs = [node for node in graph if node.spec.role == "input"]
    if len(inputs) != 1:
        raise GraphError(f"the network needs one Input node to fit it to the data; it has {len(inputs)}")
    find_head(graph)  # refuses a network without a classification head before anything is changed
    node = inputs[0]
    changes = []
    if list(node.params.get("shape", [])) != survey.input_shape:
        changes.append(ParamChange(node.id, "shape", list(node.params["shape"]), survey.input_shape))
        graph.set_param(node.id, "shape", survey.input_shape)
    return changes + replace_head(project, len(survey.class_names))


def _spread(files: list[list[Path]], count: int) -> list[Path]:
    """Up to ``count`` paths taken round-robin over the classes, so each class has its say."""
    picked: list[Path] = []
    depth = 0
    while len(picked) < count and any(depth < len(paths) for paths in files):
        picked += [paths[depth] for paths in files if depth < len(paths)][: count - len(picked)]
        depth += 1
    return picked


def _header(path: Path) -> tuple[str, tuple[int, int]] | None:
    """(mode, size) from the file's header, or None when it is not a readable image."""
    from PIL import Image

    try:
        with Image.open(path) as image:
            return image.mode, image.size
    except (OSError, ValueError, Image.DecompressionBombError):
        return None


@dataclass(frozen=True)
class TableSurvey:
    """What a network needs to know of a CSV table: its feature count and its classes."""

    path: Path
    features: int
    class_names: tuple[str, ...]

    @property
    def name(self) -> str:
        return self.path.name

    @property
    def input_shape(self) -> list[int]:
        return [self.features]

    def describe(self) -> str:
        return (f"{self.features} feature columns, {len(self.class_names)} classes "
                f"({', '.join(self.class_names[:4])}{', …' if len(self.class_names) > 4 else ''})")


def survey_table(path: Path | str, label_column: str = "") -> TableSurvey:
    """The feature columns and classes of a CSV file (read as training reads it); DataError (one line)."""
    from dlstudio.core.data.table import csv_classes, read_csv_table

    features, labels, _note = read_csv_table(Path(path), label_column)
    return TableSurvey(Path(path), int(features.shape[1]), tuple(csv_classes(labels)))


def pretrained_weights_on_disk(model: str = "mobilenet_v3_small", weights: str = "IMAGENET1K_V1") -> bool:
    """Whether torchvision's ``model`` weights are in its cache already (a fine-tune then needs no download)."""
    from dlstudio.core.errors import DlstudioError
    from dlstudio.core.training.pretrained import torchvision_cache_path, torchvision_weights

    try:
        return torchvision_cache_path(torchvision_weights(model, weights)).is_file()
    except (DlstudioError, OSError):
        return False

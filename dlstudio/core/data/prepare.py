"""From a project's data settings to normalized, split tensors that fit the model."""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import torch

from dlstudio.core.data.augment import Augmentation
from dlstudio.core.data.dataset import LabeledTensors, SkippedFile, SkippedFiles
from dlstudio.core.data.digits import load_digits
from dlstudio.core.data.errors import DataError
from dlstudio.core.data.folder import empty_class_problem, load_image_folder, scan_folder
from dlstudio.core.data.images import image_input_shape, pixels_to_input
from dlstudio.core.data.normalization import Normalization, RunningStats
from dlstudio.core.data.reader import UnreadableImage, read_image
from dlstudio.core.data.split import split_indices
from dlstudio.core.data.standard import load_standard
from dlstudio.core.data.streaming import (
    NORMALIZATION_SAMPLE,
    ImageFiles,
    StreamingSplit,
    WorkerSlot,
    decoded_bytes,
    default_workers,
    stream_threshold,
)
from dlstudio.core.data.table import load_csv

SOURCES = ("digits", "folder", "torchvision", "csv")
CLASSIFICATION = "classification"
RECONSTRUCTION = "reconstruction"

# Used for keys a project leaves out (the project schema normally fills them in).
DATA_DEFAULTS: dict[str, Any] = {
    "source": "digits", "path": "", "dataset": "mnist", "label_column": "",
    "val_fraction": 0.15, "test_fraction": 0.15, "split_seed": 0, "normalize": True,
    "augment_crop_padding": 0, "augment_hflip": False, "augment_rotation": 0.0, "augment_color_jitter": 0.0,
}


def default_dataset_root() -> Path:
    """Where standard datasets go when the project names no folder."""
    return Path.home() / ".cache" / "dlstudio" / "datasets"


@dataclass(frozen=True)
class DataRequirements:
    """What the model expects: one sample's shape, its task and, for classification, the class count."""

    input_shape: tuple[int, ...]
    task: str = CLASSIFICATION
    classes: int | None = None

    @classmethod
    def from_model(cls, model: Any) -> DataRequirements:
        """Read them off a compiled GraphModule (one Input and one Output node)."""
        if len(model.input_ids) != 1 or len(model.output_ids) != 1:
            raise DataError(f"training needs exactly one Input and one Output node; the graph has "
                            f"{len(model.input_ids)} Input and {len(model.output_ids)} Output nodes")
        task = model.tasks[model.output_ids[0]]
        kind = task.get("task", CLASSIFICATION)
        return cls(tuple(model.input_shapes[model.input_ids[0]]), kind,
                   int(task["classes"]) if kind == CLASSIFICATION else None)


class DataSplit:
    """One split held in memory: inputs and class indices.

    ``stored`` is either float32 samples, already normalized (digits, CSV,
    torchvision), or uint8 pixels (image folders: 4x less memory), which are
    made float, normalized with ``normalization`` and laid out in ``layout``
    per batch. ``x`` gives the whole split as model input either way.
    It shares its batch interface (``to``, ``batches``, ``in_order``,
    ``close``) with :class:`StreamingSplit`, so the trainer has one loop for both.
    """

    def __init__(self, x: torch.Tensor, y: torch.Tensor, normalization: Normalization | None = None,
                 layout: torch.memory_format = torch.contiguous_format) -> None:
        self.stored = x
        self.y = y
        self.normalization = normalization
        self.layout = layout

    @property
    def pixels(self) -> bool:
        """Whether the samples are stored as uint8 pixels, converted per batch."""
        return self.stored.dtype == torch.uint8

    @property
    def x(self) -> torch.Tensor:
        """The whole split as model input (for uint8 pixels a new float32 tensor: 4x their memory)."""
        return self._input(self.stored) if self.pixels else self.stored

    def __len__(self) -> int:
        return int(self.stored.shape[0])

    @property
    def sample_shape(self) -> tuple[int, ...]:
        return tuple(self.stored.shape[1:])

    def _input(self, stored: torch.Tensor) -> torch.Tensor:
        return pixels_to_input(stored, self.normalization, self.layout) if self.pixels else stored

    def to(self, device: torch.device, layout: torch.memory_format = torch.contiguous_format) -> DataSplit:
        """The split on ``device``; float samples stored once in ``layout``, so slicing by an index keeps it (no
        copy per batch); uint8 pixels are not copied on the CPU (each batch is laid out as it is converted)."""
        x = self.stored.to(device)
        if self.pixels:
            return DataSplit(x, self.y.to(device), self.normalization, layout)
        return DataSplit(x.contiguous(memory_format=layout) if x.ndim == 4 else x, self.y.to(device))

    def batches(self, order: torch.Tensor, first: int, size: int) -> Iterator[tuple[int, torch.Tensor, torch.Tensor]]:
        """``(batch number, x, y)`` for batches ``first..`` of the index ``order``, sliced from memory."""
        order = order.to(self.stored.device)
        x_all, y_all, convert = self.stored, self.y, self._input
        for b in range(first, -(-len(order) // size)):
            index = order[b * size:(b + 1) * size]
            yield b, convert(x_all[index]), y_all[index]

    def in_order(self, size: int) -> Iterator[tuple[torch.Tensor, torch.Tensor]]:
        """The whole split in order, ``size`` samples per batch."""
        for start in range(0, len(self), size):
            yield self._input(self.stored[start:start + size]), self.y[start:start + size]

    def close(self) -> None:
        """Nothing to release (a streaming split lets its workers go here)."""


@dataclass
class PreparedData:
    """Everything the trainer needs from the data, plus what the user should see about it."""

    train: DataSplit | StreamingSplit
    val: DataSplit | StreamingSplit
    test: DataSplit | StreamingSplit
    class_names: list[str]
    task: str
    normalization: Normalization | None
    augmentation: Augmentation
    skipped: SkippedFiles = field(default_factory=SkippedFiles)

    def __post_init__(self) -> None:
        if not isinstance(self.skipped, SkippedFiles):
            self.skipped = SkippedFiles(self.skipped)

    def log_skipped(self, path: Path | str) -> None:
        """Write the skipped files to ``path`` (a run folder's ``skipped.jsonl``), and each one found later
        while streaming as it is found."""
        self.skipped.log_to(path)

    @property
    def sample_shape(self) -> tuple[int, ...]:
        return self.train.sample_shape

    @property
    def streaming(self) -> bool:
        """Whether the samples are read from files while training instead of held in memory."""
        return isinstance(self.train, StreamingSplit)

    def summary(self) -> dict[str, Any]:
        """Plain data for display and for the run folder: sizes, class counts per split, skipped files."""
        def counts(split: DataSplit | StreamingSplit) -> list[int]:
            return torch.bincount(split.y, minlength=len(self.class_names)).tolist() if len(split) else []

        return {
            "task": self.task,
            "sample_shape": list(self.sample_shape),
            "class_names": list(self.class_names),
            "sizes": {"train": len(self.train), "val": len(self.val), "test": len(self.test)},
            "class_counts": {"train": counts(self.train), "val": counts(self.val), "test": counts(self.test)},
            "normalization": self.normalization.to_dict() if self.normalization else None,
            "streaming": self.streaming,
            "skipped": [{"path": s.path, "reason": s.reason} for s in self.skipped],
        }


def resolve_settings(settings: dict[str, Any]) -> dict[str, Any]:
    """Project data settings with defaults filled in; refuses an unknown source."""
    merged = {**DATA_DEFAULTS, **settings}
    if merged["source"] not in SOURCES:
        raise DataError(f"unknown data source {merged['source']!r}; choose one of {', '.join(SOURCES)}")
    return merged


def _resolve_path(value: str, base_dir: Path | None) -> Path:
    path = Path(value).expanduser()
    return path if path.is_absolute() or base_dir is None else base_dir / path


def load_source(settings: dict[str, Any], input_shape: tuple[int, ...], *, base_dir: Path | None = None,
                allow_download: bool = True, keep_empty_classes: bool = False) -> LabeledTensors:
    """Load the whole dataset the settings name, fitted to ``input_shape`` (not yet split or normalized).

    ``keep_empty_classes``: an image folder's class with no readable image is kept with no sample instead of
    refused (for a preview, which reports it as a problem itself).
    """
    settings = resolve_settings(settings)
    source = settings["source"]
    if source == "digits":
        return load_digits(input_shape)
    if source == "torchvision":
        root = _resolve_path(settings["path"], base_dir) if settings["path"] else default_dataset_root()
        return load_standard(settings["dataset"], root, input_shape, allow_download=allow_download)
    if not settings["path"]:
        raise DataError(f"the {source} data source needs a path")
    path = _resolve_path(settings["path"], base_dir)
    if source == "folder":
        return load_image_folder(path, input_shape, keep_empty_classes=keep_empty_classes)
    return load_csv(path, settings["label_column"], input_shape)


def check_fits(data: LabeledTensors, requirements: DataRequirements) -> None:
    """Refuse data whose samples or classes do not match the model, before any training starts."""
    _check_fits(tuple(data.raw.shape[1:]), len(data.class_names), requirements)


def _check_fits(sample_shape: tuple[int, ...], classes: int, requirements: DataRequirements) -> None:
    if sample_shape != requirements.input_shape:
        raise DataError(f"the data's samples have shape {list(sample_shape)}; the Input node expects "
                        f"{list(requirements.input_shape)}")
    if requirements.task == CLASSIFICATION and classes < 2:
        found = "no class" if classes == 0 else "only one class"
        raise DataError(f"the data has {found}; a classifier needs at least 2 (an image folder needs one "
                        "subfolder per class)")
    if requirements.task == CLASSIFICATION and requirements.classes != classes:
        raise DataError(f"the data has {classes} classes; the Output node is set to "
                        f"{requirements.classes} (set its classes to {classes})")


def prepare_data(settings: dict[str, Any], requirements: DataRequirements, *, base_dir: Path | None = None,
                 allow_download: bool = True, data: LabeledTensors | None = None,
                 stream_threshold_bytes: int | None = None, num_workers: int | None = None,
                 normalization: Normalization | None = None) -> PreparedData:
    """Load (unless ``data`` is given), check against the model, split, normalize from the training split.

    ``normalization``: fixed statistics used instead of the training split's, whatever the ``normalize``
    setting says (those pretrained weights were trained with, e.g. ImageNet's mean and std).

    An image folder whose decoded uint8 samples would exceed
    ``stream_threshold_bytes`` (default: :func:`stream_threshold`, from the
    memory available now) is not loaded: its splits stream from the files
    through a DataLoader with ``num_workers`` decoding workers (default:
    :func:`default_workers`). A loaded folder stays uint8 in memory, made
    float per batch. Raises DataError with a one-line reason when the data cannot be used.
    """
    settings = resolve_settings(settings)
    threshold = stream_threshold() if stream_threshold_bytes is None else stream_threshold_bytes
    if data is None and settings["source"] == "folder" and settings["path"]:
        streamed = _prepare_streaming(settings, requirements, _resolve_path(settings["path"], base_dir),
                                      threshold, default_workers() if num_workers is None else num_workers,
                                      normalization)
        if streamed is not None:
            return streamed
    owned = data is None  # loaded here: its storage may be reordered in place instead of copied
    data = load_source(settings, requirements.input_shape, base_dir=base_dir,
                       allow_download=allow_download) if data is None else data
    check_fits(data, requirements)
    indices = split_indices(data.y, float(settings["val_fraction"]), float(settings["test_fraction"]),
                            int(settings["split_seed"]), data.fixed_test)
    class_names, skipped = list(data.class_names), list(data.skipped)
    fixed = normalization
    if data.raw.dtype == torch.uint8:
        splits = _pixel_splits(data.raw, data.y, indices, in_place=owned)
        del data
        normalization = fixed or (Normalization.fit(splits["train"].stored) if settings["normalize"] else None)
        for split in splits.values():
            split.normalization = normalization
    else:
        splits = {name: DataSplit(data.raw[idx].contiguous(), data.y[idx].contiguous())
                  for name, idx in (("train", indices.train), ("val", indices.val), ("test", indices.test))}
        del data
        normalization = fixed
        if normalization is None and settings["normalize"]:
            normalization = Normalization.fit(splits["train"].stored)
        if normalization is not None:
            for split in splits.values():
                split.stored = normalization.apply(split.stored) if len(split) else split.stored
    return PreparedData(splits["train"], splits["val"], splits["test"], class_names,
                        requirements.task, normalization, _augmentation(settings, normalization), SkippedFiles(skipped))


# Rows moved per step when a loaded folder is reordered into its training split in place.
_MOVE_BYTES = 64 * 2**20


def _pixel_splits(pixels: torch.Tensor, labels: torch.Tensor, indices: Any, in_place: bool) -> dict[str, DataSplit]:
    """uint8 splits of loaded pixels. ``in_place``: validation and test rows are copied out and the training
    rows moved to the front of the same storage (peak 1 + val + test fractions of the data, never 2x)."""
    val = DataSplit(pixels[indices.val], labels[indices.val])
    test = DataSplit(pixels[indices.test], labels[indices.test])
    train_index = indices.train
    if not in_place:
        return {"train": DataSplit(pixels[train_index], labels[train_index]), "val": val, "test": test}
    # Sorted training indices: row k comes from row train_index[k] >= k, so moving in order overwrites
    # only rows already moved (each step gathers its rows into a temporary first).
    step = max(1, _MOVE_BYTES // max(1, pixels[0].numel()))
    for start in range(0, len(train_index), step):
        rows = train_index[start:start + step]
        pixels[start:start + len(rows)] = pixels[rows]
    train = DataSplit(pixels[:len(train_index)], labels[train_index])
    return {"train": train, "val": val, "test": test}


def _augmentation(settings: dict[str, Any], normalization: Normalization | None) -> Augmentation:
    return Augmentation(int(settings["augment_crop_padding"]), bool(settings["augment_hflip"]),
                        float(settings["augment_rotation"]), float(settings["augment_color_jitter"]), normalization)


def _prepare_streaming(settings: dict[str, Any], requirements: DataRequirements, root: Path, threshold: int,
                       num_workers: int, fixed: Normalization | None = None) -> PreparedData | None:
    """Streaming splits of an image folder too large for memory; None when it fits (load it instead)."""
    shape = image_input_shape(requirements.input_shape, f"the image folder {str(root)!r}")
    class_names, files, found = scan_folder(root)
    if decoded_bytes(sum(len(paths) for paths in files), shape) <= threshold:
        return None
    _check_fits(shape, len(class_names), requirements)
    skipped = SkippedFiles(found)
    for name, paths in zip(class_names, files):
        if not paths:
            raise DataError(empty_class_problem(root, name, []))
    paths = [str(path) for class_paths in files for path in class_paths]
    labels = torch.tensor([label for label, class_paths in enumerate(files) for _ in class_paths], dtype=torch.int64)
    indices = split_indices(labels, float(settings["val_fraction"]), float(settings["test_fraction"]),
                            int(settings["split_seed"]))
    normalization = fixed or (_sample_normalization(paths, indices.train, shape, int(settings["split_seed"]), skipped)
                              if settings["normalize"] else None)
    slot = WorkerSlot()  # one split's decoding workers alive at a time
    splits = {name: StreamingSplit(ImageFiles([paths[i] for i in idx.tolist()], labels[idx].tolist(), shape),
                                   normalization, skipped, num_workers=num_workers, slot=slot)
              for name, idx in (("train", indices.train), ("val", indices.val), ("test", indices.test))}
    return PreparedData(splits["train"], splits["val"], splits["test"], class_names, requirements.task,
                        normalization, _augmentation(settings, normalization), skipped)


def _sample_normalization(paths: list[str], train: torch.Tensor, shape: tuple[int, int, int], seed: int,
                          skipped: SkippedFiles) -> Normalization:
    """Statistics of a seeded random sample of the training files (decoding them all would defeat streaming),
    accumulated one image at a time: memory stays one image's worth."""
    chosen = train[torch.randperm(len(train), generator=torch.Generator().manual_seed(seed))[:NORMALIZATION_SAMPLE]]
    stats = RunningStats()
    for index in sorted(chosen.tolist()):
        try:
            stats.update(torch.from_numpy(read_image(Path(paths[index]), *shape)).unsqueeze(0))
        except UnreadableImage as error:  # reported like the loader reports it; training skips it too
            skipped.add([SkippedFile(paths[index], str(error))])
    if not stats.count:
        raise DataError(f"none of the {len(chosen)} sampled training images could be read")
    return stats.result()

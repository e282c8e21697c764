"""What the Data panel shows about a project's data: sample images, the split, class counts, problems.

Built on the loaders the trainer uses (:func:`load_source`, :func:`split_indices`,
:func:`check_fits`, :class:`Augmentation`), so the preview sees the data the
way training will. Problems that would stop training are collected as one-line
messages instead of raised, so the panel can show the samples next to them.

An image folder that training would stream (too large for memory, see
:func:`prepare_data`) is not loaded: it is listed by the folder walk (paths and
labels, nothing decoded), split and counted from those labels, and only the
samples shown are decoded, plus, with normalization on, the same bounded random
subset of training images training estimates its statistics from. Its
``DataPreview.data`` is then a :class:`FolderListing`, passed back like a
loaded dataset so that a shuffle or a new split needs no new walk.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any

import numpy as np
import torch

from dlstudio.core.data import prepare, reader, streaming
from dlstudio.core.data.augment import Augmentation
from dlstudio.core.data.dataset import LabeledTensors, SkippedFile, SkippedFiles
from dlstudio.core.data.errors import DataError
from dlstudio.core.data.folder import IMAGE_EXTENSIONS, empty_class_problem, scan_folder
from dlstudio.core.data.images import image_input_shape
from dlstudio.core.data.normalization import Normalization
from dlstudio.core.data.prepare import (  # the private three: training's own rules for a streamed folder
    CLASSIFICATION, DATA_DEFAULTS, DataRequirements, _check_fits, _resolve_path, _sample_normalization,
    load_source, resolve_settings,
)
from dlstudio.core.data.split import split_indices

SPLITS = ("train", "val", "test")
# More classes than this and the grid shows random samples instead of one row per class.
MAX_CLASS_ROWS = 10
RANDOM_SAMPLES = 48
# A class with fewer training samples than this can hardly be learned or measured.
TINY_CLASS = 10
# Largest / smallest class size above which the imbalance is worth a warning.
IMBALANCE_RATIO = 5.0
# Settings that change what is loaded (the rest only change how it is split or augmented).
_LOAD_KEYS = ("source", "path", "dataset", "label_column")


@dataclass
class DataPreview:
    """Plain data for display.

    ``images`` holds raw (un-normalized) samples at the model's input
    resolution as uint8 (N, H, W, C) with C of 1 or 3 (a fourth, alpha
    channel is dropped for display), or None for table rows, which are in
    ``rows`` (N, F) instead. ``labels`` index ``class_names``. ``grouped``
    says the samples come as ``per_class`` per class in class order (else
    they are random). ``problems`` would stop training; ``warnings`` would not.
    ``data`` is the loaded dataset, kept so that a new split or other
    samples need no reload (pass it back as ``data=``); for an image folder
    training would stream it is the folder's :class:`FolderListing` instead.
    ``normalization_sample`` is 0 when ``normalization`` comes from the
    whole training split, else the number of training images it was
    estimated from (a streamed folder, as training estimates it).
    """

    class_names: list[str] = field(default_factory=list)
    images: np.ndarray | None = None
    rows: np.ndarray | None = None
    labels: np.ndarray = field(default_factory=lambda: np.zeros(0, dtype=np.int64))
    grouped: bool = False
    split_sizes: dict[str, int] = field(default_factory=dict)
    class_counts: dict[str, list[int]] = field(default_factory=dict)
    normalization: Normalization | None = None
    skipped: list[SkippedFile] = field(default_factory=list)
    problems: list[str] = field(default_factory=list)
    warnings: list[str] = field(default_factory=list)
    sample_shape: tuple[int, ...] = ()
    data: LabeledTensors | FolderListing | None = field(default=None, repr=False)
    normalization_sample: int = 0

    @property
    def total(self) -> int:
        return sum(self.split_sizes.values())


@dataclass(frozen=True)
class FolderListing:
    """An image folder too large to load, as the folder walk lists it: paths and labels, nothing decoded.

    ``found`` are the entries the walk skipped (not images, bad links);
    ``unreadable`` the files previews have failed to decode so far (path ->
    reason); ``statistics`` the normalization estimated per split (key:
    fractions and seed) with the number of images it came from. A preview
    returns a new listing carrying what it learnt; a listing is never changed.
    """

    root: Path
    shape: tuple[int, int, int]
    class_names: list[str]
    paths: list[str]
    y: torch.Tensor
    found: list[SkippedFile] = field(default_factory=list)
    unreadable: dict[str, str] = field(default_factory=dict)
    statistics: dict[tuple, tuple[Normalization, int]] = field(default_factory=dict)
    # Read by _describe_split like a LabeledTensors' (a folder has no official test split).
    fixed_test: None = None

    def __len__(self) -> int:
        return len(self.paths)

    def class_counts(self) -> list[int]:
        return torch.bincount(self.y, minlength=len(self.class_names)).tolist()


def load_key(settings: dict[str, Any], input_shape: tuple[int, ...] | None, base_dir: Path | None) -> tuple:
    """What decides the loaded dataset: equal keys mean a previous ``DataPreview.data`` can be reused."""
    merged = {**DATA_DEFAULTS, **settings}
    return (tuple(merged.get(key) for key in _LOAD_KEYS), tuple(input_shape or ()), str(base_dir or ""))


def graph_requirements(graph: Any) -> DataRequirements:
    """The Input node's shape and the Output node's task and classes, read off the graph (no compiling).

    Raises DataError when the graph has not exactly one Input and one Output node.
    """
    inputs = [node for node in graph if node.spec.role == "input"]
    outputs = [node for node in graph if node.spec.role == "output"]
    if len(inputs) != 1 or len(outputs) != 1:
        raise DataError(f"training needs exactly one Input and one Output node; the graph has "
                        f"{len(inputs)} Input and {len(outputs)} Output nodes")
    task = outputs[0].params.get("task", CLASSIFICATION)
    classes = int(outputs[0].params["classes"]) if task == CLASSIFICATION else None
    return DataRequirements(tuple(int(v) for v in inputs[0].params["shape"]), task, classes)


def augmentation_from(settings: dict[str, Any]) -> Augmentation:
    """The augmentation the settings ask for, on raw [0, 1] images (no normalization around it)."""
    return Augmentation(int(settings["augment_crop_padding"]), bool(settings["augment_hflip"]),
                        float(settings["augment_rotation"]), float(settings["augment_color_jitter"]))


def load_preview(settings: dict[str, Any], input_shape: tuple[int, ...], classes: int | None, *,
                 base_dir: Path | None = None, task: str = CLASSIFICATION, per_class: int = 8, seed: int = 0,
                 augmented: bool = False, data: LabeledTensors | FolderListing | None = None,
                 check: Callable[[], None] | None = None) -> DataPreview:
    """Load the data the settings name (unless ``data`` is given) and describe it for display.

    Never downloads. ``classes`` is the Output node's class count (None for
    reconstruction). ``seed`` picks which samples are shown; ``augmented``
    shows them as one training batch would see them. ``check`` is called
    between steps so that a caller can cancel (it raises).
    """
    preview = DataPreview()
    try:
        settings = resolve_settings(settings)
        _refuse_missing_path(settings)
        if data is None:
            data = _list_streamed_folder(settings, tuple(input_shape), base_dir)
        if data is None:
            data = load_source(settings, tuple(input_shape), base_dir=base_dir, allow_download=False,
                               keep_empty_classes=True)
    except DataError as error:
        preview.problems.append(error.message)
        return preview
    if check is not None:
        check()
    if isinstance(data, FolderListing):
        return _preview_listing(preview, data, settings, DataRequirements(tuple(input_shape), task, classes),
                                per_class=per_class, seed=seed, augmented=augmented, check=check)
    preview.data = data
    preview.class_names = list(data.class_names)
    preview.skipped = list(data.skipped)
    preview.warnings.extend(data.notes)
    preview.sample_shape = tuple(data.raw.shape[1:])
    empty = _empty_class_problems(_resolve_path(settings["path"], base_dir), data) if settings["source"] == "folder" \
        else []
    preview.problems.extend(empty)  # training refuses these first
    preview.problems.extend(_fit_problems(preview.sample_shape, len(data.class_names), len(empty),
                                          DataRequirements(tuple(input_shape), task, classes)))
    train = _describe_split(preview, data, settings)
    pool = train if train is not None else torch.arange(len(data))
    preview.grouped = len(data.class_names) <= MAX_CLASS_ROWS
    chosen = _choose_samples(data.y[pool], len(data.class_names), per_class, seed)
    indices = pool[chosen]
    preview.labels = data.y[indices].numpy().copy()
    samples = data.raw[indices]
    samples = samples.float().div_(255.0) if samples.dtype == torch.uint8 else samples
    if samples.ndim == 4:
        if augmented:
            samples = augmentation_from(settings)(samples, torch.Generator().manual_seed(int(seed)))
        preview.images = _to_uint8_images(samples)
    else:
        preview.rows = samples.reshape(len(samples), -1).numpy().copy()
    if settings["normalize"] and train is not None and len(train):
        preview.normalization = Normalization.fit(data.raw[train])
    return preview


def _fit_problems(sample_shape: tuple[int, ...], classes: int, empty: int, requirements: DataRequirements) -> list[str]:
    """Why the data does not fit the model (shape, class count), as training would say it; [] when it fits.

    With ``empty`` class folders (reported on their own), the Output node may count them or not: either
    fits, and a mismatch names the classes that have images (an empty folder is as often one to move out
    as a class still to fill, and its own line says both).
    """
    counted = classes if empty and requirements.classes == classes else classes - empty
    try:
        _check_fits(tuple(sample_shape), counted, requirements)
    except DataError as error:
        return [error.message]
    return []


def _empty_class_problems(root: Path, data: LabeledTensors) -> list[str]:
    """One line per class of a loaded image folder that has no sample (empty, or none of its files readable)."""
    problems = []
    for name, count in zip(data.class_names, data.class_counts()):
        if count == 0:
            folder = root / name
            unreadable = [item for item in data.skipped if Path(item.path).is_relative_to(folder)
                          and Path(item.path).suffix.lower() in IMAGE_EXTENSIONS]
            problems.append(empty_class_problem(root, name, unreadable))
    return problems


def _list_streamed_folder(settings: dict[str, Any], input_shape: tuple[int, ...],
                          base_dir: Path | None) -> FolderListing | None:
    """The listing of an image folder that training would stream (the rule :func:`prepare_data` applies);
    None for any other source or a folder small enough to load."""
    if settings["source"] != "folder":
        return None
    root = _resolve_path(settings["path"], base_dir)
    shape = image_input_shape(input_shape, f"the image folder {str(root)!r}")
    class_names, files, found = scan_folder(root)
    # Looked up on the module each time: the memory available now (and a test may lower it).
    if streaming.decoded_bytes(sum(len(paths) for paths in files), shape) <= streaming.stream_threshold():
        return None  # loaded whole, exactly as before (the walk is cheap next to decoding)
    paths = [str(path) for class_paths in files for path in class_paths]
    labels = torch.tensor([label for label, class_paths in enumerate(files) for _ in class_paths], dtype=torch.int64)
    return FolderListing(root, shape, class_names, paths, labels, list(found))


def _preview_listing(preview: DataPreview, listing: FolderListing, settings: dict[str, Any],
                     requirements: DataRequirements, *, per_class: int, seed: int, augmented: bool,
                     check: Callable[[], None] | None) -> DataPreview:
    """Describe a streamed folder from its listing, decoding only the samples shown and a bounded statistics
    subset. Unreadable files are listed as they are met; training finds any others."""
    unreadable = dict(listing.unreadable)
    statistics = dict(listing.statistics)
    preview.class_names = list(listing.class_names)
    preview.sample_shape = tuple(listing.shape)
    empty = [name for name, count in zip(listing.class_names, listing.class_counts()) if count == 0]
    # What training says of an empty class folder (prepare_data refuses it), first.
    preview.problems.extend(empty_class_problem(listing.root, name, []) for name in empty)
    preview.problems.extend(_fit_problems(listing.shape, len(listing.class_names), len(empty), requirements))
    train = _describe_split(preview, listing, settings)
    pool = train if train is not None else torch.arange(len(listing))
    preview.grouped = len(listing.class_names) <= MAX_CLASS_ROWS
    pixels, labels = _decode_samples(listing, pool, per_class, seed, unreadable, check)
    preview.labels = labels.numpy().copy()
    samples = pixels.float().div_(255.0)
    if augmented and len(samples):
        samples = augmentation_from(settings)(samples, torch.Generator().manual_seed(int(seed)))
    preview.images = _to_uint8_images(samples)
    if settings["normalize"] and train is not None and len(train):
        key = (float(settings["val_fraction"]), float(settings["test_fraction"]), int(settings["split_seed"]))
        if key not in statistics:
            try:
                statistics[key] = _estimate_normalization(listing, train, int(settings["split_seed"]), unreadable)
            except DataError as error:
                preview.problems.append(error.message)
        if key in statistics:
            preview.normalization, preview.normalization_sample = statistics[key]
    preview.warnings.append(_streamed_note(listing, preview.normalization_sample))
    preview.skipped = [*listing.found, *(SkippedFile(path, reason) for path, reason in unreadable.items())]
    preview.data = replace(listing, unreadable=unreadable, statistics=statistics)
    return preview


def _decode_samples(listing: FolderListing, pool: torch.Tensor, per_class: int, seed: int,
                    unreadable: dict[str, str], check: Callable[[], None] | None) -> tuple[torch.Tensor, torch.Tensor]:
    """The samples :func:`_choose_samples` picks, decoded as (N, C, H, W) uint8 with their labels. An unreadable
    one is recorded in ``unreadable`` and replaced by the next candidate of its class (at most as many extra
    decodes as samples wanted, so a folder of broken files cannot make the preview decode it all)."""
    generator = torch.Generator().manual_seed(int(seed))
    order = torch.randperm(len(pool), generator=generator)
    n_classes = len(listing.class_names)
    if n_classes > MAX_CLASS_ROWS:
        groups = [(order, RANDOM_SAMPLES)]
    else:
        shuffled = listing.y[pool][order]
        groups = [(order[shuffled == label], per_class) for label in range(n_classes)]
    images: list[torch.Tensor] = []
    labels: list[int] = []
    for candidates, wanted in groups:
        got, attempts = 0, 0
        for position in candidates.tolist():
            if got == wanted or attempts == 2 * wanted:
                break
            index = int(pool[position])
            path = listing.paths[index]
            if path in unreadable:
                continue  # known from an earlier preview: not decoded again
            if check is not None:
                check()
            attempts += 1
            try:
                pixels = reader.read_image(Path(path), *listing.shape)
            except reader.UnreadableImage as error:
                unreadable[path] = str(error)
                continue
            images.append(torch.from_numpy(pixels))
            labels.append(int(listing.y[index]))
            got += 1
    if not images:
        return torch.empty((0, *listing.shape), dtype=torch.uint8), torch.empty(0, dtype=torch.int64)
    return torch.stack(images), torch.tensor(labels, dtype=torch.int64)


def _estimate_normalization(listing: FolderListing, train: torch.Tensor, seed: int,
                            unreadable: dict[str, str]) -> tuple[Normalization, int]:
    """Training's own estimate for a streamed folder (the same seeded subset, so the same numbers), with the
    number of images it came from; files it could not read are added to ``unreadable``."""
    failed = SkippedFiles()
    normalization = _sample_normalization(listing.paths, train, listing.shape, seed, failed)
    for entry in failed:
        unreadable.setdefault(entry.path, entry.reason)
    return normalization, min(len(train), prepare.NORMALIZATION_SAMPLE) - len(failed)


def _streamed_note(listing: FolderListing, sample: int) -> str:
    size = streaming.decoded_bytes(len(listing), listing.shape) / 2**30
    statistics = f"; normalization is estimated from {sample:,} training images" if sample else ""
    return (f"{len(listing):,} images ({size:.1f} GB decoded) are too many to load at once: training reads them "
            f"from disk as it goes, and the preview decodes only the samples shown{statistics}. Unreadable files "
            f"are listed as training finds them")


def _refuse_missing_path(settings: dict[str, Any]) -> None:
    # Clearer than the loader's generic message, and says what to pick.
    if settings["path"]:
        return
    if settings["source"] == "folder":
        raise DataError("no image folder chosen: pick a folder with one subfolder of images per class")
    if settings["source"] == "csv":
        raise DataError("no CSV file chosen: pick a file with a header row and a label column")


def _describe_split(preview: DataPreview, data: LabeledTensors, settings: dict[str, Any]) -> torch.Tensor | None:
    """Fill in split sizes, class counts and warnings; returns the training indices (None if the split fails)."""
    try:
        indices = split_indices(data.y, float(settings["val_fraction"]), float(settings["test_fraction"]),
                                int(settings["split_seed"]), data.fixed_test)
    except DataError as error:
        preview.problems.append(error.message)
        preview.split_sizes = {"train": len(data), "val": 0, "test": 0}
        preview.class_counts = {"train": data.class_counts(), "val": [], "test": []}
        return None
    n_classes = len(data.class_names)
    for name in SPLITS:
        split = getattr(indices, name)
        preview.split_sizes[name] = len(split)
        preview.class_counts[name] = torch.bincount(data.y[split], minlength=n_classes).tolist()
    # A class with no sample at all is an empty class folder, a problem of its own (not "few training samples").
    present = [(name, count) for name, count, total in zip(data.class_names, preview.class_counts["train"],
                                                           data.class_counts()) if total]
    preview.warnings.extend(class_warnings([name for name, _ in present], [count for _, count in present]))
    return indices.train


def class_warnings(class_names: list[str], train_counts: list[int]) -> list[str]:
    """One-line warnings about classes too small to learn, or sizes far apart."""
    warnings = []
    tiny = [(name, count) for name, count in zip(class_names, train_counts) if count < TINY_CLASS]
    if tiny:
        listed = ", ".join(f"{name!r} ({count})" for name, count in tiny[:3])
        more = f" and {len(tiny) - 3} more" if len(tiny) > 3 else ""
        warnings.append(f"few training samples in {listed}{more}: add images or merge classes")
    present = [count for count in train_counts if count > 0]
    if len(present) >= 2 and min(present) * IMBALANCE_RATIO < max(present):
        largest = class_names[train_counts.index(max(present))]
        smallest = class_names[train_counts.index(min(present))]
        warnings.append(f"unbalanced classes: {largest!r} has {max(present)} training samples, {smallest!r} "
                        f"only {min(present)}; accuracy will favour the large classes")
    return warnings


def _choose_samples(labels: torch.Tensor, n_classes: int, per_class: int, seed: int) -> torch.Tensor:
    """Positions into ``labels``: up to ``per_class`` of each class in class order, or random ones for many classes."""
    generator = torch.Generator().manual_seed(int(seed))
    order = torch.randperm(len(labels), generator=generator)
    if n_classes > MAX_CLASS_ROWS:
        return order[:RANDOM_SAMPLES]
    shuffled = labels[order]
    return torch.cat([order[shuffled == label][:per_class] for label in range(n_classes)])


def _to_uint8_images(x: torch.Tensor) -> np.ndarray:
    """(N, C, H, W) floats in [0, 1] to (N, H, W, C) uint8 with C of 1 or 3."""
    x = x[:, :3] if x.shape[1] == 4 else x
    return (x.clamp(0.0, 1.0) * 255.0).round().to(torch.uint8).permute(0, 2, 3, 1).contiguous().numpy().copy()

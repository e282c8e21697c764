"""What the Data panel shows about a project's data: sample images, the split, class counts, problems.

Built on the loaders the trainer uses (:func:`load_source`, :func:`split_indices`,
:func:`check_fits`, :class:`Augmentation`), so the preview sees the data the
way training will. Problems that would stop training are collected as one-line
messages instead of raised, so the panel can show the samples next to them.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import torch

from dlstudio.core.data.augment import Augmentation
from dlstudio.core.data.dataset import LabeledTensors, SkippedFile
from dlstudio.core.data.errors import DataError
from dlstudio.core.data.normalization import Normalization
from dlstudio.core.data.prepare import (
    CLASSIFICATION, DATA_DEFAULTS, DataRequirements, check_fits, load_source, resolve_settings,
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
    samples need no reload (pass it back as ``data=``).
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
    data: LabeledTensors | None = field(default=None, repr=False)

    @property
    def total(self) -> int:
        return sum(self.split_sizes.values())


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
                 augmented: bool = False, data: LabeledTensors | None = None,
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
            data = load_source(settings, tuple(input_shape), base_dir=base_dir, allow_download=False)
    except DataError as error:
        preview.problems.append(error.message)
        return preview
    if check is not None:
        check()
    preview.data = data
    preview.class_names = list(data.class_names)
    preview.skipped = list(data.skipped)
    preview.warnings.extend(data.notes)
    preview.sample_shape = tuple(data.raw.shape[1:])
    try:
        check_fits(data, DataRequirements(tuple(input_shape), task, classes))
    except DataError as error:
        preview.problems.append(error.message)
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
    preview.warnings.extend(class_warnings(data.class_names, preview.class_counts["train"]))
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

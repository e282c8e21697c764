"""From a project's data settings to normalized, split tensors that fit the model."""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import torch

from dlstudio.core.data.augment import Augmentation
from dlstudio.core.data.dataset import LabeledTensors, SkippedFile
from dlstudio.core.data.digits import load_digits
from dlstudio.core.data.errors import DataError
from dlstudio.core.data.folder import load_image_folder
from dlstudio.core.data.normalization import Normalization
from dlstudio.core.data.split import split_indices
from dlstudio.core.data.standard import load_standard
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


@dataclass
class DataSplit:
    """One split held in memory: inputs (normalized) and class indices."""

    x: torch.Tensor
    y: torch.Tensor

    def __len__(self) -> int:
        return int(self.x.shape[0])


@dataclass
class PreparedData:
    """Everything the trainer needs from the data, plus what the user should see about it."""

    train: DataSplit
    val: DataSplit
    test: DataSplit
    class_names: list[str]
    task: str
    normalization: Normalization | None
    augmentation: Augmentation
    skipped: list[SkippedFile] = field(default_factory=list)

    @property
    def sample_shape(self) -> tuple[int, ...]:
        return tuple(self.train.x.shape[1:])

    def summary(self) -> dict[str, Any]:
        """Plain data for display and for the run folder: sizes, class counts per split, skipped files."""
        def counts(split: DataSplit) -> list[int]:
            return torch.bincount(split.y, minlength=len(self.class_names)).tolist() if len(split) else []

        return {
            "task": self.task,
            "sample_shape": list(self.sample_shape),
            "class_names": list(self.class_names),
            "sizes": {"train": len(self.train), "val": len(self.val), "test": len(self.test)},
            "class_counts": {"train": counts(self.train), "val": counts(self.val), "test": counts(self.test)},
            "normalization": self.normalization.to_dict() if self.normalization else None,
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
                allow_download: bool = True) -> LabeledTensors:
    """Load the whole dataset the settings name, fitted to ``input_shape`` (not yet split or normalized)."""
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
        return load_image_folder(path, input_shape)
    return load_csv(path, settings["label_column"], input_shape)


def check_fits(data: LabeledTensors, requirements: DataRequirements) -> None:
    """Refuse data whose samples or classes do not match the model, before any training starts."""
    sample_shape = tuple(data.x.shape[1:])
    if sample_shape != requirements.input_shape:
        raise DataError(f"the data's samples have shape {list(sample_shape)}; the Input node expects "
                        f"{list(requirements.input_shape)}")
    if requirements.task == CLASSIFICATION and requirements.classes != len(data.class_names):
        raise DataError(f"the data has {len(data.class_names)} classes; the Output node is set to "
                        f"{requirements.classes} (set its classes to {len(data.class_names)})")


def prepare_data(settings: dict[str, Any], requirements: DataRequirements, *, base_dir: Path | None = None,
                 allow_download: bool = True, data: LabeledTensors | None = None) -> PreparedData:
    """Load (unless ``data`` is given), check against the model, split, normalize from the training split.

    Raises DataError with a one-line reason when the data cannot be used.
    """
    settings = resolve_settings(settings)
    data = load_source(settings, requirements.input_shape, base_dir=base_dir,
                       allow_download=allow_download) if data is None else data
    check_fits(data, requirements)
    indices = split_indices(data.y, float(settings["val_fraction"]), float(settings["test_fraction"]),
                            int(settings["split_seed"]), data.fixed_test)
    splits = {name: DataSplit(data.x[idx].contiguous(), data.y[idx].contiguous())
              for name, idx in (("train", indices.train), ("val", indices.val), ("test", indices.test))}
    normalization = None
    if settings["normalize"]:
        normalization = Normalization.fit(splits["train"].x)
        for split in splits.values():
            split.x = normalization.apply(split.x) if len(split) else split.x
    augmentation = Augmentation(int(settings["augment_crop_padding"]), bool(settings["augment_hflip"]),
                                float(settings["augment_rotation"]), float(settings["augment_color_jitter"]),
                                normalization)
    return PreparedData(splits["train"], splits["val"], splits["test"], list(data.class_names),
                        requirements.task, normalization, augmentation, list(data.skipped))

"""Data sources for training (torch; no Qt): bundled digits, image folders, standard datasets, CSV.

Typical use::

    requirements = DataRequirements.from_model(model)
    data = prepare_data(project.data, requirements, base_dir=project_dir)

Small datasets are held in memory as tensors, normalized with statistics of
the training split; the trainer slices them by a shuffled index.
"""

from __future__ import annotations

from dlstudio.core.data.augment import Augmentation
from dlstudio.core.data.dataset import LabeledTensors, SkippedFile
from dlstudio.core.data.errors import DataError
from dlstudio.core.data.normalization import Normalization
from dlstudio.core.data.prepare import (
    DATA_DEFAULTS,
    SOURCES,
    DataRequirements,
    DataSplit,
    PreparedData,
    check_fits,
    load_source,
    prepare_data,
)
from dlstudio.core.data.split import SplitIndices, split_indices

__all__ = [
    "DATA_DEFAULTS", "SOURCES", "Augmentation", "DataError", "DataRequirements", "DataSplit", "LabeledTensors",
    "Normalization", "PreparedData", "SkippedFile", "SplitIndices", "check_fits", "load_source", "prepare_data",
    "split_indices",
]

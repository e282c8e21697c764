"""CSV tables: numeric feature columns and a label column chosen by name, for MLPs."""

from __future__ import annotations

import csv
import math
from pathlib import Path

import numpy as np
import torch

from dlstudio.core.data.dataset import LabeledTensors
from dlstudio.core.data.errors import DataError


def _class_order(values: list[str]) -> list[str]:
    """Sorted class names: numerically when every label is a number (so "10" comes after "9")."""
    unique = set(values)
    try:
        return sorted(unique, key=float)
    except ValueError:
        return sorted(unique)


def load_csv(path: Path, label_column: str, input_shape: tuple[int, ...]) -> LabeledTensors:
    """Read a CSV with a header row; every column but the label column must be numeric.

    An empty ``label_column`` means the last column.
    """
    if not path.is_file():
        raise DataError(f"the CSV file {str(path)!r} does not exist")
    with path.open(newline="", encoding="utf-8-sig") as handle:
        rows = list(csv.reader(handle))
    if len(rows) < 2:
        raise DataError(f"the CSV file {str(path)!r} needs a header row and at least one data row")
    header, body = [name.strip() for name in rows[0]], rows[1:]
    label_column = label_column or header[-1]
    if label_column not in header:
        raise DataError(f"the CSV file {str(path)!r} has no column {label_column!r}; its columns are "
                        f"{', '.join(header)}")
    label_index = header.index(label_column)
    feature_indices = [i for i in range(len(header)) if i != label_index]
    features = np.empty((len(body), len(feature_indices)), dtype=np.float32)
    labels: list[str] = []
    for row_number, row in enumerate(body, start=2):
        if len(row) != len(header):
            raise DataError(f"row {row_number} of {str(path)!r} has {len(row)} values; the header has {len(header)}")
        for j, i in enumerate(feature_indices):
            try:
                value = float(row[i])
            except ValueError:
                raise DataError(f"column {header[i]!r} of {str(path)!r} is not numeric (row {row_number}: "
                                f"{row[i]!r}); use only numeric feature columns") from None
            if not math.isfinite(value):
                raise DataError(f"column {header[i]!r} of {str(path)!r} has {row[i]!r} on row {row_number}")
            features[row_number - 2, j] = value
        labels.append(row[label_index].strip())
    if input_shape != (len(feature_indices),):
        raise DataError(f"the CSV file has {len(feature_indices)} feature columns; the Input node has shape "
                        f"{list(input_shape)} (set it to [{len(feature_indices)}])")
    class_names = _class_order(labels)
    index = {name: i for i, name in enumerate(class_names)}
    y = torch.tensor([index[label] for label in labels], dtype=torch.int64)
    return LabeledTensors(torch.from_numpy(features), y, class_names)

"""Train/validation/test split by fractions, stratified by class and reproducible from a seed."""

from __future__ import annotations

from dataclasses import dataclass

import torch

from dlstudio.core.data.errors import DataError


@dataclass(frozen=True)
class SplitIndices:
    """Sample indices of each split (int64 tensors, sorted)."""

    train: torch.Tensor
    val: torch.Tensor
    test: torch.Tensor


def _check_fraction(name: str, value: float) -> float:
    if not 0.0 <= value < 1.0:
        raise DataError(f"{name} must be at least 0 and below 1; got {value!r}")
    return float(value)


def split_indices(labels: torch.Tensor, val_fraction: float, test_fraction: float, seed: int,
                  fixed_test: torch.Tensor | None = None) -> SplitIndices:
    """Split samples class by class so every split keeps the class balance.

    ``fixed_test`` (a bool mask) forces an official test split: those samples
    form the test split, ``test_fraction`` is not used, and validation comes
    out of the rest. The same labels, fractions and seed always give the same split.
    """
    val_fraction = _check_fraction("val_fraction", val_fraction)
    test_fraction = _check_fraction("test_fraction", test_fraction)
    if fixed_test is not None:
        test_fraction = 0.0
    if val_fraction + test_fraction >= 1.0:
        raise DataError(f"val_fraction + test_fraction must leave samples to train on; got "
                        f"{val_fraction} + {test_fraction}")
    generator = torch.Generator().manual_seed(int(seed))
    pool = torch.arange(len(labels)) if fixed_test is None else torch.nonzero(~fixed_test).flatten()
    parts: dict[str, list[torch.Tensor]] = {"train": [], "val": [], "test": []}
    pool_labels = labels[pool]
    for label in torch.unique(pool_labels).tolist():
        members = pool[pool_labels == label]
        members = members[torch.randperm(len(members), generator=generator)]
        n_test = round(len(members) * test_fraction)
        n_val = round(len(members) * val_fraction)
        parts["test"].append(members[:n_test])
        parts["val"].append(members[n_test:n_test + n_val])
        parts["train"].append(members[n_test + n_val:])
    if fixed_test is not None:
        parts["test"] = [torch.nonzero(fixed_test).flatten()]

    def joined(name: str) -> torch.Tensor:
        return torch.sort(torch.cat(parts[name])).values if parts[name] else torch.empty(0, dtype=torch.int64)

    result = SplitIndices(joined("train"), joined("val"), joined("test"))
    if len(result.train) == 0:
        raise DataError("the training split is empty: the dataset is too small for these fractions")
    return result

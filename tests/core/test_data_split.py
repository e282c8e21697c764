"""Splits are deterministic by seed and stratified; normalization comes from the training split only."""

from __future__ import annotations

import pytest
import torch

from dlstudio.core.data import (
    Augmentation,
    DataError,
    DataRequirements,
    LabeledTensors,
    Normalization,
    prepare_data,
    split_indices,
)


def _labels() -> torch.Tensor:
    return torch.arange(200) % 4


def test_same_seed_same_split_other_seed_other_split() -> None:
    first = split_indices(_labels(), 0.2, 0.1, seed=7)
    again = split_indices(_labels(), 0.2, 0.1, seed=7)
    other = split_indices(_labels(), 0.2, 0.1, seed=8)
    assert torch.equal(first.val, again.val) and torch.equal(first.test, again.test)
    assert not torch.equal(first.val, other.val)


def test_split_is_a_stratified_partition() -> None:
    labels = _labels()
    split = split_indices(labels, 0.2, 0.1, seed=0)
    together = torch.cat([split.train, split.val, split.test])
    assert sorted(together.tolist()) == list(range(200))
    assert torch.bincount(labels[split.val]).tolist() == [10, 10, 10, 10]
    assert torch.bincount(labels[split.test]).tolist() == [5, 5, 5, 5]


def test_fractions_leaving_nothing_to_train_are_refused() -> None:
    with pytest.raises(DataError, match="leave samples to train on"):
        split_indices(_labels(), 0.6, 0.4, seed=0)
    with pytest.raises(DataError, match="val_fraction must be at least 0 and below 1; got 1.5"):
        split_indices(_labels(), 1.5, 0.0, seed=0)


def test_normalization_uses_the_training_split_only() -> None:
    # Class 0 samples are all 0, class 1 samples all 10: the validation split has its own mean,
    # so statistics computed over everything would differ from the training split's.
    x = torch.cat([torch.zeros(50, 1, 2, 2), torch.full((50, 1, 2, 2), 10.0)])
    y = torch.cat([torch.zeros(50, dtype=torch.int64), torch.ones(50, dtype=torch.int64)])
    x[y == 1] += torch.linspace(0, 1, 50).view(50, 1, 1, 1)
    data = LabeledTensors(x, y, ["a", "b"])
    prepared = prepare_data({"val_fraction": 0.3, "test_fraction": 0.0, "split_seed": 3},
                            DataRequirements((1, 2, 2), "classification", 2), data=data)
    split = split_indices(y, 0.3, 0.0, seed=3)
    train_raw = x[split.train]
    assert prepared.normalization is not None
    assert prepared.normalization.mean[0] == pytest.approx(float(train_raw.mean()), rel=1e-6)
    assert prepared.normalization.std[0] == pytest.approx(float(train_raw.std(correction=0)), rel=1e-6)
    assert float(prepared.train.x.mean()) == pytest.approx(0.0, abs=1e-5)
    assert torch.allclose(prepared.normalization.invert(prepared.val.x), x[split.val], atol=1e-5)


def test_normalization_is_per_channel_and_survives_a_constant_channel() -> None:
    x = torch.stack([torch.full((10, 3, 3), 5.0), torch.rand(10, 3, 3)], dim=1)
    stats = Normalization.fit(x)
    assert stats.mean[0] == pytest.approx(5.0) and stats.std[0] == 1.0
    assert Normalization.from_dict(stats.to_dict()) == stats


def test_normalize_off_keeps_raw_values() -> None:
    data = LabeledTensors(torch.rand(20, 3), torch.arange(20) % 2, ["a", "b"])
    prepared = prepare_data({"normalize": False, "val_fraction": 0.0, "test_fraction": 0.0},
                            DataRequirements((3,), "classification", 2), data=data)
    assert prepared.normalization is None
    assert torch.equal(torch.sort(prepared.train.x[:, 0]).values, torch.sort(data.x[:, 0]).values)


def test_augmentation_is_reproducible_from_the_generator_and_keeps_shape() -> None:
    x = torch.rand(16, 3, 10, 12)
    augment = Augmentation(crop_padding=2, hflip=True, rotation=10.0, color_jitter=0.3,
                           normalization=Normalization((0.5, 0.5, 0.5), (0.25, 0.25, 0.25)))
    first = augment(x, torch.Generator().manual_seed(1))
    again = augment(x, torch.Generator().manual_seed(1))
    other = augment(x, torch.Generator().manual_seed(2))
    assert first.shape == x.shape
    assert torch.equal(first, again) and not torch.equal(first, other)


def test_crop_and_flip_move_pixels_without_changing_them() -> None:
    x = torch.arange(2 * 1 * 4 * 4, dtype=torch.float32).view(2, 1, 4, 4) + 1
    flipped = Augmentation(hflip=True)(x, torch.Generator().manual_seed(0))
    for original, out in zip(x, flipped):
        assert torch.equal(out, original) or torch.equal(out, original.flip(2))
    cropped = Augmentation(crop_padding=1)(x, torch.Generator().manual_seed(0))
    # Every kept pixel comes from the image (or is padding zero), and the grid stays rigid.
    assert set(cropped.flatten().tolist()) <= set(x.flatten().tolist()) | {0.0}
    assert torch.all((cropped[..., 1:] == 0) | (cropped[..., :-1] == 0) | (cropped[..., 1:] - cropped[..., :-1] == 1))


def test_table_rows_pass_through_augmentation() -> None:
    rows = torch.rand(4, 5)
    assert torch.equal(Augmentation(crop_padding=2, hflip=True)(rows, torch.Generator()), rows)

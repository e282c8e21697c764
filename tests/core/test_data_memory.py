"""Bounded memory of image data: uint8 storage converted per batch, in-place split, incremental statistics,
streaming decided from the memory available, one set of decoding workers, evaluation in the training batch size."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import torch
from PIL import Image

from core_helpers import chain_graph
from dlstudio.core.compiler import compile_graph
from dlstudio.core.data import DataRequirements, LabeledTensors, Normalization, prepare_data
from dlstudio.core.data import prepare as prepare_module
from dlstudio.core.data import streaming
from dlstudio.core.data.folder import load_image_folder
from dlstudio.core.data.prepare import DataSplit
from dlstudio.core.training import TrainConfig, Trainer

pytestmark = [pytest.mark.timeout(60), pytest.mark.usefixtures("one_torch_thread")]
SHAPE = (3, 6, 6)
REQUIREMENTS = DataRequirements(SHAPE, classes=2)


def _folder(root: Path, per_class: int = 10) -> Path:
    rng = np.random.default_rng(0)
    for label, name in enumerate(("a", "b")):
        (root / name).mkdir(parents=True)
        for index in range(per_class):
            pixels = rng.integers(0, 120 + 120 * label, (7, 7, 3), dtype=np.uint8)
            Image.fromarray(pixels).save(root / name / f"{index}.png")
    return root


def _settings(root: Path) -> dict:
    return {"source": "folder", "path": str(root), "val_fraction": 0.2, "test_fraction": 0.2}


def test_a_loaded_folder_stays_uint8_and_batches_are_normalized_floats(tmp_path: Path) -> None:
    root = _folder(tmp_path / "images")
    loaded = load_image_folder(root, SHAPE)
    assert loaded.raw.dtype == torch.uint8 and loaded.x.dtype == torch.float32
    data = prepare_data(_settings(root), REQUIREMENTS, stream_threshold_bytes=2**62)
    assert isinstance(data.train, DataSplit) and data.train.stored.dtype == torch.uint8
    assert data.train.stored.nbytes == len(data.train) * 3 * 6 * 6  # 1 byte per value, not 4
    # The same values the float path gave: (x / 255 - mean) / std with the training split's statistics.
    raw = data.train.stored.double() / 255
    mean, std = raw.mean(dim=(0, 2, 3)), raw.std(dim=(0, 2, 3), correction=0)
    assert torch.allclose(torch.tensor(data.normalization.mean, dtype=torch.float64), mean, atol=1e-9)
    expected = ((raw - mean.view(1, 3, 1, 1)) / std.view(1, 3, 1, 1)).float()
    assert torch.allclose(data.train.x, expected, atol=1e-5)
    order = torch.randperm(len(data.train))
    (_, x, y), = list(data.train.batches(order, 0, len(order)))
    assert x.dtype == torch.float32 and torch.allclose(x, expected[order], atol=1e-5)
    assert torch.equal(y, data.train.y[order])
    cl = data.train.to(torch.device("cpu"), torch.channels_last)
    assert cl.stored.data_ptr() == data.train.stored.data_ptr()  # no copy of the pixels for a layout
    (_, x_cl, _), = list(cl.batches(order, 0, len(order)))
    assert x_cl.is_contiguous(memory_format=torch.channels_last) and torch.allclose(x_cl, x)


def test_a_folder_loaded_for_training_is_split_in_place(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    pixels = torch.randint(0, 256, (50, *SHAPE), dtype=torch.uint8)
    labels = torch.arange(50) % 2
    expected = pixels.clone()
    monkeypatch.setattr(prepare_module, "load_source",
                        lambda *args, **kwargs: LabeledTensors(pixels, labels, ["a", "b"]))
    data = prepare_data({"source": "digits", "val_fraction": 0.2, "test_fraction": 0.2, "normalize": False},
                        REQUIREMENTS)
    assert data.train.stored.data_ptr() == pixels.data_ptr()  # the training rows moved to the front: no copy
    from dlstudio.core.data import split_indices

    indices = split_indices(labels, 0.2, 0.2, 0)
    assert torch.equal(data.train.stored, expected[indices.train])
    assert torch.equal(data.val.stored, expected[indices.val]) and torch.equal(data.test.stored, expected[indices.test])


def test_statistics_are_accumulated_in_chunks_like_the_whole(monkeypatch: pytest.MonkeyPatch) -> None:
    from dlstudio.core.data import normalization

    x = torch.rand(300, 3, 5, 5, dtype=torch.float64) * 4 + 1000  # a large offset: naive sums would lose it
    monkeypatch.setattr(normalization, "_CHUNK_ELEMENTS", 200)  # 3 samples per chunk
    fitted = Normalization.fit(x)
    assert torch.allclose(torch.tensor(fitted.mean, dtype=torch.float64), x.mean(dim=(0, 2, 3)), atol=1e-9)
    assert torch.allclose(torch.tensor(fitted.std, dtype=torch.float64), x.std(dim=(0, 2, 3), correction=0), atol=1e-9)
    pixels = torch.randint(0, 256, (40, 3, 4, 4), dtype=torch.uint8)
    assert Normalization.fit(pixels).mean == pytest.approx(Normalization.fit(pixels.double() / 255).mean)


def test_streaming_is_decided_by_the_memory_available(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    root = _folder(tmp_path / "images")
    monkeypatch.setattr(streaming, "available_memory", lambda: 2 * 20 * 3 * 6 * 6 - 2)  # half holds < 20 images
    assert prepare_data(_settings(root), REQUIREMENTS, num_workers=0).streaming
    monkeypatch.setattr(streaming, "available_memory", lambda: 2**34)
    assert not prepare_data(_settings(root), REQUIREMENTS, num_workers=0).streaming


def test_only_one_split_keeps_decoding_workers(tmp_path: Path) -> None:
    root = _folder(tmp_path / "images")
    data = prepare_data(_settings(root), REQUIREMENTS, stream_threshold_bytes=0, num_workers=0)
    train, val = data.train, data.val
    list(train.batches(torch.arange(len(train)), 0, 4))
    assert train._loader is not None and train.slot is val.slot
    list(val.in_order(4))
    assert train._loader is None  # let go before the validation split decoded


def _model() -> torch.nn.Module:
    graph = chain_graph([("Input", {"shape": list(SHAPE)}), ("Flatten", {}), ("Linear", {"out_features": 2}),
                         ("Output", {"task": "classification", "classes": 2})])
    torch.manual_seed(0)
    return compile_graph(graph)


def test_evaluation_runs_in_the_training_batch_size(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    data = prepare_data(_settings(_folder(tmp_path / "images")), REQUIREMENTS, stream_threshold_bytes=2**62)
    sizes: list[int] = []
    real = DataSplit.in_order

    def spy(self: DataSplit, size: int):  # noqa: ANN202 - the split's own iterator
        sizes.append(size)
        return real(self, size)

    monkeypatch.setattr(DataSplit, "in_order", spy)
    Trainer(_model(), data, TrainConfig.from_settings({"batch_size": 3, "epochs": 1, "device": "cpu"})).fit()
    assert sizes and set(sizes) == {3}

"""Image folders streamed through a DataLoader (threshold forced low): same pixels as in memory, corrupt files
skipped and reported without stopping the epoch, exact resume, and one run with a real worker process."""

from __future__ import annotations

import copy
import time
from pathlib import Path
from typing import Any

import numpy as np
import pytest
import torch
from PIL import Image

from core_helpers import chain_graph
from dlstudio.core.compiler import compile_graph
from dlstudio.core.data import DataRequirements, prepare_data
from dlstudio.core.data.prepare import DataSplit, PreparedData
from dlstudio.core.data.streaming import StreamingSplit, collate_images, decoded_bytes
from dlstudio.core.training import Callback, TrainConfig, Trainer

SHAPE = (1, 8, 8)
REQUIREMENTS = DataRequirements(SHAPE, classes=2)
ALWAYS_STREAM = 0
NEVER_STREAM = 2**62


def write_folder(root: Path, per_class: int = 12, corrupt: bool = True) -> Path:
    """Two classes of small RGB PNGs (10x10, resized to 8x8 on reading), bright and dark, plus junk."""
    rng = np.random.default_rng(0)
    for label, name in enumerate(("bright", "dark")):
        folder = root / name
        folder.mkdir(parents=True)
        for index in range(per_class):
            base = 180 if label == 0 else 60
            pixels = np.clip(rng.normal(base, 30, (10, 10, 3)), 0, 255).astype(np.uint8)
            Image.fromarray(pixels).save(folder / f"{index:03d}.png")
    (root / "bright" / "notes.txt").write_text("not an image")
    if corrupt:
        (root / "dark" / "broken.png").write_bytes(b"\x89PNG\r\n\x1a\n not really")
    return root


def settings(root: Path, **changes: Any) -> dict[str, Any]:
    return {"source": "folder", "path": str(root), "val_fraction": 0.0, "test_fraction": 0.0, **changes}


def streamed(root: Path, **changes: Any) -> PreparedData:
    return prepare_data(settings(root, **changes), REQUIREMENTS, stream_threshold_bytes=ALWAYS_STREAM, num_workers=0)


def model() -> torch.nn.Module:
    graph = chain_graph([("Input", {"shape": list(SHAPE)}), ("Conv2d", {"out_channels": 2, "kernel_size": 3}),
                         ("ReLU", {}), ("Flatten", {}), ("Linear", {"out_features": 2}),
                         ("Output", {"task": "classification", "classes": 2})])
    torch.manual_seed(0)
    return compile_graph(graph)


def config(**changes: Any) -> TrainConfig:
    return TrainConfig.from_settings({"batch_size": 4, "epochs": 2, "device": "cpu", **changes})


def test_a_folder_under_the_threshold_is_loaded_and_one_over_it_streams(tmp_path: Path) -> None:
    root = write_folder(tmp_path / "images")
    size = decoded_bytes(25, SHAPE)  # 24 images and the broken one are counted before decoding
    assert not prepare_data(settings(root), REQUIREMENTS, stream_threshold_bytes=size).streaming
    data = prepare_data(settings(root), REQUIREMENTS, stream_threshold_bytes=size - 1, num_workers=0)
    assert data.streaming and isinstance(data.train, StreamingSplit)
    assert data.sample_shape == SHAPE and data.class_names == ["bright", "dark"]
    summary = data.summary()
    assert summary["streaming"] and summary["sizes"]["train"] == 25 and summary["class_counts"]["train"] == [12, 13]


def test_streamed_batches_hold_the_same_pixels_as_the_in_memory_loader(tmp_path: Path) -> None:
    root = write_folder(tmp_path / "images")
    in_memory = prepare_data(settings(root), REQUIREMENTS, stream_threshold_bytes=NEVER_STREAM)
    data = streamed(root)
    assert isinstance(in_memory.train, DataSplit)
    # All 24 readable files are in the normalization sample, so the statistics agree with the in-memory ones.
    assert np.allclose(data.normalization.mean, in_memory.normalization.mean)  # type: ignore[union-attr]
    assert np.allclose(data.normalization.std, in_memory.normalization.std)  # type: ignore[union-attr]
    batches = list(data.train.in_order(5))
    x, y = torch.cat([x for x, _ in batches]), torch.cat([y for _, y in batches])
    assert torch.allclose(x, in_memory.train.x, atol=1e-6) and torch.equal(y, in_memory.train.y)
    # The broken file was caught while sampling the statistics, reported once with its reason.
    broken = [entry for entry in data.skipped if entry.path.endswith("broken.png")]
    assert len(broken) == 1 and broken[0].reason


def test_a_batch_of_only_unreadable_files_is_left_out_and_its_number_skipped(tmp_path: Path) -> None:
    root = write_folder(tmp_path / "images", per_class=2)
    data = streamed(root, normalize=False)
    order = torch.arange(len(data.train))
    numbers = [b for b, _, _ in data.train.batches(order, 0, 1)]
    broken = data.train.files.paths.index(str(root / "dark" / "broken.png"))  # type: ignore[union-attr]
    assert numbers == [b for b in range(len(order)) if b != broken]
    x, y, failed = collate_images([("OSError: bad", 0, "a.png"), (torch.zeros(SHAPE, dtype=torch.uint8), 1, "b")])
    assert x.shape == (1, *SHAPE) and y.tolist() == [1] and failed == [("a.png", "OSError: bad")]


def test_a_file_that_breaks_during_training_is_skipped_and_reported_and_the_epoch_completes(tmp_path: Path) -> None:
    root = write_folder(tmp_path / "images", corrupt=False)
    data = streamed(root)
    assert [entry.path for entry in data.skipped] == [str(root / "bright" / "notes.txt")]  # found by the scan
    victim = root / "bright" / "003.png"
    victim.write_bytes(victim.read_bytes()[:40])  # truncated after preparing: only streaming can find it
    result = Trainer(model(), data, config()).fit()
    assert result.status == "completed" and len(result.history) == 2
    assert [entry.path for entry in data.skipped][1:] == [str(victim)]  # once, not once per epoch
    assert data.summary()["skipped"][1]["path"] == str(victim)


class _StopAt(Callback):
    def __init__(self, epoch: int, batch: int) -> None:
        self.at = (epoch, batch)

    def on_batch_end(self, trainer: Trainer, batch: Any) -> None:
        if (batch.epoch, batch.batch) == self.at:
            trainer.control.stop()


def test_a_streamed_run_resumes_exactly(tmp_path: Path) -> None:
    root = write_folder(tmp_path / "images")
    augmented = {"augment_hflip": True, "augment_crop_padding": 1, "val_fraction": 0.2}
    straight = Trainer(model(), streamed(root, **augmented), config())
    assert straight.fit().status == "completed"
    first = Trainer(model(), streamed(root, **augmented), config(), callbacks=[_StopAt(2, 2)],
                    run_dir=tmp_path / "run")
    assert first.fit().status == "stopped"
    resumed = Trainer(model(), streamed(root, **augmented), config(), run_dir=tmp_path / "run")
    assert resumed.fit(resume=tmp_path / "run").status == "completed"
    for name, value in straight.model.state_dict().items():
        assert torch.equal(value, resumed.model.state_dict()[name]), name
    assert resumed.history[-1].val_loss == straight.history[-1].val_loss


@pytest.mark.timeout(30)
def test_training_with_a_worker_process(tmp_path: Path) -> None:
    root = write_folder(tmp_path / "images")
    data = prepare_data(settings(root), REQUIREMENTS, stream_threshold_bytes=ALWAYS_STREAM, num_workers=1)
    started = time.perf_counter()
    trainer = Trainer(model(), data, config(epochs=2))
    result = trainer.fit()
    assert result.status == "completed" and len(result.history) == 2
    assert any(entry.path.endswith("broken.png") for entry in data.skipped)
    assert time.perf_counter() - started < 10  # the worker starts once; it persists across epochs


def test_loss_and_accuracy_count_only_the_files_that_decoded(tmp_path: Path) -> None:
    root = write_folder(tmp_path / "images")  # 24 readable images and broken.png, which streaming meets in batches
    in_memory = prepare_data(settings(root), REQUIREMENTS, stream_threshold_bytes=NEVER_STREAM)
    data = streamed(root)
    assert len(data.train) == 25 and len(in_memory.train) == 24
    net = model()
    expected = Trainer(copy.deepcopy(net), in_memory, config()).evaluate("train")
    loss, accuracy, confusion = Trainer(copy.deepcopy(net), data, config()).evaluate("train")
    assert loss == pytest.approx(expected[0], rel=1e-5) and accuracy == pytest.approx(expected[1])
    assert sum(map(sum, confusion)) == 24  # type: ignore[arg-type]
    # Training with a learning rate too small to move the weights: the epoch's figures are the same averages.
    trainer = Trainer(copy.deepcopy(net), data, config(learning_rate=1e-8, momentum=0.0, epochs=1, optimizer="sgd"))
    epoch = trainer.fit().history[0]
    assert epoch.train_loss == pytest.approx(expected[0], rel=1e-4)
    assert epoch.train_accuracy == pytest.approx(expected[1])

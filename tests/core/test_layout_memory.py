"""The layout tuner remembers: a short run compares and stores its verdict in the user's data folder (the
conftest gives each test its own), and the next run of the network starts in that layout without comparing.
Timings are made up (a clock in which a channels-last batch takes half or twice as long)."""

from __future__ import annotations

import json
from typing import Any

import pytest
import torch

from core_helpers import chain_graph
from dlstudio.core.compiler import compile_graph
from dlstudio.core.data import DataRequirements, LabeledTensors, prepare_data
from dlstudio.core.training import Callback, TrainConfig, Trainer
from dlstudio.core.training import layout_memory
from dlstudio.core.training import trainer as trainer_module
from dlstudio.core.training.layout import MIN_BLOCK, SHORT_RUN_SHARE, LayoutTuner

pytestmark = pytest.mark.usefixtures("one_torch_thread")
CPU = torch.device("cpu")


def cnn(out_channels: int = 4) -> torch.nn.Module:
    torch.manual_seed(0)
    return compile_graph(chain_graph([
        ("Input", {"shape": [3, 8, 8]}), ("Conv2d", {"out_channels": out_channels, "kernel_size": 3}), ("ReLU", {}),
        ("Flatten", {}), ("Linear", {"out_features": 3}), ("Output", {"task": "classification", "classes": 3})]))


def data(n: int) -> Any:
    generator = torch.Generator().manual_seed(0)
    raw = LabeledTensors(torch.rand((n, 3, 8, 8), generator=generator), torch.arange(n) % 3, ["a", "b", "c"])
    return prepare_data({"val_fraction": 0.0, "test_fraction": 0.0}, DataRequirements.from_model(cnn()), data=raw)


def config(**changes: Any) -> TrainConfig:
    # 200 samples at batch 4: 50 batches, one epoch: a short run (before, too short to compare at all)
    return TrainConfig.from_settings({"batch_size": 4, "epochs": 1, "device": "cpu", **changes})


class _Clock:
    """perf_counter for the trainer: a batch takes 1 s contiguous and ``channels_last_seconds`` channels-last."""

    def __init__(self, channels_last_seconds: float) -> None:
        self.now = 0.0
        self.trainer: Trainer | None = None
        self.channels_last_seconds = channels_last_seconds

    def perf_counter(self) -> float:
        if self.trainer is not None:
            self.now += self.channels_last_seconds if self.trainer.channels_last else 1.0
        return self.now


class _Layouts(Callback):
    """The model's layout after every batch."""

    def __init__(self) -> None:
        self.seen: list[bool] = []

    def on_batch_end(self, trainer: Trainer, batch: Any) -> None:
        self.seen.append(trainer.channels_last)


def tuned_run(monkeypatch: pytest.MonkeyPatch, channels_last_seconds: float, **changes: Any) -> Trainer:
    clock = _Clock(channels_last_seconds)
    monkeypatch.setattr(trainer_module, "time", clock)
    trainer = Trainer(cnn(), data(200), config(**changes))
    assert trainer.layout_tuner is not None and not trainer.layout_remembered
    clock.trainer = trainer
    assert trainer.fit().status == "completed"
    return trainer


@pytest.mark.parametrize("channels_last_seconds", [0.5, 2.0])
def test_a_short_run_compares_stores_its_verdict_and_the_next_run_starts_in_it_without_comparing(
        monkeypatch: pytest.MonkeyPatch, channels_last_seconds: float) -> None:
    faster = channels_last_seconds < 1.0
    first = tuned_run(monkeypatch, channels_last_seconds)
    assert first.channels_last is faster and first.layout_tuner.speedup is not None

    stored = json.loads(layout_memory.memory_path().read_text())["verdicts"]
    assert len(stored) == 1
    (entry,) = stored.values()
    assert entry["channels_last"] is faster
    assert entry["speedup"] == pytest.approx(1.0 / channels_last_seconds)

    layouts = _Layouts()
    second = Trainer(cnn(), data(200), config(), callbacks=[layouts])
    assert second.layout_remembered and second.layout_tuner is None  # no comparison at all
    assert second.channels_last is faster
    assert second.model.conv1.weight.is_contiguous(memory_format=torch.channels_last) is faster
    assert second.fit().status == "completed"
    assert len(layouts.seen) == 50 and set(layouts.seen) == {faster}  # never switched, not even for a batch


def test_a_long_run_from_a_remembered_verdict_checks_again_only_from_its_second_epoch() -> None:
    key = layout_memory.verdict_key(layout_memory.architecture_signature(cnn(), (3, 8, 8)), 4, CPU)
    assert layout_memory.remember(key, True, 1.2, 3)
    trainer = Trainer(cnn(), data(400), config(epochs=3))  # 100 batches an epoch, 300 steps
    assert trainer.layout_remembered and trainer.channels_last
    tuner = trainer.layout_tuner
    assert tuner is not None and tuner.channels_last
    assert tuner.start_epoch(0) is None  # the first epoch trains in the remembered layout
    assert tuner.start_epoch(0) is not None  # later ones check (the machine's load may have changed)


def test_the_key_changes_with_batch_size_threads_network_and_device_but_not_with_weights() -> None:
    signature = layout_memory.architecture_signature(cnn(), (3, 8, 8))
    torch.manual_seed(5)
    reinitialized = cnn()
    with torch.no_grad():
        reinitialized.conv1.weight.add_(1.0)
    assert layout_memory.architecture_signature(reinitialized, (3, 8, 8)) == signature
    assert layout_memory.architecture_signature(cnn(out_channels=8), (3, 8, 8)) != signature
    assert layout_memory.architecture_signature(cnn(), (3, 16, 16)) != signature

    key = layout_memory.verdict_key(signature, 64, CPU)
    assert layout_memory.verdict_key(signature, 256, CPU) != key
    assert layout_memory.verdict_key(signature, 64, torch.device("cuda")) != key
    threads = torch.get_num_threads()
    torch.set_num_threads(threads + 1)
    try:
        assert layout_memory.verdict_key(signature, 64, CPU) != key
    finally:
        torch.set_num_threads(threads)

    layout_memory.remember(key, True, 1.1, 2)
    assert layout_memory.recall(key) is True
    assert layout_memory.recall(layout_memory.verdict_key(signature, 256, CPU)) is None


def test_a_verdict_for_another_batch_size_is_not_used(monkeypatch: pytest.MonkeyPatch) -> None:
    tuned_run(monkeypatch, 0.5)
    other = Trainer(cnn(), data(400), config(batch_size=8))
    assert not other.layout_remembered and other.layout_tuner is not None and not other.channels_last


@pytest.mark.parametrize("damage", [b"{not json", b"[1, 2]", b'{"format": 1, "verdicts": {"k": {"channels_last": 3}}}',
                                    b"\x00\xff" * 10])
def test_a_damaged_file_is_ignored_and_replaced_by_the_next_verdict(
        monkeypatch: pytest.MonkeyPatch, damage: bytes) -> None:
    path = layout_memory.memory_path()
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes(damage)
    trainer = tuned_run(monkeypatch, 0.5)  # planned as if nothing were remembered
    assert trainer.channels_last
    stored = json.loads(path.read_text())["verdicts"]
    assert [entry["channels_last"] for entry in stored.values()] == [True]


def test_an_unwritable_folder_does_not_fail_the_run(monkeypatch: pytest.MonkeyPatch, tmp_path: Any) -> None:
    blocker = tmp_path / "a-file"
    blocker.write_text("")
    monkeypatch.setenv("XDG_DATA_HOME", str(blocker))  # the data folder would have to be inside a file
    assert not layout_memory.remember("k", True, 1.2, 1)
    assert tuned_run(monkeypatch, 0.5).channels_last


@pytest.mark.parametrize("setting", ["on", "off"])
def test_a_setting_of_on_or_off_wins_over_memory(monkeypatch: pytest.MonkeyPatch, setting: str) -> None:
    tuned_run(monkeypatch, 0.5 if setting == "off" else 2.0)  # remembers the opposite of the setting
    trainer = Trainer(cnn(), data(200), config(channels_last=setting))
    assert trainer.channels_last is (setting == "on")
    assert trainer.layout_tuner is None and not trainer.layout_remembered


def test_the_file_keeps_only_the_newest_verdicts(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(layout_memory, "MAX_ENTRIES", 5)
    for index in range(8):
        layout_memory.remember(f"key-{index}", index % 2 == 0, 1.0, 1)
    layout_memory.remember("key-4", True, 1.2, 2)  # stored again: the newest now
    stored = json.loads(layout_memory.memory_path().read_text())["verdicts"]
    assert list(stored) == ["key-3", "key-5", "key-6", "key-7", "key-4"]


def test_a_short_first_epoch_gets_a_comparison_of_the_smallest_blocks() -> None:
    tuning = LayoutTuner(batches_per_epoch=59).start_epoch(0)  # lenet5, batch 256, 15,000 samples
    assert tuning is not None and tuning.block == MIN_BLOCK and tuning.end <= SHORT_RUN_SHARE * 59
    assert LayoutTuner.fits(40)  # fine-tuning 1,280 images at batch 32
    assert not LayoutTuner.fits(30)
    # Checking a remembered verdict again (a long run's later epochs) keeps to the usual share.
    rechecking = LayoutTuner(batches_per_epoch=59, remembered=True)
    assert rechecking.start_epoch(0) is None and rechecking.start_epoch(0) is None
    assert LayoutTuner(batches_per_epoch=400, remembered=True).start_epoch(0) is None

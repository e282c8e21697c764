"""The training layout: fixed settings obeyed, non-conv models never compared, and the tuner that decides
while a CPU run trains. Which layout is faster depends on the machine, so the timings here are made up."""

from __future__ import annotations

from typing import Any

import pytest
import torch

from core_helpers import chain_graph
from dlstudio.core.compiler import compile_graph
from dlstudio.core.data import DataRequirements, LabeledTensors, prepare_data
from dlstudio.core.training import Callback, TrainConfig, Trainer
from dlstudio.core.training import trainer as trainer_module
from dlstudio.core.training.layout import (
    FIRST_EPOCH_PAIRS,
    LATER_EPOCH_PAIRS,
    MARGIN,
    MIN_BLOCK,
    LayoutTuner,
    use_channels_last,
)

CPU = torch.device("cpu")
pytestmark = pytest.mark.usefixtures("one_torch_thread")


def cnn() -> torch.nn.Module:
    torch.manual_seed(0)
    return compile_graph(chain_graph([("Input", {"shape": [3, 8, 8]}), ("Conv2d", {"out_channels": 4, "kernel_size": 3}),
                                 ("ReLU", {}), ("Flatten", {}), ("Linear", {"out_features": 3}),
                                 ("Output", {"task": "classification", "classes": 3})]))


def mlp() -> torch.nn.Module:
    torch.manual_seed(0)
    return compile_graph(chain_graph([("Input", {"shape": [3, 8, 8]}), ("Flatten", {}), ("Linear", {"out_features": 3}),
                                 ("Output", {"task": "classification", "classes": 3})]))


def test_fixed_settings_are_obeyed_and_non_conv_models_are_never_compared() -> None:
    image = (3, 8, 8)
    assert use_channels_last("on", cnn(), image, CPU, None) is True
    assert use_channels_last("on", cnn(), (64,), CPU, None) is False  # rows have no channels to move
    assert use_channels_last("off", cnn(), image, CPU, None) is False
    assert use_channels_last("auto", mlp(), image, CPU, None) is False
    assert use_channels_last("auto", cnn(), (64,), CPU, None) is False
    assert use_channels_last("auto", cnn(), image, CPU, None) is None  # the CPU compares while training


def _run_epoch(tuner: LayoutTuner, first: int, seconds: dict[bool, float]) -> list[bool]:
    """Feed one epoch's comparison with batches that take ``seconds[layout]``; the layouts asked for, in order."""
    tuning = tuner.start_epoch(first)
    assert tuning is not None
    now, asked = 0.0, []
    for batch in range(tuning.start, tuning.end):
        layout = tuning.layout_for(batch, now)
        asked.append(layout)
        now += seconds[layout]
    tuning.finish(now)
    return asked


def test_the_first_epoch_alternates_blocks_in_pairs_and_the_faster_layout_wins() -> None:
    tuner = LayoutTuner(batches_per_epoch=400)
    asked = _run_epoch(tuner, 0, {False: 2.0, True: 1.0})
    block = tuner.block
    assert block >= MIN_BLOCK and len(asked) == 2 * (1 + FIRST_EPOCH_PAIRS) * block  # a warm-up pair first
    blocks = [asked[i:i + block] for i in range(0, len(asked), block)]
    assert all(len(set(b)) == 1 for b in blocks)  # one layout per block
    assert [b[0] for b in blocks] == [False, True, True, False, False, True, True, False]  # AB BA AB BA
    assert tuner.speedup == pytest.approx(2.0) and tuner.channels_last
    assert len(tuner.ratios) == FIRST_EPOCH_PAIRS


def test_later_epochs_check_again_and_follow_a_change_of_load() -> None:
    tuner = LayoutTuner(batches_per_epoch=400)
    _run_epoch(tuner, 0, {False: 2.0, True: 1.0})
    assert tuner.channels_last
    later = _run_epoch(tuner, 0, {False: 1.0, True: 2.0})
    assert len(later) == 2 * LATER_EPOCH_PAIRS * tuner.block
    assert tuner.channels_last  # fewer contrary pairs than agreeing ones: the median still says channels-last
    _run_epoch(tuner, 0, {False: 1.0, True: 2.0})
    assert not tuner.channels_last  # the load changed for good: back to contiguous


def test_a_pair_that_timed_a_pause_is_not_counted() -> None:
    tuner = LayoutTuner(batches_per_epoch=400)
    tuner.add_ratio(0.02)  # a block that waited for something else
    tuner.add_ratio(40.0)
    assert not tuner.ratios and not tuner.channels_last


def test_a_difference_inside_the_margin_does_not_switch_either_way() -> None:
    tuner = LayoutTuner(batches_per_epoch=400)
    _run_epoch(tuner, 0, {False: 1.0 + MARGIN / 2, True: 1.0})
    assert not tuner.channels_last
    tuner.channels_last = True
    _run_epoch(tuner, 0, {False: 1.0, True: 1.0 + MARGIN / 2})
    assert tuner.channels_last


def test_no_comparison_where_it_would_take_too_much_of_an_epoch() -> None:
    assert LayoutTuner(batches_per_epoch=8).start_epoch(0) is None
    assert not LayoutTuner.fits(20) and LayoutTuner.fits(400)
    # lenet5 on digits: 20 batches an epoch, 15 epochs: long enough, but no epoch has room to compare
    model = cnn()
    settings = {"batch_size": 4, "epochs": 15, "device": "cpu"}
    assert Trainer(model, _data(80), TrainConfig.from_settings(settings)).layout_tuner is None
    tuner = LayoutTuner(batches_per_epoch=400)
    assert tuner.start_epoch(395) is None  # a resumed epoch with five batches left


def _data(n: int) -> Any:
    generator = torch.Generator().manual_seed(0)
    raw = LabeledTensors(torch.rand((n, 3, 8, 8), generator=generator), torch.arange(n) % 3, ["a", "b", "c"])
    return prepare_data({"val_fraction": 0.0, "test_fraction": 0.0}, DataRequirements.from_model(cnn()), data=raw)


class _Clock:
    """A perf_counter for the trainer in which a batch takes 1 s contiguous and ``channels_last_seconds``
    channels-last: each reading advances by the time the model's current layout costs."""

    def __init__(self, channels_last_seconds: float) -> None:
        self.now = 0.0
        self.trainer: Trainer | None = None
        self.channels_last_seconds = channels_last_seconds

    def perf_counter(self) -> float:
        if self.trainer is not None:
            self.now += self.channels_last_seconds if self.trainer.channels_last else 1.0
        return self.now


@pytest.mark.parametrize("channels_last_seconds", [0.5, 2.0])
def test_a_tuned_run_ends_in_the_faster_layout_with_the_weights_of_a_fixed_one(
        monkeypatch: pytest.MonkeyPatch, channels_last_seconds: float) -> None:
    settings = {"batch_size": 4, "epochs": 2, "device": "cpu", "optimizer": "adam", "learning_rate": 0.01}
    data = _data(400)  # 100 batches an epoch, 200 steps: long enough to compare
    fixed = Trainer(cnn(), data, TrainConfig.from_settings({**settings, "channels_last": "off"}))
    fixed.fit()

    clock = _Clock(channels_last_seconds)
    monkeypatch.setattr(trainer_module, "time", clock)
    tuned = Trainer(cnn(), _data(400), TrainConfig.from_settings(settings))
    assert tuned.layout_tuner is not None
    clock.trainer = tuned
    result = tuned.fit()
    assert result.status == "completed"
    faster = channels_last_seconds < 1.0
    assert tuned.channels_last is faster and tuned.layout_tuner.channels_last is faster
    assert tuned.model.conv1.weight.is_contiguous(memory_format=torch.channels_last) is faster
    assert tuned._splits["train"].x.is_contiguous(memory_format=torch.channels_last) is faster
    # Switching layouts back and forth changes only the rounding: the same training, weight for weight.
    for name, value in fixed.model.state_dict().items():
        assert torch.allclose(tuned.model.state_dict()[name], value, atol=1e-4), name


class _WaitingCallback(Callback):
    """Waits 100 s (on the fake clock) after every third batch, as a benchmark's hand-off between variants does."""

    def __init__(self, clock: _Clock) -> None:
        self.clock = clock

    def on_batch_end(self, trainer: Trainer, batch: Any) -> None:
        if batch.batch % 3 == 0:
            self.clock.now += 100.0


def test_time_spent_in_callbacks_is_left_out_of_the_comparison(monkeypatch: pytest.MonkeyPatch) -> None:
    clock = _Clock(0.5)
    monkeypatch.setattr(trainer_module, "time", clock)
    settings = {"batch_size": 4, "epochs": 1, "device": "cpu"}
    tuned = Trainer(cnn(), _data(400), TrainConfig.from_settings(settings), callbacks=[_WaitingCallback(clock)])
    assert tuned.layout_tuner is not None
    clock.trainer = tuned
    assert tuned.fit().status == "completed"
    # Each block's batches were timed without the waits: every pair said "channels-last, twice as fast"
    # (give or take the clock readings the callback timing itself adds).
    assert tuned.layout_tuner.ratios and all(1.5 < ratio < 2.5 for ratio in tuned.layout_tuner.ratios)
    assert tuned.channels_last

"""The training layout choice: fixed settings obeyed, non-conv models never probed, the probe bounded and harmless.

Which layout is faster depends on the machine, so no test asserts it.
"""

from __future__ import annotations

import time
from typing import Any

import pytest
import torch
from torch.nn import functional

from dlstudio.core.compiler import compile_graph
from dlstudio.core.data import DataRequirements, LabeledTensors, prepare_data
from dlstudio.core.graph import Graph
from dlstudio.core.training import TrainConfig, Trainer
from dlstudio.core.training import layout as layout_module
from dlstudio.core.training.layout import MIN_RUN_STEPS, measure_layouts, use_channels_last

CPU = torch.device("cpu")


def _chain(nodes: list[tuple[str, dict[str, Any]]]) -> Graph:
    graph, previous = Graph(), None
    for type_id, params in nodes:
        node = graph.add_node(type_id, params)
        if previous is not None:
            graph.connect(previous.id, "out", node.id, "in")
        previous = node
    return graph


def cnn() -> torch.nn.Module:
    torch.manual_seed(0)
    return compile_graph(_chain([("Input", {"shape": [1, 8, 8]}), ("Conv2d", {"out_channels": 4, "kernel_size": 3}),
                                 ("ReLU", {}), ("Flatten", {}), ("Linear", {"out_features": 3}),
                                 ("Output", {"task": "classification", "classes": 3})]))


def mlp() -> torch.nn.Module:
    torch.manual_seed(0)
    return compile_graph(_chain([("Input", {"shape": [1, 8, 8]}), ("Flatten", {}), ("Linear", {"out_features": 3}),
                                 ("Output", {"task": "classification", "classes": 3})]))


def batches(n: int = 2, size: int = 8) -> list[tuple[torch.Tensor, torch.Tensor]]:
    generator = torch.Generator().manual_seed(1)
    return [(torch.rand((size, 1, 8, 8), generator=generator), torch.randint(0, 3, (size,), generator=generator))
            for _ in range(n)]


def cross_entropy(output: torch.Tensor, x: torch.Tensor, y: torch.Tensor) -> torch.Tensor:
    return functional.cross_entropy(output, y)


def sgd(parameters: list[torch.nn.Parameter]) -> torch.optim.Optimizer:
    return torch.optim.SGD(parameters, lr=0.1)


def test_fixed_settings_are_obeyed_and_non_conv_models_are_never_probed() -> None:
    image = (1, 8, 8)
    assert use_channels_last("on", cnn(), image, CPU, None) is True
    assert use_channels_last("on", cnn(), (64,), CPU, None) is False  # rows have no channels to move
    assert use_channels_last("off", cnn(), image, CPU, None) is False
    assert use_channels_last("auto", mlp(), image, CPU, None) is False
    assert use_channels_last("auto", cnn(), (64,), CPU, None) is False
    assert use_channels_last("auto", cnn(), image, CPU, None) is None  # the CPU measures


def test_a_run_too_short_to_pay_off_keeps_contiguous_without_timing_anything() -> None:
    started = time.perf_counter()
    timing = measure_layouts(cnn(), batches(), cross_entropy, sgd, run_steps=MIN_RUN_STEPS - 1)
    assert not timing.channels_last and timing.rounds == 0 and timing.speedup is None
    assert time.perf_counter() - started < 0.05
    assert "too short" in timing.reason


def test_the_probe_stays_in_its_time_budget_and_leaves_model_and_random_state_alone() -> None:
    model = cnn()
    weights = {name: value.clone() for name, value in model.state_dict().items()}
    before = torch.get_rng_state()
    timing = measure_layouts(model, batches(), cross_entropy, sgd, run_steps=10**6, cap_seconds=0.5,
                             min_rounds=1, max_rounds=10**6)
    assert timing.rounds >= 1 and timing.speedup is not None and timing.speedup > 0
    # The budget bounds the timed rounds (no round limit was set): about one pair of steps past it, with
    # room for a busy shared machine (a tiny step here takes 1 ms when quiet).
    assert timing.seconds - timing.warmup_seconds < 0.5 + 0.5
    assert torch.equal(torch.get_rng_state(), before)
    assert all(torch.equal(weights[name], value) for name, value in model.state_dict().items())
    assert all(parameter.grad is None for parameter in model.parameters())  # it trained copies


def test_the_budget_is_a_share_of_the_run_and_a_run_that_cannot_afford_the_rounds_keeps_contiguous() -> None:
    timing = measure_layouts(cnn(), batches(), cross_entropy, sgd, run_steps=MIN_RUN_STEPS, fraction=1e-6)
    assert not timing.channels_last and timing.rounds == 0 and "budget" in timing.reason


def test_channels_last_needs_a_clear_margin() -> None:
    # No layout runs 100x faster: with that margin the answer is contiguous, whatever this machine's noise.
    timing = measure_layouts(cnn(), batches(), cross_entropy, sgd, run_steps=10**6, margin=0.99, min_rounds=2,
                             max_rounds=2)
    assert timing.rounds == 2 and not timing.channels_last


def _data(model: torch.nn.Module, n: int) -> Any:
    generator = torch.Generator().manual_seed(0)
    raw = LabeledTensors(torch.rand((n, 1, 8, 8), generator=generator), torch.arange(n) % 3, ["a", "b", "c"])
    return prepare_data({"val_fraction": 0.0, "test_fraction": 0.0}, DataRequirements.from_model(model), data=raw)


def test_the_trainer_probes_real_batches_with_its_optimizer_and_counts_the_whole_run(
        monkeypatch: pytest.MonkeyPatch) -> None:
    seen: dict[str, Any] = {}

    def fake_measure(model: Any, probe_batches: Any, loss_fn: Any, make_optimizer: Any, *, run_steps: int) -> Any:
        seen.update(batches=probe_batches, optimizer=make_optimizer(list(model.parameters())), run_steps=run_steps)
        return layout_module.LayoutTiming(True, 2.0, 5, 0.1, "faked")

    monkeypatch.setattr(layout_module, "measure_layouts", fake_measure)
    model = cnn()
    config = TrainConfig.from_settings({"batch_size": 16, "epochs": 3, "device": "cpu", "optimizer": "sgd"})
    trainer = Trainer(model, _data(model, 100), config)
    assert trainer.channels_last
    assert [tuple(x.shape) for x, _ in seen["batches"]] == [(16, 1, 8, 8)] * 4  # distinct real batches
    assert isinstance(seen["optimizer"], torch.optim.SGD)
    assert seen["run_steps"] == 3 * 7  # ceil(100 / 16) batches per epoch, 3 epochs


def test_a_tiny_dataset_trains_without_paying_for_a_probe() -> None:
    model = cnn()
    started = time.perf_counter()
    trainer = Trainer(model, _data(model, 64), TrainConfig.from_settings({"batch_size": 16, "epochs": 2,
                                                                          "device": "cpu"}))
    assert not trainer.channels_last and time.perf_counter() - started < 0.5

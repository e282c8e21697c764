"""Memory layout for training: contiguous (NCHW) or channels-last (NHWC), and the CPU timing probe that picks one.

Contiguous is the default. On the CPU the faster layout depends on the model
and the batch size (a 32/64-channel CNN ran 1.15-1.45x faster channels-last
on a 2-core machine; LeNet-5's 6/16 channels ran anywhere from 0.6x to 1.1x),
so ``channels_last: auto`` measures: whole optimizer steps on copies of the
model, on real batches of the training split, both layouts alternating in
pairs on a shared machine whose speed moves by 2x within seconds. Only a
win (the median paired ratio beating :data:`MARGIN`) switches to
channels-last. A probe only sees the load of its own moment: under heavy
load from other processes LeNet-5 at batch 64 ran 0.82x channels-last.
"""

from __future__ import annotations

import copy
import statistics
import time
from collections.abc import Callable, Iterable
from dataclasses import dataclass

import torch

# Channels-last must be at least this much faster (median of paired step-time ratios) to be chosen: a
# small margin, because a real 5-10% gain is common (LeNet-5 ran 1.03-1.11x faster channels-last at
# batch 64 and 1.09-1.10x at batch 256 on a 2-core machine, bench/train.py) and picking contiguous then
# loses all of it, while a tie picked either way costs nothing. Enough rounds keep the median honest.
MARGIN = 0.03
# The probe may spend this share of the run's estimated training time, and never more than CAP_SECONDS.
PROBE_FRACTION = 0.03
CAP_SECONDS = 1.5
# Timed rounds (one step per layout each); fewer than MIN_ROUNDS cannot tell noise from a difference.
MIN_ROUNDS = 7
MAX_ROUNDS = 40
# Runs shorter than this many optimizer steps keep contiguous without measuring: a probe cannot pay off.
MIN_RUN_STEPS = 200

LossFn = Callable[[torch.Tensor, torch.Tensor, torch.Tensor], torch.Tensor]
OptimizerFactory = Callable[[list[torch.nn.Parameter]], torch.optim.Optimizer]


def has_conv2d(model: torch.nn.Module) -> bool:
    """Whether ``model`` has a 2-D (transposed) convolution, the only layers a layout changes much."""
    return any(isinstance(m, (torch.nn.Conv2d, torch.nn.ConvTranspose2d)) for m in model.modules())


def use_channels_last(setting: str, model: torch.nn.Module, sample_shape: tuple[int, ...],
                      device: torch.device, autocast: torch.dtype | None) -> bool | None:
    """Whether to train in channels-last layout; None when only a timing probe can tell.

    ``on``/``off`` are obeyed (``on`` only for image inputs). ``auto``: no for
    models without 2-D convolutions on image inputs; on CUDA yes with mixed
    precision (tensor cores want NHWC), no without; on the CPU: measure
    (:func:`probe_channels_last`).
    """
    if setting != "auto":
        return setting == "on" and len(sample_shape) == 3
    if len(sample_shape) != 3 or not has_conv2d(model):
        return False
    if device.type == "cpu":
        return None
    return device.type == "cuda" and autocast is not None


@dataclass(frozen=True)
class LayoutTiming:
    """What a probe measured: the verdict, the median speed-up of channels-last, rounds and seconds spent."""

    channels_last: bool
    speedup: float | None  # contiguous step time / channels-last step time; None when nothing was timed
    rounds: int
    seconds: float  # all of it, warm-up included
    reason: str
    warmup_seconds: float = 0.0


def _sync(device: torch.device) -> None:
    if device.type == "cuda":
        torch.cuda.synchronize(device)


def measure_layouts(model: torch.nn.Module, batches: Iterable[tuple[torch.Tensor, torch.Tensor]], loss_fn: LossFn,
                    make_optimizer: OptimizerFactory, *, run_steps: int, margin: float = MARGIN,
                    fraction: float = PROBE_FRACTION, cap_seconds: float = CAP_SECONDS,
                    min_rounds: int = MIN_ROUNDS, max_rounds: int = MAX_ROUNDS) -> LayoutTiming:
    """Time optimizer steps (forward, backward, step) of two copies of ``model``, contiguous and channels-last.

    ``batches`` are real (x, y) training batches, used in turn (read only
    when the run is long enough to measure at all); ``run_steps``
    is how many optimizer steps the whole run will take, which sets the time
    budget (``fraction`` of the estimated run, at most ``cap_seconds``). The
    layouts alternate in pairs whose order flips every round (AB BA AB...),
    and each pair gives one ratio, so a slow spell hits both sides of it.
    The model, its gradients and the global random state are left untouched.
    """
    started = time.perf_counter()
    if run_steps < MIN_RUN_STEPS:
        return LayoutTiming(False, None, 0, 0.0, f"a run of {run_steps} steps is too short to pay for a probe")
    batches = list(batches)
    if not batches:
        return LayoutTiming(False, None, 0, 0.0, "no training batch to time")
    device = batches[0][0].device
    layouts = (False, True)
    formats = {False: torch.contiguous_format, True: torch.channels_last}
    copies = {layout: copy.deepcopy(model).to(memory_format=formats[layout]).train() for layout in layouts}
    optimizers = {layout: make_optimizer(list(copies[layout].parameters())) for layout in layouts}
    inputs = {layout: [(x.contiguous(memory_format=formats[layout]), y) for x, y in batches] for layout in layouts}

    def step(layout: bool, index: int) -> float:
        x, y = inputs[layout][index % len(batches)]
        _sync(device)
        step_started = time.perf_counter()
        loss = loss_fn(copies[layout](x), x, y)
        optimizers[layout].zero_grad(set_to_none=True)
        loss.backward()
        optimizers[layout].step()
        _sync(device)
        return time.perf_counter() - step_started

    ratios: list[float] = []
    fork_devices = [device] if device.type == "cuda" else []
    with torch.random.fork_rng(devices=fork_devices):
        # Two warm-up steps per layout: oneDNN builds and caches its kernels in the first ones.
        # The budget counts from here: the first steps in a process also pay one-off set-up costs.
        warm = [step(layout, i) for i in range(2) for layout in layouts]
        timed_from = time.perf_counter()
        pair_seconds = warm[2] + warm[3]
        budget = min(cap_seconds, fraction * run_steps * min(warm[2], warm[3]))
        if min_rounds * pair_seconds > budget:
            return LayoutTiming(False, None, 0, time.perf_counter() - started,
                                f"the probe's budget ({budget:.2f} s) cannot afford {min_rounds} timed rounds",
                                timed_from - started)
        for round_index in range(max_rounds):
            order = layouts if round_index % 2 == 0 else layouts[::-1]
            seconds = {layout: step(layout, 2 + round_index) for layout in order}
            ratios.append(seconds[True] / seconds[False])
            if len(ratios) >= min_rounds and time.perf_counter() - timed_from + pair_seconds > budget:
                break
    speedup = 1.0 / statistics.median(ratios)
    choose = speedup >= 1.0 / (1.0 - margin)
    verdict = "channels-last" if choose else "contiguous"
    return LayoutTiming(choose, speedup, len(ratios), time.perf_counter() - started,
                        f"channels-last ran {speedup:.2f}x as fast over {len(ratios)} rounds: {verdict}",
                        timed_from - started)


def probe_channels_last(model: torch.nn.Module, batches: Iterable[tuple[torch.Tensor, torch.Tensor]],
                        loss_fn: LossFn, make_optimizer: OptimizerFactory, *, run_steps: int) -> bool:
    """True when channels-last is clearly faster for ``model`` on these batches (see :func:`measure_layouts`)."""
    return measure_layouts(model, batches, loss_fn, make_optimizer, run_steps=run_steps).channels_last

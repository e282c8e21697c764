"""Memory layout for training: contiguous (NCHW) or channels-last (NHWC), and how a CPU run picks one.

Contiguous is the default. On the CPU the faster layout depends on the
model, the batch size and on what else the machine is doing: LeNet-5 ran
1.03-1.11x faster channels-last on a quiet 2-core machine but 0.80-0.82x
when other processes (or the window's own thread) shared the cores, and a
probe before training, however careful, measured the quiet case and then
trained in the busy one. So ``channels_last: auto`` on the CPU decides while
training, from the run's own batches (:class:`LayoutTuner`): at the start of
each epoch a few blocks of batches run in each layout, alternating, the
ratio of their times joins a short window, and the layout follows the
window's median. The blocks are real training steps, so measuring costs
only the difference between the layouts on a few percent of the batches.

Most runs started in the window are short (a few hundred steps or fewer), so
a run's first epoch may give the comparison a larger share when that is the
only way to fit one (:data:`SHORT_RUN_SHARE`, with the smallest blocks), and
each verdict is remembered (:mod:`dlstudio.core.training.layout_memory`): the
next run of the same network, batch size, device, threads and torch starts in
the remembered layout without comparing; a long one checks again from its
second epoch on.
"""

from __future__ import annotations

import statistics
from collections import deque
from dataclasses import dataclass, field

import torch

from dlstudio.core.training import layout_memory

# The other layout must be this much faster (median of the recent paired ratios) to be switched to: a small
# margin, because real gains of 5-10% are common, and a margin both ways so that noise does not flap.
MARGIN = 0.03
# Paired ratios the verdict looks back on: a few epochs, so that a change of load is followed within them.
WINDOW = 6
# Pairs of blocks timed in the first epoch, and in each later one.
FIRST_EPOCH_PAIRS = 3
LATER_EPOCH_PAIRS = 2
# A pair whose ratio lies outside these bounds timed something else (a pause, a suspended process, a slow
# callback): no layout made a CPU step this much faster or slower (0.6-1.45x seen), so it is not counted.
PLAUSIBLE_RATIOS = (0.4, 2.5)
# Batches per block: a share of the epoch within these bounds (the first batch of a block is not timed: it
# pays for the switch and for oneDNN preparing its kernels).
BLOCK_SHARE = 1 / 40
MIN_BLOCK = 3
MAX_BLOCK = 16
# Comparing may take at most this share of an epoch's batches.
MAX_EPOCH_SHARE = 0.25
# A run's first comparison may take up to this share of its first epoch when the usual share has no room
# (a short run: LeNet-5 at batch 256 on 15,000 samples has 59 batches an epoch, a fine-tuning run of 1,280
# images at batch 32 has 40): half its batches run in the slower layout, which costs far less than a whole
# run in the wrong one (0.8-0.85x seen).
SHORT_RUN_SHARE = 0.5
# Runs of at least this many optimizer steps (and room in an epoch) keep checking after a remembered verdict.
MIN_RUN_STEPS = 200

def has_conv2d(model: torch.nn.Module) -> bool:
    """Whether ``model`` has a 2-D (transposed) convolution, the only layers a layout changes much."""
    return any(isinstance(m, (torch.nn.Conv2d, torch.nn.ConvTranspose2d)) for m in model.modules())


def use_channels_last(setting: str, model: torch.nn.Module, sample_shape: tuple[int, ...],
                      device: torch.device, autocast: torch.dtype | None) -> bool | None:
    """Whether to train in channels-last layout; None when only a timing probe can tell.

    ``on``/``off`` are obeyed (``on`` only for image inputs). ``auto``: no for
    models without 2-D convolutions on image inputs; on CUDA yes with mixed
    precision (tensor cores want NHWC), no without; on the CPU: measure
    (:class:`LayoutTuner`, while training).
    """
    if setting != "auto":
        return setting == "on" and len(sample_shape) == 3
    if len(sample_shape) != 3 or not has_conv2d(model):
        return False
    if device.type == "cpu":
        return None
    return device.type == "cuda" and autocast is not None


def layout_format(channels_last: bool) -> torch.memory_format:
    return torch.channels_last if channels_last else torch.contiguous_format


@dataclass
class TuningEpoch:
    """One epoch's comparison: blocks of ``block`` batches from ``start`` on, in alternating layouts.

    The trainer asks :meth:`layout_for` before each batch below :attr:`end`
    (which also notes the time) and calls :meth:`finish` before the first
    batch at or after it.
    """

    tuner: LayoutTuner
    start: int
    block: int
    layouts: list[bool]  # one per block, in pairs (contiguous, channels-last) in either order
    warmup_pairs: int = 0  # leading pairs that only warm both layouts up (not timed)
    _timed_from: dict[int, float] = field(default_factory=dict)  # block -> when its second batch started
    _seconds: dict[int, float] = field(default_factory=dict)     # block -> seconds of its batches after the first
    _excluded: float = 0.0  # seconds spent outside training steps so far (callbacks), left out of the blocks

    @property
    def end(self) -> int:
        return self.start + self.block * len(self.layouts)

    def exclude(self, seconds: float) -> None:
        """Leave ``seconds`` (a callback's time: the same in either layout, and it may wait on something else,
        as a benchmark's hand-off between variants does) out of the block being timed."""
        self._excluded += seconds

    def layout_for(self, batch: int, now: float) -> bool:
        now -= self._excluded
        index, offset = divmod(batch - self.start, self.block)
        if offset == 1:
            self._timed_from[index] = now
        elif offset == 0:
            self._close(index - 1, now)
        return self.layouts[index]

    def finish(self, now: float) -> None:
        """Close the last block and give the tuner the ratios of the pairs that were timed whole."""
        self._close(len(self.layouts) - 1, now - self._excluded)
        for pair in range(2 * self.warmup_pairs, len(self.layouts) - 1, 2):
            if pair in self._seconds and pair + 1 in self._seconds:
                seconds = {self.layouts[pair]: self._seconds[pair], self.layouts[pair + 1]: self._seconds[pair + 1]}
                if seconds[True] > 0:
                    self.tuner.add_ratio(seconds[False] / seconds[True])
        self.tuner.remember()

    def _close(self, index: int, now: float) -> None:
        if index in self._timed_from:
            self._seconds[index] = now - self._timed_from.pop(index)


class LayoutTuner:
    """Chooses contiguous or channels-last while a CPU run trains (see the module's docstring).

    ``channels_last`` is the current verdict; ``speedup`` the median of the
    recent ratios (contiguous seconds / channels-last seconds), None before any.
    """

    def __init__(self, batches_per_epoch: int, *, margin: float = MARGIN, window: int = WINDOW,
                 memory_key: str | None = None, remembered: bool | None = None) -> None:
        self.batches_per_epoch = batches_per_epoch
        self.block = max(MIN_BLOCK, min(MAX_BLOCK, round(batches_per_epoch * BLOCK_SHARE)))
        self.margin = margin
        self.ratios: deque[float] = deque(maxlen=window)
        # A remembered verdict: start in it and skip the first epoch's comparison.
        self.channels_last = bool(remembered)
        self._skip_epochs = 0 if remembered is None else 1
        self._knows_a_verdict = remembered is not None  # then checking again never takes a short run's share
        self.epochs_tuned = 0
        # Where each epoch's verdict is remembered (None: nowhere).
        self.memory_key = memory_key

    @staticmethod
    def fits(batches_per_epoch: int) -> bool:
        """Whether epochs of this many batches have room for a comparison at all (else: contiguous, untimed)."""
        return LayoutTuner(batches_per_epoch).start_epoch(0) is not None

    @property
    def speedup(self) -> float | None:
        return statistics.median(self.ratios) if self.ratios else None

    def start_epoch(self, first_batch: int) -> TuningEpoch | None:
        """The comparison for an epoch starting at ``first_batch`` (a resumed one part-way); None when there is
        no room for it (or the run started from a remembered verdict and this is its first epoch)."""
        if self._skip_epochs:
            self._skip_epochs -= 1
            return None
        first = self.epochs_tuned == 0
        # The first comparison starts with a pair of blocks that only warm up: the first steps in a layout
        # pay for its kernels and fresh memory well past one batch (they ran channels-last at 0.5-0.7x).
        warmup = 1 if first else 0
        pairs = FIRST_EPOCH_PAIRS if first else LATER_EPOCH_PAIRS
        block = self.block
        remaining = self.batches_per_epoch - first_batch
        if 2 * (warmup + pairs) * block > MAX_EPOCH_SHARE * remaining:
            pairs = LATER_EPOCH_PAIRS
            if 2 * (warmup + pairs) * block > MAX_EPOCH_SHARE * remaining:
                # A short run knowing nothing yet: the smallest blocks, and a larger share of the first epoch.
                block = MIN_BLOCK
                if (not first or self._knows_a_verdict
                        or 2 * (warmup + pairs) * block > SHORT_RUN_SHARE * remaining):
                    return None
        layouts: list[bool] = []
        for pair in range(warmup + pairs):
            order = [False, True] if (pair + self.epochs_tuned) % 2 == 0 else [True, False]
            layouts.extend(order)
        self.epochs_tuned += 1
        return TuningEpoch(self, first_batch, block, layouts, warmup)

    def remember(self) -> None:
        """Keep the verdict for the next run of this network (after an epoch's comparison gave ratios)."""
        if self.memory_key is not None and self.ratios:
            layout_memory.remember(self.memory_key, self.channels_last, self.speedup, len(self.ratios))

    def add_ratio(self, ratio: float) -> None:
        """One paired ratio (contiguous seconds / channels-last seconds); the verdict follows the window."""
        if not PLAUSIBLE_RATIOS[0] <= ratio <= PLAUSIBLE_RATIOS[1]:
            return
        self.ratios.append(ratio)
        speedup = statistics.median(self.ratios)
        if not self.channels_last and speedup >= 1.0 + self.margin:
            self.channels_last = True
        elif self.channels_last and speedup <= 1.0 / (1.0 + self.margin):
            self.channels_last = False


@dataclass
class LayoutPlan:
    """How a run starts: its layout, the tuner deciding while it trains (None: fixed), and whether the
    layout came from a remembered verdict."""

    channels_last: bool
    tuner: LayoutTuner | None
    remembered: bool


def plan_layout(setting: str, model: torch.nn.Module, sample_shape: tuple[int, ...], device: torch.device,
                autocast: torch.dtype | None, *, batches_per_epoch: int, epochs: int, batch_size: int,
                compiled: bool) -> LayoutPlan:
    """The layout a run starts in, and its tuner (see the module's docstring).

    A setting of ``on``/``off`` always wins over what is remembered. A
    compiled model is never compared (it would recompile on every switch).
    """
    layout = use_channels_last(setting, model, sample_shape, device, autocast)
    if layout is not None:
        return LayoutPlan(layout, None, False)
    if compiled:
        return LayoutPlan(False, None, False)
    key = layout_memory.verdict_key(layout_memory.architecture_signature(model, sample_shape), batch_size, device)
    remembered = layout_memory.recall(key)
    fits = LayoutTuner.fits(batches_per_epoch)
    if remembered is not None:
        # A long run keeps checking from its second epoch on (the load may have changed); a short one does not.
        long_run = fits and epochs > 1 and batches_per_epoch * epochs >= MIN_RUN_STEPS
        tuner = LayoutTuner(batches_per_epoch, memory_key=key, remembered=remembered) if long_run else None
        return LayoutPlan(remembered, tuner, True)
    if not fits:
        return LayoutPlan(False, None, False)
    return LayoutPlan(False, LayoutTuner(batches_per_epoch, memory_key=key), False)

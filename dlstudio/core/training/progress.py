"""A tqdm-style progress line on a text stream (stderr): epoch, batch, loss, samples/s, ETA."""

from __future__ import annotations

import time
from typing import TYPE_CHECKING, TextIO

from dlstudio.core.training.callbacks import Callback
from dlstudio.core.training.events import BatchEnd, EpochMetrics, FitResult

if TYPE_CHECKING:
    from dlstudio.core.training.trainer import Trainer


def _duration(seconds: float) -> str:
    seconds = int(max(0.0, seconds))
    return f"{seconds // 3600}:{seconds // 60 % 60:02d}:{seconds % 60:02d}" if seconds >= 3600 \
        else f"{seconds // 60:02d}:{seconds % 60:02d}"


class ProgressBar(Callback):
    """Redraws one line at most ``rate`` times a second (reading the loss syncs, so not every batch)."""

    def __init__(self, stream: TextIO, rate: float = 5.0, width: int = 24) -> None:
        self.stream = stream
        self.interval = 1.0 / rate
        self.width = width
        self._last_draw = 0.0
        self._epoch_started = 0.0
        self._first_samples = 0

    def on_epoch_start(self, trainer: Trainer, epoch: int) -> None:
        self._epoch_started = time.perf_counter()
        self._first_samples = -1

    def on_batch_end(self, trainer: Trainer, batch: BatchEnd) -> None:
        now = time.perf_counter()
        if self._first_samples < 0:  # a resumed epoch starts part-way through
            self._first_samples = batch.samples - min(batch.samples, trainer.config.batch_size)
        if now - self._last_draw < self.interval and batch.batch != batch.batches:
            return
        self._last_draw = now
        elapsed = now - self._epoch_started
        done = batch.samples - self._first_samples
        rate = done / elapsed if elapsed > 0 else 0.0
        total = len(trainer.data.train)
        remaining = (total - batch.samples) / rate if rate > 0 else 0.0
        remaining += (trainer.config.epochs - batch.epoch) * (total / rate if rate > 0 else 0.0)
        filled = int(self.width * batch.batch / batch.batches)
        bar = "#" * filled + "-" * (self.width - filled)
        self.stream.write(f"\repoch {batch.epoch}/{trainer.config.epochs} [{bar}] {batch.batch}/{batch.batches} "
                          f"loss {batch.loss:.4f} {rate:,.0f} samples/s ETA {_duration(remaining)}   ")
        self.stream.flush()

    def on_epoch_end(self, trainer: Trainer, metrics: EpochMetrics) -> None:
        parts = [f"epoch {metrics.epoch}/{trainer.config.epochs}", f"train_loss {metrics.train_loss:.4f}"]
        if metrics.val_loss is not None:
            parts.append(f"val_loss {metrics.val_loss:.4f}")
        if metrics.val_accuracy is not None:
            parts.append(f"val_acc {metrics.val_accuracy:.2%}")
        parts.append(f"{metrics.samples_per_second:,.0f} samples/s")
        self.stream.write("\r" + "  ".join(parts) + " " * 20 + "\n")
        self.stream.flush()

    def on_fit_end(self, trainer: Trainer, result: FitResult) -> None:
        if result.message:
            self.stream.write(f"{result.status}: {result.message}\n")
            self.stream.flush()

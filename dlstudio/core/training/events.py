"""Plain-data payloads the trainer hands to callbacks (safe to copy across threads)."""

from __future__ import annotations

from dataclasses import asdict, dataclass, field
from typing import Any

import torch

# metrics.csv columns, in order; also the keys of EpochMetrics.row().
METRIC_COLUMNS = ("epoch", "train_loss", "train_accuracy", "val_loss", "val_accuracy", "learning_rate",
                  "seconds", "samples_per_second")


class BatchEnd:
    """One finished training batch. ``loss`` syncs with the device, so read it only when you need it.

    ``epoch`` and ``batch`` count from 1; ``batches`` is the number of
    batches in the epoch; ``samples`` the samples seen so far this epoch.
    ``epoch_losses`` is the device tensor of this epoch's per-batch losses
    (entries up to ``batch`` are filled): a callback that reports every few
    batches reads the ones since its last report in a single host sync.
    """

    __slots__ = ("epoch", "batch", "batches", "samples", "_loss", "epoch_losses")

    def __init__(self, epoch: int, batch: int, batches: int, samples: int, loss: torch.Tensor,
                 epoch_losses: torch.Tensor | None = None) -> None:
        self.epoch = epoch
        self.batch = batch
        self.batches = batches
        self.samples = samples
        self._loss = loss
        self.epoch_losses = epoch_losses

    @property
    def loss(self) -> float:
        """The batch's mean loss as a float (one host sync)."""
        return float(self._loss)


@dataclass
class EpochMetrics:
    """What one epoch achieved. Accuracies are None for reconstruction; val_* None without a validation split.

    ``confusion[true][predicted]`` counts validation samples (classification only).
    """

    epoch: int
    train_loss: float
    train_accuracy: float | None
    val_loss: float | None = None
    val_accuracy: float | None = None
    learning_rate: float = 0.0
    seconds: float = 0.0
    samples_per_second: float = 0.0
    confusion: list[list[int]] | None = None
    is_best: bool = False

    def row(self) -> dict[str, Any]:
        """The metrics.csv row."""
        return {name: getattr(self, name) for name in METRIC_COLUMNS}

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> EpochMetrics:
        return cls(**data)


@dataclass
class FitResult:
    """How a fit ended.

    ``status`` is "completed", "early_stopped", "stopped" (by the user; a
    resumable checkpoint was written) or "failed" (``message`` says why).
    """

    status: str
    epochs_completed: int
    history: list[EpochMetrics] = field(default_factory=list)
    best_epoch: int | None = None
    message: str = ""
    test_loss: float | None = None
    test_accuracy: float | None = None
    seconds: float = 0.0

    @property
    def last(self) -> EpochMetrics | None:
        return self.history[-1] if self.history else None

    @property
    def samples_per_second(self) -> float:
        """Training throughput over all epochs of this fit and those before it."""
        seconds = sum(m.seconds for m in self.history)
        samples = sum(m.seconds * m.samples_per_second for m in self.history)
        return samples / seconds if seconds > 0 else 0.0

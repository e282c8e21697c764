"""Lightning-style hooks. Subclass :class:`Callback` and override only the hooks you need.

The trainer calls a hook only on callbacks that override it, so an unused
hook costs nothing in the batch loop. Hooks run on the training thread; a GUI
turns them into signals with plain payloads (see :mod:`events`). To stop or
pause from a hook, call ``trainer.control.stop()`` / ``.pause()``.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from dlstudio.core.training.events import BatchEnd, EpochMetrics, FitResult

if TYPE_CHECKING:
    from dlstudio.core.training.trainer import Trainer

HOOKS = ("on_fit_start", "on_epoch_start", "on_batch_end", "on_validation_end", "on_epoch_end",
         "on_fit_end", "on_exception")


class Callback:
    """Base class of training callbacks; every hook is a no-op."""

    def on_fit_start(self, trainer: Trainer) -> None:
        """Before the first batch (after a resume, ``trainer.history`` holds the earlier epochs)."""

    def on_epoch_start(self, trainer: Trainer, epoch: int) -> None:
        """Before the first batch of ``epoch`` (counting from 1)."""

    def on_batch_end(self, trainer: Trainer, batch: BatchEnd) -> None:
        """After each optimizer step. Reading ``batch.loss`` syncs with the device."""

    def on_validation_end(self, trainer: Trainer, metrics: EpochMetrics) -> None:
        """After validation of an epoch, before its checkpoint is written."""

    def on_epoch_end(self, trainer: Trainer, metrics: EpochMetrics) -> None:
        """After the epoch's checkpoint is written; ``metrics.is_best`` says if it is the best so far."""

    def on_fit_end(self, trainer: Trainer, result: FitResult) -> None:
        """After training ended, however it ended (also after a failure)."""

    def on_exception(self, trainer: Trainer, error: BaseException) -> None:
        """When an exception escapes the loop (it is raised again afterwards)."""


def overriding(callbacks: list[Callback], hook: str) -> list[Callback]:
    """The callbacks whose class overrides ``hook``."""
    base = getattr(Callback, hook)
    return [cb for cb in callbacks if getattr(type(cb), hook, base) is not base]

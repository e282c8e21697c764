"""Optimizers and learning-rate schedules from the training settings."""

from __future__ import annotations

from collections.abc import Iterable

import torch
from torch.optim import lr_scheduler

from dlstudio.core.training.config import TrainConfig


def make_optimizer(parameters: Iterable[torch.nn.Parameter], config: TrainConfig) -> torch.optim.Optimizer:
    """SGD (with momentum), Adam, AdamW or RMSprop with the configured rate and weight decay."""
    params = list(parameters)
    lr, decay = config.learning_rate, config.weight_decay
    if config.optimizer == "sgd":
        return torch.optim.SGD(params, lr=lr, momentum=config.momentum, weight_decay=decay)
    if config.optimizer == "adam":
        return torch.optim.Adam(params, lr=lr, weight_decay=decay)
    if config.optimizer == "adamw":
        return torch.optim.AdamW(params, lr=lr, weight_decay=decay)
    if config.optimizer == "rmsprop":
        return torch.optim.RMSprop(params, lr=lr, momentum=config.momentum, weight_decay=decay)
    raise ValueError(f"unknown optimizer {config.optimizer!r}")  # the settings schema rules this out


class Schedule:
    """A learning-rate schedule and when it steps: after every batch (one-cycle) or every epoch."""

    def __init__(self, optimizer: torch.optim.Optimizer, config: TrainConfig, batches_per_epoch: int) -> None:
        self.per_batch = config.schedule == "one-cycle"
        self.on_metric = config.schedule == "reduce-on-plateau"
        epochs = config.epochs
        self.scheduler: lr_scheduler.LRScheduler | lr_scheduler.ReduceLROnPlateau | None
        if config.schedule == "none":
            self.scheduler = None
        elif config.schedule == "step":
            # Three drops by 10x over the run would stall learning; a single drop at two thirds is the classic.
            self.scheduler = lr_scheduler.StepLR(optimizer, step_size=max(1, (2 * epochs) // 3), gamma=0.1)
        elif config.schedule == "cosine":
            self.scheduler = lr_scheduler.CosineAnnealingLR(optimizer, T_max=max(1, epochs))
        elif self.per_batch:
            self.scheduler = lr_scheduler.OneCycleLR(optimizer, max_lr=config.learning_rate,
                                                     total_steps=max(1, epochs * batches_per_epoch))
        else:
            self.scheduler = lr_scheduler.ReduceLROnPlateau(optimizer, mode="min", factor=0.1, patience=2)

    def batch_step(self) -> None:
        if self.per_batch and self.scheduler is not None:
            self.scheduler.step()

    def epoch_step(self, monitored: float) -> None:
        if self.scheduler is None or self.per_batch:
            return
        if self.on_metric:
            self.scheduler.step(monitored)  # type: ignore[call-arg]
        else:
            self.scheduler.step()  # type: ignore[call-arg]

    def state_dict(self) -> dict:
        return self.scheduler.state_dict() if self.scheduler is not None else {}

    def load_state_dict(self, state: dict) -> None:
        if self.scheduler is not None and state:
            self.scheduler.load_state_dict(state)

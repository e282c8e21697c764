"""Optimizers and learning-rate schedules from the training settings."""

from __future__ import annotations

from collections.abc import Iterable, Sequence

import torch
from torch.optim import lr_scheduler

from dlstudio.core.errors import DlstudioError
from dlstudio.core.training.config import TrainConfig


class NothingToTrain(DlstudioError):
    """Every parameter of the model is frozen (or it has none): an optimizer would have nothing to update."""


# The name of the parameter group of layers that start from pretrained weights (a key torch keeps in the group).
PRETRAINED_GROUP = "pretrained"
NEW_GROUP = "new"


def parameter_groups(model: torch.nn.Module, config: TrainConfig, *, frozen: Iterable[str] = (),
                     pretrained: Iterable[str] = ()) -> list[dict]:
    """The optimizer's parameter groups of ``model`` (a compiled graph: one submodule per node id).

    Parameters of ``frozen`` nodes get ``requires_grad=False`` and are left out; those of ``pretrained``
    nodes (that are not frozen) form a second group at ``learning_rate * pretrained_lr_multiplier``.
    Groups are in a fixed order (new layers, then pretrained), each present only when it has parameters,
    so the same model, frozen and pretrained sets always give the same groups (a resume relies on it).
    """
    frozen, pretrained = set(frozen), set(pretrained)
    new: list[torch.nn.Parameter] = []
    started: list[torch.nn.Parameter] = []
    for node_id, module in model.named_children():
        for parameter in module.parameters():
            if node_id in frozen:
                parameter.requires_grad_(False)
            elif parameter.requires_grad:
                (started if node_id in pretrained else new).append(parameter)
    # Parameters that belong to no node (none in a compiled graph; a hand-made module may have some).
    children = {id(p) for module in model.children() for p in module.parameters()}
    new += [p for p in model.parameters() if id(p) not in children and p.requires_grad]
    if not new and not started:
        has_weights = any(True for _ in model.parameters())
        raise NothingToTrain("nothing to train: every layer with weights is frozen" if has_weights
                             else "nothing to train: the network has no weights")
    groups = []
    if new:
        groups.append({"params": new, "lr": config.learning_rate, "name": NEW_GROUP})
    if started:
        groups.append({"params": started, "lr": config.learning_rate * config.pretrained_lr_multiplier,
                       "name": PRETRAINED_GROUP})
    return groups


def make_optimizer(parameters: Iterable[torch.nn.Parameter] | Sequence[dict], config: TrainConfig
                   ) -> torch.optim.Optimizer:
    """SGD (with momentum), Adam, AdamW or RMSprop with the configured rate and weight decay.

    ``parameters``: the parameters, or groups from :func:`parameter_groups` (each with its own ``lr``).
    """
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
            # Each group peaks at its own rate (the pretrained group at its multiple of the learning rate).
            peaks = [group["lr"] for group in optimizer.param_groups]
            self.scheduler = lr_scheduler.OneCycleLR(optimizer, max_lr=peaks,
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

"""Training settings as a typed, validated value."""

from __future__ import annotations

from dataclasses import asdict, dataclass
from typing import Any

from dlstudio.core.project.settings import TRAINING_SETTINGS, validate_settings


@dataclass(frozen=True)
class TrainConfig:
    """One run's training settings; the names and choices are those of a project's ``training`` dict.

    ``monitor`` is the metric early stopping and keep-best watch:
    ``val_loss`` (default) or ``train_loss``, lower is better; without a
    validation split the trainer watches ``train_loss``.
    """

    optimizer: str = "adam"
    learning_rate: float = 1e-3
    momentum: float = 0.9
    weight_decay: float = 0.0
    pretrained_lr_multiplier: float = 0.1
    batch_size: int = 64
    epochs: int = 10
    schedule: str = "none"
    seed: int = 0
    early_stopping_patience: int = 0
    device: str = "auto"
    precision: str = "auto"
    channels_last: str = "auto"
    compile: bool = False
    sync_batchnorm: bool = False
    monitor: str = "val_loss"

    @classmethod
    def from_settings(cls, settings: dict[str, Any], **overrides: Any) -> TrainConfig:
        """Validate a project's ``training`` dict (defaults fill gaps); raises ProjectError naming the setting."""
        merged = {**settings, **overrides}
        # Fields of this class that the project schema does not have (monitor) pass through unvalidated.
        extra = {key: merged.pop(key) for key in _EXTRA_FIELDS if key in merged}
        return cls(**validate_settings(TRAINING_SETTINGS, merged, "training"), **extra)

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


_EXTRA_FIELDS = ("monitor",)

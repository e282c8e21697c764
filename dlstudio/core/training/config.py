"""Training settings as a typed, validated value."""

from __future__ import annotations

from dataclasses import asdict, dataclass
from typing import Any

from dlstudio.core.project.settings import TRAINING_SETTINGS, validate_settings


@dataclass(frozen=True)
class TrainConfig:
    """One run's training settings; the names and choices are those of a project's ``training`` dict.

    ``monitor`` is the metric early stopping and keep-best watch (lower is
    better); when there is no validation split the trainer watches
    ``train_loss`` instead.
    """

    optimizer: str = "adam"
    learning_rate: float = 1e-3
    momentum: float = 0.9
    weight_decay: float = 0.0
    batch_size: int = 64
    epochs: int = 10
    schedule: str = "none"
    seed: int = 0
    early_stopping_patience: int = 0
    device: str = "auto"
    precision: str = "auto"
    channels_last: str = "auto"
    compile: bool = False
    monitor: str = "val_loss"

    @classmethod
    def from_settings(cls, settings: dict[str, Any], **overrides: Any) -> TrainConfig:
        """Validate a project's ``training`` dict (defaults fill gaps); raises ProjectError naming the setting."""
        values = validate_settings(TRAINING_SETTINGS, {**settings, **overrides}, "training")
        return cls(**values)

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)

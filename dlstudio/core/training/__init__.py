"""Training (torch; no Qt): config, the trainer loop with hooks, checkpoints, run folders.

Typical use::

    config = TrainConfig.from_settings(project.training)
    trainer = Trainer(model, data, config, callbacks=[MetricsCsv(run_dir)], run_dir=run_dir)
    result = trainer.fit()            # or trainer.fit(resume=run_dir)

A GUI runs ``fit`` on a worker thread, turns hooks into signals, and calls
``trainer.control.pause() / resume() / stop()`` from its own thread.
"""

from __future__ import annotations

from dlstudio.core.training.callbacks import HOOKS, Callback
from dlstudio.core.training.checkpoint import BEST, LAST, CheckpointError, load_checkpoint
from dlstudio.core.training.config import TrainConfig
from dlstudio.core.training.control import TrainControl
from dlstudio.core.training.device import DeviceError, resolve_device
from dlstudio.core.training.events import METRIC_COLUMNS, BatchEnd, EpochMetrics, FitResult
from dlstudio.core.training.progress import ProgressBar
from dlstudio.core.training.runs import (
    MetricsCsv,
    create_run_dir,
    read_metrics,
    read_run_settings,
    record_run,
    runs_folder,
    write_run_files,
)
from dlstudio.core.training.trainer import Trainer, fit

__all__ = [
    "BEST", "HOOKS", "LAST", "METRIC_COLUMNS", "BatchEnd", "Callback", "CheckpointError", "DeviceError",
    "EpochMetrics", "FitResult", "MetricsCsv", "ProgressBar", "TrainConfig", "TrainControl", "Trainer",
    "create_run_dir", "fit", "load_checkpoint", "read_metrics", "read_run_settings", "record_run", "resolve_device",
    "runs_folder", "write_run_files",
]

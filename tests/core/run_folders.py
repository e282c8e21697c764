"""Run folders written by hand in the format dlstudio train leaves (settings.json, metrics.csv, result.json).

Faster than training and exact: the tests of the runs table and of run comparison choose every value.
"""

from __future__ import annotations

import csv
from pathlib import Path
from typing import Any

from dlstudio.core.project import Project, load_template
from dlstudio.core.project.settings import default_training_settings
from dlstudio.core.training import write_run_files
from dlstudio.core.training.events import METRIC_COLUMNS
from dlstudio.core.training.runs import write_run_result


def write_run(base: Path, name: str, project: Project, *, training: dict[str, Any] | None = None,
              accuracies: tuple[float, ...] = (0.5, 0.7), test: float | None = 0.6, seconds: float = 2.0,
              samples_per_second: float | None = 1000.0, frozen: tuple[str, ...] = ()) -> str:
    """A finished run of ``project``'s network named ``name`` (YYYYMMDD-HHMMSS) in ``base``; its folder."""
    run = base / name
    run.mkdir(parents=True)
    settings = {**default_training_settings(), "epochs": len(accuracies), **(training or {})}
    write_run_files(run, {
        "dlstudio_version": "test", "project": "net.dlstudio",
        "started": f"{name[:4]}-{name[4:6]}-{name[6:8]}T{name[9:11]}:{name[11:13]}:{name[13:15]}",
        "graph": project.graph.to_dict(), "data": dict(project.data), "training": settings,
        "frozen": list(frozen), "weights": None}, ["a", "b"])
    columns = [column for column in METRIC_COLUMNS if samples_per_second is not None or column != "samples_per_second"]
    with (run / "metrics.csv").open("w", newline="") as file:  # an older run has no samples_per_second column
        writer = csv.DictWriter(file, fieldnames=columns, extrasaction="ignore")
        writer.writeheader()
        for epoch, accuracy in enumerate(accuracies, start=1):
            writer.writerow({"epoch": epoch, "train_loss": 2.0 / epoch, "train_accuracy": accuracy,
                             "val_loss": 2.5 / epoch, "val_accuracy": accuracy,
                             "learning_rate": settings["learning_rate"], "seconds": seconds,
                             "samples_per_second": samples_per_second})
    write_run_result(run, {"status": "completed", "message": "", "test_accuracy": test})
    return str(run)


def mlp() -> Project:
    return load_template("mlp")

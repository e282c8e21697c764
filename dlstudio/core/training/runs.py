"""Run folders beside the project: ``NAME.runs/<timestamp>/`` with settings, metrics.csv and checkpoints."""

from __future__ import annotations

import csv
import json
import os
from datetime import datetime
from pathlib import Path
from typing import TYPE_CHECKING, Any

from dlstudio.core.training.callbacks import Callback
from dlstudio.core.training.events import METRIC_COLUMNS, EpochMetrics

if TYPE_CHECKING:
    from dlstudio.core.project.model import Project
    from dlstudio.core.training.trainer import Trainer

SETTINGS_FILE = "settings.json"
METRICS_FILE = "metrics.csv"
CLASSES_FILE = "classes.json"


def runs_folder(project_path: Path) -> Path:
    """``model.dlstudio`` -> ``model.runs`` beside it."""
    return project_path.with_name(project_path.stem + ".runs")


def create_run_dir(project_path: Path, now: datetime | None = None) -> Path:
    """Make a new, empty run folder named by the time (with a suffix if two runs start in one second)."""
    base = runs_folder(project_path)
    stamp = (now or datetime.now()).strftime("%Y%m%d-%H%M%S")
    base.mkdir(parents=True, exist_ok=True)
    for attempt in range(1000):
        candidate = base / (stamp if attempt == 0 else f"{stamp}-{attempt}")
        try:
            candidate.mkdir()
        except FileExistsError:
            continue
        return candidate
    raise FileExistsError(f"too many runs started at {stamp} in {base}")


def _write_json(path: Path, value: Any) -> None:
    temporary = path.with_name(path.name + ".tmp")
    temporary.write_text(json.dumps(value, indent=2) + "\n", encoding="utf-8")
    os.replace(temporary, path)


def write_run_files(run_dir: Path, settings: dict[str, Any], class_names: list[str]) -> None:
    """Write the run's settings (graph, data, training, data summary...) and its class names."""
    _write_json(run_dir / SETTINGS_FILE, settings)
    _write_json(run_dir / CLASSES_FILE, list(class_names))


def read_run_settings(run_dir: Path) -> dict[str, Any]:
    """The settings a run was started with."""
    return json.loads((run_dir / SETTINGS_FILE).read_text(encoding="utf-8"))


def read_metrics(run_dir: Path) -> list[dict[str, float | None]]:
    """metrics.csv as rows of floats (None for empty cells), e.g. to overlay several runs' curves."""
    with (run_dir / METRICS_FILE).open(newline="", encoding="utf-8") as handle:
        return [{key: (float(value) if value != "" else None) for key, value in row.items()}
                for row in csv.DictReader(handle)]


def record_run(project: Project, run_dir: Path) -> str:
    """Add ``run_dir`` to ``project.runs`` (relative to the project file, with forward slashes); returns it."""
    if project.path is not None:
        entry = Path(os.path.relpath(run_dir, project.path.parent)).as_posix()
    else:
        entry = run_dir.as_posix()
    if entry not in project.runs:
        project.runs.append(entry)
    return entry


class MetricsCsv(Callback):
    """Writes ``metrics.csv``: one row per epoch, rewritten from the history on start (so a resume stays consistent)."""

    def __init__(self, run_dir: Path) -> None:
        self.path = Path(run_dir) / METRICS_FILE

    def on_fit_start(self, trainer: Trainer) -> None:
        with self.path.open("w", newline="", encoding="utf-8") as handle:
            writer = csv.DictWriter(handle, fieldnames=METRIC_COLUMNS)
            writer.writeheader()
            for metrics in trainer.history:
                writer.writerow(_cells(metrics))

    def on_epoch_end(self, trainer: Trainer, metrics: EpochMetrics) -> None:
        with self.path.open("a", newline="", encoding="utf-8") as handle:
            csv.DictWriter(handle, fieldnames=METRIC_COLUMNS).writerow(_cells(metrics))


def _cells(metrics: EpochMetrics) -> dict[str, Any]:
    return {key: ("" if value is None else value) for key, value in metrics.row().items()}

"""Run folders beside the project: ``NAME.runs/<timestamp>/`` with settings, metrics.csv and checkpoints."""

from __future__ import annotations

import csv
import json
import os
from datetime import datetime
from pathlib import Path
from typing import TYPE_CHECKING, Any

from dlstudio.core.errors import ProjectError
from dlstudio.core.project.document import runs_folder
from dlstudio.core.project.normalization import NormalizationStats
from dlstudio.core.training.callbacks import Callback
from dlstudio.core.training.checkpoint import LAST
from dlstudio.core.training.events import METRIC_COLUMNS, EpochMetrics

if TYPE_CHECKING:
    from dlstudio.core.project.model import Project
    from dlstudio.core.training.trainer import Trainer

SETTINGS_FILE = "settings.json"
METRICS_FILE = "metrics.csv"
CLASSES_FILE = "classes.json"
# The last epoch's validation confusion matrix, so that a reopened project shows it (and its mistakes).
CONFUSION_FILE = "confusion.json"


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


def record_run(project: Project, run_dir: Path, settings: dict[str, Any] | None = None) -> str:
    """Add ``run_dir`` to ``project.runs`` (relative to the project file, with forward slashes); returns it.

    The normalization statistics the run computed on its training split become
    the project's (``project.normalization``; None when it trained unnormalized).
    ``settings`` are the run's ``settings.json``, read from the folder when not
    given. Statistics that cannot be read leave the project's as they were:
    recording the run itself never fails on them.
    """
    if project.path is not None:
        entry = Path(os.path.relpath(run_dir, project.path.parent)).as_posix()
    else:
        entry = run_dir.as_posix()
    if entry not in project.runs:
        project.runs.append(entry)
    try:
        project.normalization = NormalizationStats.from_run_settings(
            read_run_settings(run_dir) if settings is None else settings, entry)
    except (OSError, ValueError, ProjectError):
        pass  # an older or hand-made run folder without a data summary: nothing to take from it
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
        if metrics.confusion is not None:
            _write_json(self.path.with_name(CONFUSION_FILE), {"epoch": metrics.epoch, "matrix": metrics.confusion})


def read_confusion(run_dir: Path | str) -> list[list[int]] | None:
    """The last epoch's confusion matrix the run recorded, or None (none recorded, or unreadable)."""
    try:
        value = json.loads((Path(run_dir) / CONFUSION_FILE).read_text(encoding="utf-8"))
        matrix = value["matrix"]
    except (OSError, ValueError, KeyError, TypeError):
        return None
    size = len(matrix) if isinstance(matrix, list) else 0
    if not (0 < size <= 1000) or not all(isinstance(row, list) and len(row) == size and
                                         all(isinstance(cell, int) and cell >= 0 for cell in row) for row in matrix):
        return None
    return matrix


def _cells(metrics: EpochMetrics) -> dict[str, Any]:
    return {key: ("" if value is None else value) for key, value in metrics.row().items()}


# How a run ended (status, message, test accuracy), written once the fit returns. Optional: a run
# folder without it (an older run, a crash) is summarized from its metrics and checkpoints.
RESULT_FILE = "result.json"
# Statuses summarize_run gives besides those of FitResult ("completed", "early_stopped", "stopped", "failed").
STATUS_INCOMPLETE = "incomplete"
STATUS_DAMAGED = "damaged"
STATUS_MISSING = "missing"  # listed in the project, but its folder is gone


def write_run_result(run_dir: Path, result: dict[str, Any]) -> None:
    """Record how a fit ended, e.g. ``{"status": "completed", "message": "", "test_accuracy": 0.98}``."""
    _write_json(Path(run_dir) / RESULT_FILE, result)


def summarize_run(run_dir: Path | str) -> dict[str, Any]:
    """One line of the run history, read from the folder's files (never raises for a damaged folder).

    Keys: ``run_dir``, ``name`` (the folder name), ``status``, ``message``,
    ``epochs`` (finished), ``planned_epochs``, ``best_val_accuracy``,
    ``best_epoch``, ``last_val_loss``, ``test_accuracy``, ``started`` (ISO
    time), ``project`` and ``resumable`` (see :func:`is_resumable`). ``status`` is the recorded one when the run wrote
    ``result.json``; otherwise "completed" when every planned epoch is in
    metrics.csv, "stopped" when a resumable checkpoint is left, else
    "incomplete". A folder whose settings or metrics cannot be read gets
    "damaged" with a one-line ``message`` naming the file; a folder that is
    gone (listed in the project, deleted on disk) gets "missing".
    """
    run_dir = Path(run_dir)
    summary: dict[str, Any] = {
        "run_dir": str(run_dir), "name": run_dir.name, "status": STATUS_INCOMPLETE, "message": "",
        "epochs": 0, "planned_epochs": None, "best_val_accuracy": None, "best_epoch": None,
        "last_val_loss": None, "test_accuracy": None, "started": _modified(run_dir), "project": None,
        "resumable": False,
    }
    if not run_dir.is_dir():
        summary.update(status=STATUS_MISSING, message=f"the folder {run_dir.name} is no longer on disk")
        return summary
    try:
        settings = read_run_settings(run_dir)
        if not isinstance(settings, dict):
            raise ValueError("not a JSON object")
    except (OSError, ValueError) as error:
        return _damaged(summary, SETTINGS_FILE, error)
    summary["started"] = settings.get("started") or summary["started"]
    summary["project"] = settings.get("project")
    training = settings.get("training")
    if isinstance(training, dict) and isinstance(training.get("epochs"), int):
        summary["planned_epochs"] = training["epochs"]

    rows: list[dict[str, float | None]] = []
    if (run_dir / METRICS_FILE).exists():  # absent until the fit starts
        try:
            rows = read_metrics(run_dir)
        except (OSError, ValueError, TypeError, csv.Error) as error:
            return _damaged(summary, METRICS_FILE, error)
    summary["epochs"] = len(rows)
    scored = [row for row in rows if row.get("val_accuracy") is not None]
    if scored:
        best = max(scored, key=lambda row: row["val_accuracy"])  # type: ignore[arg-type, return-value]
        summary["best_val_accuracy"] = best["val_accuracy"]
        summary["best_epoch"] = int(best["epoch"]) if best.get("epoch") is not None else None
    if rows:
        summary["last_val_loss"] = rows[-1].get("val_loss")

    result = _read_result(run_dir)
    if result is not None:
        summary["status"] = str(result.get("status") or STATUS_INCOMPLETE)
        summary["message"] = " ".join(str(result.get("message") or "").split())
        test_accuracy = result.get("test_accuracy")
        summary["test_accuracy"] = float(test_accuracy) if isinstance(test_accuracy, (int, float)) else None
    elif summary["planned_epochs"] is not None and len(rows) >= summary["planned_epochs"]:
        summary["status"] = "completed"
    elif (run_dir / LAST).is_file():
        summary["status"] = "stopped"
    summary["resumable"] = is_resumable(run_dir, summary["status"])
    return summary


# How a run ended that training on would not change: it reached its epochs, or early stopping decided.
_FINAL_STATUSES = ("completed", "early_stopped", STATUS_DAMAGED, STATUS_MISSING)


def is_resumable(run_dir: Path | str, status: str) -> bool:
    """Whether training can go on from the run's ``last.pt``: it has one and did not end for good.

    Stopped by the user, interrupted (a crash leaves no result.json; the summary
    calls it stopped) and failed with a checkpoint left all continue from it.
    """
    return status not in _FINAL_STATUSES and (Path(run_dir) / LAST).is_file()


def _read_result(run_dir: Path) -> dict[str, Any] | None:
    """result.json as a dict, or None when it is absent or unreadable (the metrics still tell the story)."""
    try:
        result = json.loads((run_dir / RESULT_FILE).read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return None
    return result if isinstance(result, dict) else None


def _damaged(summary: dict[str, Any], file_name: str, error: BaseException) -> dict[str, Any]:
    if isinstance(error, FileNotFoundError):
        reason = "it is missing"
    else:
        reason = " ".join(str(error).split()) or "the file is damaged"
    summary.update(status=STATUS_DAMAGED, message=f"cannot read {file_name} in {summary['name']}: {reason}")
    return summary


def _modified(run_dir: Path) -> str | None:
    try:
        return datetime.fromtimestamp(run_dir.stat().st_mtime).isoformat(timespec="seconds")
    except OSError:
        return None

"""Run folders beside the project: ``NAME.runs/<timestamp>/`` with settings, metrics.csv and checkpoints."""

from __future__ import annotations

import csv
import io
import json
import os
from datetime import datetime
from pathlib import Path
from typing import TYPE_CHECKING, Any

from dlstudio.core.errors import DlstudioError, ProjectError
from dlstudio.core.project.document import runs_folder
from dlstudio.core.project.normalization import NormalizationStats
from dlstudio.core.safe_io import read_limited, write_json, write_text
from dlstudio.core.training.callbacks import Callback
from dlstudio.core.training.checkpoint import LAST
from dlstudio.core.training.events import METRIC_COLUMNS, EpochMetrics

from dlstudio.core.graph import Graph

if TYPE_CHECKING:
    from dlstudio.core.project.model import Project
    from dlstudio.core.training.trainer import Trainer

SETTINGS_FILE = "settings.json"
METRICS_FILE = "metrics.csv"
CLASSES_FILE = "classes.json"
# The last epoch's validation confusion matrix, so that a reopened project shows it (and its mistakes).
CONFUSION_FILE = "confusion.json"


# Held (flock'd, with the pid inside) by the process training a run; see dlstudio.core.training.session.
LOCK_FILE = ".training.lock"

# Limits of what a run folder may ask to build or load, checked before anything is allocated.
MAX_PARAMETERS = 1_000_000_000       # 4 GB of float32 weights
MAX_SAMPLE_VALUES = 64 * 1024 * 1024  # one input sample: 256 MB of float32
MAX_CLASSES = 100_000
MAX_NAME = 1000
MAX_HISTORY = 1_000_000


class RunDataError(DlstudioError):
    """A run folder's settings or checkpoint are damaged or beyond limits; the message is one line."""


def validated_run_settings(run_dir: Path | str, *, for_resume: bool = True
                           ) -> tuple[dict[str, Any], Graph, dict[str, Any], dict[str, Any]]:
    """A run's settings.json checked like a project file: (settings, graph, data settings, training settings).

    The graph is rebuilt through the project loader's checks; data settings are
    validated; training settings must be an object (TrainConfig validates them);
    the model must fit the limits (:func:`check_model_size`). RunDataError with
    one line naming the run and the field otherwise. Without ``for_resume`` (to
    load the trained model) only the graph is required; data and training
    settings are checked when present.
    """
    from dlstudio.core.project.fileformat import graph_from_doc
    from dlstudio.core.project.settings import DATA_SETTINGS, validate_settings

    run_dir = Path(run_dir)
    where = f"run {run_dir.name}: {SETTINGS_FILE}"
    try:
        settings = read_run_settings(run_dir)
    except FileNotFoundError:
        raise RunDataError(f"{where} is missing") from None
    except OSError as error:
        raise RunDataError(f"{where}: {error.strerror or 'cannot be read'}") from None
    except ValueError:
        raise RunDataError(f"{where} is not valid JSON") from None
    except DlstudioError as error:
        raise RunDataError(f"{where}: {getattr(error, 'reason', error.message)}") from None
    if not isinstance(settings, dict):
        raise RunDataError(f"{where}: expected a JSON object")
    for key in ("graph", "data", "training") if for_resume else ("graph",):
        if key not in settings:
            raise RunDataError(f"{where} has no {key!r} entry")
    try:
        graph = graph_from_doc(settings["graph"], "graph")
        data = validate_settings(DATA_SETTINGS, settings.get("data", {}), "data")
    except ProjectError as error:
        raise RunDataError(" ".join(f"{where}: {error.message}".split())) from None
    training = settings.get("training", {})
    if not isinstance(training, dict):
        raise RunDataError(f"{where}: training: expected an object of settings")
    if training.get("monitor", "val_loss") not in ("val_loss", "train_loss"):
        raise RunDataError(f"{where}: training.monitor: expected 'val_loss' or 'train_loss'")
    check_model_size(graph, f"run {run_dir.name}")
    return settings, graph, dict(data), dict(training)


def model_size(graph: Graph) -> tuple[int, int]:
    """(parameters, values of one input sample) of ``graph``, from the shape inference (no torch, no allocation)."""
    from math import prod

    from dlstudio.core.shapes import infer_graph

    parameters = sum(info.params for info in infer_graph(graph).values())
    sample = max((prod(node.params["shape"]) for node in graph if node.type == "Input"), default=0)
    return parameters, sample


def check_model_size(graph: Graph, what: str) -> tuple[int, int]:
    """Refuse (RunDataError) a model whose weights or one input sample exceed the limits; returns model_size()."""
    parameters, sample = model_size(graph)
    if parameters > MAX_PARAMETERS:
        raise RunDataError(f"{what}: the model has {parameters:,} parameters ({parameters * 4 / 1e9:,.0f} GB), "
                           f"more than the {MAX_PARAMETERS:,} dlstudio can train or load")
    if sample > MAX_SAMPLE_VALUES:
        raise RunDataError(f"{what}: one input sample holds {sample:,} values ({sample * 4 / 1e9:,.1f} GB), more "
                           f"than the {MAX_SAMPLE_VALUES:,} dlstudio can prepare")
    return parameters, sample


def validated_class_names(value: Any, what: str) -> list[str]:
    """Class names from a run's file or checkpoint: a list of at most MAX_CLASSES texts; RunDataError otherwise."""
    if not isinstance(value, (list, tuple)):
        raise RunDataError(f"{what}: the class names are not a list")
    if len(value) > MAX_CLASSES:
        raise RunDataError(f"{what}: {len(value):,} class names, more than {MAX_CLASSES:,}")
    if not all(isinstance(name, str) and len(name) <= MAX_NAME for name in value):
        raise RunDataError(f"{what}: a class name is not a text of at most {MAX_NAME} characters")
    return list(value)


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


# Files of a run folder are small; a larger one is not a run's (and is refused before it is parsed).
MAX_RUN_FILE = 64 * 1024 * 1024


def _write_json(path: Path, value: Any) -> None:
    # Through the guarded writer: never through a planted link, never half a file. NaN and infinities
    # become null (valid JSON; a run's record is still written when a metric went non-finite).
    write_json(path, value)


def _read_json(path: Path) -> Any:
    """A run file's JSON: a regular file within MAX_RUN_FILE (ReadError otherwise), parsed (ValueError if not JSON)."""
    text = read_limited(path, MAX_RUN_FILE, "run file").decode("utf-8")
    try:
        return json.loads(text)
    except RecursionError:
        raise ValueError(f"{path.name} is nested too deeply") from None


def write_run_files(run_dir: Path, settings: dict[str, Any], class_names: list[str]) -> None:
    """Write the run's settings (graph, data, training, data summary...) and its class names."""
    _write_json(run_dir / SETTINGS_FILE, settings)
    _write_json(run_dir / CLASSES_FILE, list(class_names))


def read_run_settings(run_dir: Path) -> dict[str, Any]:
    """The settings a run was started with (not validated; see :func:`validated_run_settings`).

    Raises OSError, ValueError (not JSON) or ReadError (not a regular file, too large).
    """
    return _read_json(Path(run_dir) / SETTINGS_FILE)


def read_metrics(run_dir: Path) -> list[dict[str, float | None]]:
    """metrics.csv as rows of floats (None for empty cells), e.g. to overlay several runs' curves."""
    text = read_limited(Path(run_dir) / METRICS_FILE, MAX_RUN_FILE, "metrics file").decode("utf-8")
    return [{key: (float(value) if value != "" else None) for key, value in row.items()}
            for row in csv.DictReader(io.StringIO(text, newline=""))]


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


def record_run_in_file(project_path: Path | str, run_dir: Path | str,
                       settings: dict[str, Any] | None = None) -> Project:
    """Record ``run_dir`` in the project file itself; returns the project as now saved.

    Under the project's lock the file is read again, the run entry (and the run's
    normalization statistics, see :func:`record_run`) merged in, and the file
    replaced atomically: edits saved meanwhile by the window or by another
    ``dlstudio train`` are kept, and two runs recorded at once are both listed.
    A symbolic link is followed to the real file. Raises ProjectError (one line).
    """
    from dlstudio.core.project.fileformat import update_project_file

    return update_project_file(project_path, lambda project: record_run(project, Path(run_dir), settings))


class MetricsCsv(Callback):
    """Writes ``metrics.csv``: one row per epoch, the whole file replaced from the history after each epoch.

    A replace (through the guarded writer) rather than an append: no planted link is
    followed, a crash never leaves half a row, and the file always matches the history
    the checkpoint holds (a resume rewrites it from there). Once per epoch, so it costs nothing.
    """

    def __init__(self, run_dir: Path) -> None:
        self.path = Path(run_dir) / METRICS_FILE
        self._rows: list[dict[str, Any]] = []

    def _write(self) -> None:
        text = io.StringIO(newline="")
        writer = csv.DictWriter(text, fieldnames=METRIC_COLUMNS)
        writer.writeheader()
        writer.writerows(self._rows)
        write_text(self.path, text.getvalue())

    def on_fit_start(self, trainer: Trainer) -> None:
        self._rows = [_cells(metrics) for metrics in trainer.history]
        self._write()

    def on_epoch_end(self, trainer: Trainer, metrics: EpochMetrics) -> None:
        self._rows.append(_cells(metrics))
        self._write()
        if metrics.confusion is not None:
            _write_json(self.path.with_name(CONFUSION_FILE), {"epoch": metrics.epoch, "matrix": metrics.confusion})


def read_confusion(run_dir: Path | str) -> list[list[int]] | None:
    """The last epoch's confusion matrix the run recorded, or None (none recorded, or unreadable)."""
    try:
        value = _read_json(Path(run_dir) / CONFUSION_FILE)
        matrix = value["matrix"]
    except (OSError, ValueError, KeyError, TypeError, DlstudioError):
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
    ``best_epoch``, ``last_val_loss``, ``best_val_loss``, ``test_accuracy``, ``test_loss`` (a reconstruction
    has losses, no accuracy), ``started`` (ISO
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
        "last_val_loss": None, "best_val_loss": None, "test_accuracy": None, "test_loss": None,
        "started": _modified(run_dir), "project": None,
        "resumable": False,
    }
    if not run_dir.is_dir():
        summary.update(status=STATUS_MISSING, message=f"the folder {run_dir.name} is no longer on disk")
        return summary
    try:
        settings = read_run_settings(run_dir)
        if not isinstance(settings, dict):
            raise ValueError("not a JSON object")
    except (OSError, ValueError, DlstudioError) as error:
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
        except (OSError, ValueError, TypeError, csv.Error, DlstudioError) as error:
            return _damaged(summary, METRICS_FILE, error)
    summary["epochs"] = len(rows)
    scored = [row for row in rows if row.get("val_accuracy") is not None]
    if scored:
        best = max(scored, key=lambda row: row["val_accuracy"])  # type: ignore[arg-type, return-value]
        summary["best_val_accuracy"] = best["val_accuracy"]
        summary["best_epoch"] = int(best["epoch"]) if best.get("epoch") is not None else None
    if rows:
        summary["last_val_loss"] = rows[-1].get("val_loss")
    losses = [row["val_loss"] for row in rows if row.get("val_loss") is not None]
    summary["best_val_loss"] = min(losses) if losses else None  # type: ignore[type-var]

    result = _read_result(run_dir)
    if result is not None:
        summary["status"] = str(result.get("status") or STATUS_INCOMPLETE)
        summary["message"] = " ".join(str(result.get("message") or "").split())
        test_accuracy, test_loss = result.get("test_accuracy"), result.get("test_loss")
        summary["test_accuracy"] = float(test_accuracy) if isinstance(test_accuracy, (int, float)) else None
        summary["test_loss"] = float(test_loss) if isinstance(test_loss, (int, float)) else None
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
        result = _read_json(run_dir / RESULT_FILE)
    except (OSError, ValueError, DlstudioError):
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

"""The start of a training run, shared by ``dlstudio train`` and the window (torch; no Qt).

Both front ends prepare a run the same way: resolve the settings (a resumed
run keeps those it started with), refuse what does not fit before the first
batch (settings, device, graph, data), create and fill the run folder, and
build the :class:`Trainer` with their own callbacks. Recording the run in the
project is a separate step (:meth:`TrainingSession.record`), because the
window does it on its own thread while the preparation runs on a worker.

Typical use::

    session = start_session(project.graph, project.data, project.training, project_path, epochs=5)
    session.record(project)                      # then save the project
    result = session.trainer([ProgressBar(sys.stderr)]).fit()  # a resumed run continues from its checkpoint
    summary = session.finish(result)             # result.json in the run folder; the --json object
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path
from typing import TYPE_CHECKING, Any

from dlstudio import __version__
from dlstudio.core.errors import DlstudioError
from dlstudio.core.graph import Graph
from dlstudio.core.training.checkpoint import LAST, load_checkpoint
from dlstudio.core.training.config import TrainConfig
from dlstudio.core.training.device import resolve_device
from dlstudio.core.training.events import FitResult
from dlstudio.core.training.runs import (
    MetricsCsv,
    create_run_dir,
    read_run_settings,
    record_run,
    write_run_files,
    write_run_result,
)
from dlstudio.core.training.trainer import Trainer

if TYPE_CHECKING:
    import torch

    from dlstudio.core.data import PreparedData
    from dlstudio.core.project.model import Project
    from dlstudio.core.training.callbacks import Callback
    from dlstudio.core.training.control import TrainControl


class SessionError(DlstudioError):
    """A run cannot start (e.g. nothing to resume); the message is one line for the user."""


@dataclass
class TrainingSession:
    """A prepared run: the model, its data, its settings and its folder, ready to train.

    ``resume_dir`` is the run folder to continue from (None for a new run);
    ``settings`` is what was written to the run's ``settings.json``.
    """

    project_path: Path
    graph: Graph
    data_settings: dict[str, Any]
    config: TrainConfig
    model: torch.nn.Module
    data: PreparedData
    run_dir: Path
    resume_dir: Path | None = None
    settings: dict[str, Any] = field(default_factory=dict)

    @property
    def is_resumed(self) -> bool:
        return self.resume_dir is not None

    def record(self, project: Project) -> str | None:
        """Add a new run to ``project.runs`` (a resumed run is there already); returns the entry or None.

        The run's normalization statistics (computed on its training split) become
        ``project.normalization``, with the data settings and Input shape they came from.
        The caller saves the project afterwards, so the file lists every run it has.
        """
        return None if self.is_resumed else record_run(project, self.run_dir, self.settings)

    def trainer(self, callbacks: list[Callback] | tuple[Callback, ...] = (), *,
                control: TrainControl | None = None) -> Trainer:
        """The trainer of this run; ``metrics.csv`` is always written, ``callbacks`` come after it.

        A resumed run's trainer already stands at its checkpoint (weights, optimizer,
        epoch, ``history``), so whoever reports the run can show its past epochs before
        the fit starts; call ``fit()`` without ``resume`` to continue it.
        """
        trainer = Trainer(self.model, self.data, self.config, callbacks=[MetricsCsv(self.run_dir), *callbacks],
                          control=control, run_dir=self.run_dir)
        if self.resume_dir is not None:
            trainer.load_state_dict(load_checkpoint(self.resume_dir, trainer.device))
        return trainer

    def summary(self, result: FitResult) -> dict[str, Any]:
        """How the run ended as plain data: the ``--json`` object of ``dlstudio train``."""
        last = result.last
        return {
            "run_dir": str(self.run_dir), "epochs": result.epochs_completed,
            "train_loss": last.train_loss if last else None, "val_loss": last.val_loss if last else None,
            "val_accuracy": last.val_accuracy if last else None, "test_accuracy": result.test_accuracy,
            "samples_per_second": round(result.samples_per_second, 1), "seconds": round(result.seconds, 3),
            "status": result.status,
        }

    def finish(self, result: FitResult) -> dict[str, Any]:
        """Write how the fit ended into the run folder (``result.json``, read by the run history); the summary."""
        write_run_result(self.run_dir, {"status": result.status, "message": result.message,
                                        "epochs": result.epochs_completed, "best_epoch": result.best_epoch,
                                        "test_loss": result.test_loss, "test_accuracy": result.test_accuracy})
        return self.summary(result)


def resume_settings(run_dir: Path | str) -> tuple[Graph, dict[str, Any], dict[str, Any]]:
    """Graph, data and training settings a run started with; SessionError if it has nothing to resume."""
    run_dir = Path(run_dir)
    if not (run_dir / LAST).is_file():
        raise SessionError(f"{run_dir} has no checkpoint to resume ({LAST} is missing)")
    try:
        settings = read_run_settings(run_dir)
        return Graph.from_dict(settings["graph"]), dict(settings["data"]), dict(settings["training"])
    except (OSError, ValueError, KeyError, TypeError, DlstudioError) as error:
        reason = getattr(error, "message", None) or _plain_reason(error)
        raise SessionError(f"cannot read the settings of the run {run_dir}: {reason}") from None


def _plain_reason(error: BaseException) -> str:
    """Why a run's settings could not be read, in plain words (never the exception's class name)."""
    if isinstance(error, OSError):
        return error.strerror or "the file cannot be read"
    if isinstance(error, KeyError):
        return f"settings.json has no {error.args[0]!r} entry" if error.args else "settings.json is incomplete"
    return "settings.json is damaged or was written by another program"


def start_session(graph: Graph, data_settings: dict[str, Any], training: dict[str, Any], project_path: Path | str,
                  *, epochs: int | None = None, device: str | None = None,
                  resume: Path | str | None = None) -> TrainingSession:
    """Prepare a run of ``graph`` on ``data_settings`` with ``training`` settings, beside ``project_path``.

    ``epochs`` and ``device`` override the settings (with ``resume``, epochs is the total).
    With ``resume`` the run folder's own settings are used and no new folder is made.
    Everything that can be refused is checked before the run folder is created, with
    a one-line DlstudioError (ProjectError for a setting, DeviceError, DataError,
    ShapeError/GraphError from the compiler, SessionError).
    """
    import torch

    from dlstudio.core.compiler import compile_graph
    from dlstudio.core.data import DataRequirements, prepare_data

    project_path = Path(project_path)
    resume_dir = Path(resume) if resume is not None else None
    if resume_dir is not None:
        graph, data_settings, training = resume_settings(resume_dir)
    overrides = {key: value for key, value in (("epochs", epochs), ("device", device)) if value is not None}
    config = TrainConfig.from_settings(training, **overrides)
    resolve_device(config.device)
    torch.manual_seed(config.seed)  # the compiled model's initial weights follow the seed
    model = compile_graph(graph)
    data = prepare_data(data_settings, DataRequirements.from_model(model), base_dir=project_path.parent)
    settings: dict[str, Any] = {}
    if resume_dir is None:
        run_dir = create_run_dir(project_path)
        settings = {
            "dlstudio_version": __version__, "project": project_path.name,
            "started": datetime.now().isoformat(timespec="seconds"), "graph": graph.to_dict(),
            "data": dict(data_settings), "training": config.to_dict(), "data_summary": data.summary(),
        }
        write_run_files(run_dir, settings, data.class_names)
    else:
        run_dir = resume_dir
    return TrainingSession(project_path, graph, dict(data_settings), config, model, data, run_dir, resume_dir,
                           settings)


def start_project_session(project: Project, project_path: Path | str | None = None, **options: Any) -> TrainingSession:
    """:func:`start_session` on a project's graph and settings (``project_path`` defaults to its own)."""
    path = project_path if project_path is not None else project.path
    if path is None:
        raise SessionError("save the project first: runs are kept in a folder beside the project file")
    return start_session(project.graph, dict(project.data), dict(project.training), path, **options)

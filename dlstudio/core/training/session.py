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

from collections.abc import Iterable
from dataclasses import dataclass, field, fields
from datetime import datetime
from pathlib import Path
from typing import TYPE_CHECKING, Any

from dlstudio import __version__
from dlstudio.core.errors import DlstudioError
from dlstudio.core.graph import Graph
from dlstudio.core.safe_io import FileLock, LockHeld, WriteError, remove_stale_temporaries
from dlstudio.core.training.callbacks import Callback
from dlstudio.core.training.checkpoint import LAST, load_checkpoint
from dlstudio.core.training.config import TrainConfig
from dlstudio.core.training.device import resolve_device
from dlstudio.core.training.distributed import Distributed, PeerFailed
from dlstudio.core.training.events import EpochMetrics, FitResult
from dlstudio.core.training.optim import NothingToTrain
from dlstudio.core.training.runs import (
    LOCK_FILE,
    MetricsCsv,
    RunDataError,
    check_model_size,
    create_run_dir,
    record_run,
    record_run_in_file,
    validated_run_settings,
    write_run_files,
    write_run_result,
)
from dlstudio.core.training.trainer import Trainer

if TYPE_CHECKING:
    import torch

    from dlstudio.core.data import PreparedData
    from dlstudio.core.data.normalization import Normalization
    from dlstudio.core.project.model import Project
    from dlstudio.core.project.pretrained import WeightsSource
    from dlstudio.core.training.control import TrainControl
    from dlstudio.core.training.pretrained import Progress


class SessionError(DlstudioError):
    """A run cannot start (e.g. nothing to resume); the message is one line for the user."""


@dataclass
class TrainingSession:
    """A prepared run: the model, its data, its settings and its folder, ready to train.

    ``resume_dir`` is the run folder to continue from (None for a new run);
    ``settings`` is what was written to the run's ``settings.json``.
    ``frozen``: node ids training leaves alone; ``pretrained``: node ids that started from the run's
    starting weights (a second optimizer group); ``weights_summary``: the one-line load summary ("" for none).
    ``distributed``: this process's place under torchrun (None for one process); only rank 0 writes the
    run folder and the project file, the other ranks know its path.
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
    lock: FileLock | None = field(default=None, repr=False)
    frozen: tuple[str, ...] = ()
    pretrained: tuple[str, ...] = ()
    weights_summary: str = ""
    distributed: Distributed | None = None

    @property
    def is_resumed(self) -> bool:
        return self.resume_dir is not None

    @property
    def frozen_with_weights(self) -> tuple[str, ...]:
        """The frozen nodes that have weights: what freezing holds still (a frozen ReLU or Add has none)."""
        children = dict(self.model.named_children())
        return tuple(node_id for node_id in self.frozen
                     if node_id in children and any(True for _ in children[node_id].parameters()))

    @property
    def writes(self) -> bool:
        """Whether this process writes the run's files: always, except the ranks after 0 under torchrun."""
        return self.distributed is None or self.distributed.is_main

    def close(self) -> None:
        """Let the run folder go (its lock): :meth:`finish` does it; call it when a session is abandoned."""
        if self.lock is not None:
            self.lock.release()

    def record_in_file(self) -> Project | None:
        """Record a new run in the project file itself (re-read, merged, saved under the project's lock).

        Returns the project as saved, or None for a resumed run (listed already).
        See :func:`dlstudio.core.training.runs.record_run_in_file`.
        """
        if self.is_resumed or not self.writes:
            return None
        return record_run_in_file(self.project_path, self.run_dir, self.settings)

    def record(self, project: Project) -> str | None:
        """Add a new run to ``project.runs`` (a resumed run is there already); returns the entry or None.

        The run's normalization statistics (computed on its training split) become
        ``project.normalization``, with the data settings and Input shape they came from.
        The caller saves the project afterwards, so the file lists every run it has.
        """
        return None if self.is_resumed or not self.writes else record_run(project, self.run_dir, self.settings)

    def trainer(self, callbacks: list[Callback] | tuple[Callback, ...] = (), *,
                control: TrainControl | None = None) -> Trainer:
        """The trainer of this run; ``metrics.csv`` is always written, ``callbacks`` come after it.

        A resumed run's trainer already stands at its checkpoint (weights, optimizer,
        epoch, ``history``), so whoever reports the run can show its past epochs before
        the fit starts; call ``fit()`` without ``resume`` to continue it.
        """
        writers = [MetricsCsv(self.run_dir)] if self.writes else []
        trainer = Trainer(self.model, self.data, self.config,
                          callbacks=[*writers, *callbacks, _LetTheRunGo(self)], control=control,
                          run_dir=self.run_dir if self.writes else None, frozen=self.frozen,
                          pretrained=self.pretrained, distributed=self.distributed)
        if self.resume_dir is not None:
            try:
                state = load_checkpoint(self.resume_dir, trainer.device)
                where = f"the checkpoint {LAST} of run {self.run_dir.name}"
                check_resume_state(state, trainer, where)
                try:
                    trainer.load_state_dict(state)
                except Exception as error:  # noqa: BLE001 - damaged but safe data: torch and numpy raise anything
                    raise SessionError(f"{where} does not fit the run's model and data ({_plain(error)})") from None
            except BaseException:
                self.close()
                raise
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
        """Write how the fit ended into the run folder (``result.json``, read by the run history); the summary.

        Lets the run folder go (its lock). On a full disk result.json is not written
        (the run's metrics and checkpoints still tell the story).
        """
        try:
            if not self.writes:
                return self.summary(result)
            write_run_result(self.run_dir, {"status": result.status, "message": result.message,
                                            "epochs": result.epochs_completed, "best_epoch": result.best_epoch,
                                            "test_loss": result.test_loss, "test_accuracy": result.test_accuracy})
        except WriteError:
            if result.status != "failed":
                raise
        finally:
            self.close()
        return self.summary(result)


class _LetTheRunGo(Callback):
    """Releases the run folder's lock when the fit is over (or failed): the folder is no longer being written."""

    def __init__(self, session: TrainingSession) -> None:
        self.session = session

    def on_fit_end(self, trainer: Trainer, result: FitResult) -> None:
        self.session.close()

    def on_exception(self, trainer: Trainer, error: BaseException) -> None:
        if not isinstance(error, KeyboardInterrupt):  # an interrupted fit still saves and ends normally
            self.session.close()


def resume_settings(run_dir: Path | str) -> tuple[Graph, dict[str, Any], dict[str, Any]]:
    """Graph, data and training settings a run started with; SessionError if it has nothing to resume.

    settings.json is checked like a project file (schema, sizes, limits), so damaged
    run data is refused with one line instead of failing somewhere in training.
    """
    _, graph, data, training = _resume_settings(Path(run_dir))
    return graph, data, training


def _resume_settings(run_dir: Path) -> tuple[dict[str, Any], Graph, dict[str, Any], dict[str, Any]]:
    if not (run_dir / LAST).is_file():
        raise SessionError(f"{run_dir} has no checkpoint to resume ({LAST} is missing)")
    try:
        return validated_run_settings(run_dir)
    except RunDataError as error:
        raise SessionError(f"cannot resume: {error.message}") from None


def _recorded_start(settings: dict[str, Any], graph: Graph, where: str
                    ) -> tuple[tuple[str, ...], tuple[str, ...], Normalization | None, str]:
    """What a run recorded of its start: frozen ids, pretrained ids, fixed normalization, the load summary.

    A run written before these were recorded has none of them (nothing frozen, one parameter group).
    """
    from dlstudio.core.data.normalization import Normalization

    def ids(value: Any, what: str) -> tuple[str, ...]:
        if not isinstance(value, list) or not all(isinstance(item, str) for item in value):
            raise SessionError(f"{where}: {what} is not a list of node ids")
        return tuple(item for item in value if item in graph)

    frozen = ids(settings.get("frozen", []), "frozen")
    weights = settings.get("weights")
    if weights is None:
        return frozen, (), None, ""
    if not isinstance(weights, dict):
        raise SessionError(f"{where}: weights is not an object")
    pretrained = ids(weights.get("loaded", []), "weights.loaded")
    fixed = weights.get("normalization")
    normalization = None
    if fixed is not None:
        try:
            normalization = Normalization.from_dict(fixed)
        except (KeyError, TypeError, ValueError):
            raise SessionError(f"{where}: weights.normalization is not a mean and std") from None
    return frozen, pretrained, normalization, str(weights.get("summary", ""))


def _fitting_normalization(source: WeightsSource | None, graph: Graph, base_dir: Path) -> Normalization | None:
    """The normalization the starting weights were trained with (torchvision's, or an earlier run's fixed one)
    when the Input has as many channels as it has values."""
    from dlstudio.core.project.normalization import input_shape
    from dlstudio.core.training.pretrained import weights_normalization

    fixed = weights_normalization(source, base_dir)
    shape = input_shape(graph)
    if fixed is None or shape is None or len(shape) != 3 or shape[0] != len(fixed.mean):
        return None
    return fixed


def lock_run(run_dir: Path) -> FileLock:
    """Take the run folder's lock (its pid inside), or SessionError: "run R is being trained by process P".

    A lock left by a process that died is free (the kernel dropped it) and is taken
    over. Temporary files an interrupted write left in the folder are removed.
    """
    lock = FileLock(run_dir / LOCK_FILE)
    try:
        lock.acquire()
    except LockHeld as error:
        who = f"process {error.pid}" if error.pid is not None else "another process"
        raise SessionError(f"run {run_dir.name} is being trained by {who}; stop it first") from None
    except WriteError as error:
        raise SessionError(f"cannot train the run {run_dir.name}: {error.reason}") from None
    remove_stale_temporaries(run_dir)
    return lock


# A resumed checkpoint's fields, checked before they reach the trainer (which trusts them).
_STATE_DICTS = ("model", "optimizer", "schedule", "rng", "best")


def check_resume_state(state: dict[str, Any], trainer: Trainer, where: str) -> None:
    """Refuse (SessionError, one line) a checkpoint whose structure the trainer could not use.

    Sizes are checked against the run's data so that nothing huge is allocated from
    numbers in the file; what is left (tensor shapes, optimizer groups) the
    trainer's own loading refuses, and :meth:`TrainingSession.trainer` words it.
    """
    import torch

    def refuse(reason: str) -> SessionError:
        return SessionError(f"{where} is damaged: {reason}")

    for key in _STATE_DICTS:
        if not isinstance(state.get(key), dict):
            raise refuse(f"its {key!r} entry is missing or not a table")
    if not all(isinstance(k, str) and isinstance(v, torch.Tensor) for k, v in state["model"].items()):
        raise refuse("its model weights are not all tensors")
    epoch = state.get("epoch")
    if not isinstance(epoch, int) or isinstance(epoch, bool) or not 0 <= epoch <= 10_000_000:
        raise refuse("its epoch is not a count")
    history = state.get("history")
    if not isinstance(history, list) or len(history) > 10_000_000 or len(history) != epoch:
        raise refuse("its history does not match its epoch")
    if not all(isinstance(item, dict) and all(isinstance(k, str) for k in item) for item in history):
        raise refuse("its history is not a list of tables")
    numeric = {item.name for item in fields(EpochMetrics)} - {"confusion", "is_best"}
    for item in history:
        if not set(item) <= numeric | {"confusion", "is_best"}:
            raise refuse("its history holds unknown fields")
        if not all(item.get(name) is None or _is_number(item.get(name)) for name in numeric):
            raise refuse("its history holds values that are not numbers")
    best = state["best"]
    if not all(key in best for key in ("value", "epoch", "stale")):
        raise refuse("its best epoch is incomplete")
    if not ((best["value"] is None or _is_number(best["value"])) and (best["epoch"] is None or _is_count(best["epoch"]))
            and _is_count(best["stale"])):
        raise refuse("its best epoch holds values that are not numbers")
    position = state.get("position")
    if position is not None:
        batches, samples = trainer.batches_per_epoch, len(trainer.data.train)
        if not isinstance(position, dict):
            raise refuse("its position in the epoch is not a table")
        permutation, losses, batch = position.get("permutation"), position.get("losses"), position.get("batch")
        sizes = position.get("sizes")
        if not (isinstance(permutation, torch.Tensor) and permutation.dim() == 1 and len(permutation) == samples
                and not permutation.is_floating_point()):
            raise refuse("its sample order does not fit the run's training data")
        if permutation.numel() and (int(permutation.min()) < 0 or int(permutation.max()) >= samples):
            raise refuse("its sample order does not fit the run's training data")
        if not (isinstance(losses, torch.Tensor) and losses.dim() == 1 and len(losses) == batches):
            raise refuse("its batch losses do not fit the run's training data")
        if not isinstance(position.get("correct"), torch.Tensor):
            raise refuse("its correct count is not a number")
        if not isinstance(batch, int) or not 0 <= batch <= batches:
            raise refuse("its batch number does not fit the run's training data")
        if sizes is not None and not (isinstance(sizes, list) and len(sizes) == batches
                                      and all(isinstance(size, int) for size in sizes)):
            raise refuse("its batch sizes do not fit the run's training data")


def _is_number(value: Any) -> bool:
    return isinstance(value, (int, float)) and not isinstance(value, bool)


def _is_count(value: Any) -> bool:
    return isinstance(value, int) and not isinstance(value, bool) and 0 <= value <= 10_000_000


def _plain(error: BaseException) -> str:
    """A reason in plain words from an error of torch, numpy or Python (never its class name)."""
    if isinstance(error, RecursionError):
        return "it is nested too deeply"
    if isinstance(error, MemoryError):
        return "it asks for more memory than there is"
    text = " ".join(str(error).split())
    if isinstance(error, KeyError):
        return f"it has no {text} entry" if text else "it is incomplete"
    if not text or isinstance(error, (TypeError, AttributeError)):
        return "it holds values of the wrong kind"
    return text[:200] + ("..." if len(text) > 200 else "")


def start_session(graph: Graph, data_settings: dict[str, Any], training: dict[str, Any], project_path: Path | str,
                  *, epochs: int | None = None, device: str | None = None,
                  resume: Path | str | None = None, weights: WeightsSource | None = None,
                  frozen: Iterable[str] = (), allow_download: bool = False,
                  progress: Progress | None = None, distributed: Distributed | None = None) -> TrainingSession:
    """Prepare a run of ``graph`` on ``data_settings`` with ``training`` settings, beside ``project_path``.

    ``epochs`` and ``device`` override the settings (with ``resume``, epochs is the total).
    With ``resume`` the run folder's own settings are used and no new folder is made.
    ``weights`` (a project's starting weights) load after the seeded initialization; nodes that got
    weights train at the pretrained learning rate, ``frozen`` nodes not at all. ``allow_download`` lets
    torchvision's weights be downloaded into torch's cache (``progress`` sees the bytes); without it a
    missing file is refused with one line saying where to put it. A resumed run keeps what it recorded.
    Everything that can be refused is checked before the run folder is created, with
    a one-line DlstudioError (ProjectError for a setting, DeviceError, DataError,
    ShapeError/GraphError from the compiler, WeightsError, SessionError).

    ``distributed`` (under torchrun): every process prepares the same model and data; when one cannot,
    rank 0 refuses naming that rank and the others raise PeerFailed (nothing to add). Then rank 0 alone
    locks, creates and fills the run folder and tells the others its path. A run resumes under as many
    processes as it trained with.
    """
    import torch

    from dlstudio.core.compiler import compile_graph
    from dlstudio.core.data import DataRequirements, prepare_data
    from dlstudio.core.training.optim import parameter_groups
    from dlstudio.core.training.pretrained import load_weights

    project_path = Path(project_path)
    resume_dir = Path(resume) if resume is not None else None
    lock = None
    writes = distributed is None or distributed.is_main
    # Under torchrun, how far the processes got together: each failure must meet the others at the same step.
    stage = "prepare"
    if resume_dir is not None:
        if not resume_dir.is_dir():
            raise SessionError(f"{resume_dir} is not a run folder")
        if writes:
            lock = lock_run(resume_dir)  # before anything is read: no other trainer writes it meanwhile
    try:
        recorded: dict[str, Any] = {}
        if resume_dir is not None:
            recorded, graph, data_settings, training = _resume_settings(resume_dir)
            _check_same_processes(recorded, resume_dir, distributed)
            frozen_ids, pretrained, fixed, weights_summary = _recorded_start(
                recorded, graph, f"cannot resume: run {resume_dir.name}: settings.json")
        else:
            frozen_ids = tuple(sorted(node_id for node_id in set(frozen) if node_id in graph))
            fixed = _fitting_normalization(weights, graph, project_path.parent)
        overrides = {key: value for key, value in (("epochs", epochs), ("device", device)) if value is not None}
        config = TrainConfig.from_settings(training, **overrides)
        resolve_device(config.device)
        if distributed is not None and config.sync_batchnorm and distributed.backend != "nccl":
            raise SessionError("training.sync_batchnorm needs CUDA devices (NCCL); this run trains on the CPU "
                               "with gloo: turn it off")
        try:
            check_model_size(graph, "the model")
        except RunDataError as error:
            raise SessionError(error.message) from None
        torch.manual_seed(config.seed)  # the compiled model's initial weights follow the seed
        model = compile_graph(graph)
        loaded = None
        if resume_dir is None:
            if weights is not None:  # after the seeded initialization: what does not load stays as seeded
                loaded = load_weights(model, graph, weights, base_dir=project_path.parent,
                                      allow_download=allow_download, progress=progress)
            pretrained = tuple(loaded.loaded) if loaded is not None else ()
            weights_summary = loaded.summary if loaded is not None else ""
        try:  # every layer frozen is refused now, not after the data is read and the folder made
            parameter_groups(model, config, frozen=frozen_ids)  # (sets requires_grad as the trainer would)
        except NothingToTrain as error:
            raise SessionError(error.message) from None
        data = prepare_data(data_settings, DataRequirements.from_model(model), base_dir=project_path.parent,
                            normalization=fixed)
        settings: dict[str, Any] = {}
        if distributed is not None:
            stage = "agree"
            _agree_to_start(distributed, None)  # raises on every process when one could not prepare
            stage = "folder"
        if not writes:  # rank 0 makes the run folder (or uses the resumed one) and says where it is
            run_dir = _folder_from_rank_0(distributed)  # type: ignore[arg-type]
        elif resume_dir is None:
            run_dir = create_run_dir(project_path)
            lock = lock_run(run_dir)
            settings = {
                "dlstudio_version": __version__, "project": project_path.name,
                "started": datetime.now().isoformat(timespec="seconds"), "graph": graph.to_dict(),
                "data": dict(data_settings), "training": config.to_dict(), "data_summary": data.summary(),
                "frozen": list(frozen_ids),
                "weights": None if weights is None else {
                    "source": weights.to_doc(), **loaded.to_doc(),  # type: ignore[union-attr]
                    "normalization": fixed.to_dict() if fixed is not None else None},
            }
            if distributed is not None:
                settings["distributed"] = distributed.describe(config.batch_size)
            write_run_files(run_dir, settings, data.class_names)
        else:
            run_dir = resume_dir
        if writes:
            # Every file skipped, found now or while streaming during the fit, is listed in the run folder.
            data.log_skipped(run_dir / "skipped.jsonl")
            if distributed is not None:
                stage = "shared"
                distributed.share(("folder", str(run_dir)))
    except BaseException as error:
        if lock is not None:
            lock.release()
        if distributed is not None and stage == "prepare":
            _agree_to_start(distributed, error)  # raises: this process (at least) could not start
        elif distributed is not None and stage == "folder" and writes:
            distributed.share(("failed", _reason(error)))  # the others wait for the run folder's path
        raise
    return TrainingSession(project_path, graph, dict(data_settings), config, model, data, run_dir, resume_dir,
                           settings, lock, frozen_ids, pretrained, weights_summary, distributed)


def _reason(error: BaseException) -> str:
    return error.message if isinstance(error, DlstudioError) else _plain(error)


def _agree_to_start(distributed: Distributed, error: BaseException | None) -> None:
    """Every process says whether it could prepare the run; when one could not, all stop: rank 0 with
    SessionError naming the first such rank and its reason, the others with PeerFailed."""
    reports = distributed.gather(None if error is None else _reason(error))
    failed = [(rank, reason) for rank, reason in enumerate(reports) if reason is not None]
    if not failed:
        return
    rank, reason = failed[0]
    if distributed.is_main:
        raise SessionError(f"rank {rank}: {reason}") from error
    raise PeerFailed(f"rank {distributed.rank}: stopped: rank {rank} could not start ({reason})") from error


def _folder_from_rank_0(distributed: Distributed) -> Path:
    """The run folder rank 0 created (or resumes), or PeerFailed when it could not."""
    kind, value = distributed.share(None)
    if kind != "folder":
        raise PeerFailed(f"rank {distributed.rank}: stopped: rank 0 could not prepare the run folder ({value})")
    return Path(value)


def _check_same_processes(recorded: dict[str, Any], run_dir: Path, distributed: Distributed | None) -> None:
    """A run continues under as many processes as it trained with: its epochs are split into that many shares
    (the checkpoint's position and the schedule's steps count batches of one share)."""
    entry = recorded.get("distributed")
    trained = entry.get("world_size") if isinstance(entry, dict) else 1
    if not isinstance(trained, int) or isinstance(trained, bool) or trained < 1:
        raise SessionError(f"cannot resume: run {run_dir.name}: settings.json: distributed.world_size is not a "
                           f"number of processes")
    now = distributed.world_size if distributed is not None else 1
    if trained == now:
        return
    if trained == 1:
        raise SessionError(f"run {run_dir.name} trained in one process; continue it without torchrun")
    raise SessionError(f"run {run_dir.name} trained in {trained} processes; continue it with as many "
                       f"(torchrun --nproc_per_node={trained} -m dlstudio train FILE --resume RUN)")


def start_project_session(project: Project, project_path: Path | str | None = None, **options: Any) -> TrainingSession:
    """:func:`start_session` on a project's graph, settings, starting weights and frozen nodes
    (``project_path`` defaults to its own; ``options`` may override ``weights`` and ``frozen``)."""
    path = project_path if project_path is not None else project.path
    if path is None:
        raise SessionError("save the project first: runs are kept in a folder beside the project file")
    options.setdefault("weights", project.weights)
    options.setdefault("frozen", tuple(project.frozen))
    return start_session(project.graph, dict(project.data), dict(project.training), path, **options)

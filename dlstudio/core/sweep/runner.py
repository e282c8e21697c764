"""Running a sweep: Optuna asks for trials, each trial is a normal training run (torch; no Qt).

Every trial trains the project with the trial's values through
:func:`dlstudio.core.training.session.start_session`, so it gets a run folder in
``NAME.runs/``, is recorded in the project file, and carries ``sweep`` (name, trial
number, values) in its ``settings.json``. After each epoch the validation metric is
reported to Optuna; when the median pruner gives up on the trial, the trainer is asked to
stop cooperatively after that epoch (its checkpoint stays, like any stopped run). A loss
that turns non-finite ends a trial the same way: a diverging setting is the hopeless trial
pruning is for, so it is recorded as pruned (with the reason) rather than as a failure.

Trials run one after another in the calling thread, or in ``parallel`` processes (spawned,
each with its share of the CPU threads) that share the study file. One sweep of a study runs
at a time (a lock beside the study file); trials are taken from Optuna under a second,
short lock, so parallel processes never run more trials than asked for.
"""

from __future__ import annotations

import math
import os
import queue as queue_module
import threading
import time
from collections.abc import Callable
from dataclasses import asdict, dataclass, field, replace
from pathlib import Path
from typing import TYPE_CHECKING, Any

from dlstudio.core.errors import DlstudioError
from dlstudio.core.graph import Graph
from dlstudio.core.project.fileformat import project_to_json
from dlstudio.core.safe_io import FileLock, LockHeld, WriteError
from dlstudio.core.sweep.space import SweepError, apply_values
from dlstudio.core.sweep.study import (
    INTERRUPTED,
    METRICS,
    PRUNED_MESSAGE,
    StudySpec,
    best_rows,
    counts,
    fail_abandoned_trials,
    grid_size,
    open_study,
)
from dlstudio.core.training.callbacks import Callback

if TYPE_CHECKING:
    import optuna

    from dlstudio.core.project.model import Project
    from dlstudio.core.project.pretrained import WeightsSource
    from dlstudio.core.training.control import TrainControl
    from dlstudio.core.training.events import EpochMetrics
    from dlstudio.core.training.trainer import Trainer

# Seconds a parallel process waits for another to take its trial from the study.
ASK_LOCK_TIMEOUT_S = 120


@dataclass(frozen=True)
class SweepSettings:
    """One sweep call: which study, how many trials in all (``trials`` counts those already done),
    epochs per trial (None: the project's, or the swept ``training.epochs``), a time budget in
    seconds for starting new trials, and the number of processes."""

    project_path: Path
    study: StudySpec
    trials: int
    epochs: int | None = None
    timeout: float | None = None
    parallel: int = 1
    device: str | None = None


@dataclass
class TrialEvent:
    """What happened to a trial, as plain data (it crosses threads and processes).

    ``state``: running (first with ``epoch`` 0 once its run folder exists, then after each epoch with
    ``value``, the best metric so far), complete, pruned
    (``pruned_at``: the last epoch it trained), failed (``message`` says why) or stopped.
    """

    number: int
    state: str
    params: dict[str, Any]
    target: int
    value: float | None = None
    epoch: int = 0
    epochs: int = 0
    pruned_at: int | None = None
    run_dir: str | None = None
    message: str = ""


@dataclass
class SweepOutcome:
    """How a sweep call ended: the study's counts, its best trials, whether it was stopped early."""

    counts: dict[str, int]
    best: list[dict[str, Any]]
    target: int
    ran: int
    stopped: bool
    timed_out: bool = False
    study_path: Path = field(default_factory=Path)


@dataclass(frozen=True)
class _Base:
    """What every trial starts from: the project's network and settings (copied per trial)."""

    graph: Graph
    data: dict[str, Any]
    training: dict[str, Any]
    weights: WeightsSource | None
    frozen: tuple[str, ...]

    @classmethod
    def of(cls, project: Project) -> _Base:
        return cls(project.graph.copy(), dict(project.data), dict(project.training), project.weights,
                   tuple(project.frozen))


class SweepControl:
    """Stops a sweep cooperatively from another thread: no new trial starts, the running one's trainer stops
    after its current batch (its run folder keeps a resumable checkpoint; the trial is not counted)."""

    def __init__(self) -> None:
        self._stop = threading.Event()
        self._lock = threading.Lock()
        self._trainer_control: TrainControl | None = None

    def stop(self) -> None:
        self._stop.set()
        with self._lock:
            if self._trainer_control is not None:
                self._trainer_control.stop()

    @property
    def stop_requested(self) -> bool:
        return self._stop.is_set()

    def attach(self, control: TrainControl | None) -> None:
        with self._lock:
            self._trainer_control = control
            if control is not None and self._stop.is_set():
                control.stop()


def run_sweep(settings: SweepSettings, project: Project | None = None,
              on_event: Callable[[TrialEvent], None] | None = None,
              control: SweepControl | None = None) -> SweepOutcome:
    """Run trials until the study holds ``settings.trials`` finished ones, the time budget is spent, or a stop.

    ``project`` is what trials start from (default: the project file, read now), in this process
    and in parallel ones alike (they are sent it, so a window's unsaved edits reach them too). ``on_event`` sees every :class:`TrialEvent` on the calling
    thread. Raises SweepError (one line) when the sweep cannot start, e.g. another sweep of
    the same study is running.
    """
    control = control or SweepControl()
    emit = on_event or (lambda event: None)
    settings = replace(settings, study=replace(settings.study, trials=settings.trials))
    if settings.trials < 1:
        raise SweepError("the number of trials must be at least 1")
    if settings.parallel < 1:
        raise SweepError("the number of parallel processes must be at least 1")
    if project is None:
        from dlstudio.core.project import load_project

        project = load_project(settings.project_path)
    _check_project(project)
    lock = FileLock(settings.study.path.with_name(settings.study.path.name + ".lock"))
    try:
        lock.acquire()
    except LockHeld as error:
        who = f"process {error.pid}" if error.pid is not None else "another process"
        raise SweepError(f"the sweep {settings.study.name!r} of {settings.project_path.name} is running in {who}; "
                         f"stop it first") from None
    except WriteError as error:
        raise SweepError(f"cannot start the sweep: {error.reason}") from None
    try:
        study = open_study(settings.study)
        fail_abandoned_trials(study)  # a killed sweep's trials; none run now: we hold the lock
        target = settings.trials
        if settings.study.sampler == "grid":
            target = min(target, grid_size(settings.study.params))
        before = counts(study)["done"]
        started = time.monotonic()
        if settings.parallel == 1:
            ran, timed_out = _run_trials(settings, _Base.of(project), target, started, 0, emit, control)
        else:
            ran, timed_out = _run_parallel(settings, project_to_json(project), target, started, emit, control)
        study = open_study(settings.study)
        tally = counts(study)
        return SweepOutcome(tally, best_rows(study, settings.study.metric), target, tally["done"] - before,
                            control.stop_requested, timed_out, settings.study.path)
    finally:
        lock.release()


def _check_project(project: Project) -> None:
    from dlstudio.core.project.settings import default_data_settings

    val_fraction = project.data.get("val_fraction", default_data_settings()["val_fraction"])
    if not val_fraction:
        raise SweepError("a sweep judges trials on the validation split: set data.val_fraction above 0")


def _sampler_seed(base_seed: int, done: int, worker: int) -> int:
    """A different seed for each process and each continuation (a sampler's own state is not stored)."""
    import numpy as np

    return int(np.random.SeedSequence([base_seed, done, worker]).generate_state(1)[0])


def _run_trials(settings: SweepSettings, base: _Base, target: int, started: float, worker: int,
                emit: Callable[[TrialEvent], None], control: SweepControl) -> tuple[int, bool]:
    """Take trials from the study and run them until it holds ``target`` done ones; (trials run, timed out)."""
    spec = settings.study
    ask_lock = FileLock(spec.path.with_name(spec.path.name + ".ask.lock"))
    seed = int(base.training.get("seed", 0) or 0)
    study = open_study(spec, seed=_sampler_seed(seed, counts(open_study(spec))["done"], worker), create=False)
    ran = 0
    while not control.stop_requested:
        if settings.timeout is not None and time.monotonic() - started >= settings.timeout:
            return ran, True
        try:
            ask_lock.acquire(timeout=ASK_LOCK_TIMEOUT_S)
        except (LockHeld, WriteError) as error:
            raise SweepError(f"cannot take a trial from {spec.path.name}: {error}") from None
        try:
            tally = counts(study)
            if tally["done"] + tally["running"] >= target:
                return ran, False
            trial = study.ask()
        finally:
            ask_lock.release()
        _run_trial(study, trial, base, settings, target, emit, control)
        ran += 1
    return ran, False


class _ReportToOptuna(Callback):
    """Reports each epoch's metric to the trial, and stops the trainer when the pruner gives up on it."""

    def __init__(self, trial: optuna.Trial, metric: str, event: TrialEvent, emit: Callable[[TrialEvent], None],
                 last_epoch: int) -> None:
        self.trial = trial
        self.metric = metric
        self.event = event
        self.emit = emit
        self.last_epoch = last_epoch
        self.pruned_at: int | None = None
        self.values: list[float] = []

    def on_epoch_end(self, trainer: Trainer, metrics: EpochMetrics) -> None:
        value = getattr(metrics, self.metric)
        if value is None or not math.isfinite(value):
            return  # a diverged epoch: the trainer fails it on its own (non-finite loss)
        self.values.append(float(value))
        self.trial.report(float(value), metrics.epoch)
        self.event.epoch, self.event.value = metrics.epoch, self.best()
        self.emit(TrialEvent(**asdict(self.event)))
        if metrics.epoch < self.last_epoch and self.trial.should_prune():
            self.pruned_at = metrics.epoch
            trainer.control.stop()  # after this epoch: the trainer returns "stopped" with its checkpoint

    def best(self) -> float | None:
        if not self.values:
            return None
        return max(self.values) if METRICS[self.metric] == "maximize" else min(self.values)


def _run_trial(study: optuna.Study, trial: optuna.Trial, base: _Base, settings: SweepSettings, target: int,
               emit: Callable[[TrialEvent], None], control: SweepControl) -> None:
    """Train one trial as a normal run and tell the study how it ended."""
    from optuna.trial import TrialState

    from dlstudio.core.training.runs import write_run_files
    from dlstudio.core.training.session import start_session

    spec = settings.study
    values = {param.target: param.suggest(trial) for param in spec.params}
    event = TrialEvent(trial.number, "running", dict(values), target)

    def finish(state: TrialState, value: float | None = None, message: str = "", **attrs: Any) -> None:
        for key, attr in {**attrs, "message": message}.items():
            trial.set_user_attr(key, attr)
        study.tell(trial, value if state == TrialState.COMPLETE else None, state=state)
        shown = {TrialState.COMPLETE: "complete", TrialState.PRUNED: "pruned"}.get(
            state, "stopped" if attrs.get(INTERRUPTED) else "failed")
        event.state, event.message = shown, message
        if value is not None:
            event.value = value
        event.pruned_at = attrs.get("pruned_at")
        emit(TrialEvent(**asdict(event)))

    training = dict(base.training)
    if settings.epochs is not None:
        training["epochs"] = settings.epochs  # before the trial's values: a swept training.epochs wins
    try:
        graph, training = apply_values(list(spec.params), values, base.graph, training)
        session = start_session(graph, dict(base.data), training, settings.project_path, device=settings.device,
                                weights=base.weights, frozen=base.frozen)
    except DlstudioError as error:  # the trial's values make the network or settings invalid: a failed trial
        finish(TrialState.FAIL, message=error.message)
        return
    try:
        session.settings["sweep"] = {"name": spec.name, "study": spec.path.name, "trial": trial.number,
                                     "params": dict(values)}
        write_run_files(session.run_dir, session.settings, session.data.class_names)
        session.record_in_file()
        trial.set_user_attr("run_dir", session.run_dir.name)
        event.run_dir, event.epochs = str(session.run_dir), session.config.epochs
        emit(TrialEvent(**asdict(event)))  # started: its run folder exists and the project file lists it
        reporter = _ReportToOptuna(trial, spec.metric, event, emit, session.config.epochs)
        trainer = session.trainer([reporter])
    except BaseException as error:
        session.close()
        if isinstance(error, DlstudioError):
            finish(TrialState.FAIL, message=error.message)
            raise SweepError(f"trial {trial.number}: {error.message}") from None
        finish(TrialState.FAIL, message="the trial could not start", **{INTERRUPTED: True})
        raise
    control.attach(trainer.control)
    try:
        result = trainer.fit()
    finally:
        control.attach(None)
    if reporter.pruned_at is not None:  # the run's result.json says why it stopped (its status stays "stopped")
        result.message = PRUNED_MESSAGE.format(sweep=spec.name, epoch=reporter.pruned_at)
    session.finish(result)
    epochs = result.epochs_completed
    if reporter.pruned_at is not None:
        finish(TrialState.PRUNED, reporter.best(), f"pruned after epoch {reporter.pruned_at}",
               pruned_at=reporter.pruned_at, epochs=epochs)
    elif result.status in ("completed", "early_stopped"):
        best = reporter.best()
        if best is None:
            finish(TrialState.FAIL, message=f"no {spec.metric} was measured", epochs=epochs)
        else:
            finish(TrialState.COMPLETE, best, epochs=epochs)
    elif result.status == "failed" and trainer.write_failure is None:
        # A non-finite loss: the trial's values diverge. Hopeless, so pruned at the epoch it diverged in.
        finish(TrialState.PRUNED, reporter.best(), " ".join(result.message.split()),
               pruned_at=epochs + 1, epochs=epochs)
    elif result.status == "failed":
        finish(TrialState.FAIL, message=result.message, epochs=epochs, **{INTERRUPTED: True})
        raise SweepError(f"trial {trial.number}: {' '.join(result.message.split())}")
    else:  # stopped by the person: not counted, a continued sweep runs another trial in its place
        finish(TrialState.FAIL, message="stopped", epochs=epochs, **{INTERRUPTED: True})


# -- parallel processes --------------------------------------------------------------------------------------------


def _run_parallel(settings: SweepSettings, project_json: str, target: int, started: float,
                  emit: Callable[[TrialEvent], None], control: SweepControl) -> tuple[int, bool]:
    """Run ``settings.parallel`` spawned processes on the study, each starting its trials from ``project_json``
    (the project as its file would hold it); forward their events; (trials run, timed out)."""
    import multiprocessing

    context = multiprocessing.get_context("spawn")  # no fork of a process that holds torch's threads
    events = context.Queue()
    stop = context.Event()
    remaining = None if settings.timeout is None else max(0.0, settings.timeout - (time.monotonic() - started))
    processes = [context.Process(target=_worker_main,
                                 args=(settings, project_json, remaining, target, worker, events, stop),
                                 name=f"dlstudio-sweep-{worker}") for worker in range(settings.parallel)]
    for process in processes:
        process.start()
    ran, timed_out, errors = 0, False, []
    try:
        while any(process.is_alive() for process in processes) or not events.empty():
            if control.stop_requested:
                stop.set()
            try:
                kind, payload = events.get(timeout=0.2)
            except queue_module.Empty:
                continue
            except KeyboardInterrupt:
                control.stop()
                continue
            if kind == "event":
                emit(TrialEvent(**payload))
            elif kind == "done":
                ran += payload["ran"]
                timed_out = timed_out or payload["timed_out"]
            elif kind == "error":
                errors.append(payload["message"])
                stop.set()  # one process refused: the others stop after their batch
    except KeyboardInterrupt:
        control.stop()
        stop.set()
    finally:
        for process in processes:
            process.join()
    if errors:
        raise SweepError(errors[0])
    return ran, timed_out


def _worker_main(settings: SweepSettings, project_json: str, timeout: float | None, target: int, worker: int,
                 events: Any, stop: Any) -> None:
    """A spawned process: its share of the CPU threads, trials from the shared study, events to the parent."""
    import signal

    import torch

    from dlstudio.core.project.fileformat import project_from_json

    signal.signal(signal.SIGINT, signal.SIG_IGN)  # the parent turns Ctrl+C into ``stop``: a clean stop per trial
    torch.set_num_threads(max(1, (os.cpu_count() or 1) // settings.parallel))
    control = SweepControl()
    watcher = threading.Thread(target=lambda: (stop.wait(), control.stop()), daemon=True)
    watcher.start()
    try:
        project = project_from_json(project_json, str(settings.project_path))
        # The budget left when the parent started this process counts from now.
        ran, timed_out = _run_trials(replace(settings, timeout=timeout), _Base.of(project), target, time.monotonic(),
                                     worker, lambda event: events.put(("event", asdict(event))), control)
        events.put(("done", {"ran": ran, "timed_out": timed_out}))
    except DlstudioError as error:
        events.put(("error", {"message": error.message}))
    except Exception as error:  # noqa: BLE001 - reported to the parent as one line, never a traceback
        events.put(("error", {"message": " ".join(str(error).split()) or "a sweep process failed"}))


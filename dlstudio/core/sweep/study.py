"""The Optuna study a sweep is kept in: an SQLite file beside the project (no torch, no Qt).

``NAME.sweep.db`` beside ``NAME.dlstudio`` holds one study per sweep name. The study remembers
what it varies (the parameters as written), the sampler and the metric, so a sweep continued
later searches the same space; continuing with other parameters is refused rather than mixed.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

from dlstudio.core.sweep.space import SweepError, SweepParam

if TYPE_CHECKING:
    import optuna

SUFFIX = ".sweep.db"
SAMPLERS = ("tpe", "random", "grid")
# The metric a trial is judged by: the validation accuracy (higher is better) or loss (lower is better).
METRICS = {"val_accuracy": "maximize", "val_loss": "minimize"}

PRUNED_MESSAGE = "pruned by the sweep {sweep!r} after epoch {epoch} (median pruner)"
"""A pruned trial's run message (its run's status stays "stopped": it can be continued like any stopped run)."""


def pruned_by_sweep(status: str, message: str) -> bool:
    """Whether a run with this status and message is a sweep trial the pruner stopped."""
    return status == "stopped" and message.startswith(PRUNED_MESSAGE.partition("{")[0])
# Trials the median pruner lets finish before it compares (a quarter of the sweep, within these bounds; Optuna's
# default is 5, too many for a sweep of 6), and epochs it waits in each trial.
PRUNER_STARTUP_TRIALS = (2, 5)
PRUNER_WARMUP_EPOCHS = 0
# Seconds a process waits for the SQLite file another trial's process is writing.
SQLITE_TIMEOUT_S = 60
# A user attribute marking a trial that was stopped by the person (not counted: a continued sweep runs it again).
INTERRUPTED = "interrupted"


def study_path(project_path: Path | str) -> Path:
    """``NAME.sweep.db`` beside the project file ``NAME.dlstudio``."""
    project_path = Path(project_path)
    return project_path.with_name(project_path.stem + SUFFIX)


@dataclass(frozen=True)
class StudySpec:
    """Which study, and how it searches: what continuing a sweep must agree with."""

    path: Path
    name: str
    params: tuple[SweepParam, ...]
    sampler: str = "tpe"
    metric: str = "val_accuracy"
    pruning: bool = True
    trials: int = 0  # the sweep's target (the median pruner waits for a quarter of it); 0: unknown

    @property
    def startup_trials(self) -> int:
        """Finished trials the median pruner waits for before it compares."""
        low, high = PRUNER_STARTUP_TRIALS
        return min(high, max(low, self.trials // 4))

    def definition(self) -> dict[str, Any]:
        """What the study file records of the sweep (compared when a sweep is continued)."""
        return {"params": [param.text for param in self.params], "sampler": self.sampler, "metric": self.metric}


def _quiet_optuna() -> Any:
    import optuna

    # Optuna logs every trial at INFO; the sweep prints its own lines.
    optuna.logging.set_verbosity(optuna.logging.WARNING)
    return optuna


def storage(path: Path) -> optuna.storages.RDBStorage:
    """The study file's storage; several processes may share it (SQLite waits for the one writing)."""
    optuna = _quiet_optuna()
    return optuna.storages.RDBStorage(f"sqlite:///{path}", engine_kwargs={"connect_args": {"timeout": SQLITE_TIMEOUT_S}})


def grid_size(params: tuple[SweepParam, ...]) -> int:
    size = 1
    for param in params:
        size *= len(param.grid_values())
    return size


def make_sampler(spec: StudySpec, seed: int | None) -> optuna.samplers.BaseSampler:
    optuna = _quiet_optuna()
    if spec.sampler == "grid":
        class AskAndTellGrid(optuna.samplers.GridSampler):
            """Optuna's grid, without its stop at the last point: ``Study.stop`` only works inside
            ``optimize``, and the sweep, which asks and tells, counts its trials itself (at most the grid)."""

            def after_trial(self, study: Any, trial: Any, state: Any, values: Any) -> None:
                pass

        return AskAndTellGrid({param.target: param.grid_values() for param in spec.params}, seed=seed)
    if spec.sampler == "random":
        return optuna.samplers.RandomSampler(seed=seed)
    if spec.sampler == "tpe":
        return optuna.samplers.TPESampler(seed=seed)
    raise SweepError(f"unknown sampler {spec.sampler!r} (samplers: {', '.join(SAMPLERS)})")


def make_pruner(spec: StudySpec) -> optuna.pruners.BasePruner:
    optuna = _quiet_optuna()
    if not spec.pruning:
        return optuna.pruners.NopPruner()
    return optuna.pruners.MedianPruner(n_startup_trials=spec.startup_trials, n_warmup_steps=PRUNER_WARMUP_EPOCHS)


def open_study(spec: StudySpec, *, seed: int | None = None, create: bool = True) -> optuna.Study:
    """The sweep's study, created when new (``create``); SweepError if the file's study searches another space."""
    if spec.metric not in METRICS:
        raise SweepError(f"unknown metric {spec.metric!r} (metrics: {', '.join(METRICS)})")
    optuna = _quiet_optuna()
    try:
        study = optuna.create_study(storage=storage(spec.path), study_name=spec.name, direction=METRICS[spec.metric],
                                    sampler=make_sampler(spec, seed), pruner=make_pruner(spec),
                                    load_if_exists=create) if create else optuna.load_study(
            study_name=spec.name, storage=storage(spec.path), sampler=make_sampler(spec, seed),
            pruner=make_pruner(spec))
    except KeyError:
        raise SweepError(f"{spec.path.name} has no sweep named {spec.name!r}") from None
    except Exception as error:  # noqa: BLE001 - SQLAlchemy and Optuna raise many kinds for a damaged file
        raise SweepError(f"{spec.path}: cannot be read as a sweep study ({' '.join(str(error).split())[:200]})"
                         ) from None
    recorded = study.user_attrs.get("definition")
    if recorded is None:
        study.set_user_attr("definition", spec.definition())
    elif recorded != spec.definition():
        raise SweepError(f"the sweep {spec.name!r} in {spec.path.name} varies {' '.join(recorded['params'])} with "
                         f"the {recorded['sampler']} sampler and {recorded['metric']}; continue it with the same "
                         f"parameters, or give the new sweep another name")
    return study


def counts(study: optuna.Study) -> dict[str, int]:
    """Trials by state: complete, pruned, failed, running, and ``done`` (what counts towards the target).

    A trial the person stopped is not done (continuing the sweep runs another in its place);
    a trial that failed on its own values (a network its numbers make invalid) is.
    """
    from optuna.trial import TrialState

    tally = {"complete": 0, "pruned": 0, "failed": 0, "running": 0, "interrupted": 0}
    for trial in study.get_trials(deepcopy=False):
        if trial.state == TrialState.COMPLETE:
            tally["complete"] += 1
        elif trial.state == TrialState.PRUNED:
            tally["pruned"] += 1
        elif trial.state == TrialState.FAIL:
            tally["interrupted" if trial.user_attrs.get(INTERRUPTED) else "failed"] += 1
        elif trial.state == TrialState.RUNNING:  # (a WAITING trial, enqueued, has not started: it is not counted)
            tally["running"] += 1
    tally["done"] = tally["complete"] + tally["pruned"] + tally["failed"]
    return tally


def fail_abandoned_trials(study: optuna.Study) -> int:
    """Mark trials left RUNNING by a sweep that was killed as interrupted; returns how many.

    Only call it while holding the sweep's lock: then no process is running a trial of this study.
    """
    from optuna.trial import TrialState

    abandoned = [trial for trial in study.get_trials(deepcopy=False) if trial.state == TrialState.RUNNING]
    for trial in abandoned:
        study._storage.set_trial_user_attr(trial._trial_id, INTERRUPTED, True)  # noqa: SLF001 - no public way by number
        study.tell(trial.number, state=TrialState.FAIL, skip_if_finished=True)
    return len(abandoned)


def trial_rows(study: optuna.Study) -> list[dict[str, Any]]:
    """Every trial as plain data: number, state, value, params, epochs, pruned_at, run_dir, message."""
    rows = []
    for trial in study.get_trials(deepcopy=False):
        attrs = trial.user_attrs
        state = trial.state.name.lower()
        if state == "fail":
            state = "stopped" if attrs.get(INTERRUPTED) else "failed"
        rows.append({"number": trial.number, "state": state, "value": trial.value, "params": dict(trial.params),
                     "epochs": attrs.get("epochs"), "pruned_at": attrs.get("pruned_at"),
                     "run_dir": attrs.get("run_dir"), "message": attrs.get("message", "")})
    return rows


def best_rows(study: optuna.Study, metric: str, count: int = 5) -> list[dict[str, Any]]:
    """The ``count`` best finished trials (complete first, by their value), best first."""
    finished = [row for row in trial_rows(study) if row["state"] == "complete" and row["value"] is not None]
    finished.sort(key=lambda row: row["value"], reverse=METRICS.get(metric) == "maximize")
    return finished[:count]

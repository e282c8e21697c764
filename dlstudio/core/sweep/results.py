"""What a sweep's plots show, as plain data (no Qt, no torch): how much each parameter mattered, and the
objective of every trial against each parameter.

The importances are Optuna's (:func:`optuna.importance.get_param_importances`, fANOVA over the
complete trials). The scatter has a point per complete trial (its value) and per pruned trial
(its last reported value, the epoch it was stopped at); a log-ranged parameter is drawn on a log
axis, a choice at the positions of its values (0, 1, 2... with the values as tick labels).
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from dlstudio.core.sweep.space import SweepParam

if TYPE_CHECKING:
    import optuna

# Optuna's importance needs this many complete trials to fit anything.
MIN_TRIALS_FOR_IMPORTANCE = 2


@dataclass
class ParamPoints:
    """The scatter of one parameter: x (the value; a choice's index), y (the objective), pruned or not."""

    target: str
    log: bool
    xs: list[float] = field(default_factory=list)
    ys: list[float] = field(default_factory=list)
    pruned: list[bool] = field(default_factory=list)
    trials: list[int] = field(default_factory=list)  # each point's trial number
    ticks: list[tuple[float, str]] = field(default_factory=list)  # a choice's positions and values

    def points(self, pruned: bool) -> tuple[list[float], list[float]]:
        """(xs, ys) of the complete points (``pruned`` False) or of the pruned ones."""
        chosen = [i for i, flag in enumerate(self.pruned) if flag is pruned]
        return [self.xs[i] for i in chosen], [self.ys[i] for i in chosen]


@dataclass
class SweepResults:
    """The plots' data: ``importances`` as (parameter, share) from the most important down (empty, with
    ``importance_note`` saying why, when they cannot be computed yet), and a scatter per parameter."""

    metric: str
    importances: list[tuple[str, float]]
    importance_note: str
    scatter: dict[str, ParamPoints]


def sweep_results(study: optuna.Study, params: tuple[SweepParam, ...], metric: str) -> SweepResults:
    """The importances and scatters of ``study``, whose trials vary ``params``."""
    importances, note = param_importances(study)
    return SweepResults(metric, importances, note, {param.target: param_points(study, param) for param in params})


def param_importances(study: optuna.Study) -> tuple[list[tuple[str, float]], str]:
    """Optuna's parameter importances, largest first, and an empty note; or nothing and why."""
    import optuna
    from optuna.trial import TrialState

    complete = [trial for trial in study.get_trials(deepcopy=False, states=(TrialState.COMPLETE,))
                if trial.value is not None and math.isfinite(trial.value)]
    if len(complete) < MIN_TRIALS_FOR_IMPORTANCE:
        return [], (f"importance needs {MIN_TRIALS_FOR_IMPORTANCE} complete trials "
                    f"({len(complete)} so far)")
    try:
        importances = optuna.importance.get_param_importances(study)
    except (RuntimeError, ValueError) as error:  # e.g. no parameter took more than one value
        return [], f"importance cannot be computed yet ({' '.join(str(error).split())[:160]})"
    ranked = sorted(importances.items(), key=lambda item: item[1], reverse=True)
    return [(name, float(share)) for name, share in ranked], ""


def param_points(study: optuna.Study, param: SweepParam) -> ParamPoints:
    """The objective of each complete and pruned trial against ``param``'s value."""
    from optuna.trial import TrialState

    points = ParamPoints(param.target, log=param.kind == "log")
    positions: dict[Any, int] = {}
    if param.kind == "choice":
        positions = {value: index for index, value in enumerate(param.choices)}
        points.ticks = [(float(index), _label(value)) for value, index in positions.items()]
    for trial in study.get_trials(deepcopy=False, states=(TrialState.COMPLETE, TrialState.PRUNED)):
        if param.target not in trial.params:
            continue
        pruned = trial.state == TrialState.PRUNED
        objective = _last_reported(trial) if pruned else trial.value
        if objective is None or not math.isfinite(objective):
            continue
        value = trial.params[param.target]
        if param.kind == "choice":
            if value not in positions:  # a value the study's choices no longer list: appended
                positions[value] = len(positions)
                points.ticks.append((float(positions[value]), _label(value)))
            x = float(positions[value])
        else:
            x = float(value)
            if points.log and x <= 0:
                continue
        points.xs.append(x)
        points.ys.append(float(objective))
        points.pruned.append(pruned)
        points.trials.append(trial.number)
    return points


def _last_reported(trial: optuna.trial.FrozenTrial) -> float | None:
    """A pruned trial's value at the epoch it was stopped (its last intermediate value)."""
    reported = trial.intermediate_values
    return float(reported[max(reported)]) if reported else None


def _label(value: Any) -> str:
    return f"{value:.4g}" if isinstance(value, float) else str(value)

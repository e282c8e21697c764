"""A sweep's plot data: Optuna's parameter importances and the objective-vs-parameter scatters, from a study
made here trial by trial (no training)."""

from __future__ import annotations

import optuna
import pytest
from optuna.distributions import CategoricalDistribution, FloatDistribution, IntDistribution
from optuna.trial import TrialState, create_trial

from dlstudio.core.project.templates import load_template
from dlstudio.core.sweep.results import param_importances, sweep_results
from dlstudio.core.sweep.space import parse_params

TEXTS = ["training.learning_rate=log:1e-4:1e-1", "training.batch_size=choice:32,64,128", "conv1.out_channels=int:4:32"]
DISTRIBUTIONS = {"training.learning_rate": FloatDistribution(1e-4, 1e-1, log=True),
                 "training.batch_size": CategoricalDistribution([32, 64, 128]),
                 "conv1.out_channels": IntDistribution(4, 32)}


def study_of(trials: list[tuple[float, int, int, float, bool]]) -> optuna.Study:
    """(learning rate, batch size, channels, accuracy, pruned) per trial; a pruned one reported its
    accuracy at epoch 1 and has no value."""
    optuna.logging.set_verbosity(optuna.logging.WARNING)
    study = optuna.create_study(direction="maximize")
    for rate, batch, channels, accuracy, pruned in trials:
        params = {"training.learning_rate": rate, "training.batch_size": batch, "conv1.out_channels": channels}
        if pruned:
            study.add_trial(create_trial(state=TrialState.PRUNED, params=params, distributions=DISTRIBUTIONS,
                                         intermediate_values={0: accuracy / 2, 1: accuracy}))
        else:
            study.add_trial(create_trial(value=accuracy, params=params, distributions=DISTRIBUTIONS,
                                         intermediate_values={0: accuracy / 2, 1: accuracy}))
    return study


def params():
    return tuple(parse_params(TEXTS, load_template("lenet5").graph))


def test_the_learning_rate_decides_the_accuracy_so_it_is_the_most_important() -> None:
    trials = [(10 ** (-4 + 3 * i / 11), [32, 64, 128][i % 3], 4 + (7 * i) % 29, 0.1 + 0.07 * i, False)
              for i in range(12)]
    results = sweep_results(study_of(trials), params(), "val_accuracy")
    names = [name for name, _ in results.importances]
    assert names[0] == "training.learning_rate" and set(names) == set(DISTRIBUTIONS)
    shares = [share for _, share in results.importances]
    assert shares == sorted(shares, reverse=True) and sum(shares) == pytest.approx(1.0, abs=1e-6)
    assert results.importance_note == ""


def test_the_scatter_has_a_point_per_trial_pruned_ones_apart_with_a_log_axis_and_choice_ticks() -> None:
    trials = [(1e-3, 64, 8, 0.8, False), (1e-2, 128, 16, 0.9, False), (1e-4, 32, 4, 0.3, True)]
    results = sweep_results(study_of(trials), params(), "val_accuracy")
    rate = results.scatter["training.learning_rate"]
    assert rate.log and rate.xs == [1e-3, 1e-2, 1e-4] and rate.ys == [0.8, 0.9, 0.3]
    assert rate.points(pruned=False) == ([1e-3, 1e-2], [0.8, 0.9])
    assert rate.points(pruned=True) == ([1e-4], [0.3])  # at the epoch it was stopped
    batch = results.scatter["training.batch_size"]
    assert not batch.log and batch.ticks == [(0.0, "32"), (1.0, "64"), (2.0, "128")]
    assert batch.xs == [1.0, 2.0, 0.0]
    channels = results.scatter["conv1.out_channels"]
    assert not channels.log and not channels.ticks and channels.xs == [8.0, 16.0, 4.0]
    assert channels.trials == [0, 1, 2]


def test_importance_waits_for_two_complete_trials() -> None:
    importances, note = param_importances(study_of([(1e-3, 64, 8, 0.8, False), (1e-4, 32, 4, 0.3, True)]))
    assert importances == [] and note == "importance needs 2 complete trials (1 so far)"
    importances, _ = param_importances(study_of([(1e-3, 64, 8, 0.8, False), (1e-2, 32, 4, 0.5, False)]))
    assert len(importances) == 3

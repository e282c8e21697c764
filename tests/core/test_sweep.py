"""The sweep core: parameter ranges, the study file, the median pruner, a cooperative stop, parallel processes."""

from __future__ import annotations

import json
import threading
from pathlib import Path

import pytest

from dlstudio.core.project import load_project, save_project
from dlstudio.core.project.templates import load_template
from dlstudio.core.safe_io import FileLock
from dlstudio.core.sweep.runner import SweepControl, SweepSettings, TrialEvent, run_sweep
from dlstudio.core.sweep.space import SweepError, apply_values, parse_param, parse_params
from dlstudio.core.sweep.study import StudySpec, counts, open_study, study_path, trial_rows


def test_ranges_parse_against_settings_and_named_nodes() -> None:
    graph = load_template("lenet5").graph
    rate = parse_param("training.learning_rate=log:1e-4:1e-1", graph)
    assert (rate.kind, rate.low, rate.high, rate.node_id) == ("log", 1e-4, 1e-1, None)
    assert rate.grid_values()[0] == 1e-4 and rate.grid_values()[-1] == 1e-1 and len(rate.grid_values()) == 5
    channels = parse_param("conv1.out_channels=int:4:32", graph)
    conv1 = graph.node_named("conv1")
    assert conv1 is not None and channels.node_id == conv1.id and channels.setting == "out_channels"
    assert channels.grid_values() == [4, 11, 18, 25, 32]
    assert parse_param("conv1.out_channels=log:4:64", graph).grid_values() == [4, 8, 16, 32, 64]
    assert parse_param("training.batch_size=choice:32,64,128", graph).choices == (32, 64, 128)
    assert parse_param("training.optimizer=choice:adam,sgd", graph).text == "training.optimizer=choice:adam,sgd"
    assert parse_param("training.weight_decay=float:0:0.5", graph).grid_values() == [0.0, 0.125, 0.25, 0.375, 0.5]
    with pytest.raises(SweepError, match="^training.learning_rate is given twice$"):
        parse_params(["training.learning_rate=log:1e-4:1e-1", "training.learning_rate=float:0.1:0.2"], graph)
    with pytest.raises(SweepError, match="^training.optimizer cannot take a log range"):
        parse_param("training.optimizer=log:1:2", graph)
    with pytest.raises(SweepError, match="^training.seed: no training setting 'seed' to sweep"):
        parse_param("training.seed=int:0:9", graph)


def test_a_trials_values_go_into_copies_of_the_graph_and_settings() -> None:
    project = load_template("lenet5")
    params = parse_params(["conv1.out_channels=int:4:32", "training.learning_rate=log:1e-4:1e-1"], project.graph)
    graph, training = apply_values(params, {"conv1.out_channels": 9, "training.learning_rate": 0.01},
                                   project.graph, project.training)
    conv1 = graph.node_named("conv1")
    assert conv1 is not None and conv1.params["out_channels"] == 9 and training["learning_rate"] == 0.01
    original = project.graph.node_named("conv1")
    assert original is not None and original.params["out_channels"] == 6 and project.training["learning_rate"] == 1e-3


def digits_project(tmp_path: Path, epochs: int = 3) -> Path:
    project = load_template("mlp")
    image = project.graph.node_named("image")
    assert image is not None
    project.graph.set_param(image.id, "shape", [1, 8, 8])
    project.training.update(device="cpu", batch_size=128, epochs=epochs, optimizer="sgd")
    path = tmp_path / "digits.dlstudio"
    save_project(project, path)
    return path


def settings_for(path: Path, *params: str, trials: int, **options: object) -> SweepSettings:
    graph = load_project(path).graph
    spec = StudySpec(study_path(path), "sweep", tuple(parse_params(params, graph)))
    return SweepSettings(path, spec, trials, **options)  # type: ignore[arg-type]


def test_the_median_pruner_stops_a_hopeless_trial_after_its_first_epoch(tmp_path: Path) -> None:
    path = digits_project(tmp_path, epochs=2)
    settings = settings_for(path, "training.learning_rate=log:1e-6:1", trials=3)
    study = open_study(settings.study)
    for rate in (0.3, 0.3, 1e-6):  # two good trials the pruner compares with, then one that cannot learn in time
        study.enqueue_trial({"training.learning_rate": rate})
    events: list[TrialEvent] = []
    outcome = run_sweep(settings, on_event=events.append)
    assert outcome.counts["complete"] == 2 and outcome.counts["pruned"] == 1
    rows = trial_rows(open_study(settings.study))
    assert [row["state"] for row in rows] == ["complete", "complete", "pruned"]
    assert rows[2]["pruned_at"] == 1 and rows[2]["message"] == "pruned after epoch 1"
    assert rows[2]["value"] < rows[0]["value"]
    pruned_run = tmp_path / "digits.runs" / rows[2]["run_dir"]
    assert len((pruned_run / "metrics.csv").read_text().splitlines()) == 2  # the header and the one epoch it trained
    result = json.loads((pruned_run / "result.json").read_text())
    assert result["status"] == "stopped" and result["epochs"] == 1
    assert result["message"] == "pruned by the sweep 'sweep' after epoch 1 (median pruner)"
    assert [event.state for event in events if event.number == 2] == ["running", "running", "pruned"]


def test_a_stop_ends_the_running_trial_which_a_continued_sweep_runs_again(tmp_path: Path) -> None:
    path = digits_project(tmp_path)
    settings = settings_for(path, "training.learning_rate=log:1e-2:1e-1", trials=2)
    control = SweepControl()

    def stop_after_the_first_epoch(event: TrialEvent) -> None:
        if event.state == "running" and event.epoch == 1:
            control.stop()

    outcome = run_sweep(settings, on_event=stop_after_the_first_epoch, control=control)
    assert outcome.stopped and outcome.ran == 0
    assert outcome.counts["done"] == 0 and outcome.counts["interrupted"] == 1
    [stopped] = list((tmp_path / "digits.runs").iterdir())
    assert json.loads((stopped / "result.json").read_text())["status"] == "stopped"

    outcome = run_sweep(settings_for(path, "training.learning_rate=log:1e-2:1e-1", trials=2, epochs=1))
    assert not outcome.stopped and outcome.counts["done"] == 2 and outcome.counts["complete"] == 2
    assert len(list((tmp_path / "digits.runs").iterdir())) == 3  # the stopped run stays, as any stopped run


def test_one_sweep_of_a_study_at_a_time(tmp_path: Path) -> None:
    path = digits_project(tmp_path)
    settings = settings_for(path, "training.learning_rate=log:1e-2:1e-1", trials=1)
    lock = FileLock(study_path(path).with_name("digits.sweep.db.lock")).acquire()
    try:
        with pytest.raises(SweepError, match="^the sweep 'sweep' of digits.dlstudio is running in process "):
            run_sweep(settings)
    finally:
        lock.release()


def test_a_trial_left_running_by_a_killed_sweep_is_not_counted(tmp_path: Path) -> None:
    path = digits_project(tmp_path, epochs=1)
    settings = settings_for(path, "training.learning_rate=log:1e-2:1e-1", trials=1)
    open_study(settings.study).ask()  # as if the process running it had been killed
    outcome = run_sweep(settings)
    assert outcome.counts == {**outcome.counts, "complete": 1, "interrupted": 1, "running": 0, "done": 1}


def test_parallel_processes_share_the_study_and_run_exactly_the_trials_asked_for(tmp_path: Path) -> None:
    path = digits_project(tmp_path, epochs=1)
    settings = settings_for(path, "training.learning_rate=log:1e-2:1e-1", trials=3, parallel=2)
    events: list[TrialEvent] = []
    outcome = run_sweep(settings, on_event=events.append)
    assert threading.current_thread() is threading.main_thread()
    assert outcome.counts["done"] == 3 and outcome.ran == 3
    assert sorted(row["number"] for row in trial_rows(open_study(settings.study))) == [0, 1, 2]
    assert len(list((tmp_path / "digits.runs").iterdir())) == 3 and len(load_project(path).runs) == 3
    assert sorted(event.number for event in events if event.state == "complete") == [0, 1, 2]
    assert counts(open_study(settings.study))["running"] == 0


def test_parallel_processes_start_from_the_project_given_not_the_file(tmp_path: Path) -> None:
    """The window sweeps what is on screen: its unsaved edits reach the trials of parallel processes too."""
    path = digits_project(tmp_path, epochs=1)
    edited = load_project(path)
    edited.graph.set_param("linear1", "out_features", 7)  # not saved
    settings = settings_for(path, "training.learning_rate=log:1e-2:1e-1", trials=2, parallel=2)
    assert run_sweep(settings, project=edited).ran == 2
    for run in (tmp_path / "digits.runs").iterdir():
        graph = json.loads((run / "settings.json").read_text())["graph"]
        (hidden,) = [node for node in graph["nodes"] if node["id"] == "linear1"]
        assert hidden["params"]["out_features"] == 7
    assert load_project(path).graph.node("linear1").params["out_features"] == 128


def test_a_grid_sweep_tries_each_point_once_and_stops_at_the_grids_size(tmp_path: Path) -> None:
    path = digits_project(tmp_path, epochs=1)
    settings = settings_for(path, "training.batch_size=choice:64,128", trials=5)
    settings = SweepSettings(path, StudySpec(settings.study.path, "grid", settings.study.params, "grid"), 5)
    outcome = run_sweep(settings)
    assert outcome.target == 2 and outcome.counts["done"] == 2
    rows = trial_rows(open_study(settings.study))
    assert sorted(row["params"]["training.batch_size"] for row in rows) == [64, 128]

"""``dlstudio sweep`` in-process through cli.main: stop after 3 trials, continue to 6, pruning, refusals."""

from __future__ import annotations

import json
import sqlite3
from pathlib import Path

import pytest

from dlstudio import cli
from dlstudio.core.project import load_project, save_project
from dlstudio.core.project.templates import load_template

# SGD over a range that ends in a diverging learning rate (10) and starts with one that barely moves (1e-4).
DIVERGING = ("--param", "training.learning_rate=log:1e-4:10", "--param", "training.optimizer=choice:sgd")


def mlp_project(tmp_path: Path) -> Path:
    """The mlp template on the bundled digits at their own 8x8 size (small and fast), on the CPU."""
    project = load_template("mlp")
    image = project.graph.node_named("image")
    assert image is not None
    project.graph.set_param(image.id, "shape", [1, 8, 8])
    project.training.update(device="cpu", batch_size=128, epochs=3)
    path = tmp_path / "digits.dlstudio"
    save_project(project, path)
    return path


def sweep(capsys: pytest.CaptureFixture[str], *argv: str) -> tuple[int, str, str]:
    code = cli.main(["sweep", *argv])
    out, err = capsys.readouterr()
    return code, out, err


def test_a_sweep_stopped_after_3_trials_continues_to_6_and_prunes_a_hopeless_trial(
        tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    path = mlp_project(tmp_path)
    code, out, err = sweep(capsys, str(path), *DIVERGING, "--trials", "3", "--json")
    assert code == 0, err
    first = json.loads(out)
    assert first["counts"]["done"] == 3 and first["ran"] == 3
    assert "trial 1/3: training.learning_rate=" in err
    runs = tmp_path / "digits.runs"
    assert len(list(runs.iterdir())) == 3

    # Continued from the study file: --trials is the total, so three more run.
    code, out, err = sweep(capsys, str(path), *DIVERGING, "--trials", "6", "--json")
    assert code == 0, err
    second = json.loads(out)
    assert second["ran"] == 3
    trials = second["trials"]
    assert [trial["number"] for trial in trials] == [0, 1, 2, 3, 4, 5]
    assert {trial["state"] for trial in trials} <= {"complete", "pruned"}
    assert second["counts"]["complete"] + second["counts"]["pruned"] == 6
    # The study file itself holds exactly six finished trials.
    with sqlite3.connect(tmp_path / "digits.sweep.db") as db:
        states = [state for (state,) in db.execute("SELECT state FROM trials ORDER BY number")]
    assert len(states) == 6 and set(states) <= {"COMPLETE", "PRUNED"}

    # Each trial is a normal run: its own folder, listed in the project, with the sweep in its settings.
    folders = sorted(runs.iterdir())
    assert len(folders) == 6
    assert len(load_project(path).runs) == 6
    recorded = [json.loads((folder / "settings.json").read_text())["sweep"] for folder in folders]
    assert sorted(entry["trial"] for entry in recorded) == [0, 1, 2, 3, 4, 5]
    assert {entry["name"] for entry in recorded} == {"sweep"}
    assert {trial["run_dir"] for trial in trials} == {folder.name for folder in folders}

    # Pruning stopped at least one hopeless trial before its last (third) epoch: its run has fewer epochs.
    pruned = [trial for trial in trials if trial["state"] == "pruned"]
    assert pruned and all(trial["pruned_at"] < 3 for trial in pruned)
    for trial in pruned:
        metrics = (runs / trial["run_dir"] / "metrics.csv").read_text().splitlines()
        assert len(metrics) - 1 < 3  # header + the epochs it trained
    complete = [trial for trial in trials if trial["state"] == "complete"]
    assert complete and all(0.0 <= trial["value"] <= 1.0 and trial["epochs"] == 3 for trial in complete)

    # A third call with the target reached runs nothing.
    code, out, err = sweep(capsys, str(path), *DIVERGING, "--trials", "6")
    assert code == 0, err
    assert "6/6 trials done" in out and "best trials:" in out
    assert len(list(runs.iterdir())) == 6


@pytest.mark.parametrize(("param", "words"), [
    ("conv1.out_channels=int:4:32", "conv1.out_channels: the network has no node named 'conv1'"),
    ("hidden.out_features=int:64:4", "hidden.out_features: the low end (64) must be below the high end (4)"),
    ("hidden.out_features=int:0:8", "hidden.out_features: must be at least 1, got 0"),
    ("hidden.widht=int:4:8", "hidden.widht: hidden (Linear) has no parameter 'widht'"),
    ("training.learning_rate=log:0:1", "training.learning_rate: a log range must start above 0"),
    ("training.learning_rate=log:1e-4:50", "training.learning_rate: must be at most 10, got 50"),
    ("training.optimizer=choice:adam,lion", "training.optimizer: expected one of sgd, adam, adamw, rmsprop"),
    ("training.speed=float:0:1", "training.speed: no training setting 'speed'"),
    ("training.batch_size=range:1:2", "training.batch_size: expected a range log:LOW:HIGH"),
])
def test_a_bad_parameter_is_refused_in_one_line_naming_it(tmp_path: Path, capsys: pytest.CaptureFixture[str],
                                                           param: str, words: str) -> None:
    path = mlp_project(tmp_path)
    code, out, err = sweep(capsys, str(path), "--param", param, "--trials", "2")
    assert code == 2
    assert err.startswith("dlstudio: error: ") and words in err and len(err.strip().splitlines()) == 1
    assert not (tmp_path / "digits.runs").exists() and not (tmp_path / "digits.sweep.db").exists()


def test_continuing_a_sweep_with_other_parameters_is_refused(tmp_path: Path,
                                                             capsys: pytest.CaptureFixture[str]) -> None:
    path = mlp_project(tmp_path)
    code, _, err = sweep(capsys, str(path), "--param", "hidden.out_features=int:4:8", "--trials", "1",
                         "--epochs", "1")
    assert code == 0, err
    code, _, err = sweep(capsys, str(path), "--param", "hidden.out_features=int:4:16", "--trials", "2")
    assert code == 2
    assert "the sweep 'sweep' in digits.sweep.db varies hidden.out_features=int:4:8" in err
    assert len(list((tmp_path / "digits.runs").iterdir())) == 1


def test_ctrl_c_stops_the_running_trial_and_the_study_keeps_what_finished(
        tmp_path: Path, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch) -> None:
    import signal

    from dlstudio.core.training.runs import MetricsCsv

    before = signal.getsignal(signal.SIGINT)  # the default handler, or SIG_IGN in a background job
    write_row = MetricsCsv.on_epoch_end

    def press_ctrl_c_after_the_first_epoch(self, trainer, metrics) -> None:  # type: ignore[no-untyped-def]
        write_row(self, trainer, metrics)
        if metrics.epoch == 1:
            signal.raise_signal(signal.SIGINT)  # what the terminal sends; the command's handler takes it

    monkeypatch.setattr(MetricsCsv, "on_epoch_end", press_ctrl_c_after_the_first_epoch)
    path = mlp_project(tmp_path)
    code, out, err = sweep(capsys, str(path), *DIVERGING, "--trials", "3", "--json")
    assert code == 130, err
    stopped = json.loads(out)
    assert "stopping the sweep after this batch" in err
    assert stopped["stopped"] and stopped["counts"]["done"] == 0 and stopped["counts"]["interrupted"] == 1
    assert [trial["state"] for trial in stopped["trials"]] == ["stopped"]
    assert signal.getsignal(signal.SIGINT) is before  # the handler is put back

    monkeypatch.setattr(MetricsCsv, "on_epoch_end", write_row)
    code, out, err = sweep(capsys, str(path), *DIVERGING, "--trials", "1", "--epochs", "1", "--json")
    assert code == 0, err
    assert json.loads(out)["counts"]["done"] == 1  # the stopped trial did not count; one more ran in its place


def test_a_spent_time_budget_starts_no_trial(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    code, out, err = sweep(capsys, str(mlp_project(tmp_path)), *DIVERGING, "--trials", "3", "--timeout", "0")
    assert code == 0, err
    assert "0/3 trials done" in out and "time budget spent" in out
    assert not (tmp_path / "digits.runs").exists()

"""Two writers at once, with real processes: two `train`s of one project, `train` + a save from elsewhere,
two `--resume`s of one run, a stale run lock, and SIGTERM.

The trainers are paused inside data preparation (after they loaded the project, before they record the
run), so the interleaving that used to lose an update happens every time, not by luck.
"""

from __future__ import annotations

import csv
import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from hostile_runs import cli_env
from dlstudio.core.project import load_project
from dlstudio.core.training import LAST
from dlstudio.core.training.runs import LOCK_FILE

pytestmark = pytest.mark.timeout(180)


def test_two_trains_of_one_project_both_list_their_runs(tiny_project, dlstudio_process, tmp_path: Path) -> None:
    path = tiny_project()
    first = dlstudio_process(tmp_path, "train", path, "--json", paused=True, tag="a")
    second = dlstudio_process(tmp_path, "train", path, "--json", paused=True, tag="b")
    first.wait_ready()
    second.wait_ready()  # both loaded the same project file
    first.go()
    second.go()
    results = [first.finish(), second.finish()]
    for code, out, err in results:
        assert code == 0, err
    run_dirs = {Path(json.loads(out)["run_dir"]).name for _, out, _ in results}
    assert len(run_dirs) == 2
    assert {Path(entry).name for entry in load_project(path).runs} == run_dirs


def test_an_edit_saved_while_train_prepares_is_kept(tiny_project, dlstudio_process, tmp_path: Path) -> None:
    path = tiny_project()
    trainer = dlstudio_process(tmp_path, "train", path, "--json", paused=True)
    trainer.wait_ready()
    # Another process (the window, say) saves an edit while the trainer holds its old copy of the project.
    edit = ("import sys\nfrom dlstudio.core.project import load_project, save_project\n"
            "project = load_project(sys.argv[1])\nproject.description = 'edited meanwhile'\n"
            "project.training['learning_rate'] = 0.05\nsave_project(project, sys.argv[1])\n")
    subprocess.run([sys.executable, "-c", edit, str(path)], check=True, env=cli_env(), timeout=60)
    trainer.go()
    code, out, err = trainer.finish()
    assert code == 0, err
    project = load_project(path)
    assert project.description == "edited meanwhile" and project.training["learning_rate"] == 0.05
    assert [Path(entry).name for entry in project.runs] == [Path(json.loads(out)["run_dir"]).name]
    assert project.normalization is not None  # the run's statistics were merged in too
    assert not list(tmp_path.glob(".*.lock")) and not list(tmp_path.glob("*.tmp"))


def _stopped_run(cli_run, path: Path) -> Path:
    """A run of 3 planned epochs stopped after its first (resumable)."""
    code, out, err = cli_run("train", path, "--epochs", "1", "--json")
    assert code == 0, err
    run_dir = Path(json.loads(out)["run_dir"])
    # Make it resumable for 3 epochs: result.json says stopped, settings plan 3 epochs.
    settings = json.loads((run_dir / "settings.json").read_text())
    settings["training"]["epochs"] = 3
    (run_dir / "settings.json").write_text(json.dumps(settings))
    (run_dir / "result.json").write_text(json.dumps({"status": "stopped"}))
    return run_dir if run_dir.is_absolute() else path.parent / run_dir


def test_a_second_resume_of_a_run_being_trained_is_refused(tiny_project, cli_run, dlstudio_process,
                                                           tmp_path: Path, monkeypatch) -> None:
    path = tiny_project()
    monkeypatch.chdir(tmp_path)
    run_dir = _stopped_run(cli_run, path)
    first = dlstudio_process(tmp_path, "train", path, "--resume", run_dir, paused=True, tag="a")
    first.wait_ready()  # it holds the run now
    second = dlstudio_process(tmp_path, "train", path, "--resume", run_dir, tag="b")
    code, _, err = second.finish()
    assert code == 2, err
    assert f"run {run_dir.name} is being trained by process {first.pid}" in err
    assert "Traceback" not in err
    first.go()
    code, _, err = first.finish()
    assert code == 0, err
    with (run_dir / "metrics.csv").open() as handle:
        epochs = [row["epoch"] for row in csv.DictReader(handle)]
    assert epochs == ["1", "2", "3"]  # one row per epoch: nothing duplicated by a second writer
    assert not (run_dir / LOCK_FILE).exists()


def test_a_lock_left_by_a_dead_process_is_taken_over(tiny_project, cli_run, tmp_path: Path, monkeypatch) -> None:
    path = tiny_project()
    monkeypatch.chdir(tmp_path)
    run_dir = _stopped_run(cli_run, path)
    dead = subprocess.Popen([sys.executable, "-c", "pass"])
    dead.wait()
    (run_dir / LOCK_FILE).write_text(f"{dead.pid}\n")  # a trainer killed with -9 leaves this (unlocked) file
    code, _, err = cli_run("train", path, "--resume", run_dir)
    assert code == 0, err
    assert not (run_dir / LOCK_FILE).exists()


def test_sigterm_stops_after_the_batch_with_a_resumable_checkpoint(tiny_project, dlstudio_process,
                                                                  tmp_path: Path) -> None:
    path = tiny_project(epochs=200)
    trainer = dlstudio_process(tmp_path, "train", path, "--json")
    runs = tmp_path / "tiny.runs"
    deadline = time.monotonic() + 60
    while not list(runs.glob("*/metrics.csv")):  # written when the fit starts
        assert trainer.process.poll() is None, trainer.finish()
        assert time.monotonic() < deadline
        time.sleep(0.05)
    os.kill(trainer.pid, signal.SIGTERM)
    code, out, err = trainer.finish()
    assert code == 130, err
    summary = json.loads(out)
    assert summary["status"] == "stopped" and 0 <= summary["epochs"] < 200
    run_dir = tmp_path / summary["run_dir"]
    assert (run_dir / LAST).is_file() and "Traceback" not in err
    assert not list(run_dir.glob("*.tmp")) and not list(run_dir.glob(".*.tmp"))

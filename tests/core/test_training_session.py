"""The shared start of a run: settings, refusals before any folder exists, run folder, recording, resume."""

from __future__ import annotations

import json
import os
from pathlib import Path

import pytest

from dlstudio.core.data import DataError
from dlstudio.core.errors import ProjectError
from dlstudio.core.graph import Graph
from dlstudio.core.project import Project
from dlstudio.core.training import LAST
from dlstudio.core.training.runs import LOCK_FILE
from dlstudio.core.training.session import SessionError, start_project_session, start_session

SUMMARY_KEYS = {"run_dir", "epochs", "train_loss", "val_loss", "val_accuracy", "test_accuracy",
                "samples_per_second", "seconds", "status"}


def tiny_graph(classes: int = 10, out_features: int | None = None) -> Graph:
    graph = Graph()
    source = graph.add_node("Input", {"shape": [1, 8, 8]})
    flat = graph.add_node("Flatten")
    dense = graph.add_node("Linear", {"out_features": out_features or classes})
    output = graph.add_node("Output", {"task": "classification", "classes": classes})
    for a, b in ((source, flat), (flat, dense), (dense, output)):
        graph.connect(a.id, "out", b.id, "in")
    return graph


TRAINING = {"epochs": 2, "batch_size": 256, "learning_rate": 0.01, "device": "cpu"}


def test_a_new_run_gets_a_filled_folder_and_is_recorded_only_when_asked(tmp_path: Path) -> None:
    project = Project(graph=tiny_graph(), data={"source": "digits"}, training=dict(TRAINING),
                      path=tmp_path / "net.dlstudio")
    session = start_project_session(project, epochs=1)
    assert session.run_dir.parent == tmp_path / "net.runs" and not session.is_resumed
    assert session.config.epochs == 1 and session.config.learning_rate == 0.01
    # While the session holds the run, its lock file (with this process's id) is there too.
    assert {p.name for p in session.run_dir.iterdir()} == {"settings.json", "classes.json", LOCK_FILE}
    assert (session.run_dir / LOCK_FILE).read_text().split() == [str(os.getpid())]
    session.close()
    assert not (session.run_dir / LOCK_FILE).exists()
    written = json.loads((session.run_dir / "settings.json").read_text())
    assert written["training"]["epochs"] == 1 and written["graph"] == project.graph.to_dict()
    assert written["data_summary"]["sizes"]["train"] == len(session.data.train)
    assert project.runs == []
    assert session.record(project) == f"net.runs/{session.run_dir.name}"
    assert project.runs == [f"net.runs/{session.run_dir.name}"]


def test_refusals_come_before_any_run_folder(tmp_path: Path) -> None:
    path = tmp_path / "net.dlstudio"
    with pytest.raises(DataError, match="the data has 10 classes; the Output node is set to 3"):
        start_session(tiny_graph(classes=3), {"source": "digits"}, TRAINING, path)
    with pytest.raises(ProjectError, match="training.epochs"):
        start_session(tiny_graph(), {"source": "digits"}, TRAINING, path, epochs=0)
    assert not (tmp_path / "net.runs").exists()


def test_an_untitled_project_must_be_saved_first() -> None:
    with pytest.raises(SessionError, match="save the project first"):
        start_project_session(Project(graph=tiny_graph(), data={"source": "digits"}))


def test_resume_keeps_the_runs_own_settings_and_folder(tmp_path: Path, stop_after_batches) -> None:
    path = tmp_path / "net.dlstudio"
    session = start_session(tiny_graph(), {"source": "digits"}, TRAINING, path)
    stopped = session.trainer([stop_after_batches(2)]).fit()
    assert stopped.status == "stopped" and (session.run_dir / LAST).is_file()
    assert set(session.summary(stopped)) == SUMMARY_KEYS

    # The project was edited since (another class count): the resumed run still uses what it started with.
    resumed = start_session(tiny_graph(classes=3), {"source": "digits"}, {"epochs": 9}, path,
                            resume=session.run_dir)
    assert resumed.is_resumed and resumed.run_dir == session.run_dir
    assert resumed.config.epochs == 2 and resumed.graph.to_dict() == session.graph.to_dict()
    project = Project(path=path)
    assert resumed.record(project) is None and project.runs == []
    result = resumed.trainer().fit(resume=resumed.resume_dir)
    summary = resumed.finish(result)
    assert (summary["status"], summary["epochs"]) == ("completed", 2)
    assert json.loads((session.run_dir / "result.json").read_text())["status"] == "completed"
    assert 0.0 <= summary["val_accuracy"] <= 1.0
    assert len((session.run_dir / "metrics.csv").read_text().strip().splitlines()) == 3  # header + 2 epochs


def test_resume_without_a_checkpoint_is_refused(tmp_path: Path) -> None:
    with pytest.raises(SessionError, match="has no checkpoint to resume"):
        start_session(tiny_graph(), {"source": "digits"}, TRAINING, tmp_path / "net.dlstudio", resume=tmp_path)

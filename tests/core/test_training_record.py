"""Recording a run in the project: its normalization statistics round-trip through the file; which runs resume."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import pytest
from dlstudio.core.graph import Graph
from dlstudio.core.project import Project, input_shape, load_project, save_project
from dlstudio.core.training import LAST, Callback
from dlstudio.core.training.checkpoint import load_checkpoint
from dlstudio.core.training.runs import is_resumable, record_run, summarize_run, write_run_result
from dlstudio.core.training.session import start_project_session, start_session

pytestmark = pytest.mark.usefixtures("one_torch_thread")

TRAINING = {"epochs": 1, "batch_size": 256, "learning_rate": 0.01, "device": "cpu", "channels_last": "off"}


def tiny_graph(shape: list[int]) -> Graph:
    graph = Graph()
    nodes = [graph.add_node("Input", {"shape": shape}), graph.add_node("Flatten"),
             graph.add_node("Linear", {"out_features": 10}),
             graph.add_node("Output", {"task": "classification", "classes": 10})]
    for a, b in zip(nodes, nodes[1:]):
        graph.connect(a.id, "out", b.id, "in")
    return graph


def test_a_trained_run_leaves_its_statistics_in_the_saved_project(tmp_path: Path) -> None:
    path = tmp_path / "net.dlstudio"
    project = Project(graph=tiny_graph([1, 8, 8]), data={"source": "digits", "split_seed": 5},
                      training=dict(TRAINING), path=path)
    save_project(project, path)
    session = start_project_session(project)
    entry = session.record(project)
    save_project(project, path)
    result = session.trainer().fit()
    assert result.status == "completed"

    stats = load_project(path).normalization
    settings = json.loads((session.run_dir / "settings.json").read_text(encoding="utf-8"))
    meta = load_checkpoint(session.run_dir / LAST)["meta"]["normalization"]
    assert stats is not None and stats.run == entry == f"net.runs/{session.run_dir.name}"
    assert list(stats.mean) == settings["data_summary"]["normalization"]["mean"] == meta["mean"]
    assert list(stats.std) == settings["data_summary"]["normalization"]["std"] == meta["std"]
    assert len(stats.mean) == 1 and 0.0 < stats.mean[0] < 1.0 and stats.std[0] > 0.0
    assert stats.computed_from == {"source": "digits", "val_fraction": 0.15, "test_fraction": 0.15,
                                   "split_seed": 5, "input_shape": [1, 8, 8]}
    # They are the training split's own: normalized with them, it has zero mean and unit std.
    train = session.data.train.x.double()
    assert abs(train.mean().item()) < 1e-5 and abs(train.std(correction=0).item() - 1.0) < 1e-5
    assert stats.stale_reason(project.data, input_shape(project.graph)) == ""
    project.set_setting("data", "split_seed", 6)
    assert stats.stale_reason(project.data, input_shape(project.graph)) == "the split seed changed (5 → 6)"


def test_an_unnormalized_run_clears_them_and_a_resumed_run_leaves_them(tmp_path: Path) -> None:
    path = tmp_path / "net.dlstudio"
    project = Project(graph=tiny_graph([1, 8, 8]), data={"source": "digits"}, training=dict(TRAINING), path=path)
    first = start_project_session(project)
    first.record(project)
    recorded = project.normalization
    assert recorded is not None

    project.data["normalize"] = False
    second = start_project_session(project)
    second.record(project)
    assert project.normalization is None and len(project.runs) == 2

    project.normalization = recorded
    first.trainer().fit()
    resumed = start_session(project.graph, project.data, project.training, path, resume=first.run_dir)
    assert resumed.record(project) is None and project.normalization is recorded


def test_recording_a_run_folder_without_a_data_summary_keeps_the_project_statistics(tmp_path: Path) -> None:
    path = tmp_path / "net.dlstudio"
    project = Project(graph=tiny_graph([1, 8, 8]), data={"source": "digits"}, training=dict(TRAINING), path=path)
    start_project_session(project).record(project)
    kept = project.normalization
    bare = tmp_path / "net.runs" / "handmade"
    bare.mkdir()
    assert record_run(project, bare) == "net.runs/handmade"  # no settings.json at all
    (bare / "settings.json").write_text('{"data": {}}', encoding="utf-8")
    record_run(project, bare)
    assert project.normalization is kept and project.runs[-1] == "net.runs/handmade"


class _StopInEpoch(Callback):
    def __init__(self, epoch: int, batch: int) -> None:
        self.epoch, self.batch = epoch, batch

    def on_batch_end(self, trainer, batch) -> None:  # noqa: ANN001 - the hook's signature
        if (batch.epoch, batch.batch) == (self.epoch, self.batch):
            trainer.control.stop()


def test_which_runs_can_be_resumed(tmp_path: Path, stop_after_batches) -> None:
    path = tmp_path / "net.dlstudio"
    session = start_session(tiny_graph([1, 8, 8]), {"source": "digits"}, {**TRAINING, "epochs": 2,
                                                                          "batch_size": 64}, path)
    assert not summarize_run(session.run_dir)["resumable"]  # prepared, nothing trained yet: no checkpoint
    stopped = session.trainer([stop_after_batches(2)]).fit()
    assert summarize_run(session.run_dir)["resumable"]  # a crash leaves no result.json: "stopped"
    session.finish(stopped)
    assert summarize_run(session.run_dir)["status"] == "stopped" and summarize_run(session.run_dir)["resumable"]

    write_run_result(session.run_dir, {"status": "failed", "message": "loss became nan"})
    assert summarize_run(session.run_dir)["resumable"]
    for final in ("completed", "early_stopped"):
        write_run_result(session.run_dir, {"status": final})
        assert not summarize_run(session.run_dir)["resumable"]
    assert not is_resumable(session.run_dir, "damaged")
    write_run_result(session.run_dir, {"status": "stopped"})
    (session.run_dir / LAST).unlink()
    assert not summarize_run(session.run_dir)["resumable"]  # stopped, but nothing to continue from
    shutil.rmtree(session.run_dir)
    assert summarize_run(session.run_dir) == {**summarize_run(session.run_dir), "status": "missing",
                                              "resumable": False}


def test_a_resumed_sessions_trainer_stands_at_its_checkpoint_before_the_fit(tmp_path: Path) -> None:
    path = tmp_path / "net.dlstudio"
    session = start_session(tiny_graph([1, 8, 8]), {"source": "digits"}, {**TRAINING, "epochs": 3,
                                                                          "batch_size": 64}, path)
    first = session.trainer([_StopInEpoch(2, 5)]).fit()
    assert first.status == "stopped" and first.epochs_completed == 1
    resumed = start_session(tiny_graph([1, 8, 8]), {"source": "digits"}, TRAINING, path, resume=session.run_dir)
    trainer = resumed.trainer()
    # What a front end reports when the run starts: the epochs already done, before fit() runs.
    assert trainer.epoch == 1 and [m.epoch for m in trainer.history] == [1]
    assert trainer.history[0].val_loss == first.history[0].val_loss
    result = trainer.fit(resume=resumed.resume_dir)
    assert (result.status, result.epochs_completed) == ("completed", 3)
    assert [m.epoch for m in result.history] == [1, 2, 3]

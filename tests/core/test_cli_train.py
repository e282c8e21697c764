"""``dlstudio train`` in-process through cli.main: JSON, run folder, refusals, Ctrl+C and --resume."""

from __future__ import annotations

import csv
import json
import signal
from pathlib import Path
from typing import Any

import pytest
import torch

from dlstudio import cli
from dlstudio.core.graph import Graph
from dlstudio.core.project import Project, load_project, save_project
from dlstudio.core.training import LAST, METRIC_COLUMNS, ProgressBar

JSON_KEYS = {"run_dir", "epochs", "train_loss", "val_loss", "val_accuracy", "test_accuracy", "samples_per_second",
             "seconds", "status"}


def write_project(tmp_path: Path, input_shape: list[int] | None = None, classes: int = 10,
                  **training: Any) -> Path:
    graph = Graph()
    source = graph.add_node("Input", {"shape": input_shape or [1, 8, 8]})
    flat = graph.add_node("Flatten")
    dense = graph.add_node("Linear", {"out_features": classes})
    output = graph.add_node("Output", {"task": "classification", "classes": classes})
    for a, b in ((source, flat), (flat, dense), (dense, output)):
        graph.connect(a.id, "out", b.id, "in")
    project = Project(graph=graph, data={"source": "digits"},
                      training={"epochs": 1, "batch_size": 128, "learning_rate": 0.01, "device": "cpu", **training})
    path = tmp_path / "tiny.dlstudio"
    save_project(project, path)
    return path


def run_cli(capsys: pytest.CaptureFixture[str], *argv: str) -> tuple[int, str, str]:
    code = cli.main(list(argv))
    out, err = capsys.readouterr()
    return code, out, err


def test_train_json_and_run_folder(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    path = write_project(tmp_path, epochs=3)
    code, out, err = run_cli(capsys, "train", str(path), "--epochs", "1", "--json")
    assert code == 0, err
    summary = json.loads(out)
    assert set(summary) == JSON_KEYS
    assert summary["epochs"] == 1 and summary["status"] == "completed"
    assert 0.0 <= summary["val_accuracy"] <= 1.0 and 0.0 <= summary["test_accuracy"] <= 1.0
    assert summary["samples_per_second"] > 0 and summary["seconds"] > 0
    run_dir = Path(summary["run_dir"])
    assert run_dir.parent == tmp_path / "tiny.runs"
    assert {p.name for p in run_dir.iterdir()} == {"settings.json", "metrics.csv", "classes.json", "last.pt", "best.pt",
                                               "result.json", "confusion.json"}
    with (run_dir / "metrics.csv").open() as handle:
        rows = list(csv.reader(handle))
    assert tuple(rows[0]) == METRIC_COLUMNS and len(rows) == 2
    assert json.loads((run_dir / "classes.json").read_text()) == [str(i) for i in range(10)]
    settings = json.loads((run_dir / "settings.json").read_text())
    assert settings["training"]["epochs"] == 1 and settings["data_summary"]["sizes"]["train"] > 1000
    assert torch.load(run_dir / "best.pt", weights_only=True)["epoch"] == 1
    assert load_project(path).runs == [f"tiny.runs/{run_dir.name}"]
    assert json.loads((run_dir / "result.json").read_text())["status"] == "completed"
    assert "epoch 1/1" in err  # the progress line


def test_a_class_count_that_does_not_fit_is_refused_before_training(tmp_path: Path,
                                                                    capsys: pytest.CaptureFixture[str]) -> None:
    path = write_project(tmp_path, classes=3)
    code, out, err = run_cli(capsys, "train", str(path), "--json")
    assert code == 2 and out == ""
    assert err.strip() == ("dlstudio: error: the data has 10 classes; the Output node is set to 3 "
                           "(set its classes to 10)")
    assert not (tmp_path / "tiny.runs").exists()


def test_a_dataset_that_does_not_fit_the_input_is_refused(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    path = write_project(tmp_path, input_shape=[64])
    code, out, err = run_cli(capsys, "train", str(path))
    assert code == 2 and len(err.strip().splitlines()) == 1
    assert "Input shape of [C, H, W]" in err and "[64]" in err


@pytest.mark.skipif(torch.cuda.is_available(), reason="needs a machine without CUDA")
def test_an_unavailable_device_is_refused(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    code, _, err = run_cli(capsys, "train", str(write_project(tmp_path)), "--device", "cuda")
    assert code == 2 and "CUDA is not available" in err and len(err.strip().splitlines()) == 1


def test_a_bad_epoch_count_is_refused(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    code, _, err = run_cli(capsys, "train", str(write_project(tmp_path)), "--epochs", "0")
    assert code == 2 and err.startswith("dlstudio: error: training.epochs")


def test_ctrl_c_stops_after_the_batch_and_resume_finishes_the_run(tmp_path: Path, capsys: pytest.CaptureFixture[str],
                                                                 monkeypatch: pytest.MonkeyPatch) -> None:
    draw = ProgressBar.on_batch_end
    before = signal.getsignal(signal.SIGINT)  # the default handler, or SIG_IGN in a background job

    def press_ctrl_c_once(self: ProgressBar, trainer: Any, batch: Any) -> None:
        draw(self, trainer, batch)
        if (batch.epoch, batch.batch) == (2, 3):
            signal.raise_signal(signal.SIGINT)  # what the terminal sends; the command's handler takes it

    monkeypatch.setattr(ProgressBar, "on_batch_end", press_ctrl_c_once)
    path = write_project(tmp_path, epochs=3, batch_size=64)
    code, out, err = run_cli(capsys, "train", str(path), "--json")
    assert code == 130, err
    stopped = json.loads(out)
    assert stopped["status"] == "stopped" and stopped["epochs"] == 1
    assert "stopping after this batch" in err
    state = torch.load(Path(stopped["run_dir"]) / LAST, weights_only=True)
    assert (state["epoch"], state["position"]["batch"]) == (1, 3)

    monkeypatch.setattr(ProgressBar, "on_batch_end", draw)
    code, out, err = run_cli(capsys, "train", str(path), "--resume", stopped["run_dir"], "--json")
    assert code == 0, err
    finished = json.loads(out)
    assert finished["status"] == "completed" and finished["epochs"] == 3
    assert finished["run_dir"] == stopped["run_dir"]
    assert signal.getsignal(signal.SIGINT) is before  # the handler is put back


def test_resume_without_a_checkpoint_is_refused(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    code, _, err = run_cli(capsys, "train", str(write_project(tmp_path)), "--resume", str(tmp_path))
    assert code == 2 and "has no checkpoint to resume" in err

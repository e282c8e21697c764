"""``dlstudio classify`` in-process through cli.main: text, --json, --csv, folders, unreadable files, exit codes."""

from __future__ import annotations

import csv
import json
from pathlib import Path

import numpy as np
import pytest
import torch
from PIL import Image

from dlstudio import cli
from dlstudio.core.graph import Graph
from dlstudio.core.project import Project, save_project


pytestmark = pytest.mark.usefixtures("one_torch_thread")


@pytest.fixture(scope="module")
def project(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A digits project trained for one epoch with ``dlstudio train`` (a real run folder)."""
    graph = Graph()
    nodes = [graph.add_node("Input", {"shape": [1, 8, 8]}), graph.add_node("Flatten"),
             graph.add_node("Linear", {"out_features": 10}),
             graph.add_node("Output", {"task": "classification", "classes": 10})]
    for a, b in zip(nodes, nodes[1:]):
        graph.connect(a.id, "out", b.id, "in")
    path = tmp_path_factory.mktemp("classify") / "tiny.dlstudio"
    save_project(Project(graph=graph, data={"source": "digits"},
                         training={"epochs": 2, "batch_size": 128, "learning_rate": 0.05, "device": "cpu"}), path)
    assert cli.main(["train", str(path), "--json"]) == 0
    return path


@pytest.fixture
def images(tmp_path: Path) -> Path:
    folder = tmp_path / "images"
    folder.mkdir()
    digit = np.zeros((8, 8), np.uint8)
    digit[1:7, 3:5] = 255  # a one, more or less
    Image.fromarray(digit).save(folder / "one.png")
    Image.fromarray(np.zeros((16, 16, 3), np.uint8)).save(folder / "black.jpg")
    (folder / "readme.txt").write_text("hello")
    return folder


def run_cli(capsys: pytest.CaptureFixture[str], *argv: str) -> tuple[int, str, str]:
    code = cli.main(list(argv))
    out, err = capsys.readouterr()
    return code, out, err


def test_json_lists_every_file_with_top_k(project: Path, images: Path, capsys: pytest.CaptureFixture[str]) -> None:
    capsys.readouterr()
    code, out, err = run_cli(capsys, "classify", str(project), str(images), "--top", "3", "--json")
    assert code == 0, err
    items = {Path(item["file"]).name: item for item in json.loads(out)}
    assert set(items) == {"one.png", "black.jpg", "readme.txt"}
    for name in ("one.png", "black.jpg"):
        top = items[name]["top"]
        assert [set(entry) for entry in top] == [{"label", "probability"}] * 3
        assert top[0]["label"] in [str(i) for i in range(10)]
        probabilities = [entry["probability"] for entry in top]
        assert probabilities == sorted(probabilities, reverse=True) and 0 < sum(probabilities) <= 1.0 + 1e-6
    assert items["readme.txt"]["top"] == [] and "not an image" in items["readme.txt"]["error"]
    assert "1 file(s) could not be read" in err


def test_text_output_and_csv(project: Path, images: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    out_csv = tmp_path / "predictions.csv"
    code, out, err = run_cli(capsys, "classify", str(project), str(images / "one.png"), str(images / "readme.txt"),
                             "--top", "2", "--csv", str(out_csv))
    assert code == 0, err
    lines = out.splitlines()
    assert lines[0].startswith(f"{images / 'one.png'}: ") and lines[0].count("%") == 2
    assert lines[1].startswith(f"{images / 'readme.txt'}: skipped: not an image")
    with out_csv.open(newline="") as handle:
        rows = list(csv.DictReader(handle))
    assert list(rows[0]) == ["file", "label_1", "probability_1", "label_2", "probability_2", "error"]
    assert rows[0]["label_1"] and float(rows[0]["probability_1"]) >= float(rows[0]["probability_2"])
    assert rows[1]["label_1"] == "" and rows[1]["error"].startswith("not an image")
    code, _, err = run_cli(capsys, "classify", str(project), str(images / "one.png"), "--csv", str(out_csv))
    assert code == 2 and "already exists" in err


def test_the_run_folder_and_the_project_give_the_same_answer(project: Path, images: Path,
                                                             capsys: pytest.CaptureFixture[str]) -> None:
    run_dir = next((project.parent / "tiny.runs").iterdir())
    _, from_project, _ = run_cli(capsys, "classify", str(project), str(images / "one.png"), "--json")
    _, from_run, _ = run_cli(capsys, "classify", str(run_dir), str(images / "one.png"), "--json")
    assert json.loads(from_project) == json.loads(from_run)


def test_no_image_succeeded_exits_2(project: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    (tmp_path / "broken.png").write_bytes(b"\x89PNG\r\n\x1a\n broken")
    code, out, err = run_cli(capsys, "classify", str(project), str(tmp_path / "broken.png"),
                             str(tmp_path / "missing.jpg"), "--json")
    assert code == 2
    items = json.loads(out)
    assert [item["top"] for item in items] == [[], []] and all(item["error"] for item in items)
    assert "none of the 2 file(s) could be classified" in err


def test_refusals_are_one_line_with_status_2(project: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    untrained = tmp_path / "untrained.dlstudio"
    save_project(Project(), untrained)
    code, _, err = run_cli(capsys, "classify", str(untrained), str(tmp_path))
    assert code == 2 and err.startswith("dlstudio: error: ") and "no runs yet" in err and err.count("\n") == 1
    code, _, err = run_cli(capsys, "classify", str(project), str(tmp_path), "--top", "0")
    assert code == 2 and "--top must be at least 1" in err
    code, _, err = run_cli(capsys, "classify", str(tmp_path / "nowhere"), str(tmp_path))
    assert code == 2 and "does not exist" in err

"""Every file skipped while preparing a run is listed with its reason in the run folder (skipped.jsonl)."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from dlstudio import cli
from dlstudio.core.graph import Graph
from dlstudio.core.project import Project, save_project


def _project_on_a_folder(tmp_path: Path) -> Path:
    root = tmp_path / "images"
    for label, value in (("dark", 30), ("light", 220)):
        (root / label).mkdir(parents=True)
        for index in range(6):
            Image.fromarray(np.full((8, 8), value + index, np.uint8), "L").save(root / label / f"{index}.png")
    (root / "light" / "fake.png").write_text("this is not an image")
    graph = Graph()
    nodes = [graph.add_node("Input", {"shape": [1, 8, 8]}), graph.add_node("Flatten"),
             graph.add_node("Linear", {"out_features": 2}), graph.add_node("Output", {"classes": 2})]
    for a, b in zip(nodes, nodes[1:]):
        graph.connect(a.id, "out", b.id, "in")
    project = Project(graph=graph, data={"source": "folder", "path": str(root), "val_fraction": 0.25,
                                         "test_fraction": 0.0},
                      training={"epochs": 1, "batch_size": 4, "device": "cpu"})
    path = tmp_path / "folder.dlstudio"
    save_project(project, path)
    return path


@pytest.mark.timeout(120)
def test_a_run_lists_the_files_it_skipped(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    path = _project_on_a_folder(tmp_path)
    assert cli.main(["train", str(path), "--json"]) == 0, capsys.readouterr().err
    run_dir = Path(json.loads(capsys.readouterr().out)["run_dir"])
    entries = [json.loads(line) for line in (run_dir / "skipped.jsonl").read_text().splitlines()]
    assert [Path(entry["path"]).name for entry in entries] == ["fake.png"]
    assert entries[0]["reason"] and "Error" not in entries[0]["reason"]

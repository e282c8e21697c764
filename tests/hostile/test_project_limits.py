"""Project files that are not files, are huge, or hold oversized structures: refused before parsing or
walking, with one line saying which, quickly (a timeout on each)."""

from __future__ import annotations

import json
import os
import time
from pathlib import Path

import pytest

from dlstudio.core.errors import ProjectError
from dlstudio.core.project import fileformat, load_project
from hostile_runs import assert_one_line_refusal, write_tiny_project

pytestmark = pytest.mark.timeout(30)


def test_a_device_is_refused_before_reading(cli_run) -> None:
    with pytest.raises(ProjectError, match=r"^zero: cannot be opened: it is a device, not a regular file$"):
        load_project("/dev/zero")
    code, _, err = cli_run("info", "/dev/zero")
    assert_one_line_refusal(code, err, "a device")


def test_a_fifo_is_refused_without_hanging(tmp_path: Path, cli_run) -> None:
    fifo = tmp_path / "pipe.dlstudio"
    os.mkfifo(fifo)
    with pytest.raises(ProjectError, match=r"^pipe\.dlstudio: cannot be opened: it is a pipe, not a regular file$"):
        load_project(fifo)
    code, _, err = cli_run("train", fifo)
    assert_one_line_refusal(code, err, "a pipe")


def test_a_folder_is_refused(tmp_path: Path) -> None:
    with pytest.raises(ProjectError, match="cannot be opened: "):
        load_project(tmp_path)


def test_a_file_over_the_size_limit_is_refused_before_reading(tmp_path: Path) -> None:
    path = tmp_path / "huge.dlstudio"
    with path.open("wb") as handle:  # sparse: no disk used, no time spent
        handle.truncate(fileformat.MAX_FILE_BYTES + 1)
    started = time.perf_counter()
    with pytest.raises(ProjectError, match=r"^huge\.dlstudio: cannot be opened: too large for a project file"):
        load_project(path)
    assert time.perf_counter() - started < 1.0


def test_a_file_of_millions_of_values_is_refused_before_parsing(tmp_path: Path) -> None:
    path = tmp_path / "list.dlstudio"
    path.write_text('{"format": "dlstudio", "runs": [' + "0," * 3_000_000 + "0]}")
    started = time.perf_counter()
    with pytest.raises(ProjectError, match=r"^list\.dlstudio: too large for a project \(more than 2,000,000 values\)"):
        load_project(path)
    assert time.perf_counter() - started < 2.0


def _doc(tmp_path: Path) -> dict:
    return json.loads(write_tiny_project(tmp_path).read_text())


def test_too_many_nodes_are_refused_before_they_are_built(tmp_path: Path) -> None:
    doc = _doc(tmp_path)
    node = doc["graph"]["nodes"][1]
    doc["graph"]["nodes"] = [{**node, "id": f"n{i}", "name": f"n{i}"} for i in range(fileformat.MAX_NODES + 1)]
    path = tmp_path / "many.dlstudio"
    path.write_text(json.dumps(doc))
    with pytest.raises(ProjectError, match=r"^many\.dlstudio: graph\.nodes: 20,001 nodes, more than the 20,000"):
        load_project(path)


def test_deep_nesting_is_refused(tmp_path: Path) -> None:
    doc = _doc(tmp_path)
    deep: list = []
    for _ in range(200):
        deep = [deep]
    doc["description"] = deep
    path = tmp_path / "deep.dlstudio"
    path.write_text(json.dumps(doc))
    with pytest.raises(ProjectError, match=r"^deep\.dlstudio: description(\[0\])*(\.\.\.)?: nested too deeply"):
        load_project(path)


def test_too_many_runs_are_refused(tmp_path: Path) -> None:
    doc = _doc(tmp_path)
    doc["runs"] = ["r"] * (fileformat.MAX_RUNS + 1)
    path = tmp_path / "runs.dlstudio"
    path.write_text(json.dumps(doc))
    with pytest.raises(ProjectError, match=r"^runs\.dlstudio: runs: 100,001 runs"):
        load_project(path)

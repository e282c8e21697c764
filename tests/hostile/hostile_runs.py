"""Helpers and fixtures of the hostile run/project tests (imported by conftest.py as ``hostile_runs``): tiny projects and runs made by the tests themselves, and real dlstudio processes.

Every case here is generated on the fly (no stored corpus): damaged and hostile
project files, run folders, links planted where dlstudio writes. Each test has
a timeout, so a hang fails instead of stalling the suite.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest

# A `dlstudio` process that stops inside data preparation until the test lets it go: after it loaded the
# project (and, with --resume, took the run's lock), before it records the run. It writes READY, waits for GO.
PAUSED_CLI = """
import os, sys, time
import dlstudio.core.data as data
real = data.prepare_data
def paused(*args, **kwargs):
    open(os.environ["DLSTUDIO_TEST_READY"], "w").close()
    deadline = time.monotonic() + 60
    while not os.path.exists(os.environ["DLSTUDIO_TEST_GO"]) and time.monotonic() < deadline:
        time.sleep(0.02)
    return real(*args, **kwargs)
data.prepare_data = paused
from dlstudio import cli
sys.exit(cli.main(sys.argv[1:]))
"""

PLAIN_CLI = "import sys\nfrom dlstudio import cli\nsys.exit(cli.main(sys.argv[1:]))\n"


def write_tiny_project(folder: Path, name: str = "tiny.dlstudio", **training: Any) -> Path:
    """Input [1, 8, 8] -> Flatten -> Linear(10) -> Output, on the bundled digits; trains in about a second."""
    from dlstudio.core.graph import Graph
    from dlstudio.core.project import Project, save_project

    graph = Graph()
    source = graph.add_node("Input", {"shape": [1, 8, 8]})
    flat = graph.add_node("Flatten")
    dense = graph.add_node("Linear", {"out_features": 10})
    output = graph.add_node("Output", {"task": "classification", "classes": 10})
    for a, b in ((source, flat), (flat, dense), (dense, output)):
        graph.connect(a.id, "out", b.id, "in")
    project = Project(graph=graph, data={"source": "digits"},
                      training={"epochs": 1, "batch_size": 128, "learning_rate": 0.01, "device": "cpu", **training})
    path = folder / name
    save_project(project, path)
    return path


@pytest.fixture
def tiny_project(tmp_path: Path) -> Callable[..., Path]:
    return lambda **training: write_tiny_project(tmp_path, **training)


@pytest.fixture
def cli_run(capsys: pytest.CaptureFixture[str]) -> Callable[..., tuple[int, str, str]]:
    """``cli_run(*argv)``: dlstudio in this process; (exit status, stdout, stderr)."""
    from dlstudio import cli

    def run(*argv: str) -> tuple[int, str, str]:
        code = cli.main([str(arg) for arg in argv])
        out, err = capsys.readouterr()
        return code, out, err

    return run


@pytest.fixture(scope="module")
def trained_run(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A finished 1-epoch run of the tiny project (copy it before damaging it: :func:`run_copy`)."""
    from dlstudio import cli

    folder = tmp_path_factory.mktemp("trained")
    path = write_tiny_project(folder)
    assert cli.main(["train", str(path)]) == 0
    from dlstudio.core.project import load_project

    return folder / load_project(path).runs[-1]


@pytest.fixture
def run_copy(trained_run: Path, tmp_path: Path) -> Path:
    """A private copy of :func:`trained_run`'s project and run folder; returns the run folder."""
    target = tmp_path / "copy"
    shutil.copytree(trained_run.parent.parent, target)
    return target / trained_run.parent.name / trained_run.name


def cli_env() -> dict[str, str]:
    env = dict(os.environ)
    env.update(OMP_NUM_THREADS="1", MKL_NUM_THREADS="1", PYTHONUNBUFFERED="1")
    return env


class Dlstudio:
    """A real ``dlstudio`` process (optionally paused in data preparation until :meth:`go`)."""

    def __init__(self, folder: Path, *argv: str, paused: bool = False, tag: str = "p") -> None:
        self.ready = folder / f".{tag}.ready"
        self.go_file = folder / f".{tag}.go"
        env = cli_env()
        env.update(DLSTUDIO_TEST_READY=str(self.ready), DLSTUDIO_TEST_GO=str(self.go_file))
        self.process = subprocess.Popen([sys.executable, "-c", PAUSED_CLI if paused else PLAIN_CLI, *argv],
                                        cwd=folder, env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                                        text=True)

    @property
    def pid(self) -> int:
        return self.process.pid

    def wait_ready(self, timeout: float = 60) -> None:
        deadline = time.monotonic() + timeout
        while not self.ready.exists():
            if self.process.poll() is not None:
                out, err = self.process.communicate()
                raise AssertionError(f"dlstudio ended before it was ready ({self.process.returncode}): {err}")
            assert time.monotonic() < deadline, "dlstudio did not reach data preparation in time"
            time.sleep(0.02)

    def go(self) -> None:
        self.go_file.touch()

    def finish(self, timeout: float = 90) -> tuple[int, str, str]:
        out, err = self.process.communicate(timeout=timeout)
        return self.process.returncode, out, err

    def kill(self) -> None:
        if self.process.poll() is None:
            self.process.kill()
            self.process.communicate()


@pytest.fixture
def dlstudio_process() -> Iterator[Callable[..., Dlstudio]]:
    """Start real dlstudio processes; any still running when the test ends is killed."""
    started: list[Dlstudio] = []

    def start(folder: Path, *argv: str, paused: bool = False, tag: str = "p") -> Dlstudio:
        process = Dlstudio(folder, *map(str, argv), paused=paused, tag=tag)
        started.append(process)
        return process

    yield start
    for process in started:
        process.kill()


def assert_one_line_refusal(code: int, err: str, *expected: str) -> None:
    """Exit 2 with one ``dlstudio: error:`` line, no traceback, no exception class name."""
    lines = [line for line in err.splitlines() if line.strip()]
    errors = [line for line in lines if line.startswith("dlstudio: error:")]
    assert code == 2, err
    assert len(errors) == 1, err
    assert "Traceback" not in err
    for name in ("TypeError", "KeyError", "AttributeError", "RecursionError", "ValueError", "RuntimeError",
                 "MemoryError", "IndexError", "OSError", "UnpicklingError"):
        assert name not in err, err
    for text in expected:
        assert text in errors[0], err

"""Distributed training: `torchrun --nproc_per_node=2 -m dlstudio train FILE` (gloo on the CPU) against one process.

The end-to-end test launches torchrun in subprocesses on the mlp template and the bundled digits; the
others check the pieces (the split of an epoch, the parts of a split, resuming under another world size).
"""

from __future__ import annotations

import csv
import json
import os
import subprocess
import sys
from pathlib import Path

import pytest
import torch

from dlstudio.core.training.distributed import Distributed, launched_by_torchrun
from dlstudio.core.training.session import SessionError, _check_same_processes

# Columns whose values depend on the machine's speed, not on what was trained.
TIMING = ("seconds", "samples_per_second")


def _project(folder: Path, name: str, batch_size: int) -> Path:
    path = folder / f"{name}.dlstudio"
    subprocess.run([sys.executable, "-m", "dlstudio", "new", "--template", "mlp", "-o", str(path)], check=True,
                   capture_output=True)
    document = json.loads(path.read_text())
    document["training"].update(batch_size=batch_size, epochs=2, device="cpu")
    path.write_text(json.dumps(document))
    return path


def _environment(**extra: str) -> dict[str, str]:
    environment = {key: value for key, value in os.environ.items()
                   if key not in ("RANK", "WORLD_SIZE", "LOCAL_RANK", "MASTER_ADDR", "MASTER_PORT")}
    return {**environment, "OMP_NUM_THREADS": "1", **extra}


def _train(project: Path, *arguments: str, processes: int = 0, **environment: str) -> subprocess.CompletedProcess:
    launcher = ([sys.executable, "-m", "torch.distributed.run", "--standalone", f"--nproc_per_node={processes}"]
                if processes else [sys.executable])
    return subprocess.run([*launcher, "-m", "dlstudio", "train", str(project), *arguments], capture_output=True,
                          text=True, timeout=120, env=_environment(**environment), cwd=project.parent)


def _runs(project: Path) -> list[Path]:
    return sorted(path for path in project.with_suffix(".runs").iterdir() if path.is_dir())


def _metrics(run: Path) -> tuple[list[str], list[dict[str, str]]]:
    with open(run / "metrics.csv", newline="") as handle:
        reader = csv.DictReader(handle)
        return list(reader.fieldnames or []), list(reader)


def test_two_processes_train_the_project_like_one_with_the_same_global_batch(tmp_path: Path) -> None:
    # Batches of 8 per process: 79 steps an epoch, so a stop can fall inside one (stops are agreed every 32).
    single = _project(tmp_path, "single", batch_size=16)
    done = _train(single, "--json")
    assert done.returncode == 0, done.stderr
    single_result = json.loads(done.stdout)
    single_columns, single_rows = _metrics(_runs(single)[0])

    distributed = _project(tmp_path, "ddp", batch_size=8)  # 2 x 8: the same 16 samples per step
    dumps = tmp_path / "dumps"
    dumps.mkdir()
    done = _train(distributed, "--json", processes=2, DLSTUDIO_DDP_DUMP=str(dumps))
    assert done.returncode == 0, done.stderr
    result = json.loads(done.stdout)  # rank 0 alone prints the result
    assert result["status"] == "completed" and result["epochs"] == 2
    [run] = _runs(distributed)  # one run folder, written by rank 0
    columns, rows = _metrics(run)
    assert columns == single_columns and len(rows) == len(single_rows) == 2
    assert [row["epoch"] for row in rows] == ["1", "2"]
    assert abs(result["val_accuracy"] - single_result["val_accuracy"]) <= 0.02
    assert abs(result["test_accuracy"] - single_result["test_accuracy"]) <= 0.02
    # Both ranks end with the same weights, and those are the ones rank 0 saved.
    hashes = {path.name: path.read_text().strip() for path in dumps.iterdir()}
    assert set(hashes) == {"rank0.sha256", "rank1.sha256"} and hashes["rank0.sha256"] == hashes["rank1.sha256"]
    settings = json.loads((run / "settings.json").read_text())
    assert settings["distributed"] == {"world_size": 2, "backend": "gloo", "batch_size": "per process",
                                       "global_batch_size": 16}
    assert settings["training"]["batch_size"] == 8
    assert json.loads((run / "result.json").read_text())["status"] == "completed"
    assert Path(run.relative_to(distributed.parent)).as_posix() in json.loads(distributed.read_text())["runs"]

    # Rank 1 fails after its first epoch: both processes end, each says which rank it is.
    failing = _train(distributed, processes=2, DLSTUDIO_DDP_FAIL_RANK="1")
    assert failing.returncode != 0
    assert "dlstudio: error: rank 1: failing on purpose after epoch 1" in failing.stderr
    assert "dlstudio: error: rank 0: stopped: another process failed or ended" in failing.stderr
    failed = _runs(distributed)[-1]
    assert failed != run and len(_metrics(failed)[1]) == 1 and not (failed / "result.json").exists()

    # Rank 1 alone is asked to stop at batch 40 of epoch 2: both stop after batch 64 (the next agreed check).
    stopping = _train(distributed, processes=2, DLSTUDIO_DDP_STOP="1:2:40")
    assert stopping.returncode != 0 and "stopped: stopped by request" in stopping.stderr
    stopped = _runs(distributed)[-1]
    assert json.loads((stopped / "result.json").read_text())["status"] == "stopped"
    position = torch.load(stopped / "last.pt", weights_only=True)["position"]
    assert position["epoch"] == 2 and position["batch"] == 64
    assert position["sizes"][:64] == [16] * 64  # both ranks' samples, gathered by rank 0

    # One process cannot continue it; two continue it exactly as the uninterrupted run trained.
    refused = _train(distributed, "--resume", str(stopped))
    assert refused.returncode == 2
    assert f"run {stopped.name} trained in 2 processes; continue it with as many" in refused.stderr
    for path in dumps.iterdir():
        path.unlink()
    resumed = _train(distributed, "--resume", str(stopped), processes=2, DLSTUDIO_DDP_DUMP=str(dumps))
    assert resumed.returncode == 0, resumed.stderr
    _, resumed_rows = _metrics(stopped)
    for resumed_row, row in zip(resumed_rows, rows, strict=True):
        for key, value in row.items():
            if key == "train_loss":  # the stopped epoch's first batches come back as their mean over the ranks
                assert float(resumed_row[key]) == pytest.approx(float(value), rel=1e-6)
            elif key not in TIMING:
                assert resumed_row[key] == value, key
    assert {path.read_text().strip() for path in dumps.iterdir()} == {hashes["rank0.sha256"]}
    assert len(_runs(distributed)) == 3


@pytest.mark.parametrize("samples", [0, 1, 7, 8, 1259])
def test_the_ranks_share_every_sample_of_an_epoch_in_equal_parts(samples: int) -> None:
    order = torch.randperm(samples, generator=torch.Generator().manual_seed(3))
    world = 3
    shares = [Distributed(rank, world, rank, "gloo").shard(order) for rank in range(world)]
    assert {len(share) for share in shares} == {-(-samples // world)}
    taken = torch.cat(shares).tolist()
    assert set(taken) == set(order.tolist())  # every sample, padded by at most world - 1 repeats
    assert len(taken) - samples < world
    # Interleaved: the ranks' i-th samples are the order's i-th group of `world`, so the ranks' first batches
    # together are the first samples of the order, as one process's first batch would be.
    if samples:
        assert torch.stack(shares, 1).flatten()[:samples].tolist() == order.tolist()


@pytest.mark.parametrize("samples", [0, 1, 5, 270])
def test_validation_is_split_into_contiguous_parts_that_cover_it_once(samples: int) -> None:
    parts = [Distributed(rank, 4, rank, "gloo").part(samples) for rank in range(4)]
    covered = [index for start, stop in parts for index in range(start, stop)]
    assert covered == list(range(samples))


def test_torchrun_is_recognized_by_its_variables() -> None:
    variables = {"RANK": "0", "WORLD_SIZE": "2", "LOCAL_RANK": "0", "MASTER_ADDR": "127.0.0.1", "MASTER_PORT": "1"}
    assert launched_by_torchrun(variables)
    assert not launched_by_torchrun({key: value for key, value in variables.items() if key != "RANK"})


def test_a_run_resumes_under_as_many_processes_as_it_trained_with(tmp_path: Path) -> None:
    two = Distributed(0, 2, 0, "gloo")
    _check_same_processes({}, tmp_path, None)
    _check_same_processes({"distributed": {"world_size": 2}}, tmp_path, two)
    with pytest.raises(SessionError, match="trained in one process; continue it without torchrun"):
        _check_same_processes({}, tmp_path, two)
    with pytest.raises(SessionError, match="trained in 2 processes; continue it with as many"):
        _check_same_processes({"distributed": {"world_size": 2}}, tmp_path, None)
    with pytest.raises(SessionError, match="distributed.world_size is not a number of processes"):
        _check_same_processes({"distributed": {"world_size": "2"}}, tmp_path, None)


def test_parameters_without_gradients_are_looked_for_only_when_a_branch_leads_nowhere(tmp_path: Path) -> None:
    from dlstudio.core.compiler import compile_graph
    from dlstudio.core.project.fileformat import load_project
    from dlstudio.core.training.distributed import _has_dead_branches

    graph = load_project(_project(tmp_path, "mlp", batch_size=8)).graph
    assert not _has_dead_branches(compile_graph(graph))
    dangling = graph.add_node("Linear", {"out_features": 3}, name="unused")
    graph.connect("relu1", "out", dangling.id, "in")
    assert _has_dead_branches(compile_graph(graph))
    assert _has_dead_branches(torch.nn.Linear(2, 2))  # not a compiled graph: assume so


def test_a_setting_every_rank_refuses_is_said_once_by_rank_0(tmp_path: Path) -> None:
    project = _project(tmp_path, "sync", batch_size=8)
    document = json.loads(project.read_text())
    document["training"]["sync_batchnorm"] = True  # needs CUDA; this run is on the CPU
    project.write_text(json.dumps(document))
    refused = _train(project, processes=2)
    assert refused.returncode != 0
    errors = [line for line in refused.stderr.splitlines() if line.startswith("dlstudio: error:")]
    assert errors == ["dlstudio: error: rank 0: training.sync_batchnorm needs CUDA devices (NCCL); this run "
                      "trains on the CPU with gloo: turn it off"]
    assert not project.with_suffix(".runs").exists() or not _runs(project)

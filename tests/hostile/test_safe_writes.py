"""Writes into a run folder or beside a project: never through a planted link, never half a file, never a
temporary file left behind, a full disk said as such; symlinked and read-only project files."""

from __future__ import annotations

import errno
import json
import os
import stat
from pathlib import Path

import pytest
import torch

from dlstudio.core import safe_io
from dlstudio.core.errors import ProjectError
from dlstudio.core.project import load_project, save_project
from dlstudio.core.training import LAST, load_checkpoint
from dlstudio.core.training.checkpoint import BEST

pytestmark = pytest.mark.timeout(120)

_RUN_FILES = ("metrics.csv", "last.pt.tmp", "best.pt.tmp", "result.json.tmp", "confusion.json.tmp",
              "metrics.csv.tmp")


def _temporaries(folder: Path) -> list[str]:
    return sorted(p.name for p in folder.iterdir() if p.name.endswith(".tmp"))


def _stopped_run(cli_run, path: Path) -> Path:
    code, out, err = cli_run("train", path, "--epochs", "1", "--json")
    assert code == 0, err
    run_dir = path.parent / json.loads(out)["run_dir"]  # absolute: the project path given is
    (run_dir / "result.json").write_text(json.dumps({"status": "stopped"}))
    settings = json.loads((run_dir / "settings.json").read_text())
    settings["training"]["epochs"] = 2
    (run_dir / "settings.json").write_text(json.dumps(settings))
    return run_dir


def test_resume_never_writes_through_temporary_names_planted_as_links(tiny_project, cli_run, tmp_path: Path,
                                                                      monkeypatch) -> None:
    monkeypatch.chdir(tmp_path)
    path = tiny_project()
    run_dir = _stopped_run(cli_run, path)
    outside = tmp_path / "outside"
    outside.mkdir()
    victims = {}
    for name in _RUN_FILES[1:]:  # the fixed temporary names older versions wrote through
        victim = outside / f"victim-{name}"
        victim.write_text("precious\n")
        (run_dir / name).symlink_to(victim)
        victims[name] = victim
    code, _, err = cli_run("train", path, "--resume", run_dir)
    assert code == 0, err
    for victim in victims.values():
        assert victim.read_text() == "precious\n"
    assert _temporaries(run_dir) == []  # the planted links are gone (removed, never followed)
    assert load_checkpoint(run_dir / LAST)["epoch"] == 2


@pytest.mark.parametrize("name", ["metrics.csv", "last.pt", "best.pt", "result.json", "confusion.json"])
def test_a_run_file_that_is_a_link_elsewhere_is_refused_not_followed(tiny_project, cli_run, tmp_path: Path,
                                                                     monkeypatch, name: str) -> None:
    monkeypatch.chdir(tmp_path)
    path = tiny_project()
    run_dir = _stopped_run(cli_run, path)
    victim = tmp_path / "victim.txt"
    victim.write_text("precious\n")
    original = run_dir / name
    if name == "last.pt":  # keep a real checkpoint to resume from, and plant the link where it is written next
        os.replace(original, run_dir / "kept.pt")
        victim.write_bytes((run_dir / "kept.pt").read_bytes())
        before = victim.read_bytes()
    else:
        original.unlink(missing_ok=True)
        before = victim.read_bytes()
    original.symlink_to(victim)
    code, _, err = cli_run("train", path, "--resume", run_dir)
    assert victim.read_bytes() == before  # nothing written through the link
    assert "Traceback" not in err
    assert code in (0, 2), err
    if code == 2:
        assert "symbolic link" in err and err.count("dlstudio: error:") == 1
    assert _temporaries(run_dir) == []


def test_a_full_disk_while_saving_a_checkpoint_keeps_the_previous_one(tiny_project, cli_run, tmp_path: Path,
                                                                     monkeypatch) -> None:
    monkeypatch.chdir(tmp_path)
    path = tiny_project(epochs=3)
    real_write = os.write
    state = {"checkpoints": 0, "armed": False}

    def write(handle: int, data) -> int:  # the real write call of the guarded writer
        if state["armed"]:
            real_write(handle, bytes(data)[: len(data) // 2])  # half a file reaches the disk, then it is full
            raise OSError(errno.ENOSPC, "No space left on device")
        return real_write(handle, data)

    real_save = torch.save

    def counting_save(obj, stream, *args, **kwargs):
        state["checkpoints"] += 1
        state["armed"] = state["checkpoints"] >= 3  # epoch 1 writes last.pt and best.pt; then the disk is full
        return real_save(obj, stream, *args, **kwargs)

    monkeypatch.setattr(safe_io, "_write", write)
    monkeypatch.setattr(torch, "save", counting_save)
    code, out, err = cli_run("train", path, "--json")
    assert code == 2, err
    assert "dlstudio: error: disk full: " in err and " MB needed in " in err and "Traceback" not in err
    assert err.count("dlstudio: error:") == 1
    run_dir = tmp_path / "tiny.runs"
    run_dir = next(run_dir.iterdir())
    assert load_checkpoint(run_dir / LAST)["epoch"] == 1  # the previous checkpoint, whole
    assert load_checkpoint(run_dir / BEST)["epoch"] == 1
    assert _temporaries(run_dir) == []
    assert json.loads(out)["status"] == "failed"


def test_the_guarded_writer_refuses_links_and_cleans_up_on_failure(tmp_path: Path, monkeypatch) -> None:
    victim = tmp_path / "victim"
    victim.write_text("precious")
    link = tmp_path / "file.json"
    link.symlink_to(victim)
    with pytest.raises(safe_io.WriteError, match="symbolic link"):
        safe_io.write_json(link, {"a": 1})
    assert victim.read_text() == "precious"

    target = tmp_path / "data.bin"
    target.write_bytes(b"old")
    hard = tmp_path / "hard.bin"
    os.link(target, hard)

    def fail(stream) -> None:
        stream.write(b"x" * 100)
        raise RuntimeError("torch failed half-way")

    with pytest.raises(RuntimeError):
        safe_io.write_file(target, fail)
    assert target.read_bytes() == b"old" and _temporaries(tmp_path) == []
    safe_io.write_file(target, b"new")
    assert target.read_bytes() == b"new" and hard.read_bytes() == b"old"  # the other link keeps its bytes


def test_run_json_is_valid_json_nonfinite_numbers_become_null(tmp_path: Path) -> None:
    path = safe_io.write_json(tmp_path / "result.json", {"test_loss": float("nan"), "x": [float("inf"), 1.0]})
    assert json.loads(path.read_text(), parse_constant=lambda name: pytest.fail(name)) == \
        {"test_loss": None, "x": [None, 1.0]}
    with pytest.raises(safe_io.WriteError, match=r"^x\[0\]: not a finite number"):
        safe_io.json_text({"x": [float("-inf")]}, nonfinite="refuse")


def test_saving_a_symlinked_project_writes_the_real_file(tiny_project, tmp_path: Path) -> None:
    real = tiny_project()
    elsewhere = tmp_path / "links"
    elsewhere.mkdir()
    link = elsewhere / "alias.dlstudio"
    link.symlink_to(real)
    project = load_project(link)
    project.description = "saved through the link"
    save_project(project, link)
    assert link.is_symlink() and os.readlink(link) == str(real)
    assert load_project(real).description == "saved through the link"
    assert sorted(p.name for p in elsewhere.iterdir()) == ["alias.dlstudio"]


def test_training_a_symlinked_project_records_the_run_in_the_real_file(tiny_project, cli_run,
                                                                      tmp_path: Path) -> None:
    real = tiny_project()
    link = tmp_path / "links" / "alias.dlstudio"
    link.parent.mkdir()
    link.symlink_to(real)
    code, _, err = cli_run("train", link)
    assert code == 0, err
    assert link.is_symlink()
    runs = load_project(real).runs
    assert len(runs) == 1 and (real.parent / runs[0] / LAST).is_file()


def test_a_read_only_project_is_refused_with_the_reason(tiny_project, cli_run) -> None:
    path = tiny_project()
    before = path.read_bytes()
    path.chmod(stat.S_IRUSR | stat.S_IRGRP | stat.S_IROTH)  # 0444
    project = load_project(path)
    project.description = "changed"
    with pytest.raises(ProjectError, match=r"^tiny\.dlstudio: cannot save: the file is read-only"):
        save_project(project, path)
    assert path.read_bytes() == before
    code, _, err = cli_run("train", path)
    assert code == 2 and "tiny.dlstudio: cannot save: the file is read-only" in err, err
    assert path.read_bytes() == before and stat.S_IMODE(path.stat().st_mode) == 0o444


def test_saving_keeps_the_permissions_of_the_file_it_replaces(tiny_project) -> None:
    path = tiny_project()
    path.chmod(0o640)
    save_project(load_project(path), path)
    assert stat.S_IMODE(path.stat().st_mode) == 0o640

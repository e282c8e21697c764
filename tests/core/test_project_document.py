"""The project document: a project owns its runs folder; Save As gives the copy its own runs; deletes stay inside."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from dlstudio.core.errors import ProjectError
from dlstudio.core.project import Project, ProjectDocument, copy_runs, load_project, save_project
from dlstudio.core.training.runs import STATUS_MISSING, summarize_run


def _project_with_runs(folder: Path, name: str = "digits", runs: tuple[str, ...] = ("20261201-100000",)) -> Project:
    """A saved project listing run folders that hold a settings file, a metrics file and a checkpoint."""
    project = Project(path=folder / f"{name}.dlstudio")
    for stamp in runs:
        run_dir = folder / f"{name}.runs" / stamp
        run_dir.mkdir(parents=True)
        (run_dir / "settings.json").write_text('{"training": {"epochs": 1}}\n')
        (run_dir / "metrics.csv").write_text("epoch,train_loss\n1,0.5\n")
        (run_dir / "best.pt").write_bytes(b"weights of " + stamp.encode())
        project.runs.append(f"{name}.runs/{stamp}")
    save_project(project, project.path)
    return project


def test_a_project_opens_on_its_latest_run(tmp_path: Path) -> None:
    project = _project_with_runs(tmp_path, runs=("20261201-100000", "20261202-100000"))
    document = ProjectDocument(load_project(project.path))
    assert document.current_run == tmp_path / "digits.runs" / "20261202-100000"
    assert document.runs_folder() == tmp_path / "digits.runs"
    assert ProjectDocument(Project()).current_run is None


def test_save_as_copies_the_runs_and_deleting_in_the_copy_leaves_the_original_intact(tmp_path: Path) -> None:
    original = _project_with_runs(tmp_path)
    original_run = tmp_path / "digits.runs" / "20261201-100000"
    copy_path = tmp_path / "copy.dlstudio"

    copy = load_project(original.path)
    copy.runs = copy_runs(copy, copy_path)
    save_project(copy, copy_path)

    assert copy.runs == ["copy.runs/20261201-100000"]
    copied_run = tmp_path / "copy.runs" / "20261201-100000"
    assert (copied_run / "best.pt").read_bytes() == b"weights of 20261201-100000"
    assert (copied_run / "metrics.csv").read_text() == (original_run / "metrics.csv").read_text()

    document = ProjectDocument(load_project(copy_path))
    document.delete_run(copied_run)
    assert not copied_run.exists()
    assert document.project.runs == []
    # The original's folder, its checkpoint and its list are untouched.
    assert (original_run / "best.pt").read_bytes() == b"weights of 20261201-100000"
    assert (original_run / "settings.json").is_file()
    assert load_project(original.path).runs == ["digits.runs/20261201-100000"]


def test_copied_checkpoints_share_their_bytes_where_the_file_system_allows(tmp_path: Path) -> None:
    original = _project_with_runs(tmp_path)
    copy_runs(original, tmp_path / "copy.dlstudio")
    source = tmp_path / "digits.runs" / "20261201-100000" / "best.pt"
    copied = tmp_path / "copy.runs" / "20261201-100000" / "best.pt"
    assert os.path.samefile(source, copied) or copied.read_bytes() == source.read_bytes()
    assert not os.path.samefile(source.with_name("metrics.csv"), copied.with_name("metrics.csv"))


def test_a_run_outside_the_projects_runs_folder_is_never_deleted(tmp_path: Path) -> None:
    other = _project_with_runs(tmp_path, name="other")
    foreign = tmp_path / "other.runs" / "20261201-100000"
    project = Project(path=tmp_path / "mine.dlstudio", runs=["other.runs/20261201-100000", "../elsewhere"])
    document = ProjectDocument(project)

    with pytest.raises(ProjectError, match="not in this project's runs folder"):
        document.delete_run(foreign)
    with pytest.raises(ProjectError, match="not in this project's runs folder"):
        document.delete_run(tmp_path.parent / "elsewhere")
    assert (foreign / "best.pt").is_file()
    assert load_project(other.path).runs == ["other.runs/20261201-100000"]
    # It can be taken off the list, and its files stay.
    assert document.forget_run(foreign)
    assert document.project.runs == ["../elsewhere"]
    assert (foreign / "best.pt").is_file()


def test_a_link_planted_in_the_runs_folder_is_not_followed_by_a_delete(tmp_path: Path) -> None:
    _project_with_runs(tmp_path, name="other")
    victim = tmp_path / "other.runs" / "20261201-100000"
    (tmp_path / "mine.runs").mkdir()
    link = tmp_path / "mine.runs" / "20261201-100000"
    link.symlink_to(victim, target_is_directory=True)
    document = ProjectDocument(Project(path=tmp_path / "mine.dlstudio", runs=["mine.runs/20261201-100000"]))
    with pytest.raises(ProjectError):
        document.delete_run(link)
    assert (victim / "best.pt").is_file()


def test_the_run_being_trained_cannot_be_deleted_or_forgotten(tmp_path: Path) -> None:
    project = _project_with_runs(tmp_path)
    document = ProjectDocument(project)
    run_dir = document.run_dirs()[0]
    document.training_run = run_dir
    with pytest.raises(ProjectError, match="training"):
        document.delete_run(run_dir)
    with pytest.raises(ProjectError, match="training"):
        document.forget_run(run_dir)
    assert run_dir.is_dir()


def test_a_listed_run_whose_folder_is_gone_is_missing_not_damaged_and_can_be_forgotten(tmp_path: Path) -> None:
    project = _project_with_runs(tmp_path, runs=("20261201-100000", "20261202-100000"))
    gone = tmp_path / "digits.runs" / "20261202-100000"
    for child in gone.iterdir():
        child.unlink()
    gone.rmdir()
    summary = summarize_run(gone)
    assert summary["status"] == STATUS_MISSING
    assert "no longer on disk" in summary["message"]
    assert not summary["resumable"]

    document = ProjectDocument(load_project(project.path))
    assert document.current_run == gone
    events = []
    document.current_run_changed.connect(events.append)
    document.delete_run(gone)  # already gone: only the list changes
    assert document.project.runs == ["digits.runs/20261201-100000"]
    assert document.current_run == tmp_path / "digits.runs" / "20261201-100000"
    assert events == [document.current_run]

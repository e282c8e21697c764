"""The open project as one document: the project and the runs it owns (no Qt, no torch).

A window holds exactly one :class:`ProjectDocument` and replaces it whole on
New, Open and Open Recent, so nothing of one project (the run being shown,
the run being trained, the model being inspected) outlives it in another.

A project owns one runs folder, ``NAME.runs/`` beside ``NAME.dlstudio``.
Runs are recorded relative to the project file, so a list copied with the
project (Save As) would point into the original's folder: :func:`copy_runs`
gives the copy runs of its own, and :meth:`ProjectDocument.delete_run`
deletes nothing outside the project's own runs folder.
"""

from __future__ import annotations

import os
import shutil
from pathlib import Path

from dlstudio.core.errors import ProjectError
from dlstudio.core.events import Event
from dlstudio.core.project.model import Project

RUNS_SUFFIX = ".runs"
# Checkpoints are the large files of a run: a copy shares them with the original where the file
# system allows (a hard link: no extra space, and deleting either folder leaves the other intact).
_LINKED_SUFFIXES = (".pt", ".safetensors")


def runs_folder(project_path: Path) -> Path:
    """``model.dlstudio`` -> ``model.runs`` beside it."""
    project_path = Path(project_path)
    return project_path.with_name(project_path.stem + RUNS_SUFFIX)


class ProjectDocument:
    """One open project: its :class:`Project`, where its runs are, which run is shown and which trains.

    ``current_run`` is the run the Training panel, the curves, the confusion
    matrix and the Inspect dock show (the latest one when a project opens);
    ``training_run`` is the folder a run is writing now (None when nothing
    trains). Both are absolute folders. Events: ``current_run_changed(run_dir)``
    and ``runs_changed()`` after a run was recorded, deleted or removed from the list.
    """

    def __init__(self, project: Project | None = None) -> None:
        self.project = project if project is not None else Project()
        self.current_run: Path | None = None
        self.training_run: Path | None = None
        # Entries taken off the list (deleted or removed) since the project was opened: a merge with the
        # file on disk must not bring them back.
        self.forgotten_runs: set[str] = set()
        self.current_run_changed = Event("current_run_changed")
        self.runs_changed = Event("runs_changed")
        self.current_run = self.latest_run()

    # -- where things are ----------------------------------------------------

    @property
    def path(self) -> Path | None:
        return self.project.path

    @property
    def name(self) -> str:
        return self.project.name

    def runs_folder(self) -> Path | None:
        """The folder this project's runs are written to (None while untitled)."""
        return runs_folder(self.path) if self.path is not None else None

    def run_dir(self, entry: str) -> Path:
        """The absolute folder of a ``project.runs`` entry."""
        path = Path(entry)
        if path.is_absolute() or self.path is None:
            return path
        return self.path.parent / path

    def run_dirs(self) -> list[Path]:
        """The runs listed in the project, oldest first, as absolute folders."""
        return [self.run_dir(entry) for entry in self.project.runs]

    def latest_run(self) -> Path | None:
        runs = self.run_dirs()
        return runs[-1] if runs else None

    def owns(self, run_dir: Path | str) -> bool:
        """Whether ``run_dir`` is a folder directly inside this project's own runs folder (not a link to elsewhere)."""
        folder = self.runs_folder()
        if folder is None:
            return False
        run_dir = Path(run_dir)
        if run_dir.is_symlink():
            return False
        try:
            return run_dir.resolve().parent == folder.resolve() and run_dir.name not in ("", ".", "..")
        except OSError:
            return False

    def entry_of(self, run_dir: Path | str) -> str | None:
        """The ``project.runs`` entry that names ``run_dir``, if it is listed."""
        wanted = _normalized(Path(run_dir))
        return next((entry for entry in self.project.runs if _normalized(self.run_dir(entry)) == wanted), None)

    # -- the run shown and the run training ------------------------------------

    def set_current_run(self, run_dir: Path | str | None) -> None:
        run_dir = Path(run_dir) if run_dir is not None else None
        if run_dir == self.current_run:
            return
        self.current_run = run_dir
        self.current_run_changed.emit(run_dir)

    def is_training(self, run_dir: Path | str) -> bool:
        return self.training_run is not None and _normalized(Path(run_dir)) == _normalized(self.training_run)

    # -- removing runs ---------------------------------------------------------

    def delete_blocked_reason(self, run_dir: Path | str) -> str:
        """Why deleting ``run_dir`` from disk is refused ("" when it may be deleted)."""
        run_dir = Path(run_dir)
        if self.is_training(run_dir):
            return f"The run {run_dir.name} is training and writing its folder: stop it before deleting it."
        folder = self.runs_folder()
        if folder is None:
            return "The project is not saved, so it has no runs folder."
        if not self.owns(run_dir):
            return (f"The run {run_dir.name} is not in this project's runs folder ({folder.name}); "
                    "it can only be removed from the list.")
        return ""

    def delete_run(self, run_dir: Path | str) -> None:
        """Delete a run's folder (inside the project's own runs folder only) and forget it.

        Raises ProjectError with the reason when it is refused or the folder cannot be deleted.
        A folder already gone is simply forgotten.
        """
        run_dir = Path(run_dir)
        reason = self.delete_blocked_reason(run_dir)
        if reason:
            raise ProjectError(reason)
        try:
            shutil.rmtree(run_dir)
        except FileNotFoundError:
            pass
        except OSError as error:
            raise ProjectError(f"cannot delete the run {run_dir.name}: {error.strerror or error}") from error
        self.forget_run(run_dir)

    def forget_run(self, run_dir: Path | str) -> bool:
        """Remove ``run_dir`` from the project's list (its files are left alone); False if it was not listed."""
        run_dir = Path(run_dir)
        if self.is_training(run_dir):
            raise ProjectError(f"The run {run_dir.name} is training: stop it before removing it from the list.")
        entry = self.entry_of(run_dir)
        if entry is None:
            return False
        self.project.runs.remove(entry)
        self.forgotten_runs.add(entry)
        if self.current_run is not None and _normalized(self.current_run) == _normalized(run_dir):
            self.set_current_run(self.latest_run())
        self.runs_changed.emit()
        return True


def copy_runs(project: Project, new_path: Path) -> list[str]:
    """Give a copy of ``project`` saved as ``new_path`` runs of its own; returns its ``runs`` list.

    Each listed run that exists is copied into ``NEW.runs/`` (checkpoints
    hard-linked where the file system allows, copied otherwise); runs missing
    on disk are not listed in the copy. Nothing of the original's folder is
    changed. The copy's entries are relative to ``new_path``.
    """
    new_path = Path(new_path)
    old = ProjectDocument(project)
    target = runs_folder(new_path)
    entries: list[str] = []
    for run_dir in old.run_dirs():
        if not run_dir.is_dir() or run_dir.is_symlink():
            continue
        if _normalized(run_dir.parent) == _normalized(target):
            destination = run_dir  # already in the new runs folder (saved over itself)
        else:
            target.mkdir(parents=True, exist_ok=True)
            destination = _free_name(target, run_dir.name)
            shutil.copytree(run_dir, destination, symlinks=True, copy_function=_link_or_copy)
        entries.append(Path(os.path.relpath(destination, new_path.parent)).as_posix())
    return entries


def _link_or_copy(source: str, destination: str) -> None:
    if source.endswith(_LINKED_SUFFIXES):
        try:
            os.link(source, destination)
            return
        except OSError:
            pass  # another file system, or links not allowed: a real copy
    shutil.copy2(source, destination)


def _free_name(folder: Path, name: str) -> Path:
    candidate = folder / name
    number = 2
    while candidate.exists() or candidate.is_symlink():
        candidate = folder / f"{name}-{number}"
        number += 1
    return candidate


def _normalized(path: Path) -> Path:
    try:
        return path.resolve()
    except OSError:
        return path.absolute()

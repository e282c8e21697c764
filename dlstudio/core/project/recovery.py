"""Crash recovery: copies of unsaved projects in the user's data folder, never over the user's file (no Qt).

A window autosaves its unsaved changes here (``RecoveryStore.save``) and
removes its copy when the project is saved or the window closes cleanly
(``discard``). A copy whose window process is gone (a crash, a kill) is
offered on the next launch (``orphans``); restoring it gives back the
graph, layout and settings exactly, with the path of the file it belongs to.
"""

from __future__ import annotations

import json
import os
import uuid
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path

from dlstudio.core.errors import DlstudioError
from dlstudio.core.project.fileformat import project_from_json, project_to_json
from dlstudio.core.project.model import Project
from dlstudio.core.safe_io import write_json, write_text

_SUFFIX = ".dlstudio"
_META_SUFFIX = ".json"


def default_folder() -> Path:
    """``recovery/`` in the user's data folder (platformdirs; XDG_DATA_HOME on Linux)."""
    from platformdirs import user_data_dir

    return Path(user_data_dir("dlstudio", appauthor=False)) / "recovery"


@dataclass(frozen=True)
class Recoverable:
    """One autosaved copy: its key, the file it belongs to (None: untitled), its name and when it was saved."""

    key: str
    original: Path | None
    name: str
    saved_at: datetime
    pid: int

    def describe(self) -> str:
        where = f" ({self.original})" if self.original is not None else ""
        return f"{self.name}{where}, autosaved {self.saved_at:%Y-%m-%d %H:%M}"


class RecoveryStore:
    """The recovery folder; each window writes under its own key."""

    def __init__(self, folder: Path | None = None) -> None:
        self.folder = Path(folder) if folder is not None else default_folder()

    @staticmethod
    def new_key() -> str:
        return uuid.uuid4().hex

    def save(self, key: str, project: Project) -> Path:
        """Write ``project`` (as its file would hold it) and what it belongs to. Raises DlstudioError."""
        self.folder.mkdir(parents=True, exist_ok=True)
        path = self.folder / f"{key}{_SUFFIX}"
        write_text(path, project_to_json(project))
        write_json(self.folder / f"{key}{_META_SUFFIX}", {
            "original": str(project.path) if project.path is not None else None,
            "name": project.name, "saved_at": datetime.now().isoformat(timespec="seconds"), "pid": os.getpid()})
        return path

    def discard(self, key: str) -> None:
        for suffix in (_SUFFIX, _META_SUFFIX):
            try:
                (self.folder / f"{key}{suffix}").unlink()
            except FileNotFoundError:
                pass

    def entries(self) -> list[Recoverable]:
        """Every readable copy, newest first (damaged ones are skipped)."""
        found = []
        for meta_path in self.folder.glob(f"*{_META_SUFFIX}"):
            key = meta_path.stem
            if not (self.folder / f"{key}{_SUFFIX}").is_file():
                continue
            try:
                meta = json.loads(meta_path.read_text(encoding="utf-8"))
                original = Path(meta["original"]) if meta.get("original") else None
                found.append(Recoverable(key, original, str(meta["name"]), datetime.fromisoformat(meta["saved_at"]),
                                         int(meta["pid"])))
            except (OSError, ValueError, KeyError, TypeError):
                continue
        return sorted(found, key=lambda entry: entry.saved_at, reverse=True)

    def orphans(self) -> list[Recoverable]:
        """Copies whose window is gone: what a crash left to restore (not those of windows still running).

        Asked at launch, before this process has autosaved anything: a copy carrying this process's
        pid was left by an earlier process that had the same number.
        """
        return [entry for entry in self.entries() if entry.pid == os.getpid() or not _alive(entry.pid)]

    def restore(self, entry: Recoverable) -> Project:
        """The autosaved project, its path the file it belongs to. Raises DlstudioError if it cannot be read."""
        path = self.folder / f"{entry.key}{_SUFFIX}"
        try:
            text = path.read_text(encoding="utf-8")
        except OSError as error:
            raise DlstudioError(f"cannot read the autosaved copy of {entry.name}: {error.strerror}") from error
        project = project_from_json(text, source=f"autosaved {entry.name}")
        project.path = entry.original
        if entry.original is None:
            project.untitled_name = entry.name
        return project


def _alive(pid: int) -> bool:
    if pid <= 0:
        return False
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    except OSError:
        return False
    return True

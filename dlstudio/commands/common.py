"""What the subcommands share: loading a project, writing files, formatting numbers."""

from __future__ import annotations

from pathlib import Path

from dlstudio.core.errors import DlstudioError
from dlstudio.core.project.model import Project


class CommandError(DlstudioError):
    """A subcommand was refused; the CLI prints the message as ``dlstudio: error: <message>``."""


def load(path: str) -> Project:
    """The project at ``path``; ProjectError (naming the file) if it cannot be read."""
    from dlstudio.core.project import load_project

    return load_project(path)


def check_writable(path: Path, force: bool) -> None:
    """Refuse to overwrite an existing file unless ``force``."""
    if path.is_dir():
        raise CommandError(f"{path} is a folder; give a file name")
    if path.exists() and not force:
        raise CommandError(f"{path} already exists (use --force to overwrite it)")


def thousands(number: int) -> str:
    """``61706`` -> ``"61,706"``."""
    return f"{number:,}"


def one_line(text: str) -> str:
    return " ".join(text.split())

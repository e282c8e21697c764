"""What the subcommands share: loading a project, writing files, formatting numbers."""

from __future__ import annotations

import signal
import sys
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

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


@contextmanager
def ctrl_c_stops(control: Any, stopping: str | None = "stopping after this batch") -> Iterator[None]:
    """The first Ctrl+C (or SIGTERM, e.g. from ``kill`` or a job scheduler) asks ``control`` for a clean stop
    after the current batch, which leaves a resumable checkpoint; a second one aborts.

    ``stopping`` is what the first one prints (None: nothing, for the ranks after 0 under torchrun).
    Outside the main thread (where Python delivers signals) it does nothing.
    """
    if threading.current_thread() is not threading.main_thread():
        yield
        return

    def on_signal(signum: int, frame: Any) -> None:
        if control.stop_requested:
            raise KeyboardInterrupt
        again = "Ctrl+C" if signum == signal.SIGINT else "another signal"
        if stopping is not None:
            print(f"\n{stopping} ({again} again to abort)", file=sys.stderr)
        control.stop()

    handled = [signal.SIGINT] + ([signal.SIGTERM] if hasattr(signal, "SIGTERM") else [])
    previous = {signum: signal.signal(signum, on_signal) for signum in handled}
    try:
        yield
    finally:
        for signum, handler in previous.items():
            signal.signal(signum, handler)

"""What a data source gives back: samples as tensors, labels, class names, skipped files."""

from __future__ import annotations

import contextlib
import json
import os
import stat
from collections.abc import Iterable
from dataclasses import dataclass, field
from pathlib import Path

import torch


@dataclass(frozen=True)
class SkippedFile:
    """A file a source could not read, with the reason (shown to the user, never dropped silently)."""

    path: str
    reason: str


class SkippedFiles(list[SkippedFile]):
    """The skipped files of a prepared dataset, each path once; files found while streaming are added too.

    :meth:`log_to` writes them to a file (one JSON object per line, ``path`` and
    ``reason``) and appends every file added later at once, so a run folder
    lists them even when the run is killed.
    """

    def __init__(self, entries: Iterable[SkippedFile] = ()) -> None:
        super().__init__()
        self.log: Path | None = None
        self.add(entries)

    def add(self, entries: Iterable[SkippedFile]) -> list[SkippedFile]:
        """Add the entries whose path is not listed yet; returns those added."""
        known = {entry.path for entry in self}
        added = []
        for entry in entries:
            if entry.path not in known:
                known.add(entry.path)
                added.append(entry)
        self.extend(added)
        if added and self.log is not None:
            _append_lines(self.log, added)
        return added

    def log_to(self, path: Path | str) -> None:
        """Write the entries to ``path`` (keeping those a resumed run's file lists already) and every later one."""
        path = Path(path)
        logged = set()
        if path.is_file() and not path.is_symlink():
            for line in path.read_text(encoding="utf-8", errors="replace").splitlines():
                try:
                    logged.add(json.loads(line)["path"])
                except (ValueError, KeyError, TypeError):
                    continue
        self.log = path
        _append_lines(path, [entry for entry in self if entry.path not in logged])


def _append_lines(path: Path, entries: list[SkippedFile]) -> None:
    """Append entries to the log; a log that cannot be written (a planted link, a full disk) is left as it is:
    the entries stay listed in memory and training goes on."""
    if not entries:
        return
    flags = os.O_WRONLY | os.O_APPEND | os.O_CREAT | getattr(os, "O_NOFOLLOW", 0) | getattr(os, "O_CLOEXEC", 0)
    try:
        descriptor = os.open(path, flags, 0o644)  # O_NOFOLLOW: never through a link planted in the run folder
    except OSError:
        return
    try:
        if not stat.S_ISREG(os.fstat(descriptor).st_mode):
            return
        text = "".join(json.dumps({"path": entry.path, "reason": entry.reason}) + "\n" for entry in entries)
        with contextlib.suppress(OSError):
            os.write(descriptor, text.encode("utf-8", errors="surrogateescape"))
    finally:
        os.close(descriptor)


@dataclass
class LabeledTensors:
    """A whole dataset held in memory.

    ``raw`` holds the samples as loaded, shaped (N, *sample_shape): uint8
    pixels 0..255 for image folders (4x less memory than float32), float32 in
    [0, 1] for other images, raw feature values for tables. ``x`` gives them
    as float32 (images in [0, 1]). ``y`` holds int64 class indices into
    ``class_names``. ``fixed_test`` marks samples that belong to a source's
    official test split (torchvision datasets); None when the source has none.
    ``notes`` are one-line remarks about how the data was read (a guessed
    encoding), shown beside it; they do not stop training.
    """

    raw: torch.Tensor
    y: torch.Tensor
    class_names: list[str]
    skipped: list[SkippedFile] = field(default_factory=list)
    fixed_test: torch.Tensor | None = None
    notes: list[str] = field(default_factory=list)

    @property
    def x(self) -> torch.Tensor:
        """All samples as float32 (a new tensor for uint8 pixels: 4x their memory)."""
        return self.raw.float().div_(255.0) if self.raw.dtype == torch.uint8 else self.raw

    def __len__(self) -> int:
        return int(self.raw.shape[0])

    def class_counts(self) -> list[int]:
        """Samples per class, in the order of ``class_names``."""
        return torch.bincount(self.y, minlength=len(self.class_names)).tolist()

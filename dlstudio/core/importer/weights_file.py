"""An imported network's own weights as a file (torch and safetensors only where tensors are made; no Qt).

An ONNX file carries its weights; the project file never holds tensors, so an import writes them as a
``.weights.safetensors`` file and names it as the project's starting weights (keys are the compiled
graph's own, so they load by name). The command line writes ``NAME.weights.safetensors`` beside the
project it writes. The window imports into an unsaved project, for which the person has chosen no folder
yet: the file goes to ``imported weights/`` in the user's data folder, and the first save copies it beside
the project (:func:`weights_for_saving`), which is also where a Save As re-points a weights path written
relative to the old folder.
"""

from __future__ import annotations

import hashlib
import os
import time
from pathlib import Path
from typing import Any

from dlstudio.core.project.pretrained import WeightsSource

WEIGHTS_FILE_SUFFIX = ".weights.safetensors"
STASH_DAYS = 30
"""Imported weights never saved with a project are removed after this many days (at the next import)."""


def imported_state(result: Any) -> dict[str, Any]:
    """The import's weights keyed like the compiled graph: detached, contiguous CPU tensors."""
    from dlstudio.core.compiler import compile_graph

    compiled = compile_graph(result.project.graph)
    return {key: value.detach().cpu().contiguous() for key, value in result.state_dict_for(compiled).items()}


def weights_file_for(project_path: str | Path) -> Path:
    """``NAME.weights.safetensors`` beside ``NAME.dlstudio``."""
    project_path = Path(project_path)
    return project_path.with_name(project_path.stem + WEIGHTS_FILE_SUFFIX)


def write_weights_beside(state: dict[str, Any], project_path: str | Path) -> WeightsSource:
    """Write ``state`` beside the project (atomically; a planted link is refused, not followed) and return
    the source naming it relative to the project, so the two move together."""
    target = weights_file_for(project_path)
    _write(state, target)
    return WeightsSource("file", path=target.name)


def stash_folder() -> Path:
    """``imported weights/`` in the user's data folder (platformdirs; XDG_DATA_HOME on Linux)."""
    from platformdirs import user_data_dir

    return Path(user_data_dir("dlstudio", appauthor=False)) / "imported weights"


def stash_weights(state: dict[str, Any], origin: str) -> WeightsSource:
    """Keep an unsaved import's weights in :func:`stash_folder` as ``ORIGIN-HASH.weights.safetensors``;
    the source names the file by its absolute path until the project is saved."""
    folder = stash_folder()
    folder.mkdir(parents=True, exist_ok=True)
    _forget_old_stashes(folder)
    stem = Path(origin).stem or "imported"
    digest = hashlib.sha256(f"{origin}:{time.time_ns()}:{os.getpid()}".encode()).hexdigest()[:10]
    target = folder / f"{stem}-{digest}{WEIGHTS_FILE_SUFFIX}"
    _write(state, target)
    return WeightsSource("file", path=str(target))


def is_stashed(source: WeightsSource | None) -> bool:
    """Whether ``source`` is an unsaved import's weights in the stash folder."""
    if source is None or source.kind != "file" or not os.path.isabs(source.path):
        return False
    return Path(source.path).parent == stash_folder()


def weights_for_saving(source: WeightsSource | None, old_path: Path | None, new_path: Path) -> WeightsSource | None:
    """The weights source a project saved as ``new_path`` (before: ``old_path``, None if never saved) carries.

    Stashed imported weights are copied beside the new file and named relatively; a file or run path
    written relative to the old folder points to the same place from the new one (relative when it lies
    inside the new folder, absolute otherwise). Raises WriteError when the copy cannot be written.
    """
    if source is None or source.kind == "torchvision":
        return source
    if is_stashed(source):
        target = weights_file_for(new_path)
        _copy(Path(source.path), target)
        return WeightsSource("file", path=target.name, key_map=dict(source.key_map))
    new_folder = Path(new_path).parent
    if old_path is None or os.path.isabs(source.path) or Path(old_path).parent == new_folder:
        return source
    where = Path(os.path.normpath(Path(old_path).parent / source.path))
    try:
        inside = where.resolve().is_relative_to(new_folder.resolve())
        path = Path(os.path.relpath(where, new_folder)).as_posix() if inside else str(where)
    except ValueError:  # another drive
        path = str(where)
    return WeightsSource(source.kind, path=path, key_map=dict(source.key_map))


def _write(state: dict[str, Any], target: Path) -> None:
    from safetensors.torch import save

    from dlstudio.core.safe_io import write_file

    write_file(target, save(state))


def _copy(source: Path, target: Path) -> None:
    import shutil

    from dlstudio.core.safe_io import write_file

    if source == target:
        return
    with open(source, "rb") as stream:
        write_file(target, lambda sink: shutil.copyfileobj(stream, sink), size_hint=source.stat().st_size)


def _forget_old_stashes(folder: Path) -> None:
    cutoff = time.time() - STASH_DAYS * 86_400
    for path in folder.glob(f"*{WEIGHTS_FILE_SUFFIX}"):
        try:
            if path.is_file() and not path.is_symlink() and path.stat().st_mtime < cutoff:
                path.unlink()
        except OSError:
            pass  # another window removed it, or it is not ours to remove: left as it is

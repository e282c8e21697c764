"""Checkpoint files: tensors, dicts, lists, numbers and strings only, loaded with ``weights_only=True``.

Random generator states are converted to tensors and lists (never pickled
objects), so a checkpoint from anywhere can be opened without running code.
"""

from __future__ import annotations

import random
from pathlib import Path
from typing import Any

import numpy as np
import torch

from dlstudio.core.errors import DlstudioError
from dlstudio.core.safe_io import write_file

CHECKPOINT_FORMAT = "dlstudio-checkpoint"
CHECKPOINT_VERSION = 1
LAST = "last.pt"
BEST = "best.pt"


class CheckpointError(DlstudioError):
    """A checkpoint could not be read or does not belong to this model."""


def capture_rng(shuffle: torch.Generator) -> dict[str, Any]:
    """The state of every generator training draws from: torch (CPU and CUDA), numpy, Python, shuffling."""
    kind, keys, position, has_gauss, cached = np.random.get_state()
    version, internal, gauss = random.getstate()
    state: dict[str, Any] = {
        "torch": torch.get_rng_state(),
        "shuffle": shuffle.get_state(),
        "numpy": {"kind": str(kind), "keys": torch.from_numpy(np.asarray(keys, dtype=np.int64)),
                  "position": int(position), "has_gauss": int(has_gauss), "cached_gaussian": float(cached)},
        "python": {"version": int(version), "internal": list(internal), "gauss": gauss},
    }
    if torch.cuda.is_available() and torch.cuda.is_initialized():
        state["cuda"] = torch.cuda.get_rng_state_all()
    return state


def restore_rng(state: dict[str, Any], shuffle: torch.Generator) -> None:
    """Put back what :func:`capture_rng` took."""
    torch.set_rng_state(state["torch"])
    shuffle.set_state(state["shuffle"])
    numpy_state = state["numpy"]
    np.random.set_state((numpy_state["kind"], numpy_state["keys"].numpy().astype(np.uint32),
                         numpy_state["position"], numpy_state["has_gauss"], numpy_state["cached_gaussian"]))
    python_state = state["python"]
    random.setstate((python_state["version"], tuple(python_state["internal"]), python_state["gauss"]))
    if "cuda" in state and torch.cuda.is_available():
        torch.cuda.set_rng_state_all(state["cuda"])


def save_checkpoint(state: dict[str, Any], path: Path) -> None:
    """Write ``state`` through the guarded writer (:func:`dlstudio.core.safe_io.write_file`).

    A unique temporary file, fsynced, then renamed over ``path``: a crash or a
    full disk never leaves half a file nor a temporary one, and the previous
    checkpoint stays. Raises DiskFullError ("disk full: N MB needed in FOLDER")
    or WriteError; never follows a link planted at ``path``.
    """
    path.parent.mkdir(parents=True, exist_ok=True)
    document = {"format": CHECKPOINT_FORMAT, "version": CHECKPOINT_VERSION, **state}
    write_file(path, lambda stream: torch.save(document, stream), size_hint=lambda: _tensor_bytes(document))


def _tensor_bytes(value: Any) -> int:
    """About the size of a checkpoint of ``value``: its tensors' bytes (asked only after a full disk)."""
    if isinstance(value, torch.Tensor):
        return value.numel() * value.element_size()
    if isinstance(value, dict):
        return sum(_tensor_bytes(item) for item in value.values()) + 64 * len(value)
    if isinstance(value, (list, tuple)):
        return sum(_tensor_bytes(item) for item in value) + 8 * len(value)
    return 16


def load_checkpoint(path: Path | str, map_location: str | torch.device = "cpu") -> dict[str, Any]:
    """Read a checkpoint safely (``weights_only=True``); CheckpointError with a one-line reason otherwise."""
    path = Path(path)
    if path.is_dir():
        path = path / LAST
    if not path.is_file():
        raise CheckpointError(f"no checkpoint at {str(path)!r}")
    try:
        state = torch.load(path, map_location=map_location, weights_only=True)
    except Exception as error:  # noqa: BLE001 - torch raises UnpicklingError, RuntimeError, EOFError, ...
        # A reason in plain words, never the exception's class name (design.md §12).
        reason = (error.strerror if isinstance(error, OSError) and error.strerror
                  else "the file is damaged or is not a checkpoint")
        raise CheckpointError(f"cannot read the checkpoint {str(path)!r}: {reason}") from None
    if not isinstance(state, dict) or state.get("format") != CHECKPOINT_FORMAT:
        raise CheckpointError(f"{str(path)!r} is not a dlstudio checkpoint")
    if state.get("version", 0) > CHECKPOINT_VERSION:
        raise CheckpointError(f"{str(path)!r} was written by a newer dlstudio (checkpoint version "
                              f"{state['version']}); update dlstudio to read it")
    return state

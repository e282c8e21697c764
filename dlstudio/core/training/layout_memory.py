"""The layout tuner's remembered verdicts, so that the second run of a network starts in the faster layout.

A CPU run with ``channels_last: auto`` compares contiguous and channels-last
while it trains (:mod:`dlstudio.core.training.layout`). Most runs people
start are short, and a short run spends a good share of its steps comparing
(or, before, did not compare at all). The verdict of a comparison is kept in
the user's data folder (``layout_verdicts.json``), keyed by what decides which
layout is faster: the network (module types, their parameters and the
wiring), the input shape, the batch size, the device type, the number of
torch threads and the torch version. A damaged or unreadable file is ignored
(and replaced by the next verdict); the file keeps the newest
:data:`MAX_ENTRIES` verdicts.
"""

from __future__ import annotations

import hashlib
import json
import time
from pathlib import Path
from typing import Any

import torch

from dlstudio.core.errors import DlstudioError
from dlstudio.core.safe_io import read_limited, write_json

FILE_NAME = "layout_verdicts.json"
MAX_ENTRIES = 500
# A file this large was not written by dlstudio (500 entries take ~100 KB): ignored.
MAX_FILE_BYTES = 4 << 20
FORMAT = 1


def memory_path() -> Path:
    """``layout_verdicts.json`` in the user's data folder (platformdirs; XDG_DATA_HOME on Linux)."""
    from platformdirs import user_data_dir

    return Path(user_data_dir("dlstudio", appauthor=False)) / FILE_NAME


def architecture_signature(model: torch.nn.Module, sample_shape: tuple[int, ...]) -> str:
    """A hash of what the network computes with (not its weights' values, nor its node ids).

    Every module in order with its type and parameters (``extra_repr``: kernel
    sizes, channels, strides...), which parameters train (frozen layers skip
    their backward pass), and for a compiled graph the wiring between its steps.
    """
    parts: list[str] = [type(model).__qualname__, repr(tuple(sample_shape))]
    for module in model.modules():
        trains = "".join("t" if p.requires_grad else "f" for p in module.parameters(recurse=False))
        parts.append(f"{type(module).__qualname__}({module.extra_repr()})[{trains}]")
    steps = getattr(model, "steps", None)  # a compiled graph's wiring: which slots each step reads
    if isinstance(steps, tuple):
        parts.extend(f"{getattr(s, 'input_slots', '')}->{getattr(s, 'output_slot', '')}" for s in steps)
    return hashlib.sha256("\n".join(parts).encode()).hexdigest()[:32]


def verdict_key(signature: str, batch_size: int, device: torch.device) -> str:
    """The memory's key: the network, the batch size and where and with what it runs."""
    return "|".join((signature, f"batch={batch_size}", f"device={device.type}",
                     f"threads={torch.get_num_threads()}", f"torch={torch.__version__}"))


def _read(path: Path) -> dict[str, dict[str, Any]]:
    """The verdicts in the file; empty when it is missing, damaged or not ours."""
    try:
        document = json.loads(read_limited(path, MAX_FILE_BYTES, "layout memory"))
    except (OSError, ValueError, DlstudioError):
        return {}
    if not isinstance(document, dict) or document.get("format") != FORMAT:
        return {}
    verdicts = document.get("verdicts")
    if not isinstance(verdicts, dict):
        return {}
    return {key: value for key, value in verdicts.items()
            if isinstance(key, str) and isinstance(value, dict) and isinstance(value.get("channels_last"), bool)}


def recall(key: str, path: Path | None = None) -> bool | None:
    """The remembered layout for ``key`` (True: channels-last), None when there is none."""
    entry = _read(path or memory_path()).get(key)
    return None if entry is None else entry["channels_last"]


def remember(key: str, channels_last: bool, speedup: float | None, pairs: int, path: Path | None = None) -> bool:
    """Store a verdict (the newest :data:`MAX_ENTRIES` are kept); False when the file could not be written.

    ``speedup``: the measured ratio (contiguous seconds / channels-last seconds).
    Failing to remember never fails a run: the next run compares again.
    """
    path = path or memory_path()
    verdicts = _read(path)
    verdicts.pop(key, None)  # re-inserted last: the newest
    verdicts[key] = {"channels_last": channels_last, "speedup": speedup, "pairs": pairs,
                     "when": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime())}
    kept = dict(list(verdicts.items())[-MAX_ENTRIES:])
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        write_json(path, {"format": FORMAT, "verdicts": kept})
    except (OSError, DlstudioError):
        return False
    return True

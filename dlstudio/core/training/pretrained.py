"""Starting weights for a compiled graph (torch; no Qt): torchvision's, a weights file's, or an earlier run's.

A project names where its starting weights come from (:class:`~dlstudio.core.project.pretrained.WeightsSource`);
when a run starts, :func:`load_weights` reads them and copies every tensor whose key exists in the compiled
:class:`~dlstudio.core.compiler.GraphModule` with the same shape. Nothing else loads, and everything that did
not load is listed by node name with the reason, e.g. a classification head resized for the data:
"fc: shape (1000, 512) vs (5, 512)".

Files are read without running code: ``torch.load(..., weights_only=True)`` or safetensors. Torchvision's
weights are looked for where torchvision itself keeps them (``torch.hub.get_dir()/checkpoints``, which follows
``TORCH_HOME``); they are downloaded only when the caller allows it (the command line does, tests never).
"""

from __future__ import annotations

import hashlib
import os
import re
import tempfile
import urllib.request
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any
from urllib.parse import urlparse

import torch

from dlstudio.core.data.normalization import Normalization
from dlstudio.core.errors import DlstudioError
from dlstudio.core.graph import Graph
from dlstudio.core.project.pretrained import WeightsSource

# Weights files larger than this are refused before a byte is read (the trainer's limit is 1e9 parameters).
MAX_WEIGHTS_FILE = 4 * 1024**3
WEIGHTS_SUFFIXES = (".pth", ".pt", ".safetensors")
# Skipped nodes named in the one-line summary; the rest are counted.
_SUMMARY_NAMES = 3

Progress = Callable[[int, int], None]  # (bytes done, bytes in all; 0 when the server does not say)


class WeightsError(DlstudioError):
    """Starting weights cannot be found or read; the message is one line naming the file or the model."""


@dataclass(frozen=True)
class Skipped:
    """A node whose weights did not load: its name (the person's) and why."""

    name: str
    reason: str

    def __str__(self) -> str:
        return f"{self.name}: {self.reason}"


@dataclass
class LoadResult:
    """What :func:`load_weights` did: the nodes that got weights, those that did not, and a summary line."""

    source: str
    loaded: list[str] = field(default_factory=list)       # node ids with at least one tensor loaded
    skipped: list[Skipped] = field(default_factory=list)  # nodes with a tensor that did not load
    tensors_loaded: int = 0
    tensors_total: int = 0

    @property
    def summary(self) -> str:
        """One line, e.g. "loaded 60 of 62 tensors from torchvision resnet18 (IMAGENET1K_V1); fc: shape (1000, 512)
        vs (5, 512)" (at most three skipped nodes named, the rest counted)."""
        line = f"loaded {self.tensors_loaded} of {self.tensors_total} tensors from {self.source}"
        if self.skipped:
            shown = "; ".join(str(item) for item in self.skipped[:_SUMMARY_NAMES])
            more = len(self.skipped) - _SUMMARY_NAMES
            line += f"; {shown}" + (f" (and {more} more)" if more > 0 else "")
        return line

    def to_doc(self) -> dict[str, Any]:
        """Plain data for the run's settings.json (the window shows it; a resume rebuilds the groups from it)."""
        return {"summary": self.summary, "loaded": list(self.loaded),
                "skipped": [{"name": item.name, "reason": item.reason} for item in self.skipped],
                "tensors_loaded": self.tensors_loaded, "tensors_total": self.tensors_total}


# -- torchvision ------------------------------------------------------------------------------------------

def torchvision_weights(model: str, weights: str) -> Any:
    """torchvision's weights entry ``model`` / ``weights`` (DEFAULT resolves to the concrete one); WeightsError."""
    from torchvision import models

    try:
        options = models.get_model_weights(model)
    except (ValueError, KeyError):
        raise WeightsError(f"torchvision has no model named {model!r}") from None
    try:
        return options[weights]
    except KeyError:
        names = ", ".join(["DEFAULT", *(item.name for item in options)])
        raise WeightsError(f"{model} has no weights named {weights!r} (choose one of {names})") from None


def weights_file_name(entry: Any) -> str:
    """The file name torchvision gives a weights entry's download, e.g. ``resnet18-f37072fd.pth``."""
    return os.path.basename(urlparse(entry.url).path)


def torchvision_cache_path(entry: Any) -> Path:
    """Where torchvision keeps a weights entry's file: ``torch.hub.get_dir()/checkpoints/NAME`` (honours TORCH_HOME)."""
    return Path(torch.hub.get_dir()) / "checkpoints" / weights_file_name(entry)


def weights_normalization(source: WeightsSource | None, base_dir: Path | None = None) -> Normalization | None:
    """The input normalization the source's weights were trained with (torchvision's mean/std), else None.

    Inputs of a network starting from ImageNet weights must be normalized as ImageNet's were, not with the
    statistics of the person's own training split. An earlier run that trained with such fixed statistics
    passes them on (a network fine-tuned from ImageNet weights, used again as a start); a run that used its
    own split's statistics does not (the new data's are as good).
    """
    if source is not None and source.kind == "run":
        from dlstudio.core.training.runs import read_run_settings

        try:
            return recorded_normalization(read_run_settings(_resolve(source.path, base_dir)))
        except (OSError, ValueError, DlstudioError):
            return None  # an unreadable run is refused, with its reason, when its weights are read
    if source is None or source.kind != "torchvision":
        return None
    entry = torchvision_weights(source.model, source.weights)
    try:
        transform = entry.transforms()
        mean, std = transform.mean, transform.std
    except (AttributeError, TypeError):
        return None  # weights without an image transform (none of the classifiers): keep the split's statistics
    return Normalization(tuple(float(v) for v in mean), tuple(float(v) for v in std))


def download_weights(url: str, destination: Path, progress: Progress | None = None) -> None:
    """Download ``url`` to ``destination`` (a temporary file renamed when complete), calling ``progress``.

    torchvision's file names end in the first hex digits of the file's SHA-256 (``-f37072fd.pth``); a download
    that does not match them is deleted and refused, as torch.hub does.
    """
    destination.parent.mkdir(parents=True, exist_ok=True)
    expected = re.search(r"-([a-f0-9]{6,})\.", destination.name)
    digest = hashlib.sha256()
    handle, temporary = tempfile.mkstemp(prefix=destination.name + ".", suffix=".partial", dir=destination.parent)
    try:
        with os.fdopen(handle, "wb") as out, urllib.request.urlopen(url) as response:  # noqa: S310 - a known URL
            total = int(response.headers.get("Content-Length") or 0)
            done = 0
            while chunk := response.read(1 << 20):
                out.write(chunk)
                digest.update(chunk)
                done += len(chunk)
                if progress is not None:
                    progress(done, total)
        if expected is not None and not digest.hexdigest().startswith(expected.group(1)):
            raise WeightsError(f"the download of {destination.name} is damaged (its checksum does not match); "
                               "train again to retry")
        os.replace(temporary, destination)
    except OSError as error:
        raise WeightsError(f"cannot download {destination.name} ({_download_problem(error, url)}): put the file "
                           f"in {destination.parent} or connect to the internet and try again") from None
    finally:
        if os.path.exists(temporary):
            os.unlink(temporary)


def _download_problem(error: OSError, url: str) -> str:
    """Why a download failed, in words: offline, refused, timed out, the server's answer, or the system's reason."""
    import socket
    import urllib.error

    host = urlparse(url).hostname or "the server"
    cause = getattr(error, "reason", None)  # a URLError keeps the underlying error here
    if isinstance(error, urllib.error.HTTPError):
        return f"{host} answered {error.code} {error.reason}"
    if isinstance(cause, socket.gaierror):
        return f"this machine cannot find {host}: it looks offline"
    if isinstance(cause, (TimeoutError, socket.timeout)) or isinstance(error, TimeoutError):
        return f"{host} did not answer in time"
    if isinstance(cause, ConnectionRefusedError):
        return f"{host} refused the connection"
    if isinstance(cause, OSError) and cause.strerror:
        return cause.strerror
    return error.strerror or str(cause or error)


def _torchvision_state(source: WeightsSource, allow_download: bool, progress: Progress | None) -> dict[str, Any]:
    entry = torchvision_weights(source.model, source.weights)
    path = torchvision_cache_path(entry)
    if not path.is_file():
        if not allow_download:
            raise WeightsError(f"{source.model} {entry.name} weights are not on this machine: put {path.name} in "
                               f"{path.parent}, or train while online (they are downloaded then)")
        download_weights(entry.url, path, progress)
    return modern_torchvision_keys(source.model, _read_torch_file(path))


# DenseNet's published files predate the rule that module names hold no dots: a dense layer's "norm1" is stored
# as "norm.1" (torchvision renames them when it loads the file itself).
_DENSENET_OLD_KEY = re.compile(
    r"^(.*denselayer\d+\.(?:norm|relu|conv))\.([12]\.(?:weight|bias|running_mean|running_var))$")


def modern_torchvision_keys(model: str, tensors: dict[str, Any]) -> dict[str, Any]:
    """A torchvision weights file's keys as the model's ``state_dict`` has them today."""
    if not model.startswith("densenet"):
        return tensors
    renamed = {}
    for key, value in tensors.items():
        old = _DENSENET_OLD_KEY.match(key)
        renamed[old.group(1) + old.group(2) if old else key] = value
    return renamed


# -- files and runs ---------------------------------------------------------------------------------------

def _checked_size(path: Path) -> None:
    if not path.is_file():
        there = path.exists() or path.is_symlink()
        raise WeightsError(f"the weights file {path} is {'not a regular file' if there else 'not there'}")
    size = path.stat().st_size
    if size > MAX_WEIGHTS_FILE:
        raise WeightsError(f"the weights file {path} is {size / 1024**3:.1f} GB, more than the "
                           f"{MAX_WEIGHTS_FILE // 1024**3} GB dlstudio reads")


def _read_torch_file(path: Path) -> dict[str, Any]:
    """A state dict from a ``.pth``/``.pt`` file: plain, or under ``model`` / ``state_dict`` (a checkpoint)."""
    _checked_size(path)
    try:
        value = torch.load(path, map_location="cpu", weights_only=True)
    except Exception:  # noqa: BLE001 - torch raises UnpicklingError, RuntimeError, EOFError, ...
        raise WeightsError(f"cannot read {path}: it is damaged or holds more than weights "
                           "(only tensors are read, never code)") from None
    return _tensors(value, path)


def _read_safetensors(path: Path) -> dict[str, Any]:
    from safetensors.torch import load_file

    _checked_size(path)
    try:
        return load_file(str(path), device="cpu")
    except Exception:  # noqa: BLE001 - safetensors raises its own SafetensorError and OSError
        raise WeightsError(f"cannot read {path}: it is damaged or not a safetensors file") from None


def _tensors(value: Any, path: Path) -> dict[str, Any]:
    if isinstance(value, Mapping):
        for key in ("model", "state_dict"):
            if isinstance(value.get(key), Mapping):
                value = value[key]
                break
    if not isinstance(value, Mapping):
        raise WeightsError(f"{path} holds no weights (expected a table of tensors)")
    tensors = {key: item for key, item in value.items() if isinstance(key, str) and isinstance(item, torch.Tensor)}
    if not tensors:
        raise WeightsError(f"{path} holds no weights (expected a table of tensors)")
    return tensors


def read_weights_file(path: Path | str) -> dict[str, Any]:
    """The tensors of a ``.pth``/``.pt`` or ``.safetensors`` file; WeightsError (one line) otherwise."""
    path = Path(path)
    suffix = path.suffix.lower()
    if suffix not in WEIGHTS_SUFFIXES:
        raise WeightsError(f"{path.name}: expected a .pth, .pt or .safetensors weights file")
    return _read_safetensors(path) if suffix == ".safetensors" else _read_torch_file(path)


def _run_state(run_dir: Path) -> tuple[dict[str, Any], dict[str, str]]:
    """An earlier run's weights (its best checkpoint, else its last) and its node id -> name map."""
    from dlstudio.core.training.checkpoint import BEST, LAST, CheckpointError, load_checkpoint
    from dlstudio.core.training.runs import RunDataError, validated_run_settings

    if not run_dir.is_dir():
        raise WeightsError(f"the run folder {run_dir} is not there")
    checkpoint = run_dir / BEST if (run_dir / BEST).is_file() else run_dir / LAST
    if not checkpoint.is_file():
        raise WeightsError(f"run {run_dir.name} has no checkpoint ({BEST} or {LAST}) to start from")
    try:
        _, graph, _, _ = validated_run_settings(run_dir, for_resume=False)
        state = load_checkpoint(checkpoint)
    except (RunDataError, CheckpointError) as error:
        raise WeightsError(error.message) from None
    return _tensors(state, checkpoint), {node.id: node.name for node in graph}


# -- loading ----------------------------------------------------------------------------------------------

def _resolve(path: str, base_dir: Path | None) -> Path:
    candidate = Path(path).expanduser()
    return candidate if candidate.is_absolute() or base_dir is None else base_dir / candidate


def read_source(source: WeightsSource, *, base_dir: Path | None = None, allow_download: bool = False,
                progress: Progress | None = None) -> tuple[dict[str, Any], dict[str, str]]:
    """The source's tensors and, for a run, its node id -> name map (empty otherwise)."""
    if source.kind == "torchvision":
        return _torchvision_state(source, allow_download, progress), {}
    if source.kind == "file":
        return read_weights_file(_resolve(source.path, base_dir)), {}
    if source.kind == "run":
        return _run_state(_resolve(source.path, base_dir))
    raise WeightsError(f"unknown weights source {source.kind!r}")  # the project loader rules this out


def _source_keys(key: str, node_name: str, key_map: Mapping[str, str],
                 source_names: Mapping[str, str]) -> list[str]:
    """Where the graph's ``key`` may be in the source, in order of preference."""
    node_id, _, param = key.partition(".")
    if source_names:
        # An earlier run's keys are its node ids; its nodes are matched by name only. The same id is no
        # evidence: a layer deleted and added again (a new head) may get its old id back.
        return [f"{source_id}.{param}" for source_id, name in source_names.items() if name == node_name]
    candidates = [key_map[key]] if key in key_map else []
    return [*candidates, key, f"{node_name}.{param}"]


def _shape(shape: Any) -> str:
    return "(" + ", ".join(str(size) for size in shape) + (",)" if len(shape) == 1 else ")")


def apply_state(model: torch.nn.Module, graph: Graph, tensors: Mapping[str, Any], describe: str, *,
                key_map: Mapping[str, str] | None = None, source_names: Mapping[str, str] | None = None) -> LoadResult:
    """Copy every tensor of ``tensors`` that fits a key of ``model`` (same shape) into it; the rest is listed.

    A tensor reached through ``key_map`` may differ in shape with the same number of values (a per-channel
    scale the importer made a 1x1 depthwise convolution) and is reshaped; any other shape is skipped.
    """
    key_map = key_map or {}
    source_names = source_names or {}
    names = {node.id: node.name for node in graph}
    result = LoadResult(describe)
    loaded: dict[str, torch.Tensor] = {}
    skipped: dict[str, str] = {}
    target_state = model.state_dict()
    result.tensors_total = len(target_state)
    for key, target in target_state.items():
        node_id = key.partition(".")[0]
        name = names.get(node_id, node_id)
        found = None
        for candidate in _source_keys(key, name, key_map, source_names):
            if candidate in tensors:
                found = candidate
                break
        if found is None:
            if key.endswith(".num_batches_tracked"):  # a BatchNorm's counter, not a weight: older files lack it
                result.tensors_total -= 1
                continue
            skipped.setdefault(node_id, "not in the weights")
            continue
        value = tensors[found]
        if tuple(value.shape) != tuple(target.shape):
            if found == key_map.get(key) and value.numel() == target.numel():
                value = value.reshape(target.shape)
            else:
                skipped.setdefault(node_id, f"shape {_shape(value.shape)} vs {_shape(target.shape)}")
                continue
        loaded[key] = value.to(dtype=target.dtype)
        if node_id not in result.loaded:
            result.loaded.append(node_id)
    if loaded:
        model.load_state_dict(loaded, strict=False)
    result.tensors_loaded = len(loaded)
    result.skipped = [Skipped(names.get(node_id, node_id), reason) for node_id, reason in skipped.items()]
    return result


def load_weights(model: torch.nn.Module, graph: Graph, source: WeightsSource, *, base_dir: Path | None = None,
                 allow_download: bool = False, progress: Progress | None = None) -> LoadResult:
    """Load ``source`` into ``model`` (compiled from ``graph``); WeightsError when none of it fits.

    ``base_dir`` resolves a relative file or run path (the project's folder). ``allow_download`` lets a
    missing torchvision file be fetched into torch's cache (``progress`` sees the bytes).
    """
    tensors, source_names = read_source(source, base_dir=base_dir, allow_download=allow_download, progress=progress)
    result = apply_state(model, graph, tensors, source.describe(), key_map=source.key_map, source_names=source_names)
    if result.tensors_total and not result.tensors_loaded:
        first = f": {result.skipped[0]}" if result.skipped else ""
        raise WeightsError(f"none of the weights of {source.describe()} fit this network{first}")
    return result


def recorded_normalization(run_settings: dict[str, Any]) -> Normalization | None:
    """The fixed normalization a run trained with because of its starting weights (from its settings.json).

    Whoever prepares a run's data again (the mistakes gallery, an export's check) passes it to
    ``prepare_data(..., normalization=...)`` so the samples are normalized as in training. None when the run
    used its training split's statistics (or none).
    """
    weights = run_settings.get("weights") if isinstance(run_settings, dict) else None
    fixed = weights.get("normalization") if isinstance(weights, dict) else None
    if not isinstance(fixed, dict):
        return None
    try:
        return Normalization.from_dict(fixed)
    except (KeyError, TypeError, ValueError):
        return None

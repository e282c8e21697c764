"""Weights as safetensors: the model's state_dict with what a reader needs in the metadata.

The metadata (text only, as safetensors allows) holds the class names, the
normalization, the Input shape, the graph's JSON and its SHA-256, the
preprocess.json object and the dlstudio version, so the file alone says what
model it belongs to and how to feed it. Keys are the node ids, as in every
dlstudio checkpoint and in the exported Python class. Loading never runs code
(safetensors holds tensors only), which is why it is accepted wherever a
checkpoint is.
"""

from __future__ import annotations

import contextlib
import json
from pathlib import Path
from typing import Any

import torch

from dlstudio import __version__
from dlstudio.core.export.errors import ExportError
from dlstudio.core.export.preprocess_info import preprocess_description
from dlstudio.core.export.source import ExportSource, graph_hash
from dlstudio.core.graph import Graph
from dlstudio.core.safe_io import write_file

WEIGHTS_FORMAT = "dlstudio-weights"
WEIGHTS_VERSION = "1"


def weights_metadata(source: ExportSource) -> dict[str, str]:
    """The text metadata stored in the file's header."""
    return {
        "format": WEIGHTS_FORMAT, "format_version": WEIGHTS_VERSION, "dlstudio_version": __version__,
        "class_names": json.dumps(list(source.class_names)),
        "normalization": json.dumps(source.normalization.to_dict() if source.normalization else None),
        "input_shape": json.dumps(list(source.input_shape)),
        "task": source.task,
        "graph": json.dumps(source.graph.to_dict(), sort_keys=True),
        "graph_sha256": graph_hash(source.graph),
        "preprocess": json.dumps(preprocess_description(source)),
        "run": source.run_dir.name if source.run_dir is not None else "",
    }


def safetensors_bytes(source: ExportSource) -> bytes:
    """The file's bytes: every state_dict tensor (copied: safetensors wants contiguous, unshared tensors)."""
    from safetensors.torch import save

    tensors = {key: value.detach().cpu().contiguous().clone() for key, value in source.model.state_dict().items()}
    return save(tensors, weights_metadata(source))


def export_safetensors(source: ExportSource, path: Path | str) -> dict[str, Any]:
    """Write ``path``, reload it and check every tensor and the model's outputs are equal.

    Returns {"tensors": count, "max_abs_diff": 0.0 ...}; ExportError (file removed) when anything differs.
    """
    from dlstudio.core.compiler import compile_graph
    from dlstudio.core.export.verify import verify

    path = Path(path)
    written = write_file(path, safetensors_bytes(source))
    try:
        loaded, _ = read_safetensors(written)
        expected = source.model.state_dict()
        different = [key for key in expected if key not in loaded or not torch.equal(loaded[key], expected[key])]
        if different or set(loaded) != set(expected):
            raise ExportError(f"the safetensors file does not hold the model's weights as they are "
                              f"({len(different)} tensors differ); {path.name} was not kept")
        rebuilt = compile_graph(source.graph).eval()
        rebuilt.load_state_dict(loaded)

        def run(batch: Any) -> list[torch.Tensor]:
            with torch.inference_mode():
                result = rebuilt(*batch)
            return [result] if isinstance(result, torch.Tensor) else list(result)

        verification = verify(source, "safetensors", 0.0, run)
        if not verification.passed:
            raise ExportError(f"a model loaded from the safetensors file gives outputs "
                              f"{verification.max_abs_diff:.3g} away from the model's; {path.name} was not kept")
    except BaseException:
        with contextlib.suppress(OSError):
            written.unlink()
        raise
    return {"tensors": len(expected), "verification": verification}


def read_safetensors(path: Path | str) -> tuple[dict[str, torch.Tensor], dict[str, str]]:
    """(tensors, metadata) of a safetensors file, on the CPU; ExportError with the reason if unreadable."""
    from safetensors import SafetensorError, safe_open

    path = Path(path)
    if not path.is_file():
        raise ExportError(f"{str(path)!r} is not a file")
    try:
        with safe_open(str(path), framework="pt", device="cpu") as handle:
            metadata = dict(handle.metadata() or {})
            tensors = {key: handle.get_tensor(key) for key in handle.keys()}
    except (SafetensorError, OSError, ValueError, RuntimeError):
        raise ExportError(f"{str(path)!r} is not a readable safetensors file") from None
    return tensors, metadata


def load_weights_into(model: torch.nn.Module, graph: Graph, path: Path | str) -> dict[str, str]:
    """Load a safetensors file's weights into ``model`` (compiled from ``graph``); returns its metadata.

    Refused with one line when the file was written for another graph (its
    graph_sha256 differs and the weights do not fit), naming the layers that differ.
    """
    tensors, metadata = read_safetensors(path)
    expected = model.state_dict()
    names = getattr(model, "node_names", {})
    misfit = sorted({key.split(".", 1)[0] for key in set(expected) ^ set(tensors)}
                    | {key.split(".", 1)[0] for key in expected
                       if key in tensors and tensors[key].shape != expected[key].shape})
    if misfit:
        layers = ", ".join(names.get(node_id, node_id) for node_id in misfit[:5])
        other = " (it was written for another graph)" if metadata.get("graph_sha256") not in (None, graph_hash(graph)) \
            else ""
        raise ExportError(f"the weights in {Path(path).name} do not fit the model: {layers} differ{other}")
    model.load_state_dict({key: tensors[key].to(expected[key].dtype) for key in expected})
    return metadata

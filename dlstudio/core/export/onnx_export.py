"""ONNX export, verified when written: onnx.checker, then onnxruntime against the compiled model.

Exporter choice: the TorchScript-based exporter (``dynamo=False``). It exports
every template and branched graph here in tens of milliseconds, needs no
extra package, and gives a dynamic batch axis through ``dynamic_axes``. The
``torch.export``-based exporter (``dynamo=True``, the default since torch 2.9)
needs onnxscript and takes seconds per model; its translation is not needed
for the operations dlstudio's layers use. torch is pinned below 2.15, where the
TorchScript exporter is still present; its deprecation warnings are silenced
here and nowhere else. Opset 17 (LayerNormalization is native from 17; every
onnxruntime of the last years runs it).

Modules the exporter refuses but that have an exact equivalent it takes (channel shuffle,
adaptive pooling to a size that does not divide the input) are exported through stand-ins
(:mod:`dlstudio.core.export.onnx_adapters`); the file is still verified against the original model.
When the exporter fails, each layer's module is exported alone with inputs of
its inferred shapes, so the refusal names the first node that cannot be
exported, in the person's words.
"""

from __future__ import annotations

import contextlib
import io
import os
import re
import tempfile
import warnings
from collections.abc import Iterator, Sequence
from pathlib import Path

import torch

from dlstudio.core.export.errors import ExportError
from dlstudio.core.export.onnx_adapters import exportable_copy
from dlstudio.core.export.source import ExportSource
from dlstudio.core.export.verify import Verification, verify
from dlstudio.core.safe_io import write_file
from dlstudio.core.shapes import infer_graph

OPSET = 17
TOLERANCE = 1e-4


def io_names(source: ExportSource) -> tuple[list[str], list[str]]:
    """The ONNX graph's input and output names: ``input``/``output``, numbered when there are several."""
    inputs, outputs = len(source.model.input_ids), len(source.model.output_ids)
    return ([f"input{i + 1}" for i in range(inputs)] if inputs > 1 else ["input"],
            [f"output{i + 1}" for i in range(outputs)] if outputs > 1 else ["output"])


def onnx_bytes(source: ExportSource, opset: int = OPSET) -> bytes:
    """The model as an ONNX file's bytes (dynamic batch axis); ExportError naming the node that fails."""
    inputs, outputs = io_names(source)
    example = tuple(torch.zeros(2, *source.model.input_shapes[node_id]) for node_id in source.model.input_ids)
    axes = {name: {0: "batch"} for name in (*inputs, *outputs)}
    buffer = io.BytesIO()
    try:
        with _quiet_exporter():
            torch.onnx.export(exportable_copy(source.model, example), example, buffer, dynamo=False,
                              opset_version=opset,
                              input_names=inputs, output_names=outputs, dynamic_axes=axes)
    except Exception as error:  # noqa: BLE001 - the exporter raises anything; the message names the node instead
        raise ExportError(_blame(source, opset, error)) from None
    return buffer.getvalue()


def export_onnx(source: ExportSource, path: Path | str, *, opset: int = OPSET,
                tolerance: float = TOLERANCE) -> Verification:
    """Write ``path`` and verify it; above ``tolerance`` (or failing the checker) the file is removed.

    Raises ExportError with one line; returns the verification (max abs difference) otherwise.
    """
    import onnx

    path = Path(path)
    written = write_file(path, onnx_bytes(source, opset))
    try:
        try:
            onnx.checker.check_model(str(written), full_check=True)
        except Exception as error:  # noqa: BLE001 - onnx raises ValidationError and others
            raise ExportError(f"the ONNX file did not pass onnx's checker ({_first_line(error)}); "
                              f"{path.name} was not kept") from None
        try:
            session = _session(written)
        except Exception as error:  # noqa: BLE001 - onnxruntime's own error types
            raise ExportError(f"onnxruntime cannot load the exported file ({_first_line(error)}); "
                              f"{path.name} was not kept") from None
        inputs, _ = io_names(source)

        def run(batch: Sequence[torch.Tensor]) -> list[object]:
            feed = {name: tensor.numpy() for name, tensor in zip(inputs, batch)}
            try:
                return session.run(None, feed)
            except Exception as error:  # noqa: BLE001 - onnxruntime's own error types; reworded below
                raise ExportError(_runtime_failure(source, error, written, feed)) from None

        result = verify(source, "onnx", tolerance, run)
        if not result.passed:
            raise ExportError(f"the ONNX file gives outputs {result.max_abs_diff:.3g} away from the model's "
                              f"(tolerance {tolerance:g}); {path.name} was not kept")
    except BaseException:
        with contextlib.suppress(OSError):
            written.unlink()
        raise
    return result


def _session(path: Path, optimized: bool = True) -> object:
    import onnxruntime

    options = onnxruntime.SessionOptions()
    if not optimized:  # keeps the exporter's node names (/<node id>/Op), which optimizations may replace
        options.graph_optimization_level = onnxruntime.GraphOptimizationLevel.ORT_DISABLE_ALL
    # Nothing on stderr: a failing run is reported as one line naming the node (see _runtime_failure).
    options.log_severity_level = 4
    return onnxruntime.InferenceSession(str(path), options, providers=["CPUExecutionProvider"])


def _runtime_failure(source: ExportSource, error: BaseException, path: Path, feed: dict[str, object]) -> str:
    """onnxruntime could not run the file: name the node (its ONNX node names start with /<node id>/).

    An optimized session may have renamed the failing node; an unoptimized one, run on the same
    inputs, gives the exporter's name.
    """
    text = " ".join(str(error).split())
    match = re.search(r"Name:'/([^/']+)/", text)
    if match is None:
        try:
            _session(path, optimized=False).run(None, feed)
        except Exception as plain_error:  # noqa: BLE001 - the same failure, with the original node name
            match = re.search(r"Name:'/([^/']+)/", " ".join(str(plain_error).split()))
    reason = re.sub(r"^\[ONNXRuntimeError\] : \d+ : \w+ : ", "", text)
    reason = reason.split("Status Message: ")[-1][:200]
    where = "the model"
    if match and match.group(1) in source.graph:
        node = source.graph.node(match.group(1))
        where = f"{node.name} ({node.type})"
    return f"{where}: onnxruntime cannot run the exported file ({reason}); {path.name} was not kept"


def _blame(source: ExportSource, opset: int, error: Exception) -> str:
    """One line naming the first node (in order) whose module cannot be exported alone; else the reason."""
    infos = infer_graph(source.graph)
    modules = dict(source.model.named_children())
    for step in source.model.steps:
        module = modules.get(step.node_id)
        shapes = infos[step.node_id].input_shapes if step.node_id in infos else ()
        if module is None or not shapes or any(shape is None for shape in shapes):
            continue
        example = tuple(torch.zeros(2, *shape) for shape in shapes)
        try:
            with _quiet_exporter():
                torch.onnx.export(exportable_copy(module, example), example, io.BytesIO(), dynamo=False,
                                  opset_version=opset)
        except Exception as node_error:  # noqa: BLE001 - this node is the one
            name = source.graph.node(step.node_id).name if step.node_id in source.graph else step.node_id
            node_type = source.graph.node(step.node_id).type if step.node_id in source.graph else "layer"
            return f"{name}: a {node_type} node that cannot be exported to ONNX ({_reason(node_error)})"
    return f"the model cannot be exported to ONNX ({_reason(error)})"


def _reason(error: BaseException) -> str:
    text = _first_line(error)
    if "is not supported" in text and "operator" in text.lower():
        return text.replace("Exporting the operator", "the operation").rstrip(".")
    return text or "the exporter gave no reason"


def _first_line(error: BaseException) -> str:
    lines = [line.strip() for line in str(error).splitlines() if line.strip()]
    return lines[0][:200] if lines else ""


@contextlib.contextmanager
def _quiet_exporter() -> Iterator[None]:
    """Silence the TorchScript exporter: its deprecation warnings, and the graph dump it writes to the
    process's stderr from C++ when a node fails (Python's sys.stderr cannot catch that, so the file
    descriptor is pointed at a temporary file for the duration)."""
    with warnings.catch_warnings():
        warnings.filterwarnings("ignore", category=DeprecationWarning, module=r"torch\.onnx")
        warnings.filterwarnings("ignore", category=FutureWarning, module=r"torch\.onnx")
        warnings.filterwarnings("ignore", message=r".*legacy TorchScript-based ONNX export.*")
        warnings.filterwarnings("ignore", message=r".*feature will be removed.*")
        warnings.filterwarnings("ignore", category=torch.jit.TracerWarning)
        # Notes of the exporter's optimizer (e.g. "Constant folding ... not applied"): not the person's business.
        warnings.filterwarnings("ignore", category=UserWarning, message=r".*Constant folding.*")
        with _native_output_to_file():
            yield


@contextlib.contextmanager
def _native_output_to_file() -> Iterator[None]:
    saved: list[tuple[int, int]] = []
    with tempfile.TemporaryFile() as sink:
        try:
            for descriptor in (1, 2):
                try:
                    saved.append((descriptor, os.dup(descriptor)))
                except OSError:
                    continue
                os.dup2(sink.fileno(), descriptor)
            yield
        finally:
            for descriptor, copy in saved:
                os.dup2(copy, descriptor)
                os.close(copy)

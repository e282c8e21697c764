"""TorchScript export, verified when written: reloaded with ``torch.jit.load`` and compared with the model.

The compiled model's forward walks a plan of steps (a loop over modules), which
``torch.jit.script`` cannot compile, so the model is traced: the trace records
the operations the plan runs, branches and merges included. Tracing on a
batch of 2 and verifying on batches of 1 and 5 (and on real samples) shows a
batch size that was baked in by mistake. torch deprecates ``torch.jit`` in
favour of ``torch.export``, whose files need Python and torch of the same
version to load; a TorchScript file loads in C++ (libtorch) too, which is
what people export it for. Its deprecation warnings are silenced here only.
"""

from __future__ import annotations

import contextlib
import io
import warnings
from collections.abc import Iterator, Sequence
from pathlib import Path

import torch

from dlstudio.core.export.errors import ExportError
from dlstudio.core.export.source import ExportSource
from dlstudio.core.export.verify import Verification, verify
from dlstudio.core.safe_io import write_file

# TorchScript computes with the same kernels as eager PyTorch on the same machine.
TOLERANCE = 1e-6


def torchscript_bytes(source: ExportSource) -> bytes:
    """The traced model saved as a TorchScript archive's bytes; ExportError naming the node that fails."""
    example = tuple(torch.zeros(2, *source.model.input_shapes[node_id]) for node_id in source.model.input_ids)
    try:
        with _quiet_jit():
            traced = torch.jit.trace(source.model, example, check_trace=False)
    except Exception as error:  # noqa: BLE001 - tracing raises anything; the message names the node instead
        raise ExportError(_blame(source, error)) from None
    buffer = io.BytesIO()
    with _quiet_jit():
        torch.jit.save(traced, buffer)
    return buffer.getvalue()


def export_torchscript(source: ExportSource, path: Path | str, *, tolerance: float = TOLERANCE) -> Verification:
    """Write ``path``, reload it and compare; above ``tolerance`` the file is removed and ExportError raised."""
    path = Path(path)
    written = write_file(path, torchscript_bytes(source))
    try:
        with _quiet_jit():
            loaded = torch.jit.load(str(written), map_location="cpu").eval()

        def run(batch: Sequence[torch.Tensor]) -> list[torch.Tensor]:
            with torch.inference_mode(), _quiet_jit():
                result = loaded(*batch)
            return [result] if isinstance(result, torch.Tensor) else list(result)

        result = verify(source, "torchscript", tolerance, run)
        if not result.passed:
            raise ExportError(f"the TorchScript file gives outputs {result.max_abs_diff:.3g} away from the "
                              f"model's (tolerance {tolerance:g}); {path.name} was not kept")
    except BaseException:
        with contextlib.suppress(OSError):
            written.unlink()
        raise
    return result


def _blame(source: ExportSource, error: Exception) -> str:
    """One line naming the first node whose module cannot be traced alone; else the tracer's reason."""
    from dlstudio.core.shapes import infer_graph

    infos = infer_graph(source.graph)
    modules = dict(source.model.named_children())
    for step in source.model.steps:
        module, info = modules.get(step.node_id), infos.get(step.node_id)
        if module is None or info is None or any(shape is None for shape in info.input_shapes):
            continue
        try:
            with _quiet_jit():
                torch.jit.trace(module, tuple(torch.zeros(2, *shape) for shape in info.input_shapes),
                                check_trace=False)
        except Exception as node_error:  # noqa: BLE001 - this node is the one
            node = source.graph.node(step.node_id)
            return f"{node.name}: a {node.type} node that cannot be exported to TorchScript ({_first_line(node_error)})"
    return f"the model cannot be exported to TorchScript ({_first_line(error)})"


def _first_line(error: BaseException) -> str:
    lines = [line.strip() for line in str(error).splitlines() if line.strip()]
    return lines[0][:200] if lines else "the tracer gave no reason"


@contextlib.contextmanager
def _quiet_jit() -> Iterator[None]:
    with warnings.catch_warnings():
        warnings.filterwarnings("ignore", message=r".*torch\.jit\..* is deprecated.*")
        warnings.filterwarnings("ignore", category=torch.jit.TracerWarning)
        yield

"""One entry point for the exports that carry weights: write the file, verify it, put preprocess.json beside it.

The command line and the window's Export dialog both call :func:`export_verified`,
so they write and check the same files and report the same figures.
"""

from __future__ import annotations

import contextlib
from dataclasses import dataclass
from pathlib import Path

from dlstudio.core.export.errors import ExportError
from dlstudio.core.export.preprocess_info import check_export_target, write_preprocess
from dlstudio.core.export.source import ExportSource
from dlstudio.core.export.verify import Verification

WEIGHT_FORMATS = ("torchscript", "onnx", "safetensors")


@dataclass(frozen=True)
class VerifiedExport:
    """A written, verified export: the file, how it compared, and its preprocess.json."""

    path: Path
    format: str
    verification: Verification
    preprocess_path: Path
    preprocess_written: bool
    tensors: int = 0


def export_verified(source: ExportSource, format_name: str, path: Path | str, *, opset: int = 17,
                    replace_preprocess: bool = False) -> VerifiedExport:
    """Write ``path`` in ``format_name`` (torchscript, onnx or safetensors), verified; ExportError otherwise."""
    path = Path(path)
    check_export_target(path)  # before the export is written: never an export without its preprocess.json
    existed = path.exists() or path.is_symlink()
    tensors = 0
    if format_name == "onnx":
        from dlstudio.core.export.onnx_export import export_onnx

        verification = export_onnx(source, path, opset=opset)
    elif format_name == "torchscript":
        from dlstudio.core.export.torchscript import export_torchscript

        verification = export_torchscript(source, path)
    elif format_name == "safetensors":
        from dlstudio.core.export.safetensors_weights import export_safetensors

        result = export_safetensors(source, path)
        verification, tensors = result["verification"], result["tensors"]
    else:
        raise ExportError(f"unknown export format {format_name!r}; choose one of {', '.join(WEIGHT_FORMATS)}")
    try:
        preprocess, written = write_preprocess(source, path, replace=replace_preprocess)
    except BaseException:
        if not existed:  # a new file is all or nothing with its preprocess.json
            with contextlib.suppress(OSError):
                path.unlink()
        raise
    return VerifiedExport(path, format_name, verification, preprocess, written, tensors)

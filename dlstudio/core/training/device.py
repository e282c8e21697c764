"""Where and how to compute: device and precision from the settings (memory layout: training.layout)."""

from __future__ import annotations

import torch

from dlstudio.core.errors import DlstudioError


class DeviceError(DlstudioError):
    """The requested device or precision is not available here."""


def _mps_available() -> bool:
    backend = getattr(torch.backends, "mps", None)
    return bool(backend is not None and backend.is_available())


def resolve_device(setting: str) -> torch.device:
    """``auto`` picks CUDA, then Apple MPS, then the CPU; a named device must exist."""
    if setting == "auto":
        if torch.cuda.is_available():
            return torch.device("cuda")
        return torch.device("mps") if _mps_available() else torch.device("cpu")
    if setting == "cuda" and not torch.cuda.is_available():
        raise DeviceError("device 'cuda' was requested but CUDA is not available on this machine")
    if setting == "mps" and not _mps_available():
        raise DeviceError("device 'mps' was requested but Apple MPS is not available on this machine")
    if setting not in ("cpu", "cuda", "mps"):
        raise DeviceError(f"unknown device {setting!r}; choose auto, cpu, cuda or mps")
    return torch.device(setting)


def resolve_precision(setting: str, device: torch.device) -> torch.dtype | None:
    """The autocast dtype, or None for plain fp32. Mixed precision is used on CUDA only."""
    if setting == "fp32" or (setting == "auto" and device.type != "cuda"):
        return None
    if device.type != "cuda":
        raise DeviceError(f"precision {setting!r} needs a CUDA device; this run uses {device.type}")
    if setting == "fp16":
        return torch.float16
    if setting == "bf16" or torch.cuda.is_bf16_supported():
        return torch.bfloat16
    return torch.float16

"""Where and how to compute: device, precision and memory layout from the settings."""

from __future__ import annotations

import copy
import statistics
import time
from collections.abc import Callable

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


def has_conv2d(model: torch.nn.Module) -> bool:
    return any(isinstance(m, (torch.nn.Conv2d, torch.nn.ConvTranspose2d)) for m in model.modules())


def use_channels_last(setting: str, model: torch.nn.Module, sample_shape: tuple[int, ...],
                      device: torch.device, autocast: torch.dtype | None) -> bool | None:
    """Whether to train in channels-last layout; None when only a timing probe can tell.

    ``auto``: no for models without 2-D convolutions on image inputs; on CUDA
    yes with mixed precision (tensor cores want NHWC); on the CPU it depends
    on the model (a 32/64-channel CNN ran 1.15-1.45x faster channels-last on
    our 2-core machine, LeNet-5's 6/16 channels ran slower), so the trainer
    measures both (:func:`probe_channels_last`).
    """
    if setting != "auto":
        return setting == "on" and len(sample_shape) == 3
    if len(sample_shape) != 3 or not has_conv2d(model):
        return False
    if device.type == "cpu":
        return None
    return device.type == "cuda" and autocast is not None


def probe_channels_last(model: torch.nn.Module, x: torch.Tensor, step_loss: Callable[[torch.Tensor], torch.Tensor],
                        rounds: int = 8, budget_seconds: float = 2.0, warmup: int = 2) -> bool:
    """Time forward+backward of a copy of ``model`` on batch ``x`` in both layouts; True if channels-last wins.

    Layouts alternate (ABAB...) so that a slow spell of a shared machine hits
    both alike; each side's median step time is compared. The global RNG is
    restored afterwards, so probing does not change what training draws.
    ``step_loss(output)`` turns the model's output into a scalar loss.
    """
    times: dict[bool, list[float]] = {False: [], True: []}
    copies = {False: copy.deepcopy(model).train(), True: copy.deepcopy(model).train()}
    inputs = {False: x.contiguous(), True: x.contiguous(memory_format=torch.channels_last)}
    copies[True].to(memory_format=torch.channels_last)
    started = time.perf_counter()
    with torch.random.fork_rng(devices=[]):
        for round_index in range(rounds + warmup):
            for layout in (False, True):
                step_started = time.perf_counter()
                step_loss(copies[layout](inputs[layout])).backward()
                if round_index >= warmup:  # oneDNN builds and caches its kernels in the first steps
                    times[layout].append(time.perf_counter() - step_started)
            if round_index >= warmup and time.perf_counter() - started > budget_seconds:
                break
    return statistics.median(times[True]) < statistics.median(times[False])

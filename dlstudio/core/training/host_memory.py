"""Keep the C allocator from handing large tensor buffers back to the OS after every batch (glibc only).

Training on the CPU allocates and frees the same few large buffers
(activations, gradients) on every batch. glibc's malloc serves blocks above
a threshold that it moves at run time with fresh ``mmap`` calls and trims
freed memory off the heap's top, so each batch page-faults its buffers in
again. How often that happens depends on the allocation history and on the
thread (each thread gets its own arena), which made the same LeNet-5 loop at
batch 256 run anywhere from 0.83x to 1.26x as fast on a worker thread as on
the main thread, and 10-40% slower than with the settings below (2-core
machine, bench/train.py). Pinning the mmap threshold at its maximum and
raising the trim threshold keeps those buffers in the heap, to be reused.
The cost: memory freed after a peak stays with the process (up to
TRIM_THRESHOLD_BYTES of it) instead of going back to the OS at once.
"""

from __future__ import annotations

import ctypes
import ctypes.util
import sys

# mallopt parameters (malloc.h); glibc refuses an mmap threshold above 32 MiB on 64-bit systems.
_M_TRIM_THRESHOLD = -1
_M_MMAP_THRESHOLD = -3
MMAP_THRESHOLD_BYTES = 32 * 1024 * 1024
TRIM_THRESHOLD_BYTES = 256 * 1024 * 1024

_tuned: bool | None = None


def tune_host_allocator() -> bool:
    """Apply the thresholds above once per process; True when they are in effect (glibc on Linux)."""
    global _tuned
    if _tuned is None:
        _tuned = _apply()
    return _tuned


def _apply() -> bool:
    if not sys.platform.startswith("linux"):
        return False
    try:
        libc = ctypes.CDLL(ctypes.util.find_library("c") or "libc.so.6")
        mallopt = libc.mallopt
    except (OSError, AttributeError):  # musl and other C libraries have no mallopt: nothing to tune
        return False
    mallopt.argtypes = (ctypes.c_int, ctypes.c_int)
    mallopt.restype = ctypes.c_int
    # mallopt returns 1 on success; both must hold, or the page faults this module is about remain.
    return bool(mallopt(_M_MMAP_THRESHOLD, MMAP_THRESHOLD_BYTES)) and bool(
        mallopt(_M_TRIM_THRESHOLD, TRIM_THRESHOLD_BYTES))

"""Image folders too large to hold in memory: files decoded per item by DataLoader workers, batched by an index.

A :class:`StreamingSplit` keeps only paths and labels. Each batch is the
slice of the trainer's shuffled index (the same permutation the in-memory
path slices by, saved in checkpoints, so resuming is exact), decoded by
workers with the in-memory loader's image code to uint8, and made float,
normalized and laid out on the device. A file that turns out to be corrupt
is dropped from its batch and reported in ``skipped``; the epoch goes on.
"""

from __future__ import annotations

import multiprocessing
import os
from collections.abc import Iterator, Sequence
from pathlib import Path
from typing import Any

import torch
from torch.utils.data import DataLoader, Dataset, Sampler

from dlstudio.core.memory import available_memory  # one measure of free memory for the whole core
from dlstudio.core.data.dataset import SkippedFile, SkippedFiles
from dlstudio.core.data.images import pixels_to_input
from dlstudio.core.data.normalization import Normalization
from dlstudio.core.data.reader import UnreadableImage, read_image

# An image folder is loaded when its uint8 pixels take at most this share of the memory available
# (the rest is for the model, its activations, the other splits' temporaries and the system).
MEMORY_SHARE = 0.5
# When the available memory cannot be read: what a small machine can spare.
FALLBACK_THRESHOLD_BYTES = 2 * 2**30
# Training images decoded to estimate the normalization statistics of a streamed split.
NORMALIZATION_SAMPLE = 512
# Batches each worker decodes ahead.
PREFETCH_BATCHES = 4


# What one decoding worker process costs (it imports torch): ~350 MB measured (PSS, bench/memory.py).
WORKER_BYTES = 512 * 2**20


def default_workers() -> int:
    """Decoding workers: all cores but one (training needs one), at most 8, and no more than a quarter of the
    memory available can hold."""
    available = available_memory()
    by_memory = available // (4 * WORKER_BYTES) if available else 8
    return max(1, min(8, (os.cpu_count() or 2) - 1, by_memory))


def stream_threshold() -> int:
    """Decoded size above which an image folder is streamed: a share of the memory available now."""
    available = available_memory()
    return int(available * MEMORY_SHARE) if available else FALLBACK_THRESHOLD_BYTES


def decoded_bytes(count: int, shape: Sequence[int]) -> int:
    """What ``count`` samples of ``shape`` take as uint8 pixels in memory (the in-memory loader's storage)."""
    size = count
    for dim in shape:
        size *= int(dim)
    return size


class ImageFiles(Dataset[tuple[Any, int, str]]):
    """Image files with labels, decoded on demand to (C, H, W) uint8 tensors of ``shape``.

    An item is ``(image, label, path)``; ``image`` is the one-line reason
    (a str) instead of a tensor when the file cannot be read.
    """

    def __init__(self, paths: Sequence[str], labels: Sequence[int], shape: tuple[int, int, int]) -> None:
        self.paths = list(paths)
        self.labels = list(labels)
        self.shape = shape

    def __len__(self) -> int:
        return len(self.paths)

    def __getitem__(self, index: int) -> tuple[Any, int, str]:
        path = self.paths[index]
        try:
            image: Any = torch.from_numpy(read_image(Path(path), *self.shape))
        except UnreadableImage as error:
            image = str(error)
        except Exception as error:  # noqa: BLE001 - a worker must never die on one file; it is reported
            image = f"not a readable image ({str(error).splitlines()[0] if str(error) else 'unknown error'})"
        return image, self.labels[index], path


def collate_images(items: list[tuple[Any, int, str]]) -> tuple[torch.Tensor, torch.Tensor, list[tuple[str, str]]]:
    """Stack the readable images of a batch; unreadable ones come back as (path, reason) pairs instead."""
    images = [image for image, _, _ in items if isinstance(image, torch.Tensor)]
    labels = [label for image, label, _ in items if isinstance(image, torch.Tensor)]
    failed = [(path, image) for image, _, path in items if not isinstance(image, torch.Tensor)]
    if not images:
        return torch.empty(0, dtype=torch.uint8), torch.empty(0, dtype=torch.int64), failed
    return torch.stack(images), torch.tensor(labels, dtype=torch.int64), failed


class _IndexBatches(Sampler[list[int]]):
    """Batches ``first..`` of an index, ``size`` samples each; the streaming split resets it every epoch."""

    def __init__(self, order: torch.Tensor, first: int, size: int) -> None:
        self.order, self.first, self.size = order, first, size

    def __len__(self) -> int:
        return max(0, -(-len(self.order) // self.size) - self.first)

    def __iter__(self) -> Iterator[list[int]]:
        for start in range(self.first * self.size, len(self.order), self.size):
            yield self.order[start:start + self.size].tolist()


def _worker_context() -> Any:
    # Forking a process that runs threads (a GUI, the trainer's worker thread) can deadlock; a fork server cannot.
    methods = multiprocessing.get_all_start_methods()
    return multiprocessing.get_context("forkserver" if "forkserver" in methods else "spawn")


class WorkerSlot:
    """Shared by the splits of one dataset: at most one of them keeps decoding workers at a time.

    Every worker process imports torch (~350 MB each), so the training
    split's persistent workers are let go before the validation split starts
    its own, and started again for the next epoch (a few seconds per epoch,
    small next to an epoch of a folder too large for memory).
    """

    def __init__(self) -> None:
        self.holder: StreamingSplit | None = None

    def claim(self, split: StreamingSplit) -> None:
        if self.holder is not None and self.holder is not split:
            self.holder.close()
        self.holder = split


class StreamingSplit:
    """One split read from image files batch by batch; the trainer uses it exactly like an in-memory DataSplit.

    ``y`` holds every label (known without decoding); ``skipped`` is the list
    corrupt files found while streaming are added to (shared with the
    PreparedData that owns the split, so the user sees them).
    """

    def __init__(self, files: ImageFiles, normalization: Normalization | None, skipped: SkippedFiles, *,
                 num_workers: int = 0, device: torch.device | None = None,
                 layout: torch.memory_format = torch.contiguous_format, slot: WorkerSlot | None = None) -> None:
        self.files = files
        self.slot = slot or WorkerSlot()
        self.y = torch.tensor(files.labels, dtype=torch.int64)
        self.normalization = normalization
        self.skipped = skipped
        self.num_workers = num_workers
        self.device = device or torch.device("cpu")
        self.layout = layout
        self._sampler = _IndexBatches(torch.arange(0), 0, 1)
        self._loader: DataLoader[Any] | None = None

    def __len__(self) -> int:
        return len(self.files)

    @property
    def sample_shape(self) -> tuple[int, ...]:
        return tuple(self.files.shape)

    def to(self, device: torch.device, layout: torch.memory_format = torch.contiguous_format) -> StreamingSplit:
        """The same files, delivered as batches on ``device`` in ``layout``."""
        self.close()
        return StreamingSplit(self.files, self.normalization, self.skipped, num_workers=self.num_workers,
                              device=device, layout=layout, slot=self.slot)

    def batches(self, order: torch.Tensor, first: int, size: int) -> Iterator[tuple[int, torch.Tensor, torch.Tensor]]:
        """``(batch number, x, y)`` for batches ``first..`` of ``order``; a batch left with no readable file is
        not yielded at all."""
        self._sampler.order, self._sampler.first, self._sampler.size = order.cpu(), first, size
        self.slot.claim(self)
        if self._loader is None:  # made once: its workers persist from epoch to epoch (unless another split ran)
            self._loader = self._make_loader(self._sampler, persistent=True)
        for offset, batch in enumerate(self._loader):
            x, y = self._finish(batch)
            if len(y):
                yield first + offset, x, y

    def in_order(self, size: int) -> Iterator[tuple[torch.Tensor, torch.Tensor]]:
        """The whole split in file order (for evaluation), ``size`` samples per batch."""
        self.slot.claim(self)  # another split's persistent workers go first: one set of workers at a time
        loader = self._make_loader(_IndexBatches(torch.arange(len(self)), 0, size), persistent=False)
        for batch in loader:
            x, y = self._finish(batch)
            if len(y):
                yield x, y

    def close(self) -> None:
        """Let the persistent workers go (they end with the loader)."""
        self._loader = None
        if self.slot.holder is self:
            self.slot.holder = None

    def _make_loader(self, sampler: Sampler[list[int]], persistent: bool) -> DataLoader[Any]:
        workers = self.num_workers
        extra: dict[str, Any] = {}
        if workers:
            extra = {"persistent_workers": persistent, "prefetch_factor": PREFETCH_BATCHES,
                     "multiprocessing_context": _worker_context()}
        return DataLoader(self.files, batch_sampler=sampler, num_workers=workers, collate_fn=collate_images,
                          pin_memory=self.device.type == "cuda", **extra)

    def _finish(self, batch: tuple[torch.Tensor, torch.Tensor, list[tuple[str, str]]]) -> tuple[torch.Tensor,
                                                                                                   torch.Tensor]:
        images, labels, failed = batch
        if failed:
            self._report(failed)
        if not len(labels):
            return images, labels
        non_blocking = self.device.type == "cuda"
        x = pixels_to_input(images.to(self.device, non_blocking=non_blocking), self.normalization, self.layout)
        return x, labels.to(self.device, non_blocking=non_blocking)

    def _report(self, failed: list[tuple[str, str]]) -> None:
        entries = [SkippedFile(path, reason) for path, reason in failed]
        if isinstance(self.skipped, SkippedFiles):
            self.skipped.add(entries)  # also written to the run folder's log, when one is kept
        else:
            known = {entry.path for entry in self.skipped}
            self.skipped.extend(entry for entry in entries if entry.path not in known)

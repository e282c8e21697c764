"""Top-k classification of tensors, images and whole folders; unreadable files are results, not failures."""

from __future__ import annotations

from collections.abc import Iterable, Iterator
from dataclasses import dataclass, replace
import os
from pathlib import Path

import numpy as np
import torch

from dlstudio.core.data.folder import walk_images
from dlstudio.core.data.reader import UnreadableImage, check_regular_file, unreadable_reason
from dlstudio.core.inspect.preprocess import Preprocessor, UnreadableFile


@dataclass(frozen=True)
class ClassScore:
    """One class of a prediction: its index, its name and its probability."""

    index: int
    label: str
    probability: float


@dataclass(frozen=True)
class Prediction:
    """Softmax probabilities over all classes and the ``top`` k classes, most probable first.

    ``steps``: what was done to the picture to make it look like the training data, in words
    ("cropped to the digit", "inverted to match the training data"); empty for a prepared tensor.
    """

    probabilities: np.ndarray
    top: tuple[ClassScore, ...]
    steps: tuple[str, ...] = ()

    @property
    def label(self) -> str:
        return self.top[0].label

    @property
    def probability(self) -> float:
        return self.top[0].probability


@dataclass(frozen=True)
class ClassifiedFile:
    """A file's outcome: a prediction, or the one-line reason it could not be read (``error``)."""

    path: str
    prediction: Prediction | None = None
    error: str | None = None

    @property
    def ok(self) -> bool:
        return self.prediction is not None


def probabilities(model: torch.nn.Module, x: torch.Tensor, batch_size: int = 256) -> torch.Tensor:
    """Softmax of the model's output for a batch of preprocessed samples (N, ...), on the CPU as float32."""
    device = next(iter(model.parameters()), torch.empty(0)).device
    was_training = model.training
    model.eval()
    chunks = []
    with torch.inference_mode():
        for start in range(0, len(x), batch_size):
            logits = model(x[start:start + batch_size].to(device))
            chunks.append(torch.softmax(logits.float(), dim=1).cpu())
    model.train(was_training)
    return torch.cat(chunks) if chunks else torch.empty(0)


def predictions(probs: torch.Tensor, class_names: list[str], top_k: int) -> list[Prediction]:
    """Top-``top_k`` classes of each row of ``probs`` (k is capped at the class count)."""
    k = max(1, min(int(top_k), probs.shape[1]))
    values, indices = probs.topk(k, dim=1)
    result = []
    for row, top_values, top_indices in zip(probs.numpy(), values.tolist(), indices.tolist()):
        top = tuple(ClassScore(i, _name(class_names, i), p) for i, p in zip(top_indices, top_values))
        result.append(Prediction(row.copy(), top))
    return result


def _name(class_names: list[str], index: int) -> str:
    return class_names[index] if index < len(class_names) else str(index)


def find_images(paths: Iterable[Path | str]) -> Iterator[tuple[Path, str | None]]:
    """Expand folders into files by the image folders' own rule (``data.folder.walk_images``: sorted,
    recursive, hidden files and folders left out, bad links and non-regular files skipped with the reason).

    Yields ``(path, reason)``: reason is None for a file to try, or why it is
    skipped. A file named directly is always tried, whatever its extension,
    if it is a regular file; a missing path gets a reason.
    """
    for entry in paths:
        path = Path(entry)
        if path.is_dir():
            yield from walk_images(path)
        elif os.path.lexists(path):
            try:
                check_regular_file(path)
            except UnreadableImage as error:
                yield path, str(error)
                continue
            yield path, None
        else:
            yield path, "no such file or folder"


def classify_files(model: torch.nn.Module, preprocessor: Preprocessor, class_names: list[str],
                   paths: Iterable[Path | str], top_k: int = 5, batch_size: int = 64) -> Iterator[ClassifiedFile]:
    """Classify files (folders are walked), ``batch_size`` images per forward pass, in the given order.

    A generator: a GUI worker shows progress per result and stops by not pulling more.
    """
    pending: list[tuple[str, torch.Tensor | None, tuple[str, ...], str | None]] = []

    def flush() -> Iterator[ClassifiedFile]:
        tensors = [x for _, x, _, _ in pending if x is not None]
        preds = iter(predictions(probabilities(model, torch.stack(tensors)), class_names, top_k)) if tensors else iter(())
        for name, x, steps, reason in pending:
            yield (ClassifiedFile(name, replace(next(preds), steps=steps)) if x is not None
                   else ClassifiedFile(name, error=reason))
        pending.clear()

    for path, reason in find_images(paths):
        tensor, steps = None, ()
        if reason is None:
            try:
                prepared = preprocessor.prepare(path)
                tensor, steps = preprocessor.normalize(prepared.raw), prepared.steps
            except Exception as error:  # noqa: BLE001 - PIL raises many types for bad files; each becomes a reason
                reason = _reason(error)
        pending.append((str(path), tensor, steps, reason))
        if sum(x is not None for _, x, _, _ in pending) >= batch_size:
            yield from flush()
    yield from flush()


def _reason(error: Exception) -> str:
    if isinstance(error, UnreadableFile):
        return error.reason
    return unreadable_reason(error)

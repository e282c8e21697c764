"""Evaluate a trained classifier on a labelled image folder (one subfolder per class), with sklearn.metrics.

The subfolders are named after the model's classes (a subset is fine); every
image is prepared as the run's validation data was (the same preprocessor as
``dlstudio classify``). Accuracy, top-k accuracy, per-class precision, recall,
F1 and support, and the confusion matrix come from :mod:`sklearn.metrics`, so
the figures are the ones people compute themselves; the worst-classified
files are the mistakes the model was surest of.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from dlstudio.core.inspect.errors import InspectError


@dataclass
class Evaluation:
    """What a model made of a labelled folder. ``true``/``predicted`` are class indices of the model."""

    folder: str
    class_names: list[str]
    files: list[str]
    true: np.ndarray
    predicted: np.ndarray
    probabilities: np.ndarray
    top_k: int
    skipped: list[tuple[str, str]] = field(default_factory=list)

    @property
    def labels(self) -> list[int]:
        """The classes the report covers: those in the folder or predicted (sklearn's own default)."""
        return sorted(set(self.true.tolist()) | set(self.predicted.tolist()))

    @property
    def accuracy(self) -> float:
        from sklearn.metrics import accuracy_score

        return float(accuracy_score(self.true, self.predicted))

    @property
    def top_k_accuracy(self) -> float:
        from sklearn.metrics import top_k_accuracy_score

        classes = len(self.class_names)
        scores = self.probabilities[:, 1] if classes == 2 else self.probabilities  # sklearn's binary form
        return float(top_k_accuracy_score(self.true, scores, k=min(self.top_k, classes), labels=list(range(classes))))

    def report(self) -> dict[str, Any]:
        """``sklearn.metrics.classification_report(..., output_dict=True)`` keyed by class name."""
        from sklearn.metrics import classification_report

        labels = self.labels
        return classification_report(self.true, self.predicted, labels=labels,
                                     target_names=[self.class_names[i] for i in labels], output_dict=True,
                                     zero_division=0)

    def confusion(self) -> list[list[int]]:
        """Rows: true class, columns: predicted class, over :attr:`labels`."""
        from sklearn.metrics import confusion_matrix

        return confusion_matrix(self.true, self.predicted, labels=self.labels).tolist()

    def worst(self, count: int = 10) -> list[dict[str, Any]]:
        """The misclassified files, those the model was surest of first (lowest probability of the true class)."""
        wrong = np.nonzero(self.true != self.predicted)[0]
        true_probability = self.probabilities[np.arange(len(self.true)), self.true]
        order = wrong[np.argsort(true_probability[wrong], kind="stable")][:count]
        return [{"file": self.files[i], "true": self.class_names[self.true[i]],
                 "predicted": self.class_names[self.predicted[i]],
                 "predicted_probability": float(self.probabilities[i, self.predicted[i]]),
                 "true_probability": float(true_probability[i])} for i in order.tolist()]

    def per_class(self) -> list[dict[str, Any]]:
        """One row per class of :attr:`labels`: class, precision, recall, f1, support (the report's figures)."""
        report = self.report()
        return [_row(name, report[name]["precision"], report[name]["recall"], report[name]["f1-score"],
                     report[name]["support"]) for name in (self.class_names[i] for i in self.labels)]

    def to_dict(self, worst: int = 10) -> dict[str, Any]:
        return {"folder": self.folder, "images": len(self.files), "accuracy": self.accuracy,
                f"top_{min(self.top_k, len(self.class_names))}_accuracy": self.top_k_accuracy,
                "report": self.report(), "confusion": {"labels": [self.class_names[i] for i in self.labels],
                                                       "matrix": self.confusion()},
                "worst": self.worst(worst), "skipped": [{"file": f, "reason": r} for f, r in self.skipped]}


def per_class_from_confusion(matrix: Sequence[Sequence[int]] | np.ndarray,
                             class_names: Sequence[str]) -> list[dict[str, Any]]:
    """Per-class precision, recall, F1 and support of a confusion matrix (rows: true class, columns: predicted).

    sklearn takes labels, not a matrix: the matrix is expanded back into the
    (true, predicted) pairs it counts, which gives exactly the figures sklearn
    gives on the predictions themselves. A class with no samples, or never
    predicted, scores 0 where its ratio has no denominator (``zero_division=0``,
    as :meth:`Evaluation.report`).
    """
    from sklearn.metrics import precision_recall_fscore_support

    counts = np.asarray(matrix, dtype=np.int64)
    size = len(class_names)
    if size == 0 and counts.size == 0:
        return []
    if counts.shape != (size, size):
        raise ValueError(f"the confusion matrix is {'×'.join(map(str, counts.shape))} but there are {size} classes")
    cells = counts.reshape(-1)
    true = np.repeat(np.repeat(np.arange(size), size), cells)
    predicted = np.repeat(np.tile(np.arange(size), size), cells)
    precision, recall, f1, support = precision_recall_fscore_support(true, predicted, labels=list(range(size)),
                                                                     zero_division=0)
    return [_row(name, *figures) for name, *figures in zip(class_names, precision, recall, f1, support, strict=True)]


def _row(name: str, precision: float, recall: float, f1: float, support: float) -> dict[str, Any]:
    return {"class": str(name), "precision": float(precision), "recall": float(recall), "f1": float(f1),
            "support": int(support)}


def evaluate_folder(trained: Any, folder: Path | str, top_k: int = 5,
                    progress: Callable[[int, int], None] | None = None) -> Evaluation:
    """Classify every image under ``folder``'s class subfolders with ``trained`` (a TrainedModel).

    ``progress(done, total)`` is called after each file (a GUI worker reports it and may raise to stop).
    InspectError when a subfolder is not one of the model's classes, or when no image could be read.
    """
    from dlstudio.core.data.errors import DataError
    from dlstudio.core.data.folder import scan_folder

    folder = Path(folder)
    try:
        folder_classes, files, skipped_entries = scan_folder(folder)
    except DataError as error:
        raise InspectError(error.message) from None
    names = list(trained.class_names)
    unknown = [name for name in folder_classes if name not in names]
    if unknown:
        shown = ", ".join(repr(name) for name in unknown[:5])
        raise InspectError(f"{shown} in {str(folder)!r} {'is' if len(unknown) == 1 else 'are'} not among the "
                           f"model's classes ({', '.join(names[:12])}{', ...' if len(names) > 12 else ''})")
    label_of = {str(path): names.index(name) for name, paths in zip(folder_classes, files) for path in paths}
    paths = [path for paths in files for path in paths]
    skipped = [(entry.path, entry.reason) for entry in skipped_entries]
    kept_files: list[str] = []
    rows: list[np.ndarray] = []
    for done, result in enumerate(trained.classify_paths(paths, top_k=1), start=1):
        if progress is not None:
            progress(done, len(paths))
        if not result.ok:
            skipped.append((result.path, result.error or "cannot be read"))
            continue
        kept_files.append(result.path)
        rows.append(np.asarray(result.prediction.probabilities, dtype=np.float64))
    if not rows:
        raise InspectError(f"no image in {str(folder)!r} could be classified")
    probabilities = np.stack(rows)
    true = np.array([label_of[path] for path in kept_files], dtype=np.int64)
    return Evaluation(str(folder), names, kept_files, true, probabilities.argmax(1), probabilities, top_k, skipped)

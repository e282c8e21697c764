"""Predictions on a whole split, so that a confusion-matrix cell can list its samples by confidence."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import torch

from dlstudio.core.inspect.classify import probabilities


@dataclass(frozen=True)
class SplitPredictions:
    """Per sample of a split: true class, predicted class, and the predicted class's probability (confidence)."""

    true: np.ndarray
    predicted: np.ndarray
    confidence: np.ndarray

    def cell(self, true: int, predicted: int) -> np.ndarray:
        """Indices of the samples of class ``true`` predicted as ``predicted``, most confident first."""
        members = np.flatnonzero((self.true == true) & (self.predicted == predicted))
        # A stable sort keeps equal confidences in index order, so the gallery does not shuffle.
        return members[np.argsort(-self.confidence[members], kind="stable")]

    def confusion(self, classes: int) -> np.ndarray:
        """The (classes, classes) matrix of counts, true x predicted (as the trainer reports it)."""
        return np.bincount(self.true * classes + self.predicted, minlength=classes * classes).reshape(classes, classes)


def predict_split(model: torch.nn.Module, x: torch.Tensor, y: torch.Tensor, batch_size: int = 256) -> SplitPredictions:
    """Run the model once over a split (x preprocessed, y class indices); cells are then free to query."""
    probs = probabilities(model, x, batch_size)
    confidence, predicted = probs.max(dim=1) if len(probs) else (torch.empty(0), torch.empty(0, dtype=torch.int64))
    return SplitPredictions(y.cpu().numpy().astype(np.int64), predicted.numpy().astype(np.int64),
                            confidence.numpy().astype(np.float32))


def mistakes(model: torch.nn.Module, x: torch.Tensor, y: torch.Tensor, true: int, predicted: int) -> np.ndarray:
    """Indices of samples of class ``true`` predicted as ``predicted``, sorted by confidence (highest first)."""
    return predict_split(model, x, y).cell(true, predicted)

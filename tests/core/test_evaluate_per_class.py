"""Per-class figures from a confusion matrix (the Metrics dock's table) equal sklearn's on the same predictions."""

from __future__ import annotations

import numpy as np
import pytest
from sklearn.metrics import confusion_matrix, precision_recall_fscore_support

from dlstudio.core.inspect.evaluate import per_class_from_confusion


def test_per_class_from_a_matrix_equals_sklearn_on_the_predictions() -> None:
    generator = np.random.default_rng(3)
    true = generator.integers(0, 5, 400)
    predicted = np.where(generator.random(400) < 0.7, true, generator.integers(0, 5, 400))
    predicted[predicted == 4] = 3  # class 4 is never predicted: its precision has no denominator
    names = ["zero", "one", "two", "three", "four"]
    rows = per_class_from_confusion(confusion_matrix(true, predicted, labels=range(5)), names)
    precision, recall, f1, support = precision_recall_fscore_support(true, predicted, labels=range(5),
                                                                     zero_division=0)
    assert [row["class"] for row in rows] == names
    assert [row["precision"] for row in rows] == pytest.approx(precision.tolist())
    assert [row["recall"] for row in rows] == pytest.approx(recall.tolist())
    assert [row["f1"] for row in rows] == pytest.approx(f1.tolist())
    assert [row["support"] for row in rows] == support.tolist()
    assert rows[4]["precision"] == 0.0 and rows[4]["support"] > 0


def test_a_class_without_samples_and_an_empty_matrix() -> None:
    rows = per_class_from_confusion([[3, 1, 0], [0, 0, 0], [1, 0, 4]], ["a", "b", "c"])
    assert rows[1] == {"class": "b", "precision": 0.0, "recall": 0.0, "f1": 0.0, "support": 0}
    assert rows[0]["precision"] == pytest.approx(3 / 4) and rows[0]["recall"] == pytest.approx(3 / 4)
    assert rows[2]["recall"] == pytest.approx(4 / 5) and rows[2]["precision"] == pytest.approx(1.0)
    assert per_class_from_confusion([], []) == []
    with pytest.raises(ValueError, match="2 classes"):
        per_class_from_confusion([[1]], ["a", "b"])

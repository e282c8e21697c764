"""The last epoch's confusion matrix is kept in the run folder, so that a reopened project shows it again."""

from __future__ import annotations

from pathlib import Path
from types import SimpleNamespace

from dlstudio.core.training import EpochMetrics, MetricsCsv
from dlstudio.core.training.runs import CONFUSION_FILE, read_confusion


def test_each_epoch_replaces_the_recorded_confusion_matrix(tmp_path: Path) -> None:
    writer = MetricsCsv(tmp_path)
    writer.on_fit_start(SimpleNamespace(history=[]))  # type: ignore[arg-type]
    assert read_confusion(tmp_path) is None
    writer.on_epoch_end(None, EpochMetrics(1, 0.9, 0.5, 0.8, 0.6, 0.01, 1.5, 800.0,  # type: ignore[arg-type]
                                           confusion=[[3, 1], [2, 4]]))
    assert read_confusion(tmp_path) == [[3, 1], [2, 4]]
    writer.on_epoch_end(None, EpochMetrics(2, 0.5, 0.7, 0.4, 0.8, 0.01, 1.4, 850.0,  # type: ignore[arg-type]
                                           confusion=[[4, 0], [1, 5]]))
    assert read_confusion(tmp_path) == [[4, 0], [1, 5]]
    assert not list(tmp_path.glob("*.tmp"))


def test_a_damaged_or_implausible_confusion_file_reads_as_none(tmp_path: Path) -> None:
    for text in ("{", '{"matrix": [[1, 2]]}', '{"matrix": [[1, -2], [0, 1]]}', '{"matrix": "many"}', "[]"):
        (tmp_path / CONFUSION_FILE).write_text(text)
        assert read_confusion(tmp_path) is None, text

"""Run folders: naming beside the project, settings and classes files, metrics.csv, the project's run list."""

from __future__ import annotations

from datetime import datetime
from pathlib import Path
from types import SimpleNamespace

import pytest

from dlstudio.core.project import Project
from dlstudio.core.training import (
    METRIC_COLUMNS,
    EpochMetrics,
    MetricsCsv,
    create_run_dir,
    read_metrics,
    read_run_settings,
    record_run,
    runs_folder,
    write_run_files,
)

NOW = datetime(2026, 11, 23, 9, 5, 7)


def test_run_folders_sit_beside_the_project_named_by_time(tmp_path: Path) -> None:
    project = tmp_path / "digits.dlstudio"
    assert runs_folder(project) == tmp_path / "digits.runs"
    first = create_run_dir(project, NOW)
    second = create_run_dir(project, NOW)
    assert first == tmp_path / "digits.runs" / "20261123-090507"
    assert second.name == "20261123-090507-1" and second.is_dir()


def test_settings_and_classes_round_trip(tmp_path: Path) -> None:
    write_run_files(tmp_path, {"training": {"epochs": 3}}, ["cat", "dog"])
    assert read_run_settings(tmp_path) == {"training": {"epochs": 3}}
    assert (tmp_path / "classes.json").read_text().strip().startswith("[")


def test_the_project_remembers_runs_relative_to_its_file(tmp_path: Path) -> None:
    project = Project(path=tmp_path / "p.dlstudio")
    run_dir = create_run_dir(project.path, NOW)
    assert record_run(project, run_dir) == "p.runs/20261123-090507"
    record_run(project, run_dir)
    assert project.runs == ["p.runs/20261123-090507"]


def test_metrics_csv_has_one_row_per_epoch_and_is_rebuilt_on_resume(tmp_path: Path) -> None:
    first = EpochMetrics(1, 0.9, 0.5, 0.8, 0.6, 0.01, 1.5, 800.0)
    second = EpochMetrics(2, 0.5, 0.7, None, None, 0.01, 1.4, 850.0)
    writer = MetricsCsv(tmp_path)
    writer.on_fit_start(SimpleNamespace(history=[]))  # type: ignore[arg-type]
    writer.on_epoch_end(None, first)  # type: ignore[arg-type]
    writer.on_epoch_end(None, second)  # type: ignore[arg-type]
    lines = (tmp_path / "metrics.csv").read_text().splitlines()
    assert lines[0] == ",".join(METRIC_COLUMNS)
    assert METRIC_COLUMNS == ("epoch", "train_loss", "train_accuracy", "val_loss", "val_accuracy", "learning_rate",
                              "seconds", "samples_per_second")
    rows = read_metrics(tmp_path)
    assert [row["epoch"] for row in rows] == [1.0, 2.0]
    assert rows[0]["val_accuracy"] == pytest.approx(0.6) and rows[1]["val_loss"] is None
    # A resumed fit starts from the checkpoint's history: rows after it (an unfinished epoch) disappear.
    MetricsCsv(tmp_path).on_fit_start(SimpleNamespace(history=[first]))  # type: ignore[arg-type]
    assert [row["epoch"] for row in read_metrics(tmp_path)] == [1.0]

"""summarize_run: one row of the run history from a run folder, damaged folders included."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from dlstudio.core.training import EpochMetrics, MetricsCsv, write_run_files
from dlstudio.core.training.runs import summarize_run, write_run_result


def _run(folder: Path, epochs_planned: int, accuracies: list[float | None]) -> Path:
    folder.mkdir()
    write_run_files(folder, {"started": "2026-11-23T09:05:07", "project": "p.dlstudio",
                             "training": {"epochs": epochs_planned}}, ["a", "b"])
    writer = MetricsCsv(folder)
    writer.on_fit_start(type("T", (), {"history": []})())  # type: ignore[arg-type]
    for epoch, accuracy in enumerate(accuracies, start=1):
        metrics = EpochMetrics(epoch, 1.0 / epoch, 0.5, 0.9 / epoch, accuracy, 0.01)
        writer.on_epoch_end(None, metrics)  # type: ignore[arg-type]
    return folder


def test_a_finished_run_reports_its_best_epoch_and_counts(tmp_path: Path) -> None:
    summary = summarize_run(_run(tmp_path / "20261123-090507", 3, [0.6, 0.9, 0.85]))
    assert summary["name"] == "20261123-090507" and summary["run_dir"] == str(tmp_path / "20261123-090507")
    assert summary["status"] == "completed" and summary["message"] == ""
    assert (summary["epochs"], summary["planned_epochs"]) == (3, 3)
    assert summary["best_val_accuracy"] == pytest.approx(0.9) and summary["best_epoch"] == 2
    assert summary["last_val_loss"] == pytest.approx(0.3)
    assert summary["started"] == "2026-11-23T09:05:07" and summary["project"] == "p.dlstudio"
    assert summary["test_accuracy"] is None


def test_the_recorded_result_wins_and_brings_the_test_accuracy(tmp_path: Path) -> None:
    run = _run(tmp_path / "r", 5, [0.5, 0.7])
    write_run_result(run, {"status": "early_stopped", "message": "no better\nval_loss", "test_accuracy": 0.75})
    summary = summarize_run(run)
    assert summary["status"] == "early_stopped" and summary["message"] == "no better val_loss"
    assert summary["test_accuracy"] == pytest.approx(0.75)


def test_an_unfinished_run_is_stopped_with_a_checkpoint_and_incomplete_without(tmp_path: Path) -> None:
    run = _run(tmp_path / "r", 5, [0.5])
    assert summarize_run(run)["status"] == "incomplete"
    (run / "last.pt").write_bytes(b"checkpoint")
    assert summarize_run(run)["status"] == "stopped"


def test_a_run_without_validation_has_no_best_accuracy(tmp_path: Path) -> None:
    summary = summarize_run(_run(tmp_path / "r", 2, [None, None]))
    assert summary["best_val_accuracy"] is None and summary["best_epoch"] is None and summary["epochs"] == 2


@pytest.mark.parametrize(("damage", "file_name"), [
    (lambda run: (run / "settings.json").unlink(), "settings.json"),
    (lambda run: (run / "settings.json").write_text("{half"), "settings.json"),
    (lambda run: (run / "settings.json").write_text("[1, 2]"), "settings.json"),
    (lambda run: (run / "metrics.csv").write_text("epoch,val_accuracy\n1,abc\n"), "metrics.csv"),
    (lambda run: (run / "metrics.csv").write_text("epoch,val_accuracy\n1,0.5,extra\n"), "metrics.csv"),
    (lambda run: (run / "metrics.csv").write_bytes(b"epoch\n\xff\xfe\n"), "metrics.csv"),
])
def test_a_damaged_folder_gives_a_damaged_summary_naming_the_file(tmp_path: Path, damage, file_name: str) -> None:
    run = _run(tmp_path / "20261123-090507", 3, [0.6])
    damage(run)
    summary = summarize_run(run)
    assert summary["status"] == "damaged"
    assert file_name in summary["message"] and "20261123-090507" in summary["message"]
    assert "\n" not in summary["message"] and summary["name"] == "20261123-090507"


def test_a_missing_folder_is_missing_not_damaged_nor_an_exception(tmp_path: Path) -> None:
    summary = summarize_run(tmp_path / "gone")
    assert summary["status"] == "missing" and summary["started"] is None
    assert summary["message"] == "the folder gone is no longer on disk"


def test_a_folder_without_its_settings_file_is_damaged(tmp_path: Path) -> None:
    (tmp_path / "empty").mkdir()
    summary = summarize_run(tmp_path / "empty")
    assert summary["status"] == "damaged"
    assert summary["message"] == "cannot read settings.json in empty: it is missing"


def test_an_unreadable_result_file_falls_back_to_the_metrics(tmp_path: Path) -> None:
    run = _run(tmp_path / "r", 1, [0.6])
    (run / "result.json").write_text(json.dumps([1]))
    assert summarize_run(run)["status"] == "completed"

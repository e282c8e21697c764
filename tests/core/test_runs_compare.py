"""Comparing runs: the settings that differ between runs, two runs side by side, what applying a run changes."""

from __future__ import annotations

from pathlib import Path

import pytest
from run_folders import mlp, write_run

from dlstudio.core.runs_compare import (
    compare_runs,
    differing_keys,
    format_value,
    is_numeric,
    read_run_for_comparison,
    read_runs_for_comparison,
    setting_labels,
    settings_to_apply,
)


@pytest.fixture
def three_runs(tmp_path: Path) -> list[dict]:
    base = tmp_path / "net.runs"
    project = mlp()
    first = write_run(base, "20261201-090000", project, training={"learning_rate": 0.01, "batch_size": 64},
                      accuracies=(0.6, 0.8, 0.85), test=0.84, seconds=3.0, samples_per_second=1500.0)
    second = write_run(base, "20261201-100000", project, training={"learning_rate": 0.1, "batch_size": 64},
                       accuracies=(0.3, 0.2), test=0.2, samples_per_second=None)
    wider = mlp()
    wider.graph.set_param("linear1", "out_features", 256)
    third = write_run(base, "20261201-110000", wider, training={"learning_rate": 0.001, "batch_size": 256},
                      accuracies=(0.7, 0.9, 0.88), test=0.9, frozen=("linear1",))
    return read_runs_for_comparison([first, second, third])


def test_a_row_holds_the_summary_settings_network_and_figures(three_runs: list[dict]) -> None:
    first = three_runs[0]
    assert first["status"] == "completed" and first["best_val_accuracy"] == pytest.approx(0.85)
    assert first["final_val_accuracy"] == pytest.approx(0.85) and first["test_accuracy"] == pytest.approx(0.84)
    assert first["seconds"] == pytest.approx(9.0) and first["samples_per_second"] == pytest.approx(1500.0)
    assert first["settings"]["training.learning_rate"] == 0.01
    assert first["settings"]["node:linear1.out_features"] == 128 and first["settings"]["frozen"] == "none"
    assert len(first["curves"]) == 3 and first["nodes"]["linear1"]["name"] == "hidden"
    assert three_runs[1]["samples_per_second"] is None  # not recorded: no figure made up
    assert three_runs[2]["settings"]["frozen"] == "hidden"  # frozen layers by name
    # Runs of one network are known as such: its layer parameters are compared once per network.
    assert three_runs[0]["network_id"] == three_runs[1]["network_id"] != three_runs[2]["network_id"]


def test_only_the_settings_that_differ_are_columns(three_runs: list[dict]) -> None:
    keys = differing_keys(three_runs)
    assert keys == ["training.learning_rate", "training.batch_size", "training.epochs",
                    "node:linear1.out_features", "frozen"]
    labels = setting_labels(three_runs)
    assert [labels[key] for key in keys] == ["Learning rate", "Batch size", "Planned epochs", "hidden.out_features",
                                             "Frozen layers"]
    assert is_numeric(three_runs, "training.learning_rate") and not is_numeric(three_runs, "training.optimizer")
    assert differing_keys(three_runs[:1]) == []  # one run differs from nothing


def test_a_damaged_run_is_listed_without_settings_and_does_not_make_columns(three_runs: list[dict],
                                                                           tmp_path: Path) -> None:
    damaged = tmp_path / "net.runs" / "20261201-120000"
    damaged.mkdir()
    (damaged / "settings.json").write_text("{not json")
    row = read_run_for_comparison(damaged)
    assert row["status"] == "damaged" and row["settings"] == {} and row["curves"] == []
    assert differing_keys([*three_runs[:1], row]) == []


def test_two_runs_side_by_side(three_runs: list[dict]) -> None:
    comparison = compare_runs(three_runs[0], three_runs[2])
    assert comparison.a == "20261201-090000" and comparison.b == "20261201-110000"
    differing = {diff.label: (diff.a, diff.b) for diff in comparison.differing}
    assert differing == {"Learning rate": ("0.01", "0.001"), "Batch size": ("64", "256"),
                         "Frozen layers": ("none", "hidden")}
    assert any(diff.same and diff.label == "Optimizer" for diff in comparison.settings)
    graph = comparison.graph
    assert graph.added == () and graph.removed == () and not graph.rewired
    assert [(change.name, change.params) for change in graph.changed] == [
        ("hidden", (("out_features", "128", "256"),))]


def test_the_network_diff_names_added_removed_and_renamed_nodes(tmp_path: Path) -> None:
    project = mlp()
    before = read_run_for_comparison(write_run(tmp_path, "20261201-090000", project))
    project.graph.rename("linear2", "head")
    dropout = project.graph.add_node("Dropout", {})
    project.graph.remove_node("relu1")
    after = read_run_for_comparison(write_run(tmp_path, "20261201-100000", project))
    graph = compare_runs(before, after).graph
    assert graph.added == (f"{dropout.name} (Dropout)",) and graph.removed == ("relu (ReLU)",)
    assert [(change.name, change.renamed_from) for change in graph.changed] == [("head", "scores")]


def test_applying_a_run_changes_only_what_differs(three_runs: list[dict]) -> None:
    project = mlp()
    plan = settings_to_apply(three_runs[2], {**project.training, "learning_rate": 0.01},
                             project.graph.to_dict())
    assert plan.training["learning_rate"] == 0.001 and plan.training["batch_size"] == 256
    assert "optimizer" not in plan.training  # the same already
    assert plan.params == (("linear1", "out_features", 256),) and plan.network_note == ""
    project.graph.remove_node("relu1")  # another network: its layers are left alone, and the plan says why
    other = settings_to_apply(three_runs[2], project.training, project.graph.to_dict())
    assert other.params == () and "other layers" in other.network_note


@pytest.mark.parametrize(("value", "text"), [(0.001, "0.001"), (1e-5, "1e-05"), (True, "on"), ("adam", "adam"),
                                             ([2, 2], "(2, 2)"), (None, "—"), (256, "256")])
def test_values_read_as_people_write_them(value: object, text: str) -> None:
    assert format_value(value) == text

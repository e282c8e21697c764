"""Normalization statistics in the project: the file's field, its refusals, the frozen v2 fixture, staleness."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from dlstudio.core.errors import ProjectError
from dlstudio.core.project import (
    NormalizationStats, default_data_settings, input_shape, load_project, load_template, project_to_json,
    save_project, statistics_basis,
)

FIXTURE_V2 = Path(__file__).parent / "fixtures" / "project_v2.dlstudio"


def fixture_doc() -> dict:
    return json.loads(FIXTURE_V2.read_text(encoding="utf-8"))


def digits_stats(**changes) -> NormalizationStats:
    basis = {**statistics_basis(default_data_settings(), [1, 8, 8]), **changes}
    return NormalizationStats((0.3,), (0.45,), "net.runs/20261123-101500", basis)


def test_the_frozen_v2_fixture_keeps_loading():
    project = load_project(FIXTURE_V2)
    stats = project.normalization
    assert stats == NormalizationStats((0.3125,), (0.4375,), "project_v2.runs/20261124-093000", {
        "source": "digits", "val_fraction": 0.15, "test_fraction": 0.15, "split_seed": 0, "input_shape": [1, 8, 8]})
    assert project.runs == ["project_v2.runs/20261124-093000"]
    assert stats.stale_reason(project.data, input_shape(project.graph)) == ""


def test_statistics_round_trip_through_a_file_byte_for_byte(tmp_path):
    project = load_template("mlp")
    project.normalization = NormalizationStats((0.1, 0.2, 0.3), (1.0, 2.0, 0.5), "mlp.runs/x", {
        **statistics_basis({"source": "folder", "path": "photos"}, [3, 32, 32])})
    path = tmp_path / "mlp.dlstudio"
    save_project(project, path)
    loaded = load_project(path)
    assert loaded.normalization == project.normalization
    assert loaded.normalization.computed_from == {"source": "folder", "val_fraction": 0.15, "test_fraction": 0.15,
                                                  "split_seed": 0, "path": "photos", "input_shape": [3, 32, 32]}
    first = path.read_bytes()
    save_project(loaded, path)
    assert path.read_bytes() == first


def _set(path: str, value):
    def mutate(doc):
        *parents, last = path.split(".")
        target = doc["normalization"]
        for key in parents:
            target = target[key]
        target[last] = value
    return mutate


def _delete(path: str):
    def mutate(doc):
        *parents, last = path.split(".")
        target = doc["normalization"]
        for key in parents:
            target = target[key]
        del target[last]
    return mutate


REFUSALS = {
    "not an object": (lambda doc: doc.update(normalization=[0.3]), "normalization: expected an object, got a list"),
    "unknown field": (_set("median", [0.3]), "normalization: unknown field 'median'"),
    "no std": (_delete("std"), "normalization.std: missing"),
    "std zero": (_set("std", [0.0]), "normalization.std: every value must be above 0, got 0"),
    "mean text": (_set("mean", ["0.3"]), "normalization.mean[0]: expected a finite number, got text"),
    "mean empty": (_set("mean", []), "normalization.mean: expected a non-empty list of numbers, got a list"),
    "one value per channel": (_set("mean", [0.3, 0.3, 0.3]),
                              "normalization.mean: expected 1 values (one per channel of the Input shape [1, 8, 8]), "
                              "got 3"),
    "run not text": (_set("run", 3), "normalization.run: expected a run folder, got a number"),
    "unknown source": (_set("computed_from.source", "webcam"), "normalization.computed_from.source: "),
    "fraction out of range": (_set("computed_from.val_fraction", 1.5),
                              "normalization.computed_from.val_fraction: must be at most 0.9, got 1.5"),
    "key of another source": (_set("computed_from.label_column", "y"),
                              "normalization.computed_from: unknown field 'label_column'"),
    "no split seed": (_delete("computed_from.split_seed"), "normalization.computed_from.split_seed: missing"),
    "bad input shape": (_set("computed_from.input_shape", [0, 8]),
                        "normalization.computed_from.input_shape: expected 1 to 3 whole numbers from 1 to 100,000, "
                        "got [0, 8]"),
}


@pytest.mark.parametrize("case", list(REFUSALS))
def test_damaged_statistics_are_refused_with_one_line_naming_the_place(tmp_path, case):
    mutate, expected = REFUSALS[case]
    doc = fixture_doc()
    mutate(doc)
    path = tmp_path / "net.dlstudio"
    path.write_text(json.dumps(doc, indent=2), encoding="utf-8")
    with pytest.raises(ProjectError) as caught:
        load_project(path)
    message = str(caught.value)
    assert message.startswith(f"net.dlstudio: {expected}"), message
    assert "\n" not in message


def test_a_nan_in_the_statistics_is_refused_as_json_without_numbers(tmp_path):
    doc = fixture_doc()
    text = json.dumps(doc).replace("0.3125", "NaN")
    path = tmp_path / "net.dlstudio"
    path.write_text(text, encoding="utf-8")
    with pytest.raises(ProjectError, match="NaN is not a number JSON allows"):
        load_project(path)


def test_saving_refuses_statistics_that_would_not_load_again(tmp_path):
    project = load_template("mlp")
    project.normalization = NormalizationStats((0.3,), (0.0,), "r", statistics_basis({}, [1, 8, 8]))
    with pytest.raises(ProjectError, match=r"^mlp\.dlstudio: cannot save: normalization\.std: every value must be"):
        save_project(project, tmp_path / "mlp.dlstudio")
    project.normalization = {"mean": [0.3]}  # type: ignore[assignment]
    with pytest.raises(ProjectError, match="normalization: expected statistics, got an object"):
        project_to_json(project)


# -- staleness -------------------------------------------------------------------

def test_statistics_hold_while_nothing_they_depend_on_changed():
    stats = digits_stats()
    settings = default_data_settings()
    assert stats.stale_reason(settings, (1, 8, 8)) == ""
    # Neither augmentation, nor a path the digits do not read, nor switching normalization off changes them.
    changed = {**settings, "augment_hflip": True, "path": "elsewhere", "normalize": False}
    assert stats.stale_reason(changed, (1, 8, 8)) == ""
    assert stats.stale_reason(settings, None) == ""  # no single Input: only the settings are compared


@pytest.mark.parametrize(("change", "shape", "reason"), [
    ({"split_seed": 3}, (1, 8, 8), "the split seed changed (0 → 3)"),
    ({"val_fraction": 0.2}, (1, 8, 8), "the validation fraction changed (0.15 → 0.2)"),
    ({}, (1, 28, 28), "the Input shape changed ([1, 8, 8] → [1, 28, 28])"),
    ({"source": "folder", "path": "photos"}, (1, 8, 8), "the data source changed ('digits' → 'folder')"),
])
def test_a_change_of_what_they_depend_on_makes_them_stale(change, shape, reason):
    assert digits_stats().stale_reason({**default_data_settings(), **change}, shape) == reason


def test_the_source_decides_which_settings_count():
    stats = digits_stats(source="csv", path="table.csv", label_column="")
    settings = {**default_data_settings(), "source": "csv", "path": "table.csv"}
    assert stats.stale_reason(settings, (1, 8, 8)) == ""
    assert stats.stale_reason({**settings, "label_column": "y"}, (1, 8, 8)) == "the label column changed (empty → 'y')"
    assert stats.stale_reason({**settings, "dataset": "cifar10"}, (1, 8, 8)) == ""  # torchvision only


def test_input_shape_needs_exactly_one_input_node():
    graph = load_template("lenet5").graph
    assert input_shape(graph) == (1, 28, 28)
    graph.add_node("Input", {"shape": [4]})
    assert input_shape(graph) is None

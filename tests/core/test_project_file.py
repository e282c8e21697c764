"""Project files: round trips, atomic saves, refusals that say where, the frozen v1 fixture, migrations."""

from __future__ import annotations

import copy
import json
import os
import sys
from pathlib import Path

import pytest

from dlstudio.core.errors import ProjectError
from dlstudio.core.project import (
    DATA_SETTINGS, FORMAT, TRAINING_SETTINGS, Project, default_data_settings, default_training_settings,
    list_templates, load_project, load_template, migrations, project_from_json, project_to_json, save_project,
    validate_settings,
)
from dlstudio.core.project import fileformat

FIXTURE_V1 = Path(__file__).parent / "fixtures" / "project_v1.dlstudio"


def fixture_doc() -> dict:
    return json.loads(FIXTURE_V1.read_text(encoding="utf-8"))


def node_index(doc: dict, node_id: str) -> int:
    return next(i for i, node in enumerate(doc["graph"]["nodes"]) if node["id"] == node_id)


# -- round trips ---------------------------------------------------------------

@pytest.mark.parametrize("name", [info.name for info in list_templates()])
def test_template_round_trips_through_a_file(tmp_path, name):
    original = load_template(name)
    path = tmp_path / f"{name}.dlstudio"
    save_project(original, path)
    assert original.path == path
    loaded = load_project(path)
    assert loaded.path == path
    assert loaded.graph.to_dict() == original.graph.to_dict()
    assert loaded.layout.positions == original.layout.positions
    assert loaded.data == original.data
    assert loaded.training == original.training
    assert loaded.description == original.description
    assert loaded.runs == original.runs
    first = path.read_bytes()
    save_project(loaded, path)
    assert path.read_bytes() == first


def test_file_layout_is_the_documented_one(tmp_path):
    project = load_template("mlp")
    project.runs = ["mlp.runs/20261123-101500"]
    text = project_to_json(project)
    assert text.endswith("}\n")
    doc = json.loads(text)
    assert list(doc) == ["format", "format_version", "description", "graph", "layout", "data", "training", "runs",
                         "normalization", "blocks", "frozen", "weights"]
    assert doc["format"] == FORMAT == "dlstudio-project"
    assert doc["format_version"] == 3
    assert doc["normalization"] is None  # no run has computed statistics yet
    assert doc["blocks"] == [] and doc["frozen"] == [] and doc["weights"] is None
    assert [node["id"] for node in doc["graph"]["nodes"]] == list(project.graph.nodes)
    edges = [(e["src"], e["src_port"], e["dst"], e["dst_port"]) for e in doc["graph"]["edges"]]
    assert edges == sorted(edges)
    assert list(doc["layout"]) == sorted(doc["layout"])
    assert list(doc["data"]) == [spec.name for spec in DATA_SETTINGS]
    assert doc["runs"] == ["mlp.runs/20261123-101500"]


def test_saving_fills_settings_and_drops_positions_of_deleted_nodes(tmp_path):
    project = load_template("mlp")
    project.data, project.training = {}, {"epochs": 3}
    removed = next(node_id for node_id, node in project.graph.nodes.items() if node.type == "ReLU")
    project.graph.remove_node(removed)  # the layout still holds its position
    loaded = project_from_json(project_to_json(project))
    assert loaded.data == default_data_settings()
    assert loaded.training == {**default_training_settings(), "epochs": 3}
    assert removed not in loaded.layout


def test_saving_refuses_a_project_that_would_not_load_again(tmp_path):
    project = load_template("mlp")
    project.data = {"val_fraction": 0.6, "test_fraction": 0.6}
    with pytest.raises(ProjectError, match=r"^mlp\.dlstudio: cannot save: data: val_fraction"):
        save_project(project, tmp_path / "mlp.dlstudio")
    assert list(tmp_path.iterdir()) == []


# -- atomic save ----------------------------------------------------------------

@pytest.fixture
def saved(tmp_path):
    """A project saved once, and the bytes of that file."""
    project = load_template("lenet5")
    path = tmp_path / "lenet.dlstudio"
    save_project(project, path)
    project.description = "changed after the first save"
    return project, path, path.read_bytes()


def test_failure_at_replace_keeps_the_old_file_and_leaves_no_temporary(monkeypatch, saved):
    project, path, before = saved

    def refuse(src, dst):
        raise PermissionError(13, "Permission denied")

    monkeypatch.setattr(fileformat.os, "replace", refuse)
    with pytest.raises(ProjectError, match=r"^lenet\.dlstudio: cannot save: Permission denied$"):
        save_project(project, path)
    assert path.read_bytes() == before
    assert os.listdir(path.parent) == [path.name]


def test_failure_while_writing_keeps_the_old_file_and_leaves_no_temporary(monkeypatch, saved):
    project, path, before = saved

    def disk_full(handle):
        raise OSError(28, "No space left on device")

    monkeypatch.setattr(fileformat.os, "fsync", disk_full)
    # A full disk is said as such, with the room needed and where (the guarded writer's wording).
    with pytest.raises(ProjectError, match=r"^lenet\.dlstudio: cannot save: disk full: 1 MB needed in "):
        save_project(project, path)
    assert path.read_bytes() == before
    assert os.listdir(path.parent) == [path.name]


def test_an_interruption_while_writing_is_not_swallowed_and_cleans_up(monkeypatch, saved):
    project, path, before = saved

    def interrupted(handle):
        raise KeyboardInterrupt

    monkeypatch.setattr(fileformat.os, "fsync", interrupted)
    with pytest.raises(KeyboardInterrupt):
        save_project(project, path)
    assert path.read_bytes() == before
    assert os.listdir(path.parent) == [path.name]


def test_a_successful_save_replaces_the_file_and_sets_the_path(saved, tmp_path):
    project, path, before = saved
    project.path = None
    save_project(project, str(path))
    assert path.read_bytes() != before
    assert load_project(path).description == "changed after the first save"
    assert project.path == path
    assert os.listdir(tmp_path) == [path.name]


@pytest.mark.skipif(sys.platform == "win32", reason="POSIX permissions")
def test_a_new_file_gets_ordinary_permissions_and_a_replaced_one_keeps_its_own(tmp_path):
    project = load_template("mlp")
    path = tmp_path / "mlp.dlstudio"
    save_project(project, path)
    umask = os.umask(0)
    os.umask(umask)
    assert path.stat().st_mode & 0o777 == 0o666 & ~umask
    path.chmod(0o640)
    save_project(project, path)
    assert path.stat().st_mode & 0o777 == 0o640


def test_saving_into_a_missing_folder_is_a_project_error(tmp_path):
    with pytest.raises(ProjectError, match=r"^mlp\.dlstudio: cannot save: "):
        save_project(load_template("mlp"), tmp_path / "missing" / "mlp.dlstudio")


# -- refusals -------------------------------------------------------------------

def _set(path: str, value):
    """A mutation of the fixture document: set the value at a dotted path (list indices as numbers)."""
    def mutate(doc):
        *parents, last = path.split(".")
        target = doc
        for part in parents:
            target = target[int(part)] if isinstance(target, list) else target[part]
        target[int(last) if isinstance(target, list) else last] = value
    return mutate


def _delete(path: str):
    def mutate(doc):
        *parents, last = path.split(".")
        target = doc
        for part in parents:
            target = target[int(part)] if isinstance(target, list) else target[part]
        del target[int(last) if isinstance(target, list) else last]
    return mutate


def _add_edge(src, src_port, dst, dst_port):
    def mutate(doc):
        doc["graph"]["edges"].append({"src": src, "src_port": src_port, "dst": dst, "dst_port": dst_port})
    return mutate


def _duplicate_node(doc):
    doc["graph"]["nodes"].append(copy.deepcopy(doc["graph"]["nodes"][1]))


def _cycle(doc):
    doc["graph"]["nodes"][node_index(doc, "add1")]["params"]["inputs"] = 3
    doc["graph"]["edges"].append({"src": "flatten1", "src_port": "out", "dst": "add1", "dst_port": "in3"})


CONV2 = 3  # index of node conv2 in the fixture
REFUSALS = {
    "newer version": (_set("format_version", 9),
                      "was written by a newer dlstudio (format 9; this version reads up to 3)"),
    "version not a number": (_set("format_version", "1"), "format_version: expected a whole number, got text"),
    "wrong format": (_set("format", "word-document"),
                     "not a dlstudio project (format 'word-document', expected 'dlstudio-project')"),
    "no format": (_delete("format"), "not a dlstudio project (no 'format' field)"),
    "unknown layer type": (_set(f"graph.nodes.{CONV2}.type", "Conv3x"),
                           f"graph.nodes[{CONV2}].type: unknown layer type 'Conv3x'"),
    "param out of range": (_set(f"graph.nodes.{CONV2}.params.kernel_size", 0),
                           f"graph.nodes[{CONV2}].params.kernel_size: must be at least 1, got 0"),
    "param of the wrong type": (_set(f"graph.nodes.{CONV2}.params.bias", "yes"),
                                f"graph.nodes[{CONV2}].params.bias: expected true or false, got 'yes'"),
    "unknown param": (_set(f"graph.nodes.{CONV2}.params.colour", 1),
                      f"graph.nodes[{CONV2}].params.colour: Conv2d has no parameter 'colour'"),
    "bad node id": (_set("graph.nodes.0.id", "2fast"), "graph.nodes[0].id: invalid node id '2fast'"),
    "empty name": (_set("graph.nodes.0.name", " "), "graph.nodes[0].name: a node name may not be empty"),
    "missing key": (_delete("graph.nodes.2.name"), "graph.nodes[2].name: missing"),
    "wrong type": (_set("graph.nodes", {}), "graph.nodes: expected a list, got an object"),
    "node not an object": (_set("graph.nodes.1", [1, 2]), "graph.nodes[1]: expected an object, got a list"),
    "unknown node field": (_set("graph.nodes.1.colour", "red"), "graph.nodes[1]: unknown field 'colour'"),
    "unknown top field": (_set("extras", 1), "unknown field 'extras'"),
    "no graph": (_delete("graph"), "graph: missing"),
    "duplicate node id": (_duplicate_node, "graph.nodes[9].id: a node with id 'conv1' already exists"),
    "cycle": (_cycle, "graph.edges[9]: connecting flatten to merge would create a cycle"),
    "edge to a missing port": (_add_edge("conv2", "out", "add1", "in7"),
                               "graph.edges[9].dst_port: merge has no input 'in7'"),
    "edge from a missing port": (_add_edge("conv2", "left", "output1", "in"),
                                 "graph.edges[9].src_port: branch conv has no output 'left'"),
    "edge to a missing node": (_add_edge("conv2", "out", "ghost", "in"), "graph.edges[9].dst: no node 'ghost'"),
    "port taken": (_add_edge("conv2", "out", "output1", "in"),
                   "graph.edges[9]: input 'in' of class is already connected (from scores)"),
    "layout for an unknown node": (_set("layout.ghost", [0, 0]),
                                   "layout: a position for 'ghost', which is not a node of the graph"),
    "layout not two numbers": (_set("layout.conv1", [1, "a"]), "layout.conv1: expected [x, y], two finite"),
    "layout of three numbers": (_set("layout.conv1", [1, 2, 3]), "layout.conv1: expected [x, y]"),
    "layout out of range": (_set("layout.conv1", [1e300, 0]), "layout.conv1: expected [x, y]"),
    "val + test >= 1": (_set("data.test_fraction", 0.8),
                        "data: val_fraction + test_fraction must be less than 1 (nothing left to train on), "
                        "got 0.2 + 0.8"),
    "setting out of range": (_set("training.batch_size", 0), "training.batch_size: must be at least 1, got 0"),
    "setting not a choice": (_set("training.optimizer", "lbfgs"),
                             "training.optimizer: expected one of sgd, adam, adamw, rmsprop; got 'lbfgs'"),
    "unknown settings key": (_set("training.lr", 0.1), "training: unknown setting 'lr'"),
    "settings not an object": (_set("data", [1]), "data: expected an object of settings, got a list"),
    "run not text": (_set("runs.0", 5), "runs[0]: expected a folder name, got a number"),
    "description not text": (_set("description", None), "description: expected text, got null"),
    "huge integer": (_set("training.epochs", 10**30), "training.epochs: the number is too large"),
    "integer too large for a float": (_set("graph.nodes.2.params.negative_slope", 10**400),
                                      "graph.nodes[2].params.negative_slope: the number is too large"),
}


@pytest.mark.parametrize("case", list(REFUSALS))
def test_damaged_file_is_refused_with_one_line_naming_the_place(tmp_path, case):
    mutate, expected = REFUSALS[case]
    doc = fixture_doc()
    mutate(doc)
    path = tmp_path / "lenet.dlstudio"
    path.write_text(json.dumps(doc, indent=2), encoding="utf-8")
    with pytest.raises(ProjectError) as caught:
        load_project(path)
    message = str(caught.value)
    assert message.startswith(f"lenet.dlstudio: {expected}"), message
    assert "\n" not in message


TEXT_REFUSALS = {
    "bad JSON": (lambda text: text[: text.index('"edges"')],
                 "not valid JSON (Expecting property name enclosed in double quotes: line 95, column 5)"),
    "not an object": (lambda text: "[1, 2]", "not a dlstudio project (expected a JSON object, got a list)"),
    "empty": (lambda text: "", "not valid JSON (Expecting value: line 1, column 1)"),
    "NaN": (lambda text: text.replace('"learning_rate": 0.05', '"learning_rate": NaN'),
            "not valid JSON (NaN is not a number JSON allows)"),
    "duplicate key": (lambda text: text.replace('"epochs": 3', '"epochs": 3, "epochs": 4'),
                      "not valid: the key 'epochs' appears twice in one object"),
    "deep nesting": (lambda text: "[" * 100_000 + "]" * 100_000, "not valid JSON (nested too deeply)"),
    "lone surrogate": (lambda text: text.replace('"photo"', '"ph\\ud800to"'),
                       "graph.nodes[0].name: the text holds an invalid character"),
}


@pytest.mark.parametrize("case", list(TEXT_REFUSALS))
def test_damaged_text_is_refused_with_one_line(tmp_path, case):
    corrupt, expected = TEXT_REFUSALS[case]
    path = tmp_path / "lenet.dlstudio"
    path.write_text(corrupt(FIXTURE_V1.read_text(encoding="utf-8")), encoding="utf-8")
    with pytest.raises(ProjectError) as caught:
        load_project(path)
    assert str(caught.value).startswith(f"lenet.dlstudio: {expected}"), str(caught.value)
    assert "\n" not in str(caught.value)


def test_unreadable_files_are_project_errors(tmp_path):
    with pytest.raises(ProjectError, match=r"^missing\.dlstudio: cannot be opened: No such file"):
        load_project(tmp_path / "missing.dlstudio")
    binary = tmp_path / "photo.dlstudio"
    binary.write_bytes(b"\x89PNG\r\n\x1a\n\xff\xfe")
    with pytest.raises(ProjectError, match=r"^photo\.dlstudio: not a project but a PNG image \(a project file is "
                                           r"JSON text\)$"):
        load_project(binary)
    weights = tmp_path / "model.dlstudio"
    torch_file = tmp_path / "state.pt"
    import torch

    torch.save({"w": torch.zeros(2)}, torch_file)
    weights.write_bytes(torch_file.read_bytes())
    with pytest.raises(ProjectError, match=r"^model\.dlstudio: not a project but a ZIP archive \(a PyTorch"):
        load_project(weights)
    other = tmp_path / "other.dlstudio"
    other.write_bytes(b"\x00\x01\xfe\xff binary")
    with pytest.raises(ProjectError, match=r"^other\.dlstudio: not a text file \(invalid UTF-8 at byte 2\)$"):
        load_project(other)


def test_a_byte_order_mark_is_tolerated(tmp_path):
    path = tmp_path / "bom.dlstudio"
    path.write_bytes(b"\xef\xbb\xbf" + FIXTURE_V1.read_bytes())
    assert len(load_project(path).graph) == 9


def test_a_node_name_with_a_line_break_still_gives_a_one_line_message():
    doc = fixture_doc()
    doc["graph"]["nodes"][node_index(doc, "output1")]["name"] = "two\nlines"
    doc["graph"]["edges"].append({"src": "conv2", "src_port": "out", "dst": "output1", "dst_port": "in"})
    with pytest.raises(ProjectError) as caught:
        project_from_json(json.dumps(doc), source="x.dlstudio")
    # Names with line breaks are refused outright, so they cannot leak into other messages.
    assert str(caught.value) == ("x.dlstudio: graph.nodes[8].name: a node name may not contain line breaks "
                                 "or control characters")


def test_optional_sections_may_be_left_out():
    doc = fixture_doc()
    for key in ("description", "layout", "data", "training", "runs"):
        del doc[key]
    project = project_from_json(json.dumps(doc))
    assert len(project.graph) == 9
    assert project.data == default_data_settings()
    assert project.training == default_training_settings()
    assert project.runs == [] and project.description == "" and project.layout.positions == {}


# -- the frozen v1 fixture ------------------------------------------------------

def test_frozen_v1_fixture_keeps_loading():
    project = load_project(FIXTURE_V1)
    graph = project.graph
    assert project.path == FIXTURE_V1
    assert project.name == "project_v1"
    assert len(graph) == 9
    assert len(graph.edges) == 9
    assert graph.node("conv1").params["out_channels"] == 8
    assert graph.node("conv1").params["bias"] is False
    assert graph.node("conv2").params["padding"] == "same"
    assert graph.node("conv2").params["kernel_size"] == [3, 3]
    assert graph.node("leakyrelu1").params["negative_slope"] == 0.2
    assert graph.node("add1").name == "merge"
    assert sorted(graph.predecessors("add1")) == ["conv2", "leakyrelu1"]
    assert graph.input_edge("add1", "in2").src == "conv2"
    assert graph.node("output1").params["classes"] == 5
    assert project.layout.position("conv2") == (660.0, 120.0)
    assert project.layout.position("linear1") == (1540.0, 0.5)
    assert project.layout.position("output1") is None  # nodes without a position are allowed
    assert project.data["source"] == "folder"
    assert project.data["path"] == "photos/flowers"
    assert project.data["val_fraction"] == 0.2
    assert project.data["normalize"] is True  # left out of the file: the default
    assert project.training["optimizer"] == "sgd"
    assert project.training["momentum"] == 0.85
    assert project.training["device"] == "auto"
    assert project.runs == ["project_v1.runs/20261123-101500"]
    assert project.description.startswith("Frozen fixture of format 1")


def test_frozen_v1_fixture_infers_without_errors():
    from dlstudio.core.shapes import infer_graph

    infos = infer_graph(load_project(FIXTURE_V1).graph)
    assert all(info.ok for info in infos.values())
    assert infos["add1"].output_shape == (8, 16, 16)
    assert infos["linear1"].output_shape == (5,)


# -- migrations -----------------------------------------------------------------

def test_registered_migrations_run_in_order_and_their_result_is_validated(monkeypatch):
    calls = []

    def one_to_two(doc):
        calls.append(("1->2", doc["format_version"]))
        doc["training"]["epochs"] = 7
        return doc

    def two_to_three(doc):
        calls.append(("2->3", doc["format_version"], doc["training"]["epochs"]))
        doc["description"] = "upgraded"
        return doc

    # The version and the table are read from the migrations module at call time.
    monkeypatch.setattr(migrations, "FORMAT_VERSION", 3)
    monkeypatch.setattr(migrations, "MIGRATIONS", {2: two_to_three, 1: one_to_two})
    project = load_project(FIXTURE_V1)
    assert calls == [("1->2", 1), ("2->3", 2, 7)]
    assert project.training["epochs"] == 7
    assert project.description == "upgraded"
    assert json.loads(project_to_json(project))["format_version"] == 3


def test_a_migration_giving_an_invalid_document_is_refused(monkeypatch):
    def broken(doc):
        doc["training"]["epochs"] = -1
        return doc

    monkeypatch.setattr(migrations, "FORMAT_VERSION", 2)
    monkeypatch.setattr(migrations, "MIGRATIONS", {1: broken})
    with pytest.raises(ProjectError, match=r"^project_v1\.dlstudio: training\.epochs: must be at least 1"):
        load_project(FIXTURE_V1)


def test_a_missing_migration_step_is_refused(monkeypatch):
    monkeypatch.setattr(migrations, "FORMAT_VERSION", 2)
    monkeypatch.setattr(migrations, "MIGRATIONS", {})
    with pytest.raises(ProjectError, match="format 1 cannot be upgraded: no migration to format 2"):
        load_project(FIXTURE_V1)


def test_a_migration_failing_on_a_damaged_file_is_a_project_error(monkeypatch):
    monkeypatch.setattr(migrations, "FORMAT_VERSION", 2)
    monkeypatch.setattr(migrations, "MIGRATIONS", {1: lambda doc: doc["no such key"]})
    with pytest.raises(ProjectError, match="format 1 could not be upgraded to format 2: the file is damaged"):
        load_project(FIXTURE_V1)


def test_migrate_leaves_a_current_document_alone():
    doc = json.loads(project_to_json(load_project(FIXTURE_V1)))
    assert doc["format_version"] == migrations.FORMAT_VERSION
    assert migrations.migrate(copy.deepcopy(doc)) == doc


def test_a_v1_file_gets_no_normalization_and_is_saved_as_the_current_version():
    doc = migrations.migrate(fixture_doc())
    assert doc["format_version"] == migrations.FORMAT_VERSION and doc["normalization"] is None
    assert load_project(FIXTURE_V1).normalization is None


# -- settings schemas -----------------------------------------------------------

def test_settings_schemas_have_the_documented_names_and_defaults():
    assert default_data_settings() == {
        "source": "digits", "path": "", "dataset": "mnist", "label_column": "", "val_fraction": 0.15,
        "test_fraction": 0.15, "split_seed": 0, "normalize": True, "augment_crop_padding": 0,
        "augment_hflip": False, "augment_rotation": 0.0, "augment_color_jitter": 0.0,
    }
    assert default_training_settings() == {
        "optimizer": "adam", "learning_rate": 0.001, "momentum": 0.9, "weight_decay": 0.0, "batch_size": 64,
        "epochs": 10, "pretrained_lr_multiplier": 0.1, "schedule": "none", "seed": 0, "early_stopping_patience": 0, "device": "auto",
        "precision": "auto", "channels_last": "auto", "compile": False, "sync_batchnorm": False,
    }
    for spec in DATA_SETTINGS + TRAINING_SETTINGS:
        assert spec.help, spec.name
        assert spec.validate(spec.default) == spec.default


def test_validate_settings_fills_defaults_and_normalizes():
    values = validate_settings(TRAINING_SETTINGS, {"learning_rate": 1, "epochs": 5}, "training")
    assert values["learning_rate"] == 1.0 and isinstance(values["learning_rate"], float)
    assert values["epochs"] == 5
    assert values["optimizer"] == "adam"
    assert list(values) == [spec.name for spec in TRAINING_SETTINGS]


@pytest.mark.parametrize(("values", "message"), [
    ({"learning_rate": 0.0}, "training.learning_rate: must be at least 1e-08, got 0"),
    ({"seed": 2**31}, "training.seed: must be at most 2147483647, got 2147483648"),
    ({"compile": 1}, "training.compile: expected true or false, got 1"),
    ({"precision": "fp8"}, "training.precision: expected one of auto, fp32, bf16, fp16; got 'fp8'"),
])
def test_validate_settings_refuses_bad_values(values, message):
    with pytest.raises(ProjectError) as caught:
        validate_settings(TRAINING_SETTINGS, values, "training")
    assert str(caught.value) == message


def test_project_defaults_are_an_empty_untitled_project():
    project = Project()
    assert project.name == "untitled"
    loaded = project_from_json(project_to_json(project))
    assert len(loaded.graph) == 0 and loaded.data == default_data_settings()

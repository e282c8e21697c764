"""Blocks, frozen nodes and the starting-weights source: the model, the file (format 3) and its migration."""

import json
from pathlib import Path

import pytest

from dlstudio.core.errors import GraphError, ProjectError
from dlstudio.core.project import migrations
from dlstudio.core.project.fileformat import load_project, project_from_json, project_to_json
from dlstudio.core.project.pretrained import WeightsSource
from dlstudio.core.project.templates import load_template

FIXTURES = Path(__file__).parent / "fixtures"


def lenet():
    project = load_template("lenet5")
    return project, list(project.graph.nodes)


def test_group_ungroup_and_undo_restore_the_same_block():
    project, ids = lenet()
    changes = []
    project.blocks.changed.connect(lambda: changes.append(1))
    block = project.blocks.group(ids[1:4], "features")
    assert block.nodes == tuple(ids[1:4]) and block.name == "features" and not block.collapsed
    assert project.blocks.block_of(ids[2]) == block and project.blocks.block_of(ids[5]) is None
    removed, index = project.blocks.ungroup(block.id)
    assert len(project.blocks) == 0 and removed == block
    project.blocks.add(removed, index)
    assert list(project.blocks) == [block]
    project.blocks.set_collapsed(block.id, True)
    project.blocks.rename(block.id, "stem")
    assert project.blocks.get(block.id).collapsed and project.blocks.get(block.id).name == "stem"
    assert len(changes) == 5


def test_a_node_is_in_one_block_at_most_and_refusals_name_it():
    project, ids = lenet()
    project.blocks.group(ids[1:3], "a")
    name = project.graph.node(ids[2]).name
    with pytest.raises(GraphError, match=f"{name} is already in block a"):
        project.blocks.group(ids[2:4], "b")
    with pytest.raises(GraphError, match="at least one node"):
        project.blocks.group([], "c")
    with pytest.raises(GraphError, match="no node"):
        project.blocks.group(["nope"], "c")


def test_the_boundary_is_the_edges_crossing_the_block():
    project, ids = lenet()
    block = project.blocks.group(ids[1:3])
    entering, leaving = project.blocks.boundary(block.id)
    assert [(e.src, e.dst) for e in entering] == [(ids[0], ids[1])]
    assert [(e.src, e.dst) for e in leaving] == [(ids[2], ids[3])]


def test_a_removed_node_leaves_its_block_and_the_frozen_set():
    project, ids = lenet()
    project.blocks.group(ids[1:3], "pair")
    project.frozen.set(ids[1:3], True)
    project.graph.remove_node(ids[1])
    assert project.blocks.block_of(ids[2]).nodes == (ids[2],)
    assert list(project.frozen) == [ids[2]]
    project.graph.remove_node(ids[2])
    assert len(project.blocks) == 0 and len(project.frozen) == 0
    # A new node that gets a freed id starts ungrouped and trainable.
    node = project.graph.add_node("ReLU", node_id=ids[2])
    assert project.blocks.block_of(node.id) is None and node.id not in project.frozen


def test_blocks_frozen_and_weights_round_trip_byte_for_byte():
    project, ids = lenet()
    project.blocks.group(ids[1:4], "features", collapsed=True)
    project.frozen.set(ids[1:4], True)
    project.set_weights(WeightsSource("torchvision", model="resnet18", weights="IMAGENET1K_V1",
                                      key_map={"conv1.weight": "conv1.weight"}))
    text = project_to_json(project)
    again = project_from_json(text)
    assert project_to_json(again) == text
    assert [b.to_doc() for b in again.blocks] == [b.to_doc() for b in project.blocks]
    assert list(again.frozen) == sorted(ids[1:4])
    assert again.weights == project.weights and again.weights.key_map == {"conv1.weight": "conv1.weight"}
    assert again.weights.describe() == "torchvision resnet18 (IMAGENET1K_V1)"


@pytest.mark.parametrize(("path", "value", "message"), [
    ("blocks", {}, "blocks: expected a list"),
    ("blocks", [{"id": "block1", "name": "x", "nodes": ["ghost"]}], r"blocks\[0\]: no node 'ghost'"),
    ("blocks", [{"id": "block1", "name": "x", "nodes": [], "collapsed": True}], r"blocks\[0\]: select at least"),
    ("blocks", [{"id": "block1", "name": "x", "nodes": ["conv1"], "extra": 1}], r"blocks\[0\]: unknown field"),
    ("frozen", ["ghost"], "frozen: 'ghost' is not a node of the graph"),
    ("weights", {"source": "cloud"}, "weights.source: expected one of torchvision, file, run"),
    ("weights", {"source": "file"}, "weights.path: expected text"),
    ("weights", {"source": "run", "path": "r", "model": "x"}, "weights: unknown field 'model' for source run"),
])
def test_damaged_blocks_frozen_or_weights_are_refused_naming_the_field(path, value, message):
    project, _ = lenet()
    doc = json.loads(project_to_json(project))
    doc[path] = value
    with pytest.raises(ProjectError, match=f"^lenet.dlstudio: {message}"):
        project_from_json(json.dumps(doc), source="lenet.dlstudio")


def test_frozen_v3_fixture_keeps_loading():
    project = load_project(FIXTURES / "project_v3.dlstudio")
    assert [b.to_doc() for b in project.blocks] == [
        {"id": "block1", "name": "features", "nodes": ["flatten1", "linear1", "relu1"], "collapsed": True}]
    assert list(project.frozen) == ["linear1"]
    assert project.weights == WeightsSource("run", path="project_v3.runs/20261203-120000")
    assert project.description.startswith("Frozen fixture of format 3")


def test_a_v2_file_migrates_to_no_blocks_nothing_frozen_random_weights():
    doc = json.loads((FIXTURES / "project_v2.dlstudio").read_text())
    upgraded = migrations.migrate(doc)
    assert upgraded["format_version"] == migrations.FORMAT_VERSION == 3
    assert upgraded["blocks"] == [] and upgraded["frozen"] == [] and upgraded["weights"] is None
    project = load_project(FIXTURES / "project_v2.dlstudio")
    assert len(project.blocks) == 0 and len(project.frozen) == 0 and project.weights is None
    assert project.normalization is not None  # what format 2 added is kept

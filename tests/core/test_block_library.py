"""Saved blocks ("My blocks"): a block's layers written to the user's folder and read back, checked."""

import json

import pytest

from dlstudio.core.errors import ProjectError
from dlstudio.core.project.block_library import (block_to_doc, file_name_for, list_saved_blocks, load_block,
                                                 save_block)
from dlstudio.core.project.templates import load_template


def grouped_lenet():
    project = load_template("lenet5")
    ids = list(project.graph.nodes)
    block = project.blocks.group(ids[1:4], "conv stage")
    return project, ids, block


def test_a_saved_block_keeps_layers_params_inner_edges_and_relative_layout(tmp_path):
    project, ids, block = grouped_lenet()
    path = save_block(project, block.id, folder=tmp_path)
    assert path == tmp_path / "conv stage.json"
    saved = load_block(path)
    assert saved.name == "conv stage" and saved.layers == 3
    assert [n["id"] for n in saved.nodes] == ids[1:4]
    assert saved.nodes[0]["params"] == project.graph.node(ids[1]).params
    inner = [e.to_dict() for e in project.graph.edges if e.src in ids[1:4] and e.dst in ids[1:4]]
    assert saved.edges == inner and len(inner) == 2
    x0, y0 = project.layout.position(ids[1])
    for node_id in ids[1:4]:
        x, y = project.layout.position(node_id)
        assert saved.positions[node_id] == (x - x0, y - y0)
    assert saved.positions[ids[1]] == (0.0, 0.0)
    fragment = saved.fragment((100.0, 50.0))
    assert fragment["positions"][ids[1]] == [100.0, 50.0]


def test_saving_again_under_the_name_replaces_and_the_list_is_by_name(tmp_path):
    project, ids, block = grouped_lenet()
    save_block(project, block.id, folder=tmp_path)
    save_block(project, block.id, name="Another", folder=tmp_path)
    project.graph.set_param(ids[1], "out_channels", 8)
    save_block(project, block.id, folder=tmp_path)
    blocks, refused = list_saved_blocks(tmp_path)
    assert [b.name for b in blocks] == ["Another", "conv stage"] and refused == []
    assert blocks[1].nodes[0]["params"]["out_channels"] == 8


def test_file_names_never_hold_separators_or_control_characters():
    assert file_name_for("a/b\\c:d") == "a_b_c_d.json"
    assert file_name_for("  ..  ") == "block.json"
    assert file_name_for("x\ny") == "x y.json"


@pytest.mark.parametrize("change, message", [
    (lambda d: d.update(format="other"), "not a saved dlstudio block"),
    (lambda d: d.update(format_version=99), "newer dlstudio"),
    (lambda d: d["nodes"][0].update(type="Warp"), "unknown layer type 'Warp'"),
    (lambda d: d["nodes"][0]["params"].update(out_channels=-3), "layer conv1: out channels"),
    (lambda d: d["edges"].append({"src": "x", "src_port": "out", "dst": "y", "dst_port": "in"}), "x"),
    (lambda d: d["positions"].update(conv1="here"), "positions.conv1"),
    (lambda d: d.update(nodes=[]), "expected a list of layers"),
])
def test_a_bad_file_is_refused_in_one_line_naming_it(tmp_path, change, message):
    project, ids, block = grouped_lenet()
    doc = block_to_doc(project, block.id)
    change(doc)
    path = tmp_path / "bad.json"
    path.write_text(json.dumps(doc))
    with pytest.raises(ProjectError, match=message) as caught:
        load_block(path)
    assert caught.value.message.startswith("bad.json") and "\n" not in caught.value.message
    blocks, refused = list_saved_blocks(tmp_path)
    assert blocks == [] and refused == [caught.value.message]


def test_not_json_and_a_missing_folder(tmp_path):
    (tmp_path / "junk.json").write_text("{nope")
    with pytest.raises(ProjectError, match="junk.json: not a saved block"):
        load_block(tmp_path / "junk.json")
    assert list_saved_blocks(tmp_path / "absent") == ([], [])

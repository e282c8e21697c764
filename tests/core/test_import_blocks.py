"""Imported networks arrive grouped into collapsed blocks by their module hierarchy (issue 12)."""

from __future__ import annotations

import textwrap
from pathlib import Path

import pytest

torch = pytest.importorskip("torch")
pytest.importorskip("torchvision")

from dlstudio.core.graph import check_node_id  # noqa: E402
from dlstudio.core.importer import import_module_class, import_torchvision  # noqa: E402
from dlstudio.core.importer.grouping import ModuleKind, onnx_scope_path, plan_blocks  # noqa: E402
from dlstudio.core.project import load_project, save_project  # noqa: E402
from dlstudio.core.project.model import Project  # noqa: E402

pytestmark = pytest.mark.usefixtures("one_torch_thread")

# name -> (top-level items when collapsed, some of its blocks, some of its loose nodes)
GROUPED = {
    "resnet18": (17, ["layer1.0", "layer4.1"], ["conv1", "maxpool", "fc"]),
    "resnet50": (25, ["layer1.0", "layer3.5", "layer4.2"], ["conv1", "bn1", "avgpool", "fc"]),
    "efficientnet_b0": (24, ["features.0", "features.1.0", "features.6.3", "features.7.0", "features.8"],
                        ["avgpool", "classifier.1"]),
    "mobilenet_v2": (25, ["features.0", "features.1", "features.17", "features.18"], ["classifier.1"]),
    "densenet121": (18, ["features.denseblock1", "features.transition1", "features.denseblock4"],
                    ["features.conv0", "classifier"]),
}


def top_level(project: Project) -> list[str]:
    """The ids of what the collapsed canvas shows: loose nodes and each block's first member."""
    hidden = {node_id for block in project.blocks for node_id in block.nodes[1:]}
    return [node_id for node_id in project.graph.nodes if node_id not in hidden]


@pytest.mark.timeout(60)
@pytest.mark.parametrize("name", list(GROUPED))
def test_torchvision_models_open_as_a_short_chain_of_collapsed_blocks(name: str, tmp_path: Path) -> None:
    count, block_names, loose_names = GROUPED[name]
    project = import_torchvision(name, num_classes=10).project
    graph = project.graph
    items = top_level(project)
    assert len(items) == count
    blocks = {block.name: block for block in project.blocks}
    assert set(block_names) <= set(blocks)
    assert all(block.collapsed for block in project.blocks)
    for loose in loose_names:
        assert project.blocks.block_of(graph.node_named(loose).id) is None, loose
    order = graph.topological_order()
    for block in project.blocks:
        check_node_id(block.id)
        assert block.id not in graph
        # Members are the module's own nodes, in the order they compute; the first takes the block's place.
        assert all(graph.node(node_id).name.startswith(block.name + ".") or graph.node(node_id).name == block.name
                   for node_id in block.nodes), block.name
        assert list(block.nodes) == sorted(block.nodes, key=order.index)
        entering, _ = project.blocks.boundary(block.id)
        assert {edge.dst for edge in entering} <= set(block.nodes)
    assert len({block.id for block in project.blocks}) == len(project.blocks)
    # The collapsed view: every item has its own spot; a block's members each have their own too.
    spots = [project.layout.position(node_id) for node_id in items]
    assert None not in spots and len(set(spots)) == len(spots)
    for block in project.blocks:
        inside = [project.layout.position(node_id) for node_id in block.nodes]
        assert len(set(inside)) == len(inside)
    # Saved and loaded, the blocks are the same.
    path = tmp_path / f"{name}.dlstudio"
    save_project(project, path)
    loaded = load_project(path)
    assert loaded.blocks.to_doc() == project.blocks.to_doc()
    assert loaded.layout.positions == project.layout.positions


@pytest.mark.timeout(30)
def test_resnet50_bottleneck_blocks_hold_the_whole_bottleneck() -> None:
    project = import_torchvision("resnet50", num_classes=10).project
    graph = project.graph
    block = next(block for block in project.blocks if block.name == "layer2.0")
    names = {graph.node(node_id).name for node_id in block.nodes}
    assert {"layer2.0.conv1", "layer2.0.conv3", "layer2.0.downsample.0", "layer2.0.downsample.1",
            "layer2.0.add"} <= names
    # One edge into the bottleneck (its input feeds conv1 and the downsample), one out of it.
    entering, leaving = project.blocks.boundary(block.id)
    assert {edge.src for edge in entering} == {graph.node_named("layer1.2.relu_3").id}
    assert len(leaving) == 2  # layer2.1's conv1 and its identity shortcut


@pytest.mark.timeout(30)
def test_a_module_class_is_grouped_by_its_own_submodules(tmp_path: Path) -> None:
    path = tmp_path / "stacked.py"
    path.write_text(textwrap.dedent('''
        import torch
        from torch import nn


        class Stage(nn.Module):
            def __init__(self, width):
                super().__init__()
                self.conv = nn.Conv2d(width, width, 3, padding=1)
                self.norm = nn.BatchNorm2d(width)

            def forward(self, x):
                return torch.relu(x + self.norm(self.conv(x)))


        class Net(nn.Module):
            def __init__(self):
                super().__init__()
                self.stem = nn.Conv2d(3, 8, 3, padding=1)
                self.stages = nn.ModuleList([Stage(8) for _ in range(3)])
                self.head = nn.Linear(8, 4)

            def forward(self, x):
                x = self.stem(x)
                for stage in self.stages:
                    x = stage(x)
                return self.head(x.mean((2, 3)))
    '''), encoding="utf-8")
    project = import_module_class(f"{path}:Net", input_shape=(3, 8, 8)).project
    assert [block.name for block in project.blocks] == ["stages.0", "stages.1", "stages.2"]
    graph = project.graph
    assert [graph.node(n).name for n in project.blocks.get("block_stages_1").nodes] == [
        "stages.1.conv", "stages.1.norm", "stages.1.add", "stages.1.relu"]
    assert [graph.node(n).name for n in top_level(project)] == [
        "input", "stem", "stages.0.conv", "stages.1.conv", "stages.2.conv", "mean", "head", "output"]


def test_a_lone_encoder_opens_into_its_layers_but_repeated_blocks_stay_closed() -> None:
    """vit-like: one Encoder holding 12 layers opens; 16 bottlenecks of one type do not."""
    order = ["input", "embed", "pos", *[f"l{i}_{part}" for i in range(12) for part in ("attn", "mlp", "add")],
             "ln", "head", "output"]
    paths = {"embed": "conv_proj", "pos": "encoder", "ln": "encoder.ln", "head": "heads.head"}
    for i in range(12):
        for part in ("attn", "mlp", "add"):
            paths[f"l{i}_{part}"] = f"encoder.layers.layer{i}" + ("" if part == "add" else f".{part}")
    modules = {"conv_proj": ModuleKind("Conv2d"), "encoder": ModuleKind("Encoder"),
               "encoder.layers": ModuleKind("Sequential", container=True), "encoder.ln": ModuleKind("LayerNorm"),
               "heads": ModuleKind("Sequential", container=True), "heads.head": ModuleKind("Linear")}
    modules.update({f"encoder.layers.layer{i}": ModuleKind("EncoderBlock") for i in range(12)})
    blocks = plan_blocks(order, paths, modules, taken_ids=order)
    assert [block.name for block in blocks] == [f"encoder.layers.layer{i}" for i in range(12)]
    assert blocks[0].id == "block_encoder_layers_layer0" and blocks[0].nodes == ("l0_attn", "l0_mlp", "l0_add")
    # With room for only a few items nothing opens: the encoder stays one block.
    (encoder,) = plan_blocks(order, paths, modules, limit=8)
    assert encoder.name == "encoder" and len(encoder.nodes) == 1 + 36 + 1


def test_block_ids_never_take_a_node_id() -> None:
    order = ["block_a", "a_x", "a_y"]
    paths = {"a_x": "a", "a_y": "a", "b_x": "b", "b_y": "b"}
    blocks = plan_blocks([*order, "b_x", "b_y"], paths, {"a": ModuleKind("Thing"), "b": ModuleKind("Thing")},
                         taken_ids=order)
    assert blocks[0].id == "block_a_2"


def test_onnx_scope_names_read_back_as_module_paths() -> None:
    names = {"/layer1/layer1.0/conv1/Conv": "layer1.0.conv1",
             "/layer2/layer2.0/downsample/downsample.0/Conv": "layer2.0.downsample.0",
             "/layer1/layer1.0/Add": "layer1.0", "/fc/Gemm": "fc", "Conv_0": "", "/Sub": "",
             "/features/features.2/features.2.1/block/block.1/block.1.2/Mul": "features.2.1.block.1.2"}
    assert {name: onnx_scope_path(name) for name in names} == names

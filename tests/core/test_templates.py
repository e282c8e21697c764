"""The shipped templates load, compile, and run a forward pass of the shapes inference promises."""

from __future__ import annotations

import pytest
import torch

from dlstudio.core.compiler import compile_graph
from dlstudio.core.errors import ProjectError
from dlstudio.core.project import TemplateInfo, default_project, list_templates, load_template
from dlstudio.core.shapes import infer_graph

# Drawn by tools/make_templates.py on the bundled digits; the last one is an imported network.
DRAWN = ["mlp", "deep-mlp", "lenet5", "vgg-mini", "resnet-mini", "autoencoder"]
NAMES = [*DRAWN, "finetune-mobilenet"]


def test_the_seven_templates_are_listed_simplest_first():
    infos = list_templates()
    assert [info.name for info in infos] == NAMES
    for info in infos:
        assert isinstance(info, TemplateInfo)
        assert info.title
        assert info.description and "\n" not in info.description


def test_an_opened_template_is_named_by_its_title_until_it_is_saved(tmp_path):
    from dlstudio.core.project import save_project

    project = load_template("resnet-mini")
    assert project.path is None and project.name == "ResNet-style CNN"
    save_project(project, tmp_path / "mine.dlstudio")
    assert project.name == "mine"


@pytest.mark.parametrize("name", NAMES)
def test_template_compiles_and_forward_gives_the_inferred_shape(name):
    project = load_template(name)
    assert project.path is None
    assert project.data["source"] == ("digits" if name in DRAWN else "folder")
    infos = infer_graph(project.graph)
    assert all(info.ok for info in infos.values()), [info.error for info in infos.values() if info.error]
    model = compile_graph(project.graph, infos).eval()
    (input_id,) = model.input_ids
    (output_id,) = model.output_ids
    batch = torch.rand(3, *model.input_shapes[input_id])
    with torch.no_grad():
        result = model(batch)
    assert tuple(result.shape) == (3, *infos[output_id].output_shape)
    if project.graph.node(output_id).params["task"] == "reconstruction":
        assert result.shape == batch.shape
    else:
        assert tuple(result.shape) == (3, project.graph.node(output_id).params["classes"])


@pytest.mark.parametrize("name", DRAWN)
def test_every_template_node_has_a_position_left_to_right(name):
    project = load_template(name)
    positions = project.layout.positions
    assert set(positions) == set(project.graph.nodes)
    for edge in project.graph.edges:
        assert positions[edge.src][0] < positions[edge.dst][0], str(edge)


def _upstream(graph, node_id):
    """``node_id`` and every node it depends on."""
    seen, stack = set(), [node_id]
    while stack:
        current = stack.pop()
        if current not in seen:
            seen.add(current)
            stack.extend(graph.predecessors(current))
    return seen


def test_resnet_mini_has_real_skip_connections():
    graph = load_template("resnet-mini").graph
    order = graph.topological_order()
    adds = [node.id for node in graph if node.type == "Add"]
    assert len(adds) == 3
    for add in adds:
        main, skip = graph.predecessors(add)
        assert main != skip
        # Where the two paths split: the latest node both inputs depend on (the block's input).
        split = max(_upstream(graph, main) & _upstream(graph, skip), key=order.index)
        main_only = _upstream(graph, main) - _upstream(graph, split)
        skip_only = _upstream(graph, skip) - _upstream(graph, split)
        assert [graph.node(n).type for n in main_only].count("Conv2d") == 2
        # The shortcut is the block input itself, or a 1x1 projection when the shape changes.
        assert all(graph.node(n).type in ("Conv2d", "BatchNorm2d") for n in skip_only)
        assert all(graph.node(n).params["kernel_size"] == 1 for n in skip_only if graph.node(n).type == "Conv2d")
    identity_adds = [add for add in adds if graph.node(graph.predecessors(add)[1]).type == "ReLU"]
    assert len(identity_adds) == 1


def test_the_fine_tuning_template_starts_from_imagenet_weights_with_its_backbone_frozen():
    project = load_template("finetune-mobilenet")
    assert set(project.layout.positions) == set(project.graph.nodes)  # the importer's layout, in rows
    weights = project.weights
    assert (weights.kind, weights.model, weights.weights) == ("torchvision", "mobilenet_v3_small", "IMAGENET1K_V1")
    assert set(weights.key_map) == set(compile_graph(project.graph).state_dict())
    trained = [node.name for node in project.graph
               if node.id not in project.frozen and any(key.startswith(f"{node.id}.") for key in weights.key_map)]
    assert trained == ["classifier.0", "classifier.3"]  # only the classifier learns
    assert all(project.graph.node(node_id).name.startswith("features") for node_id in project.frozen)
    assert (project.data["path"], project.training["optimizer"], project.training["learning_rate"],
            project.training["batch_size"]) == ("", "adam", 0.001, 32)


def test_default_project_is_lenet5_on_the_bundled_digits():
    project = default_project()
    assert project.path is None
    assert project.data["source"] == "digits"
    assert [node.type for node in project.graph].count("Conv2d") == 2
    assert project.graph.to_dict() == load_template("lenet5").graph.to_dict()
    assert project.training["optimizer"] == "adam"
    assert project.training["learning_rate"] == 0.001
    assert project.training["batch_size"] == 64
    assert project.training["epochs"] == 15


def test_unknown_template_is_refused_with_the_available_names():
    with pytest.raises(ProjectError, match="no template 'lenet6'.*lenet5"):
        load_template("lenet6")

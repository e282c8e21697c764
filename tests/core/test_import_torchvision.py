"""Importing torchvision classifiers by name as editable graphs (random weights; nothing is downloaded)."""

from __future__ import annotations

from pathlib import Path

import pytest

torch = pytest.importorskip("torch")
pytest.importorskip("torchvision")

from dlstudio import cli  # noqa: E402
from dlstudio.core.compiler import compile_graph  # noqa: E402
from dlstudio.core.importer import ImportResult, ModelImportError, import_torchvision, trace_torchvision  # noqa: E402
from dlstudio.core.project import load_project, save_project  # noqa: E402
from dlstudio.core.shapes import infer_graph  # noqa: E402

# (name, a second input size besides 224 that the architecture takes)
ARCHITECTURES = [
    ("resnet18", 64), ("mobilenet_v2", 64), ("vgg11_bn", 64), ("squeezenet1_1", 64),
    ("mobilenet_v3_small", 64), ("shufflenet_v2_x0_5", 64), ("efficientnet_b0", 64), ("regnet_y_400mf", 64),
    ("densenet121", 64), ("convnext_tiny", 64), ("mnasnet0_5", 64), ("googlenet", 64), ("resnet50", 64),
]


def _params(names: list[tuple[str, int]]) -> list[object]:
    return [pytest.param(name, size, id=name) for name, size in names]


def _compiled(result: ImportResult) -> torch.nn.Module:
    assert result.project is not None
    model = compile_graph(result.project.graph).eval()
    result.load_into(model)
    return model


@pytest.mark.timeout(60)
@pytest.mark.parametrize(("name", "size"), _params(ARCHITECTURES))
def test_imported_graph_computes_what_torchvision_computes(name: str, size: int, tmp_path: Path) -> None:
    torch.manual_seed(0)
    result = import_torchvision(name, num_classes=10)
    assert result.unmapped == []
    graph = result.project.graph
    model = _compiled(result)
    with torch.no_grad():
        for shape in ((2, 3, size, size), (1, 3, 224, 224)):
            x = torch.randn(*shape)
            expected, got = result.source(x), model(x)
            assert got.shape == expected.shape == (shape[0], 10)
            assert torch.allclose(got, expected, atol=1e-5), (shape, (got - expected).abs().max().item())
    # The parameters the graph shows are the source's, every one of them.
    source_count = sum(p.numel() for p in result.source.parameters())
    assert sum(info.params for info in infer_graph(graph).values()) == source_count == result.param_count
    assert sum(p.numel() for p in model.parameters()) == source_count
    # The project saves and loads to the same graph, with a position for every node.
    path = tmp_path / f"{name}.dlstudio"
    save_project(result.project, path)
    loaded = load_project(path)
    assert loaded.graph.to_dict() == graph.to_dict()
    assert set(loaded.layout.positions) == set(graph.nodes)


@pytest.mark.timeout(30)
def test_nodes_are_named_by_module_path_and_weights_map_by_node_id() -> None:
    result = import_torchvision("resnet18")
    graph = result.project.graph
    conv = graph.node_named("layer1.0.conv1")
    assert conv is not None and conv.id == "layer1_0_conv1" and conv.type == "Conv2d"
    assert conv.params["out_channels"] == 64 and conv.params["bias"] is False
    assert result.key_map["layer1_0_conv1.weight"] == "layer1.0.conv1.weight"
    assert result.key_map["layer1_0_bn1.running_var"] == "layer1.0.bn1.running_var"
    # Functions get the path of the block they sit in; a module called twice gets a free name.
    assert graph.node_named("layer1.0.add").type == "Add"
    assert graph.node_named("layer1.0.relu_2").type == "ReLU"
    types = [node.type for node in graph]
    assert types[0] == "Input" and types[-1] == "Output"
    assert graph.node("input").params["shape"] == [3, 224, 224]
    assert graph.node("output").params == {"task": "classification", "classes": 1000}
    # Laid out collapsed: no two top-level items (loose nodes, blocks at their first member) on one spot.
    project = result.project
    grouped = {node_id for block in project.blocks for node_id in block.nodes[1:]}
    items = [project.layout.position(node_id) for node_id in graph.nodes if node_id not in grouped]
    assert len(set(items)) == len(items) == 17


@pytest.mark.timeout(30)
def test_chunk_becomes_slices_and_channel_shuffle_a_node() -> None:
    graph = import_torchvision("shufflenet_v2_x0_5", num_classes=10).project.graph
    first, second = graph.node_named("stage2.1.part0"), graph.node_named("stage2.1.part1")
    assert (first.type, first.params) == ("Slice", {"dim": 1, "start": 0, "end": 24})
    assert (second.type, second.params) == ("Slice", {"dim": 1, "start": 24, "end": 48})
    assert graph.node_named("stage2.1.channel_shuffle").params == {"groups": 2}
    assert graph.node_named("mean").type == "Mean"


@pytest.mark.timeout(30)
def test_state_dict_for_refuses_a_model_it_does_not_map() -> None:
    result = import_torchvision("squeezenet1_1", num_classes=10)
    other = import_torchvision("resnet18", num_classes=10)
    with pytest.raises(ModelImportError, match="no weights of the source model map to it"):
        result.state_dict_for(compile_graph(other.project.graph))


@pytest.mark.timeout(30)
def test_an_architecture_with_unmapped_operations_is_refused_with_one_line() -> None:
    with pytest.raises(ModelImportError) as caught:
        import_torchvision("vit_b_16", num_classes=10)
    message = caught.value.message
    assert "\n" not in message
    assert message.startswith("cannot import vit_b_16: ") and "has no layer type" in message
    unmapped = caught.value.result.unmapped
    assert unmapped and all(item.name and item.reason for item in unmapped)
    assert unmapped[0].name in message
    # The result without raising lists the same operations and holds no project.
    result = trace_torchvision("vit_b_16", num_classes=10)
    assert result.project is None and result.unmapped == unmapped


@pytest.mark.timeout(10)
@pytest.mark.parametrize(("name", "fragment"), [("resnet7", "unknown torchvision model 'resnet7'"),
                                                ("fcn_resnet50", "not an image classification model")])
def test_names_that_are_no_classifier_are_refused(name: str, fragment: str) -> None:
    with pytest.raises(ModelImportError, match=fragment):
        import_torchvision(name)


def _run_cli(capsys: pytest.CaptureFixture[str], *argv: str) -> tuple[int, str, str]:
    code = cli.main(list(argv))
    out, err = capsys.readouterr()
    return code, out, err


@pytest.mark.timeout(60)
def test_cli_import_writes_a_project(capsys: pytest.CaptureFixture[str], tmp_path: Path) -> None:
    path = tmp_path / "net.dlstudio"
    code, out, err = _run_cli(capsys, "import", "mobilenet_v2", "-o", str(path), "--classes", "5")
    assert code == 0, err
    assert "mobilenet_v2" in out and "5 classes" in out and "no weights" in out
    project = load_project(path)
    assert project.graph.node("output").params["classes"] == 5
    assert project.graph.node_named("classifier.1").params["out_features"] == 5
    # An existing file is kept unless --force.
    code, _, err = _run_cli(capsys, "import", "mobilenet_v2", "-o", str(path))
    assert code == 2 and "already exists" in err


@pytest.mark.timeout(60)
def test_cli_imports_every_classifier_and_refuses_a_bad_class_count(capsys: pytest.CaptureFixture[str],
                                                                     tmp_path: Path) -> None:
    # vit_b_16 computes in its own forward what no node holds: it arrives as one opaque node, never a refusal.
    path = tmp_path / "vit.dlstudio"
    code, out, err = _run_cli(capsys, "import", "vit_b_16", "-o", str(path))
    assert code == 0, err
    assert [node.type for node in load_project(path).graph] == ["Input", "TorchvisionModule", "Output"]
    code, _, err = _run_cli(capsys, "import", "resnet18", "-o", str(tmp_path / "r.dlstudio"), "--classes", "1")
    assert code == 2 and "number of classes must be 2 to 100000" in err


@pytest.mark.timeout(10)
def test_import_help_says_where_weights_come_from(capsys: pytest.CaptureFixture[str]) -> None:
    code, out, _ = _run_cli(capsys, "import", "--help")
    text = " ".join(out.split())
    assert code == 0 and "--weights" in text and "without it training starts from random weights" in text


@pytest.mark.timeout(120)
def test_cli_imports_swin_t_with_its_attention_blocks_as_opaque_modules(capsys: pytest.CaptureFixture[str],
                                                                      tmp_path: Path) -> None:
    path = tmp_path / "swin.dlstudio"
    code, out, err = _run_cli(capsys, "import", "swin_t", "-o", str(path), "--classes", "10")
    assert code == 0, err
    opaque = [node for node in load_project(path).graph if node.type == "TorchvisionModule"]
    assert opaque and all(node.params["model"] == "swin_t" and node.params["reason"] for node in opaque)


def test_the_opaque_module_type_is_not_offered_in_the_palette() -> None:
    from dlstudio.core.layers import all_specs

    assert [spec.type_id for spec in all_specs() if not spec.in_palette] == ["TorchvisionModule", "OnnxModule"]

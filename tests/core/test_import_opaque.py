"""Opaque "Module (torchvision)" nodes: what an import cannot map is kept whole with its weights (issue 12)."""

from __future__ import annotations

import subprocess
import sys
import textwrap
from pathlib import Path

import pytest

torch = pytest.importorskip("torch")
pytest.importorskip("torchvision")

from test_export_python import assert_exported_equals_compiled, chain, classify, imported_roots, with_input  # noqa: E402

from dlstudio.core.compiler import compile_graph  # noqa: E402
from dlstudio.core.errors import ShapeError  # noqa: E402
from dlstudio.core.export.python_code import export_python  # noqa: E402
from dlstudio.core.graph import Graph  # noqa: E402
from dlstudio.core.importer import ModelImportError, import_module_class, import_torchvision  # noqa: E402
from dlstudio.core.project import load_project, save_project  # noqa: E402
from dlstudio.core.project.model import Project  # noqa: E402
from dlstudio.core.shapes import infer_graph  # noqa: E402

pytestmark = pytest.mark.usefixtures("one_torch_thread")

STEM = {"model": "mobilenet_v3_small", "num_classes": 10, "path": "features.0", "input_shape": [3, 32, 32],
        "output_shape": [16, 16, 16], "param_count": 464, "reason": "Kept whole for the test."}


def stem_graph() -> Graph:
    """Input (3, 32, 32) -> mobilenet_v3_small's stem as an opaque module -> Flatten, Linear, Output."""
    graph = with_input([3, 32, 32])
    last = chain(graph, "input1", ("stem", "TorchvisionModule", dict(STEM)))
    return classify(graph, last, classes=4)


@pytest.mark.timeout(180)
def test_swin_t_imports_with_opaque_modules_that_keep_the_weights(tmp_path: Path) -> None:
    torch.manual_seed(0)
    result = import_torchvision("swin_t", num_classes=10, opaque=True)
    assert result.unmapped == [] and result.project is not None
    graph = result.project.graph
    opaque = [node for node in graph if node.type == "TorchvisionModule"]
    # Every shifted-window attention (2 + 2 + 6 + 2 blocks) and the 3 patch mergings, each kept whole.
    assert len(opaque) == 15
    attn = graph.node_named("features.1.0.attn")
    assert attn.type == "TorchvisionModule"
    assert attn.params["model"] == "swin_t" and attn.params["num_classes"] == 10
    assert attn.params["path"] == "features.1.0.attn"
    assert attn.params["input_shape"] == attn.params["output_shape"] == [56, 56, 96]
    assert attn.params["param_count"] == sum(p.numel() for p in result.source.features[1][0].attn.parameters())
    reason = attn.params["reason"]
    assert reason.startswith("ShiftedWindowAttention ") and "_get_relative_position_bias" in reason
    assert reason.endswith(".") and "\n" not in reason
    merging = graph.node_named("features.2")
    assert merging.type == "TorchvisionModule" and "_patch_merging_pad" in merging.params["reason"]
    # The weights map onto the submodule's own state_dict keys.
    assert result.key_map[f"{attn.id}.qkv.weight"] == "features.1.0.attn.qkv.weight"
    # Shape inference shows the recorded shapes and counts every parameter of the source.
    infos = infer_graph(graph)
    assert infos[attn.id].output_shapes["out"] == (56, 56, 96)
    assert sum(info.params for info in infos.values()) == result.param_count
    # The compiled graph, with the source's weights, computes what swin_t computes.
    model = compile_graph(graph).eval()
    result.load_into(model)
    x = torch.randn(1, 3, 224, 224)
    with torch.no_grad():
        expected, got = result.source(x), model(x)
    assert got.shape == expected.shape == (1, 10)
    assert torch.allclose(got, expected, atol=1e-5), (got - expected).abs().max().item()
    # Saved and loaded, the graph is the same.
    path = tmp_path / "swin.dlstudio"
    save_project(result.project, path)
    assert load_project(path).graph.to_dict() == graph.to_dict()


@pytest.mark.timeout(60)
def test_without_opaque_nodes_swin_t_is_still_refused() -> None:
    with pytest.raises(ModelImportError, match="cannot import swin_t: .*has no layer type"):
        import_torchvision("swin_t", num_classes=10)


@pytest.mark.timeout(60)
def test_operations_in_the_models_own_forward_keep_the_whole_model_as_one_node() -> None:
    # vit_b_16 reshapes, prepends its class token and indexes it in its own forward: nothing smaller to keep.
    torch.manual_seed(0)
    result = import_torchvision("vit_b_16", num_classes=10, opaque=True)
    graph = result.project.graph
    assert [node.type for node in graph] == ["Input", "TorchvisionModule", "Output"]
    (node,) = [node for node in graph if node.type == "TorchvisionModule"]
    assert node.name == "vit_b_16" and node.params["path"] == ""
    assert node.params["input_shape"] == [3, 224, 224] and node.params["output_shape"] == [10]
    assert node.params["param_count"] == result.param_count
    reason = node.params["reason"]
    assert reason.startswith("The whole model is one node: it computes with ") and "getattr" in reason
    assert "\n" not in reason
    model = compile_graph(graph).eval()
    result.load_into(model)
    x = torch.randn(1, 3, 224, 224)
    with torch.no_grad():
        assert torch.equal(model(x), result.source(x))
    # Without opaque nodes it is still refused, naming what has no layer type.
    with pytest.raises(ModelImportError) as caught:
        import_torchvision("vit_b_16", num_classes=10)
    message = caught.value.message
    assert "\n" not in message and message.startswith("cannot import vit_b_16: ")
    assert any(item.operation == "getattr" for item in caught.value.result.unmapped)


@pytest.mark.timeout(120)
def test_a_module_taking_several_inputs_gives_way_to_the_module_around_it() -> None:
    # maxvit_t's window partitions take (x, p): each partition attention layer around them is kept whole.
    torch.manual_seed(0)
    result = import_torchvision("maxvit_t", num_classes=10, opaque=True)
    graph = result.project.graph
    node = graph.node_named("blocks.0.layers.0.layers.window_attention")
    assert node.type == "TorchvisionModule"
    reason = node.params["reason"]
    assert reason.startswith("PartitionAttentionLayer holds blocks.0.layers.0.layers.window_attention.partition_op "
                             "(WindowPartition), which has no layer type and cannot be kept whole on its own: "
                             "it takes more than one input")
    assert not any(n.params["path"].endswith("partition_op") for n in graph if n.type == "TorchvisionModule")
    model = compile_graph(graph).eval()
    result.load_into(model)
    x = torch.randn(1, 3, 224, 224)
    with torch.no_grad():
        expected, got = result.source(x), model(x)
    assert torch.allclose(got, expected, atol=1e-5), (got - expected).abs().max().item()


@pytest.mark.timeout(60)
def test_a_user_module_with_an_unmappable_submodule_is_still_refused(tmp_path: Path) -> None:
    path = tmp_path / "sorting_net.py"
    path.write_text(textwrap.dedent('''
        import torch
        from torch import nn


        class Sorter(nn.Module):
            def forward(self, x):
                return torch.sort(x, dim=1)[0]


        class Net(nn.Module):
            def __init__(self):
                super().__init__()
                self.sort = Sorter()
                self.head = nn.Linear(4, 3)

            def forward(self, x):
                return self.head(self.sort(x))
    '''), encoding="utf-8")
    with pytest.raises(ModelImportError, match="has no layer type"):
        import_module_class(f"{path}:Net", input_shape=(4,))


@pytest.mark.timeout(60)
def test_an_opaque_node_refuses_another_input_shape_naming_the_node() -> None:
    graph = with_input([3, 64, 64])
    chain(graph, "input1", ("stem", "TorchvisionModule", dict(STEM)))
    error = infer_graph(graph)["stem"].error
    assert isinstance(error, ShapeError) and error.node_id == "stem"
    assert error.message == "this imported module was traced for (N, 3, 32, 32); it receives (N, 3, 64, 64)"


@pytest.mark.timeout(60)
def test_a_project_with_an_opaque_node_saves_loads_and_compiles(tmp_path: Path) -> None:
    graph = stem_graph()
    path = tmp_path / "stem.dlstudio"
    save_project(Project(graph=graph), path)
    loaded = load_project(path).graph
    assert loaded.to_dict() == graph.to_dict()
    assert loaded.node("stem").params == {**STEM, "macs": 0}  # a node written without its MACs: not counted
    model = compile_graph(loaded).eval()
    with torch.no_grad():
        assert model(torch.randn(2, 3, 32, 32)).shape == (2, 4)
    assert sum(p.numel() for p in model.stem.parameters()) == 464
    # Each compiled graph has its own module (built once per source model, then copied).
    other = compile_graph(loaded)
    assert other.stem is not model.stem
    assert other.stem[0].weight.data_ptr() != model.stem[0].weight.data_ptr()


@pytest.mark.timeout(120)
def test_the_python_export_builds_the_module_from_torchvision_and_runs(tmp_path: Path) -> None:
    graph = stem_graph()
    code = assert_exported_equals_compiled(graph, tmp_path, "opaque_stem")
    assert imported_roots(code) == {"torch", "torchvision"}
    assert ('self.stem = torchvision.models.get_model("mobilenet_v3_small", weights=None, num_classes=10)'
            '.get_submodule("features.0")') in code
    assert "import torchvision  # " in code and "needs torchvision" in code
    path = tmp_path / "model.py"
    path.write_text(export_python(graph), encoding="utf-8")
    result = subprocess.run([sys.executable, "-I", str(path)], capture_output=True, text=True, timeout=100,
                            cwd=tmp_path)
    assert result.returncode == 0, result.stderr
    assert result.stdout.strip() == "output shape: (2, 4)"


@pytest.mark.timeout(60)
def test_a_model_torch_fx_cannot_trace_is_kept_whole(monkeypatch: pytest.MonkeyPatch) -> None:
    from dlstudio.core.importer import torchvision_models

    def untraceable(name, *args, **kwargs):  # noqa: ANN001, ANN002, ANN003, ANN202 - stands in for the tracer
        raise torchvision_models._Untraceable(f"{name} cannot be traced by torch.fx: symbolically traced "
                                              "variables cannot be used as inputs to control flow",
                                              "symbolically traced variables cannot be used as inputs to control flow")

    monkeypatch.setattr(torchvision_models, "_trace_and_map", untraceable)
    torch.manual_seed(0)
    result = import_torchvision("resnet18", num_classes=10, opaque=True)
    (node,) = [node for node in result.project.graph if node.type == "TorchvisionModule"]
    assert node.params["reason"] == ("The whole model is one node: torch.fx cannot trace its forward (symbolically "
                                     "traced variables cannot be used as inputs to control flow).")
    model = compile_graph(result.project.graph).eval()
    result.load_into(model)
    x = torch.randn(2, 3, 64, 64)  # resnet takes any size; the node was traced for 224, the module does not mind
    with torch.no_grad():
        assert torch.equal(model.model(x), result.source(x))
    # Without opaque nodes the same model is refused, in one line.
    with pytest.raises(ModelImportError, match="^resnet18 cannot be traced by torch.fx: symbolically"):
        import_torchvision("resnet18", num_classes=10)

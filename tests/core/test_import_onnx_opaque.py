"""ONNX operations without a layer type become opaque "Module (ONNX)" nodes instead of a refused import."""

from __future__ import annotations

import time
import warnings
from pathlib import Path

import pytest

torch = pytest.importorskip("torch")
onnx = pytest.importorskip("onnx")
pytest.importorskip("onnx2torch")

from torch import nn  # noqa: E402

from dlstudio.core.compiler import compile_graph  # noqa: E402
from dlstudio.core.importer import ImportResult, import_onnx  # noqa: E402
from dlstudio.core.project import load_project, save_project  # noqa: E402
from onnx_files import export_onnx  # noqa: E402


class ErfNet(nn.Module):
    """A convolution, erf (no layer type), a convolution, a head."""

    def __init__(self) -> None:
        super().__init__()
        self.conv = nn.Conv2d(3, 6, 3, padding=1)
        self.conv2 = nn.Conv2d(6, 4, 3)
        self.head = nn.Linear(4 * 10 * 10, 5)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.head(torch.flatten(self.conv2(torch.erf(self.conv(x))), 1))


def _compiled(result: ImportResult) -> torch.nn.Module:
    model = compile_graph(result.project.graph).eval()
    result.load_into(model)
    return model


def _onnxruntime(path: Path, x: torch.Tensor) -> torch.Tensor:
    ort = pytest.importorskip("onnxruntime")
    session = ort.InferenceSession(str(path), providers=["CPUExecutionProvider"])
    (scores,) = session.run(None, {"input": x.numpy()})
    return torch.from_numpy(scores)


def _opaque(result: ImportResult) -> list:
    return [node for node in result.project.graph if node.type == "OnnxModule"]


@pytest.mark.timeout(60)
def test_an_operation_without_a_layer_type_is_an_opaque_node_keeping_the_weights(tmp_path: Path) -> None:
    torch.manual_seed(0)
    source = ErfNet().eval()
    shape = (3, 12, 12)
    path = export_onnx(source, tmp_path / "erf.onnx", shape)
    assert "Erf" in {node.op_type for node in onnx.load(str(path)).graph.node}
    result = import_onnx(path)
    assert result.ok
    (node,) = _opaque(result)
    assert node.params["operations"] == "Erf"
    assert node.params["input_shape"] == [6, 12, 12] and node.params["output_shape"] == [6, 12, 12]
    reason = node.params["reason"]
    assert reason.startswith("The ONNX operation Erf has no layer type") and "erf" in reason, reason
    assert reason.endswith(".") and "\n" not in reason
    assert str(path) not in node.params["onnx"] and str(tmp_path) not in node.params["onnx"]  # self-contained
    with torch.no_grad():
        model = _compiled(result)
        x = torch.randn(3, *shape)
        got = model(x)
        assert torch.allclose(got, source(x), atol=1e-5), (got - source(x)).abs().max().item()
        assert torch.allclose(got, _onnxruntime(path, x), atol=1e-5)
    # The project file keeps the node; loaded again, it compiles and computes the same.
    project_path = tmp_path / "erf.dlstudio"
    save_project(result.project, project_path)
    loaded = load_project(project_path)
    assert loaded.graph.to_dict() == result.project.graph.to_dict()
    with torch.no_grad():
        again = compile_graph(loaded.graph).eval()
        again.load_state_dict(model.state_dict())
        assert torch.equal(again(x), got)


@pytest.mark.timeout(120)
def test_shufflenet_exported_to_onnx_imports_with_opaque_nodes(tmp_path: Path) -> None:
    torchvision = pytest.importorskip("torchvision")
    torch.manual_seed(1)
    source = torchvision.models.get_model("shufflenet_v2_x0_5", weights=None, num_classes=10).eval()
    shape = (3, 64, 64)
    path = export_onnx(source, tmp_path / "shufflenet.onnx", shape)
    started = time.perf_counter()
    result = import_onnx(path)
    print(f"shufflenet_v2_x0_5: imported in {time.perf_counter() - started:.1f} s")
    opaque = _opaque(result)
    # Each block's channel shuffle (and the chunk of the blocks that split) computes with shapes while running.
    assert opaque and all("computes with a tensor's shape while running" in node.params["reason"] for node in opaque)
    assert any("Reshape" in node.params["operations"] for node in opaque)
    # Named after their modules, as a torchvision import names its nodes: a block kept whole by its path, a
    # block's shuffle beside its other layers, inside the block.
    names = {node.name for node in opaque}
    assert {"stage2.1", "stage3.7", "stage4.3", "stage2.0.Module"} <= names, sorted(names)
    blocks = {block.name: block for block in result.project.blocks}
    shuffle = result.project.graph.node_named("stage2.0.Module")
    assert shuffle is not None and shuffle.id in blocks["stage2.0"].nodes
    with torch.no_grad():
        model = _compiled(result)
        x = torch.randn(2, *shape)
        with warnings.catch_warnings():
            # The import itself is silent; running the compiled model runs onnx2torch's Slice of the blocks'
            # chunks (in opaque nodes), which indexes with a list, and torch warns about that each time.
            warnings.filterwarnings("ignore", message="Using a non-tuple sequence", category=UserWarning)
            got = model(x)
        difference = (got - source(x)).abs().max().item()
        print(f"shufflenet_v2_x0_5: max abs difference {difference:.2e}")
        assert torch.allclose(got, source(x), atol=1e-5), difference
        assert torch.allclose(got, _onnxruntime(path, x), atol=1e-5)
    assert sum(p.numel() for p in model.parameters()) == sum(p.numel() for p in source.parameters())


@pytest.mark.timeout(180)
def test_convnext_exported_to_onnx_imports_without_opaque_nodes(tmp_path: Path) -> None:
    torchvision = pytest.importorskip("torchvision")
    torch.manual_seed(2)
    source = torchvision.models.get_model("convnext_tiny", weights=None, num_classes=10).eval()
    shape = (3, 64, 64)
    path = export_onnx(source, tmp_path / "convnext.onnx", shape)
    result = import_onnx(path)
    # Each block's Linears (MatMul + Add, channels last) and exact GELU (Div, Erf, Add, Mul, Mul) are fused
    # into layer types: nothing stays opaque.
    assert not _opaque(result), [node.params["operations"] for node in _opaque(result)]
    assert [node.type for node in result.project.graph].count("GELU") == 18
    with torch.no_grad():
        model = _compiled(result)
        x = torch.randn(2, *shape)
        got = model(x)
        difference = (got - source(x)).abs().max().item()
        print(f"convnext_tiny: max abs difference {difference:.2e}")
        assert torch.allclose(got, source(x), atol=1e-5), difference


class ChannelsLastMlp(nn.Module):
    """ConvNeXt's pattern: Linear, exact GELU and Linear on (N, H, W, C); then a Linear on (N, L, C) and x * erf(x)."""

    def __init__(self) -> None:
        super().__init__()
        self.conv = nn.Conv2d(3, 4, 3)
        self.up = nn.Linear(4, 8)
        self.act = nn.GELU()
        self.down = nn.Linear(8, 4)
        self.seq = nn.Linear(4, 6)
        self.head = nn.Linear(6 * 100, 5)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        y = self.down(self.act(self.up(self.conv(x).permute(0, 2, 3, 1))))
        y = self.seq(y.reshape(-1, 100, 4))  # (N, L, C): no layer type takes it
        return self.head((y * torch.erf(y)).reshape(-1, 600))


@pytest.mark.timeout(60)
def test_linear_and_gelu_patterns_map_to_their_layer_types(tmp_path: Path) -> None:
    torch.manual_seed(3)
    source = ChannelsLastMlp().eval()
    shape = (3, 12, 12)
    path = export_onnx(source, tmp_path / "mlp.onnx", shape)
    result = import_onnx(path)
    types = [node.type for node in result.project.graph]
    assert types.count("GELU") == 1
    # up and down are Linears on the channels (1x1 convolutions); seq's MatMul and Add, and x * erf(x),
    # stay as the file wrote them.
    operations = sorted(node.params["operations"] for node in _opaque(result))
    assert any("MatMul" in ops for ops in operations) and any("Erf" in ops for ops in operations), operations
    assert not any("Gelu" in ops or "Linear" in ops for ops in operations), operations
    with torch.no_grad():
        model = _compiled(result)
        x = torch.randn(3, *shape)
        got = model(x)
        difference = (got - source(x)).abs().max().item()
        assert torch.allclose(got, source(x), atol=1e-5), difference
        assert torch.allclose(got, _onnxruntime(path, x), atol=1e-5)

"""Importing an ONNX file (opset 13 or newer, through onnx2torch) as an editable graph with its weights."""

from __future__ import annotations

import warnings
from pathlib import Path

import pytest

torch = pytest.importorskip("torch")
onnx = pytest.importorskip("onnx")
pytest.importorskip("onnx2torch")

from torch import nn  # noqa: E402

from dlstudio import cli  # noqa: E402
from dlstudio.core.compiler import compile_graph  # noqa: E402
from dlstudio.core.importer import ImportResult, ModelImportError, import_onnx  # noqa: E402
from dlstudio.core.project import load_project  # noqa: E402
from dlstudio.core.shapes import infer_graph  # noqa: E402
from onnx_files import export_onnx  # noqa: E402

SHAPE = (3, 12, 12)


class SmallNet(nn.Module):
    """conv -> bn -> relu -> maxpool, a residual block (x + y), global average pool, flatten, linear."""

    def __init__(self, num_classes: int = 5, width: int = 8) -> None:
        super().__init__()
        self.stem = nn.Conv2d(3, width, 3, padding=1)
        self.bn = nn.BatchNorm2d(width)
        self.pool = nn.MaxPool2d(2)
        self.conv = nn.Conv2d(width, width, 3, padding=1, bias=False)
        self.bn2 = nn.BatchNorm2d(width)
        self.gap = nn.AdaptiveAvgPool2d(1)
        self.head = nn.Linear(width, num_classes)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = self.pool(torch.relu(self.bn(self.stem(x))))
        x = torch.relu(x + self.bn2(self.conv(x)))
        return self.head(torch.flatten(self.gap(x), 1))


class ReshapeNet(nn.Module):
    """A concatenation, a product of two tensors, a reshape to (N, features) and a softmax."""

    def __init__(self) -> None:
        super().__init__()
        self.conv = nn.Conv2d(3, 4, 3)
        self.head = nn.Linear(8 * 10 * 10, 3)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        y = self.conv(x)
        y = torch.cat([y, y * y], 1)
        return torch.softmax(self.head(y.reshape(-1, 8 * 10 * 10)), 1)


def _randomized(model: nn.Module) -> nn.Module:
    """Distinct, non-trivial BatchNorm weights and statistics (equal ones would be shared in the file)."""
    with torch.no_grad():
        for module in model.modules():
            if isinstance(module, nn.BatchNorm2d):
                module.running_mean.uniform_(-0.5, 0.5)
                module.running_var.uniform_(0.5, 2.0)
                module.weight.uniform_(0.5, 1.5)
                module.bias.uniform_(-0.5, 0.5)
    return model.eval()


def _export(model: nn.Module, path: Path, *, opset: int = 17, dynamic: bool = True, fold: bool = False) -> Path:
    """Export with the TorchScript exporter; ``fold=True`` folds eval BatchNorm into the Conv before it."""
    options = {"dynamic_axes": {"input": {0: "N"}, "scores": {0: "N"}}} if dynamic else {}
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # the TorchScript exporter warns that it is deprecated
        torch.onnx.export(model, (torch.randn(2, *SHAPE),), str(path), dynamo=False, opset_version=opset,
                          input_names=["input"], output_names=["scores"],
                          training=torch.onnx.TrainingMode.EVAL if fold else torch.onnx.TrainingMode.PRESERVE,
                          do_constant_folding=fold, **options)
    return path


def _compiled(result: ImportResult) -> torch.nn.Module:
    assert result.project is not None
    model = compile_graph(result.project.graph).eval()
    result.load_into(model)
    return model


def _onnx_run(path: Path, x: torch.Tensor) -> torch.Tensor:
    """What the file computes, by onnx's own reference evaluator (not through torch)."""
    from onnx.reference import ReferenceEvaluator

    (scores,) = ReferenceEvaluator(str(path)).run(None, {"input": x.numpy()})
    return torch.from_numpy(scores)


@pytest.mark.timeout(60)
def test_an_onnx_file_computes_what_the_model_and_the_file_compute(tmp_path: Path) -> None:
    torch.manual_seed(0)
    source = _randomized(SmallNet())
    path = _export(source, tmp_path / "small.onnx")
    result = import_onnx(path)
    assert result.ok and result.name == "small.onnx" and result.num_classes == 5
    graph = result.project.graph
    assert graph.node("input").params["shape"] == list(SHAPE)
    assert graph.node("output").params == {"task": "classification", "classes": 5}
    types = sorted(node.type for node in graph.nodes.values())
    assert types == sorted(["Input", "Conv2d", "BatchNorm2d", "ReLU", "MaxPool2d", "Conv2d", "BatchNorm2d", "Add",
                            "ReLU", "AdaptiveAvgPool2d", "Flatten", "Linear", "Output"])
    add = next(node for node in graph.nodes.values() if node.type == "Add")
    assert len(graph.input_edges(add.id)) == 2

    with torch.no_grad():
        model = _compiled(result)
        for batch in (1, 3):
            x = torch.randn(batch, *SHAPE)
            expected, got = source(x), model(x)
            assert got.shape == expected.shape == (batch, 5)
            assert torch.allclose(got, expected, atol=1e-5), (got - expected).abs().max().item()
            from_file = _onnx_run(path, x)
            assert torch.allclose(got, from_file, atol=1e-5), (got - from_file).abs().max().item()
    source_count = sum(p.numel() for p in source.parameters())
    assert sum(info.params for info in infer_graph(graph).values()) == source_count == result.param_count
    assert sum(p.numel() for p in model.parameters()) == source_count


@pytest.mark.timeout(60)
def test_a_folded_file_with_fresh_batch_norms_maps_too(tmp_path: Path) -> None:
    """The exporter folds eval BatchNorm into Conv, or shares equal weights through Identity nodes."""
    torch.manual_seed(1)
    source = SmallNet().eval()  # fresh BatchNorms: equal ones and zeros, written once
    for fold in (True, False):
        path = _export(source, tmp_path / f"fresh{fold}.onnx", fold=fold)
        ops = {node.op_type for node in onnx.load(str(path)).graph.node}
        assert ("BatchNormalization" in ops) is (not fold) and ("Identity" in ops) is (not fold), ops
        result = import_onnx(path)
        types = [node.type for node in result.project.graph.nodes.values()]
        assert types.count("BatchNorm2d") == (0 if fold else 2)
        with torch.no_grad():
            model = _compiled(result)
            x = torch.randn(2, *SHAPE)
            assert torch.allclose(model(x), source(x), atol=1e-5)
            assert torch.allclose(model(x), _onnx_run(path, x), atol=1e-5)


@pytest.mark.timeout(60)
def test_concat_multiply_reshape_and_softmax_map(tmp_path: Path) -> None:
    torch.manual_seed(2)
    source = ReshapeNet().eval()
    path = _export(source, tmp_path / "reshape.onnx", opset=13)
    result = import_onnx(path)
    types = {node.type for node in result.project.graph.nodes.values()}
    assert {"Concat", "Multiply", "Flatten", "Softmax", "Linear"} <= types
    with torch.no_grad():
        model = _compiled(result)
        x = torch.randn(2, *SHAPE)
        assert torch.allclose(model(x), source(x), atol=1e-5)
        assert torch.allclose(model(x), _onnx_run(path, x), atol=1e-5)


@pytest.mark.timeout(60)
def test_gemm_without_transposed_weight_maps_to_linear(tmp_path: Path) -> None:
    """A hand-written Gemm with transB=0 (weight stored as (in, out)) and alpha/beta scales."""
    from onnx import TensorProto, helper, numpy_helper

    torch.manual_seed(3)
    weight, bias = torch.randn(6, 4), torch.randn(4)
    graph = helper.make_graph(
        [helper.make_node("Gemm", ["input", "W", "B"], ["scores"], transB=0, alpha=0.5, beta=2.0)], "gemm",
        [helper.make_tensor_value_info("input", TensorProto.FLOAT, ["N", 6])],
        [helper.make_tensor_value_info("scores", TensorProto.FLOAT, ["N", 4])],
        [numpy_helper.from_array(weight.numpy(), "W"), numpy_helper.from_array(bias.numpy(), "B")])
    path = tmp_path / "gemm.onnx"
    onnx.save(helper.make_model(graph, opset_imports=[helper.make_opsetid("", 13)]), str(path))
    result = import_onnx(path)
    assert result.project.graph.node("input").params["shape"] == [6]
    with torch.no_grad():
        model = _compiled(result)
        x = torch.randn(3, 6)
        expected = 0.5 * x @ weight + 2.0 * bias
        assert torch.allclose(model(x), expected, atol=1e-5)
        assert torch.allclose(model(x), _onnx_run(path, x), atol=1e-5)


def _sub_model(path: Path) -> Path:
    """relu(x) - x, then a Gemm: Sub has no layer type."""
    from onnx import TensorProto, helper, numpy_helper

    nodes = [helper.make_node("Relu", ["input"], ["r"]), helper.make_node("Sub", ["r", "input"], ["d"]),
             helper.make_node("Gemm", ["d", "W"], ["scores"], transB=1)]
    graph = helper.make_graph(nodes, "sub", [helper.make_tensor_value_info("input", TensorProto.FLOAT, ["N", 6])],
                              [helper.make_tensor_value_info("scores", TensorProto.FLOAT, ["N", 3])],
                              [numpy_helper.from_array(torch.randn(3, 6).numpy(), "W")])
    onnx.save(helper.make_model(graph, opset_imports=[helper.make_opsetid("", 14)]), str(path))
    return path


@pytest.mark.timeout(60)
def test_refusals_are_one_line(tmp_path: Path) -> None:
    torch.manual_seed(4)
    cases: list[tuple[Path, str]] = []
    cases.append((_export(SmallNet().eval(), tmp_path / "old.onnx", opset=11), "opset 11"))
    cases.append((_export(SmallNet().eval(), tmp_path / "fixed.onnx", dynamic=False), "fixed batch of 2"))
    text = tmp_path / "notes.onnx"
    text.write_text("this is not a model\n" * 20, encoding="utf-8")
    cases.append((text, "notes.onnx is not"))
    folder = tmp_path / "folder.onnx"
    folder.mkdir()
    cases.append((folder, "is not a file"))
    cases.append((tmp_path / "missing.onnx", "no such file"))
    for path, fragment in cases:
        with pytest.raises(ModelImportError) as caught:
            import_onnx(path)
        message = caught.value.message
        assert fragment in message and "\n" not in message, message
    with pytest.raises(ModelImportError) as caught:
        import_onnx(tmp_path / "old.onnx", refuse_larger_than=100)
    assert "larger than" in caught.value.message


@pytest.mark.timeout(60)
def test_an_operation_without_a_layer_type_is_kept_not_refused(tmp_path: Path) -> None:
    """relu(x) - x has no layer type: it becomes a "Module (ONNX)" node (issue 12), no longer a refusal."""
    torch.manual_seed(4)
    path = _sub_model(tmp_path / "sub.onnx")
    result = import_onnx(path)
    (node,) = [node for node in result.project.graph if node.type == "OnnxModule"]
    # Sub reads two tensors and the file has no scopes to find a module around it: the model is one node.
    assert node.params["operations"] == "Relu, Sub, Gemm"
    reason = node.params["reason"]
    assert "Sub: no layer type for the ONNX operation Sub of two tensors" in reason, reason
    assert "kept with the rest of the model: alone they take 2 tensors" in reason, reason
    with torch.no_grad():
        model = _compiled(result)
        x = torch.randn(3, 6)
        assert torch.allclose(model(x), _onnx_run(path, x), atol=1e-5)


@pytest.mark.timeout(60)
def test_cli_imports_an_onnx_file(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    torch.manual_seed(5)
    onnx_path = _export(_randomized(SmallNet(num_classes=7)), tmp_path / "model.onnx")
    path = tmp_path / "model.dlstudio"
    code = cli.main(["import", str(onnx_path), "-o", str(path)])
    out, err = capsys.readouterr()
    assert code == 0, err
    assert "model.onnx" in out and "7 classes" in out
    project = load_project(path)
    assert project.graph.node("input").params["shape"] == list(SHAPE)
    assert project.graph.node("output").params["classes"] == 7
    assert set(project.layout.positions) == set(project.graph.nodes)
    code = cli.main(["import", str(onnx_path), "-o", str(path), "--force", "--classes", "3"])
    out, err = capsys.readouterr()
    assert code != 0 and "--classes is not for an ONNX file" in err


class NormalizedNet(nn.Module):
    """A normalization preamble ``(x - mean) / std``, a clamp to [0, 6], a transpose and back, a skip, a head."""

    def __init__(self) -> None:
        super().__init__()
        self.register_buffer("mean", torch.tensor([0.485, 0.456, 0.406]).view(1, 3, 1, 1))
        self.register_buffer("std", torch.tensor([0.229, 0.224, 0.225]).view(1, 3, 1, 1))
        self.conv = nn.Conv2d(3, 8, 3, padding=1)
        self.conv2 = nn.Conv2d(8, 8, 3, padding=1)
        self.head = nn.Linear(8 * 12 * 6, 4)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = (x - self.mean) / self.std
        y = torch.clamp(self.conv(x), 0, 6)
        y = y + self.conv2(y)  # a skip connection
        y = nn.functional.max_pool2d(y, (2, 1)).transpose(2, 3)  # (N, C, W, H/2): the batch stays first
        return self.head(torch.flatten(y, 1))


@pytest.mark.timeout(60)
def test_a_normalization_preamble_a_clamp_and_a_transpose_map(tmp_path: Path) -> None:
    torch.manual_seed(6)
    source = NormalizedNet().eval()
    path = export_onnx(source, tmp_path / "normalized.onnx", SHAPE)
    ops = [node.op_type for node in onnx.load(str(path)).graph.node]
    assert {"Sub", "Div", "Clip", "Transpose", "Add"} <= set(ops)
    result = import_onnx(path)
    project = result.project
    graph = project.graph
    sub, div = graph.node_named("Sub"), graph.node_named("Div")
    # x - mean and x / std: depthwise 1x1 convolutions whose weights are the constants, frozen.
    for node in (sub, div):
        assert node.type == "Conv2d" and node.params["groups"] == 3 and node.params["kernel_size"] == 1
        assert node.id in project.frozen
    assert sub.params["bias"] is True and div.params["bias"] is False
    types = [node.type for node in graph]
    assert "ReLU6" in types and "Permute" in types and "Add" in types
    with torch.no_grad():
        model = _compiled(result)
        for batch in (1, 3):
            x = torch.rand(batch, *SHAPE)
            expected, got = source(x), model(x)
            assert torch.allclose(got, expected, atol=1e-5), (got - expected).abs().max().item()
            assert torch.allclose(got, _onnx_run(path, x), atol=1e-5)
    # The constants are weights of the graph, not parameters of the source: the count is the source's.
    assert sum(p.numel() for p in source.parameters()) == result.param_count


@pytest.mark.timeout(120)
@pytest.mark.parametrize("name", ["squeezenet1_1", "mobilenet_v3_small"])
def test_a_torchvision_model_exported_to_onnx_imports_grouped(name: str, tmp_path: Path) -> None:
    torchvision = pytest.importorskip("torchvision")
    torch.manual_seed(7)
    source = _randomized(torchvision.models.get_model(name, weights=None, num_classes=10))
    shape = (3, 64, 64)
    path = export_onnx(source, tmp_path / f"{name}.onnx", shape)
    result = import_onnx(path)
    project = result.project
    with torch.no_grad():
        model = _compiled(result)
        x = torch.randn(2, *shape)
        expected, got = source(x), model(x)
        assert torch.allclose(got, expected, atol=1e-4), (got - expected).abs().max().item()
    # Grouped by the exporter's module scopes, as the torchvision import is: features.3, features.4, ...
    names = [block.name for block in project.blocks]
    assert "features.3" in names and all(block.collapsed for block in project.blocks)
    # As the torchvision import groups it, but for the stem and the last convolution: numbered children
    # (features.0.0, .1, .2) make a module look like an nn.Sequential, which is opened.
    from dlstudio.core.importer import import_torchvision

    imported = import_torchvision(name, num_classes=10).project
    assert set(names) <= {block.name for block in imported.blocks}
    # Nodes are named by module path, as the torchvision import names them.
    graph = project.graph
    assert graph.node_named("features.3.expand1x1" if name == "squeezenet1_1" else "features.3.block.0.0").type \
        == "Conv2d"
    hidden = {node_id for block in project.blocks for node_id in block.nodes[1:]}
    assert len([node_id for node_id in project.graph.nodes if node_id not in hidden]) <= 30


def test_module_names_are_the_ones_onnx2torch_gives() -> None:
    """Nodes named with scopes, with dots, unnamed and repeated: each name is that of onnx2torch's module."""
    import onnx2torch
    from onnx import TensorProto, helper

    from dlstudio.core.importer.onnx_module_names import onnx2torch_module_names

    names = ["/layer1/Relu", "/layer1/Relu", "", "", "block.0.act", "/layer1/Relu"]
    ops = ["Relu", "Relu", "Sigmoid", "Sigmoid", "Tanh", "Relu"]
    nodes = [helper.make_node(op, [f"v{i}"], [f"v{i + 1}"], name=name)
             for i, (op, name) in enumerate(zip(ops, names))]
    graph = helper.make_graph(nodes, "names", [helper.make_tensor_value_info("v0", TensorProto.FLOAT, [1, 4])],
                              [helper.make_tensor_value_info(f"v{len(nodes)}", TensorProto.FLOAT, [1, 4])])
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)])
    converted = onnx2torch.convert(model)
    called = [node.target for node in converted.graph.nodes if node.op == "call_module"]
    assert onnx2torch_module_names(model) == called
    assert called[:2] == ["layer1/Relu", "layer1/Relu_1"]  # the names the test means to cover

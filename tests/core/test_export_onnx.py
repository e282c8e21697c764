"""ONNX export: every template and a branched graph give onnxruntime outputs within 1e-4 of the compiled model."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import onnx
import onnxruntime
import pytest
import torch
from export_cases import CASES, DIGITS_TEMPLATES, source_for
from test_layer_specs import CASES as SPEC_CASES

from dlstudio.core.export import onnx_export
from dlstudio.core.export.errors import ExportError
from dlstudio.core.export.onnx_export import OPSET, export_onnx
from dlstudio.core.export.source import from_graph
from dlstudio.core.export.torchscript import export_torchscript
from dlstudio.core.graph import Graph
from dlstudio.core.layers import get_spec
from dlstudio.core.safe_io import WriteError

pytestmark = pytest.mark.usefixtures("one_torch_thread")


class _FourierLayer(torch.nn.Module):
    """An operation the ONNX exporter has no translation for (complex FFT)."""

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return torch.fft.fft(x).real


@pytest.mark.parametrize("case", CASES)
def test_onnx_export_reproduces_the_model(case: str, tmp_path: Path) -> None:
    source = source_for(case)
    path = tmp_path / "model.onnx"
    verification = export_onnx(source, path)
    assert verification.passed and verification.max_abs_diff < 1e-4
    if case in DIGITS_TEMPLATES:  # their data is at hand: real validation samples were compared too
        assert verification.real_samples == 8
    model = onnx.load(str(path))
    onnx.checker.check_model(model)
    assert model.opset_import[0].version == OPSET
    # Independently of the exporter's own check: a batch size it never saw, through onnxruntime.
    session = onnxruntime.InferenceSession(str(path), providers=["CPUExecutionProvider"])
    x = torch.randn(7, *source.input_shape, generator=torch.Generator().manual_seed(5))
    (got,) = session.run(None, {"input": x.numpy()})
    with torch.no_grad():
        want = source.model(x).numpy()
    assert got.shape == want.shape
    assert float(np.abs(got - want).max()) < 1e-4


def test_an_operation_the_exporter_cannot_handle_is_refused_naming_the_node(
        tmp_path: Path, capfd: pytest.CaptureFixture[str]) -> None:
    source = source_for("branches")
    source.model.left = _FourierLayer()  # the node named "left path" now runs an FFT
    path = tmp_path / "model.onnx"
    with pytest.raises(ExportError) as caught:
        export_onnx(source, path)
    message = caught.value.message
    assert message.startswith("left path: a Conv2d node that cannot be exported to ONNX"), message
    assert "fft" in message and "\n" not in message and "Error" not in message
    assert not path.exists()
    out, err = capfd.readouterr()
    assert "Torch IR graph" not in out + err  # the exporter's graph dump does not reach the terminal


def test_an_export_over_the_tolerance_is_refused_and_removed(tmp_path: Path) -> None:
    path = tmp_path / "model.onnx"
    with pytest.raises(ExportError, match=r"tolerance -1\); model\.onnx was not kept"):
        export_onnx(source_for("mlp"), path, tolerance=-1.0)
    assert not path.exists() and list(tmp_path.iterdir()) == []


def test_a_planted_link_is_not_followed(tmp_path: Path) -> None:
    victim = tmp_path / "victim.txt"
    victim.write_text("keep me", encoding="utf-8")
    (tmp_path / "model.onnx").symlink_to(victim)
    with pytest.raises(WriteError, match="link"):
        export_onnx(source_for("branches"), tmp_path / "model.onnx")
    assert victim.read_text(encoding="utf-8") == "keep me"


def _single_node_graph(type_id: str, params: dict, in_shapes: list[tuple[int, ...]]) -> Graph:
    graph = Graph()
    for index, shape in enumerate(in_shapes):
        graph.add_node("Input", {"shape": list(shape)}, node_id=f"input{index + 1}")
    node = graph.add_node(type_id, params, node_id="layer", name=f"my {type_id}")
    for index, port in enumerate(node.spec.input_ports(node.params)):
        graph.connect(f"input{index + 1}", "out", "layer", port)
    graph.add_node("Output", {"task": "reconstruction"}, node_id="output1")
    graph.connect("layer", "out", "output1", "in")
    return graph


_LAYER_CASES = [pytest.param(type_id, params, shapes, id=f"{type_id}-{index}")
                for type_id, cases in SPEC_CASES.items() if get_spec(type_id).role == "layer"
                for index, (params, shapes) in enumerate(cases)]


@pytest.mark.parametrize(("type_id", "params", "in_shapes"), _LAYER_CASES)
def test_every_layer_type_exports_to_onnx_and_torchscript(type_id: str, params: dict,
                                                          in_shapes: list[tuple[int, ...]], tmp_path: Path) -> None:
    """The layer spec walk's cases, each alone: channel shuffle, adaptive pooling to sizes that do not divide
    the input and dilated 'same' convolutions go through their stand-ins."""
    source = from_graph(_single_node_graph(type_id, params, in_shapes), seed=0)
    assert export_onnx(source, tmp_path / "model.onnx").max_abs_diff < 1e-4
    assert export_torchscript(source, tmp_path / "model.pt").max_abs_diff <= 1e-6


def test_a_file_onnxruntime_cannot_run_is_refused_naming_the_node(tmp_path: Path,
                                                                  monkeypatch: pytest.MonkeyPatch) -> None:
    # Without its stand-in, a dilated 'same' convolution exports as auto_pad SAME_UPPER, which onnxruntime refuses.
    monkeypatch.setattr(onnx_export, "exportable_copy", lambda model, example: model)
    graph = _single_node_graph("Conv2d", {"out_channels": 4, "kernel_size": 3, "padding": "same", "dilation": 2},
                               [(2, 8, 8)])
    with pytest.raises(ExportError) as caught:
        export_onnx(from_graph(graph), tmp_path / "model.onnx")
    message = caught.value.message
    assert message.startswith("my Conv2d (Conv2d): onnxruntime cannot run the exported file (Dilation not supported")
    assert "model.onnx was not kept" in message and not (tmp_path / "model.onnx").exists()


def test_several_inputs_and_outputs_keep_their_order(tmp_path: Path) -> None:
    graph = Graph()
    graph.add_node("Input", {"shape": [6]}, node_id="a")
    graph.add_node("Input", {"shape": [6]}, node_id="b")
    graph.add_node("Add", node_id="sum")
    graph.add_node("Linear", {"out_features": 3}, node_id="head1")
    graph.add_node("Linear", {"out_features": 2}, node_id="head2")
    graph.add_node("Output", {"classes": 3}, node_id="out1")
    graph.add_node("Output", {"classes": 2}, node_id="out2")
    for src, dst, port in (("a", "sum", "in1"), ("b", "sum", "in2"), ("sum", "head1", "in"), ("b", "head2", "in"),
                           ("head1", "out1", "in"), ("head2", "out2", "in")):
        graph.connect(src, "out", dst, port)
    source = from_graph(graph, seed=0)
    assert export_onnx(source, tmp_path / "two.onnx").max_abs_diff < 1e-4
    assert export_torchscript(source, tmp_path / "two.pt").max_abs_diff <= 1e-6
    session = onnxruntime.InferenceSession(str(tmp_path / "two.onnx"), providers=["CPUExecutionProvider"])
    assert [i.name for i in session.get_inputs()] == ["input1", "input2"]
    x, y = torch.randn(4, 6), torch.randn(4, 6)
    first, second = session.run(None, {"input1": x.numpy(), "input2": y.numpy()})
    with torch.no_grad():
        want_first, want_second = source.model(x, y)
    assert first.shape == (4, 3) and second.shape == (4, 2)
    assert float(np.abs(first - want_first.numpy()).max()) < 1e-4
    assert float(np.abs(second - want_second.numpy()).max()) < 1e-4

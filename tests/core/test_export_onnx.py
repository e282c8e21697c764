"""ONNX export: every template and a branched graph give onnxruntime outputs within 1e-4 of the compiled model."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import onnx
import onnxruntime
import pytest
import torch
from export_cases import CASES, TEMPLATE_NAMES, source_for

from dlstudio.core.export.errors import ExportError
from dlstudio.core.export.onnx_export import OPSET, export_onnx
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
    if case in TEMPLATE_NAMES:  # templates read the digits: real validation samples were compared too
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

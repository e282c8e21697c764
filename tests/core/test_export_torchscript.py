"""TorchScript export: every template and a branched graph, reloaded with torch.jit.load, give equal outputs."""

from __future__ import annotations

import warnings
from pathlib import Path

import pytest
import torch
from export_cases import CASES, source_for

from dlstudio.core.export.errors import ExportError
from dlstudio.core.export.torchscript import export_torchscript

pytestmark = pytest.mark.usefixtures("one_torch_thread")


class _DictLayer(torch.nn.Module):
    """Returns a dict: something the tracer refuses."""

    def forward(self, x: torch.Tensor) -> dict[str, torch.Tensor]:
        return {"x": x}


def _load(path: Path) -> torch.jit.ScriptModule:
    with warnings.catch_warnings():
        warnings.filterwarnings("ignore", message=r".*torch\.jit\..* is deprecated.*")
        return torch.jit.load(str(path)).eval()


@pytest.mark.parametrize("case", CASES)
def test_torchscript_export_reproduces_the_model(case: str, tmp_path: Path) -> None:
    source = source_for(case)
    path = tmp_path / "model.pt"
    verification = export_torchscript(source, path)
    assert verification.passed and verification.max_abs_diff <= 1e-6
    loaded = _load(path)
    x = torch.randn(3, *source.input_shape, generator=torch.Generator().manual_seed(4))
    with torch.no_grad():
        assert torch.allclose(loaded(x), source.model(x), rtol=0, atol=1e-6)


def test_a_node_the_tracer_cannot_follow_is_named(tmp_path: Path) -> None:
    source = source_for("branches")
    source.model.right = _DictLayer()
    with pytest.raises(ExportError) as caught:
        export_torchscript(source, tmp_path / "model.pt")
    assert caught.value.message.startswith("right path: a MaxPool2d node that cannot be exported to TorchScript")
    assert not (tmp_path / "model.pt").exists()

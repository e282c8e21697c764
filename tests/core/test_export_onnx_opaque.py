"""The Python code and the training script of a project with "Module (ONNX)" nodes run without dlstudio.

The exported files carry the functions that rebuild the kept ONNX operations (imported_onnx_code), so they
need torch, numpy, onnx and onnx2torch; run in a process where dlstudio cannot be imported, with the
compiled model's weights, they give the compiled model's outputs.
"""

from __future__ import annotations

import ast
import subprocess
import sys
import textwrap
import warnings
from pathlib import Path

import pytest

torch = pytest.importorskip("torch")
pytest.importorskip("onnx")
pytest.importorskip("onnx2torch")

from torch import nn  # noqa: E402

from dlstudio.core.compiler import compile_graph  # noqa: E402
from dlstudio.core.export.python_code import export_python  # noqa: E402
from dlstudio.core.export.training_script import export_training_script  # noqa: E402
from dlstudio.core.importer import import_onnx  # noqa: E402

# What the exported files may import: torch and the standard library, and for the kept operations numpy,
# onnx and onnx2torch; the training script adds its own (test_export_script.py).
MODEL_IMPORTS = {"torch", "json", "typing", "numpy", "onnx", "onnx2torch"}
SCRIPT_IMPORTS = MODEL_IMPORTS | {"argparse", "csv", "math", "os", "random", "time", "PIL", "sklearn"}


class ErfSinNet(nn.Module):
    """Two operations without a layer type (erf, sin) between convolutions: two opaque nodes."""

    def __init__(self) -> None:
        super().__init__()
        self.conv = nn.Conv2d(3, 6, 3, padding=1)
        self.conv2 = nn.Conv2d(6, 4, 3)
        self.head = nn.Linear(4 * 10 * 10, 5)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.head(torch.flatten(torch.sin(self.conv2(torch.erf(self.conv(x)))), 1))


def _imported_project(directory: Path) -> tuple:
    """(the imported graph, its compiled model with the file's weights, the source module)."""
    torch.manual_seed(0)
    source = ErfSinNet().eval()
    path = directory / "erf_sin.onnx"
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # the TorchScript exporter warns that it is deprecated
        torch.onnx.export(source, (torch.randn(1, 3, 12, 12),), str(path), dynamo=False, opset_version=17,
                          input_names=["input"], output_names=["scores"],
                          dynamic_axes={"input": {0: "N"}, "scores": {0: "N"}})
    result = import_onnx(path)
    assert sorted(node.params["operations"] for node in result.project.graph if node.type == "OnnxModule") \
        == ["Erf", "Sin"]
    model = compile_graph(result.project.graph).eval()
    result.load_into(model)
    return result.project.graph, model, source


def _imported_roots(code: str) -> set[str]:
    roots = set()
    for node in ast.walk(ast.parse(code)):
        if isinstance(node, ast.Import):
            roots |= {alias.name.split(".")[0] for alias in node.names}
        elif isinstance(node, ast.ImportFrom):
            roots.add((node.module or "").split(".")[0])
    return roots


# Runs in a fresh interpreter in which dlstudio cannot be imported: the model file as __main__ (its smoke
# check prints the output shape), the training script as a module (its main() would train); each file's
# Model loads the compiled model's weights strictly and computes on the saved batch.
_RUNNER = textwrap.dedent("""
    import runpy
    import sys

    import torch

    sys.modules["dlstudio"] = None  # importing dlstudio now raises ImportError
    model_file, script_file, weights, batch, out = sys.argv[1:]
    state = torch.load(weights, weights_only=True)
    x = torch.load(batch, weights_only=True)
    outputs = []
    for path, run_name in ((model_file, "__main__"), (script_file, "exported_script")):
        model = runpy.run_path(path, run_name=run_name)["Model"]().eval()
        model.load_state_dict(state, strict=True)
        with torch.no_grad():
            outputs.append(model(x))
    torch.save(outputs, out)
""")


@pytest.mark.timeout(90)
def test_exported_code_of_opaque_onnx_nodes_runs_without_dlstudio(tmp_path: Path) -> None:
    graph, model, source = _imported_project(tmp_path)
    code = export_python(graph, class_name="Model")
    script = export_training_script(graph, {"source": "digits"}, {})
    assert _imported_roots(code) <= MODEL_IMPORTS, _imported_roots(code)
    assert _imported_roots(script) <= SCRIPT_IMPORTS, _imported_roots(script)
    for text in (code, script):  # the functions are written once, however many nodes call them
        assert text.count("\ndef onnx_module(") == 1 and text.count("\ndef region_model(") == 1
        assert text.count("onnx_module(") == 3  # the definition and the two nodes
    (tmp_path / "model.py").write_text(code, encoding="utf-8")
    (tmp_path / "train.py").write_text(script, encoding="utf-8")
    (tmp_path / "runner.py").write_text(_RUNNER, encoding="utf-8")
    torch.save(model.state_dict(), tmp_path / "weights.pt")
    x = torch.randn(3, 3, 12, 12)
    torch.save(x, tmp_path / "batch.pt")

    run = subprocess.run([sys.executable, "-I", "runner.py", "model.py", "train.py", "weights.pt", "batch.pt",
                          "outputs.pt"], capture_output=True, text=True, timeout=80, cwd=tmp_path)
    assert run.returncode == 0, run.stderr
    assert run.stdout.strip() == "output shape: (2, 5)"  # the model file's smoke check
    exported, scripted = torch.load(tmp_path / "outputs.pt", weights_only=True)
    with torch.no_grad():
        expected = model(x)
        from_source = source(x)
    assert torch.equal(exported, expected), (exported - expected).abs().max().item()
    assert torch.equal(scripted, expected), (scripted - expected).abs().max().item()
    assert torch.allclose(expected, from_source, atol=1e-5), (expected - from_source).abs().max().item()


def test_the_packages_an_export_needs_are_named(tmp_path: Path) -> None:
    """What dlstudio says an exported file needs includes what kept ONNX operations need."""
    from dlstudio.core.export.python_code import required_packages
    from dlstudio.core.project import load_template

    graph, _, _ = _imported_project(tmp_path)
    assert required_packages(graph) == ["torch", "numpy", "onnx", "onnx2torch"]
    assert required_packages(graph, script=True) == ["torch", "torchvision", "numpy", "PIL", "scikit-learn", "onnx",
                                                     "onnx2torch"]
    assert required_packages(load_template("lenet5").graph) == ["torch"]

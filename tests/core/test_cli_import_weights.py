"""``dlstudio import --weights`` and ``dlstudio train`` with starting weights (no network: torchvision's file is
one the test wrote under TORCH_HOME)."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
import torch
from PIL import Image

from dlstudio import cli
from dlstudio.core.project import load_project, save_project
from dlstudio.core.project.pretrained import WeightsSource

pytestmark = pytest.mark.usefixtures("one_torch_thread")


def run_cli(capsys: pytest.CaptureFixture[str], *argv: str) -> tuple[int, str, str]:
    code = cli.main(list(argv))
    out, err = capsys.readouterr()
    return code, out, err


def photo_folder(root: Path, size: int = 40) -> Path:
    generator = np.random.default_rng(0)
    for label in ("cat", "dog"):
        (root / label).mkdir(parents=True)
        for index in range(4):
            pixels = generator.integers(0, 255, (size, size, 3), dtype=np.uint8)
            Image.fromarray(pixels).save(root / label / f"{index}.png")
    return root


def small_training(path: Path, folder: Path, side: int) -> None:
    """Point a written project at ``folder`` with a small Input and one short epoch."""
    project = load_project(path)
    node = next(node for node in project.graph if node.type == "Input")
    project.graph.set_param(node.id, "shape", [3, side, side])
    project.data.update({"source": "folder", "path": str(folder), "val_fraction": 0.25, "test_fraction": 0.0})
    project.training.update({"epochs": 1, "batch_size": 8, "device": "cpu"})
    save_project(project, path)


@pytest.mark.timeout(120)
def test_torchvision_default_weights_are_named_in_the_project_and_loaded_by_train(
        capsys: pytest.CaptureFixture[str], tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    import torchvision

    monkeypatch.setenv("TORCH_HOME", str(tmp_path / "torch"))
    path = tmp_path / "pets.dlstudio"
    code, out, err = run_cli(capsys, "import", "squeezenet1_1", "-o", str(path), "--weights", "default",
                             "--classes", "2")
    assert code == 0, err
    assert "starting weights: torchvision squeezenet1_1 (IMAGENET1K_V1)" in out
    weights = load_project(path).weights
    assert (weights.kind, weights.model, weights.weights) == ("torchvision", "squeezenet1_1", "IMAGENET1K_V1")
    assert weights.key_map  # graph keys -> torchvision's keys
    small_training(path, photo_folder(tmp_path / "photos"), 64)

    cache = tmp_path / "torch" / "hub" / "checkpoints" / "squeezenet1_1-b8a52dc0.pth"
    code, out, err = run_cli(capsys, "train", str(path), "--offline")
    assert code == 2 and f"put squeezenet1_1-b8a52dc0.pth in {cache.parent}" in err
    assert not (tmp_path / "pets.runs").exists()

    cache.parent.mkdir(parents=True)
    torch.save(torchvision.models.squeezenet1_1().state_dict(), cache)
    code, out, err = run_cli(capsys, "train", str(path), "--json")
    assert code == 0, err
    loaded = [line for line in err.splitlines() if line.startswith("loaded ")]
    assert len(loaded) == 1 and " tensors from torchvision squeezenet1_1 (IMAGENET1K_V1); " in loaded[0]
    assert loaded[0].endswith(": shape (1000, 512, 1, 1) vs (2, 512, 1, 1)")
    run_dir = Path(json.loads(out)["run_dir"])
    settings = json.loads((run_dir / "settings.json").read_text())
    assert settings["weights"]["summary"] == loaded[0]
    assert settings["data_summary"]["normalization"]["mean"] == pytest.approx([0.485, 0.456, 0.406])


def test_weights_options_that_do_not_fit_the_source_are_refused(capsys: pytest.CaptureFixture[str],
                                                                 tmp_path: Path) -> None:
    code, _, err = run_cli(capsys, "import", "squeezenet1_1", "-o", str(tmp_path / "a.dlstudio"),
                           "--weights", "V9")
    assert code == 2 and "--weights: squeezenet1_1 has no weights named 'V9'" in err
    code, _, err = run_cli(capsys, "import", "squeezenet1_1", "-o", str(tmp_path / "a.dlstudio"),
                           "--weights", str(tmp_path / "absent.pth"))
    assert code == 2 and "absent.pth is not a file" in err


USER_MODULE = '''
import torch
from torch import nn


class Tiny(nn.Module):
    def __init__(self):
        super().__init__()
        self.body = nn.Sequential(nn.Conv2d(3, 4, 3, padding=1), nn.ReLU(), nn.AdaptiveAvgPool2d(1), nn.Flatten())
        self.classifier = nn.Linear(4, 2)

    def forward(self, x):
        return self.classifier(self.body(x))
'''


@pytest.mark.timeout(120)
def test_a_module_class_with_its_own_weights_file_and_a_later_run_started_from_an_earlier_one(
        capsys: pytest.CaptureFixture[str], tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    from dlstudio.core.importer import load_module_class

    (tmp_path / "tiny_net.py").write_text(USER_MODULE)
    torch.manual_seed(5)
    module = load_module_class(f"{tmp_path / 'tiny_net.py'}:Tiny")()
    torch.save(module.state_dict(), tmp_path / "tiny.pth")  # the module's own keys: body.0.weight, classifier...
    path = tmp_path / "projects" / "tiny.dlstudio"
    path.parent.mkdir()
    code, out, err = run_cli(capsys, "import", f"{tmp_path / 'tiny_net.py'}:Tiny", "--input-shape", "3,16,16",
                             "-o", str(path), "--weights", str(tmp_path / "tiny.pth"))
    assert code == 0, err
    weights = load_project(path).weights
    assert weights == WeightsSource("file", path="../tiny.pth") and len(weights.key_map) == 4
    small_training(path, photo_folder(tmp_path / "photos", 16), 16)
    code, out, err = run_cli(capsys, "train", str(path), "--json")
    assert code == 0, err
    assert "loaded 4 of 4 tensors from file ../tiny.pth" in err.splitlines()
    first_run = json.loads(out)["run_dir"]

    code, out, err = run_cli(capsys, "train", str(path), "--json", "--weights-from", first_run)
    assert code == 0, err
    assert f"loaded 4 of 4 tensors from run {first_run}" in err.splitlines()
    code, out, err = run_cli(capsys, "train", str(path), "--resume", first_run, "--weights-from", first_run)
    assert code == 2 and "--weights-from starts a new run" in err


def test_an_onnx_files_own_weights_are_kept_beside_the_project(capsys: pytest.CaptureFixture[str],
                                                               tmp_path: Path) -> None:
    import warnings

    from torch import nn

    from dlstudio.core.compiler import compile_graph
    from dlstudio.core.training.pretrained import load_weights

    torch.manual_seed(2)
    source = nn.Sequential(nn.Conv2d(3, 4, 3, padding=1), nn.ReLU(), nn.AdaptiveAvgPool2d(1), nn.Flatten(),
                           nn.Linear(4, 3)).eval()
    onnx_path = tmp_path / "net.onnx"
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # the TorchScript exporter warns that it is deprecated
        torch.onnx.export(source, (torch.randn(2, 3, 8, 8),), str(onnx_path), dynamo=False, opset_version=17,
                          input_names=["input"], output_names=["scores"],
                          dynamic_axes={"input": {0: "N"}, "scores": {0: "N"}})
    path = tmp_path / "net.dlstudio"
    code, out, err = run_cli(capsys, "import", str(onnx_path), "-o", str(path), "--weights", "default")
    assert code == 0, err
    assert "starting weights: file net.weights.safetensors" in out
    project = load_project(path)
    assert project.weights == WeightsSource("file", path="net.weights.safetensors")
    model = compile_graph(project.graph).eval()
    result = load_weights(model, project.graph, project.weights, base_dir=tmp_path)
    assert result.tensors_loaded == result.tensors_total == 4
    x = torch.randn(2, 3, 8, 8)
    with torch.no_grad():
        assert torch.allclose(model(x), source(x), atol=1e-6)


@pytest.mark.timeout(120)
def test_an_import_not_trained_here_exports_with_the_weights_it_starts_from(
        capsys: pytest.CaptureFixture[str], tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    import onnxruntime
    import torchvision

    monkeypatch.setenv("TORCH_HOME", str(tmp_path / "torch"))
    path = tmp_path / "imagenet.dlstudio"
    code, _, err = run_cli(capsys, "import", "squeezenet1_1", "-o", str(path), "--weights", "default")
    assert code == 0, err
    onnx_path = tmp_path / "squeezenet.onnx"
    code, _, err = run_cli(capsys, "export", str(path), "--format", "onnx", "-o", str(onnx_path))
    assert code == 2 and "put squeezenet1_1-b8a52dc0.pth in" in err, "not downloaded: says where the file goes"
    assert not onnx_path.exists()

    cache = tmp_path / "torch" / "hub" / "checkpoints" / "squeezenet1_1-b8a52dc0.pth"
    cache.parent.mkdir(parents=True)
    torch.manual_seed(3)
    reference = torchvision.models.squeezenet1_1().eval()
    torch.save(reference.state_dict(), cache)
    code, out, err = run_cli(capsys, "export", str(path), "--format", "onnx", "-o", str(onnx_path))
    assert code == 0, err
    assert "starting weights from torchvision squeezenet1_1 (IMAGENET1K_V1) (not trained here)" in out
    assert "loaded 52 of 52 tensors from torchvision squeezenet1_1 (IMAGENET1K_V1)" in out
    x = torch.rand(2, 3, 224, 224)
    session = onnxruntime.InferenceSession(str(onnx_path), providers=["CPUExecutionProvider"])
    exported = session.run(None, {session.get_inputs()[0].name: x.numpy()})[0]
    with torch.no_grad():
        expected = reference(x).numpy()
    assert np.allclose(exported, expected, atol=1e-4), "the file computes what torchvision's model does"
    preprocess = json.loads((tmp_path / "preprocess.json").read_text())
    assert preprocess["normalization"]["mean"] == pytest.approx([0.485, 0.456, 0.406])

"""The standalone training script: only torch/torchvision/numpy/PIL/sklearn, and it reproduces dlstudio train."""

from __future__ import annotations

import ast
import csv
import subprocess
import sys
from pathlib import Path

import pytest

from dlstudio.core.errors import DlstudioError
from dlstudio.core.export.training_script import export_training_script
from dlstudio.core.project import save_project
from dlstudio.core.project.templates import load_template
from dlstudio.core.training.events import METRIC_COLUMNS
from dlstudio.core.training.session import start_project_session

pytestmark = pytest.mark.usefixtures("one_torch_thread")

ALLOWED = {"argparse", "csv", "math", "os", "random", "time", "numpy", "torch", "torchvision", "PIL", "sklearn"}
EPOCHS = 2


def _imported_modules(code: str) -> set[str]:
    names: set[str] = set()
    for node in ast.walk(ast.parse(code)):
        if isinstance(node, ast.Import):
            names |= {alias.name.split(".")[0] for alias in node.names}
        elif isinstance(node, ast.ImportFrom) and node.module:
            names.add(node.module.split(".")[0])
    return names


def _last_row(path: Path) -> dict[str, str]:
    with path.open(newline="", encoding="utf-8") as handle:
        rows = list(csv.DictReader(handle))
    assert rows and list(rows[0]) == list(METRIC_COLUMNS)
    return rows[-1]


def test_the_script_reproduces_dlstudio_train(tmp_path: Path) -> None:
    project = load_template("mlp")
    project.training["batch_size"] = 128  # fewer steps: the machine is shared
    # Augmentation on, so that its draws from the shuffling generator are compared as well.
    project.data.update(augment_crop_padding=2, augment_rotation=5.0, augment_color_jitter=0.1)
    project_path = tmp_path / "digits.dlstudio"
    save_project(project, project_path)
    session = start_project_session(project, project_path, epochs=EPOCHS, device="cpu")
    session.record(project)
    result = session.trainer().fit()
    session.finish(result)
    assert result.status == "completed"
    dlstudio_row = _last_row(session.run_dir / "metrics.csv")

    code = export_training_script(project.graph, project.data, project.training)
    assert _imported_modules(code) <= ALLOWED
    script = tmp_path / "train.py"
    script.write_text(code, encoding="utf-8")
    done = subprocess.run([sys.executable, str(script), "--out", str(tmp_path / "script_run"), "--epochs",
                           str(EPOCHS), "--device", "cpu"], capture_output=True, text=True, timeout=300, check=False)
    assert done.returncode == 0, done.stderr
    script_row = _last_row(tmp_path / "script_run" / "metrics.csv")
    assert int(script_row["epoch"]) == EPOCHS
    # Within 0.5 points; on one machine's CPU the runs are in fact the same, draw for draw.
    assert abs(float(script_row["val_accuracy"]) - float(dlstudio_row["val_accuracy"])) <= 0.005
    assert abs(float(script_row["train_loss"]) - float(dlstudio_row["train_loss"])) < 1e-4
    assert (tmp_path / "script_run" / "best.pt").is_file()


def _digit_folder(root: Path, per_class: int = 30) -> None:
    """Three classes of digit PNGs (RGB, 12x12, so the reader converts and resizes), one with a nested folder."""
    import numpy as np
    from PIL import Image
    from sklearn.datasets import load_digits

    digits = load_digits()
    for label in (0, 1, 7):
        for count, index in enumerate(np.nonzero(digits.target == label)[0][:per_class]):
            folder = root / f"class_{label}" / ("more" if count % 3 == 0 else "")
            folder.mkdir(parents=True, exist_ok=True)
            pixels = (digits.images[index] * 255 / 16).astype(np.uint8)
            Image.fromarray(pixels).convert("RGB").resize((12, 12)).save(folder / f"{count:02d}.png")


def test_the_script_reads_an_image_folder_as_dlstudio_does(tmp_path: Path) -> None:
    _digit_folder(tmp_path / "images")
    project = load_template("mlp")
    project.graph.set_param("input1", "shape", [1, 10, 10])
    project.graph.set_param("linear2", "out_features", 3)
    project.graph.set_param("output1", "classes", 3)
    project.data.update(source="folder", path="images", val_fraction=0.2, test_fraction=0.0)
    project.training.update(batch_size=16, seed=3)
    project_path = tmp_path / "folder.dlstudio"
    save_project(project, project_path)
    session = start_project_session(project, project_path, epochs=2, device="cpu")
    session.record(project)
    result = session.trainer().fit()
    session.finish(result)
    dlstudio_row = _last_row(session.run_dir / "metrics.csv")

    script = tmp_path / "train.py"
    script.write_text(export_training_script(project.graph, project.data, project.training), encoding="utf-8")
    done = subprocess.run([sys.executable, str(script), "--out", "script_run", "--epochs", "2"], cwd=tmp_path,
                          capture_output=True, text=True, timeout=300, check=False)
    assert done.returncode == 0, done.stderr
    script_row = _last_row(tmp_path / "script_run" / "metrics.csv")
    assert abs(float(script_row["val_accuracy"]) - float(dlstudio_row["val_accuracy"])) <= 0.005
    assert abs(float(script_row["train_loss"]) - float(dlstudio_row["train_loss"])) < 1e-4


def test_a_source_the_script_cannot_read_is_refused_in_one_line() -> None:
    project = load_template("mlp")
    with pytest.raises(DlstudioError, match="the training script reads the digits or an image folder"):
        export_training_script(project.graph, {**project.data, "source": "csv", "path": "x.csv"}, project.training)

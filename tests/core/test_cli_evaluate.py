"""``dlstudio evaluate`` on a labelled folder the test writes: its figures are sklearn.metrics' own."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
from export_cases import train_digits_project
from PIL import Image
from sklearn.datasets import load_digits
from sklearn.metrics import accuracy_score, classification_report, confusion_matrix

from dlstudio import cli
from dlstudio.core.inspect import load_trained

pytestmark = pytest.mark.usefixtures("one_torch_thread")


@pytest.fixture(scope="module")
def trained_project(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return train_digits_project(tmp_path_factory.mktemp("evaluate") / "digits.dlstudio")


@pytest.fixture
def labelled_folder(tmp_path: Path) -> Path:
    """Six digits per class for classes 0-7 (not 8 and 9: a folder may hold some of the classes) and a stray file."""
    digits = load_digits()
    root = tmp_path / "labelled"
    for label in range(8):
        (root / str(label)).mkdir(parents=True)
        for count, index in enumerate(np.nonzero(digits.target == label)[0][-6:]):
            pixels = (digits.images[index] * 255 / 16).astype(np.uint8)
            Image.fromarray(pixels).resize((28, 28), Image.BILINEAR).save(root / str(label) / f"{count}.png")
    (root / "3" / "notes.txt").write_text("not an image", encoding="utf-8")
    return root


def test_evaluate_gives_sklearns_metrics(capsys: pytest.CaptureFixture[str], trained_project: Path,
                                         labelled_folder: Path) -> None:
    code = cli.main(["evaluate", str(trained_project), str(labelled_folder), "--json", "--top", "3"])
    out, err = capsys.readouterr()
    assert code == 0, err
    result = json.loads(out)
    # The same predictions, made independently through the run's model, scored by sklearn directly.
    trained = load_trained(trained_project)
    files = sorted(labelled_folder.glob("*/*.png"))
    y_true = [int(path.parent.name) for path in files]
    y_pred = [int(item.prediction.top[0].label) for item in trained.classify_paths(files, top_k=1)]
    names = sorted({*y_true, *y_pred})
    expected = classification_report(y_true, y_pred, labels=names, target_names=[str(n) for n in names],
                                     output_dict=True, zero_division=0)
    assert result["images"] == len(files) == 48
    assert set(result["report"]) == set(expected)
    for key, value in expected.items():
        assert result["report"][key] == pytest.approx(value)
    assert result["accuracy"] == pytest.approx(accuracy_score(y_true, y_pred))
    assert result["confusion"]["matrix"] == confusion_matrix(y_true, y_pred, labels=names).tolist()
    assert 0 <= result["accuracy"] <= result["top_3_accuracy"] <= 1
    assert [item["file"] for item in result["skipped"]] == [str(labelled_folder / "3" / "notes.txt")]
    wrong = sum(t != p for t, p in zip(y_true, y_pred))
    assert len(result["worst"]) == min(10, wrong)


def test_evaluate_prints_tables_and_refuses_a_folder_of_other_classes(
        capsys: pytest.CaptureFixture[str], trained_project: Path, labelled_folder: Path) -> None:
    assert cli.main(["evaluate", str(trained_project), str(labelled_folder)]) == 0
    out = capsys.readouterr().out
    assert "48 images in" in out and "accuracy" in out and "weighted avg" in out and "confusion matrix" in out
    (labelled_folder / "cat").mkdir()
    code = cli.main(["evaluate", str(trained_project), str(labelled_folder)])
    err = capsys.readouterr().err.strip().splitlines()
    assert code == 2 and len(err) == 1
    assert err[0].startswith("dlstudio: error: 'cat' in") and "is not among the model's classes" in err[0]

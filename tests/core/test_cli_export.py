"""``dlstudio export`` on a trained project: every format, preprocess.json, and the README's predict.py."""

from __future__ import annotations

import json
import re
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
import torch
from PIL import Image

from dlstudio import cli
from dlstudio.core.project import save_project
from dlstudio.core.project.templates import load_template

pytestmark = pytest.mark.usefixtures("one_torch_thread")

README = Path(__file__).resolve().parents[2] / "README.md"


def run_cli(capsys: pytest.CaptureFixture[str], *argv: str) -> tuple[int, str, str]:
    code = cli.main(list(argv))
    out, err = capsys.readouterr()
    return code, out, err


def one_line_error(err: str) -> str:
    lines = err.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("dlstudio: error: ") and "Traceback" not in err, err
    return lines[0]


@pytest.fixture(scope="module")
def trained_project(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The mlp template on the digits, trained for one epoch from the command line."""
    folder = tmp_path_factory.mktemp("trained")
    project = load_template("mlp")
    project.training["batch_size"] = 256
    path = folder / "digits.dlstudio"
    save_project(project, path)
    assert cli.main(["train", str(path), "--epochs", "1", "--device", "cpu"]) == 0
    return path


@pytest.fixture
def untrained_project(tmp_path: Path) -> Path:
    path = tmp_path / "fresh.dlstudio"
    save_project(load_template("lenet5"), path)
    return path


def digit_png(path: Path, index: int = 3) -> int:
    """A digit of the bundled set as a 28x28 grey PNG (white on black, like the training data); its label."""
    from sklearn.datasets import load_digits

    digits = load_digits()
    Image.fromarray((digits.images[index] * 255 / 16).astype(np.uint8)).resize((28, 28), Image.BILINEAR).save(path)
    return int(digits.target[index])


def test_onnx_export_prints_its_verification_and_writes_preprocess_json(
        capsys: pytest.CaptureFixture[str], trained_project: Path, tmp_path: Path) -> None:
    out_path = tmp_path / "model.onnx"
    code, out, err = run_cli(capsys, "export", str(trained_project), "--format", "onnx", "-o", str(out_path))
    assert code == 0, err
    assert "ONNX opset 17" in out and "(best.pt)" in out
    assert re.search(r"6 random inputs and 8 validation samples: max abs difference \S+ \(tolerance 0\.0001\)", out)
    preprocess = json.loads((tmp_path / "preprocess.json").read_text(encoding="utf-8"))
    assert preprocess["input_shape"] == [1, 28, 28] and preprocess["class_names"] == [str(i) for i in range(10)]
    assert preprocess["image"] == {**preprocess["image"], "mode": "L", "width": 28, "height": 28}
    assert len(preprocess["normalization"]["mean"]) == 1 and "8x8" in preprocess["training_images"]
    assert preprocess["image_making"]["recipe"] == "digits" and preprocess["image_making"]["light_on_dark"] is True


def test_the_readme_predict_py_classifies_a_png_with_onnxruntime_alone(
        capsys: pytest.CaptureFixture[str], trained_project: Path, tmp_path: Path) -> None:
    blocks = re.findall(r"```python\n(# predict\.py.*?)```", README.read_text(encoding="utf-8"), re.S)
    assert len(blocks) == 1, "the README has one predict.py block"
    assert len(blocks[0].strip().splitlines()) <= 25
    (tmp_path / "predict.py").write_text(blocks[0], encoding="utf-8")
    assert run_cli(capsys, "export", str(trained_project), "--format", "onnx", "-o", str(tmp_path / "m.onnx"))[0] == 0
    png = tmp_path / "digit.png"
    digit_png(png)
    done = subprocess.run([sys.executable, "predict.py", "m.onnx", "digit.png"], cwd=tmp_path, capture_output=True,
                          text=True, timeout=120, check=False)
    assert done.returncode == 0, done.stderr
    lines = done.stdout.strip().splitlines()
    assert len(lines) == 3 and all(re.fullmatch(r"\d \d+\.\d%", line) for line in lines), done.stdout
    # The same preparation in torch, through the run's own model: predict.py's top class is the model's.
    from dlstudio.core.export.source import from_run, latest_trained_run

    source = from_run(latest_trained_run(trained_project))
    norm = source.normalization
    x = torch.tensor(np.asarray(Image.open(png).convert("L").resize((28, 28)), dtype=np.float32) / 255.0)[None, None]
    x = (x - norm.mean[0]) / norm.std[0]
    with torch.no_grad():
        assert lines[0].split()[0] == str(int(source.model(x).argmax(1)))


def test_weight_formats_need_a_run_and_python_says_its_weights_are_random(
        capsys: pytest.CaptureFixture[str], untrained_project: Path, tmp_path: Path) -> None:
    for format_name in ("onnx", "torchscript", "safetensors"):
        code, _, err = run_cli(capsys, "export", str(untrained_project), "--format", format_name,
                               "-o", str(tmp_path / f"m.{format_name}"))
        assert code == 2
        assert "has no trained run to take weights from" in one_line_error(err)
        assert not (tmp_path / f"m.{format_name}").exists()
    code, out, err = run_cli(capsys, "export", str(untrained_project), "-o", str(tmp_path / "model.py"))
    assert code == 0, err
    assert "random weights (the project has no trained run)" in out
    assert (tmp_path / "preprocess.json").is_file()


def test_torchscript_and_safetensors_and_classify_with_the_safetensors_weights(
        capsys: pytest.CaptureFixture[str], trained_project: Path, tmp_path: Path) -> None:
    run_name = sorted(p.name for p in trained_project.with_suffix(".runs").iterdir())[-1]
    code, out, err = run_cli(capsys, "export", str(trained_project), "--format", "torchscript", "--run", run_name,
                             "-o", str(tmp_path / "model.pt"))
    assert code == 0, err
    assert f"run {run_name}" in out and "max abs difference 0 " in out
    code, out, err = run_cli(capsys, "export", str(trained_project), "--format", "safetensors",
                             "-o", str(tmp_path / "model.safetensors"))
    assert code == 0, err
    assert "reloaded and verified" in out
    png = tmp_path / "digit.png"
    digit_png(png, index=7)
    code, from_checkpoint, err = run_cli(capsys, "classify", str(trained_project), str(png), "--json")
    assert code == 0, err
    code, from_safetensors, err = run_cli(capsys, "classify", str(trained_project), str(png), "--json",
                                          "--weights", str(tmp_path / "model.safetensors"))
    assert code == 0, err
    assert json.loads(from_safetensors) == json.loads(from_checkpoint)
    code, _, err = run_cli(capsys, "export", str(trained_project), "--format", "onnx", "--run", "no-such-run",
                           "-o", str(tmp_path / "x.onnx"))
    assert code == 2 and "--run no-such-run: no run folder there" in one_line_error(err)


def test_classify_refuses_weights_of_another_model(
        capsys: pytest.CaptureFixture[str], trained_project: Path, tmp_path: Path) -> None:
    from dlstudio.core.export.safetensors_weights import export_safetensors
    from dlstudio.core.export.source import from_project

    export_safetensors(from_project(load_template("lenet5")), tmp_path / "other.safetensors")
    png = tmp_path / "digit.png"
    digit_png(png)
    code, _, err = run_cli(capsys, "classify", str(trained_project), str(png), "--weights",
                           str(tmp_path / "other.safetensors"))
    assert code == 2
    assert "do not fit the model" in one_line_error(err)


def test_script_export_needs_no_run_and_a_different_preprocess_json_is_kept(
        capsys: pytest.CaptureFixture[str], untrained_project: Path, tmp_path: Path) -> None:
    (tmp_path / "preprocess.json").write_text("{}\n", encoding="utf-8")
    code, out, err = run_cli(capsys, "export", str(untrained_project), "--format", "script",
                             "-o", str(tmp_path / "train.py"))
    assert code == 0, err
    assert "standalone training script" in out and "kept the existing" in out
    assert (tmp_path / "preprocess.json").read_text(encoding="utf-8") == "{}\n"
    compile((tmp_path / "train.py").read_text(encoding="utf-8"), "train.py", "exec")


def test_a_run_without_a_best_checkpoint_exports_its_last(capsys: pytest.CaptureFixture[str], trained_project: Path,
                                                          tmp_path: Path) -> None:
    import shutil

    copy = tmp_path / trained_project.name
    shutil.copy(trained_project, copy)
    shutil.copytree(trained_project.with_suffix(".runs"), copy.with_suffix(".runs"))
    for best in copy.with_suffix(".runs").glob("*/best.pt"):
        best.unlink()
    code, out, err = run_cli(capsys, "export", str(copy), "--format", "safetensors", "-o", str(tmp_path / "w.st"))
    assert code == 0, err
    assert "(last.pt)" in out


def test_a_planted_preprocess_json_link_refuses_the_export_before_anything_is_written(
        capsys: pytest.CaptureFixture[str], trained_project: Path, tmp_path: Path) -> None:
    victim = tmp_path / "elsewhere" / "victim.txt"
    victim.parent.mkdir()
    victim.write_text("keep me\n", encoding="utf-8")
    out_dir = tmp_path / "out"
    out_dir.mkdir()
    (out_dir / "preprocess.json").symlink_to(victim)
    for format_name in ("onnx", "torchscript", "safetensors", "python", "script"):
        target = out_dir / f"model.{format_name}"
        code, _, err = run_cli(capsys, "export", str(trained_project), "--format", format_name, "-o", str(target))
        assert code == 2
        line = one_line_error(err)
        assert "preprocess.json" in line and "symbolic link" in line and "nothing was exported" in line
        assert not target.exists(), format_name  # not an export without its description
    assert victim.read_text(encoding="utf-8") == "keep me\n"
    assert sorted(p.name for p in out_dir.iterdir()) == ["preprocess.json"]


def test_a_new_export_is_removed_when_its_preprocess_json_cannot_be_written(
        monkeypatch: pytest.MonkeyPatch, trained_project: Path, tmp_path: Path) -> None:
    from dlstudio.core.export import verified
    from dlstudio.core.export.source import from_run, latest_trained_run
    from dlstudio.core.safe_io import WriteError

    def refuse(source, path, **_options):
        raise WriteError(f"{path.with_name('preprocess.json')}: cannot write: disk full", "disk full")

    monkeypatch.setattr(verified, "write_preprocess", refuse)
    source = from_run(latest_trained_run(trained_project))
    with pytest.raises(WriteError):
        verified.export_verified(source, "onnx", tmp_path / "model.onnx")
    assert not (tmp_path / "model.onnx").exists()
    (tmp_path / "kept.onnx").write_bytes(b"an earlier export")  # replaced on request: not removed on failure
    with pytest.raises(WriteError):
        verified.export_verified(source, "onnx", tmp_path / "kept.onnx")
    assert (tmp_path / "kept.onnx").is_file()


def test_the_commands_it_suggests_run_as_printed_with_spaces_and_accents_in_names(
        capsys: pytest.CaptureFixture[str], trained_project: Path, untrained_project: Path, tmp_path: Path) -> None:
    import shlex
    import shutil

    spaced = trained_project.with_name("my net é.dlstudio")  # its runs are named relative to its folder
    shutil.copyfile(trained_project, spaced)
    out_dir = tmp_path / "my exports"
    out_dir.mkdir()
    code, out, err = run_cli(capsys, "export", str(spaced), "-o", str(out_dir / "my model.py"))
    assert code == 0, err
    suggested = re.search(r"write them with: (dlstudio export .*) \(then load_state_dict\)$", out, re.M)
    assert suggested, out
    argv = shlex.split(suggested.group(1))
    assert argv[:4] == ["dlstudio", "export", str(spaced), "--format"]
    code, out, err = run_cli(capsys, *argv[1:])
    assert code == 0, err
    assert (out_dir / "my model.safetensors").is_file()

    untrained = untrained_project.with_name("fresh net é.dlstudio")
    untrained_project.rename(untrained)
    code, _, err = run_cli(capsys, "export", str(untrained), "--format", "onnx", "-o", str(tmp_path / "m.onnx"))
    assert code == 2
    train = re.search(r"\((dlstudio train .*)\) or export", one_line_error(err))
    assert train and shlex.split(train.group(1)) == ["dlstudio", "train", str(untrained)], err


def test_a_network_edited_after_its_run_is_exported_as_the_run_trained_it_and_says_so(
        capsys: pytest.CaptureFixture[str], trained_project: Path, tmp_path: Path) -> None:
    from dlstudio.core.project import load_project

    project = load_project(trained_project)
    linear = next(node for node in project.graph if node.type == "Linear")
    project.graph.set_param(linear.id, "out_features", 77)
    edited = trained_project.with_name("edited.dlstudio")  # its runs are named relative to its folder
    save_project(project, edited)
    code, out, err = run_cli(capsys, "export", str(edited), "--format", "onnx", "-o", str(tmp_path / "m.onnx"))
    assert code == 0, err
    assert out.strip().splitlines()[-1].startswith("note: the network was changed after run "), out
    code, out, err = run_cli(capsys, "export", str(edited), "-o", str(tmp_path / "m.py"), "--force")
    assert code == 0, err
    assert "that run's weights may not fit it" in out and "--format safetensors -o" not in out, out
    code, out, err = run_cli(capsys, "export", str(trained_project), "--format", "torchscript",
                             "-o", str(tmp_path / "same.pt"))
    assert code == 0 and "note:" not in out and "changed after" not in out, out


def test_a_missing_folder_is_named_before_the_model_is_exported(
        capsys: pytest.CaptureFixture[str], trained_project: Path, tmp_path: Path) -> None:
    (tmp_path / "a file").write_text("not a folder\n", encoding="utf-8")
    for folder, what in ((tmp_path / "no such" / "folder", "does not exist"), (tmp_path / "a file", "is not a folder")):
        for format_name in ("onnx", "python", "script"):
            code, _, err = run_cli(capsys, "export", str(trained_project), "--format", format_name,
                                   "-o", str(folder / "model.out"))
            assert code == 2
            assert f"the folder {folder} {what}; nothing was exported" in one_line_error(err)
    assert sorted(p.name for p in tmp_path.iterdir()) == ["a file"]


def test_a_planted_link_as_the_output_is_refused_as_a_link_not_as_an_existing_file(
        capsys: pytest.CaptureFixture[str], trained_project: Path, tmp_path: Path) -> None:
    victim = tmp_path / "victim.txt"
    victim.write_text("keep me\n", encoding="utf-8")
    (tmp_path / "out").mkdir()
    link = tmp_path / "out" / "model.onnx"
    link.symlink_to(victim)
    for force in ((), ("--force",)):
        code, _, err = run_cli(capsys, "export", str(trained_project), "--format", "onnx", "-o", str(link), *force)
        assert code == 2
        assert f"{link}: cannot write: it is a symbolic link" in one_line_error(err)
    assert victim.read_text(encoding="utf-8") == "keep me\n" and link.is_symlink()
    assert sorted(p.name for p in link.parent.iterdir()) == ["model.onnx"]


def test_an_output_named_like_another_format_gets_a_note_and_the_usual_name_none(untrained_project: Path,
                                                                                 capsys: pytest.CaptureFixture[str]
                                                                                 ) -> None:
    odd = untrained_project.parent / "model.onnx"
    code, out, err = run_cli(capsys, "export", str(untrained_project), "--format", "python", "-o", str(odd))
    assert code == 0 and odd.is_file() and "class " in odd.read_text()
    assert err.strip() == "note: model.onnx holds python but is named like another kind of file; .py is usual"
    code, _, err = run_cli(capsys, "export", str(untrained_project), "--format", "python", "-o",
                           str(untrained_project.parent / "model.py"))
    assert code == 0 and err == ""

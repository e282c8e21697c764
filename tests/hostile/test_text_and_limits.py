"""Hostile text and sizes (issue 11, items 13, 14 and 8): what dlstudio prints is escaped, quoted values
are cut, exported code runs whatever the description holds, broken models are refused, node names hold
no bidi overrides, and a graph too large to train is found from its shapes."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest

from dlstudio import cli
from dlstudio.core.errors import GraphError, ParamError, ProjectError
from dlstudio.core.graph import Graph
from dlstudio.core.memory import check_fits, estimate_training_bytes, format_bytes
from dlstudio.core.project import TRAINING_SETTINGS, Project, save_project, validate_settings
from dlstudio.core.text import printable, quote

ESC = "\x1b"
HOSTILE = "cat\n\x1b[31mFAKE LINE\x1b[0m\u202eevil"


def _tiny_graph(shape=(1, 8, 8), classes=10) -> Graph:
    graph = Graph()
    nodes = [graph.add_node("Input", {"shape": list(shape)}), graph.add_node("Flatten"),
             graph.add_node("Linear", {"out_features": classes}),
             graph.add_node("Output", {"task": "classification", "classes": classes})]
    for a, b in zip(nodes, nodes[1:]):
        graph.connect(a.id, "out", b.id, "in")
    return graph


# -- printable and quote ---------------------------------------------------------------------------

@pytest.mark.timeout(10)
def test_printable_escapes_controls_line_breaks_and_bidi_but_keeps_letters():
    assert printable("plain é 猫 🐱") == "plain é 猫 🐱"
    text = printable(HOSTILE)
    assert "\n" not in text and ESC not in text and "\u202e" not in text
    assert text == "cat\\n\\x1b[31mFAKE LINE\\x1b[0m\\u202eevil"
    assert printable("a\u2028b\x00c\x7f\x9b") == "a\\u2028b\\x00c\\x7f\\x9b"
    assert printable("bad\udcffbyte") == "bad\\xffbyte"  # an undecodable file-name byte, printable at all
    assert printable(Path("x\ny")) == "x\\ny"


@pytest.mark.timeout(10)
def test_quoted_values_are_cut():
    assert len(quote("x" * 3_000_000)) <= 60
    assert quote("short") == "'short'"
    assert quote(10**400) == "a 401-digit number"
    assert len(quote(list(range(10**6)))) <= 60
    assert "\n" not in quote("a\nb") and "\u202e" not in quote("a\u202eb")


@pytest.mark.timeout(10)
@pytest.mark.parametrize("values, expected", [
    ({"learning_rate": 10**308}, "1e+308"),
    ({"epochs": 10**400}, "401-digit"),
    ({"optimizer": "y" * 3_000_000}, "..."),
    ({"z" * 3_000_000: 1}, "..."),
])
def test_settings_errors_quote_bad_values_briefly(values, expected):
    with pytest.raises(ProjectError) as caught:
        validate_settings(TRAINING_SETTINGS, values, "training")
    message = caught.value.message
    assert len(message) < 200 and expected in message


@pytest.mark.timeout(10)
def test_layer_and_graph_errors_quote_bad_values_briefly():
    graph = Graph()
    for call in (lambda: graph.add_node("Linear", {"out_features": "9" * 3_000_000}),
                 lambda: graph.add_node("Linear", {"out_features": 10**400}),
                 lambda: graph.add_node("Input", {"shape": [1] * 1_000_000}),
                 lambda: graph.add_node("Input", {"shape": ["x" * 3_000_000]}),
                 lambda: graph.add_node("X" * 3_000_000),
                 lambda: graph.add_node("ReLU", node_id="n" * 3_000_000),
                 lambda: graph.node("q" * 3_000_000)):
        with pytest.raises((GraphError, ParamError)) as caught:
            call()
        assert len(caught.value.message) < 200, caught.value.message[:300]


# -- node names --------------------------------------------------------------------------------------

@pytest.mark.timeout(10)
@pytest.mark.parametrize("char", ["\u202a", "\u202b", "\u202c", "\u202d", "\u202e", "\u2066", "\u2067",
                                  "\u2068", "\u2069"])
def test_node_names_refuse_bidi_overrides(char):
    graph = Graph()
    with pytest.raises(GraphError, match="bidirectional"):
        graph.add_node("ReLU", name=f"relu{char}1")
    node = graph.add_node("ReLU")
    with pytest.raises(GraphError, match="bidirectional"):
        graph.rename(node.id, f"x{char}y")
    graph.rename(node.id, "שלום relu")  # right-to-left letters themselves are fine


# -- export -------------------------------------------------------------------------------------------

@pytest.mark.timeout(60)
@pytest.mark.parametrize("description", ["nul\x00inside", "escape \x1b[31m red", "over\u202eride",
                                         "bad byte \udcff", "del\x7f and \x9b csi", '"""\\x00\\'])
def test_exported_code_compiles_whatever_the_description_holds(description, tmp_path: Path):
    from dlstudio.core.export.python_code import export_python

    code = export_python(_tiny_graph(), description=description)
    compile(code, "model.py", "exec")  # raised "source code cannot contain null bytes" for NUL
    (tmp_path / "model.py").write_text(code, encoding="utf-8")  # a lone surrogate could not be encoded
    assert "\x00" not in code and ESC not in code and "\u202e" not in code


# -- the CLI ------------------------------------------------------------------------------------------

@pytest.fixture(scope="module")
def trained(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A digits project trained for one epoch: its run folder."""
    path = tmp_path_factory.mktemp("hostile_cli") / "tiny.dlstudio"
    save_project(Project(graph=_tiny_graph(), data={"source": "digits"},
                         training={"epochs": 1, "batch_size": 128, "learning_rate": 0.05, "device": "cpu"}), path)
    assert cli.main(["train", str(path), "--json"]) == 0
    (run,) = [p for p in (path.parent / "tiny.runs").iterdir() if p.is_dir()]
    return run


def _copy_run(run: Path, tmp_path: Path, change) -> Path:
    """A copy of ``run`` whose checkpoints went through ``change(state)``."""
    import shutil

    import torch

    copy = tmp_path / "run"
    shutil.copytree(run, copy)
    for name in ("best.pt", "last.pt"):
        if (copy / name).exists():
            state = torch.load(copy / name, weights_only=True)
            change(state)
            torch.save(state, copy / name)
    return copy


def _digit_image(folder: Path, name: str) -> Path:
    from PIL import Image

    folder.mkdir(parents=True, exist_ok=True)
    digit = np.zeros((8, 8), np.uint8)
    digit[1:7, 3:5] = 255
    path = folder / name
    Image.fromarray(digit).save(path, format="PNG")
    return path


@pytest.mark.timeout(120)
def test_classify_escapes_class_names_and_file_names(trained: Path, tmp_path: Path,
                                                     capsys: pytest.CaptureFixture[str]):
    def hostile_names(state):
        state["meta"]["class_names"] = [f"{HOSTILE}{i}" for i in range(10)]

    run = _copy_run(trained, tmp_path, hostile_names)
    images = tmp_path / "images"
    _digit_image(images, "one\n\x1b[2J.png")
    _digit_image(images, "two.png")
    capsys.readouterr()
    code = cli.main(["classify", str(run), str(images), "--top", "10"])
    out, err = capsys.readouterr()
    assert code == 0, err
    assert ESC not in out + err and "\u202e" not in out + err
    assert len(out.splitlines()) == 2  # one line per image, none forged
    assert "one\\n\\x1b[2J.png" in out and "cat\\n\\x1b[31mFAKE LINE" in out
    code = cli.main(["classify", str(run), str(images), "--json"])
    out, _ = capsys.readouterr()
    assert code == 0 and ESC not in out and {Path(i["file"]).name for i in json.loads(out)} == {
        "one\n\x1b[2J.png", "two.png"}


@pytest.mark.timeout(120)
@pytest.mark.parametrize("how", ["nan weights", "zero std"])
def test_classify_refuses_a_model_whose_outputs_are_not_finite(how, trained: Path, tmp_path: Path,
                                                               capsys: pytest.CaptureFixture[str]):
    import torch

    def broken(state):
        if how == "nan weights":
            state["model"] = {key: torch.full_like(value, float("nan")) if value.is_floating_point() else value
                              for key, value in state["model"].items()}
        else:
            normalization = state["meta"].get("normalization")
            if not isinstance(normalization, dict) or "std" not in normalization:
                pytest.skip("this run keeps no normalization statistics in its checkpoint")
            normalization["std"] = [0.0 for _ in normalization["std"]]

    run = _copy_run(trained, tmp_path, broken)
    _digit_image(tmp_path / "images", "one.png")
    capsys.readouterr()
    code = cli.main(["classify", str(run), str(tmp_path / "images")])
    out, err = capsys.readouterr()
    assert "nan%" not in out
    assert code == 2, (out, err)
    assert len(err.strip().splitlines()) == 1 and "Traceback" not in err


# -- memory estimate -------------------------------------------------------------------------------

@pytest.mark.timeout(30)
def test_memory_estimate_follows_the_shapes():
    small = _tiny_graph()
    # (64 input + 64 flatten + 10 linear) values per sample x 4 bytes x batch 32 x 3, plus 650 params x 4 x 4
    assert estimate_training_bytes(small, 32) == (64 + 64 + 10) * 4 * 32 * 3 + 650 * 4 * 4
    assert check_fits(small, 32, available=10**9) is None
    huge = _tiny_graph(shape=(3, 100_000, 100_000))
    reason = check_fits(huge, 32, available=16 * 10**9)
    assert reason is not None and "\n" not in reason
    assert "batch size 32" in reason and "16 GB" in reason and "input1" in reason
    assert format_bytes(1536) == "1.54 KB" and format_bytes(12) == "12 bytes"


@pytest.mark.timeout(60)
def test_info_warns_when_training_would_not_fit_in_memory(tmp_path: Path, capsys: pytest.CaptureFixture[str]):
    path = tmp_path / "huge.dlstudio"
    graph = Graph()
    nodes = [graph.add_node("Input", {"shape": [3, 100_000, 100_000]}), graph.add_node("Conv2d", {"out_channels": 4}),
             graph.add_node("AdaptiveAvgPool2d"), graph.add_node("Flatten"),
             graph.add_node("Linear", {"out_features": 2}), graph.add_node("Output", {"classes": 2})]
    for a, b in zip(nodes, nodes[1:]):
        graph.connect(a.id, "out", b.id, "in")
    save_project(Project(graph=graph), path)
    capsys.readouterr()
    code = cli.main(["info", str(path)])
    out, err = capsys.readouterr()
    assert code == 0, err
    warnings = [line for line in err.splitlines() if "warning" in line]
    assert len(warnings) == 1 and "memory" in warnings[0] and "TB" in warnings[0]
    small = tmp_path / "small.dlstudio"
    save_project(Project(graph=_tiny_graph()), small)
    assert cli.main(["info", str(small)]) == 0
    assert "warning" not in capsys.readouterr().err

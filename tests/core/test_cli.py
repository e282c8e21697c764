"""The headless command line, called in-process (plus one subprocess run to prove Qt stays out)."""

from __future__ import annotations

import json
import subprocess
import sys
import types
from pathlib import Path
from typing import Any

import pytest

from dlstudio import __version__, cli
from dlstudio.core.graph import Graph
from dlstudio.core.layers.spec import format_shape

project_api = pytest.importorskip("dlstudio.core.project", reason="the project file format is not there yet")
if not hasattr(project_api, "save_project"):
    pytest.skip("the project file format is not there yet", allow_module_level=True)


def run_cli(capsys: pytest.CaptureFixture[str], *argv: str) -> tuple[int, str, str]:
    code = cli.main(list(argv))
    out, err = capsys.readouterr()
    return code, out, err


def assert_one_line_error(err: str, *fragments: str) -> None:
    lines = err.strip().splitlines()
    assert len(lines) == 1, err
    assert lines[0].startswith("dlstudio: error: "), err
    assert "Traceback" not in err
    for fragment in fragments:
        assert fragment in lines[0]


def small_cnn() -> Graph:
    graph = Graph()
    graph.add_node("Input", {"shape": [1, 28, 28]}, node_id="input1")
    graph.add_node("Conv2d", {"out_channels": 6, "kernel_size": 5, "padding": 2}, node_id="conv1",
                   name="First conv")
    graph.add_node("MaxPool2d", node_id="pool1")
    graph.add_node("Flatten", node_id="flatten1")
    graph.add_node("Linear", {"out_features": 10}, node_id="fc1")
    graph.add_node("Output", node_id="output1")
    for src, dst in [("input1", "conv1"), ("conv1", "pool1"), ("pool1", "flatten1"), ("flatten1", "fc1"),
                     ("fc1", "output1")]:
        graph.connect(src, "out", dst, "in")
    return graph


@pytest.fixture
def cnn_file(tmp_path: Path) -> Path:
    path = tmp_path / "cnn.dlstudio"
    project_api.save_project(project_api.Project(graph=small_cnn(), description="A tiny CNN"), path)
    return path


@pytest.fixture
def broken_file(tmp_path: Path) -> Path:
    graph = small_cnn()
    graph.set_param("fc1", "in_features", 100)
    path = tmp_path / "broken.dlstudio"
    project_api.save_project(project_api.Project(graph=graph), path)
    return path


def template_names() -> list[str]:
    return [template.name for template in project_api.list_templates()]


def require_template(name: str) -> None:
    if name not in template_names():
        pytest.skip(f"template {name!r} is not bundled yet")


# -- dispatch -------------------------------------------------------------------------

def test_version_and_help_run_headless(capsys: pytest.CaptureFixture[str]) -> None:
    code, out, _ = run_cli(capsys, "--version")
    assert code == 0 and out.strip() == f"dlstudio {__version__}"
    code, out, _ = run_cli(capsys, "--help")
    assert code == 0
    for command in ("templates", "new", "info", "export"):
        assert command in out


def test_subcommands_are_listed_in_one_tuple() -> None:
    _, names = cli.build_parser()
    # A command is named like its module, unless the module says otherwise (`import` is a Python keyword).
    assert names == tuple(getattr(module, "COMMAND", module.__name__.rsplit(".", 1)[1]) for module in cli.COMMANDS)
    assert {"templates", "new", "import", "info", "export"} <= set(names)
    assert all(hasattr(module, "add_parser") and hasattr(module, "run") for module in cli.COMMANDS)


def test_everything_else_goes_to_the_app(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    received: list[list[str]] = []
    fake_app = types.ModuleType("dlstudio.app")
    fake_app.main = lambda argv: received.append(argv) or 7  # type: ignore[attr-defined]
    monkeypatch.setitem(sys.modules, "dlstudio.app", fake_app)
    project = tmp_path / "net.dlstudio"
    assert cli.main([]) == 7
    assert cli.main([str(project)]) == 7
    assert cli.main(["--screenshot", "out.png", str(project)]) == 7
    assert received == [[], [str(project)], ["--screenshot", "out.png", str(project)]]


def test_missing_app_is_one_line(monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]) -> None:
    monkeypatch.setitem(sys.modules, "dlstudio.app", None)  # makes "import dlstudio.app" fail
    code, _, err = run_cli(capsys)
    assert code == 2
    assert_one_line_error(err, "desktop app")


def test_mistyped_subcommand_is_a_usage_error(capsys: pytest.CaptureFixture[str]) -> None:
    code, _, err = run_cli(capsys, "infoo")
    assert code == 2
    assert "invalid choice: 'infoo'" in err


# -- templates and new ------------------------------------------------------------------

def test_templates_lists_each_with_a_one_line_description(capsys: pytest.CaptureFixture[str]) -> None:
    templates = project_api.list_templates()
    if not templates:
        pytest.skip("no templates are bundled yet")
    code, out, _ = run_cli(capsys, "templates")
    assert code == 0
    lines = out.strip().splitlines()
    assert len(lines) == len(templates)
    for line, template in zip(lines, templates):
        assert line.startswith(template.name + " ")
        assert template.title in line


def test_new_writes_a_project_from_a_template(capsys: pytest.CaptureFixture[str], tmp_path: Path) -> None:
    require_template("lenet5")
    path = tmp_path / "lenet.dlstudio"
    code, out, err = run_cli(capsys, "new", "--template", "lenet5", "--dataset", "digits", "-o", str(path))
    assert code == 0, err
    assert str(path) in out
    project = project_api.load_project(path)
    assert project.data["source"] == "digits"
    assert project.graph.to_dict() == project_api.load_template("lenet5").graph.to_dict()


def test_new_can_switch_to_a_torchvision_dataset(capsys: pytest.CaptureFixture[str], tmp_path: Path) -> None:
    require_template("lenet5")
    path = tmp_path / "mnist.dlstudio"
    code, _, err = run_cli(capsys, "new", "--template", "lenet5", "--dataset", "mnist", "-o", str(path))
    assert code == 0, err
    data = project_api.load_project(path).data
    assert (data["source"], data["dataset"]) == ("torchvision", "mnist")


def test_new_refuses_to_overwrite_unless_forced(capsys: pytest.CaptureFixture[str], cnn_file: Path) -> None:
    require_template("lenet5")
    before = cnn_file.read_bytes()
    code, _, err = run_cli(capsys, "new", "--template", "lenet5", "-o", str(cnn_file))
    assert code == 2
    assert_one_line_error(err, str(cnn_file), "already exists", "--force")
    assert cnn_file.read_bytes() == before
    code, _, err = run_cli(capsys, "new", "--template", "lenet5", "-o", str(cnn_file), "--force")
    assert code == 0, err
    assert cnn_file.read_bytes() != before


def test_new_with_an_unknown_template(capsys: pytest.CaptureFixture[str], tmp_path: Path) -> None:
    path = tmp_path / "x.dlstudio"
    code, _, err = run_cli(capsys, "new", "--template", "no-such-net", "-o", str(path))
    assert code == 2
    assert_one_line_error(err, "unknown template 'no-such-net'")
    assert not path.exists()


# -- info -------------------------------------------------------------------------------------

def test_info_prints_an_aligned_table_and_totals(capsys: pytest.CaptureFixture[str], cnn_file: Path) -> None:
    code, out, err = run_cli(capsys, "info", str(cnn_file))
    assert code == 0 and err == ""
    lines = out.splitlines()
    assert lines[0].split() == ["id", "type", "name", "output", "shape", "params", "MACs"]
    conv = next(line for line in lines if line.startswith("conv1 "))
    # conv1: 6*1*5*5 + 6 = 156 parameters; 6*28*28*25 = 117,600 MACs.
    assert "First conv" in conv and "(N, 6, 28, 28)" in conv
    assert conv.endswith("156  117,600")
    fc = next(line for line in lines if line.startswith("fc1 "))
    assert "(N, 10)" in fc and fc.endswith("11,770   11,760")
    # Numbers are right-aligned: every row of the table has the same width up to the last column.
    table = lines[: lines.index("")]
    assert len({len(line) for line in table}) == 1
    assert lines[-1] == "total: 11,926 parameters, 129,360 MACs per sample, 0 errors"


def test_info_json_schema(capsys: pytest.CaptureFixture[str], cnn_file: Path) -> None:
    code, out, _ = run_cli(capsys, "info", str(cnn_file), "--json")
    assert code == 0
    doc = json.loads(out)
    assert set(doc) == {"nodes", "total_params", "total_macs", "errors"}
    assert [node["id"] for node in doc["nodes"]] == ["input1", "conv1", "pool1", "flatten1", "fc1", "output1"]
    for node in doc["nodes"]:
        assert set(node) == {"id", "type", "output_shape", "params", "macs"}
    conv = doc["nodes"][1]
    assert conv == {"id": "conv1", "type": "Conv2d", "output_shape": [None, 6, 28, 28], "params": 156,
                    "macs": 117_600}
    assert doc["nodes"][-1]["output_shape"] == [None, 10]
    assert (doc["total_params"], doc["total_macs"], doc["errors"]) == (11_926, 129_360, [])


def test_info_on_an_invalid_graph_prints_it_and_exits_2(capsys: pytest.CaptureFixture[str],
                                                        broken_file: Path) -> None:
    code, out, err = run_cli(capsys, "info", str(broken_file))
    assert code == 2
    assert_one_line_error(err, "1 error", "fc1")
    assert "error: fc1: Linear has in_features=100 but its input has 1176 features" in out
    assert "1 error" in out.splitlines()[-2]

    code, out, err = run_cli(capsys, "info", str(broken_file), "--json")
    assert code == 2
    doc = json.loads(out)
    assert doc["errors"] == [{"node": "fc1", "message": "Linear has in_features=100 but its input has 1176 features"}]
    by_id = {node["id"]: node for node in doc["nodes"]}
    assert by_id["fc1"]["output_shape"] is None and by_id["output1"]["output_shape"] is None
    assert by_id["flatten1"]["output_shape"] == [None, 1176]


@pytest.mark.parametrize("content, fragment", [
    ("this is not json", "not valid JSON"),
    ('{"format": "something-else"}', "not a dlstudio project"),
])
def test_info_on_a_bad_file(capsys: pytest.CaptureFixture[str], tmp_path: Path, content: str, fragment: str) -> None:
    path = tmp_path / "bad.dlstudio"
    path.write_text(content, encoding="utf-8")
    code, out, err = run_cli(capsys, "info", str(path))
    assert code == 2 and out == ""
    assert_one_line_error(err, "bad.dlstudio", fragment)


def test_info_on_a_missing_file(capsys: pytest.CaptureFixture[str], tmp_path: Path) -> None:
    code, _, err = run_cli(capsys, "info", str(tmp_path / "gone.dlstudio"))
    assert code == 2
    assert_one_line_error(err, "gone.dlstudio")


def test_info_total_params_of_lenet5_match_the_compiled_model(capsys: pytest.CaptureFixture[str],
                                                               tmp_path: Path) -> None:
    require_template("lenet5")
    from dlstudio.core.compiler import compile_graph

    path = tmp_path / "lenet.dlstudio"
    assert run_cli(capsys, "new", "--template", "lenet5", "-o", str(path))[0] == 0
    code, out, _ = run_cli(capsys, "info", str(path), "--json")
    assert code == 0
    doc = json.loads(out)
    model = compile_graph(project_api.load_project(path).graph)
    assert doc["total_params"] == sum(p.numel() for p in model.parameters())
    assert doc["errors"] == []


def test_info_reports_a_broken_add_of_resnet_mini(capsys: pytest.CaptureFixture[str], tmp_path: Path) -> None:
    require_template("resnet-mini")
    path = tmp_path / "resnet.dlstudio"
    assert run_cli(capsys, "new", "--template", "resnet-mini", "-o", str(path))[0] == 0
    code, out, err = run_cli(capsys, "info", str(path), "--json")
    assert code == 0 and json.loads(out)["errors"] == [], err

    doc = json.loads(path.read_text(encoding="utf-8"))
    add_id, conv_id, left, right = _break_an_add(doc)
    add_name = next(node["name"] for node in doc["graph"]["nodes"] if node["id"] == add_id)
    path.write_text(json.dumps(doc), encoding="utf-8")
    code, out, err = run_cli(capsys, "info", str(path))
    assert code == 2
    assert_one_line_error(err, add_name)  # the person's name for the node, not its internal id
    (error_line,) = [line for line in out.splitlines() if line.startswith("error: ")]
    assert error_line.startswith(f"error: {add_name}: ")
    assert format_shape(left) in error_line and format_shape(right) in error_line, (conv_id, error_line)


def _break_an_add(doc: dict[str, Any]) -> tuple[str, str, tuple[int, ...], tuple[int, ...]]:
    """Give the conv feeding the first Add's first input one more channel; return the shapes Add then gets."""
    nodes = {node["id"]: node for node in doc["graph"]["nodes"]}
    edges = doc["graph"]["edges"]
    source_of = {(edge["dst"], edge["dst_port"]): edge["src"] for edge in edges}
    add_id = next(node_id for node_id, node in nodes.items() if node["type"] == "Add")
    current = source_of[(add_id, "in1")]
    while nodes[current]["type"] != "Conv2d":
        if "num_features" in nodes[current]["params"]:
            nodes[current]["params"]["num_features"] = None  # a BatchNorm on the way follows the new width
        current = source_of[(current, "in")]
    conv = nodes[current]
    conv["params"]["out_channels"] += 1
    graph = Graph.from_dict(doc["graph"])
    from dlstudio.core.shapes import infer_graph

    infos = infer_graph(graph)
    left = infos[source_of[(add_id, "in1")]].output_shape
    right = infos[source_of[(add_id, "in2")]].output_shape
    assert left is not None and right is not None and left != right
    return add_id, current, left, right


# -- export -----------------------------------------------------------------------------------

def test_export_python_writes_runnable_code(capsys: pytest.CaptureFixture[str], cnn_file: Path,
                                            tmp_path: Path) -> None:
    out_path = tmp_path / "model.py"
    code, out, err = run_cli(capsys, "export", str(cnn_file), "--format", "python", "-o", str(out_path))
    assert code == 0, err
    assert str(out_path) in out
    text = out_path.read_text(encoding="utf-8")
    assert "A tiny CNN" in text and "class Model(nn.Module):" in text
    namespace: dict[str, Any] = {"__name__": "exported"}
    exec(compile(text, str(out_path), "exec"), namespace)
    assert {key for key, _ in namespace["Model"]().state_dict().items()} == {
        "conv1.weight", "conv1.bias", "fc1.weight", "fc1.bias"}


def test_export_refuses_to_overwrite_and_takes_a_class_name(capsys: pytest.CaptureFixture[str], cnn_file: Path,
                                                           tmp_path: Path) -> None:
    out_path = tmp_path / "model.py"
    out_path.write_text("# mine\n", encoding="utf-8")
    code, _, err = run_cli(capsys, "export", str(cnn_file), "-o", str(out_path))
    assert code == 2
    assert_one_line_error(err, "already exists")
    assert out_path.read_text(encoding="utf-8") == "# mine\n"
    code, _, err = run_cli(capsys, "export", str(cnn_file), "-o", str(out_path), "--force", "--class-name", "TinyNet")
    assert code == 0, err
    assert "class TinyNet(nn.Module):" in out_path.read_text(encoding="utf-8")


def test_export_of_an_invalid_graph_or_bad_name_is_one_line(capsys: pytest.CaptureFixture[str], broken_file: Path,
                                                            cnn_file: Path, tmp_path: Path) -> None:
    out_path = tmp_path / "model.py"
    code, _, err = run_cli(capsys, "export", str(broken_file), "-o", str(out_path))
    assert code == 2
    assert_one_line_error(err, "fc1", "in_features=100")
    assert not out_path.exists()
    code, _, err = run_cli(capsys, "export", str(cnn_file), "-o", str(out_path), "--class-name", "2fast")
    assert code == 2
    assert_one_line_error(err, "'2fast'")


def test_export_format_must_be_known(capsys: pytest.CaptureFixture[str], cnn_file: Path, tmp_path: Path) -> None:
    code, _, err = run_cli(capsys, "export", str(cnn_file), "--format", "onnx2", "-o", str(tmp_path / "m"))
    assert code == 2
    assert "invalid choice: 'onnx2'" in err


# -- no Qt on the headless path -------------------------------------------------------------------

def test_python_m_dlstudio_info_does_not_import_qt(cnn_file: Path) -> None:
    result = subprocess.run([sys.executable, "-X", "importtime", "-m", "dlstudio", "info", str(cnn_file)],
                            capture_output=True, text=True, timeout=60)
    assert result.returncode == 0, result.stderr[-2000:]
    assert "(N, 6, 28, 28)" in result.stdout
    imported = [line.rsplit("|", 1)[-1].strip() for line in result.stderr.splitlines()
                if line.startswith("import time:")]
    assert "dlstudio.commands.info" in imported  # the import log is really there
    assert not [name for name in imported if name.split(".")[0] in ("PySide6", "pyqtgraph", "shiboken6")]

"""What a person reads names nodes as the person named them, never by internal id (design.md §12).

Every graph here has names that differ from its ids (the bundled templates call ``maxpool2`` "pool2" and
``linear1`` "fc1"); each message, export and CLI line is checked to carry the names and none of the ids.
"""

from __future__ import annotations

import importlib.util
import json
import re
from pathlib import Path
from typing import Any

import pytest
import torch

from dlstudio import cli
from dlstudio.core.compiler import compile_graph
from dlstudio.core.errors import CompileError
from dlstudio.core.export.python_code import export_python
from dlstudio.core.graph import Graph
from dlstudio.core.inspect import InspectError, conv_weight, grad_cam, load_trained, node_output
from dlstudio.core.project import Project, load_template, save_project
from dlstudio.core.training import CheckpointError, load_checkpoint
from dlstudio.core.training.checkpoint import save_checkpoint
from dlstudio.core.training.session import SessionError, resume_settings, start_session

pytestmark = pytest.mark.usefixtures("one_torch_thread")

# Ids that the lenet5 template's names never are: none of these may reach a message.
LENET_IDS = ("maxpool1", "maxpool2", "flatten1", "linear1", "linear2", "linear3", "input1", "output1")


def lenet() -> Graph:
    return load_template("lenet5").graph


def renamed_cnn() -> Graph:
    """A small CNN whose every node has a name unlike its id (and unlike any other node's id)."""
    graph = Graph()
    names = {"input1": "picture", "conv1": "edges", "relu1": "edges relu", "maxpool1": "shrink",
             "flatten1": "unroll", "linear1": "scores", "output1": "digit"}
    graph.add_node("Input", {"shape": [1, 12, 12]}, node_id="input1")
    graph.add_node("Conv2d", {"out_channels": 4, "kernel_size": 3, "padding": 1}, node_id="conv1")
    graph.add_node("ReLU", node_id="relu1")
    graph.add_node("MaxPool2d", node_id="maxpool1")
    graph.add_node("Flatten", node_id="flatten1")
    graph.add_node("Linear", {"out_features": 10}, node_id="linear1")
    graph.add_node("Output", {"classes": 10}, node_id="output1")
    ids = list(names)
    for src, dst in zip(ids, ids[1:]):
        graph.connect(src, "out", dst, "in")
    for node_id, name in names.items():
        graph.rename(node_id, name)
    return graph


def assert_no_ids(text: str, ids: tuple[str, ...] | list[str]) -> None:
    for node_id in ids:
        assert not re.search(rf"\b{re.escape(node_id)}\b", text), (node_id, text)


def broken_lenet() -> Graph:
    graph = lenet()
    graph.set_param("linear1", "in_features", 100)  # "fc1" in the drawing
    return graph


# -- compiling and training -------------------------------------------------------------------

def test_a_compile_error_names_the_node_not_its_id() -> None:
    with pytest.raises(CompileError) as caught:
        compile_graph(broken_lenet())
    message = str(caught.value)
    assert message.startswith("the graph has errors: fc1: Linear has in_features=100")
    assert_no_ids(message, LENET_IDS)
    assert caught.value.errors[0].node_id == "linear1"  # the canvas still finds the node by id


def test_training_a_graph_with_errors_is_refused_in_the_persons_words(tmp_path: Path) -> None:
    with pytest.raises(CompileError) as caught:
        start_session(broken_lenet(), {"source": "digits"}, {"epochs": 1, "device": "cpu"},
                      tmp_path / "p.dlstudio")
    assert "fc1: Linear has in_features=100" in caught.value.message
    assert_no_ids(caught.value.message, LENET_IDS)
    assert not (tmp_path / "p.runs").exists()


def test_the_compiled_model_knows_the_names_and_says_them_for_a_wrong_call() -> None:
    model = compile_graph(renamed_cnn())
    assert model.node_name("linear1") == "scores"
    assert model.node_names["input1"] == "picture"
    with pytest.raises(TypeError) as caught:
        model()
    assert "picture" in str(caught.value) and "input1" not in str(caught.value)


def test_cli_train_of_a_broken_graph_names_the_node(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    path = tmp_path / "lenet.dlstudio"
    save_project(Project(graph=broken_lenet(), data={"source": "digits"},
                         training={"epochs": 1, "device": "cpu"}), path)
    code = cli.main(["train", str(path)])
    out, err = capsys.readouterr()
    assert code == 2 and out == ""
    assert "fc1: Linear has in_features=100" in err
    assert_no_ids(err, LENET_IDS)


def test_cli_info_error_lines_name_the_node(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    path = tmp_path / "lenet.dlstudio"
    save_project(Project(graph=broken_lenet()), path)
    code = cli.main(["info", str(path)])
    out, err = capsys.readouterr()
    assert code == 2
    (error_line,) = [line for line in out.splitlines() if line.startswith("error: ")]
    assert error_line.startswith("error: fc1: Linear has in_features=100")
    assert "the graph has 1 error: fc1: " in err
    assert_no_ids(error_line + err, LENET_IDS)


def test_reading_a_damaged_checkpoint_gives_a_reason_not_an_exception_name(tmp_path: Path) -> None:
    path = tmp_path / "last.pt"
    path.write_bytes(b"not a checkpoint at all")
    with pytest.raises(CheckpointError) as caught:
        load_checkpoint(path)
    assert "damaged" in caught.value.message
    assert not re.search(r"[A-Z][a-z]+Error|Exception", caught.value.message), caught.value.message


def test_resuming_a_run_with_damaged_settings_gives_a_reason_not_an_exception_name(tmp_path: Path) -> None:
    run_dir = tmp_path / "run"
    run_dir.mkdir()
    (run_dir / "last.pt").write_bytes(b"x")
    (run_dir / "settings.json").write_text(json.dumps({"graph": {"nodes": [], "edges": []}}), encoding="utf-8")
    with pytest.raises(SessionError) as caught:
        resume_settings(run_dir)
    assert "settings.json has no 'data' entry" in caught.value.message
    assert "KeyError" not in caught.value.message


# -- exported code ----------------------------------------------------------------------------------

def _comments_and_docstrings(code: str) -> str:
    """The text of the exported file a person reads as prose: comments and the docstrings."""
    prose = re.findall(r"#[^\n]*", code)
    prose += re.findall(r'"""(.*?)"""', code, flags=re.S)
    return "\n".join(prose)


def _import(code: str, directory: Path, name: str) -> Any:
    path = directory / f"{name}.py"
    path.write_text(code, encoding="utf-8")
    spec = importlib.util.spec_from_file_location(f"names_{name}", path)
    module = importlib.util.module_from_spec(spec)  # type: ignore[arg-type]
    spec.loader.exec_module(module)  # type: ignore[union-attr]
    return module


def test_exported_comments_docstring_and_forward_use_the_names(tmp_path: Path) -> None:
    graph = lenet()
    code = export_python(graph)
    assert "Input image: (N, 1, 28, 28)" in code and "Output digit: (N, 10)" in code
    assert "def forward(self, image: torch.Tensor) -> torch.Tensor:" in code
    assert "pool2 = self.maxpool2(relu2)  # (N, 16, 5, 5)" in code
    assert "fc1 = self.linear1(flatten)  # (N, 120)" in code
    assert "self.linear1 = nn.Linear(400, 120)  # fc1" in code  # the attribute keeps the state_dict key
    assert "return fc3" in code
    assert_no_ids(_comments_and_docstrings(code), LENET_IDS)
    # Apart from the attributes (self.<id>, dlstudio's weight keys), no id is left in the code either.
    assert_no_ids(re.sub(r"self\.\w+", "self.ATTRIBUTE", code), LENET_IDS)
    # And the state_dict of the compiled model still loads, giving the same outputs.
    torch.manual_seed(0)
    compiled = compile_graph(graph).eval()
    exported = _import(code, tmp_path, "lenet").Model().eval()
    exported.load_state_dict(compiled.state_dict(), strict=True)
    x = torch.randn(2, 1, 28, 28)
    with torch.no_grad():
        assert torch.equal(compiled(x), exported(x))


def test_names_that_are_no_identifiers_or_clash_still_export_exactly(tmp_path: Path) -> None:
    graph = renamed_cnn()
    graph.rename("conv1", "relu1")          # the id of another node
    graph.rename("relu1", "conv1")          # ... and the other way round
    graph.rename("maxpool1", "2x pool")     # not an identifier: the id stays
    graph.rename("linear1", "scores-1")     # "scores_1" as a variable ...
    graph.rename("flatten1", "scores 1")    # ... as this one's: neither may have it, both keep their ids
    graph.rename("input1", "class")         # a keyword
    code = export_python(graph)
    assert "def forward(self, input1: torch.Tensor)" in code
    assert "relu1 = self.conv1(input1)  # (N, 4, 12, 12)" in code
    assert "conv1 = self.relu1(relu1)  # (N, 4, 12, 12)" in code
    assert "maxpool1 = self.maxpool1(conv1)  # 2x pool: (N, 4, 6, 6)" in code
    assert "flatten1 = self.flatten1(maxpool1)  # scores 1: (N, 144)" in code
    assert "linear1 = self.linear1(flatten1)  # scores-1: (N, 10)" in code
    compiled = compile_graph(graph).eval()
    exported = _import(code, tmp_path, "clash").Model().eval()
    exported.load_state_dict(compiled.state_dict(), strict=True)
    x = torch.randn(3, 1, 12, 12)
    with torch.no_grad():
        assert torch.equal(compiled(x), exported(x))


def test_names_with_spaces_become_readable_variables(tmp_path: Path) -> None:
    code = export_python(load_template("resnet-mini").graph)
    assert "block1_add = block1_bn2 + stem_relu  # block1 add: (N, 16, 32, 32)" in code
    assert "global_pool = self.gap1(block3_relu2)  # global pool: (N, 64, 1, 1)" in code


def test_the_smoke_check_prints_output_names(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    graph = Graph()
    graph.add_node("Input", {"shape": [4]}, node_id="input1", name="features")
    graph.add_node("Linear", {"out_features": 3}, node_id="linear1", name="head")
    graph.add_node("Output", {"classes": 3}, node_id="output1", name='the "scores"')
    graph.add_node("Output", {"task": "reconstruction"}, node_id="output2", name="copy")
    graph.connect("input1", "out", "linear1", "in")
    graph.connect("linear1", "out", "output1", "in")
    graph.connect("input1", "out", "output2", "in")
    import runpy

    path = tmp_path / "two.py"
    path.write_text(export_python(graph), encoding="utf-8")
    runpy.run_path(str(path), run_name="__main__")
    assert capsys.readouterr().out.splitlines() == ['the "scores" shape: (2, 3)', "copy shape: (2, 4)"]


# -- inspecting ------------------------------------------------------------------------------------

def test_inspect_errors_name_the_layer() -> None:
    model = compile_graph(renamed_cnn()).eval()
    x = torch.rand(1, 1, 12, 12)
    with pytest.raises(InspectError) as caught:
        conv_weight(model, "linear1")
    assert caught.value.message.startswith("'scores' is not a 2-D convolution")
    with pytest.raises(InspectError) as caught:
        grad_cam(model, x, node_id="flatten1")
    assert "'unroll' gives [144]" in caught.value.message
    with pytest.raises(InspectError) as caught:
        node_output(model, x, "conv9")
    for message in (caught.value.message,):
        assert "has no such layer" in message
    ids = ("conv1", "relu1", "maxpool1", "flatten1", "linear1", "input1", "output1", "conv9")
    for call in (lambda: conv_weight(model, "linear1"), lambda: grad_cam(model, x, node_id="flatten1"),
                 lambda: node_output(model, x, "conv9"), lambda: conv_weight(model.state_dict(), "linear1")):
        with pytest.raises(InspectError) as caught:
            call()
        assert_no_ids(caught.value.message, ids)


def test_weights_that_do_not_fit_name_the_layers(tmp_path: Path) -> None:
    graph = renamed_cnn()
    run_dir = tmp_path / "p.runs" / "run1"
    run_dir.mkdir(parents=True)
    (run_dir / "settings.json").write_text(json.dumps({"graph": graph.to_dict(), "data": {"source": "digits"}}),
                                           encoding="utf-8")
    other = renamed_cnn()
    other.set_param("linear1", "out_features", 7)
    other.set_param("output1", "classes", 7)
    save_checkpoint({"model": compile_graph(other).state_dict()}, run_dir / "best.pt")
    with pytest.raises(InspectError) as caught:
        load_trained(run_dir)
    assert caught.value.message.endswith("do not fit the run's graph: the weights of scores differ")
    assert_no_ids(caught.value.message.split("graph:")[1], ("linear1",))

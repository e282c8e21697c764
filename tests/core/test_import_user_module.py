"""Importing a person's own nn.Module class (``file.py:Class`` or ``module:Class``) as an editable graph."""

from __future__ import annotations

import sys
import textwrap
from collections.abc import Iterator
from pathlib import Path

import pytest

torch = pytest.importorskip("torch")

from dlstudio import cli  # noqa: E402
from dlstudio.core.compiler import compile_graph  # noqa: E402
from dlstudio.core.importer import ImportResult, ModelImportError, import_module_class  # noqa: E402
from dlstudio.core.project import load_project  # noqa: E402
from dlstudio.core.shapes import infer_graph  # noqa: E402

MODULE = "dlstudio_test_user_nets"  # the name tmp_path's file is imported under by module:Class
SOURCE = textwrap.dedent('''
    import torch
    from torch import nn


    class SkipNet(nn.Module):
        """conv -> bn -> relu, a residual block (x + y), adaptive pool, flatten, linear."""

        def __init__(self, num_classes=5, width=8):
            super().__init__()
            self.stem = nn.Conv2d(3, width, 3, padding=1, bias=False)
            self.bn = nn.BatchNorm2d(width)
            self.relu = nn.ReLU()
            self.conv = nn.Conv2d(width, width, 3, padding=1)
            self.bn2 = nn.BatchNorm2d(width)
            self.pool = nn.AdaptiveAvgPool2d(1)
            self.flatten = nn.Flatten()
            self.head = nn.Linear(width, num_classes)

        def forward(self, x):
            x = self.relu(self.bn(self.stem(x)))
            y = self.bn2(self.conv(x))
            x = torch.relu(x + y)
            return self.head(self.flatten(self.pool(x)))


    class Sorting(nn.Module):
        def __init__(self):
            super().__init__()
            self.head = nn.Linear(4, 3)

        def forward(self, x):
            return self.head(torch.sort(x, dim=1)[0])


    class Features(nn.Module):
        def __init__(self):
            super().__init__()
            self.conv = nn.Conv2d(3, 4, 3)

        def forward(self, x):
            return self.conv(x)


    class Pair(nn.Module):
        def __init__(self):
            super().__init__()
            self.head = nn.Linear(4, 3)

        def forward(self, x):
            return self.head(x), x
''')
SHAPE = (3, 12, 12)


@pytest.fixture
def user_file(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[Path]:
    """The user's module, written into tmp_path, which is on sys.path as ``MODULE`` for this test only."""
    path = tmp_path / f"{MODULE}.py"
    path.write_text(SOURCE, encoding="utf-8")
    monkeypatch.syspath_prepend(str(tmp_path))
    monkeypatch.delitem(sys.modules, MODULE, raising=False)
    yield path
    sys.modules.pop(MODULE, None)


def _compiled(result: ImportResult) -> torch.nn.Module:
    assert result.project is not None
    model = compile_graph(result.project.graph).eval()
    result.load_into(model)
    return model


def _randomize_norm_statistics(model: torch.nn.Module) -> None:
    """Non-trivial running statistics, so eval-mode BatchNorm is checked to be mapped, not just the identity."""
    for module in model.modules():
        if isinstance(module, torch.nn.BatchNorm2d):
            module.running_mean.uniform_(-0.5, 0.5)
            module.running_var.uniform_(0.5, 2.0)
            module.weight.data.uniform_(0.5, 1.5)
            module.bias.data.uniform_(-0.5, 0.5)


@pytest.mark.timeout(30)
@pytest.mark.parametrize("how", ["file", "module"])
def test_a_user_module_with_a_skip_connection_computes_the_same(how: str, user_file: Path) -> None:
    torch.manual_seed(0)
    spec = f"{user_file}:SkipNet" if how == "file" else f"{MODULE}:SkipNet"
    result = import_module_class(spec, input_shape=SHAPE)
    assert result.ok and result.name == "SkipNet" and result.num_classes == 5
    graph = result.project.graph
    assert graph.node("input").params["shape"] == list(SHAPE)
    assert graph.node("output").params == {"task": "classification", "classes": 5}
    add = graph.node_named("add")
    assert add is not None and add.type == "Add" and len(graph.input_edges(add.id)) == 2
    assert graph.node_named("stem").type == "Conv2d" and graph.node_named("head").params["out_features"] == 5
    assert result.key_map["bn2.running_var"] == "bn2.running_var"

    with torch.no_grad():
        _randomize_norm_statistics(result.source)
        model = _compiled(result)
        for batch in (1, 3):
            x = torch.randn(batch, *SHAPE)
            expected, got = result.source(x), model(x)
            assert got.shape == expected.shape == (batch, 5)
            assert torch.allclose(got, expected, atol=1e-5), (got - expected).abs().max().item()
    source_count = sum(p.numel() for p in result.source.parameters())
    assert sum(info.params for info in infer_graph(graph).values()) == source_count == result.param_count
    assert sum(p.numel() for p in model.parameters()) == source_count


@pytest.mark.timeout(30)
def test_constructor_arguments_are_honoured(user_file: Path) -> None:
    result = import_module_class(f"{user_file}:SkipNet", kwargs={"num_classes": 3, "width": 6}, input_shape=SHAPE)
    graph = result.project.graph
    assert result.num_classes == 3 and graph.node("output").params["classes"] == 3
    assert graph.node_named("stem").params["out_channels"] == 6
    assert graph.node_named("head").params == {"in_features": 6, "out_features": 3, "bias": True}
    positional = import_module_class(f"{MODULE}:SkipNet", args=[4, 2], input_shape=SHAPE)
    assert positional.num_classes == 4 and positional.project.graph.node_named("stem").params["out_channels"] == 2
    with pytest.raises(ModelImportError, match="building SkipNet failed: .*'depth'"):
        import_module_class(f"{MODULE}:SkipNet", kwargs={"depth": 3}, input_shape=SHAPE)


@pytest.mark.timeout(30)
def test_an_unmappable_operation_is_refused_with_one_line_naming_it(user_file: Path) -> None:
    with pytest.raises(ModelImportError) as caught:
        import_module_class(f"{user_file}:Sorting", input_shape=(4,))
    message = caught.value.message
    assert "\n" not in message
    assert message.startswith("cannot import Sorting: sort (sort) has no layer type"), message
    assert caught.value.result.unmapped[0].operation == "sort"


@pytest.mark.timeout(30)
@pytest.mark.parametrize(("name", "shape", "fragment"), [
    ("Features", SHAPE, "it gives (N, 4, 10, 10), not (N, classes) class scores"),
    ("Pair", (4,), "it returns 2 values, not one (N, classes) tensor"),
])
def test_a_module_that_gives_no_class_scores_is_refused(name: str, shape: tuple[int, ...], fragment: str,
                                                         user_file: Path) -> None:
    with pytest.raises(ModelImportError) as caught:
        import_module_class(f"{user_file}:{name}", input_shape=shape)
    assert fragment in caught.value.message and "\n" not in caught.value.message
    assert "reconstruction or other tasks comes later" in caught.value.message


@pytest.mark.timeout(30)
@pytest.mark.parametrize(("spec", "shape", "fragment"), [
    ("{file}:Missing", SHAPE, "has no Missing (it defines Features, Pair, SkipNet, Sorting)"),
    ("{file}:torch", SHAPE, "is not an nn.Module class"),
    ("{file}", SHAPE, "is not a module class: give package.module:Class"),
    ("{dir}/absent.py:Net", SHAPE, "absent.py: no such file"),
    ("no_such_module_here:Net", SHAPE, "No module named 'no_such_module_here'"),
    ("{file}:SkipNet", (3, 7), "fails on an input of shape (N, 3, 7)"),
    ("{file}:SkipNet", (3, 0, 4), "the input shape must be 1 to 3 sizes"),
    ("{file}:SkipNet", (1, 2, 3, 4), "the input shape must be 1 to 3 sizes"),
])
def test_what_cannot_be_built_is_refused_with_one_line(spec: str, shape: tuple[int, ...], fragment: str,
                                                       user_file: Path) -> None:
    with pytest.raises(ModelImportError) as caught:
        import_module_class(spec.format(file=user_file, dir=user_file.parent), input_shape=shape)
    assert fragment in caught.value.message and "\n" not in caught.value.message, caught.value.message


def _run_cli(capsys: pytest.CaptureFixture[str], *argv: str) -> tuple[int, str, str]:
    code = cli.main(list(argv))
    out, err = capsys.readouterr()
    return code, out, err


@pytest.mark.timeout(30)
def test_cli_imports_a_module_class(capsys: pytest.CaptureFixture[str], user_file: Path) -> None:
    path = user_file.parent / "net.dlstudio"
    code, out, err = _run_cli(capsys, "import", f"{MODULE}:SkipNet", "-o", str(path), "--input-shape", "3,12,12",
                              "--args", '{"num_classes": 7}')
    assert code == 0, err
    assert "SkipNet" in out and "7 classes" in out
    project = load_project(path)
    assert project.graph.node("output").params["classes"] == 7
    assert project.graph.node("input").params["shape"] == [3, 12, 12]
    assert project.graph.node_named("add").type == "Add"
    # A file and positional arguments; the layout has a place for every node.
    code, out, err = _run_cli(capsys, "import", f"{user_file}:SkipNet", "-o", str(path), "--input-shape", "3,12,12",
                              "--args", "[6, 4]", "--force")
    assert code == 0, err
    project = load_project(path)
    assert project.graph.node("output").params["classes"] == 6
    assert set(project.layout.positions) == set(project.graph.nodes)


@pytest.mark.timeout(30)
@pytest.mark.parametrize(("options", "fragment"), [
    ((), "needs --input-shape C,H,W"),
    (("--input-shape", "3,a"), "--input-shape: expected 1 to 3 sizes"),
    (("--input-shape", "3,12,12", "--args", "{num_classes: 3}"), "--args: not valid JSON"),
    (("--input-shape", "3,12,12", "--args", "3"), "--args: expected a JSON list"),
    (("--input-shape", "3,12,12", "--classes", "3"), "--classes sizes a torchvision model's head"),
    (("--input-shape", "4",), "cannot import Sorting: sort (sort) has no layer type"),
])
def test_cli_refuses_with_one_line(options: tuple[str, ...], fragment: str, capsys: pytest.CaptureFixture[str],
                                   user_file: Path) -> None:
    path = user_file.parent / "net.dlstudio"
    name = "Sorting" if "Sorting" in fragment else "SkipNet"
    code, out, err = _run_cli(capsys, "import", f"{user_file}:{name}", "-o", str(path), *options)
    assert code == 2 and out == ""
    lines = err.strip().splitlines()
    assert len(lines) == 1 and fragment in lines[0], err
    assert not path.exists()


@pytest.mark.timeout(10)
def test_cli_keeps_module_options_off_torchvision_names(capsys: pytest.CaptureFixture[str], tmp_path: Path) -> None:
    code, _, err = _run_cli(capsys, "import", "resnet18", "-o", str(tmp_path / "x.dlstudio"), "--args", "[]")
    assert code == 2 and "--args is for a module class" in err

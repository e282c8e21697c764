"""safetensors export: the weights with their metadata, reloaded equal; loaded back into a compiled model."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
import torch
from export_cases import CASES, source_for
from safetensors.torch import load_file

from dlstudio.core.compiler import compile_graph
from dlstudio.core.export.errors import ExportError
from dlstudio.core.export.safetensors_weights import export_safetensors, load_weights_into, read_safetensors
from dlstudio.core.export.source import graph_hash
from dlstudio.core.graph import Graph
from dlstudio.core.project.fileformat import graph_from_doc

pytestmark = pytest.mark.usefixtures("one_torch_thread")


@pytest.mark.parametrize("case", CASES)
def test_safetensors_export_holds_the_weights_and_reproduces_the_model(case: str, tmp_path: Path) -> None:
    source = source_for(case)
    path = tmp_path / "model.safetensors"
    result = export_safetensors(source, path)
    assert result["verification"].max_abs_diff == 0.0
    tensors = load_file(str(path))
    expected = source.model.state_dict()
    assert set(tensors) == set(expected)
    assert all(torch.equal(tensors[key], expected[key]) for key in expected)
    # A model built from the graph in the file's own metadata, with its weights, gives equal outputs.
    _, metadata = read_safetensors(path)
    graph = graph_from_doc(json.loads(metadata["graph"]), "graph")
    rebuilt = compile_graph(graph).eval()
    load_weights_into(rebuilt, graph, path)
    x = torch.randn(4, *source.input_shape, generator=torch.Generator().manual_seed(3))
    with torch.no_grad():
        assert torch.equal(rebuilt(x), source.model(x))


def test_the_metadata_says_how_to_use_the_weights(tmp_path: Path) -> None:
    source = source_for("lenet5")
    path = tmp_path / "model.safetensors"
    export_safetensors(source, path)
    _, metadata = read_safetensors(path)
    assert metadata["format"] == "dlstudio-weights"
    assert json.loads(metadata["class_names"]) == [str(i) for i in range(10)]
    assert json.loads(metadata["input_shape"]) == [1, 28, 28]
    assert metadata["graph_sha256"] == graph_hash(source.graph)
    preprocess = json.loads(metadata["preprocess"])
    assert preprocess["image"]["mode"] == "L" and preprocess["class_names"] == json.loads(metadata["class_names"])
    assert metadata["dlstudio_version"]


def test_weights_of_another_graph_are_refused_naming_the_layer(tmp_path: Path) -> None:
    source = source_for("branches")
    path = tmp_path / "model.safetensors"
    export_safetensors(source, path)
    other = Graph.from_dict(source.graph.to_dict())
    other.set_param("fc1", "out_features", 5)
    other.set_param("output1", "classes", 5)
    with pytest.raises(ExportError, match=r"classifier differ \(it was written for another graph\)"):
        load_weights_into(compile_graph(other), other, path)

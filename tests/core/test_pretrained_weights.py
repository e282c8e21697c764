"""Starting weights: torchvision's cache (TORCH_HOME), .pth and .safetensors files, an earlier run; what does not fit
is listed by node name. No test touches the network: torchvision's file is one the test wrote."""

from __future__ import annotations

import hashlib
from pathlib import Path

import pytest
import torch

from dlstudio.core.compiler import compile_graph
from dlstudio.core.graph import Graph
from dlstudio.core.project.pretrained import WeightsSource
from dlstudio.core.training.pretrained import (
    WeightsError,
    download_weights,
    load_weights,
    torchvision_cache_path,
    torchvision_weights,
    weights_file_name,
)
from dlstudio.core.training.session import start_session

pytestmark = pytest.mark.usefixtures("one_torch_thread")


def small_cnn(classes: int = 5, names: bool = True) -> Graph:
    """Input 1x8x8 -> conv -> relu -> flatten -> linear -> Output, with names a person would give."""
    graph = Graph()
    nodes = [graph.add_node("Input", {"shape": [1, 8, 8]}),
             graph.add_node("Conv2d", {"out_channels": 4, "kernel_size": 3, "padding": 1}),
             graph.add_node("ReLU"), graph.add_node("Flatten"),
             graph.add_node("Linear", {"out_features": classes}),
             graph.add_node("Output", {"task": "classification", "classes": classes})]
    for a, b in zip(nodes, nodes[1:]):
        graph.connect(a.id, "out", b.id, "in")
    if names:
        graph.rename(nodes[1].id, "features")
        graph.rename(nodes[4].id, "head")
    return graph


def test_torchvision_weights_are_read_from_torchs_cache_under_torchvisions_own_file_name(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """squeezenet1_1 (no BatchNorm, a 1x1 convolution as its head); mobilenet_v3_small is the next test."""
    import torchvision

    from dlstudio.core.importer import import_torchvision

    monkeypatch.setenv("TORCH_HOME", str(tmp_path / "torch"))
    entry = torchvision_weights("squeezenet1_1", "DEFAULT")
    assert entry.name == "IMAGENET1K_V1" and weights_file_name(entry) == "squeezenet1_1-b8a52dc0.pth"
    where = torchvision_cache_path(entry)
    assert where == tmp_path / "torch" / "hub" / "checkpoints" / "squeezenet1_1-b8a52dc0.pth"

    result = import_torchvision("squeezenet1_1")
    graph = result.project.graph
    source = WeightsSource("torchvision", "squeezenet1_1", "IMAGENET1K_V1", key_map=result.key_map)
    # Absent, and no download allowed: one line saying which file goes where.
    with pytest.raises(WeightsError) as refused:
        load_weights(compile_graph(graph), graph, source)
    assert str(refused.value) == (f"squeezenet1_1 IMAGENET1K_V1 weights are not on this machine: put "
                                  f"squeezenet1_1-b8a52dc0.pth in {where.parent}, or train while online (they "
                                  "are downloaded then)")

    torch.manual_seed(7)
    reference = torchvision.models.squeezenet1_1().eval()
    where.parent.mkdir(parents=True)
    torch.save(reference.state_dict(), where)
    model = compile_graph(graph).eval()
    loaded = load_weights(model, graph, source)
    assert loaded.skipped == [] and loaded.tensors_loaded == loaded.tensors_total == len(model.state_dict())
    assert loaded.summary == (f"loaded {loaded.tensors_total} of {loaded.tensors_total} tensors from torchvision "
                              "squeezenet1_1 (IMAGENET1K_V1)")
    x = torch.randn(2, 3, 96, 96)
    with torch.no_grad():
        assert torch.allclose(model(x), reference(x), atol=1e-5)

    # A head resized for 5 classes keeps its seeded weights; it is named, with both shapes.
    small = import_torchvision("squeezenet1_1", num_classes=5)
    small_graph = small.project.graph
    resized = load_weights(compile_graph(small_graph), small_graph,
                           WeightsSource("torchvision", "squeezenet1_1", "IMAGENET1K_V1", key_map=small.key_map))
    (head,) = resized.skipped
    assert head.reason == "shape (1000, 512, 1, 1) vs (5, 512, 1, 1)"
    assert head.name in {node.name for node in small_graph} and resized.tensors_loaded == resized.tensors_total - 2
    assert resized.summary.endswith(f"; {head.name}: shape (1000, 512, 1, 1) vs (5, 512, 1, 1)")


def test_a_network_with_batch_norms_computes_what_torchvision_computes_with_the_same_file(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    import torchvision

    from dlstudio.core.importer import import_torchvision

    monkeypatch.setenv("TORCH_HOME", str(tmp_path))
    entry = torchvision_weights("mobilenet_v3_small", "DEFAULT")
    reference = torchvision.models.mobilenet_v3_small()
    with torch.no_grad():  # statistics a fresh model does not have, so that they are seen to load
        for module in reference.modules():
            if isinstance(module, torch.nn.BatchNorm2d):
                module.running_mean.uniform_(-0.2, 0.2)
                module.running_var.uniform_(0.5, 1.5)
    path = torchvision_cache_path(entry)
    path.parent.mkdir(parents=True)
    torch.save(reference.state_dict(), path)
    result = import_torchvision("mobilenet_v3_small", opaque=True)
    graph = result.project.graph
    model = compile_graph(graph).eval()
    loaded = load_weights(model, graph, WeightsSource("torchvision", "mobilenet_v3_small", entry.name,
                                                      key_map=result.key_map))
    assert loaded.skipped == [] and loaded.tensors_loaded == len(model.state_dict())
    x = torch.randn(2, 3, 64, 64)
    # A file without BatchNorm's batch counters (written before torch kept them) loads as well: they are not
    # weights, and are neither counted nor listed when the file lacks them.
    torch.save({k: v for k, v in reference.state_dict().items() if not k.endswith("num_batches_tracked")}, path)
    counters = sum(key.endswith("num_batches_tracked") for key in model.state_dict())
    older = load_weights(compile_graph(graph), graph, WeightsSource("torchvision", "mobilenet_v3_small",
                                                                    entry.name, key_map=result.key_map))
    assert older.skipped == [] and older.tensors_loaded == older.tensors_total == len(model.state_dict()) - counters
    with torch.no_grad():
        assert torch.allclose(model(x), reference.eval()(x), atol=1e-5)


def test_densenets_published_keys_are_renamed_as_torchvision_renames_them() -> None:
    import re

    import torchvision

    from dlstudio.core.training.pretrained import modern_torchvision_keys

    # The files were written before BatchNorm counted its batches: no num_batches_tracked in them.
    keys = [key for key in torchvision.models.densenet121().state_dict() if not key.endswith("num_batches_tracked")]
    published = [re.sub(r"(denselayer\d+\.(?:norm|relu|conv))([12])\.", r"\1.\2.", key) for key in keys]
    assert "features.denseblock1.denselayer1.norm.1.weight" in published  # the files' own spelling
    renamed = modern_torchvision_keys("densenet121", {old: torch.zeros(1) for old in published})
    assert sorted(renamed) == sorted(keys)
    assert modern_torchvision_keys("resnet18", {"layer1.0.conv1.weight": 1}) == {"layer1.0.conv1.weight": 1}


def test_unknown_torchvision_names_are_refused_in_one_line() -> None:
    with pytest.raises(WeightsError, match="torchvision has no model named 'resnet9000'"):
        torchvision_weights("resnet9000", "DEFAULT")
    with pytest.raises(WeightsError, match=r"resnet18 has no weights named 'V9' \(choose one of DEFAULT, "):
        torchvision_weights("resnet18", "V9")


def test_a_download_is_checked_against_the_hash_in_its_file_name(tmp_path: Path) -> None:
    payload = b"weights" * 1000
    served = tmp_path / "served.pth"
    served.write_bytes(payload)
    digest = hashlib.sha256(payload).hexdigest()
    seen: list[tuple[int, int]] = []
    good = tmp_path / "cache" / f"net-{digest[:8]}.pth"
    download_weights(served.as_uri(), good, lambda done, total: seen.append((done, total)))
    assert good.read_bytes() == payload and seen[-1][0] == len(payload)
    bad = tmp_path / "cache" / "net-00000000.pth"
    with pytest.raises(WeightsError, match="the download of net-00000000.pth is damaged"):
        download_weights(served.as_uri(), bad)
    assert sorted(p.name for p in good.parent.iterdir()) == [good.name]  # no partial file left


@pytest.mark.parametrize("suffix", [".pth", ".safetensors"])
def test_weights_files_load_by_key_by_name_or_through_a_key_map(tmp_path: Path, suffix: str) -> None:
    from safetensors.torch import save_file

    def save(tensors: dict[str, torch.Tensor], name: str) -> str:
        path = tmp_path / f"{name}{suffix}"
        if suffix == ".safetensors":
            save_file({k: v.contiguous() for k, v in tensors.items()}, str(path))
        else:
            torch.save({"model": tensors}, path)  # a checkpoint-like dict: its "model" entry is read
        return path.name

    graph = small_cnn()
    torch.manual_seed(1)
    trained = compile_graph(graph)
    state = trained.state_dict()
    x = torch.randn(3, 1, 8, 8)

    # The graph's own keys (node ids).
    model = compile_graph(graph)
    result = load_weights(model, graph, WeightsSource("file", path=save(state, "own")), base_dir=tmp_path)
    assert result.tensors_loaded == 4 and torch.equal(model(x), trained(x))

    # Keys by node name ("features.weight"), as a network with other ids but the same names gives them.
    by_name = {f"{graph.node(k.split('.')[0]).name}.{k.split('.', 1)[1]}": v for k, v in state.items()}
    model = compile_graph(graph)
    load_weights(model, graph, WeightsSource("file", path=save(by_name, "named")), base_dir=tmp_path)
    assert torch.equal(model(x), trained(x))

    # A module's own keys, through a key map (graph key -> source key).
    foreign = {f"body.{i}": v for i, v in enumerate(state.values())}
    key_map = {k: f"body.{i}" for i, k in enumerate(state)}
    model = compile_graph(graph)
    load_weights(model, graph, WeightsSource("file", path=save(foreign, "module"), key_map=key_map),
                 base_dir=tmp_path)
    assert torch.equal(model(x), trained(x))

    # Another class count: the head is listed by its name, the rest loads.
    other = small_cnn(classes=3)
    partial = load_weights(compile_graph(other), other, WeightsSource("file", path=save(state, "own")),
                           base_dir=tmp_path)
    assert [str(item) for item in partial.skipped] == ["head: shape (5, 256) vs (3, 256)"]
    assert partial.loaded == [next(node.id for node in other if node.name == "features")]


def test_unreadable_or_unfitting_files_are_refused_in_one_line(tmp_path: Path) -> None:
    graph = small_cnn()
    (tmp_path / "code.pth").write_bytes(b"not a pickle of tensors")
    (tmp_path / "notes.txt").write_text("hi")
    torch.save({"unrelated.weight": torch.zeros(2)}, tmp_path / "other.pth")
    cases = {"missing.pth": "the weights file .*missing.pth is not there",
             "code.pth": "cannot read .*code.pth: it is damaged or holds more than weights",
             "notes.txt": "notes.txt: expected a .pth, .pt or .safetensors weights file",
             "other.pth": "none of the weights of file other.pth fit this network: features: not in the weights"}
    for name, message in cases.items():
        with pytest.raises(WeightsError, match=message):
            load_weights(compile_graph(graph), graph, WeightsSource("file", path=name), base_dir=tmp_path)


def test_an_earlier_runs_checkpoint_loads_by_node_name_into_a_graph_with_other_ids(tmp_path: Path) -> None:
    project = tmp_path / "first.dlstudio"
    graph = small_cnn(classes=10)
    session = start_session(graph, {"source": "digits"}, {"epochs": 1, "batch_size": 128, "device": "cpu"},
                            project)
    session.finish(session.trainer().fit())

    # The same layers with other ids (made after two removed nodes took the first ones), and the same names.
    other = Graph()
    placeholders = [other.add_node("Conv2d"), other.add_node("Linear")]
    head = other.add_node("Linear", {"out_features": 10})
    source = other.add_node("Input", {"shape": [1, 8, 8]})
    conv = other.add_node("Conv2d", {"out_channels": 4, "kernel_size": 3, "padding": 1})
    relu, flat = other.add_node("ReLU"), other.add_node("Flatten")
    out = other.add_node("Output", {"task": "classification", "classes": 10})
    for a, b in ((source, conv), (conv, relu), (relu, flat), (flat, head), (head, out)):
        other.connect(a.id, "out", b.id, "in")
    other.rename(conv.id, "features")
    other.rename(head.id, "head")
    for node in placeholders:
        other.remove_node(node.id)
    assert not {conv.id, head.id} & {node.id for node in graph}

    model = compile_graph(other)
    result = load_weights(model, other, WeightsSource("run", path=f"first.runs/{session.run_dir.name}"),
                          base_dir=tmp_path)
    assert result.skipped == [] and sorted(result.loaded) == sorted([conv.id, head.id])
    trained = session.model.cpu()
    x = torch.randn(2, 1, 8, 8)
    with torch.no_grad():
        assert torch.allclose(model(x), trained(x))
    with pytest.raises(WeightsError, match="the run folder .*nowhere is not there"):
        load_weights(compile_graph(other), other, WeightsSource("run", path="nowhere"), base_dir=tmp_path)


def test_a_weights_file_that_is_a_device_or_a_link_to_one_is_refused_as_not_a_regular_file(tmp_path: Path) -> None:
    from dlstudio.core.compiler import compile_graph
    from dlstudio.core.project.templates import load_template
    from dlstudio.core.training.pretrained import WeightsError, load_weights

    (tmp_path / "zero.pth").symlink_to("/dev/zero")
    project = load_template("lenet5")
    with pytest.raises(WeightsError, match=r"zero\.pth is not a regular file$"):
        load_weights(compile_graph(project.graph), project.graph, WeightsSource("file", path="zero.pth"),
                     base_dir=tmp_path)


@pytest.mark.parametrize(("raised", "said"), [
    ("offline", "this machine cannot find download.pytorch.org: it looks offline"),
    ("refused", "download.pytorch.org refused the connection"),
    ("timeout", "download.pytorch.org did not answer in time"),
    ("404", "download.pytorch.org answered 404 Not Found"),
])
def test_a_failed_download_says_why_in_words_and_where_the_file_can_go(tmp_path: Path, monkeypatch, raised,
                                                                      said) -> None:
    import socket
    import urllib.error
    import urllib.request

    url = "https://download.pytorch.org/models/net-12345678.pth"
    errors = {"offline": urllib.error.URLError(socket.gaierror(-2, "Name or service not known")),
              "refused": urllib.error.URLError(ConnectionRefusedError(111, "Connection refused")),
              "timeout": urllib.error.URLError(TimeoutError("timed out")),
              "404": urllib.error.HTTPError(url, 404, "Not Found", {}, None)}

    def fail(*args, **kwargs):
        raise errors[raised]

    monkeypatch.setattr(urllib.request, "urlopen", fail)  # no test touches the network
    target = tmp_path / "cache" / "net-12345678.pth"
    with pytest.raises(WeightsError) as caught:
        download_weights(url, target)
    assert caught.value.message == (f"cannot download net-12345678.pth ({said}): put the file in {target.parent} "
                                    "or connect to the internet and try again")
    assert "Errno" not in caught.value.message and list(target.parent.iterdir()) == []

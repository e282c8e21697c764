"""Fine-tuning: frozen nodes, the pretrained learning rate, exact resume with parameter groups, ImageNet
normalization with torchvision weights, head replacement, and a backbone from an earlier run that beats
training from scratch on a small task."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
import torch
from PIL import Image

from dlstudio.core.compiler import compile_graph
from dlstudio.core.errors import GraphError
from dlstudio.core.graph import Graph
from dlstudio.core.project import Project
from dlstudio.core.project.head import ParamChange, find_head, replace_head
from dlstudio.core.project.pretrained import WeightsSource
from dlstudio.core.training.optim import PRETRAINED_GROUP
from dlstudio.core.training.session import SessionError, start_project_session, start_session

pytestmark = pytest.mark.usefixtures("one_torch_thread")

IMAGENET_MEAN, IMAGENET_STD = (0.485, 0.456, 0.406), (0.229, 0.224, 0.225)


def digits_cnn(classes: int = 5, head: str = "head", hidden: str | None = "hidden") -> Graph:
    """A small CNN on 1x8x8 digits: conv, batch norm, conv, pool (the backbone), then a classifier: a Linear
    named ``head``, after a hidden Linear named ``hidden`` unless it is None."""
    graph = Graph()
    layers = [("Input", {"shape": [1, 8, 8]}, "input"),
              ("Conv2d", {"out_channels": 16, "kernel_size": 3, "padding": 1}, "conv1"),
              ("BatchNorm2d", {}, "bn1"), ("ReLU", {}, "relu1"),
              ("Conv2d", {"out_channels": 32, "kernel_size": 3, "padding": 1}, "conv2"), ("ReLU", {}, "relu2"),
              ("MaxPool2d", {"kernel_size": 2}, "pool"), ("Flatten", {}, "flatten")]
    if hidden is not None:
        layers += [("Linear", {"out_features": 64}, hidden), ("ReLU", {}, "relu3")]
    layers += [("Linear", {"out_features": classes}, head),
               ("Output", {"task": "classification", "classes": classes}, "output")]
    previous = None
    for type_id, params, name in layers:
        node = graph.add_node(type_id, params, name=name)
        if previous is not None:
            graph.connect(previous.id, "out", node.id, "in")
        previous = node
    return graph


def ids(graph: Graph, *names: str) -> list[str]:
    return [graph.node_named(name).id for name in names]  # type: ignore[union-attr]


BACKBONE = ("conv1", "bn1", "conv2", "hidden")
TRAINING = {"epochs": 2, "batch_size": 64, "learning_rate": 0.01, "device": "cpu", "optimizer": "sgd"}


def test_frozen_nodes_are_left_out_of_the_optimizer_and_keep_their_weights_and_statistics(tmp_path: Path) -> None:
    graph = digits_cnn(10)
    frozen = ids(graph, "conv1", "bn1")
    project = Project(graph=graph, data={"source": "digits"}, training={**TRAINING, "epochs": 1},
                      path=tmp_path / "f.dlstudio")
    project.frozen.set(frozen, True)
    session = start_project_session(project)
    model = session.model
    before = {key: value.clone() for key, value in model.state_dict().items()}
    trainer = session.trainer()
    frozen_params = {id(p) for node_id in frozen for p in getattr(model, node_id).parameters()}
    assert all(not p.requires_grad for node_id in frozen for p in getattr(model, node_id).parameters())
    in_optimizer = {id(p) for group in trainer.optimizer.param_groups for p in group["params"]}
    assert not in_optimizer & frozen_params
    assert len(in_optimizer) == sum(1 for p in model.parameters()) - len(frozen_params)
    result = session.finish(trainer.fit())
    assert result["status"] == "completed"
    after = model.state_dict()
    conv1, bn1 = frozen
    for key in before:  # weights, bias, running mean/var and the batch counter of the frozen nodes
        if key.split(".")[0] in frozen:
            assert torch.equal(before[key], after[key].cpu()), key
    assert not torch.equal(before[f"{ids(graph, 'conv2')[0]}.weight"], after[f"{ids(graph, 'conv2')[0]}.weight"])
    settings = json.loads((session.run_dir / "settings.json").read_text())
    assert settings["frozen"] == sorted(frozen) and settings["weights"] is None


def test_every_layer_frozen_is_refused_before_a_run_folder_exists(tmp_path: Path) -> None:
    graph = digits_cnn(10)
    project = Project(graph=graph, data={"source": "digits"}, training=dict(TRAINING), path=tmp_path / "f.dlstudio")
    project.frozen.set(ids(graph, *BACKBONE, "head"), True)
    with pytest.raises(SessionError, match="^nothing to train: every layer with weights is frozen$"):
        start_project_session(project)
    assert not (tmp_path / "f.runs").exists()


def save_weights(graph: Graph, path: Path, seed: int = 3) -> None:
    torch.manual_seed(seed)
    torch.save(compile_graph(graph).state_dict(), path)


def test_pretrained_layers_train_at_the_multiplied_rate_new_ones_at_the_full_rate(tmp_path: Path) -> None:
    source = digits_cnn(5)  # another head: it does not load and trains at the full rate
    save_weights(source, tmp_path / "start.pth")
    graph = digits_cnn(10)
    project = Project(graph=graph, data={"source": "digits"},
                      training={**TRAINING, "schedule": "one-cycle", "pretrained_lr_multiplier": 0.25},
                      path=tmp_path / "p.dlstudio")
    project.set_weights(WeightsSource("file", path="start.pth"))
    project.frozen.set(ids(graph, "conv1"), True)
    session = start_project_session(project)
    assert session.weights_summary == "loaded 11 of 13 tensors from file start.pth; head: shape (5, 64) vs (10, 64)"
    trainer = session.trainer()
    new, pretrained = trainer.optimizer.param_groups
    model = session.model
    head, = ids(graph, "head")
    assert {id(p) for p in new["params"]} == {id(p) for p in getattr(model, head).parameters()}
    expected = {id(p) for node in ids(graph, "bn1", "conv2", "hidden") for p in getattr(model, node).parameters()}
    assert {id(p) for p in pretrained["params"]} == expected and pretrained["name"] == PRETRAINED_GROUP
    assert new["max_lr"] == pytest.approx(0.01) and pretrained["max_lr"] == pytest.approx(0.0025)
    session.close()
    settings = json.loads((session.run_dir / "settings.json").read_text())
    assert settings["weights"]["source"] == {"source": "file", "path": "start.pth"}
    assert settings["weights"]["summary"] == session.weights_summary
    assert sorted(settings["weights"]["loaded"]) == sorted(ids(graph, "bn1", "conv1", "conv2", "hidden"))


def test_a_fine_tuning_run_resumes_exactly(tmp_path: Path, stop_after_batches) -> None:
    source = digits_cnn(5)
    save_weights(source, tmp_path / "start.pth")
    graph = digits_cnn(10)

    def project(name: str) -> Project:
        made = Project(graph=graph.copy(), data={"source": "digits"},
                       training={**TRAINING, "optimizer": "adam", "learning_rate": 0.003, "schedule": "one-cycle"},
                       path=tmp_path / f"{name}.dlstudio")
        made.set_weights(WeightsSource("file", path="start.pth"))
        made.frozen.set(ids(made.graph, "conv1", "bn1"), True)
        return made

    straight = start_project_session(project("straight"))
    straight.finish(straight.trainer().fit())
    interrupted = start_project_session(project("resumed"))
    assert interrupted.finish(interrupted.trainer([stop_after_batches(5)]).fit())["status"] == "stopped"
    # The project changed meanwhile (nothing frozen, no weights): the run keeps what it started with.
    resumed = start_session(graph, {"source": "digits"}, {}, tmp_path / "resumed.dlstudio",
                            resume=interrupted.run_dir)
    assert resumed.frozen == interrupted.frozen and sorted(resumed.pretrained) == sorted(interrupted.pretrained)
    assert resumed.finish(resumed.trainer().fit())["status"] == "completed"
    for key, value in straight.model.state_dict().items():
        assert torch.equal(value, resumed.model.state_dict()[key]), key


def write_digit_folder(root: Path, classes: range, per_class: int | None, offset: int = 0) -> Path:
    """PNG folders from sklearn's bundled digits (8x8, 0..16 scaled to 0..255), one subfolder per class."""
    from sklearn.datasets import load_digits

    digits = load_digits()
    for label in classes:
        images = digits.images[digits.target == label][offset:]
        folder = root / str(label)
        folder.mkdir(parents=True)
        for index, image in enumerate(images[:per_class]):
            Image.fromarray(np.uint8(image * 255 / 16)).save(folder / f"{index}.png")
    return root


# Few, gentle steps (3 epochs of 5 batches): where a person's small folder leaves a network from scratch.
FINE_TUNING = {**TRAINING, "optimizer": "adam", "learning_rate": 0.0005, "epochs": 3, "batch_size": 20}
SEEDS = (0, 1, 2)


def test_a_backbone_from_an_earlier_run_beats_training_from_scratch_on_a_small_task(tmp_path: Path) -> None:
    first = write_digit_folder(tmp_path / "zero-to-four", range(5), None)
    backbone_project = Project(graph=digits_cnn(5), data={"source": "folder", "path": str(first)},
                               training={**TRAINING, "optimizer": "adam", "learning_rate": 0.003, "epochs": 6,
                                         "batch_size": 32},
                               path=tmp_path / "backbone.dlstudio")
    backbone = start_project_session(backbone_project)
    assert backbone.finish(backbone.trainer().fit())["val_accuracy"] > 0.95

    # Another task, 20 training samples a class (each folder of 40 is half validation), and a new classifier
    # (other names: it does not load); the convolutions come from the run and stay frozen.
    second = write_digit_folder(tmp_path / "five-to-nine", range(5, 10), 40)
    data = {"source": "folder", "path": str(second), "val_fraction": 0.5, "test_fraction": 0.0}

    def accuracy(from_run: bool, seed: int) -> float:
        project = Project(graph=digits_cnn(5, "new head", "new hidden"), data=dict(data),
                          training={**FINE_TUNING, "seed": seed},
                          path=tmp_path / f"{'tuned' if from_run else 'scratch'}-{seed}.dlstudio")
        if from_run:
            project.set_weights(WeightsSource("run", path=str(backbone.run_dir)))
            project.frozen.set(ids(project.graph, "conv1", "bn1", "conv2"), True)
        session = start_project_session(project)
        if from_run:
            assert session.weights_summary.endswith("new hidden: not in the weights; new head: not in the weights")
        return session.finish(session.trainer().fit())["val_accuracy"]

    pairs = [(accuracy(True, seed), accuracy(False, seed)) for seed in SEEDS]
    tuned, scratch = (sum(column) / len(SEEDS) for column in zip(*pairs))
    print(f"validation accuracy per seed (fine-tuned, from scratch): {pairs}; "
          f"mean {tuned:.1%} vs {scratch:.1%}")
    assert all(a > b for a, b in pairs)
    assert tuned >= scratch + 0.10


def test_torchvision_weights_bring_imagenet_normalization_into_the_run_and_its_classification(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    import torchvision

    from dlstudio.core.importer import import_torchvision
    from dlstudio.core.inspect.trained import load_trained
    from dlstudio.core.training.pretrained import recorded_normalization, torchvision_cache_path, torchvision_weights

    monkeypatch.setenv("TORCH_HOME", str(tmp_path / "torch"))
    cache = torchvision_cache_path(torchvision_weights("squeezenet1_1", "IMAGENET1K_V1"))
    cache.parent.mkdir(parents=True)
    torch.save(torchvision.models.squeezenet1_1().state_dict(), cache)
    folder = tmp_path / "photos"
    generator = np.random.default_rng(0)
    for label in ("cat", "dog"):
        (folder / label).mkdir(parents=True)
        for index in range(6):
            pixels = generator.integers(0, 255, (40, 40, 3), dtype=np.uint8)
            Image.fromarray(pixels).save(folder / label / f"{index}.png")

    imported = import_torchvision("squeezenet1_1")
    project = imported.project
    changes = [(change.param, change.old, change.new) for change in replace_head(project, 2)]
    assert changes == [("out_channels", 1000, 2), ("classes", 1000, 2)]
    input_node = next(node for node in project.graph if node.type == "Input")
    project.graph.set_param(input_node.id, "shape", [3, 64, 64])  # small images, quick steps
    project.data.update({"source": "folder", "path": str(folder), "val_fraction": 0.5, "test_fraction": 0.0})
    project.training.update({"epochs": 1, "batch_size": 6, "device": "cpu"})
    project.path = tmp_path / "pets.dlstudio"
    project.set_weights(WeightsSource("torchvision", "squeezenet1_1", "IMAGENET1K_V1", key_map=imported.key_map))
    session = start_project_session(project)
    assert session.data.normalization.mean == pytest.approx(IMAGENET_MEAN)
    assert session.data.normalization.std == pytest.approx(IMAGENET_STD)
    session.finish(session.trainer().fit())
    settings = json.loads((session.run_dir / "settings.json").read_text())
    assert settings["data_summary"]["normalization"]["mean"] == pytest.approx(IMAGENET_MEAN)
    assert recorded_normalization(settings).std == pytest.approx(IMAGENET_STD)
    run = load_trained(session.run_dir, which="last", device="cpu")
    assert run.normalization.mean == pytest.approx(IMAGENET_MEAN)
    assert run.normalization.std == pytest.approx(IMAGENET_STD)
    # Whoever prepares the run's data again (the mistakes gallery, an export's check) normalizes it the same way.
    again_data = run.prepare_data()
    assert again_data.normalization.mean == pytest.approx(IMAGENET_MEAN)
    from dlstudio.core.export.source import from_run

    expected = next(iter(again_data.val.in_order(2)))[0][:2].float()
    assert torch.allclose(from_run(session.run_dir).validation_samples(2), expected)
    # That run, used as the start of another, passes ImageNet's statistics on.
    project.set_weights(WeightsSource("run", path=str(session.run_dir)))
    again = start_project_session(project)
    assert again.data.normalization.mean == pytest.approx(IMAGENET_MEAN) and again.weights_summary.startswith(
        f"loaded {len(again.model.state_dict())} of {len(again.model.state_dict())} tensors from run ")
    again.close()


def test_replace_head_sets_the_last_linear_and_the_output() -> None:
    graph = digits_cnn(10)
    project = Project(graph=graph)
    head, output = ids(graph, "head", "output")
    assert find_head(graph) == (output, head)
    assert replace_head(project, 3) == [ParamChange(head, "out_features", 10, 3), ParamChange(output, "classes", 10, 3)]
    assert replace_head(project, 3) == []
    compile_graph(graph)  # still compiles: (N, 3) scores for 3 classes
    bare = Graph()
    a, b = bare.add_node("Input", {"shape": [4]}), bare.add_node("Output", {"task": "classification", "classes": 4})
    bare.connect(a.id, "out", b.id, "in")
    with pytest.raises(GraphError, match="no Linear .*leads to"):
        replace_head(Project(graph=bare), 3)

"""Write the template projects in resources/templates/ through the Graph API.

Run from the repository root: ``python tools/make_templates.py [NAME ...]``. Building the
graphs with the same API the editor uses, and writing them with
``save_project``, keeps the templates valid by construction; the files are
committed, this script is how they are remade after a change.
"""

from __future__ import annotations

import sys
from collections.abc import Callable
from pathlib import Path
from typing import Any

from dlstudio.core.graph import Graph
from dlstudio.core.layout import Layout
from dlstudio.core.project import Project, default_data_settings, default_training_settings, save_project

TEMPLATES_DIR = Path(__file__).resolve().parents[1] / "resources" / "templates"
COLUMN_SPACING = 220.0  # px between topological depths, left to right
ROW_SPACING = 120.0  # px between nodes of the same depth (branches), top to bottom


class _Builder:
    """Adds named nodes and wires each to the one before it."""

    def __init__(self) -> None:
        self.graph = Graph()

    def add(self, type_id: str, name: str, after: str | None = None, port: str = "in", **params: Any) -> str:
        node = self.graph.add_node(type_id, params, name=name)
        if after is not None:
            self.graph.connect(after, "out", node.id, port)
        return node.id

    def chain(self, after: str, *layers: tuple[str, str, dict[str, Any]]) -> str:
        for type_id, name, params in layers:
            after = self.add(type_id, name, after, **params)
        return after


def layout_by_depth(graph: Graph) -> Layout:
    """Columns by longest path from an input; nodes of one column stacked in topological order."""
    depth: dict[str, int] = {}
    for node_id in graph.topological_order():
        depth[node_id] = max((depth[src] + 1 for src in graph.predecessors(node_id)), default=0)
    rows: dict[int, int] = {}
    layout = Layout()
    for node_id in graph.topological_order():
        column = depth[node_id]
        row = rows.get(column, 0)
        rows[column] = row + 1
        layout.move(node_id, column * COLUMN_SPACING, row * ROW_SPACING)
    return layout


def _mlp(b: _Builder) -> None:
    x = b.add("Input", "image", shape=[1, 28, 28])
    b.chain(x, ("Flatten", "flatten", {}), ("Linear", "hidden", {"out_features": 128}), ("ReLU", "relu", {}),
            ("Linear", "scores", {"out_features": 10}), ("Output", "digit", {"classes": 10}))


def _deep_mlp(b: _Builder) -> None:
    x = b.add("Input", "image", shape=[1, 28, 28])
    x = b.add("Flatten", "flatten", x)
    for i, width in enumerate((256, 128), start=1):
        x = b.chain(x, ("Linear", f"fc{i}", {"out_features": width}), ("BatchNorm1d", f"bn{i}", {}),
                    ("ReLU", f"relu{i}", {}), ("Dropout", f"dropout{i}", {"p": 0.2}))
    b.chain(x, ("Linear", "fc3", {"out_features": 64}), ("ReLU", "relu3", {}),
            ("Linear", "scores", {"out_features": 10}), ("Output", "digit", {"classes": 10}))


def _lenet5(b: _Builder) -> None:
    x = b.add("Input", "image", shape=[1, 28, 28])
    b.chain(x,
            ("Conv2d", "conv1", {"out_channels": 6, "kernel_size": 5, "padding": 2}), ("ReLU", "relu1", {}),
            ("MaxPool2d", "pool1", {"kernel_size": 2}),
            ("Conv2d", "conv2", {"out_channels": 16, "kernel_size": 5}), ("ReLU", "relu2", {}),
            ("MaxPool2d", "pool2", {"kernel_size": 2}),
            ("Flatten", "flatten", {}),
            ("Linear", "fc1", {"out_features": 120}), ("ReLU", "relu3", {}),
            ("Linear", "fc2", {"out_features": 84}), ("ReLU", "relu4", {}),
            ("Linear", "fc3", {"out_features": 10}),
            ("Output", "digit", {"classes": 10}))


def _vgg_mini(b: _Builder) -> None:
    x = b.add("Input", "image", shape=[1, 32, 32])
    for block, channels in enumerate((32, 64, 128), start=1):
        for conv in (1, 2):
            x = b.chain(x, ("Conv2d", f"conv{block}_{conv}", {"out_channels": channels, "kernel_size": 3,
                                                             "padding": 1}),
                        ("BatchNorm2d", f"bn{block}_{conv}", {}), ("ReLU", f"relu{block}_{conv}", {}))
        x = b.add("MaxPool2d", f"pool{block}", x, kernel_size=2)
    b.chain(x, ("AdaptiveAvgPool2d", "global pool", {"output_size": 1}), ("Flatten", "flatten", {}),
            ("Dropout", "dropout", {"p": 0.3}), ("Linear", "scores", {"out_features": 10}),
            ("Output", "digit", {"classes": 10}))


def _residual_block(b: _Builder, x: str, name: str, channels: int, stride: int) -> str:
    """conv-bn-relu-conv-bn plus a shortcut (identity, or 1x1 conv + bn when the shape changes), added, relu."""
    conv = {"out_channels": channels, "kernel_size": 3, "padding": 1, "bias": False}
    main = b.chain(x, ("Conv2d", f"{name} conv1", {**conv, "stride": stride}), ("BatchNorm2d", f"{name} bn1", {}),
                   ("ReLU", f"{name} relu1", {}), ("Conv2d", f"{name} conv2", conv),
                   ("BatchNorm2d", f"{name} bn2", {}))
    shortcut = x
    if stride != 1:
        shortcut = b.chain(x, ("Conv2d", f"{name} shortcut", {"out_channels": channels, "kernel_size": 1,
                                                              "stride": stride, "bias": False}),
                           ("BatchNorm2d", f"{name} shortcut bn", {}))
    add = b.add("Add", f"{name} add", main, port="in1")
    b.graph.connect(shortcut, "out", add, "in2")
    return b.add("ReLU", f"{name} relu2", add)


def _resnet_mini(b: _Builder) -> None:
    x = b.add("Input", "image", shape=[1, 32, 32])
    x = b.chain(x, ("Conv2d", "stem conv", {"out_channels": 16, "kernel_size": 3, "padding": 1, "bias": False}),
                ("BatchNorm2d", "stem bn", {}), ("ReLU", "stem relu", {}))
    x = _residual_block(b, x, "block1", 16, 1)
    x = _residual_block(b, x, "block2", 32, 2)
    x = _residual_block(b, x, "block3", 64, 2)
    b.chain(x, ("AdaptiveAvgPool2d", "global pool", {"output_size": 1}), ("Flatten", "flatten", {}),
            ("Linear", "scores", {"out_features": 10}), ("Output", "digit", {"classes": 10}))


def _autoencoder(b: _Builder) -> None:
    x = b.add("Input", "image", shape=[1, 28, 28])
    down = {"kernel_size": 3, "stride": 2, "padding": 1}
    up = {**down, "output_padding": 1}
    b.chain(x,
            ("Conv2d", "encode1", {"out_channels": 16, **down}), ("ReLU", "relu1", {}),
            ("Conv2d", "encode2", {"out_channels": 32, **down}), ("ReLU", "relu2", {}),
            ("ConvTranspose2d", "decode1", {"out_channels": 16, **up}), ("ReLU", "relu3", {}),
            ("ConvTranspose2d", "decode2", {"out_channels": 1, **up}), ("Sigmoid", "pixels", {}),
            ("Output", "reconstruction", {"task": "reconstruction"}))


# name -> (builder, description, training settings that differ from the defaults, data settings likewise)
TEMPLATES: dict[str, tuple[Callable[[_Builder], None], str, dict[str, Any], dict[str, Any]]] = {
    "mlp": (_mlp, "A shallow multilayer perceptron: one hidden layer of 128 units, the simplest network "
                  "that learns digits well.", {"epochs": 10}, {}),
    "deep-mlp": (_deep_mlp, "A deeper perceptron (256-128-64) with batch normalization and dropout "
                            "between its layers.", {"epochs": 15}, {}),
    "lenet5": (_lenet5, "LeNet-5 (LeCun et al., 1998): two convolution and pooling stages, then three "
                        "fully connected layers.", {"optimizer": "adam", "learning_rate": 0.001,
                                                    "batch_size": 64, "epochs": 15}, {}),
    "vgg-mini": (_vgg_mini, "A small VGG-style network: three blocks of two 3x3 convolutions with batch "
                            "norm, each followed by pooling.", {"epochs": 10, "schedule": "cosine"}, {}),
    "resnet-mini": (_resnet_mini, "A small ResNet: a stem and three residual blocks whose skip connections "
                                  "add each block's input to its output.",
                    {"epochs": 10, "weight_decay": 0.0001, "schedule": "cosine"}, {}),
    # The decoder ends in a Sigmoid (0..1), so the images it rebuilds stay in 0..1: no normalization.
    "autoencoder": (_autoencoder, "A convolutional autoencoder: squeezes each image to a 32x7x7 code and "
                                  "rebuilds it from that code (no labels needed).",
                    {"epochs": 20}, {"normalize": False}),
}


def finetune_mobilenet() -> Project:
    """mobilenet_v3_small imported from torchvision, starting from its ImageNet weights, backbone frozen.

    The person points it at an image folder; the head is sized for two classes until then (resize it with the
    Output's class count, or ``replace_head``). The layout and the collapsed blocks are the importer's.
    """
    from dlstudio.core.importer import import_torchvision
    from dlstudio.core.project.pretrained import WeightsSource
    from dlstudio.core.training.pretrained import torchvision_weights

    model = "mobilenet_v3_small"
    result = import_torchvision(model, num_classes=2, opaque=True)
    project = result.project
    assert project is not None  # the importer raises when anything is unmapped
    weights = torchvision_weights(model, "DEFAULT")
    project.set_weights(WeightsSource("torchvision", model, weights.name, key_map=result.key_map))
    # The convolutional backbone (torchvision's "features") keeps its ImageNet weights; the classifier learns.
    classifier = {key.partition(".")[0] for key, source in result.key_map.items() if source.startswith("classifier.")}
    project.frozen.set([node.id for node in project.graph if node.id not in classifier and node.spec.role == "layer"
                        and node_has_weights(result.key_map, node.id)], True)
    project.description = ("Fine-tune a pretrained MobileNetV3 (small) on your own image folder: the ImageNet-trained "
                           "backbone is frozen, only the classifier learns. Choose a folder with one subfolder per "
                           "class in the Data panel; the Training panel then offers to fit the classifier to "
                           "their number.")
    project.data = {**default_data_settings(), "source": "folder", "path": ""}
    project.training = {**default_training_settings(), "optimizer": "adam", "learning_rate": 0.001,
                        "batch_size": 32, "epochs": 5}
    return project


def node_has_weights(key_map: dict[str, str], node_id: str) -> bool:
    return any(key.partition(".")[0] == node_id for key in key_map)


# Templates made from an imported network rather than drawn here: name -> builder.
IMPORTED = {"finetune-mobilenet": finetune_mobilenet}


def build_template(name: str) -> Project:
    if name in IMPORTED:
        return IMPORTED[name]()
    make, description, training, data = TEMPLATES[name]
    builder = _Builder()
    make(builder)
    return Project(graph=builder.graph, layout=layout_by_depth(builder.graph),
                   data={**default_data_settings(), "source": "digits", **data},
                   training={**default_training_settings(), **training}, description=description)


def main(names: list[str]) -> int:
    """Write the templates named (all of them when none is)."""
    TEMPLATES_DIR.mkdir(parents=True, exist_ok=True)
    for name in names or (*TEMPLATES, *IMPORTED):
        path = TEMPLATES_DIR / f"{name}.dlstudio"
        save_project(build_template(name), path)
        print(f"wrote {path.relative_to(TEMPLATES_DIR.parents[1])}")
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))

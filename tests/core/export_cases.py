"""Models every export test runs through: each template, and a graph with branches (imported by the export tests)."""

from __future__ import annotations

from pathlib import Path

import torch

from dlstudio.core.export.source import ExportSource, from_graph, from_project
from dlstudio.core.graph import Graph
from dlstudio.core.project.templates import list_templates, load_template

# No template is skipped: none needs its data or a download to be exported with random weights. Those that
# read the bundled digits are also compared on real validation samples; those made for an image folder the
# person chooses (e.g. finetune-mobilenet) on random inputs only.
TEMPLATE_NAMES = [info.name for info in list_templates()]
DIGITS_TEMPLATES = [name for name in TEMPLATE_NAMES if load_template(name).data.get("source") == "digits"]
CASES = [*TEMPLATE_NAMES, "branches"]


def branched_graph() -> Graph:
    """Two paths from one stem joined by Concat and by Add, then a classifier: branches and merges."""
    graph = Graph()
    graph.add_node("Input", {"shape": [1, 12, 12]}, node_id="input1", name="image")
    graph.add_node("Conv2d", {"out_channels": 4, "kernel_size": 3, "padding": 1}, node_id="stem", name="stem")
    graph.add_node("Conv2d", {"out_channels": 4, "kernel_size": 1}, node_id="left", name="left path")
    graph.add_node("MaxPool2d", {"kernel_size": 3, "stride": 1, "padding": 1}, node_id="right", name="right path")
    graph.add_node("Add", node_id="add1", name="skip join")
    graph.add_node("Concat", {"inputs": 2}, node_id="concat1", name="concat join")
    graph.add_node("ReLU", node_id="relu1", name="after joins")
    graph.add_node("Flatten", node_id="flatten1")
    graph.add_node("Linear", {"out_features": 3}, node_id="fc1", name="classifier")
    graph.add_node("Output", {"classes": 3}, node_id="output1")
    for src, dst, port in (("input1", "stem", "in"), ("stem", "left", "in"), ("stem", "right", "in"),
                           ("left", "add1", "in1"), ("right", "add1", "in2"), ("add1", "concat1", "in1"),
                           ("stem", "concat1", "in2"), ("concat1", "relu1", "in"), ("relu1", "flatten1", "in"),
                           ("flatten1", "fc1", "in"), ("fc1", "output1", "in")):
        graph.connect(src, "out", dst, port)
    return graph


def source_for(case: str) -> ExportSource:
    """Random weights (training is not needed to compare outputs); templates read their digits for real samples."""
    if case == "branches":
        return from_graph(branched_graph(), seed=1)
    source = from_project(load_template(case))
    # Random BatchNorm statistics, so that eval-mode normalization is exercised with non-trivial values.
    generator = torch.Generator().manual_seed(2)
    with torch.no_grad():
        for module in source.model.modules():
            if isinstance(module, torch.nn.modules.batchnorm._BatchNorm) and module.running_mean is not None:
                module.running_mean.copy_(torch.randn(module.running_mean.shape, generator=generator) * 0.1)
                module.running_var.copy_(torch.rand(module.running_var.shape, generator=generator) + 0.5)
    return source


def train_digits_project(path: Path, template: str = "mlp", epochs: int = 1) -> Path:
    """Save ``template`` at ``path`` and train it on the digits from the command line (CPU, large batches)."""
    from dlstudio import cli
    from dlstudio.core.project import save_project

    project = load_template(template)
    project.training["batch_size"] = 256
    save_project(project, path)
    assert cli.main(["train", str(path), "--epochs", str(epochs), "--device", "cpu"]) == 0
    return path

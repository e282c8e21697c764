"""What each node of a loaded model outputs, as plain data for the inspect views' layer pickers.

Computed on a worker thread (one forward pass of a blank sample through the
trained model) right after a model loads; the views list nodes from it.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Any


@dataclass(frozen=True)
class NodeOutput:
    """One node: its id (internal: never shown), the name the person gave it, a label for pickers (the name;
    "relu #2" where two nodes share it), its layer type and its output shape (no batch dimension)."""

    node_id: str
    name: str
    label: str
    type: str
    shape: tuple[int, ...]
    is_input: bool = False
    has_weights: bool = False

    @property
    def spatial(self) -> bool:
        """An image-like output (C, H, W) with more than one pixel: feature maps, Grad-CAM, dreams."""
        return len(self.shape) == 3 and self.shape[1] * self.shape[2] > 1

    @property
    def channels(self) -> int:
        """Channels of an image output, units of a vector output."""
        return int(self.shape[0]) if self.shape else 1

    @property
    def is_conv(self) -> bool:
        return self.type == "Conv2d"


def file_stem(name: str, fallback: str = "layer") -> str:
    """A node's name made safe as the start of a file name (no path separators, nothing Windows refuses)."""
    stem = re.sub(r'[<>:"/\\|?*\x00-\x1f]+', "_", name).strip(" ._")
    return stem or fallback


def shape_text(shape: tuple[int, ...]) -> str:
    """``(4, 10, 10)`` as "4×10×10"."""
    return "×".join(str(size) for size in shape)


def describe_outputs(context: Any, trained: Any) -> list[NodeOutput]:
    """Every inspectable node of ``trained`` in forward order (runs on a worker thread: it needs torch)."""
    import torch

    from dlstudio.core.inspect import all_feature_maps, node_ids

    model = trained.model
    context.check()
    maps = all_feature_maps(model, torch.zeros(tuple(trained.input_shape)))
    with_weights = {name.split(".", 1)[0] for name, _ in model.named_parameters()}
    shown = [node_id for node_id in node_ids(model) if node_id in maps]
    names = {}
    for node_id in shown:
        node = trained.graph.node(node_id) if node_id in trained.graph.nodes else None
        names[node_id] = node.name if node is not None else model.node_name(node_id)
    labels = picker_labels([names[node_id] for node_id in shown])
    outputs = []
    for node_id, label in zip(shown, labels):
        node = trained.graph.node(node_id) if node_id in trained.graph.nodes else None
        layer_type = node.type if node is not None else ""
        outputs.append(NodeOutput(node_id, names[node_id], label, layer_type, tuple(maps[node_id].shape),
                                  node_id in model.input_ids, node_id in with_weights))
    return outputs


def picker_labels(names: list[str]) -> list[str]:
    """Labels for a chooser: the names, numbered in order ("relu #1", "relu #2") where several nodes share one.

    Node names need not be unique, and the person must be able to tell the entries apart without ids.
    """
    counts: dict[str, int] = {}
    for name in names:
        counts[name] = counts.get(name, 0) + 1
    seen: dict[str, int] = {}
    labels = []
    for name in names:
        if counts[name] == 1:
            labels.append(name)
        else:
            seen[name] = seen.get(name, 0) + 1
            labels.append(f"{name} #{seen[name]}")
    return labels

"""Resize a classifier's head for a new number of classes (no Qt, no torch).

An imported or pretrained network ends in a head sized for the task it came from (1000 ImageNet classes);
fine-tuning it on a person's folder of 5 classes needs the last Linear (or the 1x1 convolution a
SqueezeNet classifies with) and the Output node set to 5. :func:`replace_head` finds that layer by walking
back from the Output through layers that keep the class axis (Flatten, Dropout, activations, pooling) and
returns what it changed, so that the window can wrap it in one undo command.
"""

from __future__ import annotations

from dataclasses import dataclass

from dlstudio.core.errors import GraphError
from dlstudio.core.graph import Graph
from dlstudio.core.project.model import Project

# The layers whose output count is the class count, and the parameter that sets it.
_HEAD_PARAMS = {"Linear": "out_features", "Conv2d": "out_channels"}


@dataclass(frozen=True)
class ParamChange:
    """One parameter set by :func:`replace_head`: node id, parameter, old and new value."""

    node_id: str
    param: str
    old: object
    new: object


def find_head(graph: Graph) -> tuple[str, str]:
    """(Output node id, head node id) of the classification Output; GraphError (one line) without one.

    The head is the nearest Linear, or Conv2d with a 1x1 kernel, before the Output along single inputs.
    """
    outputs = [node for node in graph if node.type == "Output" and node.params.get("task") == "classification"]
    if len(outputs) != 1:
        raise GraphError("the network needs exactly one classification Output to resize its head")
    output = outputs[0]
    seen: set[str] = set()
    current = output.id
    while True:
        predecessors = graph.predecessors(current)
        if len(predecessors) != 1 or predecessors[0] in seen:
            break
        current = predecessors[0]
        seen.add(current)
        node = graph.node(current)
        if node.type == "Linear" or (node.type == "Conv2d" and _is_pointwise(node.params.get("kernel_size"))):
            return output.id, current
        if node.spec.role == "input":
            break
    raise GraphError(f"no Linear (or 1x1 Conv2d) leads to {output.name}: there is no head to resize")


def _is_pointwise(kernel: object) -> bool:
    return kernel == 1 or kernel == [1, 1] or kernel == (1, 1)


def replace_head(project: Project, num_classes: int) -> list[ParamChange]:
    """Set the head layer and the Output of ``project`` to ``num_classes``; returns the changes made (may be empty).

    The head's weights no longer fit a pretrained source; they start from the seeded initialization while
    the rest loads (the load summary lists the head). GraphError when there is no head; ParamError
    (from the graph) when ``num_classes`` is out of range.
    """
    graph = project.graph
    output_id, head_id = find_head(graph)
    head = graph.node(head_id)
    wanted = ((head_id, _HEAD_PARAMS[head.type]), (output_id, "classes"))
    changes = [ParamChange(node_id, param, graph.node(node_id).params.get(param), num_classes)
               for node_id, param in wanted if graph.node(node_id).params.get(param) != num_classes]
    for change in changes:
        graph.set_param(change.node_id, change.param, change.new)
    return changes

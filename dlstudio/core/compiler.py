"""Graph -> nn.Module (torch).

The compiled :class:`GraphModule` holds one submodule per node, as an
attribute named by the node id, so ``state_dict`` keys are stable per node
(``conv1.weight``) and match the exported Python code. Its forward walks a
precomputed plan in topological order: branches and merges are just nodes
with several inputs.
"""

from __future__ import annotations

from dataclasses import dataclass

import torch
from torch import nn

from dlstudio.core.errors import CompileError
from dlstudio.core.graph import Graph
from dlstudio.core.layers.spec import Shape
from dlstudio.core.shapes import NodeInfo, infer_graph


@dataclass(frozen=True)
class Step:
    node_id: str
    input_slots: tuple[int, ...]
    output_slot: int


def check_compilable(graph: Graph, infos: dict[str, NodeInfo] | None = None) -> dict[str, NodeInfo]:
    """Raise CompileError unless the graph has inputs, outputs and no errors; return the inferred infos."""
    infos = infer_graph(graph) if infos is None else infos
    errors = [info.error for info in infos.values() if info.error is not None]
    if errors:
        more = f" (and {len(errors) - 1} more)" if len(errors) > 1 else ""
        first = errors[0]
        # The person's name for the node, never its id (the errors carry the ids for the canvas).
        where = graph.node(first.node_id).name if first.node_id in graph else "a layer"
        raise CompileError(f"the graph has errors: {where}: {first.message}{more}", errors)
    roles = [node.spec.role for node in graph]
    if "input" not in roles:
        raise CompileError("the graph has no Input node")
    if "output" not in roles:
        raise CompileError("the graph has no Output node")
    return infos


class GraphModule(nn.Module):
    """The nn.Module a graph compiles to. ``forward(*inputs)`` takes one tensor per Input node."""

    def __init__(self, graph: Graph, infos: dict[str, NodeInfo] | None = None) -> None:
        super().__init__()
        infos = check_compilable(graph, infos)
        order = graph.topological_order()
        slot_of: dict[tuple[str, str], int] = {}
        steps: list[Step] = []
        input_slots: list[int] = []
        output_slots: list[int] = []
        self.input_ids: list[str] = []
        self.output_ids: list[str] = []
        self.input_shapes: dict[str, Shape] = {}
        # Node id -> the person's name for it, for messages (ids stay internal: attribute and state_dict keys).
        self.node_names: dict[str, str] = {node.id: node.name for node in graph}
        self.output_shapes: dict[str, Shape] = {}
        for node_id in order:
            node = graph.node(node_id)
            spec, info = node.spec, infos[node_id]
            role = spec.role
            if role == "input":
                slot = len(slot_of)
                slot_of[(node_id, "out")] = slot
                input_slots.append(slot)
                self.input_ids.append(node_id)
                self.input_shapes[node_id] = info.output_shapes["out"]
                continue
            sources = tuple(slot_of[(edge.src, edge.src_port)] for edge in graph.input_edges(node_id))
            if role == "output":
                output_slots.append(sources[0])
                self.output_ids.append(node_id)
                self.output_shapes[node_id] = info.input_shapes[0]  # type: ignore[assignment]
                continue
            self.add_module(node_id, spec.build(node.params, list(info.input_shapes)))
            slot = len(slot_of)
            for port in spec.output_ports(node.params):
                slot_of[(node_id, port)] = slot
            steps.append(Step(node_id, sources, slot))
        self._steps = tuple(steps)
        self._input_slots = tuple(input_slots)
        self._output_slots = tuple(output_slots)
        self._slot_count = len(slot_of)
        self.tasks = {node_id: dict(graph.node(node_id).params) for node_id in self.output_ids}

    def forward(self, *inputs: torch.Tensor) -> torch.Tensor | tuple[torch.Tensor, ...]:
        if len(inputs) != len(self._input_slots):
            names = ", ".join(self.node_name(node_id) for node_id in self.input_ids)
            raise TypeError(f"the model takes {len(self._input_slots)} input(s) ({names}); got {len(inputs)}")
        values: list[torch.Tensor | None] = [None] * self._slot_count
        for slot, tensor in zip(self._input_slots, inputs):
            values[slot] = tensor
        modules = self._modules
        for step in self._steps:
            values[step.output_slot] = modules[step.node_id](*(values[i] for i in step.input_slots))
        outputs = tuple(values[slot] for slot in self._output_slots)
        return outputs[0] if len(outputs) == 1 else outputs  # type: ignore[return-value]

    @property
    def steps(self) -> tuple[Step, ...]:
        return self._steps

    def node_name(self, node_id: str) -> str:
        """The name the person gave ``node_id`` (for messages); the id itself for a node this model lacks."""
        return self.node_names.get(node_id, node_id)


def compile_graph(graph: Graph, infos: dict[str, NodeInfo] | None = None) -> GraphModule:
    """Compile ``graph``; raises CompileError (carrying the ShapeErrors) if it has errors."""
    return GraphModule(graph, infos)

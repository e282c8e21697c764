"""How much memory training a graph takes, estimated from its inferred shapes (no torch, no Qt).

An Input of ``[3, 100000, 100000]`` is a valid graph: its shapes infer, ``info`` and
``export`` work, and training dies allocating 120 GB per sample. The estimate here lets
``info`` warn and ``train`` (and the window's Train preflight) refuse before that:

- activations: every node's outputs, per sample, float32, times the batch size, times
  ~3 (the forward values kept for backward, their gradients, and temporaries);
- parameters: float32, times ~4 (weights, gradients, and two optimizer moments).

It is a rough lower bound (no allocator slack, no framework overhead), so a refusal is
sure to be right; a graph that passes may still be tight.
"""

from __future__ import annotations

import math
import os
from dataclasses import dataclass

from dlstudio.core.graph import Graph
from dlstudio.core.layers.spec import format_shape
from dlstudio.core.shapes import NodeInfo, infer_graph

BYTES_PER_VALUE = 4  # float32
ACTIVATION_FACTOR = 3  # forward values kept for backward, their gradients, temporaries
PARAMETER_FACTOR = 4  # weights, gradients, two optimizer moments (Adam)


@dataclass(frozen=True)
class MemoryEstimate:
    """The parts of :func:`estimate_training_bytes`, for a message."""

    activation_values: int  # per sample, all nodes' outputs
    parameters: int
    batch_size: int
    largest_node: str | None  # the node with the largest output (its id)
    largest_values: int  # that output's values per sample

    @property
    def activation_bytes(self) -> int:
        return self.activation_values * BYTES_PER_VALUE * self.batch_size * ACTIVATION_FACTOR

    @property
    def parameter_bytes(self) -> int:
        return self.parameters * BYTES_PER_VALUE * PARAMETER_FACTOR

    @property
    def total_bytes(self) -> int:
        return self.activation_bytes + self.parameter_bytes


def estimate(graph: Graph, batch_size: int, infos: dict[str, NodeInfo] | None = None) -> MemoryEstimate:
    """The training memory estimate of ``graph`` at ``batch_size`` (nodes whose shapes are unknown count 0)."""
    infos = infer_graph(graph) if infos is None else infos
    values = 0
    parameters = 0
    largest, largest_values = None, 0
    for node_id, info in infos.items():
        parameters += info.params
        node_values = sum(math.prod(shape) for shape in info.output_shapes.values())
        values += node_values
        if node_values > largest_values:
            largest, largest_values = node_id, node_values
    return MemoryEstimate(values, parameters, max(int(batch_size), 1), largest, largest_values)


def estimate_training_bytes(graph: Graph, batch_size: int) -> int:
    """Bytes that training ``graph`` at ``batch_size`` needs at least (see the module's notes)."""
    return estimate(graph, batch_size).total_bytes


def available_memory() -> int | None:
    """Bytes of memory available to a new allocation now (Linux: MemAvailable; else free pages), or None."""
    try:
        with open("/proc/meminfo", encoding="ascii") as handle:
            for line in handle:
                if line.startswith("MemAvailable:"):
                    return int(line.split()[1]) * 1024
    except (OSError, ValueError, IndexError):
        pass
    try:
        return int(os.sysconf("SC_AVPHYS_PAGES")) * int(os.sysconf("SC_PAGE_SIZE"))
    except (AttributeError, OSError, ValueError):
        return None


def format_bytes(count: float) -> str:
    """``1536`` -> ``"1.5 KB"``; ``3.6e11`` -> ``"360 GB"`` (powers of 1000, as disks and people count)."""
    for unit in ("bytes", "KB", "MB", "GB", "TB", "PB"):
        if count < 1000 or unit == "PB":
            break
        count /= 1000
    if unit == "bytes":
        return f"{int(count)} bytes"
    return f"{count:.3g} {unit}" if count < 1e6 else f"{count:.3e} {unit}"


def memory_problem(graph: Graph, batch_size: int, available: int | None = None,
                   infos: dict[str, NodeInfo] | None = None) -> str | None:
    """Why training would not fit in ``available`` bytes (default: the machine's memory available now), or None.

    The reason is one line naming the size needed, the memory there is and the largest layer
    output, by the node's name. None also when the available memory cannot be read.
    """
    available = available_memory() if available is None else available
    if available is None:
        return None
    infos = infer_graph(graph) if infos is None else infos
    found = estimate(graph, batch_size, infos)
    if found.total_bytes <= available:
        return None
    parts = []
    if found.largest_node is not None and found.largest_node in graph:
        node = graph.node(found.largest_node)
        shape = next(iter(infos[node.id].output_shapes.values()), None)
        parts.append(f"the largest layer output is {node.name}'s {format_shape(shape)}")
    if found.parameter_bytes > found.activation_bytes:
        parts.append(f"{found.parameters:,} parameters")
    detail = f" ({'; '.join(parts)})" if parts else ""
    return (f"training needs about {format_bytes(found.total_bytes)} of memory at batch size {found.batch_size}"
            f"{detail}, more than the {format_bytes(available)} available; make the Input or the layers smaller, "
            f"or lower the batch size")


def check_fits(graph: Graph, batch_size: int, available: int | None = None) -> str | None:
    """A refusal reason if training ``graph`` at ``batch_size`` cannot fit in memory, else None.

    For ``train`` and the window's Train preflight, before training starts. ``available``
    defaults to the machine's memory available now; pass a GPU's free memory for a GPU run.
    """
    return memory_problem(graph, batch_size, available)

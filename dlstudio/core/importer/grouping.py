"""Group an imported network into blocks by the source's module hierarchy, and lay it out collapsed (no torch).

Every node of an import knows the module path it was made in (``layer1.0.conv1``; ``layer1.0`` for the add
in that block's forward; '' for the model's own forward). A node's *unit* is the first module on its path
that is neither a plain container (``nn.Sequential``, ``nn.ModuleList``, ``nn.ModuleDict`` by exact type:
they only hold the repeated blocks) nor opened. Units of two nodes or more become blocks; the rest of the
nodes stay loose. This starts coarse (resnet's ``layer1.0``, densenet's ``features.denseblock1``, vit's
``encoder``); then a block that is the only one of its module type at that level (a wrapper such as vit's
``encoder``, not a repeated unit) is opened when the top level stays at most :data:`TOP_LEVEL_ITEMS`
items, cheapest first: vit's one ``encoder`` opens into its twelve layers, resnet's sixteen bottlenecks
and densenet's transitions stay blocks, so that siblings look alike.

The layout draws the collapsed level (loose nodes and one item per block, at its first member's place)
as the snake the canvas wraps a chain into, and lays each block's members out on their own from that
place, so that the collapsed view reads as a clean chain and an expanded block starts where it stood.
"""

from __future__ import annotations

import re
from collections import Counter
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass

TOP_LEVEL_ITEMS = 30
"""Opening blocks stops before the collapsed graph would have more items than this."""

_VIEWPORT = (1600.0, 1000.0)  # the window the first layout is wrapped for (the canvas re-wraps to its own)
_BLOCK_VIEWPORT = (1000.0, 640.0)  # an expanded block wraps tighter: it opens in the middle of the chain
_NAME_LIMIT = 120  # a block name's limit (Blocks' MAX_BLOCK_NAME)
_ID_LIMIT = 60


@dataclass(frozen=True)
class ModuleKind:
    """What the grouping needs to know of one module of the source: its type's name, and whether it is
    a plain container whose children are the blocks (never a block itself)."""

    type_name: str | None
    container: bool = False


_UNKNOWN = ModuleKind(None)


@dataclass(frozen=True)
class PlannedBlock:
    """A block to make: its id, its name (the module path) and its members in topological order."""

    id: str
    name: str
    nodes: tuple[str, ...]


def plan_blocks(order: Sequence[str], node_paths: Mapping[str, str], modules: Mapping[str, ModuleKind],
                taken_ids: Iterable[str] = (), *, limit: int = TOP_LEVEL_ITEMS) -> list[PlannedBlock]:
    """The blocks of the nodes ``order`` (topological), from each node's module path; see the module doc.

    ``modules`` describes the source's modules by path (a path it does not know is a module of no known
    type); ``taken_ids`` are ids a block must not take (the graph's node ids).
    """
    opened: set[str] = set()
    units = _units(order, node_paths, modules, opened)
    while True:
        count = _top_level_count(order, units)
        blocks = _blocks_of(units)
        types = Counter(modules.get(unit, _UNKNOWN).type_name for unit in blocks)
        trials = []
        for unit in blocks:
            type_name = modules.get(unit, _UNKNOWN).type_name
            if type_name is None or types[type_name] > 1:
                continue  # a repeated module (resnet's bottlenecks, a stem and a head alike) stays a block
            trial = _units(order, node_paths, modules, opened | {unit})
            trial_count = _top_level_count(order, trial)
            if trial_count <= limit:
                trials.append((trial_count - count, unit, trial))
        if not trials:
            break
        _, unit, units = min(trials, key=lambda trial: (trial[0], trial[1]))
        opened.add(unit)

    used = set(taken_ids)
    planned = []
    for path, members in _blocks_of(units).items():
        block_id = _block_id(path, used)
        used.add(block_id)
        planned.append(PlannedBlock(block_id, path[:_NAME_LIMIT], tuple(members)))
    return planned


def _units(order: Sequence[str], node_paths: Mapping[str, str], modules: Mapping[str, ModuleKind],
           opened: set[str]) -> dict[str, str | None]:
    """Each node's unit (the module path of its would-be block), None for a node at the top level."""
    units: dict[str, str | None] = {}
    for node_id in order:
        path = node_paths.get(node_id, "")
        parts = path.split(".") if path else []
        unit = None
        for end in range(1, len(parts) + 1):
            prefix = ".".join(parts[:end])
            if prefix in opened or modules.get(prefix, _UNKNOWN).container:
                continue
            unit = prefix
            break
        units[node_id] = unit
    return units


def _blocks_of(units: Mapping[str, str | None]) -> dict[str, list[str]]:
    """The units of two nodes or more (blocks), with their members in the order given."""
    members: dict[str, list[str]] = {}
    for node_id, unit in units.items():
        if unit is not None:
            members.setdefault(unit, []).append(node_id)
    return {unit: nodes for unit, nodes in members.items() if len(nodes) > 1}


def _top_level_count(order: Sequence[str], units: Mapping[str, str | None]) -> int:
    blocks = _blocks_of(units)
    loose = sum(1 for node_id in order if units[node_id] not in blocks)
    return loose + len(blocks)


def _block_id(path: str, used: set[str]) -> str:
    base = re.sub(r"_+", "_", re.sub(r"[^A-Za-z0-9_]", "_", f"block_{path}")).strip("_")[:_ID_LIMIT]
    candidate, number = base, 2
    while candidate in used:
        candidate = f"{base}_{number}"
        number += 1
    return candidate


def onnx_scope_path(node_name: str) -> str:
    """The source module path in the name torch's exporter gives an ONNX node, '' when it has no scopes.

    The exporter names a node by its module scopes and its operation, a scope inside a container by the
    dotted path from the first named one: ``/layer1/layer1.0/conv1/Conv`` is ``layer1.0.conv1``,
    ``/features/features.2/features.2.1/block/block.1/Mul`` is ``features.2.1.block.1``.
    """
    if not node_name.startswith("/"):
        return ""  # another exporter's name (Conv_0): no scopes to read
    parts: list[str] = []
    previous = ""
    for scope in node_name.split("/")[1:-1]:
        if previous and scope.startswith(previous + "."):
            parts.extend(scope[len(previous) + 1:].split("."))
        elif scope:
            parts.extend(scope.split("."))
        previous = scope
    return ".".join(parts)


def collapsed_layout(order: Sequence[str], edges: Sequence[tuple[str, str]],
                     blocks: Sequence[PlannedBlock]) -> dict[str, tuple[float, float]]:
    """A position for every node: the collapsed level laid out as a snake, each block from its item's place.

    A collapsed block is drawn at its first member's position, so that member takes the block's place in
    the collapsed layout; its other members are laid out among themselves, offset from there.
    """
    from dlstudio.core.autolayout import layered_layout

    item_of = {node_id: node_id for node_id in order}
    for block in blocks:
        for node_id in block.nodes:
            item_of[node_id] = block.nodes[0]
    items = list(dict.fromkeys(item_of[node_id] for node_id in order))
    item_edges = [(item_of[src], item_of[dst]) for src, dst in edges if item_of[src] != item_of[dst]]
    positions = layered_layout(items, item_edges, viewport=_VIEWPORT)
    for block in blocks:
        members = set(block.nodes)
        inside = [(src, dst) for src, dst in edges if src in members and dst in members]
        local = layered_layout(block.nodes, inside, viewport=_BLOCK_VIEWPORT)
        anchor_x, anchor_y = positions[block.nodes[0]]
        first_x, first_y = local[block.nodes[0]]
        for node_id in block.nodes[1:]:
            x, y = local[node_id]
            positions[node_id] = (anchor_x + x - first_x, anchor_y + y - first_y)
    # To the tenth, as a project file keeps them: an import saved and loaded is laid out the same.
    return {node_id: (round(x, 1), round(y, 1)) for node_id, (x, y) in positions.items()}

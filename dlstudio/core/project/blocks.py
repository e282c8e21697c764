"""Blocks (named groups of nodes the canvas can collapse into one) and frozen nodes (no Qt, no torch).

Both are a project's view of its graph, kept beside it like the layout: they name nodes by id and never
change the network the graph compiles to. A node belongs to at most one block (blocks do not nest: an
imported model is grouped by its top-level module hierarchy, ``layer1.0`` -> one block). A node that
leaves the graph leaves its block and the frozen set at once, so that a new node given the same id later
starts ungrouped and trainable; the canvas's undo commands put it back with the node.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Iterator
from dataclasses import dataclass, replace
from typing import Any

from dlstudio.core.errors import GraphError, ProjectError
from dlstudio.core.events import Event
from dlstudio.core.graph import Edge, Graph, check_node_id, unique_name
from dlstudio.core.project.jsontypes import describe
from dlstudio.core.text import quote

MAX_BLOCK_NAME = 120


@dataclass(frozen=True)
class Block:
    """A named group of nodes. ``id`` is stable (like a node id); ``name`` is the person's label."""

    id: str
    name: str
    nodes: tuple[str, ...]
    collapsed: bool = True

    def to_doc(self) -> dict[str, Any]:
        return {"id": self.id, "name": self.name, "nodes": list(self.nodes), "collapsed": self.collapsed}


class Blocks:
    """The blocks of one graph, in the order they were made, with a ``changed`` event after every change.

    Follows the graph's ``node_removed``: the node leaves its block, and a block left empty goes.
    """

    def __init__(self, graph: Graph) -> None:
        self._graph = graph
        self._blocks: dict[str, Block] = {}
        self.changed = Event("blocks_changed")  # () after any change
        graph.node_removed.connect(self._forget_node)

    # -- reading -------------------------------------------------------------

    def __iter__(self) -> Iterator[Block]:
        return iter(list(self._blocks.values()))

    def __len__(self) -> int:
        return len(self._blocks)

    def __contains__(self, block_id: object) -> bool:
        return block_id in self._blocks

    def get(self, block_id: str) -> Block:
        try:
            return self._blocks[block_id]
        except KeyError:
            raise GraphError(f"no block {quote(block_id)}") from None

    def block_of(self, node_id: str) -> Block | None:
        """The block ``node_id`` belongs to, or None."""
        for block in self._blocks.values():
            if node_id in block.nodes:
                return block
        return None

    def new_block_id(self) -> str:
        used = [int(m.group(1)) for block_id in self._blocks if (m := re.match(r"block(\d+)$", block_id))]
        number = max(used, default=0) + 1
        while f"block{number}" in self._graph:
            number += 1
        return f"block{number}"

    def unique_name(self, base: str) -> str:
        return unique_name(base, {block.name for block in self._blocks.values()}, MAX_BLOCK_NAME)

    def boundary(self, block_id: str) -> tuple[list[Edge], list[Edge]]:
        """The edges that enter the block from outside and that leave it, in graph order."""
        members = set(self.get(block_id).nodes)
        entering = [e for e in self._graph.edges if e.dst in members and e.src not in members]
        leaving = [e for e in self._graph.edges if e.src in members and e.dst not in members]
        return entering, leaving

    # -- changing ------------------------------------------------------------

    def group(self, node_ids: Iterable[str], name: str | None = None, *, block_id: str | None = None,
              collapsed: bool = False, index: int | None = None) -> Block:
        """Make a block of ``node_ids`` (nodes of the graph, none in a block yet); returns it.

        Raises GraphError naming the node or block when that cannot be.
        """
        nodes = tuple(dict.fromkeys(node_ids))
        if not nodes:
            raise GraphError("select at least one node to group into a block")
        for node_id in nodes:
            node = self._graph.node(node_id)  # GraphError when it is not a node
            owner = self.block_of(node_id)
            if owner is not None:
                raise GraphError(f"{node.name} is already in block {owner.name}; ungroup that block first", node_id)
        if block_id is None:
            block_id = self.new_block_id()
        check_node_id(block_id)
        if block_id in self._blocks or block_id in self._graph:
            raise GraphError(f"the block id {quote(block_id)} is taken")
        name = self._check_name(self.unique_name("block") if name is None else name)
        block = Block(block_id, name, nodes, bool(collapsed))
        self._insert(block, index)
        return block

    def add(self, block: Block, index: int | None = None) -> None:
        """Put back a block that was removed (undo): its nodes must be in the graph and in no other block."""
        self.group(block.nodes, block.name, block_id=block.id, collapsed=block.collapsed, index=index)

    def ungroup(self, block_id: str) -> tuple[Block, int]:
        """Remove the block (its nodes stay, ungrouped); returns it and its index, for undo."""
        block = self.get(block_id)
        index = list(self._blocks).index(block_id)
        del self._blocks[block_id]
        self.changed.emit()
        return block, index

    def set_collapsed(self, block_id: str, collapsed: bool) -> None:
        block = self.get(block_id)
        if block.collapsed != bool(collapsed):
            self._blocks[block_id] = replace(block, collapsed=bool(collapsed))
            self.changed.emit()

    def rename(self, block_id: str, name: str) -> None:
        block = self.get(block_id)
        name = self._check_name(name)
        if any(other.name == name for other in self._blocks.values() if other.id != block_id):
            raise GraphError(f"another block is already called {quote(name)}")
        if name != block.name:
            self._blocks[block_id] = replace(block, name=name)
            self.changed.emit()

    def clear(self) -> None:
        if self._blocks:
            self._blocks.clear()
            self.changed.emit()

    def _insert(self, block: Block, index: int | None) -> None:
        items = list(self._blocks.items())
        items.insert(len(items) if index is None else index, (block.id, block))
        self._blocks = dict(items)
        self.changed.emit()

    def _forget_node(self, node: Any) -> None:
        block = self.block_of(node.id)
        if block is None:
            return
        rest = tuple(n for n in block.nodes if n != node.id)
        if rest:
            self._blocks[block.id] = replace(block, nodes=rest)
        else:
            del self._blocks[block.id]
        self.changed.emit()

    @staticmethod
    def _check_name(name: Any) -> str:
        if not isinstance(name, str) or not name.strip():
            raise GraphError("a block needs a name")
        name = " ".join(name.split())
        if len(name) > MAX_BLOCK_NAME:
            raise GraphError(f"a block name may have at most {MAX_BLOCK_NAME} characters")
        return name

    # -- the file --------------------------------------------------------------

    def to_doc(self) -> list[dict[str, Any]]:
        return [block.to_doc() for block in self._blocks.values()]

    def load_doc(self, value: Any, where: str = "blocks") -> None:
        """Replace the blocks with those of a project file's ``blocks`` list; ProjectError naming the field."""
        if not isinstance(value, list):
            raise ProjectError(f"{where}: expected a list, got {describe(value)}")
        self._blocks.clear()
        for index, item in enumerate(value):
            at = f"{where}[{index}]"
            if not isinstance(item, dict):
                raise ProjectError(f"{at}: expected an object, got {describe(item)}")
            unknown = [key for key in item if key not in ("id", "name", "nodes", "collapsed")]
            if unknown:
                raise ProjectError(f"{at}: unknown field {quote(unknown[0])}")
            for key in ("id", "name", "nodes"):
                if key not in item:
                    raise ProjectError(f"{at}.{key}: missing")
            nodes, collapsed = item["nodes"], item.get("collapsed", True)
            if not isinstance(nodes, list) or not all(isinstance(n, str) for n in nodes):
                raise ProjectError(f"{at}.nodes: expected a list of node ids, got {describe(nodes)}")
            if not isinstance(collapsed, bool):
                raise ProjectError(f"{at}.collapsed: expected true or false, got {describe(collapsed)}")
            if not isinstance(item["id"], str) or not isinstance(item["name"], str):
                raise ProjectError(f"{at}: id and name must be text")
            try:
                self.group(nodes, item["name"], block_id=item["id"], collapsed=collapsed)
            except GraphError as error:
                raise ProjectError(f"{at}: {error.message}") from None


class FrozenNodes:
    """The ids of nodes whose weights training leaves as they are, with a ``changed`` event.

    Follows the graph's ``node_removed`` like :class:`Blocks`.
    """

    def __init__(self, graph: Graph) -> None:
        self._graph = graph
        self._ids: set[str] = set()
        self.changed = Event("frozen_changed")  # (node_ids: tuple[str, ...], frozen: bool)
        graph.node_removed.connect(self._forget_node)

    def __contains__(self, node_id: object) -> bool:
        return node_id in self._ids

    def __iter__(self) -> Iterator[str]:
        return iter(sorted(self._ids))

    def __len__(self) -> int:
        return len(self._ids)

    def set(self, node_ids: Iterable[str], frozen: bool) -> tuple[str, ...]:
        """Freeze or unfreeze nodes of the graph; returns the ids whose state changed."""
        changed = []
        for node_id in dict.fromkeys(node_ids):
            self._graph.node(node_id)  # GraphError when it is not a node
            if (node_id in self._ids) != bool(frozen):
                changed.append(node_id)
        if frozen:
            self._ids.update(changed)
        else:
            self._ids.difference_update(changed)
        if changed:
            self.changed.emit(tuple(changed), bool(frozen))
        return tuple(changed)

    def clear(self) -> None:
        if self._ids:
            ids = tuple(sorted(self._ids))
            self._ids.clear()
            self.changed.emit(ids, False)

    def _forget_node(self, node: Any) -> None:
        if node.id in self._ids:
            self._ids.discard(node.id)
            self.changed.emit((node.id,), False)

    def to_doc(self) -> list[str]:
        return sorted(self._ids)

    def load_doc(self, value: Any, where: str = "frozen") -> None:
        if not isinstance(value, list) or not all(isinstance(n, str) for n in value):
            raise ProjectError(f"{where}: expected a list of node ids, got {describe(value)}")
        self._ids.clear()
        for node_id in value:
            if node_id not in self._graph:
                raise ProjectError(f"{where}: {quote(node_id)} is not a node of the graph")
        self._ids.update(value)

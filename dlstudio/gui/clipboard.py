"""Copy and paste of graph fragments through the system clipboard, as JSON.

A fragment holds the copied nodes, the edges among them, their positions, which
of them are frozen, and the blocks whose nodes were all copied (a copied
collapsed block pastes as a collapsed block of the copies). Pasting gives every
node a fresh id and offsets it, as one undo step; since the clipboard is the
system's, pasting into another window of the app works.
"""

from __future__ import annotations

import json
import re
from typing import Any

from PySide6.QtCore import QMimeData
from PySide6.QtWidgets import QApplication

from dlstudio.core.graph import Graph, check_node_id, unique_name
from dlstudio.core.layers import get_spec
from dlstudio.core.layout import Layout
from dlstudio.core.project.blocks import MAX_BLOCK_NAME, Blocks, FrozenNodes
from dlstudio.gui.commands import (
    AddNodeCommand, ConnectCommand, FreezeCommand, GroupBlockCommand, MacroCommand, describe_nodes,
)

FRAGMENT_MIME_TYPE = "application/x-dlstudio-fragment"
FRAGMENT_FORMAT = "dlstudio-fragment"
PASTE_OFFSET = 40.0


def make_fragment(graph: Graph, layout: Layout, node_ids: list[str], blocks: Blocks | None = None,
                  frozen: FrozenNodes | None = None) -> dict[str, Any]:
    """The nodes, the edges among them, their positions, the frozen ones among them and the blocks all of
    whose nodes are among them, as plain JSON data."""
    chosen = set(node_ids)
    return {
        "format": FRAGMENT_FORMAT,
        "nodes": [graph.node(n).to_dict() for n in graph.nodes if n in chosen],
        "edges": [e.to_dict() for e in graph.edges if e.src in chosen and e.dst in chosen],
        "positions": {n: list(layout.position(n) or (0.0, 0.0)) for n in graph.nodes if n in chosen},
        "frozen": [n for n in graph.nodes if n in chosen and frozen is not None and n in frozen],
        "blocks": [{"name": block.name, "nodes": list(block.nodes), "collapsed": block.collapsed}
                   for block in (blocks or ()) if set(block.nodes) <= chosen],
    }


def parse_fragment(text: str) -> dict[str, Any] | None:
    """The fragment in ``text``, or None if it is not one (any other clipboard content)."""
    try:
        data = json.loads(text)
    except (ValueError, TypeError):
        return None
    if not isinstance(data, dict) or data.get("format") != FRAGMENT_FORMAT:
        return None
    return data


def _fresh_id(type_id: str, taken: set[str]) -> str:
    stem = get_spec(type_id).id_stem
    sep = "_" if any(ch.isdigit() for ch in stem) else ""
    pattern = re.compile(re.escape(stem + sep) + r"(\d+)$")
    used = [int(m.group(1)) for node_id in taken if (m := pattern.match(node_id))]
    return f"{stem}{sep}{max(used, default=0) + 1}"


def _paste_offset(layout: Layout, fragment: dict[str, Any], step: float) -> float:
    """The first multiple of ``step`` (down and right) at which no pasted node lands on a node already there.

    Pasting the same fragment again cascades (+40, +80, ...) instead of stacking copies exactly on top
    of each other, where they look like one node.
    """
    occupied = {(round(x), round(y)) for x, y in layout.positions.values()}
    starts = [tuple(fragment["positions"].get(data["id"], (0.0, 0.0))) for data in fragment["nodes"]]
    offset = step
    for _ in range(200):
        if not any((round(x + offset), round(y + offset)) in occupied for x, y in starts):
            break
        offset += step
    return offset


def make_paste_command(graph: Graph, layout: Layout, fragment: dict[str, Any], offset: float = PASTE_OFFSET,
                       *, verb: str = "Paste", blocks: Blocks | None = None,
                       frozen: FrozenNodes | None = None) -> tuple[MacroCommand, list[str]]:
    """One undo step adding the fragment's nodes (new ids, free names, offset) and edges, and, given the
    project's ``blocks`` and ``frozen`` nodes, its blocks (named "stem copy", "stem copy_2", ...) and frozen
    states.

    Returns the command and the new ids. The copies land ``offset`` (cascading) down and right of the
    originals; each gets a name no other node has (``conv1`` copied next to ``conv1`` and ``conv2``
    becomes ``conv3``). The undo text names what was pasted: "Paste conv1", "Duplicate 3 layers".
    """
    nodes = fragment["nodes"]
    macro = MacroCommand(f"{verb} {describe_nodes(data['name'] for data in nodes)}")
    taken = set(graph.nodes)
    names = graph.names()
    renamed: dict[str, str] = {}
    new_names: dict[str, str] = {}
    shift = _paste_offset(layout, fragment, offset)
    for data in nodes:
        new_id = _fresh_id(data["type"], taken)
        check_node_id(new_id)
        taken.add(new_id)
        renamed[data["id"]] = new_id
        x, y = fragment["positions"].get(data["id"], (0.0, 0.0))
        # A name that was just the old id follows the new id; a name the user chose is kept if free.
        wanted = new_id if data["name"] == data["id"] else data["name"]
        name = unique_name(wanted, names)
        names.add(name)
        new_names[new_id] = name
        macro.add(AddNodeCommand(graph, layout, data["type"], (x + shift, y + shift), params=data["params"],
                                 name=name, node_id=new_id))
    for edge in fragment["edges"]:
        macro.add(ConnectCommand(graph, renamed[edge["src"]], edge["src_port"], renamed[edge["dst"]],
                                 edge["dst_port"], names=new_names))
    if frozen is not None:
        listed = fragment.get("frozen")
        copies = [renamed[node_id] for node_id in (listed if isinstance(listed, list) else ())
                  if isinstance(node_id, str) and node_id in renamed]
        if copies:
            macro.add(FreezeCommand(frozen, graph, copies, True, names=new_names))
    if blocks is not None:
        _add_blocks(macro, blocks, graph, fragment.get("blocks", ()), renamed, new_names)
    return macro, list(renamed.values())


def _add_blocks(macro: MacroCommand, blocks: Blocks, graph: Graph, copied: Any, renamed: dict[str, str],
                new_names: dict[str, str]) -> None:
    """Group the copies of each copied block; ids and names chosen here, since none of them exists yet."""
    taken_ids = {block.id for block in blocks}
    taken_names = {block.name for block in blocks}
    for entry in copied if isinstance(copied, list) else ():
        if not isinstance(entry, dict) or not isinstance(entry.get("nodes"), list):
            continue  # a fragment from elsewhere with something else here: its nodes paste ungrouped
        members = [renamed[node_id] for node_id in entry["nodes"] if isinstance(node_id, str) and node_id in renamed]
        if not members:
            continue
        number = 1
        while f"block{number}" in taken_ids or f"block{number}" in graph or f"block{number}" in renamed.values():
            number += 1
        block_id = f"block{number}"
        # "stem copy", not "stem_2": a block's name is often a module path (stage3.0), whose next number
        # (stage3.1) names another part of the network.
        original = " ".join(str(entry.get("name") or "block").split()) or "block"
        name = unique_name(f"{original[:MAX_BLOCK_NAME - 5]} copy", taken_names | graph.names(), MAX_BLOCK_NAME)
        taken_ids.add(block_id)
        taken_names.add(name)
        macro.add(GroupBlockCommand(blocks, graph, members, name, bool(entry.get("collapsed", True)),
                                    names=new_names, block_id=block_id))


def make_duplicate_command(graph: Graph, layout: Layout, node_ids: list[str], blocks: Blocks | None = None,
                           frozen: FrozenNodes | None = None) -> tuple[MacroCommand, list[str]]:
    """Duplicate the nodes in place (offset, as a paste), undone as "Duplicate conv1"."""
    return make_paste_command(graph, layout, make_fragment(graph, layout, node_ids, blocks, frozen),
                              verb="Duplicate", blocks=blocks, frozen=frozen)


def paste_message(graph: Graph, fragment: dict[str, Any], new_ids: list[str], verb: str = "Pasted") -> str:
    """The status-bar line after a paste: "Pasted conv1 as conv3", "Pasted 3 layers"."""
    if len(new_ids) == 1:
        source = fragment["nodes"][0]["name"]
        name = graph.node(new_ids[0]).name if new_ids[0] in graph else source
        return f"{verb} {source}" + (f" as {name}" if name != source else "")
    return f"{verb} {describe_nodes(new_ids)}"


def copy_message(graph: Graph, node_ids: list[str]) -> str:
    """The status-bar line after a copy: "Copied conv1", "Copied 3 layers"."""
    return f"Copied {describe_nodes(graph.node(n).name for n in node_ids)}"


def copy_to_clipboard(fragment: dict[str, Any]) -> None:
    text = json.dumps(fragment)
    mime = QMimeData()
    mime.setText(text)
    mime.setData(FRAGMENT_MIME_TYPE, text.encode("utf-8"))
    QApplication.clipboard().setMimeData(mime)


def fragment_from_clipboard() -> dict[str, Any] | None:
    mime = QApplication.clipboard().mimeData()
    if mime is None:
        return None
    if mime.hasFormat(FRAGMENT_MIME_TYPE):
        return parse_fragment(bytes(mime.data(FRAGMENT_MIME_TYPE).data()).decode("utf-8"))
    return parse_fragment(mime.text()) if mime.hasText() else None

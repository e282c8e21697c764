"""Copy and paste of graph fragments through the system clipboard, as JSON.

A fragment holds the copied nodes, the edges among them and their positions.
Pasting gives every node a fresh id and offsets it, as one undo step; since
the clipboard is the system's, pasting into another window of the app works.
"""

from __future__ import annotations

import json
import re
from typing import Any

from PySide6.QtCore import QMimeData
from PySide6.QtWidgets import QApplication

from dlstudio.core.graph import Graph, check_node_id
from dlstudio.core.layers import get_spec
from dlstudio.core.layout import Layout
from dlstudio.gui.commands import AddNodeCommand, ConnectCommand, MacroCommand

FRAGMENT_MIME_TYPE = "application/x-dlstudio-fragment"
FRAGMENT_FORMAT = "dlstudio-fragment"
PASTE_OFFSET = 40.0


def make_fragment(graph: Graph, layout: Layout, node_ids: list[str]) -> dict[str, Any]:
    """The nodes, the edges among them, and their positions, as plain JSON data."""
    chosen = set(node_ids)
    return {
        "format": FRAGMENT_FORMAT,
        "nodes": [graph.node(n).to_dict() for n in graph.nodes if n in chosen],
        "edges": [e.to_dict() for e in graph.edges if e.src in chosen and e.dst in chosen],
        "positions": {n: list(layout.position(n) or (0.0, 0.0)) for n in graph.nodes if n in chosen},
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


def make_paste_command(graph: Graph, layout: Layout, fragment: dict[str, Any], offset: float = PASTE_OFFSET
                       ) -> tuple[MacroCommand, list[str]]:
    """One undo step adding the fragment's nodes (new ids, offset) and edges; returns it and the new ids."""
    macro = MacroCommand(f"paste {len(fragment['nodes'])} node(s)")
    taken = set(graph.nodes)
    renamed: dict[str, str] = {}
    for data in fragment["nodes"]:
        new_id = _fresh_id(data["type"], taken)
        check_node_id(new_id)
        taken.add(new_id)
        renamed[data["id"]] = new_id
        x, y = fragment["positions"].get(data["id"], (0.0, 0.0))
        # A name that was just the old id follows the new id; a name the user chose is kept.
        name = new_id if data["name"] == data["id"] else data["name"]
        macro.add(AddNodeCommand(graph, layout, data["type"], (x + offset, y + offset), params=data["params"],
                                 name=name, node_id=new_id))
    for edge in fragment["edges"]:
        macro.add(ConnectCommand(graph, renamed[edge["src"]], edge["src_port"], renamed[edge["dst"]],
                                 edge["dst_port"]))
    return macro, list(renamed.values())


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

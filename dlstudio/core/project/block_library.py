"""The person's own blocks ("My blocks" in the palette): a block's layers saved as a small JSON file.

A saved block holds the block's nodes (type, name, parameters), the edges among them and their
positions relative to the block's first node, so that it can be dropped anywhere and keep its
arrangement. It lives in the user data folder (``<user data>/dlstudio/blocks/<name>.json``), written
atomically like a project. Reading validates it whole (every layer type known, every parameter and
edge accepted) and refuses a bad file with one line naming it and what is wrong. No Qt, no torch.
"""

from __future__ import annotations

import json
import re
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from dlstudio.core.errors import DlstudioError, ProjectError
from dlstudio.core.graph import Graph
from dlstudio.core.project.jsontypes import describe
from dlstudio.core.project.model import Project
from dlstudio.core.safe_io import read_limited, write_json

BLOCK_FORMAT = "dlstudio-block"
BLOCK_FORMAT_VERSION = 1
MAX_BLOCK_FILE = 8 * 1024 * 1024  # a block of a few hundred layers is well under 1 MB
_UNSAFE_FILE_CHARACTERS = re.compile(r'[\\/:*?"<>|\x00-\x1f]+')


def blocks_folder() -> Path:
    """Where saved blocks live: the user data folder's ``blocks`` (``~/.local/share/dlstudio/blocks``)."""
    from platformdirs import user_data_dir

    return Path(user_data_dir("dlstudio", appauthor=False)) / "blocks"


@dataclass(frozen=True)
class SavedBlock:
    """A block as read back from its file."""

    name: str
    path: Path
    nodes: list[dict[str, Any]]  # {"id", "type", "name", "params"}
    edges: list[dict[str, str]]  # {"src", "src_port", "dst", "dst_port"}
    positions: dict[str, tuple[float, float]]  # relative to the first node

    @property
    def layers(self) -> int:
        return len(self.nodes)

    def fragment(self, origin: tuple[float, float]) -> dict[str, Any]:
        """The nodes, edges and positions with the first node at ``origin`` (the shape of a copied fragment)."""
        x0, y0 = origin
        return {"nodes": [dict(node, params=dict(node["params"])) for node in self.nodes],
                "edges": [dict(edge) for edge in self.edges],
                "positions": {n: [x0 + x, y0 + y] for n, (x, y) in self.positions.items()}}


def block_to_doc(project: Project, block_id: str, name: str | None = None) -> dict[str, Any]:
    """The saved form of a block of ``project``: its nodes, inner edges and relative positions."""
    block = project.blocks.get(block_id)
    graph, layout = project.graph, project.layout
    members = [n for n in graph.nodes if n in set(block.nodes)]
    origin = layout.position(block.nodes[0]) or (0.0, 0.0)
    positions = {}
    for node_id in members:
        x, y = layout.position(node_id) or origin
        positions[node_id] = [x - origin[0], y - origin[1]]
    chosen = set(members)
    return {
        "format": BLOCK_FORMAT,
        "format_version": BLOCK_FORMAT_VERSION,
        "name": name if name is not None else block.name,
        "nodes": [graph.node(n).to_dict() for n in members],
        "edges": [e.to_dict() for e in graph.edges if e.src in chosen and e.dst in chosen],
        "positions": positions,
    }


def file_name_for(name: str) -> str:
    """A file name for a block called ``name``: characters no file system takes replaced, never empty."""
    stem = _UNSAFE_FILE_CHARACTERS.sub("_", " ".join(name.split())).strip(" .") or "block"
    return f"{stem[:100]}.json"


def save_block(project: Project, block_id: str, name: str | None = None, folder: Path | None = None) -> Path:
    """Write the block to ``folder`` (default :func:`blocks_folder`) as ``<name>.json``; returns the path.

    A block already saved under the name is replaced (saving again is how a saved block is updated).
    Raises WriteError naming the file when it cannot be written.
    """
    doc = block_to_doc(project, block_id, name)
    folder = blocks_folder() if folder is None else Path(folder)
    folder.mkdir(parents=True, exist_ok=True)
    return write_json(folder / file_name_for(doc["name"]), doc)


def load_block(path: str | Path) -> SavedBlock:
    """Read and check a saved block; ProjectError naming the file and the field when it is refused."""
    path = Path(path)
    where = path.name
    try:
        data = json.loads(read_limited(path, MAX_BLOCK_FILE, "saved block").decode("utf-8"))
    except DlstudioError as error:
        raise ProjectError(f"{where}: {error.message}") from None
    except OSError as error:
        raise ProjectError(f"{where}: cannot be read ({error.strerror or error})") from None
    except (UnicodeDecodeError, ValueError) as error:
        raise ProjectError(f"{where}: not a saved block (invalid JSON: {error})") from None
    if not isinstance(data, dict) or data.get("format") != BLOCK_FORMAT:
        raise ProjectError(f"{where}: not a saved dlstudio block")
    version = data.get("format_version")
    if not isinstance(version, int) or version > BLOCK_FORMAT_VERSION:
        raise ProjectError(f"{where}: saved by a newer dlstudio (block format {version}); update dlstudio to use it")
    name, nodes, edges, positions = (data.get(key) for key in ("name", "nodes", "edges", "positions"))
    if not isinstance(name, str) or not name.strip():
        raise ProjectError(f"{where}.name: expected the block's name, got {describe(name)}")
    if not isinstance(nodes, list) or not nodes:
        raise ProjectError(f"{where}.nodes: expected a list of layers, got {describe(nodes)}")
    if not isinstance(edges, list):
        raise ProjectError(f"{where}.edges: expected a list, got {describe(edges)}")
    if not isinstance(positions, dict):
        raise ProjectError(f"{where}.positions: expected an object, got {describe(positions)}")
    # Building it checks every layer type, parameter, port and edge as a project's graph is checked.
    graph = Graph()
    for index, item in enumerate(nodes):
        label = item.get("name") if isinstance(item, dict) and isinstance(item.get("name"), str) else f"#{index + 1}"
        try:
            graph.add_node(item["type"], item["params"], name=item["name"], node_id=item["id"])
        except DlstudioError as error:
            raise ProjectError(f"{where}: layer {label}: {error.message}") from None
        except (KeyError, TypeError) as error:
            raise ProjectError(f"{where}: layer {label} lacks a field ({error})") from None
    for item in edges:
        try:
            graph.connect(item["src"], item["src_port"], item["dst"], item["dst_port"])
        except DlstudioError as error:
            raise ProjectError(f"{where}: connection: {error.message}") from None
        except (KeyError, TypeError) as error:
            raise ProjectError(f"{where}: a connection lacks a field ({error})") from None
    checked: dict[str, tuple[float, float]] = {}
    for node_id in graph.nodes:
        point = positions.get(node_id, [0.0, 0.0])
        if (not isinstance(point, list) or len(point) != 2
                or not all(isinstance(v, (int, float)) and not isinstance(v, bool) for v in point)):
            raise ProjectError(f"{where}.positions.{node_id}: expected [x, y], got {describe(point)}")
        checked[node_id] = (float(point[0]), float(point[1]))
    return SavedBlock(" ".join(name.split()), path, [graph.node(n).to_dict() for n in graph.nodes],
                      [e.to_dict() for e in graph.edges], checked)


def list_saved_blocks(folder: Path | None = None) -> tuple[list[SavedBlock], list[str]]:
    """The saved blocks in ``folder`` (default :func:`blocks_folder`) by name, and one line per file refused."""
    folder = blocks_folder() if folder is None else Path(folder)
    if not folder.is_dir():
        return [], []
    blocks, refused = [], []
    for path in sorted(folder.glob("*.json")):
        try:
            blocks.append(load_block(path))
        except ProjectError as error:
            refused.append(error.message)
    blocks.sort(key=lambda block: block.name.lower())
    return blocks, refused

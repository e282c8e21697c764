"""The in-memory project: graph, layout, data and training settings, runs (no Qt, no torch)."""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from dlstudio.core.graph import Graph
from dlstudio.core.layout import Layout


@dataclass
class Project:
    """Everything a ``*.dlstudio`` file holds.

    ``data`` and ``training`` are plain dicts validated against the settings
    schemas in :mod:`dlstudio.core.project.settings`; ``runs`` lists run
    folders relative to the project file. ``path`` is where it was loaded
    from or last saved to (not stored in the file).
    """

    graph: Graph = field(default_factory=Graph)
    layout: Layout = field(default_factory=Layout)
    data: dict[str, Any] = field(default_factory=dict)
    training: dict[str, Any] = field(default_factory=dict)
    runs: list[str] = field(default_factory=list)
    description: str = ""
    path: Path | None = None

    @property
    def name(self) -> str:
        return self.path.stem if self.path is not None else "untitled"

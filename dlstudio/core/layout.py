"""Where nodes sit on the canvas: kept apart from the graph's semantics (no Qt).

Positions are scene coordinates of a node's top-left corner. The canvas
moves nodes through :meth:`Layout.move` (inside undo commands) and follows
the ``node_moved`` event, as it follows the graph's events.
"""

from __future__ import annotations

from typing import Any

from dlstudio.core.events import Event

Point = tuple[float, float]


class Layout:
    """Node positions by node id, with an event on every move."""

    def __init__(self, positions: dict[str, Point] | None = None) -> None:
        self._positions: dict[str, Point] = dict(positions or {})
        self.node_moved = Event("node_moved")  # (node_id, old: Point | None, new: Point | None)

    def position(self, node_id: str) -> Point | None:
        return self._positions.get(node_id)

    @property
    def positions(self) -> dict[str, Point]:
        return dict(self._positions)

    def move(self, node_id: str, x: float, y: float) -> None:
        new = (float(x), float(y))
        old = self._positions.get(node_id)
        if old == new:
            return
        self._positions[node_id] = new
        self.node_moved.emit(node_id, old, new)

    def remove(self, node_id: str) -> None:
        old = self._positions.pop(node_id, None)
        if old is not None:
            self.node_moved.emit(node_id, old, None)

    def __contains__(self, node_id: object) -> bool:
        return node_id in self._positions

    def to_dict(self) -> dict[str, Any]:
        # Rounded so that a saved file does not churn on sub-pixel drags.
        return {node_id: [round(x, 1), round(y, 1)] for node_id, (x, y) in sorted(self._positions.items())}

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> Layout:
        return cls({node_id: (float(x), float(y)) for node_id, (x, y) in data.items()})

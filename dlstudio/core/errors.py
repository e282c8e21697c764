"""Typed errors of the core. Each names the node and quotes the values involved.

Messages are written for the person using the app: one line, no traceback,
and where a fix is obvious the error carries it as data (:class:`Fix`), so
that the canvas can offer it as a button.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any


class DlstudioError(Exception):
    """Base of every error the core raises on purpose."""

    def __init__(self, message: str) -> None:
        super().__init__(message)
        self.message = message

    def __str__(self) -> str:
        return self.message


@dataclass(frozen=True)
class Fix:
    """A one-click repair for a node error.

    ``action`` is one of:

    - ``"insert_before"``: insert a node of ``layer_type`` (with ``params``) in
      front of ``port`` of the failing node;
    - ``"set_param"``: set ``param`` to ``value`` on the failing node, or on
      ``node_id`` when the repair edits another node (the Linear before an Output);
    - ``"set_source_param"``: what a layer spec says when the repair belongs to
      the ``layer_type`` node feeding ``port`` (a spec cannot see the graph). The
      shape engine resolves it into a ``set_param`` on that node, or, when no
      such node feeds the port, an ``insert_before`` of a ``layer_type`` with
      ``params``; users never see it unresolved.

    ``description`` is what the Fix button says; it names nodes by their names.
    """

    action: str
    description: str
    layer_type: str | None = None
    port: str | None = None
    param: str | None = None
    value: Any = None
    params: dict[str, Any] = field(default_factory=dict)
    node_id: str | None = None


class GraphError(DlstudioError):
    """A graph edit was refused (cycle, taken port, unknown node, ...)."""

    def __init__(self, message: str, node_id: str | None = None) -> None:
        super().__init__(message)
        self.node_id = node_id


class DuplicateNameError(GraphError):
    """A node name is already taken by another node (names are how people tell nodes apart)."""

    def __init__(self, message: str, node_id: str | None = None, name: str | None = None) -> None:
        super().__init__(message, node_id)
        self.name = name


class CycleError(GraphError):
    """The edge would close a cycle."""


class PortError(GraphError):
    """A port does not exist, is already connected, or is of the wrong side."""


class ParamError(GraphError):
    """A parameter value is out of range, of the wrong type, or not a choice."""

    def __init__(self, message: str, node_id: str | None = None, param: str | None = None) -> None:
        super().__init__(message, node_id)
        self.param = param


class LayerShapeError(DlstudioError):
    """Raised by a layer spec's ``infer``: the input does not fit the layer.

    The shape engine turns it into a :class:`ShapeError` naming the node.
    """

    def __init__(self, message: str, fix: Fix | None = None) -> None:
        super().__init__(message)
        self.fix = fix


class ShapeError(DlstudioError):
    """A node cannot accept its inputs. Carries the node id and an optional fix."""

    def __init__(self, node_id: str, message: str, fix: Fix | None = None) -> None:
        super().__init__(message)
        self.node_id = node_id
        self.fix = fix

    def __str__(self) -> str:
        return f"{self.node_id}: {self.message}"

    # Value semantics, so that inference results compare equal when nothing changed.
    def __eq__(self, other: object) -> bool:
        if not isinstance(other, ShapeError):
            return NotImplemented
        return (self.node_id, self.message, self.fix) == (other.node_id, other.message, other.fix)

    def __hash__(self) -> int:
        return hash((self.node_id, self.message))


class CompileError(DlstudioError):
    """The graph cannot become a model (it has errors, or no input/output)."""

    def __init__(self, message: str, errors: list[ShapeError] | None = None) -> None:
        super().__init__(message)
        self.errors = errors or []


class ProjectError(DlstudioError):
    """A project file was refused. The message is one line saying why."""

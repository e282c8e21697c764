"""The network as a directed acyclic graph of layer nodes (no Qt, no torch).

Every mutation goes through :class:`Graph`'s methods, which validate first
(the graph is never left invalid: no cycles, one edge per input port, ports
exist, parameters in range) and then emit an event. Views and the shape
engine follow those events; they never mutate the graph themselves.
"""

from __future__ import annotations

import keyword
import re
import unicodedata
from collections.abc import Iterable, Iterator
from dataclasses import dataclass, field
from typing import Any

from dlstudio.core.errors import CycleError, DuplicateNameError, GraphError, ParamError, PortError
from dlstudio.core.events import Event
from dlstudio.core.layers import LayerSpec, get_spec
from dlstudio.core.text import BIDI_OVERRIDES, quote

_ID_PATTERN = re.compile(r"^[A-Za-z][A-Za-z0-9_]{0,63}$")

# Node ids become attribute names of the compiled nn.Module (and of exported code),
# so they may not shadow what nn.Module already has. A core test checks this list
# against dir(torch.nn.Module), so that a torch upgrade cannot slip one past.
RESERVED_IDS = frozenset({
    "add_module", "apply", "bfloat16", "buffers", "call_super_init", "children", "compile", "cpu", "cuda",
    "double", "dump_patches", "eval", "extra_repr", "float", "forward", "get_buffer", "get_extra_state",
    "get_parameter", "get_submodule", "half", "ipu", "load_state_dict", "modules", "mtia", "named_buffers",
    "named_children", "named_modules", "named_parameters", "parameters", "register_backward_hook",
    "register_buffer", "register_forward_hook", "register_forward_pre_hook", "register_full_backward_hook",
    "register_full_backward_pre_hook", "register_load_state_dict_post_hook",
    "register_load_state_dict_pre_hook", "register_module", "register_parameter",
    "register_state_dict_post_hook", "register_state_dict_pre_hook", "requires_grad_", "set_extra_state",
    "set_submodule", "share_memory", "state_dict", "to", "to_empty", "train", "training", "type", "xpu",
    "zero_grad", "T_destination", "self", "torch", "nn", "x", "inputs",
})


def check_node_id(node_id: Any) -> str:
    """A node id is a short identifier usable as a Python attribute name."""
    if not isinstance(node_id, str) or not _ID_PATTERN.match(node_id):
        raise GraphError(f"invalid node id {quote(node_id)}: use letters, digits and _, starting with a letter")
    if keyword.iskeyword(node_id) or node_id in RESERVED_IDS:
        raise GraphError(f"invalid node id {quote(node_id)}: the name is reserved")
    return node_id


_TRAILING_NUMBER = re.compile(r"^(.*?)(\d+)$")
MAX_NAME_LENGTH = 80
"""The longest node name (names appear in one-line messages, tables and node headers)."""


def unique_name(base: str, taken: Iterable[str], limit: int = MAX_NAME_LENGTH) -> str:
    """``base`` if no name in ``taken`` equals it, else the next free variant, at most ``limit`` characters.

    A name ending in a number continues its series (``conv1`` -> ``conv3`` when
    ``conv1`` and ``conv2`` exist); any other name gets a suffix (``classifier``
    -> ``classifier_2``). A name at the length limit loses characters to make room for its suffix.
    """
    taken = set(taken)
    base = base[:limit]
    if base not in taken:
        return base
    match = _TRAILING_NUMBER.match(base)
    if match and match.group(1) and not match.group(1).endswith("_"):
        stem = match.group(1)
        series = re.compile(re.escape(stem) + r"(\d+)$")
        used = [int(m.group(1)) for name in taken if (m := series.match(name))]
        candidate = f"{stem}{max(used, default=0) + 1}"
    else:
        stem = match.group(1)[:-1] if match and match.group(1).endswith("_") else base
        number = 2
        while f"{stem}_{number}" in taken:
            number += 1
        candidate = f"{stem}_{number}"
    number = 2
    while len(candidate) > limit or candidate in taken:
        suffix = f"_{number}"
        candidate = base[:limit - len(suffix)] + suffix
        number += 1
    return candidate


@dataclass
class Node:
    """One layer in the graph. ``id`` is stable for the node's life; ``name`` is the user's label."""

    id: str
    type: str
    name: str
    params: dict[str, Any] = field(default_factory=dict)

    @property
    def spec(self) -> LayerSpec:
        return get_spec(self.type)

    @property
    def input_ports(self) -> tuple[str, ...]:
        return self.spec.input_ports(self.params)

    @property
    def output_ports(self) -> tuple[str, ...]:
        return self.spec.output_ports(self.params)

    def to_dict(self) -> dict[str, Any]:
        return {"id": self.id, "type": self.type, "name": self.name, "params": dict(self.params)}


@dataclass(frozen=True, order=True)
class Edge:
    """A connection from an output port to an input port."""

    src: str
    src_port: str
    dst: str
    dst_port: str

    def to_dict(self) -> dict[str, str]:
        return {"src": self.src, "src_port": self.src_port, "dst": self.dst, "dst_port": self.dst_port}

    def __str__(self) -> str:
        return f"{self.src}.{self.src_port} -> {self.dst}.{self.dst_port}"


class Graph:
    """A validated DAG of layer nodes with events for every change.

    Events (all synchronous, emitted after the change):
    ``node_added(node)``, ``node_removed(node)``, ``edge_added(edge)``,
    ``edge_removed(edge)``, ``param_changed(node_id, name, old, new)``,
    ``node_renamed(node_id, old, new)``.
    """

    def __init__(self) -> None:
        self._nodes: dict[str, Node] = {}
        self._in: dict[tuple[str, str], Edge] = {}  # (dst, dst_port) -> edge: one edge per input port
        self._out: dict[str, list[Edge]] = {}  # src -> edges leaving it
        self._into: dict[str, list[Edge]] = {}  # dst -> edges entering it (for the backward cycle search)
        self.node_added = Event("node_added")
        self.node_removed = Event("node_removed")
        self.edge_added = Event("edge_added")
        self.edge_removed = Event("edge_removed")
        self.param_changed = Event("param_changed")
        self.node_renamed = Event("node_renamed")

    # -- reading ---------------------------------------------------------

    @property
    def nodes(self) -> dict[str, Node]:
        """Nodes by id, in insertion order. Read-only by convention: mutate through the methods."""
        return self._nodes

    @property
    def edges(self) -> list[Edge]:
        return sorted(self._in.values())

    def node(self, node_id: str) -> Node:
        try:
            return self._nodes[node_id]
        except KeyError:
            raise GraphError(f"no node {quote(node_id)}", node_id) from None

    def __contains__(self, node_id: object) -> bool:
        return node_id in self._nodes

    def __len__(self) -> int:
        return len(self._nodes)

    def input_edge(self, node_id: str, port: str) -> Edge | None:
        return self._in.get((node_id, port))

    def input_edges(self, node_id: str) -> list[Edge]:
        """Edges into ``node_id``, in port order."""
        node = self.node(node_id)
        return [e for port in node.input_ports if (e := self._in.get((node_id, port))) is not None]

    def output_edges(self, node_id: str) -> list[Edge]:
        return list(self._out.get(node_id, ()))

    def predecessors(self, node_id: str) -> list[str]:
        return [edge.src for edge in self.input_edges(node_id)]

    def successors(self, node_id: str) -> list[str]:
        return list(dict.fromkeys(edge.dst for edge in self._out.get(node_id, ())))

    def descendants(self, node_ids: Iterable[str]) -> set[str]:
        """The given nodes and everything downstream of them."""
        seen: set[str] = set()
        stack = [n for n in node_ids if n in self._nodes]
        while stack:
            current = stack.pop()
            if current in seen:
                continue
            seen.add(current)
            stack.extend(edge.dst for edge in self._out.get(current, ()))
        return seen

    def topological_order(self, subset: Iterable[str] | None = None) -> list[str]:
        """Node ids so that every edge goes forwards; ties keep insertion order.

        With ``subset``, only those nodes are ordered (by the edges among them).
        """
        if subset is None:
            members = list(self._nodes)
        else:
            wanted = set(subset)
            members = [n for n in self._nodes if n in wanted]
        member_set = set(members)
        indegree = {n: 0 for n in members}
        for (dst, _), edge in self._in.items():
            if dst in member_set and edge.src in member_set:
                indegree[dst] += 1
        position = {n: i for i, n in enumerate(members)}
        ready = [n for n in members if indegree[n] == 0]
        order: list[str] = []
        while ready:
            ready.sort(key=position.__getitem__, reverse=True)
            current = ready.pop()
            order.append(current)
            for edge in self._out.get(current, ()):
                if edge.dst in member_set:
                    indegree[edge.dst] -= 1
                    if indegree[edge.dst] == 0:
                        ready.append(edge.dst)
        return order

    def new_node_id(self, type_id: str) -> str:
        """A fresh id for a node of ``type_id``: its stem and the next free number (conv1, conv2, ...)."""
        stem = get_spec(type_id).id_stem
        # "conv1d" + 1 would read as "conv1d1"; stems with digits get a separator.
        sep = "_" if any(ch.isdigit() for ch in stem) else ""
        pattern = re.compile(re.escape(stem + sep) + r"(\d+)$")
        used = [int(m.group(1)) for node_id in self._nodes if (m := pattern.match(node_id))]
        return f"{stem}{sep}{max(used, default=0) + 1}"

    # -- mutating --------------------------------------------------------

    def add_node(self, type_id: str, params: dict[str, Any] | None = None, *, name: str | None = None,
                 node_id: str | None = None, index: int | None = None) -> Node:
        """Add a node of ``type_id``; missing parameters take their defaults.

        ``index`` puts the node at that place in :attr:`nodes` (undoing a deletion restores the order).
        """
        spec = get_spec(type_id)
        if node_id is None:
            node_id = self.new_node_id(spec.type_id)
        check_node_id(node_id)
        if node_id in self._nodes:
            raise GraphError(f"a node with id {quote(node_id)} already exists", node_id)
        try:
            values = spec.validate_params(dict(params or {}))
        except ParamError as error:
            raise ParamError(error.message, node_id, error.param) from None
        # Without a name, the node is called by its id, or the next free name when another node already
        # carries that one. A given name is kept even if taken: files saved before names had to be unique
        # must still open (renames are refused, pastes and duplicates choose free names).
        if name is None:
            name = unique_name(node_id, self.names())
        node = Node(node_id, spec.type_id, self._check_name(name), values)
        self._nodes[node_id] = node
        if index is not None and index < len(self._nodes) - 1:
            items = list(self._nodes.items())
            items.insert(index, items.pop())
            self._nodes = dict(items)
        self.node_added.emit(node)
        return node

    def remove_node(self, node_id: str) -> tuple[Node, list[Edge]]:
        """Remove a node and its edges (each edge_removed is emitted before node_removed)."""
        node = self.node(node_id)
        edges = self.input_edges(node_id) + self.output_edges(node_id)
        for edge in edges:
            self.disconnect(edge)
        del self._nodes[node_id]
        self._out.pop(node_id, None)
        self._into.pop(node_id, None)
        self.node_removed.emit(node)
        return node, edges

    def check_connect(self, src: str, src_port: str, dst: str, dst_port: str) -> None:
        """Raise the reason why this edge may not be added; return if it may."""
        source, target = self.node(src), self.node(dst)
        if src_port not in source.output_ports:
            raise PortError(f"{source.name} has no output {quote(src_port)}", src)
        if dst_port not in target.input_ports:
            raise PortError(f"{target.name} has no input {quote(dst_port)}", dst)
        existing = self._in.get((dst, dst_port))
        if existing is not None:
            raise PortError(f"input {quote(dst_port)} of {target.name} is already connected (from "
                            f"{self._nodes[existing.src].name})", dst)
        if self._reaches(dst, src):
            raise CycleError(f"connecting {source.name} to {target.name} would create a cycle", dst)

    def _reaches(self, start: str, goal: str) -> bool:
        """True if a path leads from ``start`` to ``goal`` (or they are one node).

        Searches forwards from ``start`` and backwards from ``goal`` in turn, one node each, and
        stops as soon as either side runs out: the cost is about twice the smaller of the two
        regions, not the whole downstream graph. A file whose edges are listed from the output
        back to the input then loads in linear time (each new edge's source has no ancestors
        yet), where a forwards search alone was quadratic.
        """
        if start == goal:
            return True
        ahead, behind = {start}, {goal}
        ahead_stack, behind_stack = [start], [goal]
        while ahead_stack and behind_stack:
            for edge in self._out.get(ahead_stack.pop(), ()):
                if edge.dst in behind:
                    return True
                if edge.dst not in ahead:
                    ahead.add(edge.dst)
                    ahead_stack.append(edge.dst)
            for edge in self._into.get(behind_stack.pop(), ()):
                if edge.src in ahead:
                    return True
                if edge.src not in behind:
                    behind.add(edge.src)
                    behind_stack.append(edge.src)
        return False

    def can_connect(self, src: str, src_port: str, dst: str, dst_port: str) -> tuple[bool, str]:
        """``(True, "")`` or ``(False, reason)``, for interactive feedback."""
        try:
            self.check_connect(src, src_port, dst, dst_port)
        except GraphError as error:
            return False, error.message
        return True, ""

    def connect(self, src: str, src_port: str, dst: str, dst_port: str) -> Edge:
        self.check_connect(src, src_port, dst, dst_port)
        edge = Edge(src, src_port, dst, dst_port)
        self._in[(dst, dst_port)] = edge
        self._out.setdefault(src, []).append(edge)
        self._into.setdefault(dst, []).append(edge)
        self.edge_added.emit(edge)
        return edge

    def disconnect(self, edge: Edge) -> None:
        if self._in.get((edge.dst, edge.dst_port)) != edge:
            raise GraphError(f"no edge {edge}")
        del self._in[(edge.dst, edge.dst_port)]
        self._out[edge.src].remove(edge)
        self._into[edge.dst].remove(edge)
        self.edge_removed.emit(edge)

    def set_param(self, node_id: str, name: str, value: Any) -> None:
        """Set one parameter after validating it (range, choice, and that no connected port would vanish)."""
        node = self.node(node_id)
        spec = node.spec
        if not spec.has_param(name):
            raise ParamError(f"{spec.display_name} has no parameter {quote(name)}", node_id, name)
        try:
            value = spec.param(name).validate(value)
        except ParamError as error:
            raise ParamError(error.message, node_id, name) from None
        old = node.params[name]
        if value == old and type(value) is type(old):
            return
        if name == spec.variadic_param:
            remaining = set(spec.input_ports({**node.params, name: value}))
            taken = [port for port in node.input_ports if port not in remaining and (node_id, port) in self._in]
            if taken:
                raise ParamError(f"{name}: disconnect input {quote(taken[0])} first", node_id, name)
        node.params[name] = value
        self.param_changed.emit(node_id, name, old, value)

    def names(self, exclude: str | None = None) -> set[str]:
        """The names in use, without that of node ``exclude``."""
        return {node.name for node in self._nodes.values() if node.id != exclude}

    def node_named(self, name: str) -> Node | None:
        """The node called ``name``, if any."""
        return next((node for node in self._nodes.values() if node.name == name), None)

    def unique_name(self, base: str, also_taken: Iterable[str] = ()) -> str:
        """``base`` or the next free variant of it (see :func:`unique_name`)."""
        return unique_name(base, self.names() | set(also_taken))

    def check_rename(self, node_id: str, name: Any) -> str:
        """The name ``node_id`` would get (checked); raise the reason if the rename is refused."""
        node = self.node(node_id)
        name = self._check_name(name)
        other = self.node_named(name)
        if other is not None and other.id != node_id:
            raise DuplicateNameError(f"cannot rename {node.name} to {name}: another layer is already called "
                                     f"{name}", node_id, name)
        return name

    def rename(self, node_id: str, name: str) -> None:
        """Give a node a new name; refused (:class:`DuplicateNameError`) if another node has it."""
        node = self.node(node_id)
        name = self.check_rename(node_id, name)
        old = node.name
        if old == name:
            return
        node.name = name
        self.node_renamed.emit(node_id, old, name)

    @staticmethod
    def _check_name(name: Any) -> str:
        if not isinstance(name, str) or not name.strip():
            raise GraphError("a node name may not be empty")
        if len(name) > MAX_NAME_LENGTH:
            raise GraphError(f"a node name may be at most {MAX_NAME_LENGTH} characters")
        if any(unicodedata.category(ch) in ("Cc", "Zl", "Zp") for ch in name):
            # Names appear in one-line messages, tables and node headers.
            raise GraphError("a node name may not contain line breaks or control characters")
        if any(ch in BIDI_OVERRIDES for ch in name):
            # They show a name in another order than it is stored (and flip the text after it in a message).
            raise GraphError("a node name may not contain bidirectional control characters (U+202A-U+202E, "
                             "U+2066-U+2069)")
        return name

    # -- whole-graph -----------------------------------------------------

    def clear(self) -> None:
        for node_id in list(reversed(self._nodes)):
            self.remove_node(node_id)

    def to_dict(self) -> dict[str, Any]:
        return {"nodes": [node.to_dict() for node in self._nodes.values()],
                "edges": [edge.to_dict() for edge in self.edges]}

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> Graph:
        """Build a graph from :meth:`to_dict` output, validating every node and edge."""
        graph = cls()
        for item in data["nodes"]:
            graph.add_node(item["type"], item["params"], name=item["name"], node_id=item["id"])
        for item in data["edges"]:
            graph.connect(item["src"], item["src_port"], item["dst"], item["dst_port"])
        return graph

    def copy(self) -> Graph:
        return Graph.from_dict(self.to_dict())

    def __iter__(self) -> Iterator[Node]:
        return iter(self._nodes.values())

    def __repr__(self) -> str:
        return f"Graph({len(self._nodes)} nodes, {len(self._in)} edges)"

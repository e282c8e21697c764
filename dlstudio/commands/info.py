"""``dlstudio info``: per-node shapes, parameters and MACs of a project, and its errors."""

from __future__ import annotations

import argparse
import json
import sys
from typing import Any

from dlstudio.commands.common import load, one_line, thousands
from dlstudio.core.errors import ShapeError
from dlstudio.core.graph import Graph
from dlstudio.core.layers.spec import format_shape
from dlstudio.core.memory import memory_problem
from dlstudio.core.shapes import NodeInfo, infer_graph
from dlstudio.core.text import printable

_JSON_HELP = (
    'print JSON instead: {"nodes": [{"id", "type", "output_shape", "params", "macs"}, ...], "total_params", '
    '"total_macs", "errors": [{"node", "message"}, ...]}. output_shape is a list whose first item, the '
    "batch dimension, is null (e.g. [null, 6, 28, 28]), or null when the shape is unknown (an error at or "
    "above the node). MACs are multiply-accumulates per sample."
)


def add_parser(subparsers: argparse._SubParsersAction) -> None:
    parser = subparsers.add_parser(
        "info", help="show shapes, parameters, MACs and errors of each node",
        description="Show each node of a project's graph in data-flow order with its output shape, "
                    "parameters and multiply-accumulates (MACs) per sample, then the totals and any "
                    "errors. Exits with status 2 if the graph has errors.")
    parser.add_argument("file", metavar="FILE", help="a .dlstudio project file")
    parser.add_argument("--json", action="store_true", help=_JSON_HELP)
    parser.set_defaults(run=run)


def run(args: argparse.Namespace) -> int:
    project = load(args.file)
    graph = project.graph
    infos = infer_graph(graph)
    order = graph.topological_order()
    errors = [infos[node_id].error for node_id in order if infos[node_id].error is not None]
    if args.json:
        print(json.dumps(_as_json(graph, order, infos), indent=2))
    else:
        print(_table(graph, order, infos))
    # A valid graph can still be far too large to train (an Input of [3, 100000, 100000]): say so before train fails.
    batch_size = project.training.get("batch_size") or 1
    too_large = memory_problem(graph, batch_size, infos=infos)
    if too_large is not None:
        print(f"dlstudio: warning: {printable(too_large)}", file=sys.stderr)
    if errors:
        count = f"{len(errors)} error{'s' if len(errors) > 1 else ''}"
        print(f"dlstudio: error: the graph has {count}: {_error_text(graph, errors[0])}", file=sys.stderr)
        return 2
    return 0


def _error_text(graph: Graph, error: ShapeError) -> str:
    """One error on one line, naming the node as the person named it (its id is in the table's first column)."""
    name = graph.node(error.node_id).name if error.node_id in graph else "a node"
    return printable(one_line(f"{name}: {error.message}"))


def _as_json(graph: Graph, order: list[str], infos: dict[str, NodeInfo]) -> dict[str, Any]:
    nodes = []
    for node_id in order:
        info = infos[node_id]
        shape = info.output_shape if info.ok else None
        nodes.append({"id": node_id, "type": graph.node(node_id).type,
                      "output_shape": None if shape is None else [None, *shape],
                      "params": info.params, "macs": info.macs})
    return {
        "nodes": nodes,
        "total_params": sum(info.params for info in infos.values()),
        "total_macs": sum(info.macs for info in infos.values()),
        "errors": [{"node": node_id, "message": infos[node_id].error.message}  # type: ignore[union-attr]
                   for node_id in order if infos[node_id].error is not None],
    }


def _table(graph: Graph, order: list[str], infos: dict[str, NodeInfo]) -> str:
    header = ("id", "type", "name", "output shape", "params", "MACs")
    rows = []
    for node_id in order:
        node, info = graph.node(node_id), infos[node_id]
        if info.error is not None:
            shape = "error"
        else:
            shape = format_shape(info.output_shape if info.ok else None)
        rows.append((node_id, node.type, printable(one_line(node.name)), shape, thousands(info.params), thousands(info.macs)))
    widths = [max(len(row[i]) for row in [header, *rows]) for i in range(len(header))]
    right = {4, 5}  # numbers line up on their last digit

    def line(cells: tuple[str, ...]) -> str:
        return "  ".join(cell.rjust(w) if i in right else cell.ljust(w)
                         for i, (cell, w) in enumerate(zip(cells, widths))).rstrip()

    errors = [infos[node_id].error for node_id in order if infos[node_id].error is not None]
    total_params = sum(info.params for info in infos.values())
    total_macs = sum(info.macs for info in infos.values())
    lines = [line(header), *(line(row) for row in rows), "",
             f"total: {thousands(total_params)} parameters, {thousands(total_macs)} MACs per sample, "
             f"{len(errors)} error{'' if len(errors) == 1 else 's'}"]
    lines += [f"error: {_error_text(graph, error)}" for error in errors]
    return "\n".join(lines)

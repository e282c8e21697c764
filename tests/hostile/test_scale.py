"""Large projects open and lay out in near-linear time (issue 11, item 12).

Timing targets live in ``bench/shapes.py``; these tests count operations, or use timeouts
far above the fixed code's time and far below the quadratic code's.
"""

from __future__ import annotations

import pytest

from dlstudio.core.autolayout import count_crossings, layered_layout
from dlstudio.core.graph import Graph
from dlstudio.core.project import Project, project_from_doc, project_to_doc


class _CountingDict(dict):
    """A dict that counts ``get`` calls: the cycle search's look-ups of a node's edges."""

    gets = 0

    def get(self, key, default=None):
        type(self).gets += 1
        return super().get(key, default)


def _chain(count: int) -> Graph:
    graph = Graph()
    for i in range(count):
        graph.add_node("Input" if i == 0 else "ReLU", {"shape": [4]} if i == 0 else None, node_id=f"n{i}",
                       name=f"n{i}")
    return graph


def _counted(graph: Graph) -> type[_CountingDict]:
    counter = type("Counter", (_CountingDict,), {"gets": 0})
    for attribute in ("_out", "_into"):
        if hasattr(graph, attribute):
            setattr(graph, attribute, counter(getattr(graph, attribute)))
    return counter


@pytest.mark.timeout(60)
@pytest.mark.parametrize("reverse", [False, True], ids=["edges forwards", "edges backwards"])
def test_connecting_a_chain_in_either_order_costs_a_few_lookups_per_edge(reverse):
    count = 2000
    graph = _chain(count)
    counter = _counted(graph)
    pairs = [(f"n{i}", f"n{i + 1}") for i in range(count - 1)]
    for src, dst in reversed(pairs) if reverse else pairs:
        graph.connect(src, "out", dst, "in")
    # A search of the whole downstream graph per edge made this ~count**2 / 2 (2 million) look-ups.
    assert counter.gets < 10 * count


@pytest.mark.timeout(60)
def test_a_cycle_is_still_found_in_a_long_chain():
    graph = _chain(3000)
    for i in reversed(range(2999)):
        graph.connect(f"n{i}", "out", f"n{i + 1}", "in")
    graph.add_node("Add", node_id="merge", name="merge")
    graph.connect("n2999", "out", "merge", "in1")
    ok, reason = graph.can_connect("merge", "out", "n1", "in")  # n1's input is taken: the port is the reason
    assert not ok and "already connected" in reason
    ok, reason = graph.can_connect("n2999", "out", "merge", "in2")  # the same source twice is no cycle
    assert ok, reason
    graph.disconnect(graph.input_edge("n1", "in"))
    ok, reason = graph.can_connect("merge", "out", "n1", "in")
    assert not ok and "cycle" in reason
    ok, reason = graph.can_connect("n0", "out", "n1", "in")
    assert ok, reason


@pytest.mark.timeout(60)
def test_a_project_with_ten_thousand_nodes_listed_output_first_loads():
    # Was 24-42 s: every edge searched all that was connected after it.
    graph = _chain(10_000)
    for i in range(9_999):
        graph.connect(f"n{i}", "out", f"n{i + 1}", "in")
    doc = project_to_doc(Project(graph=graph))
    doc["graph"]["edges"].reverse()
    loaded = project_from_doc(doc)
    assert len(loaded.graph) == 10_000 and len(loaded.graph.edges) == 9_999


@pytest.mark.timeout(60)
@pytest.mark.parametrize("direction", ["lr", "tb"])
def test_five_thousand_nodes_lay_out_in_a_snake_within_seconds(direction):
    # Was 160 s (chain) and 70 s (residual blocks): every wrap tried placed every node, and each
    # placement searched every clean cut for every band.
    nodes = [f"n{i}" for i in range(5000)]
    edges = [(f"n{i}", f"n{i + 1}") for i in range(4999)]
    edges += [(f"n{i}", f"n{i + 4}") for i in range(0, 4996, 4)]  # skip edges, as in residual blocks
    positions = layered_layout(nodes, edges, direction=direction, viewport=(980.0, 580.0), layer_gap=92.0,
                               band_gap=44.0, node_gap=28.0, margin=90.0)
    assert set(positions) == set(nodes)
    rows = {round(p[1] if direction == "lr" else p[0]) for p in positions.values()}
    assert len(rows) > 10  # wrapped into many bands to fit the viewport


@pytest.mark.timeout(30)
def test_a_wide_layer_counts_its_crossings_quickly():
    # 10,000 edges between two layers of 5,000 nodes, wired so that crossings remain (the last edge wraps
    # around): counting them pairwise was 50 million comparisons per sweep, about a minute in all.
    count = 5000
    nodes = ["src"] + [f"m{i}" for i in range(count)] + [f"k{i}" for i in range(count)]
    edges = [("src", f"m{i}") for i in range(count)] + [(f"m{i}", f"k{i}") for i in range(count)]
    edges += [(f"m{i}", f"k{(i + 1) % count}") for i in range(count)]
    positions = layered_layout(nodes, edges)
    assert len(positions) == len(nodes)


def test_crossings_are_counted_as_inversions():
    layers = [["a", "b", "c"], ["x", "y", "z"]]
    edges = [("a", "z"), ("b", "y"), ("c", "x"), ("a", "x")]
    # a-z crosses b-y and c-x; b-y crosses c-x; a-x shares an end with a-z and c-x: no crossing.
    assert count_crossings(layers, edges) == 3
    assert count_crossings(layers, [("a", "x"), ("a", "y"), ("b", "x")]) == 1

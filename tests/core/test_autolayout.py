"""Auto-layout: layers point forwards, nodes do not overlap, crossings are removed where possible."""

from __future__ import annotations

import pytest

from dlstudio.core.autolayout import assign_layers, count_crossings, is_cramped, layered_layout

SIZE = (100.0, 50.0)


def _rects_overlap(a, b, size=SIZE):
    return a[0] < b[0] + size[0] and b[0] < a[0] + size[0] and a[1] < b[1] + size[1] and b[1] < a[1] + size[1]


def test_layers_follow_longest_path():
    edges = [("a", "b"), ("b", "c"), ("a", "c"), ("c", "d")]
    assert assign_layers(["a", "b", "c", "d"], edges) == {"a": 0, "b": 1, "c": 2, "d": 3}


def test_cycle_is_refused():
    with pytest.raises(ValueError, match="acyclic"):
        layered_layout(["a", "b"], [("a", "b"), ("b", "a")])


def test_left_to_right_edges_point_forwards_and_nodes_do_not_overlap():
    # A residual block: the skip edge spans two layers.
    nodes = ["inp", "conv1", "relu", "conv2", "add", "out"]
    edges = [("inp", "conv1"), ("conv1", "relu"), ("relu", "conv2"), ("conv2", "add"), ("inp", "add"),
             ("add", "out")]
    sizes = {n: SIZE for n in nodes}
    positions = layered_layout(nodes, edges, sizes=sizes, layer_gap=50, node_gap=20)
    assert set(positions) == set(nodes)
    for src, dst in edges:
        assert positions[dst][0] >= positions[src][0] + SIZE[0] + 50
    for i, a in enumerate(nodes):
        for b in nodes[i + 1:]:
            assert not _rects_overlap(positions[a], positions[b]), (a, b)


def test_top_to_bottom_uses_the_vertical_axis():
    positions = layered_layout(["a", "b", "c"], [("a", "b"), ("b", "c")], sizes={}, direction="tb")
    xs = {round(p[0], 3) for p in positions.values()}
    ys = [positions[n][1] for n in "abc"]
    assert len(xs) == 1 and ys == sorted(ys) and len(set(ys)) == 3


def test_crossings_are_removed_when_a_planar_order_exists():
    # Given order a1,a2 / b2,b1 wires a1->b1, a2->b2 crosswise; the layout must uncross them.
    nodes = ["a1", "a2", "b2", "b1"]
    edges = [("a1", "b1"), ("a2", "b2")]
    assert count_crossings([["a1", "a2"], ["b2", "b1"]], edges) == 1
    positions = layered_layout(nodes, edges)
    order_a = sorted(["a1", "a2"], key=lambda n: positions[n][1])
    order_b = sorted(["b1", "b2"], key=lambda n: positions[n][1])
    assert count_crossings([order_a, order_b], edges) == 0


def test_unknown_direction_and_empty_graph():
    assert layered_layout([], []) == {}
    with pytest.raises(ValueError, match="direction"):
        layered_layout(["a"], [], direction="diagonal")


def test_three_hundred_nodes_lay_out_quickly():
    import time

    nodes = [f"n{i}" for i in range(300)]
    edges = [(f"n{i}", f"n{i + 1}") for i in range(299)] + [(f"n{i}", f"n{i + 3}") for i in range(0, 297, 3)]
    start = time.perf_counter()
    positions = layered_layout(nodes, edges)
    assert time.perf_counter() - start < 0.5
    assert len(positions) == 300


def test_a_long_chain_wraps_into_bands_that_fit_the_viewport():
    nodes = [f"n{i}" for i in range(14)]
    edges = [(f"n{i}", f"n{i + 1}") for i in range(13)]
    sizes = {n: SIZE for n in nodes}
    flat = layered_layout(nodes, edges, sizes=sizes)
    assert len({p[1] for p in flat.values()}) == 1
    wrapped = layered_layout(nodes, edges, sizes=sizes, viewport=(800, 600))
    rows = sorted({p[1] for p in wrapped.values()})
    assert 2 <= len(rows) <= 6
    width = max(p[0] for p in wrapped.values()) + SIZE[0]
    height = max(p[1] for p in wrapped.values()) + SIZE[1]
    assert width < max(p[0] for p in flat.values())
    assert 0.5 < (width / height) / (800 / 600) < 2.5
    for i, a in enumerate(nodes):
        for b in nodes[i + 1:]:
            assert not _rects_overlap(wrapped[a], wrapped[b]), (a, b)
    assert layered_layout(nodes, edges, sizes=sizes, wrap=5) != flat


def test_cramped_layouts_are_detected():
    sizes = {"a": SIZE, "b": SIZE}
    assert is_cramped({"a": (0, 0)}, sizes, ["a", "b"])  # b has no position
    assert is_cramped({"a": (0, 0), "b": (110, 0)}, sizes, ["a", "b"], gap=40)
    assert not is_cramped({"a": (0, 0), "b": (160, 0)}, sizes, ["a", "b"], gap=40)
    assert not is_cramped({"a": (0, 0), "b": (0, 100)}, sizes, ["a", "b"], gap=40)


def test_wrapping_breaks_rows_between_residual_blocks_not_inside_them():
    # stem -> three residual blocks (a -> b -> c, skip from the block input to the add) -> head
    nodes, edges = ["stem"], []
    last = "stem"
    for block in range(3):
        a, b, c, add = (f"{block}{part}" for part in "abc+")
        nodes += [a, b, c, add]
        edges += [(last, a), (a, b), (b, c), (c, add), (last, add)]
        last = add
    nodes.append("head")
    edges.append((last, "head"))
    positions = layered_layout(nodes, edges, viewport=(700.0, 700.0))
    rows = sorted({round(y) for _, y in positions.values()})
    assert len(rows) > 1, "the chain should wrap in a square viewport"
    # Every block's nodes share their row with the block's add: no skip edge crosses a wrap.
    for src, dst in edges:
        if dst.endswith("+") and src in ("stem",) + tuple(f"{b}+" for b in range(3)):
            block_nodes = [n for n in nodes if n.startswith(dst[0])]
            band = {_band_of(positions, n, positions[dst]) for n in block_nodes}
            assert band == {True}, f"block {dst[0]} is split across rows"


def _band_of(positions, node, anchor, tolerance=200.0):
    return abs(positions[node][1] - anchor[1]) < tolerance

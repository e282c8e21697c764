"""Layered (Sugiyama-style) layout of a DAG, for the canvas's Auto-layout (no Qt, no torch).

Three classic steps, kept small:

1. **Layering**: each node goes one layer after its deepest predecessor
   (longest path from the sources), so every edge points forwards.
2. **Ordering**: edges that skip layers get invisible waypoints, then a few
   barycenter sweeps (down and up) reorder each layer to reduce crossings;
   the best ordering seen is kept.
3. **Placement**: layers are laid out side by side (left to right) or one
   under the other (top to bottom), each centred on the same axis, and nodes
   are pulled towards the mean position of their neighbours where room allows.

The result is a position (top-left corner) per node, ready for ``Layout.move``.
"""

from __future__ import annotations

import math
from bisect import bisect_left
from collections.abc import Iterable, Mapping, Sequence

Size = tuple[float, float]
Point = tuple[float, float]

LEFT_TO_RIGHT = "lr"
TOP_TO_BOTTOM = "tb"

_DEFAULT_SIZE: Size = (180.0, 80.0)
_SWEEPS = 8


def assign_layers(nodes: Sequence[str], edges: Iterable[tuple[str, str]]) -> dict[str, int]:
    """Layer index per node: 0 for sources, else one more than the deepest predecessor."""
    preds: dict[str, list[str]] = {n: [] for n in nodes}
    succs: dict[str, list[str]] = {n: [] for n in nodes}
    for src, dst in edges:
        if src in preds and dst in preds:
            preds[dst].append(src)
            succs[src].append(dst)
    indegree = {n: len(preds[n]) for n in nodes}
    ready = [n for n in nodes if indegree[n] == 0]
    layer = {n: 0 for n in ready}
    while ready:
        current = ready.pop()
        for nxt in succs[current]:
            layer[nxt] = max(layer.get(nxt, 0), layer[current] + 1)
            indegree[nxt] -= 1
            if indegree[nxt] == 0:
                ready.append(nxt)
    if len(layer) != len(nodes):
        raise ValueError("auto-layout needs an acyclic graph")
    return layer


def count_crossings(layers: Sequence[Sequence[str]], edges: Iterable[tuple[str, str]]) -> int:
    """Edge crossings between consecutive layers (edges must join consecutive layers).

    Two edges cross when their ends are in opposite orders; counted as inversions with
    a Fenwick tree, O(E log E), so that wide layers of thousands of edges stay fast.
    """
    position: dict[str, tuple[int, int]] = {}
    for index, members in enumerate(layers):
        for order, node in enumerate(members):
            position[node] = (index, order)
    by_gap: dict[int, list[tuple[int, int]]] = {}
    for src, dst in edges:
        (ls, os_), (ld, od) = position[src], position[dst]
        if ld == ls + 1:
            by_gap.setdefault(ls, []).append((os_, od))
    return sum(_inversions(pairs) for pairs in by_gap.values())


def _inversions(pairs: list[tuple[int, int]]) -> int:
    """Pairs ``(a1, b1), (a2, b2)`` with ``a1 < a2`` and ``b1 > b2`` (ties in either never count)."""
    if len(pairs) < 2:
        return 0
    pairs = sorted(pairs)  # by a, then b: an earlier pair with the same a has b <= the current b
    size = max(b for _, b in pairs) + 1
    tree = [0] * (size + 1)
    seen = 0
    total = 0
    for _, b in pairs:
        # earlier pairs with an end <= b
        at, not_above = b + 1, 0
        while at > 0:
            not_above += tree[at]
            at -= at & -at
        total += seen - not_above
        at = b + 1
        while at <= size:
            tree[at] += 1
            at += at & -at
        seen += 1
    return total


def _split_long_edges(edges: Sequence[tuple[str, str]], layer: dict[str, int]
                      ) -> tuple[list[tuple[str, str]], dict[str, int]]:
    """Replace every edge spanning k > 1 layers by a chain through k - 1 waypoints."""
    layer = dict(layer)
    short: list[tuple[str, str]] = []
    for index, (src, dst) in enumerate(edges):
        previous = src
        for step in range(layer[src] + 1, layer[dst]):
            waypoint = f"\0{index}:{step}"  # cannot clash with a node id
            layer[waypoint] = step
            short.append((previous, waypoint))
            previous = waypoint
        short.append((previous, dst))
    return short, layer


def _order_layers(nodes: Sequence[str], edges: Sequence[tuple[str, str]], layer: dict[str, int]
                  ) -> list[list[str]]:
    count = max(layer.values(), default=-1) + 1
    layers: list[list[str]] = [[] for _ in range(count)]
    # Start from the given order: for a graph drawn by hand it is often already good.
    for node in nodes:
        layers[layer[node]].append(node)
    for node in sorted(set(layer) - set(nodes)):
        layers[layer[node]].append(node)
    preds: dict[str, list[str]] = {n: [] for n in layer}
    succs: dict[str, list[str]] = {n: [] for n in layer}
    for src, dst in edges:
        preds[dst].append(src)
        succs[src].append(dst)

    best = [list(members) for members in layers]
    best_crossings = count_crossings(best, edges)
    for sweep in range(_SWEEPS):
        downwards = sweep % 2 == 0
        indices = range(1, count) if downwards else range(count - 2, -1, -1)
        for index in indices:
            neighbour_layer = layers[index - 1] if downwards else layers[index + 1]
            rank = {n: i for i, n in enumerate(neighbour_layer)}
            current = layers[index]

            def barycenter(node: str, position: int, rank: dict[str, int] = rank) -> float:
                linked = preds[node] if downwards else succs[node]
                if not linked:
                    return float(position)
                return sum(rank[n] for n in linked) / len(linked)

            keyed = [(barycenter(n, i), i, n) for i, n in enumerate(current)]
            layers[index] = [n for _, _, n in sorted(keyed)]
        crossings = count_crossings(layers, edges)
        if crossings < best_crossings:
            best, best_crossings = [list(members) for members in layers], crossings
        if best_crossings == 0:
            break
    return best


def layered_layout(nodes: Sequence[str], edges: Iterable[tuple[str, str]], *,
                   sizes: Mapping[str, Size] | None = None, direction: str = LEFT_TO_RIGHT,
                   layer_gap: float = 90.0, node_gap: float = 40.0, origin: Point = (0.0, 0.0),
                   wrap: int | None = None, band_gap: float = 80.0, viewport: Size | None = None,
                   margin: float = 0.0) -> dict[str, Point]:
    """Top-left position per node for a layered drawing of the DAG ``(nodes, edges)``.

    ``sizes`` gives each node's (width, height); ``direction`` is ``"lr"``
    (layers are columns) or ``"tb"`` (layers are rows). Raises ValueError on
    a cycle or an unknown direction.

    Long chains do not fit a window: ``wrap`` starts a new band (row of
    columns, or column of rows) every ``wrap`` layers, and ``viewport``
    (width, height) picks the wrap that shows the whole drawing largest,
    with ``margin`` of room on every side (what the view adds when fitting,
    and the turns between bands). Bands alternate direction (a snake), so consecutive bands join at one
    side instead of by an edge back across the drawing.
    """
    if direction not in (LEFT_TO_RIGHT, TOP_TO_BOTTOM):
        raise ValueError(f"unknown direction {direction!r}: use 'lr' or 'tb'")
    nodes = list(dict.fromkeys(nodes))
    members = set(nodes)
    edge_list = [(s, d) for s, d in dict.fromkeys(edges) if s in members and d in members]
    if not nodes:
        return {}
    sizes = dict(sizes or {})
    layer = assign_layers(nodes, edge_list)
    short_edges, full_layer = _split_long_edges(edge_list, layer)
    layers = _order_layers(nodes, short_edges, full_layer)

    horizontal = direction == LEFT_TO_RIGHT

    def along(node: str) -> float:  # extent in the flow direction
        width, height = sizes.get(node, _DEFAULT_SIZE) if node in layer else (0.0, 0.0)
        return width if horizontal else height

    def across(node: str) -> float:  # extent across the flow
        if node not in layer:
            return 12.0  # a waypoint: a thin lane so that long edges do not run through nodes
        width, height = sizes.get(node, _DEFAULT_SIZE)
        return height if horizontal else width

    # Across-axis centres: pack each layer, then pull nodes towards their predecessors.
    preds: dict[str, list[str]] = {n: [] for n in full_layer}
    for src, dst in short_edges:
        preds[dst].append(src)
    centre: dict[str, float] = {}
    for members in layers:
        packed = []
        offset = 0.0
        for node in members:
            packed.append(offset + across(node) / 2)
            offset += across(node) + node_gap
        shift = -(offset - node_gap) / 2
        wanted = []
        for node, position in zip(members, packed):
            linked = [centre[p] for p in preds[node] if p in centre]
            wanted.append(sum(linked) / len(linked) if linked else position + shift)
        # Keep the order and the gaps: a forward pass pushes nodes apart where wishes collide,
        # then the whole layer shifts so that its mean displacement is zero.
        placed: list[float] = []
        for i, node in enumerate(members):
            value = wanted[i]
            if placed:
                minimum = placed[-1] + (across(members[i - 1]) + across(node)) / 2 + node_gap
                value = max(value, minimum)
            placed.append(value)
        drift = sum(p - w for p, w in zip(placed, wanted)) / len(placed)
        for node, value in zip(members, placed):
            centre[node] = value - drift

    real_layers = [[n for n in members if n in layer] for members in layers]
    depths = [max((along(n) for n in members), default=0.0) for members in real_layers]
    spans = [(min((centre[n] - across(n) / 2 for n in members), default=0.0),
              max((centre[n] + across(n) / 2 for n in members), default=0.0)) for members in real_layers]

    clean = _clean_cuts(real_layers, edge_list, layer)

    def place(per_band: int) -> tuple[dict[str, Point], float, float]:
        # Bands run as a snake (boustrophedon): every other band flows backwards and starts under the
        # end of the band before it, so two bands are joined by a short turn at one side, never by an
        # edge running back across the whole drawing. The canvas turns the nodes of a backwards band
        # around (inputs on the right), so their edges still run straight. Bands that differ in
        # length stay within the longest one: the turn then leans by the difference instead.
        bands = _bands(len(real_layers), per_band, clean)
        offsets: list[list[float]] = []  # per band, each layer's leading edge from the band's start
        lengths: list[float] = []
        for band in bands:
            at, starts = 0.0, []
            for i in band:
                starts.append(at)
                at += depths[i] + layer_gap
            offsets.append(starts)
            lengths.append(at - layer_gap)
        full = max(lengths)
        positions: dict[str, Point] = {}
        band_offset = 0.0
        anchor = 0.0  # where the previous band's last layer begins, along the flow
        for number, band in enumerate(bands):
            low = min(spans[i][0] for i in band)
            high = max(spans[i][1] for i in band)
            length = lengths[number]
            backwards = number % 2 == 1
            if backwards:  # the first layer (at the far end) goes under the anchor
                left = anchor + depths[band[0]] - length
            else:
                left = anchor
            left = min(max(left, 0.0), full - length)
            for i, start in zip(band, offsets[number]):
                lead = (left + length - start - depths[i]) if backwards else (left + start)
                for node in real_layers[i]:
                    cross = band_offset + centre[node] - across(node) / 2 - low
                    flow_at = lead + (depths[i] - along(node)) / 2
                    positions[node] = ((origin[0] + flow_at, origin[1] + cross) if horizontal
                                       else (origin[0] + cross, origin[1] + flow_at))
            last = band[-1]
            anchor = (left + length - offsets[number][-1] - depths[last]) if backwards else (left + offsets[number][-1])
            band_offset += high - low + band_gap
        return positions, full, band_offset - band_gap

    if viewport is not None:
        # Wrap the layers into bands so that the drawing's shape matches the viewport's:
        # the wrap that lets the whole drawing appear largest wins. Every wrap from one layer
        # per band to all of them is tried, so each try must not place the nodes: the
        # drawing's extents follow from prefix sums of the layers' depths and range minima
        # and maxima of their spans (a band count of n / per_band: n log n for all tries).
        extents = _BandExtents(depths, spans, layer_gap, band_gap)
        cut_ends = sorted(i + 1 for i in clean)

        def scale(per_band: int) -> float:
            bands = _bands(len(real_layers), per_band, clean, cut_ends)
            flow_extent, cross_extent = extents.measure(bands)
            width, height = (flow_extent, cross_extent) if horizontal else (cross_extent, flow_extent)
            width, height = width + 2 * margin, height + 2 * margin
            fit = min(viewport[0] / max(width, 1.0), viewport[1] / max(height, 1.0))
            # A wrap that cuts through a block (a skip connection or a branch crossing the
            # break) is much harder to read: it must be far larger to be preferred.
            rough = sum(1 for band in bands[:-1] if band[-1] not in clean)
            return fit * 0.6 ** rough

        wrap = max(range(len(real_layers), 0, -1), key=scale)
    return place(wrap or len(real_layers) or 1)[0]


def is_cramped(positions: Mapping[str, Point], sizes: Mapping[str, Size], nodes: Iterable[str],
               gap: float = 40.0) -> bool:
    """True if a node has no position, or two nodes sit closer than ``gap`` (edge labels would collide)."""
    boxes = []
    for node in nodes:
        if node not in positions:
            return True
        (x, y), (width, height) = positions[node], sizes.get(node, _DEFAULT_SIZE)
        if not all(math.isfinite(v) for v in (x, y, width, height)):
            return True
        boxes.append((x - gap / 2, y - gap / 2, x + width + gap / 2, y + height + gap / 2))
    if len(boxes) < 2:
        return False
    # A grid of cells as large as the largest box: two boxes that overlap lie in the same or
    # neighbouring cells, so each box is compared with a few others (a column of thousands
    # of nodes stays linear).
    cell_w = max(max(right - left for left, _, right, _ in boxes), 1e-9)
    cell_h = max(max(bottom - top for _, top, _, bottom in boxes), 1e-9)
    grid: dict[tuple[int, int], list[tuple[float, float, float, float]]] = {}
    for box in boxes:
        left, top, right, bottom = box
        col, row = math.floor(left / cell_w), math.floor(top / cell_h)
        for dc in (-1, 0, 1):
            for dr in (-1, 0, 1):
                for o_left, o_top, o_right, o_bottom in grid.get((col + dc, row + dr), ()):
                    if o_left < right and left < o_right and o_top < bottom and top < o_bottom:
                        return True
        grid.setdefault((col, row), []).append(box)
    return False


def _clean_cuts(layers: Sequence[Sequence[str]], edges: Sequence[tuple[str, str]],
                layer: Mapping[str, int]) -> set[int]:
    """Layer indices ``i`` after which the drawing may wrap without cutting through a block.

    A cut after layer ``i`` is clean when that layer holds a single node and every edge
    crossing the cut leaves that node: no skip connection or branch from further back
    jumps over it. Residual networks wrap between their blocks this way, the block
    input ending one row and its skip edge going to the next row's Add.
    """
    crossing: dict[int, list[tuple[str, str]]] = {}
    for src, dst in edges:
        for i in range(layer[src], layer[dst]):
            crossing.setdefault(i, []).append((src, dst))
    cuts = set()
    for i in range(len(layers) - 1):
        if len(layers[i]) != 1:
            continue
        (only,) = layers[i]
        if all(src == only for src, _ in crossing.get(i, ())):
            cuts.add(i)
    return cuts


def _bands(count: int, per_band: int, clean: set[int], cut_ends: Sequence[int] | None = None) -> list[range]:
    """Split ``count`` layers into bands of at most ``per_band``, ending bands at clean cuts
    where one lies in the second half of a band, else after ``per_band`` layers.

    ``cut_ends`` is ``sorted(i + 1 for i in clean)`` when the caller has it already.
    """
    if cut_ends is None:
        cut_ends = sorted(i + 1 for i in clean)
    bands = []
    start = 0
    while start < count:
        end = min(start + per_band, count)
        if end < count:
            # the last clean cut before ``end`` (a binary search: this runs for every wrap tried)
            at = bisect_left(cut_ends, end) - 1
            if at >= 0 and cut_ends[at] >= max(start + 1, start + per_band // 2):
                end = cut_ends[at]
        bands.append(range(start, end))
        start = end
    return bands


class _BandExtents:
    """The size of a wrapped drawing from its bands alone, without placing a node.

    Matches ``place`` in :func:`layered_layout`: along the flow, the longest band (its layers'
    depths and the gaps between them); across it, each band's span (lowest to highest node
    edge of its layers) plus the gaps between bands.
    """

    def __init__(self, depths: Sequence[float], spans: Sequence[tuple[float, float]], layer_gap: float,
                 band_gap: float) -> None:
        self.layer_gap, self.band_gap = layer_gap, band_gap
        self.prefix = [0.0]
        for depth in depths:
            self.prefix.append(self.prefix[-1] + depth + layer_gap)
        # Sparse tables: lows[k][i] is the least low end of layers i .. i + 2**k - 1, highs[k] the greatest high.
        self.lows = [[low for low, _ in spans]]
        self.highs = [[high for _, high in spans]]
        width = 1
        while 2 * width <= len(spans):
            lows, highs = self.lows[-1], self.highs[-1]
            self.lows.append([min(lows[i], lows[i + width]) for i in range(len(lows) - width)])
            self.highs.append([max(highs[i], highs[i + width]) for i in range(len(highs) - width)])
            width *= 2

    def measure(self, bands: Sequence[range]) -> tuple[float, float]:
        """``(extent along the flow, extent across it)`` of the drawing cut into ``bands``."""
        longest = 0.0
        across = 0.0
        for band in bands:
            start, stop = band.start, band.stop
            longest = max(longest, self.prefix[stop] - self.prefix[start] - self.layer_gap)
            level = (stop - start).bit_length() - 1
            low = min(self.lows[level][start], self.lows[level][stop - (1 << level)])
            high = max(self.highs[level][start], self.highs[level][stop - (1 << level)])
            across += high - low + self.band_gap
        return longest, across - self.band_gap

"""Benchmark of the shape engine and the compiler on a generated ~500-node ResNet-like graph.

Prints the median time of one edit (a ``set_param`` in the middle of the graph
followed by the incremental ``update()``), of a full inference (a fresh
``ShapeInference``) and of ``compile_graph``, each against its target, and how
many nodes the edit recomputed. It prints figures; it asserts nothing.

    python bench/shapes.py [--nodes 500] [--profile]

``--profile`` adds a cProfile listing of the edit and of the full inference.

Then, for 1,000 and 5,000 nodes (``--scale``), it opens a saved project whose edges are
listed from the output back to the input (the order that made the loader's cycle check
quadratic), infers its shapes and lays it out as the canvas's Auto-layout does (snake
wrap for the default canvas), against the target of 3 s for open + lay out at 5,000 nodes.
"""

from __future__ import annotations

import argparse
import cProfile
import json
import os
import pstats
import statistics
import tempfile
import time
from collections.abc import Callable

from dlstudio.core.autolayout import is_cramped, layered_layout
from dlstudio.core.graph import Graph
from dlstudio.core.project import Project, load_project, project_to_doc
from dlstudio.core.shapes import ShapeInference

# Per residual block: conv, bn, relu, conv, bn, add, relu.
_BLOCK_NODES = 7
# Between stages: max pooling, then a 1x1 conv (with bn and relu) that doubles the channels.
_TRANSITION_NODES = 4
_STAGES = 4
# Input, stem conv/bn/relu, and the classifier: global pooling, flatten, linear, output.
_FIXED_NODES = 4 + 4

TARGETS_MS = {"edit": 5.0, "full": 50.0, "compile": 500.0}
SCALE_SIZES = (1000, 5000)
SCALE_TARGET_S = 3.0  # open + lay out a 5,000-node project
# What dlstudio/gui/canvas/arrange.py passes (kept in step by hand: this benchmark imports no Qt).
CANVAS = {"viewport": (980.0, 580.0), "layer_gap": 92.0, "band_gap": 44.0, "node_gap": 28.0, "margin": 90.0}


class _Builder:
    """Appends nodes to a graph, each one fed by the previous one unless told otherwise."""

    def __init__(self, graph: Graph) -> None:
        self.graph = graph
        self.last = ""

    def add(self, type_id: str, params: dict | None = None, *, source: str | None = None) -> str:
        node_id = self.graph.add_node(type_id, params).id
        src = self.last if source is None else source
        if src:
            self.graph.connect(src, "out", node_id, "in")
        self.last = node_id
        return node_id

    def conv_bn_relu(self, channels: int, kernel: int = 3) -> str:
        self.add("Conv2d", {"out_channels": channels, "kernel_size": kernel, "padding": kernel // 2,
                            "bias": False})
        self.add("BatchNorm2d")
        return self.add("ReLU")

    def residual_block(self, channels: int) -> str:
        skip = self.last
        self.conv_bn_relu(channels)
        self.add("Conv2d", {"out_channels": channels, "padding": 1, "bias": False})
        branch = self.add("BatchNorm2d")
        add = self.graph.add_node("Add").id
        self.graph.connect(branch, "out", add, "in1")
        self.graph.connect(skip, "out", add, "in2")
        self.last = add
        return self.add("ReLU")


def residual_graph(target_nodes: int = 500, width: int = 8) -> Graph:
    """A chain of residual blocks in four pooled stages, ending in a classifier; about ``target_nodes`` nodes."""
    blocks = max(_STAGES, (target_nodes - _FIXED_NODES - (_STAGES - 1) * _TRANSITION_NODES) // _BLOCK_NODES)
    graph = Graph()
    build = _Builder(graph)
    build.add("Input", {"shape": [3, 32, 32]})
    build.conv_bn_relu(width)
    channels = width
    for stage in range(_STAGES):
        if stage:
            build.add("MaxPool2d")
            channels *= 2
            build.conv_bn_relu(channels, kernel=1)
        stage_blocks = blocks // _STAGES + (1 if stage < blocks % _STAGES else 0)
        for _ in range(stage_blocks):
            build.residual_block(channels)
    build.add("AdaptiveAvgPool2d")
    build.add("Flatten")
    build.add("Linear", {"out_features": 10})
    build.add("Output")
    return graph


def residual_chain_doc(target_nodes: int) -> dict:
    """The JSON graph of a chain of residual blocks, with explicit ids (built in linear time)."""
    graph = Graph()
    count = 0

    def add(type_id: str, params: dict | None = None, source: str | None = None) -> str:
        nonlocal count
        count += 1
        node_id = f"n{count}"
        graph.add_node(type_id, params, node_id=node_id, name=f"{type_id} {count}")
        if source:
            graph.connect(source, "out", node_id, "in")
        return node_id

    last = add("Input", {"shape": [8, 16, 16]})
    while count + 7 + 1 <= target_nodes:
        skip = last
        for type_id, params in (("Conv2d", {"out_channels": 8, "padding": 1}), ("BatchNorm2d", {}), ("ReLU", {}),
                                ("Conv2d", {"out_channels": 8, "padding": 1}), ("BatchNorm2d", {})):
            last = add(type_id, params, last)
        merge = add("Add")
        graph.connect(last, "out", merge, "in1")
        graph.connect(skip, "out", merge, "in2")
        last = add("ReLU", None, merge)
    while count < target_nodes - 1:
        last = add("ReLU", None, last)
    add("Output", None, last)
    return project_to_doc(Project(graph=graph))


def bench_scale(sizes: tuple[int, ...] = SCALE_SIZES) -> None:
    """Open + infer shapes + lay out large projects, edges listed in reverse (one run each: seconds)."""
    print(f"\nlarge projects (edges listed output-first; target: open + lay out {SCALE_SIZES[-1]:,} nodes "
          f"< {SCALE_TARGET_S:g} s)")
    for size in sizes:
        doc = residual_chain_doc(size)
        doc["graph"]["edges"].reverse()
        with tempfile.TemporaryDirectory() as folder:
            path = os.path.join(folder, "large.dlstudio")
            with open(path, "w", encoding="utf-8") as file:
                json.dump(doc, file)
            start = time.perf_counter()
            project = load_project(path)
            opened = time.perf_counter() - start
        graph = project.graph
        start = time.perf_counter()
        engine = ShapeInference(graph)
        engine.update()
        inferred = time.perf_counter() - start
        engine.close()
        start = time.perf_counter()
        positions = layered_layout(graph.topological_order(), [(e.src, e.dst) for e in graph.edges], sizes={},
                                   **CANVAS)
        overlap = is_cramped(positions, {}, graph.nodes, gap=0.0)  # what opening a project checks, and a sanity check
        laid_out = time.perf_counter() - start
        total = opened + laid_out
        verdict = "ok" if total < SCALE_TARGET_S else "MISSED"
        print(f"{len(graph):>6,} nodes: open {opened:6.2f} s   infer shapes {inferred:6.2f} s   lay out "
              f"{laid_out:6.2f} s   open + lay out {total:6.2f} s   {verdict}{'  (nodes overlap!)' if overlap else ''}")


def median_ms(action: Callable[[], object], repeat: int) -> float:
    times = []
    for _ in range(repeat):
        start = time.perf_counter()
        action()
        times.append(time.perf_counter() - start)
    return statistics.median(times) * 1000


def middle_conv(graph: Graph) -> str:
    order = graph.topological_order()
    return next(node_id for node_id in order[len(order) // 2:] if graph.node(node_id).type == "Conv2d")


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--nodes", type=int, default=500, help="approximate size of the generated graph")
    parser.add_argument("--profile", action="store_true", help="print a cProfile listing of edit and full inference")
    parser.add_argument("--scale", type=int, nargs="*", default=list(SCALE_SIZES),
                        help="node counts of the large-project case (none to skip it)")
    args = parser.parse_args(argv)

    graph = residual_graph(args.nodes)
    engine = ShapeInference(graph)
    totals = engine.totals()
    assert not totals.errors, totals.errors[0]
    print(f"graph: {len(graph)} nodes, {len(graph.edges)} edges, {totals.params:,} parameters, "
          f"{totals.macs:,} MACs per sample")

    conv = middle_conv(graph)
    recomputed: list[int] = []

    def edit() -> None:
        # Toggling the bias changes the parameter count but no shape, so every edit is alike.
        graph.set_param(conv, "bias", not graph.node(conv).params["bias"])
        recomputed.append(len(engine.update()))

    def full() -> None:
        fresh = ShapeInference(graph)
        fresh.update()
        fresh.close()

    from dlstudio.core.compiler import compile_graph  # torch: imported after the graph is built

    edit_ms = median_ms(edit, 300)
    full_ms = median_ms(full, 50)
    compile_graph(graph)  # warm-up: torch's first module construction pays one-off costs
    compile_ms = median_ms(lambda: compile_graph(graph), 10)

    results = {"edit": edit_ms, "full": full_ms, "compile": compile_ms}
    labels = {"edit": f"edit (set_param on {conv} + update)", "full": "full inference (fresh ShapeInference)",
              "compile": "compile_graph"}
    for key, value in results.items():
        target = TARGETS_MS[key]
        verdict = f"ok ({target / value:.1f}x headroom)" if value < target else "MISSED"
        print(f"{labels[key]:<40} {value:8.2f} ms   target < {target:>3g} ms   {verdict}")
    print(f"nodes recomputed by the edit: {statistics.median(recomputed):.0f} of {len(graph)}")

    if args.profile:
        for name, action in (("edit", edit), ("full inference", full)):
            profile = cProfile.Profile()
            profile.enable()
            for _ in range(20):
                action()
            profile.disable()
            print(f"\n--- cProfile: 20 x {name} ---")
            pstats.Stats(profile).sort_stats("cumulative").print_stats(12)
    engine.close()
    if args.scale:
        bench_scale(tuple(args.scale))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())

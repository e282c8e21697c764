"""Canvas benchmark: open a 300-node project, edit it, pan it; and the app's start-up time.

Prints medians and the targets of issue 3. Runs offscreen by default, so it
works on a machine without a display:

    python bench/canvas.py
"""

from __future__ import annotations

import os
import statistics
import subprocess
import sys
import tempfile
import time

os.environ.setdefault("QT_QPA_PLATFORM", "offscreen")

from PySide6.QtCore import QCoreApplication, QEvent, QObject, QPointF, QSettings  # noqa: E402
from PySide6.QtWidgets import QApplication  # noqa: E402

from dlstudio.core.graph import Graph  # noqa: E402
from dlstudio.core.layout import Layout  # noqa: E402
from dlstudio.core.project import Project  # noqa: E402

REPEATS = 7


def resnet_chain(blocks: int) -> Project:
    """Input, then ``blocks`` residual blocks (conv-bn-relu-conv-bn + skip, add, relu), then a classifier."""
    graph, layout = Graph(), Layout()
    column = 0

    def add(type_id: str, params: dict | None = None, row: int = 0) -> str:
        nonlocal column
        node = graph.add_node(type_id, params or {})
        layout.move(node.id, column * 280.0, row * 140.0)
        column += 1 if row == 0 else 0
        return node.id

    previous = add("Input", {"shape": [16, 16, 16]})
    for _ in range(blocks):
        start = previous
        chain = [add("Conv2d", {"out_channels": 16, "kernel_size": 3, "padding": 1}), add("BatchNorm2d"),
                 add("ReLU"), add("Conv2d", {"out_channels": 16, "kernel_size": 3, "padding": 1}),
                 add("BatchNorm2d")]
        graph.connect(start, "out", chain[0], "in")
        for a, b in zip(chain, chain[1:]):
            graph.connect(a, "out", b, "in")
        merge = add("Add")
        graph.connect(chain[-1], "out", merge, "in1")
        graph.connect(start, "out", merge, "in2")
        previous = add("ReLU")
        graph.connect(merge, "out", previous, "in")
    for type_id, params in (("AdaptiveAvgPool2d", {}), ("Flatten", {}), ("Linear", {"out_features": 10}),
                            ("Output", {})):
        node = add(type_id, params)
        graph.connect(previous, "out", node, "in")
        previous = node
    return Project(graph=graph, layout=layout)


class PaintProbe(QObject):
    """Notes when the viewport receives a Paint event."""

    def __init__(self) -> None:
        super().__init__()
        self.painted = False

    def eventFilter(self, watched: QObject, event: QEvent) -> bool:
        if event.type() == QEvent.Type.Paint:
            self.painted = True
        return False


def median_ms(samples: list[float]) -> float:
    return statistics.median(samples) * 1000


def bench_open(app: QApplication, project_factory) -> tuple[float, int]:
    from dlstudio.gui.main_window import MainWindow

    samples = []
    nodes = 0
    for _ in range(REPEATS):
        project = project_factory()
        nodes = len(project.graph)
        start = time.perf_counter()
        window = MainWindow(project)
        probe = PaintProbe()
        window.view.viewport().installEventFilter(probe)
        window.show()
        while not probe.painted:
            app.processEvents()
        samples.append(time.perf_counter() - start)
        window.undo_stack.setClean()
        window.close()
        window.deleteLater()
        QCoreApplication.sendPostedEvents(None, QEvent.Type.DeferredDelete)
    return median_ms(samples), nodes


def bench_edits(app: QApplication, project) -> dict[str, float]:
    from dlstudio.gui.main_window import MainWindow

    window = MainWindow(project)
    window.show()
    app.processEvents()
    graph = project.graph
    last_relu = [n for n in graph.nodes if graph.node(n).type == "ReLU"][-1]
    add, connect, undo = [], [], []
    for i in range(REPEATS * 3):
        start = time.perf_counter()
        node_id = window.add_layer("ReLU", QPointF(100.0 * i, 900.0))
        app.processEvents()
        add.append(time.perf_counter() - start)
        start = time.perf_counter()
        window.connect_ports(last_relu, "out", node_id, "in")
        app.processEvents()
        connect.append(time.perf_counter() - start)
        start = time.perf_counter()
        window.undo()
        app.processEvents()
        undo.append(time.perf_counter() - start)
    # A parameter change at the top re-infers the whole graph downstream: the worst single edit.
    first_conv = next(n for n in graph.nodes if graph.node(n).type == "Conv2d")
    param = []
    for i in range(REPEATS):
        start = time.perf_counter()
        window.set_param(first_conv, "out_channels", 16 if i % 2 else 32)
        app.processEvents()
        param.append(time.perf_counter() - start)
    window.undo_stack.setClean()
    window.close()
    window.deleteLater()
    QCoreApplication.sendPostedEvents(None, QEvent.Type.DeferredDelete)
    return {"add node": median_ms(add), "connect": median_ms(connect), "undo": median_ms(undo),
            "param change upstream": median_ms(param)}


def bench_pan(app: QApplication, project, frames: int = 120) -> float:
    from dlstudio.gui.main_window import MainWindow

    window = MainWindow(project)
    window.resize(1400, 900)
    window.show()
    app.processEvents()
    view = window.view
    view.resetTransform()  # 1:1 zoom: the most items' detail to paint
    view.centerOn(0, 0)
    app.processEvents()
    start = time.perf_counter()
    for i in range(frames):
        view.pan_by(12, 3 if (i // 30) % 2 == 0 else -3)
        view.viewport().repaint()
    elapsed = time.perf_counter() - start
    window.undo_stack.setClean()
    window.close()
    window.deleteLater()
    QCoreApplication.sendPostedEvents(None, QEvent.Type.DeferredDelete)
    return frames / elapsed


_STARTUP = r"""
import os, sys, time
from PySide6.QtCore import QEvent, QObject, QTimer
from PySide6.QtWidgets import QApplication
from dlstudio.gui.settings import apply_identity
app = QApplication([])
apply_identity("dlstudio-bench", "dlstudio-bench")
from dlstudio.gui.main_window import MainWindow
window = MainWindow()
class Probe(QObject):
    def eventFilter(self, obj, event):
        if event.type() == QEvent.Type.Paint:
            print(f"{time.time() - float(sys.argv[1]):.4f} {'torch' in sys.modules}", flush=True)
            os._exit(0)
        return False
probe = Probe()
window.view.viewport().installEventFilter(probe)
window.show()
app.exec()
"""


def bench_startup() -> tuple[float, bool]:
    """Seconds from process start to the canvas's first paint, and whether torch was loaded by then."""
    samples, torch_loaded = [], False
    with tempfile.TemporaryDirectory() as home:
        env = {**os.environ, "XDG_CONFIG_HOME": home}
        for _ in range(REPEATS):
            out = subprocess.run([sys.executable, "-c", _STARTUP, repr(time.time())], capture_output=True,
                                 text=True, env=env, timeout=60, check=True).stdout.split()
            samples.append(float(out[0]))
            torch_loaded |= out[1] == "True"
    return statistics.median(samples), torch_loaded


def main() -> int:
    app = QApplication.instance() or QApplication([])
    with tempfile.TemporaryDirectory() as folder:
        QSettings.setDefaultFormat(QSettings.Format.IniFormat)
        QSettings.setPath(QSettings.Format.IniFormat, QSettings.Scope.UserScope, folder)
        from dlstudio.gui.settings import apply_identity

        apply_identity("dlstudio-bench", "dlstudio-bench")
        blocks = 42  # 1 + 42 * 7 + 4 = 299 nodes, 42 skip connections
        open_ms, nodes = bench_open(app, lambda: resnet_chain(blocks))
        edits = bench_edits(app, resnet_chain(blocks))
        fps = bench_pan(app, resnet_chain(blocks))
    startup, torch_loaded = bench_startup()

    print(f"canvas benchmark ({QApplication.platformName()}, median of {REPEATS})")
    print(f"  open {nodes}-node project to first paint: {open_ms:7.1f} ms   (target < 1000 ms)")
    for name, value in edits.items():
        print(f"  edit: {name:<22}        {value:7.1f} ms   (target < 30 ms)")
    print(f"  programmatic panning:                {fps:7.1f} fps  (target >= 30 fps)")
    print(f"  process start to window painted:     {startup * 1000:7.1f} ms   (target < 1000 ms warm)")
    print(f"  torch imported before first paint:   {torch_loaded}        (target: False)")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())

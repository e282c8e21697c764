"""Live plots benchmark: what one update costs the GUI thread, drawing included.

Prints medians in milliseconds for:
- CurvesView: append a 20-batch chunk to a curve already holding 10k / 100k
  points, then redraw (setData + a synchronous repaint of the view), in an
  800×600 view (plots stacked) and a 900×300 one (a short Metrics dock: side
  by side);
- FiltersView: set_weights for 6, 16 and 64 filters (mosaic + setImage + repaint);
- ConfusionView: set_matrix for 10×10 (colours, 100 counts, repaint), and the
  first set_matrix of a new view (what a person waits for after the first
  validated epoch), its median over fresh views.

A redraw budget at 30 Hz is 33 ms; training shares the two cores, so an
update should stay well under 10 ms. Runs offscreen:

    python bench/plots.py
"""

from __future__ import annotations

import os
import statistics
import time
from collections.abc import Callable

os.environ.setdefault("QT_QPA_PLATFORM", "offscreen")

import numpy as np  # noqa: E402
from PySide6.QtCore import QEvent, QObject  # noqa: E402
from PySide6.QtWidgets import QApplication, QWidget  # noqa: E402

from dlstudio.gui.plots.confusion import ConfusionView  # noqa: E402
from dlstudio.gui.plots.curves import CurvesView  # noqa: E402
from dlstudio.gui.plots.filters import FiltersView  # noqa: E402

REPEATS = 41
CHUNK = 20


class _PaintCounter(QObject):
    """Counts paint events on a widget, to check that a timed update was really drawn."""

    def __init__(self, widget: QWidget) -> None:
        super().__init__(widget)
        self.paints = 0
        widget.installEventFilter(self)

    def eventFilter(self, watched: QObject, event: QEvent) -> bool:
        if event.type() == QEvent.Type.Paint:
            self.paints += 1
        return False


def median_ms(action: Callable[[], None], viewport: QWidget, repeats: int = REPEATS) -> float:
    """Median wall time of ``action`` plus the event loop's turn that draws it, after two warm-up rounds."""
    counter = _PaintCounter(viewport)
    QApplication.processEvents()
    times = []
    for index in range(repeats + 2):
        start = time.perf_counter()
        action()
        QApplication.processEvents()  # the scene's dirty items, then one paint of the viewport
        if index >= 2:
            times.append((time.perf_counter() - start) * 1000.0)
    if counter.paints < repeats:
        raise RuntimeError(f"only {counter.paints} paints in {repeats + 2} updates: the timing missed the drawing")
    return statistics.median(times)


def bench_curves(points: int, size: tuple[int, int] = (800, 600)) -> float:
    view = CurvesView()
    view.resize(*size)
    view.show()
    QApplication.processEvents()
    batches_per_epoch = 1000
    xs = np.arange(1, points + 1) / batches_per_epoch
    view.add_batches(xs, 2.0 * np.exp(-xs / 20) + np.random.default_rng(0).normal(0, 0.05, points))
    for epoch in range(1, int(xs[-1]) + 1):
        view.add_epoch({"epoch": epoch, "train_loss": 1.0 / epoch, "train_accuracy": 0.9, "val_loss": 1.1 / epoch,
                        "val_accuracy": 0.88, "learning_rate": 0.001})
    view.flush()
    position = [float(xs[-1])]

    def feed() -> None:
        chunk = position[0] + np.arange(1, CHUNK + 1) / batches_per_epoch
        position[0] = float(chunk[-1])
        view.add_batches(chunk, np.full(CHUNK, 0.3))
        view.flush()

    result = median_ms(feed, view._canvas.viewport())
    view.close()
    return result


def bench_filters(shape: tuple[int, int, int, int]) -> float:
    view = FiltersView()
    view.resize(500, 450)
    view.show()
    rng = np.random.default_rng(0)
    weights = [rng.normal(size=shape).astype(np.float32) for _ in range(4)]
    counter = [0]

    def update() -> None:
        counter[0] += 1
        view.set_weights(weights[counter[0] % len(weights)])

    result = median_ms(update, view._view.viewport())
    view.close()
    return result


def bench_confusion(classes: int) -> float:
    view = ConfusionView()
    view.resize(500, 480)
    view.show()
    rng = np.random.default_rng(0)
    matrices = [(np.diag(rng.integers(30, 40, classes)) + rng.integers(0, 3, (classes, classes))).tolist()
                for _ in range(4)]
    names = [str(index) for index in range(classes)]
    counter = [0]

    def update() -> None:
        counter[0] += 1
        view.set_matrix(matrices[counter[0] % len(matrices)], names)

    result = median_ms(update, view.viewport())
    view.close()
    return result


def bench_first_confusion(classes: int, views: int = 9) -> float:
    """Median ms of the first set_matrix of a fresh, shown view, drawing included."""
    rng = np.random.default_rng(0)
    names = [str(index) for index in range(classes)]
    times = []
    for _ in range(views):
        view = ConfusionView()
        view.resize(500, 480)
        view.show()
        QApplication.processEvents()
        matrix = (np.diag(rng.integers(30, 40, classes)) + rng.integers(0, 3, (classes, classes))).tolist()
        start = time.perf_counter()
        view.set_matrix(matrix, names)
        QApplication.processEvents()
        times.append((time.perf_counter() - start) * 1000.0)
        view.close()
        view.deleteLater()
    return statistics.median(times)


def main() -> None:
    app = QApplication.instance() or QApplication([])
    print(f"median ms per update, drawing included ({REPEATS} repeats)")
    for width, height in ((800, 600), (900, 300)):
        for points in (10_000, 100_000):
            print(f"  curves {width}×{height}: add {CHUNK} batches + redraw, {points:>7,} points: "
                  f"{bench_curves(points, (width, height)):6.2f}")
    for shape in ((6, 1, 5, 5), (16, 6, 5, 5), (64, 64, 3, 3)):
        print(f"  filters: set_weights {str(shape):>16}:                {bench_filters(shape):6.2f}")
    print(f"  confusion: set_matrix 10×10:                           {bench_confusion(10):6.2f}")
    print(f"  confusion: first set_matrix 10×10 of a new view:       {bench_first_confusion(10):6.2f}")
    app.processEvents()


if __name__ == "__main__":
    main()

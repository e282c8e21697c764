"""Import benchmark: a torchvision architecture to an editable graph, and that graph to a painted canvas.

Prints medians (issue 12's target: under 2 s from import to a painted canvas for resnet50 and
efficientnet_b0). The first import in a process also pays for loading torchvision; it is timed apart.
Runs offscreen by default:

    python bench/import.py [--models resnet50,efficientnet_b0] [--repeats 5]
"""

from __future__ import annotations

import argparse
import os
import statistics
import sys
import tempfile
import time
from pathlib import Path

os.environ.setdefault("QT_QPA_PLATFORM", "offscreen")
sys.path.insert(0, str(Path(__file__).resolve().parent))

from canvas import PaintProbe  # noqa: E402  (the canvas benchmark's paint probe)
from PySide6.QtCore import QCoreApplication, QEvent, QSettings  # noqa: E402
from PySide6.QtWidgets import QApplication  # noqa: E402


def time_import(name: str) -> tuple[float, object]:
    from dlstudio.core.importer import import_torchvision

    start = time.perf_counter()
    result = import_torchvision(name, num_classes=10)
    return time.perf_counter() - start, result


def time_canvas(app: QApplication, project) -> float:
    """Seconds from building the window on ``project`` to the canvas's first paint."""
    from dlstudio.gui.main_window import MainWindow

    start = time.perf_counter()
    window = MainWindow(project)
    window.resize(1600, 1000)
    probe = PaintProbe()
    window.view.viewport().installEventFilter(probe)
    window.show()
    while not probe.painted:
        app.processEvents()
    elapsed = time.perf_counter() - start
    window.undo_stack.setClean()
    window.data_panel.cancel_loading()
    window.training.wait_for_background()
    window.close()
    window.deleteLater()
    QCoreApplication.sendPostedEvents(None, QEvent.Type.DeferredDelete)
    return elapsed


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--models", default="resnet50,efficientnet_b0")
    parser.add_argument("--repeats", type=int, default=5)
    args = parser.parse_args()
    app = QApplication.instance() or QApplication([])
    QSettings.setDefaultFormat(QSettings.Format.IniFormat)
    QSettings.setPath(QSettings.Format.IniFormat, QSettings.Scope.UserScope, tempfile.mkdtemp())

    start = time.perf_counter()
    import torchvision  # noqa: F401  (timed on its own: paid once per process)

    print(f"import benchmark (offscreen, median of {args.repeats}); loading torchvision: "
          f"{time.perf_counter() - start:.2f} s (once per process)")
    for name in args.models.split(","):
        imports, canvases, nodes = [], [], 0
        for _ in range(args.repeats):
            seconds, result = time_import(name)
            imports.append(seconds)
            nodes = len(result.project.graph)
            canvases.append(time_canvas(app, result.project))
        total = statistics.median(imports) + statistics.median(canvases)
        print(f"  {name:18s} {nodes:4d} nodes   import {statistics.median(imports):5.2f} s   "
              f"canvas painted {statistics.median(canvases):5.2f} s   total {total:5.2f} s   (target < 2 s)")
    return 0


if __name__ == "__main__":
    sys.exit(main())

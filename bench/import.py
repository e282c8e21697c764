"""Import benchmark: a torchvision architecture to an editable graph, that graph to a painted canvas, and
one epoch of fine-tuning it.

Prints medians (issue 12's target: under 2 s from import to a painted canvas for resnet50 and
efficientnet_b0). The first import in a process also pays for loading torchvision; it is timed apart.

The fine-tuning half (issue 12's target: >= 0.97x) trains an imported network with its backbone frozen (only
the classifier learns; frozen BatchNorms in eval mode) on synthetic images, batch 32, through dlstudio's
Trainer and through a hand-written loop on the same frozen model, with a second copy of the hand loop as the
A/A control; each variant runs in a process of its own and the variants run interleaved in chunks of a tenth
of an epoch (bench/interleave.py, bench/train.py's method, see shared/performance.md), the first epoch is
warm-up. Runs offscreen by default:

    python bench/import.py [--models resnet50,efficientnet_b0] [--repeats 5]
                           [--finetune mobilenet_v3_small] [--finetune-size 64] [--finetune-samples 1280]
                           [--finetune-epochs 3] [--no-canvas]
"""

from __future__ import annotations

import argparse
import os
import statistics
import sys
import tempfile
import time
from dataclasses import dataclass
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


def frozen_backbone(name: str, size: int) -> tuple[object, list[str]]:
    """``name`` imported for 10 classes at a ``size`` x ``size`` Input; the ids of its frozen backbone nodes
    (every node with weights outside torchvision's classifier / fc head)."""
    from dlstudio.core.importer import import_torchvision

    result = import_torchvision(name, num_classes=10)
    graph = result.project.graph
    source = next(node for node in graph if node.type == "Input")
    graph.set_param(source.id, "shape", [3, size, size])
    owners = {key.partition(".")[0]: target for key, target in result.key_map.items()}
    frozen = [node_id for node_id, target in owners.items() if not target.startswith(("classifier", "fc."))]
    return graph, frozen


@dataclass
class FinetuneCase:
    """What every fine-tuning variant trains: the imported network (seed 0), its frozen backbone, samples."""

    model: object
    frozen: list[str]
    data: object
    batch_size: int
    epochs: int


def build_finetune_case(name: str, size: int, samples: int, batch_size: int, epochs: int) -> FinetuneCase:
    """Built in each variant's process (bench/interleave.py), the same in every one (same seeds)."""
    from train import seeded_model_and_data

    graph, frozen = frozen_backbone(name, size)
    model, data = seeded_model_and_data(graph, samples)
    return FinetuneCase(model, frozen, data, batch_size, epochs)


def hand_finetune_variant(case: FinetuneCase, progress: object, report: dict, channels_last: bool = False):  # noqa: ANN201
    """The reference: the frozen backbone written out by hand, by bench/train.py's slicing loop."""
    from train import slicing_loop

    train = case.data.train
    return slicing_loop(case.model, train.x, train.y, case.batch_size, case.epochs, channels_last=channels_last,
                        frozen=case.frozen)


def trainer_finetune_variant(case: FinetuneCase, progress: object, report: dict, chunk_done) -> None:  # noqa: ANN001
    """dlstudio's Trainer with the same nodes frozen, on the process's main thread as ``dlstudio train`` runs it;
    ``report`` receives the layout it ended in (its tuner may switch to channels-last on a long enough run)."""
    from train import train_headless

    train_headless(case.model, case.data, case.batch_size, case.epochs, chunk_done, notes=report,
                   frozen=case.frozen)


def time_finetune(name: str, size: int, samples: int, epochs: int,
                  batch_size: int = 32) -> tuple[dict[str, float], dict[str, dict]]:
    """Samples/s of one fine-tuning epoch per variant, each in its own process, chunks interleaved (the order
    turning each round); and each variant's report."""
    from interleave import Variant, run_interleaved

    variants = [Variant("reference", hand_finetune_variant), Variant("reference-A/A", hand_finetune_variant),
                Variant("channels-last", hand_finetune_variant, (True,)),
                Variant("trainer", trainer_finetune_variant, drives=True)]
    timings = run_interleaved(variants, build_finetune_case, (name, size, samples, batch_size, epochs), epochs)
    return timings.samples_per_second(samples), timings.reports


def print_finetune(args: argparse.Namespace) -> None:
    rates, reports = time_finetune(args.finetune, args.finetune_size, args.finetune_samples, args.finetune_epochs)
    # Ratios to the faster hand-written loop, as bench/train.py gives them.
    faster = max(("reference", "channels-last"), key=rates.__getitem__)
    print(f"fine-tuning {args.finetune} at 3x{args.finetune_size}x{args.finetune_size}, batch 32, backbone frozen, "
          f"{args.finetune_samples} synthetic samples, {args.finetune_epochs - 1} measured epoch(s) "
          f"(chunks of 1/10 epoch, interleaved, one process per variant); ratios to the faster hand loop ({faster}):")
    for variant, rate in rates.items():
        switches = reports[variant]["switches per chunk"]
        print(f"  {variant:14s} {rate:8.1f} samples/s   {rate / rates[faster]:5.3f}x   {switches:5.0f} context switches "
              "a chunk" + ("   (target >= 0.97x)" if variant == "trainer" else ""))
    print(f"  the trainer ended in {reports['trainer'].get('layout', '?')}")


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--models", default="resnet50,efficientnet_b0")
    parser.add_argument("--repeats", type=int, default=5)
    parser.add_argument("--finetune", default="mobilenet_v3_small", help="the model fine-tuned ('' to skip)")
    parser.add_argument("--finetune-size", type=int, default=64, help="Input height and width")
    parser.add_argument("--finetune-samples", type=int, default=1280)
    parser.add_argument("--finetune-epochs", type=int, default=3, help="epochs (the first is warm-up)")
    parser.add_argument("--no-canvas", action="store_true", help="skip the import and canvas half")
    args = parser.parse_args()
    if args.no_canvas:
        if args.finetune:
            print_finetune(args)
        return 0
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
    if args.finetune:
        print_finetune(args)
    return 0


if __name__ == "__main__":
    sys.exit(main())

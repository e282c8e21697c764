"""Import benchmark: a torchvision architecture to an editable graph, that graph to a painted canvas, and
one epoch of fine-tuning it.

Prints medians (issue 12's target: under 2 s from import to a painted canvas for resnet50 and
efficientnet_b0). The first import in a process also pays for loading torchvision; it is timed apart.

The fine-tuning half (issue 12's target: >= 0.97x) trains an imported network with its backbone frozen (only
the classifier learns; frozen BatchNorms in eval mode) on synthetic images, batch 32, through dlstudio's
Trainer and through a hand-written loop on the same frozen model, with a second copy of the hand loop as the
A/A control; the variants run interleaved in chunks of a tenth of an epoch (bench/train.py's method, see
shared/performance.md), the first epoch is warm-up. Runs offscreen by default:

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


def hand_finetune_loop(model, frozen: list[str], x, y, batch_size: int, epochs: int,  # noqa: ANN001, ANN201
                       channels_last: bool = False):
    """The reference: the frozen backbone written out by hand, by bench/train.py's slicing loop."""
    from train import slicing_loop

    return slicing_loop(model, x, y, batch_size, epochs, channels_last=channels_last, frozen=frozen)


def trainer_finetune_loop(model, frozen: list[str], data, batch_size: int, epochs: int,  # noqa: ANN001, ANN201
                          notes: dict[str, str]):
    """dlstudio's Trainer with the same nodes frozen, on a thread, one chunk at a time (bench/train.py's hand-off);
    ``notes`` receives the layout it ended in (its tuner may switch to channels-last on a long enough run)."""
    import threading

    from train import _HandOff, layout_note

    from dlstudio.core.training import TrainConfig, Trainer

    config = TrainConfig.from_settings({"optimizer": "adam", "learning_rate": 1e-3, "batch_size": batch_size,
                                        "epochs": epochs, "device": "cpu"})
    handoff = _HandOff(-(-len(data.train) // batch_size))
    trainer = Trainer(model, data, config, callbacks=[handoff], frozen=frozen)
    done = threading.Event()

    def work() -> None:
        try:
            trainer.fit()
            notes["layout"] = layout_note(trainer)
        finally:
            done.set()
            handoff.to_main.release()

    thread = threading.Thread(target=work, daemon=True)
    thread.start()
    handoff.to_main.acquire()
    while not done.is_set():
        yield
        handoff.to_worker.release()
        handoff.to_main.acquire()
    thread.join()


def time_finetune(name: str, size: int, samples: int, epochs: int, notes: dict[str, str],
                  batch_size: int = 32) -> dict[str, float]:
    """Samples/s of one fine-tuning epoch per variant (chunks interleaved, the order turning each round)."""
    import copy

    import torch
    from train import CHUNKS_PER_EPOCH

    from dlstudio.core.compiler import compile_graph
    from dlstudio.core.data import DataRequirements, LabeledTensors, prepare_data

    graph, frozen = frozen_backbone(name, size)
    torch.manual_seed(0)
    model = compile_graph(graph)
    requirements = DataRequirements.from_model(model)
    generator = torch.Generator().manual_seed(0)
    raw = LabeledTensors(torch.rand((samples, *requirements.input_shape), generator=generator),
                         torch.randint(0, 10, (samples,), generator=generator), [str(i) for i in range(10)])
    data = prepare_data({"val_fraction": 0.0, "test_fraction": 0.0}, requirements, data=raw)
    x, y = data.train.x, data.train.y
    fresh = lambda: copy.deepcopy(model)  # noqa: E731 - every variant starts from the same weights
    running = {"reference": hand_finetune_loop(fresh(), frozen, x, y, batch_size, epochs),
               "reference-A/A": hand_finetune_loop(fresh(), frozen, x, y, batch_size, epochs),
               "channels-last": hand_finetune_loop(fresh(), frozen, x, y, batch_size, epochs, channels_last=True),
               "trainer": trainer_finetune_loop(fresh(), frozen, data, batch_size, epochs, notes)}
    times: dict[str, list[list[float]]] = {variant: [[] for _ in range(CHUNKS_PER_EPOCH)] for variant in running}
    for epoch in range(epochs):
        for position in range(CHUNKS_PER_EPOCH):
            names = list(running)
            turn = (epoch * CHUNKS_PER_EPOCH + position) % len(names)
            for variant in names[turn:] + names[:turn]:
                started = time.perf_counter()
                next(running[variant])
                if epoch > 0:  # the first epoch warms up caches, allocators and oneDNN kernels
                    times[variant][position].append(time.perf_counter() - started)
    for steps in running.values():
        for _ in steps:
            pass
    return {variant: samples / sum(statistics.median(chunk) for chunk in chunks) for variant, chunks in times.items()}


def print_finetune(args: argparse.Namespace) -> None:
    notes: dict[str, str] = {}
    rates = time_finetune(args.finetune, args.finetune_size, args.finetune_samples, args.finetune_epochs, notes)
    # Ratios to the faster hand-written loop, as bench/train.py gives them.
    faster = max(("reference", "channels-last"), key=rates.__getitem__)
    print(f"fine-tuning {args.finetune} at 3x{args.finetune_size}x{args.finetune_size}, batch 32, backbone frozen, "
          f"{args.finetune_samples} synthetic samples, {args.finetune_epochs - 1} measured epoch(s) "
          f"(chunks of 1/10 epoch, interleaved); ratios to the faster hand loop ({faster}):")
    for variant, rate in rates.items():
        print(f"  {variant:14s} {rate:8.1f} samples/s   {rate / rates[faster]:5.3f}x"
              + ("   (target >= 0.97x)" if variant == "trainer" else ""))
    print(f"  the trainer ended in {notes.get('layout', '?')}")


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

"""Training throughput: the dlstudio trainer (headless) against hand-written PyTorch loops.

For the lenet5 and mlp templates on 28x28 inputs (60,000 in-memory samples
by default) at batch 64 and 256, it times, in one process:

  reference      a hand-written loop slicing X[idx], y[idx] by a shuffled index (no DataLoader)
  reference-A/A  the same loop again: the noise control (expect 0.95-1.05)
  channels-last  the reference with model and inputs in channels-last layout (conv models only)
  dataloader     DataLoader(TensorDataset, shuffle=True)
  trainer        dlstudio's Trainer, headless (metrics on the device, as in `dlstudio train`)
  trainer+hooks  the Trainer inside the GUI's TrainingWorker (its reporter callback, throttled signals),
                 nothing consuming the reports while it trains: the cost of the GUI's per-batch hooks
  trainer+GUI    the same, with the GUI attached: an offscreen window's curves and filters fed by the
                 worker's signals, the main thread running its event loop while the worker trains

The GUI variants (--gui, the default; --no-gui leaves them out) also print the main thread's
event-loop delay during training (a 10 ms probe timer) and the curves' redraw rate.

Variants run interleaved in chunks of a tenth of an epoch, round-robin in an
order that turns by one each round, so a slow spell of this shared machine
hits them alike and no variant always follows the same one. The first epoch is warm-up; a variant's epoch time is the sum over
chunk positions of the median across the measured epochs. Prints samples/s
and ratios to the faster hand-written loop (reference or channels-last).

    python bench/train.py [--quick] [--no-gui] [--epochs 3] [--samples 60000] [--models lenet5,mlp]
                          [--batch-sizes 64,256]
"""

from __future__ import annotations

import argparse
import copy
import os
import statistics
import sys
import threading
import time
from collections.abc import Callable, Iterator, Sequence
from pathlib import Path
from typing import Any

import torch
from torch.nn import functional

from dlstudio.core.compiler import compile_graph
from dlstudio.core.data import DataRequirements, LabeledTensors, prepare_data
from dlstudio.core.project import load_template
from dlstudio.core.training import Callback, TrainConfig, Trainer
from dlstudio.core.training.host_memory import tune_host_allocator

CHUNKS_PER_EPOCH = 10
QUICK_SAMPLES = 15_000
Variant = Callable[[], Iterator[None]]  # a generator that yields after every chunk


def chunk_bounds(batches: int) -> list[int]:
    """Batch index where each chunk ends."""
    return [round(batches * (i + 1) / CHUNKS_PER_EPOCH) for i in range(CHUNKS_PER_EPOCH)]


def slicing_loop(model: torch.nn.Module, x: torch.Tensor, y: torch.Tensor, batch_size: int, epochs: int,
                 channels_last: bool = False, frozen: Sequence[str] = ()) -> Iterator[None]:
    """The reference: shuffle an index each epoch, slice the in-memory tensors.

    ``frozen`` names submodules written out by hand as a frozen backbone is: requires_grad off, eval mode,
    only the trainable parameters in Adam (the fine-tuning benchmark's reference).
    """
    if channels_last:
        model = model.to(memory_format=torch.channels_last)
        x = x.contiguous(memory_format=torch.channels_last)
    for name in frozen:
        getattr(model, name).requires_grad_(False)
    optimizer = torch.optim.Adam([p for p in model.parameters() if p.requires_grad], lr=1e-3)
    n = len(x)
    batches = -(-n // batch_size)
    ends = set(chunk_bounds(batches))
    model.train()
    for name in frozen:
        getattr(model, name).eval()
    for _ in range(epochs):
        permutation = torch.randperm(n)
        for b in range(batches):
            index = permutation[b * batch_size:(b + 1) * batch_size]
            loss = functional.cross_entropy(model(x[index]), y[index])
            optimizer.zero_grad(set_to_none=True)
            loss.backward()
            optimizer.step()
            if b + 1 in ends:
                yield


def dataloader_loop(model: torch.nn.Module, x: torch.Tensor, y: torch.Tensor, batch_size: int,
                    epochs: int) -> Iterator[None]:
    from torch.utils.data import DataLoader, TensorDataset

    optimizer = torch.optim.Adam(model.parameters(), lr=1e-3)
    loader = DataLoader(TensorDataset(x, y), batch_size=batch_size, shuffle=True)
    ends = set(chunk_bounds(len(loader)))
    model.train()
    for _ in range(epochs):
        for b, (xb, yb) in enumerate(loader):
            loss = functional.cross_entropy(model(xb), yb)
            optimizer.zero_grad(set_to_none=True)
            loss.backward()
            optimizer.step()
            if b + 1 in ends:
                yield


class _HandOff(Callback):
    """Runs the trainer's thread one chunk at a time: it and the main thread never compute together."""

    def __init__(self, batches: int) -> None:
        self.ends = set(chunk_bounds(batches))
        self.to_main = threading.Semaphore(0)
        self.to_worker = threading.Semaphore(0)

    def on_batch_end(self, trainer: Trainer, batch: Any) -> None:
        if batch.batch in self.ends:
            self.to_main.release()
            self.to_worker.acquire()


def layout_note(trainer: Trainer) -> str:
    """The layout a trainer ended in, and what its tuner measured."""
    layout = "channels-last" if trainer.channels_last else "contiguous"
    tuner = trainer.layout_tuner
    if tuner is None or tuner.speedup is None:
        return f"{layout} (not compared)"
    ratios = ", ".join(f"{ratio:.2f}" for ratio in tuner.ratios)
    return f"{layout} (channels-last ran {tuner.speedup:.2f}x as fast, median of the last pairs: {ratios})"


def trainer_loop(model: torch.nn.Module, data: Any, batch_size: int, epochs: int,
                 callbacks: Sequence[Callback] = (), notes: dict[str, str] | None = None) -> Iterator[None]:
    """dlstudio's Trainer on a thread, one chunk at a time; ``callbacks`` ride along (a GUI-attached variant
    passes its worker's bridge here). ``notes`` receives the layout the trainer ended in."""
    config = TrainConfig.from_settings({"optimizer": "adam", "learning_rate": 1e-3, "batch_size": batch_size,
                                        "epochs": epochs, "device": "cpu"})
    handoff = _HandOff(-(-len(data.train) // batch_size))
    trainer = Trainer(model, data, config, callbacks=[*callbacks, handoff])
    done = threading.Event()

    def work() -> None:
        try:
            trainer.fit()
            if notes is not None:
                notes["layout"] = layout_note(trainer)
        finally:
            done.set()
            handoff.to_main.release()

    thread = threading.Thread(target=work, daemon=True)
    thread.start()
    handoff.to_main.acquire()  # the first chunk has run
    while not done.is_set():
        yield
        handoff.to_worker.release()
        handoff.to_main.acquire()
    thread.join()


# -- the GUI attached ---------------------------------------------------------------------------------------------
# Only with --gui (the default): PySide6 and pyqtgraph are imported then, on an offscreen platform.

PROBE_INTERVAL_MS = 10  # the main thread's event-loop delay is sampled by a timer this often


def _percentile(values: Sequence[float], fraction: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(fraction * len(ordered)))] if ordered else float("nan")


class AttachedGui:
    """An offscreen window with the Metrics dock's curves and filters, fed as TrainingController feeds them.

    The main thread runs its event loop only during the GUI-attached variant's chunks (``spin``), with a
    10 ms probe timer measuring how late the loop answers; between chunks the other variants use the CPU.
    """

    def __init__(self) -> None:
        os.environ.setdefault("QT_QPA_PLATFORM", "offscreen")
        from PySide6.QtCore import QEventLoop, Qt, QTimer
        from PySide6.QtWidgets import QApplication, QHBoxLayout, QWidget

        from dlstudio.gui.plots.curves import CurvesView
        from dlstudio.gui.plots.filters import FiltersView

        self.app = QApplication.instance() or QApplication([])
        # The offscreen platform warns on every window shown that it cannot propagate size hints: noise here.
        from PySide6.QtCore import qInstallMessageHandler

        previous = qInstallMessageHandler(None)

        def quiet(kind: Any, context: Any, message: str) -> None:
            if "propagateSizeHints" not in message:
                if previous is not None:
                    previous(kind, context, message)
                else:
                    print(message, file=sys.stderr)

        qInstallMessageHandler(quiet)
        self.window = QWidget()
        layout = QHBoxLayout(self.window)
        self.curves = CurvesView()
        self.filters = FiltersView()
        layout.addWidget(self.curves, 3)
        layout.addWidget(self.filters, 2)
        # The size the Metrics dock has in the window's default layout (its curves get about 960 x 265 there).
        self.window.resize(1600, 300)
        self.window.show()
        self.loop = QEventLoop()
        self.probe = QTimer()
        self.probe.setTimerType(Qt.TimerType.PreciseTimer)
        self.probe.setSingleShot(True)
        self.probe.timeout.connect(self._on_probe)
        self._armed = 0.0
        self.measuring = False  # set by run_case: the warm-up epoch and the final drain are left out
        self.delays: list[float] = []
        self.seconds = 0.0
        self.redraws = 0
        self.filter_updates = 0
        self.cpu_seconds = 0.0  # the main thread's own CPU time while measuring

    # -- feeding, as TrainingController does ------------------------------------------------------------

    def attach(self, worker: Any, run_name: str, epochs: int, conv_layers: list[str]) -> None:
        self.curves.start_run(run_name, epochs)
        self.filters.set_layers([(node_id, node_id) for node_id in conv_layers])
        worker.batches_progressed.connect(self._on_worker_batches_progressed)
        worker.epoch_finished.connect(self.curves.add_epoch)
        worker.filters_updated.connect(self._on_worker_filters_updated)

    def _on_worker_batches_progressed(self, payload: dict[str, Any]) -> None:
        self.curves.add_batches(payload["xs"], payload["losses"])

    def _on_worker_filters_updated(self, node_id: str, weights: Any) -> None:
        if node_id == self.filters.current_layer():
            self.filters.set_weights(weights)
            self.filter_updates += self.measuring

    # -- the event loop ------------------------------------------------------------------------------------

    def wake(self) -> None:
        """End the current ``spin`` (thread-safe: posted to the main thread's queue)."""
        from PySide6.QtCore import QMetaObject, Qt

        QMetaObject.invokeMethod(self.loop, "quit", Qt.ConnectionType.QueuedConnection)

    def spin(self) -> None:
        """Run the main thread's event loop, probing it, until ``wake`` is called."""
        started, cpu_started = time.perf_counter(), time.thread_time()
        redraws = self.curves.redraw_count
        self._arm()
        self.loop.exec()
        self.probe.stop()
        if self.measuring:
            self.seconds += time.perf_counter() - started
            self.cpu_seconds += time.thread_time() - cpu_started
            self.redraws += self.curves.redraw_count - redraws

    def idle_delays(self, seconds: float) -> list[float]:
        """The probe's delays with nothing else going on: the baseline."""
        from PySide6.QtCore import QTimer

        QTimer.singleShot(300, self.wake)  # the window's first layout and paint are not idle
        self.spin()
        self.measuring, kept = True, self.delays
        self.delays = []
        QTimer.singleShot(round(seconds * 1000), self.wake)
        self.spin()
        idle, self.delays = self.delays, kept
        self.measuring, self.seconds, self.redraws, self.cpu_seconds = False, 0.0, 0, 0.0
        return idle

    def _arm(self) -> None:
        self._armed = time.perf_counter()
        self.probe.start(PROBE_INTERVAL_MS)

    def _on_probe(self) -> None:
        if self.measuring:
            self.delays.append(max(0.0, time.perf_counter() - self._armed - PROBE_INTERVAL_MS / 1000))
        self._arm()

    def close(self) -> None:
        self.window.close()
        self.window.deleteLater()


class _WakingHandOff(_HandOff):
    """The hand-off that also ends the main thread's event loop at each chunk's end."""

    def __init__(self, batches: int, wake: Callable[[], None]) -> None:
        super().__init__(batches)
        self.wake = wake

    def on_batch_end(self, trainer: Trainer, batch: Any) -> None:
        if batch.batch in self.ends:
            self.wake()
        super().on_batch_end(trainer, batch)


def worker_loop(model: torch.nn.Module, data: Any, batch_size: int, epochs: int, gui: AttachedGui, attached: bool,
                notes: dict[str, str] | None = None) -> Iterator[None]:
    """The trainer inside the real TrainingWorker (QThread, GuiReporter callback, throttled signals), a chunk
    at a time. ``attached``: the main thread runs its event loop and the views redraw while a chunk trains;
    not: nothing consumes the reports during training (the cost of the per-batch hooks alone; they are
    delivered, to nothing, during the attached variant's chunks).

    Only the worker's work function is swapped: ``_train`` builds a session from a saved project, this one
    trains the in-memory data, with the same reporter, emit and control relay.
    """
    from dlstudio.gui import worker as worker_module

    config = TrainConfig.from_settings({"optimizer": "adam", "learning_rate": 1e-3, "batch_size": batch_size,
                                        "epochs": epochs, "device": "cpu"})
    batches = -(-len(data.train) // batch_size)
    handoff = _WakingHandOff(batches, gui.wake) if attached else _HandOff(batches)
    done = threading.Event()
    conv_layers = [name for name, module in model.named_children() if isinstance(module, torch.nn.Conv2d)]

    def train_in_memory(context: Any, request: Any, relay: Any, filters: Any) -> dict[str, Any]:
        try:
            reporter = worker_module._reporter_class()(lambda message: context.report(message, force=True), filters)
            trainer = Trainer(model, data, config, callbacks=[reporter, handoff])
            relay.attach(trainer.control)
            trainer.fit()
            if notes is not None:
                notes["layout"] = layout_note(trainer)
            return {}
        finally:
            done.set()
            if attached:
                gui.wake()
            handoff.to_main.release()

    original, worker_module._train = worker_module._train, train_in_memory
    try:
        worker = worker_module.TrainingWorker(worker_module.TrainingRequest({}, {}, {}, Path("bench")))
    finally:
        worker_module._train = original
    failures: list[str] = []
    worker.failed.connect(failures.append)
    if conv_layers:
        worker.set_filter_layer(conv_layers[0])  # as _train does: the first conv layer's filters
    if attached:
        gui.attach(worker, "bench", epochs, conv_layers)

    def next_chunk() -> None:
        if attached:
            gui.spin()
        handoff.to_main.acquire()

    worker.start()
    next_chunk()
    while not done.is_set():
        yield
        handoff.to_worker.release()
        next_chunk()
    worker.wait()
    for _ in range(2):  # the worker's last signals: the thread's, then the ones its task re-emits
        gui.app.sendPostedEvents()
    worker.deleteLater()
    if failures:
        raise RuntimeError(f"the training worker failed: {failures[0]}")


def run_case(template: str, batch_size: int, samples: int, epochs: int,
             notes: dict[str, str] | None = None, gui: AttachedGui | None = None) -> dict[str, float]:
    project = load_template(template)
    torch.manual_seed(0)
    model = compile_graph(project.graph)
    requirements = DataRequirements.from_model(model)
    generator = torch.Generator().manual_seed(0)
    raw = LabeledTensors(torch.rand((samples, *requirements.input_shape), generator=generator),
                         torch.randint(0, 10, (samples,), generator=generator), [str(i) for i in range(10)])
    data = prepare_data({"val_fraction": 0.0, "test_fraction": 0.0}, requirements, data=raw)
    x, y = data.train.x, data.train.y
    fresh = lambda: copy.deepcopy(model)  # noqa: E731 - every variant starts from the same weights
    variants: dict[str, Variant] = {
        "reference": lambda: slicing_loop(fresh(), x, y, batch_size, epochs),
        "reference-A/A": lambda: slicing_loop(fresh(), x, y, batch_size, epochs),
    }
    if x.ndim == 4 and any(isinstance(m, torch.nn.Conv2d) for m in model.modules()):
        variants["channels-last"] = lambda: slicing_loop(fresh(), x, y, batch_size, epochs, channels_last=True)
    variants["dataloader"] = lambda: dataloader_loop(fresh(), x, y, batch_size, epochs)
    variants["trainer"] = lambda: trainer_loop(fresh(), data, batch_size, epochs, notes=notes)
    if gui is not None:
        hooks_notes: dict[str, str] = {}
        gui_notes: dict[str, str] = {}
        variants["trainer+hooks"] = lambda: worker_loop(fresh(), data, batch_size, epochs, gui, attached=False,
                                                        notes=hooks_notes)
        variants["trainer+GUI"] = lambda: worker_loop(fresh(), data, batch_size, epochs, gui, attached=True,
                                                      notes=gui_notes)

    running = {name: make() for name, make in variants.items()}
    times: dict[str, list[list[float]]] = {name: [[] for _ in range(CHUNKS_PER_EPOCH)] for name in variants}
    for epoch in range(epochs):
        if gui is not None:
            gui.measuring = epoch > 0
        for position in range(CHUNKS_PER_EPOCH):
            # The order turns by one each round, so no variant always follows the same one: a variant run
            # right after the GUI-attached one ran 7-14% faster than its own copy in a fixed order.
            names = list(running)
            turn = (epoch * CHUNKS_PER_EPOCH + position) % len(names)
            for name in names[turn:] + names[:turn]:
                steps = running[name]
                started = time.perf_counter()
                next(steps)
                if epoch > 0:  # the first epoch warms up caches, allocators and oneDNN kernels
                    times[name][position].append(time.perf_counter() - started)
    if gui is not None:
        gui.measuring = False
    for steps in running.values():
        for _ in steps:
            pass
    if gui is not None and notes is not None:
        notes["hooks layout"] = hooks_notes.get("layout", "?")
        notes["GUI layout"] = gui_notes.get("layout", "?")
    return {name: samples / sum(statistics.median(chunk) for chunk in chunks) for name, chunks in times.items()}


def print_gui_figures(rates: dict[str, float], notes: dict[str, str], gui: AttachedGui) -> None:
    """The GUI-attached figures of one case, against issue 4's targets."""
    headless = rates["trainer"]
    attached = rates["trainer+GUI"] / headless
    hooks = rates["trainer+hooks"] / headless
    delays = gui.delays
    print(f"  hooks layout: {notes.get('hooks layout', '?')}\n  GUI layout: {notes.get('GUI layout', '?')}")
    print(f"  GUI attached / headless     {attached:5.2f}x   (target >= 0.85)")
    print(f"  GUI hooks alone / headless  {hooks:5.2f}x   cost {(1 - hooks) * 100:+.1f}% (target <= 2%)")
    print(f"  event-loop delay while training ({len(delays)} probes over {gui.seconds:.1f} s): "
          f"p50 {_percentile(delays, 0.5) * 1e3:.1f} ms, p99 {_percentile(delays, 0.99) * 1e3:.1f} ms "
          f"(target < 16), max {max(delays, default=0.0) * 1e3:.1f} ms (target < 50)")
    fps = gui.redraws / gui.seconds if gui.seconds > 0 else 0.0
    print(f"  curves: {gui.redraws} redraws in {gui.seconds:.1f} s = {fps:.1f} fps (target >= 25); "
          f"filter images shown {gui.filter_updates}")
    busy = gui.cpu_seconds / gui.seconds if gui.seconds > 0 else 0.0
    print(f"  GUI thread's own CPU time while training: {busy * 100:.1f}% of one core")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--epochs", type=int, default=3, help="epochs per variant, the first one warm-up (default 3)")
    parser.add_argument("--samples", type=int, default=60_000)
    parser.add_argument("--models", default="lenet5,mlp")
    parser.add_argument("--batch-sizes", default="64,256")
    parser.add_argument("--gui", action=argparse.BooleanOptionalAction, default=True,
                        help="also time the trainer with the GUI attached (offscreen Qt; default on)")
    parser.add_argument("--tune-malloc", action=argparse.BooleanOptionalAction, default=True,
                        help="tune glibc's malloc before any variant runs, as the trainer does (default on)")
    parser.add_argument("--quick", action="store_true",
                        help=f"{QUICK_SAMPLES:,} samples instead of --samples: a run of a few minutes")
    args = parser.parse_args()
    samples = QUICK_SAMPLES if args.quick else args.samples
    # The trainer tunes the C allocator for the whole process when it is created; tuning it first gives the
    # hand-written loops the same allocator, so the ratios compare the loops, not malloc's settings.
    tuned = tune_host_allocator() if args.tune_malloc else False
    gui = AttachedGui() if args.gui else None
    print(f"torch {torch.__version__}, {torch.get_num_threads()} threads, {samples} samples, "
          f"{args.epochs - 1} measured epoch(s), chunks of 1/{CHUNKS_PER_EPOCH} epoch; "
          f"malloc tuned for all variants: {'yes' if tuned else 'no'}")
    if gui is not None:
        idle = gui.idle_delays(1.0)
        print(f"GUI: offscreen ({os.environ.get('QT_QPA_PLATFORM')}); idle event-loop delay (10 ms probe, "
              f"{len(idle)} samples): p50 {_percentile(idle, 0.5) * 1e3:.1f} ms, "
              f"p99 {_percentile(idle, 0.99) * 1e3:.1f} ms, max {max(idle, default=0.0) * 1e3:.1f} ms")
    for batch_size in (int(b) for b in args.batch_sizes.split(",")):
        if samples < batch_size * CHUNKS_PER_EPOCH:  # every chunk needs a batch of its own
            parser.error(f"{samples} samples make fewer than {CHUNKS_PER_EPOCH} batches of {batch_size}")
    for template in args.models.split(","):
        for batch_size in (int(b) for b in args.batch_sizes.split(",")):
            notes: dict[str, str] = {}
            if gui is not None:
                gui.delays, gui.seconds, gui.redraws, gui.filter_updates, gui.cpu_seconds = [], 0.0, 0, 0, 0.0
            rates = run_case(template, batch_size, samples, args.epochs, notes, gui)
            fastest = max(rates.get("reference", 0.0), rates.get("channels-last", 0.0))
            print(f"\n{template}, batch {batch_size} (ratios to the faster hand-written loop, "
                  f"{fastest:,.0f} samples/s); load average {open('/proc/loadavg').read().split()[0]}")
            for name, rate in rates.items():
                print(f"  {name:14s} {rate:10,.0f} samples/s   {rate / fastest:5.2f}x")
            print(f"  trainer layout: {notes.get('layout', '?')}")
            if gui is not None:
                print_gui_figures(rates, notes, gui)


if __name__ == "__main__":
    main()

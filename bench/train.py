"""Training throughput: the dlstudio trainer (headless) against hand-written PyTorch loops.

For the lenet5 and mlp templates on 28x28 inputs (60,000 in-memory samples
by default) at batch 64 and 256, it times, each in a process of its own:

  reference      a hand-written loop slicing X[idx], y[idx] by a shuffled index (no DataLoader)
  reference-A/A  the same loop again: the noise control (expect 0.95-1.05)
  channels-last  the reference with model and inputs in channels-last layout (conv models only)
  dataloader     DataLoader(TensorDataset, shuffle=True)
  trainer        dlstudio's Trainer, headless, on the process's main thread (as `dlstudio train` runs it)
  trainer+hooks  the Trainer inside the GUI's TrainingWorker (its reporter callback, throttled signals),
                 nothing consuming the reports while it trains: the cost of the GUI's per-batch hooks
  trainer+GUI    the same, with the GUI attached: an offscreen window's curves and filters fed by the
                 worker's signals, the main thread running its event loop while the worker trains
  trainer+GUI+probe  the same with a 10 ms timer measuring the main thread's event-loop delay (its own
                 100 wake-ups a second slow the trainer, so throughput is taken from trainer+GUI)

The GUI variants (--gui, the default; --no-gui leaves them out) also print the event-loop delay
during training and the curves' redraw rate.

Each variant runs in a process of its own (bench/interleave.py says why: two threads of one process that
both compute make OpenMP sleep between kernels, which once made the trainer, measured on a thread, look
22-30% slower than the hand loop on the main thread). The variants run interleaved in chunks of a tenth of
an epoch, one process at a time, round-robin in an order that turns by one each round, so a slow spell of
this shared machine hits them alike and no variant always follows the same one. The first epoch is warm-up;
a variant's epoch time is the sum over chunk positions of the median across the measured epochs. Prints
samples/s and ratios to the faster hand-written loop (reference or channels-last).

    python bench/train.py [--quick] [--no-gui] [--epochs 3] [--samples 60000] [--models lenet5,mlp]
                          [--batch-sizes 64,256]

Every process tunes glibc's malloc as the trainer does for its own (dlstudio.core.training.host_memory), so
the ratios compare the loops, not the allocator's settings.
"""

from __future__ import annotations

import argparse
import os
import sys
import threading
import time
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import torch
from torch.nn import functional

from dlstudio.core.compiler import compile_graph
from dlstudio.core.data import DataRequirements, LabeledTensors, prepare_data
from dlstudio.core.project import load_template
from dlstudio.core.training import Callback, TrainConfig, Trainer

sys.path.insert(0, str(Path(__file__).resolve().parent))
from interleave import CHUNKS_PER_EPOCH, Progress, Variant, run_interleaved  # noqa: E402

QUICK_SAMPLES = 15_000


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
    """Runs the GUI worker's training thread one chunk at a time: it and the main thread never compute
    together."""

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


class ChunkEnds(Callback):
    """Calls ``chunk_done`` at the end of each chunk's last batch (the parent then runs another variant)."""

    def __init__(self, batches: int, chunk_done: Callable[[], None]) -> None:
        self.ends = set(chunk_bounds(batches))
        self.chunk_done = chunk_done

    def on_batch_end(self, trainer: Trainer, batch: Any) -> None:
        if batch.batch in self.ends:
            self.chunk_done()


def train_headless(model: torch.nn.Module, data: Any, batch_size: int, epochs: int, chunk_done: Callable[[], None],
                   notes: dict[str, Any] | None = None, **options: Any) -> None:
    """dlstudio's Trainer with Adam at 1e-3 on this thread; ``options`` go to the Trainer (``frozen``);
    ``notes`` receives the layout it ended in."""
    config = TrainConfig.from_settings({"optimizer": "adam", "learning_rate": 1e-3, "batch_size": batch_size,
                                        "epochs": epochs, "device": "cpu"})
    trainer = Trainer(model, data, config, callbacks=[ChunkEnds(-(-len(data.train) // batch_size), chunk_done)],
                      **options)
    trainer.fit()
    if notes is not None:
        notes["layout"] = layout_note(trainer)


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
    ``progress`` says whether a chunk is measured (the warm-up epoch and the final drain are not).
    """

    def __init__(self, progress: Progress, probing: bool = True) -> None:
        self.progress = progress
        self.probing = probing  # the probe's own wake-ups cost the trainer: left out where throughput is timed
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
        self.measuring = False  # while spinning: whether this chunk counts
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

    def spin(self, measuring: bool | None = None) -> None:
        """Run the main thread's event loop, probing it, until ``wake`` is called; measured as ``progress``
        says unless ``measuring`` is given."""
        self.measuring = self.progress.measuring if measuring is None else measuring
        started, cpu_started = time.perf_counter(), time.thread_time()
        redraws = self.curves.redraw_count
        if self.probing:
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
        self.spin(measuring=False)
        kept, self.delays = self.delays, []
        QTimer.singleShot(round(seconds * 1000), self.wake)
        self.spin(measuring=True)
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
    not: nothing consumes the reports during training (the cost of the per-batch hooks alone; they wait in
    the main thread's queue until the run ends).

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


@dataclass
class Case:
    """What every variant of one case trains: the template's model (seed 0) and random in-memory samples."""

    template: str
    batch_size: int
    epochs: int
    model: torch.nn.Module
    data: Any

    @property
    def x(self) -> torch.Tensor:
        return self.data.train.x

    @property
    def y(self) -> torch.Tensor:
        return self.data.train.y


def seeded_model_and_data(graph: Any, samples: int) -> tuple[torch.nn.Module, Any]:
    """``graph`` compiled after seed 0, and ``samples`` random inputs of its shape with 10 random classes, all
    for training: the same in every process that makes them."""
    torch.manual_seed(0)
    model = compile_graph(graph)
    requirements = DataRequirements.from_model(model)
    generator = torch.Generator().manual_seed(0)
    raw = LabeledTensors(torch.rand((samples, *requirements.input_shape), generator=generator),
                         torch.randint(0, 10, (samples,), generator=generator), [str(i) for i in range(10)])
    return model, prepare_data({"val_fraction": 0.0, "test_fraction": 0.0}, requirements, data=raw)


def build_case(template: str, batch_size: int, samples: int, epochs: int) -> Case:
    """Built in each variant's process, the same there as in every other (same seeds)."""
    model, data = seeded_model_and_data(load_template(template).graph, samples)
    return Case(template, batch_size, epochs, model, data)


# The variants, each made in its own process from the case (see bench/interleave.py).

def reference_variant(case: Case, progress: Progress, report: dict[str, Any],
                      channels_last: bool = False) -> Iterator[None]:
    return slicing_loop(case.model, case.x, case.y, case.batch_size, case.epochs, channels_last=channels_last)


def dataloader_variant(case: Case, progress: Progress, report: dict[str, Any]) -> Iterator[None]:
    return dataloader_loop(case.model, case.x, case.y, case.batch_size, case.epochs)


def trainer_variant(case: Case, progress: Progress, report: dict[str, Any], chunk_done: Callable[[], None]) -> None:
    """dlstudio's Trainer on the process's main thread, as ``dlstudio train`` runs it; a callback hands each
    chunk's end to the parent."""
    train_headless(case.model, case.data, case.batch_size, case.epochs, chunk_done, notes=report)


def worker_variant(case: Case, progress: Progress, report: dict[str, Any], attached: bool,
                   probing: bool = False) -> Iterator[None]:
    """The trainer inside the GUI's TrainingWorker, in a process with a Qt application (and, attached, the
    Metrics views fed and redrawn while it trains); ``report`` gets the layout and the GUI's figures.
    ``probing``: a 10 ms timer measures the event loop's delay (its 100 wake-ups a second slow the trainer
    down by themselves, so the GUI's throughput is timed in a variant without it)."""
    gui = AttachedGui(progress, probing)
    if probing:
        report["idle delays"] = gui.idle_delays(1.0)
    yield from worker_loop(case.model, case.data, case.batch_size, case.epochs, gui, attached, notes=report)
    report.update(delays=gui.delays, seconds=gui.seconds, redraws=gui.redraws, filter_updates=gui.filter_updates,
                  cpu_seconds=gui.cpu_seconds)
    gui.close()


def run_case(template: str, batch_size: int, samples: int, epochs: int,
             with_gui: bool = False) -> tuple[dict[str, float], dict[str, dict[str, Any]]]:
    """Samples/s per variant, and each variant's report."""
    conv = any(isinstance(module, torch.nn.Conv2d) for module in compile_graph(load_template(template).graph).modules())
    variants = [Variant("reference", reference_variant), Variant("reference-A/A", reference_variant)]
    if conv:
        variants.append(Variant("channels-last", reference_variant, (True,)))
    variants += [Variant("dataloader", dataloader_variant), Variant("trainer", trainer_variant, drives=True)]
    if with_gui:
        variants += [Variant("trainer+hooks", worker_variant, (False,)), Variant("trainer+GUI", worker_variant, (True,)),
                     Variant("trainer+GUI+probe", worker_variant, (True, True))]
    timings = run_interleaved(variants, build_case, (template, batch_size, samples, epochs), epochs)
    return timings.samples_per_second(samples), timings.reports


def print_gui_figures(rates: dict[str, float], reports: dict[str, dict[str, Any]]) -> None:
    """The GUI-attached figures of one case, against issue 4's targets."""
    headless = rates["trainer"]
    attached = rates["trainer+GUI"] / headless
    hooks = rates["trainer+hooks"] / headless
    gui, probed = reports["trainer+GUI"], reports["trainer+GUI+probe"]
    idle, delays, seconds = probed["idle delays"], probed["delays"], probed["seconds"]
    print(f"  hooks layout: {reports['trainer+hooks'].get('layout', '?')}\n  GUI layout: {gui.get('layout', '?')}")
    print(f"  GUI attached / headless     {attached:5.2f}x   (target >= 0.85)")
    print(f"  GUI hooks alone / headless  {hooks:5.2f}x   cost {(1 - hooks) * 100:+.1f}% (target <= 2%)")
    print(f"  event-loop delay idle ({len(idle)} probes): p50 {_percentile(idle, 0.5) * 1e3:.1f} ms, "
          f"p99 {_percentile(idle, 0.99) * 1e3:.1f} ms, max {max(idle, default=0.0) * 1e3:.1f} ms")
    print(f"  event-loop delay while training (trainer+GUI+probe: {len(delays)} probes over {seconds:.1f} s): "
          f"p50 {_percentile(delays, 0.5) * 1e3:.1f} ms, p99 {_percentile(delays, 0.99) * 1e3:.1f} ms "
          f"(target < 16), max {max(delays, default=0.0) * 1e3:.1f} ms (target < 50)")
    seconds = gui["seconds"]
    fps = gui["redraws"] / seconds if seconds > 0 else 0.0
    print(f"  curves: {gui['redraws']} redraws in {seconds:.1f} s = {fps:.1f} fps (target >= 25); "
          f"filter images shown {gui['filter_updates']}")
    busy = gui["cpu_seconds"] / seconds if seconds > 0 else 0.0
    print(f"  GUI thread's own CPU time while training: {busy * 100:.1f}% of one core")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--epochs", type=int, default=3, help="epochs per variant, the first one warm-up (default 3)")
    parser.add_argument("--samples", type=int, default=60_000)
    parser.add_argument("--models", default="lenet5,mlp")
    parser.add_argument("--batch-sizes", default="64,256")
    parser.add_argument("--gui", action=argparse.BooleanOptionalAction, default=True,
                        help="also time the trainer with the GUI attached (offscreen Qt; default on)")
    parser.add_argument("--quick", action="store_true",
                        help=f"{QUICK_SAMPLES:,} samples instead of --samples: a run of a few minutes")
    args = parser.parse_args()
    samples = QUICK_SAMPLES if args.quick else args.samples
    for batch_size in (int(b) for b in args.batch_sizes.split(",")):
        if samples < batch_size * CHUNKS_PER_EPOCH:  # every chunk needs a batch of its own
            parser.error(f"{samples} samples make fewer than {CHUNKS_PER_EPOCH} batches of {batch_size}")
    print(f"torch {torch.__version__}, {torch.get_num_threads()} threads, {samples} samples, "
          f"{args.epochs - 1} measured epoch(s), chunks of 1/{CHUNKS_PER_EPOCH} epoch, one process per variant"
          + (f"; GUI offscreen ({os.environ.get('QT_QPA_PLATFORM', 'offscreen')})" if args.gui else ""))
    for template in args.models.split(","):
        for batch_size in (int(b) for b in args.batch_sizes.split(",")):
            rates, reports = run_case(template, batch_size, samples, args.epochs, with_gui=args.gui)
            fastest = max(rates.get("reference", 0.0), rates.get("channels-last", 0.0))
            print(f"\n{template}, batch {batch_size} (ratios to the faster hand-written loop, "
                  f"{fastest:,.0f} samples/s); load average {open('/proc/loadavg').read().split()[0]}")
            for name, rate in rates.items():
                switches = reports[name]["switches per chunk"]
                print(f"  {name:17s} {rate:10,.0f} samples/s   {rate / fastest:5.2f}x   "
                      f"{switches:6.0f} context switches a chunk")
            print(f"  trainer layout: {reports['trainer'].get('layout', '?')}")
            if args.gui:
                print_gui_figures(rates, reports)


if __name__ == "__main__":
    main()

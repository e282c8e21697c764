"""The one bridge between the GUI thread and work that must not block it (design.md §1, §5).

Everything slow (loading a dataset, training, classifying a folder,
dreaming) runs on a QThread started from here. Work functions are plain
Python from ``dlstudio.core``; they talk back only through a
:class:`TaskContext` (progress reports, a cancel flag) and their return
value. Payloads are plain data (numbers, strings, numpy copies).

Signals emitted on the worker thread are connected only to ``@Slot``
methods of :class:`BackgroundTask`, which lives on the GUI thread and
re-emits them there: with PySide6 6.9–6.12 a lambda or plain function
connected to a cross-thread signal runs on the emitting thread, so callers
connect whatever they like to the task's own signals, never to the thread's.
"""

from __future__ import annotations

import copy
import sys
import threading
import time
import traceback
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from PySide6.QtCore import QObject, QThread, Signal, Slot

from dlstudio.core.errors import DlstudioError

# Progress reports faster than this are dropped (unless forced): ~20 updates per second keep the GUI
# responsive and cost the worker almost nothing.
REPORT_INTERVAL_S = 0.05


class TaskCancelled(Exception):
    """Raised by :meth:`TaskContext.check` when the GUI asked the task to stop."""


class TaskContext:
    """What a work function gets: a throttled ``report`` and a cancel flag. Thread-safe."""

    def __init__(self, emit: Callable[[object], None], interval: float = REPORT_INTERVAL_S) -> None:
        self._emit = emit
        self._interval = interval
        self._last = 0.0
        self._cancel = threading.Event()

    @property
    def cancelled(self) -> bool:
        return self._cancel.is_set()

    def cancel(self) -> None:
        self._cancel.set()

    def check(self) -> None:
        """Raise TaskCancelled if a stop was requested (call it between steps)."""
        if self._cancel.is_set():
            raise TaskCancelled

    def report(self, payload: object, force: bool = False) -> bool:
        """Send ``payload`` to the GUI thread, at most every REPORT_INTERVAL_S unless ``force``. Returns if sent."""
        now = time.monotonic()
        if not force and now - self._last < self._interval:
            return False
        self._last = now
        self._emit(payload)
        return True


def error_message(error: BaseException) -> str:
    """One line for the person: our own errors say why; anything else gives its text (never its class name),
    with the traceback on stderr."""
    if isinstance(error, DlstudioError):
        return " ".join(error.message.split())
    traceback.print_exception(error, file=sys.stderr)
    if isinstance(error, MemoryError):
        return "out of memory: try a smaller batch size or a smaller network"
    text = " ".join(str(error).split())
    return f"unexpected error: {text}" if text else "an unexpected error (the details are in the error log)"



class _TaskThread(QThread):
    """Runs the work function; its signals are emitted on the worker thread."""

    reported = Signal(object)
    succeeded = Signal(object)
    errored = Signal(str)
    cancelled = Signal()

    def __init__(self, function: Callable[..., Any], args: tuple[Any, ...], parent: QObject | None = None) -> None:
        super().__init__(parent)
        self.function = function
        self.args = args
        self.context = TaskContext(self.reported.emit)

    def run(self) -> None:
        try:
            result = self.function(self.context, *self.args)
        except TaskCancelled:
            self.cancelled.emit()
        except BaseException as error:  # noqa: BLE001 - every failure must reach the GUI as a message
            self.errored.emit(error_message(error))
        else:
            if self.context.cancelled:
                self.cancelled.emit()
            else:
                self.succeeded.emit(result)


class BackgroundTask(QObject):
    """``function(context, *args)`` on its own QThread; results arrive as GUI-thread signals.

    Exactly one of ``finished``, ``failed`` and ``cancelled`` is emitted at the
    end, after every ``progress``; ``done`` follows it in all cases.
    """

    progress = Signal(object)
    finished = Signal(object)  # the function's return value
    failed = Signal(str)       # a one-line message
    cancelled = Signal()
    done = Signal()

    def __init__(self, function: Callable[..., Any], *args: Any, parent: QObject | None = None) -> None:
        super().__init__(parent)
        self._thread = _TaskThread(function, args)
        self._thread.reported.connect(self._on_thread_reported)
        self._thread.succeeded.connect(self._on_thread_succeeded)
        self._thread.errored.connect(self._on_thread_errored)
        self._thread.cancelled.connect(self._on_thread_cancelled)
        self._thread.finished.connect(self._on_thread_finished)
        self._outcome: tuple[str, Any] | None = None

    @property
    def context(self) -> TaskContext:
        return self._thread.context

    def start(self) -> BackgroundTask:
        self._thread.start()
        return self

    def cancel(self) -> None:
        """Ask the work function to stop at its next check; returns at once."""
        self._thread.context.cancel()

    def is_running(self) -> bool:
        return self._thread.isRunning()

    def wait(self, timeout_ms: int = 30_000) -> bool:
        """Block until the thread ended (True) or the timeout passed (False)."""
        return self._thread.wait(timeout_ms)

    @Slot(object)
    def _on_thread_reported(self, payload: object) -> None:
        self.progress.emit(payload)

    # The outcome is held until QThread.finished so that ``done`` comes after the thread really ended.
    @Slot(object)
    def _on_thread_succeeded(self, result: object) -> None:
        self._outcome = ("finished", result)

    @Slot(str)
    def _on_thread_errored(self, message: str) -> None:
        self._outcome = ("failed", message)

    @Slot()
    def _on_thread_cancelled(self) -> None:
        self._outcome = ("cancelled", None)

    @Slot()
    def _on_thread_finished(self) -> None:
        kind, value = self._outcome or ("failed", "the task ended without a result")
        if kind == "finished":
            self.finished.emit(value)
        elif kind == "failed":
            self.failed.emit(value)
        else:
            self.cancelled.emit()
        self.done.emit()


def run_task(function: Callable[..., Any], *args: Any, parent: QObject | None = None) -> BackgroundTask:
    """Start ``function(context, *args)`` on a worker thread; keep the returned task (or give it a parent)."""
    return BackgroundTask(function, *args, parent=parent).start()


# -- training ------------------------------------------------------------------

# Batch progress reaches the GUI about 30 times a second (the curves redraw as often, up to ~30 fps);
# filters at most every FILTER_EVERY_BATCHES batches and FILTER_INTERVAL_S seconds (a weight snapshot
# every batch costs ~5% on the CPU).
TRAINING_REPORT_INTERVAL_S = 1.0 / 30.0
FILTER_EVERY_BATCHES = 10
FILTER_INTERVAL_S = 0.2


@dataclass(frozen=True)
class TrainingRequest:
    """What to train, as plain data copied on the GUI thread (the worker never reads the live project).

    ``graph`` is ``Graph.to_dict()``; ``data`` and ``training`` are the project's settings dicts;
    ``weights`` the starting weights' source (``WeightsSource.to_doc()``, None: random) and ``frozen`` the
    ids of frozen nodes; ``resume`` is a run folder to continue from (its own settings are used then).
    """

    graph: dict[str, Any]
    data: dict[str, Any]
    training: dict[str, Any]
    project_path: Path
    epochs: int | None = None
    resume: Path | None = None
    weights: dict[str, Any] | None = None
    frozen: tuple[str, ...] = ()

    @classmethod
    def from_project(cls, project: Any, **options: Any) -> TrainingRequest:
        if project.path is None:
            raise ValueError("an untitled project has no folder for its runs; save it first")
        options.setdefault("weights", None if project.weights is None else copy.deepcopy(project.weights.to_doc()))
        options.setdefault("frozen", tuple(project.frozen))
        return cls(copy.deepcopy(project.graph.to_dict()), copy.deepcopy(project.data),
                   copy.deepcopy(project.training), Path(project.path), **options)


class _ControlRelay:
    """Pause/resume/stop requests from the GUI thread, held until the trainer's control exists.

    The trainer (and torch) are created on the worker thread; a Stop pressed
    while the data is still loading must still reach it.
    """

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._control: Any = None
        self.stop_requested = False
        self.pause_requested = False

    def attach(self, control: Any) -> None:
        with self._lock:
            self._control = control
            if self.pause_requested:
                control.pause()
            if self.stop_requested:
                control.stop()

    def pause(self) -> None:
        with self._lock:
            self.pause_requested = True
            if self._control is not None:
                self._control.pause()

    def resume(self) -> None:
        with self._lock:
            self.pause_requested = False
            if self._control is not None:
                self._control.resume()

    def stop(self) -> None:
        with self._lock:
            self.stop_requested = True
            if self._control is not None:
                self._control.stop()


class _FilterChoice:
    """The conv layer whose filters the GUI shows; set on the GUI thread, read by the reporter."""

    def __init__(self) -> None:
        self.node_id: str | None = None
        self.changed = False

    def choose(self, node_id: str | None) -> None:
        self.node_id = node_id
        self.changed = True  # the reporter sends the new layer's weights at the next batch


def conv_layers(graph: Any) -> list[tuple[str, str]]:
    """(node id, the node's name) of the 2-D convolutions, in graph order: the layers whose filters can be shown."""
    return [(node_id, graph.node(node_id).name) for node_id in graph.topological_order()
            if graph.node(node_id).type == "Conv2d"]


_REPORTER_CLASS: type | None = None


def _reporter_class() -> type:
    """The core Callback that turns training hooks into plain payloads (built on first use: it needs torch)."""
    global _REPORTER_CLASS
    if _REPORTER_CLASS is not None:
        return _REPORTER_CLASS
    from dlstudio.core.training import Callback

    class GuiReporter(Callback):
        """Reports on the training thread through ``emit((kind, payload))``; reads the device only when it reports."""

        def __init__(self, emit: Callable[[object], None], filters: _FilterChoice) -> None:
            self.emit = emit
            self.filters = filters
            self._last_report = 0.0
            self._last_batch_end = 0.0
            self._batch_seconds = 0.0    # a running average of one batch's duration
            self._last_filters = 0.0
            self._filters_batch = 0
            self._reported = 0           # batches of this epoch already sent
            self._first_batch = -1       # where this epoch started (a resumed epoch starts part-way)
            self._epoch_started = 0.0
            self._fit_started = 0.0
            self._pending: Any = None    # the last BatchEnd not yet reported

        # -- hooks ---------------------------------------------------------

        def on_fit_start(self, trainer: Any) -> None:
            self._fit_started = time.perf_counter()
            self.send_filters(trainer)

        def on_epoch_start(self, trainer: Any, epoch: int) -> None:
            self._epoch_started = time.perf_counter()
            self._reported = 0
            self._first_batch = -1

        def on_batch_end(self, trainer: Any, batch: Any) -> None:
            now = time.perf_counter()
            if self._first_batch < 0:
                self._first_batch = self._reported = batch.batch - 1
            else:
                self._batch_seconds += 0.1 * (now - self._last_batch_end - self._batch_seconds)
            self._last_batch_end = now
            self._pending = batch
            # Report at the batch end nearest the interval's mark, not the first one past it: with batches of
            # 25 ms, waiting for the first end past 33 ms reported every 50 ms on average (20 fps, not 30).
            # (Never sooner than half the interval: a pause inflates the average for a while.)
            due = max(0.5, 1.0 - 0.5 * self._batch_seconds / TRAINING_REPORT_INTERVAL_S) * TRAINING_REPORT_INTERVAL_S
            if now - self._last_report >= due or batch.batch == batch.batches:
                self.flush(trainer, now)
            filters = self.filters
            if filters.changed or (batch.batch - self._filters_batch >= FILTER_EVERY_BATCHES
                                   and now - self._last_filters >= FILTER_INTERVAL_S):
                self._filters_batch = batch.batch
                self._last_filters = now
                self.send_filters(trainer)

        def on_epoch_end(self, trainer: Any, metrics: Any) -> None:
            self._filters_batch = 0
            self.emit(("epoch", metrics.to_dict()))
            self.send_filters(trainer)

        def skip_pause(self, seconds: float) -> None:
            """Leave a pause out of the epoch's samples/s and ETA."""
            self._epoch_started += seconds

        # -- reports -------------------------------------------------------

        def flush(self, trainer: Any, now: float | None = None) -> None:
            """Send the batches since the last report (one host sync for all their losses)."""
            batch, self._pending = self._pending, None
            if batch is None:
                return
            now = time.perf_counter() if now is None else now
            self._last_report = now
            first, last = self._reported, batch.batch
            self._reported = last
            losses = batch.epoch_losses[first:last].tolist() if batch.epoch_losses is not None else [batch.loss]
            offset = batch.epoch - 1
            xs = [offset + (b + 1) / batch.batches for b in range(last - len(losses), last)]
            size = trainer.config.batch_size
            seen = batch.samples - min(batch.samples, self._first_batch * size)
            elapsed = now - self._epoch_started
            rate = seen / elapsed if elapsed > 0 else 0.0
            total = len(trainer.data.train)
            remaining = (total - batch.samples) + (trainer.config.epochs - batch.epoch) * total
            self.emit(("batches", {
                "epoch": batch.epoch, "epochs": trainer.config.epochs, "batch": batch.batch,
                "batches": batch.batches, "samples_per_second": rate,
                "eta_seconds": remaining / rate if rate > 0 else None,
                "elapsed_seconds": now - self._fit_started, "xs": xs, "losses": losses,
            }))

        def send_filters(self, trainer: Any) -> None:
            self.filters.changed = False
            node_id = self.filters.node_id
            module = getattr(trainer.model, node_id, None) if node_id else None
            weight = getattr(module, "weight", None)
            if weight is None or weight.ndim != 4:
                return
            # A copy in plain (out, in, kh, kw) order: the training thread goes on changing the original.
            weights = weight.detach().float().cpu().numpy().copy()
            self.emit(("filters", (node_id, weights)))

    _REPORTER_CLASS = GuiReporter
    return GuiReporter


def _halting_control(on_halt: Callable[[], None], on_continue: Callable[[float], None]) -> Any:
    """A TrainControl that tells, on the training thread, when the loop really halts and for how long it did."""
    from dlstudio.core.training import TrainControl

    class HaltingControl(TrainControl):
        def wait_while_paused(self, timeout: float | None = None) -> bool:
            if not self.paused:
                return super().wait_while_paused(timeout)
            on_halt()
            halted = time.perf_counter()
            go_on = super().wait_while_paused(timeout)
            on_continue(time.perf_counter() - halted)
            return go_on

    return HaltingControl()


def _train(context: TaskContext, request: TrainingRequest, relay: _ControlRelay, filters: _FilterChoice) -> dict:
    """The work function of a TrainingWorker (on the worker thread): prepare the run, report, train."""
    from dlstudio.core.graph import Graph
    from dlstudio.core.project.pretrained import WeightsSource
    from dlstudio.core.training.session import start_session

    def emit(message: object) -> None:
        context.report(message, force=True)  # the reporter throttles by itself

    def downloading(done: int, total: int) -> None:
        # torchvision's weights, fetched once into torch's cache; throttled by the context.
        size = f"{done / 1e6:.1f} of {total / 1e6:.1f} MB" if total else f"{done / 1e6:.1f} MB"
        context.report(("preparing", f"downloading the starting weights ({size})"))

    weights = None if request.weights is None else WeightsSource.from_doc(request.weights)
    session = start_session(Graph.from_dict(request.graph), request.data, request.training, request.project_path,
                            epochs=request.epochs, resume=request.resume, weights=weights, frozen=request.frozen,
                            allow_download=True, progress=downloading)
    reporter = _reporter_class()(emit, filters)
    trainer_box: list[Any] = []

    def on_halt() -> None:
        reporter.flush(trainer_box[0])  # the curve shows every batch done before the pause
        emit(("paused", None))

    control = _halting_control(on_halt, reporter.skip_pause)
    trainer = session.trainer([reporter], control=control)
    trainer_box.append(trainer)
    layers = conv_layers(session.graph)
    if filters.node_id is None and layers:
        filters.node_id = layers[0][0]  # the first conv layer's filters, unless the GUI chose one
    skipped = session.data.skipped
    emit(("started", {
        "run_dir": str(session.run_dir), "resumed": session.is_resumed, "device": str(trainer.device),
        "channels_last": trainer.channels_last, "layout_tuned": trainer.layout_tuner is not None,
        "class_names": list(session.data.class_names),
        "epochs": session.config.epochs, "batches_per_epoch": trainer.batches_per_epoch,
        "sizes": {"train": len(session.data.train), "val": len(session.data.val), "test": len(session.data.test)},
        "conv_layers": layers, "filter_layer": filters.node_id,
        "history": [m.to_dict() for m in trainer.history],
        "skipped": [f"{s.path}: {s.reason}" for s in skipped],
        "weights": session.weights_summary, "frozen": len(session.frozen_with_weights),
    }))
    relay.attach(control)
    result = trainer.fit()  # a resumed session's trainer already stands at its checkpoint
    return {**session.finish(result), "message": result.message, "best_epoch": result.best_epoch,
            "test_loss": result.test_loss,
            "skipped": [{"path": str(item.path), "reason": item.reason} for item in session.data.skipped]}


class TrainingWorker(QObject):
    """Trains a project on a worker thread (through :mod:`dlstudio.core.training.session`); plain-data signals.

    Signals (all on the GUI thread, in the order things happened):
    ``preparing(str)`` what the run is getting ready (downloading the starting weights);
    ``started(dict)`` once the run is prepared (run_dir, device, class_names,
    epochs, batches_per_epoch, sizes, conv_layers, filter_layer, channels_last and
    layout_tuned (the memory layout is chosen while training), history of a
    resumed run, skipped files, weights: the starting weights' load summary, frozen: how many layers with
    weights are frozen); ``batches_progressed(dict)`` ~30 times a second
    (epoch, epochs, batch, batches, samples_per_second, eta_seconds,
    elapsed_seconds, and the new points: xs in epochs, losses);
    ``epoch_finished(dict)`` (EpochMetrics.to_dict(), with the confusion
    matrix); ``filters_updated(str, ndarray)`` (node id, a copy of its weights,
    out x in x kh x kw); ``paused()`` once the loop really waits, ``resumed()``;
    ``finished(dict)`` (the ``dlstudio train --json`` summary plus message,
    best_epoch, test_loss); ``failed(str)`` (a one-line reason: the run was
    refused before training, or crashed); ``ended()`` after either.
    """

    preparing = Signal(str)
    started = Signal(object)
    batches_progressed = Signal(object)
    epoch_finished = Signal(object)
    filters_updated = Signal(str, object)
    paused = Signal()
    resumed = Signal()
    finished = Signal(object)
    failed = Signal(str)
    ended = Signal()

    def __init__(self, request: TrainingRequest, parent: QObject | None = None) -> None:
        super().__init__(parent)
        self.request = request
        self._relay = _ControlRelay()
        self._filters = _FilterChoice()
        self._task = BackgroundTask(_train, request, self._relay, self._filters, parent=self)
        self._task.progress.connect(self._on_task_progress)
        self._task.finished.connect(self.finished)
        self._task.failed.connect(self.failed)
        self._task.done.connect(self.ended)
        self.is_paused = False

    def start(self) -> TrainingWorker:
        self._task.start()
        return self

    def is_running(self) -> bool:
        return self._task.is_running()

    def wait(self, timeout_ms: int = 30_000) -> bool:
        """Block until the training thread ended (True) or the timeout passed (False)."""
        return self._task.wait(timeout_ms)

    def pause(self) -> None:
        """Ask the loop to wait after the current batch; ``paused`` follows once it does."""
        if not self.is_paused:
            self.is_paused = True
            self._relay.pause()

    def resume(self) -> None:
        if self.is_paused:
            self.is_paused = False
            self._relay.resume()
            self.resumed.emit()

    def stop(self) -> None:
        """Ask the loop to stop after the current batch; it writes a resumable ``last.pt`` and finishes."""
        self._relay.stop()

    @property
    def stop_requested(self) -> bool:
        return self._relay.stop_requested

    def set_filter_layer(self, node_id: str) -> None:
        """Show this conv layer's filters from now on (its weights arrive with the next batch)."""
        self._filters.choose(node_id)

    @Slot(object)
    def _on_task_progress(self, message: object) -> None:
        kind, payload = message  # type: ignore[misc]
        if kind == "batches":
            self.batches_progressed.emit(payload)
        elif kind == "epoch":
            self.epoch_finished.emit(payload)
        elif kind == "filters":
            self.filters_updated.emit(*payload)
        elif kind == "started":
            self.started.emit(payload)
        elif kind == "preparing":
            self.preparing.emit(payload)
        elif kind == "paused" and self.is_paused:  # a resume may have overtaken it
            self.paused.emit()

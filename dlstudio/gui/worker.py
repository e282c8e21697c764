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

import sys
import threading
import time
import traceback
from collections.abc import Callable
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
    """One line for the user: our own errors say why; anything else names its type (traceback to stderr)."""
    if isinstance(error, DlstudioError):
        return " ".join(error.message.split())
    traceback.print_exception(error, file=sys.stderr)
    text = " ".join(str(error).split())
    return f"{type(error).__name__}: {text}" if text else type(error).__name__


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

"""Cooperative pause, resume and stop, checked by the trainer between batches (thread-safe)."""

from __future__ import annotations

import threading


class TrainControl:
    """Flags another thread (the GUI, a signal handler) sets; the training loop obeys them between batches.

    ``pending`` is a plain attribute so the hot loop checks one boolean per
    batch; the Events carry the state and wake a paused loop.
    """

    def __init__(self) -> None:
        self._stop = threading.Event()
        self._running = threading.Event()
        self._running.set()
        self.pending = False

    def stop(self) -> None:
        """Ask the loop to stop after the current batch (it leaves a resumable checkpoint)."""
        self._stop.set()
        self._running.set()  # a paused loop wakes up to stop
        self.pending = True

    def pause(self) -> None:
        """Ask the loop to wait after the current batch until :meth:`resume` or :meth:`stop`."""
        self._running.clear()
        self.pending = True

    def resume(self) -> None:
        self._running.set()
        self.pending = self._stop.is_set()

    @property
    def stop_requested(self) -> bool:
        return self._stop.is_set()

    @property
    def paused(self) -> bool:
        return not self._running.is_set()

    def wait_while_paused(self, timeout: float | None = None) -> bool:
        """Block while paused; returns True when the loop should go on, False when it should stop."""
        self._running.wait(timeout)
        return not self._stop.is_set()

"""The trained model the "use and look inside" views share, loaded and used off the GUI thread.

One run's model is loaded at a time (``load``); views submit work with
``submit(fn, *args)``, which runs ``fn(context, trained, *args)`` on a worker
thread through :mod:`dlstudio.gui.worker`. Work on the model is serialized
by a lock: Grad-CAM and feature maps attach hooks to the same modules, so two
of them must not run at once. The image the person is looking at is shared
too (``set_image``), so the feature maps, saliency and classify views follow
one picture.
"""

from __future__ import annotations

import threading
from collections.abc import Callable
from pathlib import Path
from typing import Any

from PySide6.QtCore import QObject, Signal, Slot

from dlstudio.gui.worker import BackgroundTask, TaskContext


def _load(context: TaskContext, run_dir: str, which: str) -> Any:
    from dlstudio.core.inspect import load_trained

    return load_trained(run_dir, which=which)


class ModelSession(QObject):
    """Holds the loaded :class:`~dlstudio.core.inspect.TrainedModel` and the current image."""

    loading = Signal(str)             # run dir
    model_loaded = Signal(dict)       # {"run_dir", "checkpoint", "class_names", "input_shape", "task", "nodes"}
    model_failed = Signal(str)        # one-line reason
    image_changed = Signal(object)    # {"path": str | None, "raw": ndarray (C, H, W) float in [0, 1]}

    def __init__(self, parent: QObject | None = None) -> None:
        super().__init__(parent)
        self.trained: Any = None
        self.run_dir: Path | None = None
        self.image: dict[str, Any] | None = None
        self._lock = threading.Lock()
        self._tasks: set[BackgroundTask] = set()
        self._load_task: BackgroundTask | None = None

    # -- the model -----------------------------------------------------------

    def load(self, run_dir: Path | str, which: str = "best") -> BackgroundTask:
        """Load a run's checkpoint in the background; ``model_loaded`` or ``model_failed`` follows."""
        if self._load_task is not None:
            self._load_task.cancel()  # its result is ignored when it arrives
        self.loading.emit(str(run_dir))
        task = self._track(BackgroundTask(_load, str(run_dir), which, parent=self))
        task.finished.connect(self._on_load_finished)
        task.failed.connect(self._on_load_failed)
        self._load_task = task
        return task.start()

    def unload(self) -> None:
        self.trained, self.run_dir = None, None

    @property
    def is_loaded(self) -> bool:
        return self.trained is not None

    def submit(self, function: Callable[..., Any], *args: Any) -> BackgroundTask:
        """Run ``function(context, trained, *args)`` on a worker thread, one model computation at a time.

        The caller connects to the returned task's signals before control returns
        to the event loop (signals are queued, so nothing is missed).
        """
        if self.trained is None:
            raise RuntimeError("no model is loaded")
        trained, lock = self.trained, self._lock

        def locked(context: TaskContext, *rest: Any) -> Any:
            with lock:
                context.check()
                return function(context, trained, *rest)

        return self._track(BackgroundTask(locked, *args, parent=self)).start()

    # -- the image -------------------------------------------------------------

    def set_image(self, raw: Any, path: str | None = None) -> None:
        """Make ``raw`` (C, H, W) floats in [0, 1] at the model's input size the current image."""
        self.image = {"path": path, "raw": raw}
        self.image_changed.emit(self.image)

    # -- shutting down -----------------------------------------------------------

    def cancel_all(self, wait_ms: int = 5000) -> bool:
        """Ask every running task to stop and wait for them (the window calls this when closing)."""
        for task in list(self._tasks):
            task.cancel()
        return all(task.wait(wait_ms) for task in list(self._tasks))

    def _track(self, task: BackgroundTask) -> BackgroundTask:
        self._tasks.add(task)
        task.done.connect(self._on_task_done)
        return task

    @Slot()
    def _on_task_done(self) -> None:
        task = self.sender()
        self._tasks.discard(task)
        if task is not None:
            task.deleteLater()

    @Slot(object)
    def _on_load_finished(self, trained: Any) -> None:
        if self.sender() is not self._load_task:
            return  # superseded by a newer load
        self._load_task = None
        self.trained = trained
        self.run_dir = trained.run_dir
        self.model_loaded.emit({
            "run_dir": str(trained.run_dir) if trained.run_dir else "",
            "checkpoint": str(trained.checkpoint) if trained.checkpoint else "",
            "class_names": list(trained.class_names),
            "input_shape": tuple(trained.input_shape),
            "task": trained.task,
            "nodes": list(trained.graph.topological_order()),
        })

    @Slot(str)
    def _on_load_failed(self, message: str) -> None:
        if self.sender() is not self._load_task:
            return
        self._load_task = None
        self.model_failed.emit(message)

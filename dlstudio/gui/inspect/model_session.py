"""The trained model the "use and look inside" views share, loaded and used off the GUI thread.

One run's model is loaded at a time (``load``; ``unload`` drops it, and
``forget_run`` drops it when its run folder is deleted); views submit work with
``submit(fn, *args)``, which runs ``fn(context, trained, *args)`` on a worker
thread through :mod:`dlstudio.gui.worker`. Work on the model is serialized
by a lock: Grad-CAM and feature maps attach hooks to the same modules, so two
of them must not run at once. The image the person is looking at is shared
too (``set_image``), so the feature maps, saliency and classify views follow
one picture.
"""

from __future__ import annotations

import os
import threading
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

from PySide6.QtCore import QObject, Signal, Slot

from dlstudio.gui.worker import BackgroundTask, TaskContext


NO_MODEL = "No model is loaded: train the network or choose a run first."


class NoModelError(RuntimeError):
    """Work was submitted while no model is loaded (views check ``is_loaded`` first; this is the last guard)."""


def _same_folder(path: Path | str | None) -> Path | None:
    """``path`` in a form that compares equal for the same folder however it was written (the folder may be gone)."""
    if path is None:
        return None
    return Path(os.path.abspath(os.path.normpath(str(path))))


def _load(context: TaskContext, run_dir: str, which: str) -> Any:
    from dlstudio.core.inspect import load_trained

    return load_trained(run_dir, which=which)


class ModelSession(QObject):
    """Holds the loaded :class:`~dlstudio.core.inspect.TrainedModel` and the current image."""

    loading = Signal(str)             # run dir
    model_loaded = Signal(dict)       # {"run_dir", "checkpoint", "class_names", "input_shape", "task", "nodes"}
    model_failed = Signal(str)        # one-line reason
    image_changed = Signal(object)    # {"path": str | None, "raw": ndarray (C, H, W) in [0, 1], "caption": str}
    unloaded = Signal()               # the model (or its load) was dropped: views show nothing of it

    def __init__(self, parent: QObject | None = None) -> None:
        super().__init__(parent)
        self.trained: Any = None
        self.run_dir: Path | None = None
        self.image: dict[str, Any] | None = None
        self._lock = threading.Lock()
        self._tasks: set[BackgroundTask] = set()
        self._load_task: BackgroundTask | None = None
        self._loading_dir: Path | None = None  # the run being loaded, while a load is in flight

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
        self._loading_dir = Path(run_dir)
        return task.start()

    def unload(self) -> None:
        """Drop the model, a load in flight and the current image; ``unloaded`` follows.

        Work running on the model is asked to stop (its results are dropped); until
        :meth:`load` succeeds again nothing can be classified or inspected (``submit``
        refuses). The window calls this when it opens another project.
        """
        if self._load_task is not None:
            self._load_task.cancel()  # its result is ignored when it arrives
        for task in list(self._tasks):
            task.cancel()
        self._load_task, self._loading_dir = None, None
        self.trained, self.run_dir, self.image = None, None, None
        self.unloaded.emit()

    def forget_run(self, run_dir: Path | str) -> bool:
        """The run folder ``run_dir`` was deleted: unload its model if it is loaded or loading. True if it was."""
        gone = _same_folder(run_dir)
        if gone is None or gone not in (_same_folder(self.run_dir), _same_folder(self._loading_dir)):
            return False
        self.unload()
        return True

    @property
    def is_loaded(self) -> bool:
        return self.trained is not None

    def submit(self, function: Callable[..., Any], *args: Any) -> BackgroundTask:
        """Run ``function(context, trained, *args)`` on a worker thread, one model computation at a time.

        The caller connects to the returned task's signals before control returns
        to the event loop (signals are queued, so nothing is missed).
        """
        if self.trained is None:
            raise NoModelError(NO_MODEL)
        trained, lock = self.trained, self._lock

        def locked(context: TaskContext, *rest: Any) -> Any:
            with lock:
                context.check()
                return function(context, trained, *rest)

        return self._track(BackgroundTask(locked, *args, parent=self)).start()

    @contextmanager
    def using_model(self) -> Iterator[Any]:
        """The loaded model for work on the calling thread, while no worker uses it (hooks must not cross)."""
        if self.trained is None:
            raise NoModelError(NO_MODEL)
        with self._lock:
            yield self.trained

    # -- the image -------------------------------------------------------------

    def set_image(self, raw: Any, path: str | None = None, caption: str = "") -> None:
        """Make ``raw`` (C, H, W) floats in [0, 1] at the model's input size the current image.

        ``caption`` says what it is when there is no file ("validation image 9 of 18 · true class limes")."""
        self.image = {"path": path, "raw": raw, "caption": caption}
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
        self._load_task, self._loading_dir = None, None
        self.trained = trained
        self.run_dir = trained.run_dir
        self.model_loaded.emit({
            "run_dir": str(trained.run_dir) if trained.run_dir else "",
            "checkpoint": str(trained.checkpoint) if trained.checkpoint else "",
            "class_names": list(trained.class_names),
            "input_shape": tuple(trained.input_shape),
            "task": trained.task,
            "nodes": list(trained.graph.topological_order()),  # ids: for matching canvas nodes, not for showing
        })

    @Slot(str)
    def _on_load_failed(self, message: str) -> None:
        if self.sender() is not self._load_task:
            return
        self._load_task, self._loading_dir = None, None
        self.model_failed.emit(message)

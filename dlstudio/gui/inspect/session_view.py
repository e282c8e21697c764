"""The part every "look inside" view shares: following a ModelSession and running its latest request off-thread.

A view subclasses :class:`SessionView`, overrides the ``_on_*`` hooks and
calls :meth:`SessionView.request` for work on the model. A newer request
supersedes an older one: the older is cancelled (if it has not started it
ends at once; if it is running its result is dropped), so the view always
shows what was asked last, however fast the person clicks.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from PySide6.QtCore import Slot
from PySide6.QtWidgets import QWidget

from dlstudio.gui.inspect.model_session import ModelSession
from dlstudio.gui.inspect.node_outputs import NodeOutput, describe_outputs
from dlstudio.gui.worker import BackgroundTask


@dataclass(frozen=True)
class _Callbacks:
    kind: str
    finished: Callable[[Any], None]
    failed: Callable[[str], None]
    progress: Callable[[Any], None] | None


class SessionView(QWidget):
    """A widget showing something about ``session``'s model; see the module docstring."""

    def __init__(self, session: ModelSession, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.session = session
        self.outputs: list[NodeOutput] = []
        self._pending: dict[str, BackgroundTask] = {}
        self._callbacks: dict[BackgroundTask, _Callbacks] = {}
        session.loading.connect(self._on_session_loading)
        session.model_loaded.connect(self._on_session_model_loaded)
        session.model_failed.connect(self._on_session_model_failed)
        session.image_changed.connect(self._on_session_image_changed)
        session.unloaded.connect(self.clear)
        if session.is_loaded:  # made after the model loaded: describe it now (results arrive after __init__)
            self._on_session_model_loaded({})

    # ---- for subclasses -----------------------------------------------------------------------------

    def output(self, node_id: str) -> NodeOutput | None:
        """The description of ``node_id`` in the loaded model, or None."""
        return next((output for output in self.outputs if output.node_id == node_id), None)

    def request(self, kind: str, function: Callable[..., Any], *args: Any,
                on_finished: Callable[[Any], None], on_failed: Callable[[str], None] | None = None,
                on_progress: Callable[[Any], None] | None = None) -> BackgroundTask | None:
        """Run ``function(context, trained, *args)`` on the model; the previous request of ``kind`` is dropped.

        The callbacks run on the GUI thread, only for the latest request of that kind.
        """
        self.cancel(kind)
        if not self.session.is_loaded:
            return None
        task = self.session.submit(function, *args)
        self._pending[kind] = task
        self._callbacks[task] = _Callbacks(kind, on_finished, on_failed or self._on_request_failed, on_progress)
        # Bound slots and sender(), not closures over the task: a closure would tie the task's Python wrapper into
        # a reference cycle, and the garbage collector would later delete its thread object from under Qt.
        task.finished.connect(self._on_task_finished)
        task.failed.connect(self._on_task_failed)
        task.progress.connect(self._on_task_progress)
        task.cancelled.connect(self._on_task_cancelled)
        task.done.connect(self._on_task_done)
        return task

    def clear(self) -> None:
        """Show nothing of the model: running work stops, layer choices and results go.

        The session's ``unloaded`` calls it (the window opened another project); the view fills again when a
        model loads. Subclasses drop their own results and then call this.
        """
        for kind in list(self._pending):
            self.cancel(kind)
        self.outputs = []

    def cancel(self, kind: str) -> None:
        """Drop the running request of ``kind`` (its result will not be shown)."""
        task = self._pending.pop(kind, None)
        if task is not None:
            task.cancel()

    def is_busy(self, kind: str) -> bool:
        return kind in self._pending

    def _on_loading(self) -> None:
        """A model is loading (the previous one, if any, is going away)."""

    def _on_outputs(self) -> None:
        """A model loaded and ``self.outputs`` describes its nodes."""

    def _on_model_failed(self, message: str) -> None:
        """Loading failed with this one-line reason."""

    def _on_image(self) -> None:
        """The session's current image changed (``self.session.image``)."""

    def _on_request_failed(self, message: str) -> None:
        """A request failed (one line); views say so where their result would be."""

    def _on_request_cancelled(self) -> None:
        """The latest request was stopped (e.g. the Dream view's Stop button)."""

    # ---- session signals ----------------------------------------------------------------------------------

    @Slot(str)
    def _on_session_loading(self, _run_dir: str) -> None:
        for kind in list(self._pending):
            self.cancel(kind)
        self.outputs = []
        self._on_loading()

    @Slot(dict)
    def _on_session_model_loaded(self, _info: dict) -> None:
        self.outputs = []
        task = self.session.submit(describe_outputs)
        self._pending["outputs"] = task
        task.finished.connect(self._on_outputs_finished)
        task.failed.connect(self._on_outputs_failed)

    @Slot(str)
    def _on_session_model_failed(self, message: str) -> None:
        self.outputs = []
        self._on_model_failed(message)

    @Slot(object)
    def _on_session_image_changed(self, _image: object) -> None:
        self._on_image()

    def _latest(self) -> _Callbacks | None:
        """The callbacks of the task that sent the signal, if it is still the latest request of its kind."""
        callbacks = self._callbacks.get(self.sender())
        return callbacks if callbacks is not None and self._pending.get(callbacks.kind) is self.sender() else None

    @Slot(object)
    def _on_task_finished(self, value: object) -> None:
        if callbacks := self._latest():
            callbacks.finished(value)

    @Slot(str)
    def _on_task_failed(self, message: str) -> None:
        if callbacks := self._latest():
            callbacks.failed(message)

    @Slot(object)
    def _on_task_progress(self, payload: object) -> None:
        callbacks = self._latest()
        if callbacks is not None and callbacks.progress is not None:
            callbacks.progress(payload)

    @Slot()
    def _on_task_cancelled(self) -> None:
        if self._latest():
            self._on_request_cancelled()

    @Slot()
    def _on_task_done(self) -> None:
        callbacks = self._callbacks.pop(self.sender(), None)
        if callbacks is not None and self._pending.get(callbacks.kind) is self.sender():
            del self._pending[callbacks.kind]

    @Slot(object)
    def _on_outputs_finished(self, outputs: list[NodeOutput]) -> None:
        if self._pending.get("outputs") is not self.sender():
            return
        del self._pending["outputs"]
        self.outputs = list(outputs)
        self._on_outputs()

    @Slot(str)
    def _on_outputs_failed(self, message: str) -> None:
        if self._pending.get("outputs") is not self.sender():
            return
        del self._pending["outputs"]
        self._on_model_failed(message)

"""Training from the window: the Training menu's actions, the worker's lifetime, and who sees what it reports.

The controller owns the Start / Pause-Resume / Stop actions, the Training
panel, the Metrics dock's plots and the run history, and the
:class:`TrainingWorker` of the run in progress. It works on the window's
:class:`ProjectDocument` (:meth:`TrainingController.set_document` shows a new
one and keeps nothing of the old) and never imports the window: it asks
``preflight()`` (given by its owner) whether a run may start, and says what
the window must do through signals (lock editing, a status message, save the
project after a run was recorded in it, a setting edited in the panel). A
started run is recorded in the project (with the normalization statistics it
computed) and the project saved, as ``dlstudio train`` does, so the project
file always lists its runs and the window stays clean. A stopped run is
continued from the Runs panel (:meth:`TrainingController.continue_run`),
through the same worker and locks.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any, Callable

from PySide6.QtCore import QCoreApplication, QObject, Qt, QTimer, Signal
from PySide6.QtGui import QAction, QKeySequence
from PySide6.QtWidgets import QLabel, QTabWidget

from dlstudio.core.errors import ProjectError
from dlstudio.core.project import ProjectDocument
from dlstudio.gui.training_panel import TrainingPanel
from dlstudio.gui.worker import BackgroundTask, TaskContext, TrainingRequest, TrainingWorker, conv_layers

# How long closing the window waits for a stopped run to write its checkpoint and end.
STOP_WAIT_MS = 10_000


def _summarize_runs(context: TaskContext, run_dirs: list[Path]) -> list[dict[str, Any]]:
    """The run history's rows with the settings, network and curves the table compares (on a worker thread:
    reading runs imports the training package, hence torch)."""
    from dlstudio.core.runs_compare import read_runs_for_comparison

    return read_runs_for_comparison(run_dirs)


def _read_current_run(context: TaskContext, run_dir: Path) -> dict[str, Any]:
    """What the window shows of a past run when its project opens: summary, curves, last confusion matrix, classes."""
    from dlstudio.core.training.runs import CLASSES_FILE, read_confusion, read_metrics, summarize_run

    shown: dict[str, Any] = {"run_dir": run_dir, "summary": summarize_run(run_dir), "rows": [], "confusion": None,
                             "class_names": []}
    try:
        shown["rows"] = read_metrics(run_dir)
    except (OSError, ValueError, KeyError, TypeError):
        pass
    shown["confusion"] = read_confusion(run_dir)
    try:
        import json

        names = json.loads((run_dir / CLASSES_FILE).read_text(encoding="utf-8"))
        shown["class_names"] = [str(name) for name in names] if isinstance(names, list) else []
    except (OSError, ValueError):
        pass
    if shown["confusion"] is not None and len(shown["confusion"]) == len(shown["class_names"]):
        from dlstudio.core.inspect.evaluate import per_class_from_confusion

        shown["per_class"] = per_class_from_confusion(shown["confusion"], shown["class_names"])
    return shown


def _per_class(context: TaskContext, matrix: list[list[int]], class_names: list[str]) -> list[dict[str, Any]]:
    """The per-class table of an epoch's confusion matrix, off the GUI thread (sklearn costs 10-40 ms a call)."""
    from dlstudio.core.inspect.evaluate import per_class_from_confusion

    return per_class_from_confusion(matrix, class_names)


def _read_curves(context: TaskContext, run_dirs: list[str]) -> dict[str, list[dict[str, Any]]]:
    """metrics.csv of each run, by run name, to overlay their curves (unreadable runs are left out)."""
    from dlstudio.core.training.runs import read_metrics

    curves = {}
    for run_dir in run_dirs:
        try:
            curves[Path(run_dir).name] = read_metrics(Path(run_dir))
        except (OSError, ValueError, KeyError):
            continue
    return curves


class TrainingController(QObject):
    """Starts, pauses and stops training of the open :class:`ProjectDocument` and feeds the panels that show it."""

    state_changed = Signal(str)  # idle, preparing, training, pausing, paused, stopping, or how the run ended
    status_message = Signal(str, int)  # text, milliseconds (0: until replaced)
    editing_lock_requested = Signal(bool)  # lock the network while a run trains
    run_recorded = Signal()  # a new run was added to the project: save it, refresh what shows its statistics
    setting_edit_requested = Signal(str, str, object)  # section, key, value: one undo step for the window
    training_started = Signal()  # a run was asked to start: the window shows the Training panel
    run_deleted = Signal(str)  # a run's folder was deleted (nothing may go on using its model)
    skipped_found = Signal(list)  # files the run skipped ({"path", "reason"}), streamed ones found while training
    plots_filled = Signal()  # the curves show a run now (one training, or the latest of a reopened project)

    def __init__(self, parent: QObject | None = None, preflight: Callable[[], bool] | None = None) -> None:
        super().__init__(parent)
        self.document = ProjectDocument()
        self._preflight = preflight or (lambda: self.document.path is not None)
        self.worker: TrainingWorker | None = None
        self.state = "idle"
        self.class_names: list[str] = []
        self._tasks: set[BackgroundTask] = set()
        self._warmed_up = False
        self._conv_key: tuple | None = None  # the convolutions the Filters tab lists (node id, name)
        self._generation = 0  # bumped by set_document: results of reads started for an older document are dropped

        self.start_action = self._action("&Train", lambda: self.start(), "F5", "Train the network on its data")
        self.pause_action = self._action("&Pause", self.toggle_pause, "F6", "Pause or resume training")
        self.stop_action = self._action("&Stop", self.stop, "Shift+F5",
                                        "Stop after this batch, keeping a checkpoint to resume from")
        self.panel = TrainingPanel(self.start_action, self.pause_action, self.stop_action)
        self.panel.edit_requested.connect(self._on_panel_edit_requested)

        from dlstudio.gui.plots.confusion import ConfusionView
        from dlstudio.gui.plots.curves import CurvesView
        from dlstudio.gui.plots.filters import FiltersView
        from dlstudio.gui.runs_panel import RunsPanel

        self.curves = CurvesView()
        self.filters = FiltersView()
        self.filters.layer_chosen.connect(self._on_filters_layer_chosen)
        self.confusion = ConfusionView(with_table=True)
        self.confusion.cell_clicked.connect(self._on_confusion_cell_clicked)
        self.metrics_tabs = QTabWidget()
        self.metrics_tabs.setObjectName("MetricsTabs")
        self.metrics_tabs.setDocumentMode(True)
        self.metrics_tabs.addTab(self.curves, "Curves")
        self.metrics_tabs.addTab(self.filters, "Filters")
        self.metrics_tabs.addTab(self.confusion, "Confusion matrix")
        self.runs = RunsPanel()
        self.runs.selection_changed.connect(self._on_runs_selection_changed)
        self.runs.delete_requested.connect(self._on_runs_delete_requested)
        self.runs.remove_requested.connect(self._on_runs_remove_requested)
        self.runs.continue_requested.connect(self._on_runs_continue_requested)

        self.status_label = QLabel()
        self.status_label.setObjectName("training_status")
        self.status_label.setContentsMargins(0, 0, 16, 0)
        self.status_label.hide()
        self.document.project.settings_changed.connect(self._on_project_settings_changed)
        self.document.project.weights_changed.connect(self._on_project_weights_changed)
        self._show_settings()
        self._update_actions()

    def _action(self, text: str, slot: Any, shortcut: str, tip: str) -> QAction:
        action = QAction(text, self)
        action.setShortcut(QKeySequence(shortcut))
        action.setShortcutContext(Qt.ShortcutContext.WindowShortcut)
        action.setStatusTip(tip)
        action.setToolTip(f"{text.replace('&', '')} ({shortcut})")
        action.triggered.connect(slot)
        return action

    @property
    def actions(self) -> list[QAction]:
        return [self.start_action, self.pause_action, self.stop_action]

    def is_running(self) -> bool:
        return self.worker is not None

    @property
    def run_dir(self) -> Path | None:
        """The run the panels show: the one training, or the document's current (latest) run."""
        return self.document.current_run

    # -- the document ---------------------------------------------------------

    def set_document(self, document: ProjectDocument) -> None:
        """Show ``document``: its settings, its runs and its latest run; nothing of the previous one stays.

        Not while a run trains (RuntimeError): the window locks New and Open then.
        """
        if self.worker is not None:
            raise RuntimeError("the project cannot be replaced while a run trains")
        self.document.project.settings_changed.disconnect(self._on_project_settings_changed)
        self.document.project.weights_changed.disconnect(self._on_project_weights_changed)
        self.document = document
        self._generation += 1
        document.project.settings_changed.connect(self._on_project_settings_changed)
        document.project.weights_changed.connect(self._on_project_weights_changed)
        self.class_names = []
        self.state = "idle"
        self._show_settings()
        self.panel.clear_run()
        self.curves.clear()
        self.confusion.clear()
        self._conv_key = None
        self.graph_changed()
        self.status_label.hide()
        self.runs.select_runs([])
        self.runs.set_runs([])
        self._update_actions()
        self.refresh_runs()
        self.show_current_run()

    def graph_changed(self) -> None:
        """The network was edited: the Filters tab lists its convolutions as they are now (not while training).

        Called after every edit, so it costs a scan of the nodes and nothing more unless a convolution was
        added, removed or renamed.
        """
        if self.worker is not None:
            return
        graph = self.document.project.graph
        outputs = [node for node in graph if node.spec.role == "output"]
        self.curves.set_task(str(outputs[0].params.get("task", "classification")) if outputs else "classification")
        key = tuple((node.id, node.name) for node in graph if node.type == "Conv2d")
        if key != self._conv_key:
            self._conv_key = key
            self.filters.set_layers(conv_layers(graph))

    def show_current_run(self) -> None:
        """Show the document's current run (the latest, on open): its summary, curves and last confusion matrix."""
        run_dir = self.document.current_run
        if run_dir is None or self.worker is not None:
            return
        generation = self._generation
        self._run_in_background(_read_current_run, run_dir,
                                on_finished=lambda shown: self._on_current_run_read(generation, shown))

    def _on_current_run_read(self, generation: int, shown: dict[str, Any]) -> None:
        if generation != self._generation or self.worker is not None or shown["run_dir"] != self.document.current_run:
            return  # another project (or a run) took the panels meanwhile
        summary = shown["summary"]
        self.class_names = shown["class_names"]
        self.panel.show_run_summary(summary)
        self.curves.show_history(summary["name"], summary.get("planned_epochs"), shown["rows"])
        if shown["confusion"] is not None and len(shown["confusion"]) == len(self.class_names):
            self.confusion.set_matrix(shown["confusion"], self.class_names)
            self.confusion.set_per_class(shown.get("per_class") or [])
        self.plots_filled.emit()

    def _on_project_settings_changed(self, section: str, key: str, value: Any) -> None:
        if section == "training":
            self._show_settings()

    def _on_project_weights_changed(self, old: Any, new: Any) -> None:
        self._show_settings()  # the pretrained learning-rate multiplier applies only with starting weights

    def _show_settings(self) -> None:
        project = self.document.project
        self.panel.set_settings(project.training, pretrained=project.weights is not None)

    def refresh_runs(self) -> None:
        """Read the project's run folders in the background and list them."""
        run_dirs = self.document.run_dirs() if self.document.path is not None else []
        if not run_dirs:
            self.runs.set_runs([])
            return
        generation = self._generation
        self._run_in_background(_summarize_runs, run_dirs,
                                on_finished=lambda rows: self._on_runs_summarized(generation, rows))

    def _on_runs_summarized(self, generation: int, rows: list[dict[str, Any]]) -> None:
        if generation != self._generation:
            return  # rows of the project that was open before
        # The folder of the run in progress looks "stopped" (a checkpoint, no result yet): say what it is.
        if self.worker is not None and self.document.training_run is not None:
            for row in rows:
                if self.document.is_training(row["run_dir"]):
                    row["status"] = "paused" if self.worker.is_paused else "training"
        self.runs.set_runs(rows)

    def _run_in_background(self, function: Any, *args: Any, on_finished: Any) -> None:
        task = BackgroundTask(function, *args, parent=self)
        task.finished.connect(on_finished)
        task.done.connect(lambda: self._forget(task))
        self._tasks.add(task)
        task.start()

    def wait_for_background(self, timeout_ms: int = 10_000) -> bool:
        """Wait for the run summaries, curve reads and the warm-up still running (the window is closing)."""
        return all(task.wait(timeout_ms) for task in list(self._tasks))

    def _forget(self, task: BackgroundTask) -> None:
        self._tasks.discard(task)
        task.deleteLater()

    def warm_up(self) -> None:
        """Once, on a worker thread: torch's first-use costs (1.7 s), so that the first Train starts promptly.

        Called when the data panel first shows its samples: torch is imported by
        then, and the window has long been on screen.
        """
        if self._warmed_up or self.worker is not None:
            return
        self._warmed_up = True
        self._run_in_background(_warm_up_job, on_finished=_ignore)

    # -- controls ------------------------------------------------------------

    def start(self, epochs: int | None = None) -> bool:
        """Train the project, once ``preflight()`` said it may (saved, no errors). False if it did not start."""
        if self.worker is not None:
            return False
        if not self._preflight() or self.document.path is None:
            return False
        self._start_worker(TrainingRequest.from_project(self.document.project, epochs=epochs))
        return True

    def continue_run(self, run_dir: str | Path) -> bool:
        """Continue a stopped run from its ``last.pt`` with the settings it started with. False if it did not start.

        Refused, with a message in the status bar, while another run trains (the
        Training panel's error line is left to that run's own outcome).
        The run's own settings are used (the project may have changed since), and
        it trains up to the epochs it planned; its curves go on from its checkpoint.
        """
        run_dir = Path(run_dir)
        if self.worker is not None:
            message = f"Another run is training: stop it before continuing the run {run_dir.name}."
            self.status_message.emit(message, 6000)
            return False
        if self.document.path is None:
            self.panel.show_error("Continuing a run needs the project it belongs to, saved.")
            return False
        self.document.training_run = run_dir  # known from the start, unlike a new run's folder
        self._start_worker(TrainingRequest.from_project(self.document.project, resume=run_dir))
        return True

    def _start_worker(self, request: TrainingRequest) -> None:
        self.worker = TrainingWorker(request, parent=self)
        self.worker.preparing.connect(self._on_worker_preparing)
        self.worker.started.connect(self._on_worker_started)
        self.worker.batches_progressed.connect(self._on_worker_batches_progressed)
        self.worker.epoch_finished.connect(self._on_worker_epoch_finished)
        self.worker.filters_updated.connect(self._on_worker_filters_updated)
        self.worker.paused.connect(self._on_worker_paused)
        self.worker.resumed.connect(self._on_worker_resumed)
        self.worker.finished.connect(self._on_worker_finished)
        self.worker.failed.connect(self._on_worker_failed)
        self.worker.ended.connect(self._on_worker_ended)
        self.panel.show_error("")
        self.panel.set_running(True)
        self.editing_lock_requested.emit(True)
        self._set_state("preparing")
        self.training_started.emit()
        self.worker.start()
        QTimer.singleShot(0, self._warm_up_confusion)

    def _warm_up_confusion(self) -> None:
        """Build the confusion view's cells for the Output's class count while the worker prepares the data.

        Its first matrix creates one text item per cell (~0.3 s for 10 classes on a busy 2-core machine);
        paid now, the first epoch's matrix does not stall the window mid-training.
        """
        counts = [node.params.get("classes") for node in self.document.project.graph if node.type == "Output"]
        classes = counts[0] if counts and isinstance(counts[0], int) else 0
        if self.state == "preparing" and 0 < classes <= 100:
            self.confusion.set_matrix([[0] * classes for _ in range(classes)], [str(i) for i in range(classes)])
            self.confusion.clear()

    def toggle_pause(self) -> None:
        if self.worker is None or self.worker.stop_requested:
            return
        if self.worker.is_paused:
            self.worker.resume()
        else:
            self.worker.pause()
            self._set_state("pausing")

    def stop(self) -> None:
        if self.worker is not None and not self.worker.stop_requested:
            self.worker.stop()
            self._set_state("stopping")

    def stop_and_wait(self, timeout_ms: int = STOP_WAIT_MS) -> bool:
        """Stop the run and block until its thread ended and its last reports were handled (closing the window)."""
        worker = self.worker
        if worker is None:
            return True
        self.stop()
        ended = worker.wait(timeout_ms)
        # The thread's last signals (started, finished) are queued: handle them now, so that the run is
        # recorded and the project saved before the window goes.
        QCoreApplication.sendPostedEvents()
        QCoreApplication.sendPostedEvents()
        return ended

    # -- worker signals ------------------------------------------------------------------

    def _on_worker_preparing(self, detail: str) -> None:
        if self.state == "preparing":
            self.panel.show_state("preparing", detail)

    def _on_worker_started(self, payload: dict[str, Any]) -> None:
        from dlstudio.core.training.runs import record_run  # torch is loaded by now (the worker imported it)

        run_dir = self.document.training_run = Path(payload["run_dir"])
        self.class_names = list(payload["class_names"])
        if not payload["resumed"]:
            # Reads the statistics from the run's settings.json, as TrainingSession.record takes them.
            record_run(self.document.project, run_dir)
            self.run_recorded.emit()  # as dlstudio train does: the project file lists the run at once
        self.document.set_current_run(run_dir)
        self.document.runs_changed.emit()
        self.panel.show_started(payload)
        self.curves.start_run(run_dir.name, payload.get("epochs"))
        for metrics in payload.get("history", ()):
            self.curves.add_epoch(metrics)
        self.filters.set_layers([tuple(layer) for layer in payload["conv_layers"]])
        self.plots_filled.emit()
        if payload.get("filter_layer"):
            self.filters.set_layer(payload["filter_layer"])
        self.confusion.clear()
        if self.state == "preparing":
            self._set_state("training")
        self._update_actions()  # the Runs panel learns which folder is being written
        self.refresh_runs()

    def _on_worker_batches_progressed(self, payload: dict[str, Any]) -> None:
        self.panel.show_progress(payload)
        self.curves.add_batches(payload["xs"], payload["losses"])
        if self.state == "training":
            self.status_label.setText(f"Training · epoch {payload['epoch']}/{payload['epochs']} · "
                                      f"{payload['samples_per_second']:,.0f} samples/s")

    def _on_worker_epoch_finished(self, metrics: dict[str, Any]) -> None:
        self.panel.show_epoch(metrics)
        self.curves.add_epoch(metrics)
        if metrics.get("confusion") is not None:
            self.confusion.set_matrix(metrics["confusion"], self.class_names)
            self._show_per_class(metrics["confusion"])
        self.refresh_runs()  # the run's row shows its epochs and best accuracy so far

    def _show_per_class(self, matrix: list[list[int]]) -> None:
        """Fill the table under the matrix once its figures are computed, if that matrix is still the one shown."""
        import numpy as np

        generation = self._generation

        def shown(rows: list[dict[str, Any]]) -> None:
            if generation == self._generation and np.array_equal(self.confusion.matrix(), np.asarray(matrix)):
                self.confusion.set_per_class(rows)

        self._run_in_background(_per_class, matrix, list(self.class_names), on_finished=shown)

    def _on_worker_filters_updated(self, node_id: str, weights: Any) -> None:
        if node_id == self.filters.current_layer():
            self.filters.set_weights(weights)

    def _on_worker_paused(self) -> None:
        self._set_state("paused")
        self.refresh_runs()  # its row says "paused", not "training"

    def _on_worker_resumed(self) -> None:
        self._set_state("training")
        self.refresh_runs()

    def _on_worker_finished(self, summary: dict[str, Any]) -> None:
        self.panel.show_finished(summary)
        if summary.get("skipped"):
            self.skipped_found.emit(list(summary["skipped"]))
        status = summary["status"]
        self._set_state(status, summary.get("message", ""))
        if status == "failed":
            self.status_message.emit(f"Training failed: {summary.get('message', '')}", 10000)

    def _on_worker_failed(self, message: str) -> None:
        self.panel.show_error(message)
        self._set_state("failed", message)

    def _on_worker_ended(self) -> None:
        worker, self.worker = self.worker, None
        self.document.training_run = None
        if worker is not None:
            worker.deleteLater()
        self.panel.set_running(False)
        self.editing_lock_requested.emit(False)
        if self.state in ("preparing", "training", "pausing", "paused", "stopping"):
            self._set_state("stopped")
        self._update_actions()
        self.refresh_runs()

    # -- panels' signals ------------------------------------------------------------

    def _on_panel_edit_requested(self, key: str, value: Any) -> None:
        self.setting_edit_requested.emit("training", key, value)

    def _on_runs_delete_requested(self, run_dir: str) -> None:
        """Delete a run's folder (only inside the project's own runs folder) and take it off the list."""
        try:
            self.document.delete_run(run_dir)
        except ProjectError as error:
            self.runs.show_refusal(f"Cannot delete the run {Path(run_dir).name}: {error.message}")
            return
        self.run_deleted.emit(run_dir)
        self.status_message.emit(f"Deleted the run {Path(run_dir).name}", 4000)
        self._after_runs_removed()

    def _on_runs_remove_requested(self, run_dir: str) -> None:
        """Take a run off the list; its folder (missing, or not this project's) is left as it is."""
        try:
            self.document.forget_run(run_dir)
        except ProjectError as error:
            self.runs.show_refusal(error.message)
            return
        self.run_deleted.emit(run_dir)
        self.status_message.emit(f"Removed the run {Path(run_dir).name} from the list", 4000)
        self._after_runs_removed()

    def _after_runs_removed(self) -> None:
        self.run_recorded.emit()  # the project file lists existing runs: saved when nothing else is unsaved
        self.refresh_runs()
        if self.worker is None:
            self.panel.clear_run()
            self.curves.clear()
            self.confusion.clear()
            self.show_current_run()

    def _on_runs_continue_requested(self, run_dir: str) -> None:
        self.continue_run(run_dir)

    def _on_filters_layer_chosen(self, node_id: str) -> None:
        if self.worker is not None:
            self.worker.set_filter_layer(node_id)

    def _on_confusion_cell_clicked(self, true: int, predicted: int) -> None:
        names = self.class_names
        if 0 <= true < len(names) and 0 <= predicted < len(names):
            self.status_message.emit(f"Validation samples of class {names[true]} predicted as {names[predicted]}",
                                     6000)

    def _on_runs_selection_changed(self, run_dirs: list[str]) -> None:
        if not run_dirs:
            self.curves.set_overlays({})
            return
        self._run_in_background(_read_curves, list(run_dirs), on_finished=self.curves.set_overlays)

    # -- state ---------------------------------------------------------------

    def _set_state(self, state: str, detail: str = "") -> None:
        self.state = state
        # A failure's reason is the panel's red line already; the state line says only that it failed.
        shown = self.panel.error_label.isVisibleTo(self.panel) and self.panel.error_label.text() == detail
        self.panel.show_state(state, detail if state == "failed" and not shown else "")
        running = self.worker is not None
        texts = {"preparing": "Training · preparing…", "training": "Training", "pausing": "Training · pausing…",
                 "paused": "Training paused", "stopping": "Training · stopping…"}
        self.status_label.setText(texts.get(state, ""))
        self.status_label.setVisible(running)
        self._update_actions()
        self.state_changed.emit(state)

    def _update_actions(self) -> None:
        worker = self.worker
        running = worker is not None
        stopping = running and worker.stop_requested  # type: ignore[union-attr]
        self.start_action.setEnabled(not running)
        self.pause_action.setEnabled(running and not stopping)
        paused = running and worker.is_paused  # type: ignore[union-attr]
        self.pause_action.setText("&Resume" if paused else "&Pause")
        self.pause_action.setIconText("Resume" if paused else "Pause")
        self.pause_action.setToolTip("Resume (F6)" if paused else "Pause (F6)")
        self.stop_action.setEnabled(running and not stopping)
        self.runs.set_training(running, self.document.training_run if running else None)


def _warm_up_job(context: TaskContext) -> None:
    from dlstudio.core.training.warmup import warm_up_training

    warm_up_training()


def _ignore(result: object) -> None:
    """Nothing to do with a warm-up's result."""

"""Training from the window: the Training menu's actions, the worker's lifetime, and who sees what it reports.

The controller owns the Start / Pause-Resume / Stop actions, the Training
panel, the Metrics dock's plots and the run history, and the
:class:`TrainingWorker` of the run in progress. It asks the window for three
things only: a saved project (``ensure_saved``), editing locked or unlocked
(``set_editing_locked``), and the status bar (and tells its Data panel when
the project's normalization statistics changed). A started run is recorded in the
project (with the normalization statistics it computed) and the project saved,
as ``dlstudio train`` does, so the project file always lists its runs and the
window stays clean. A stopped run is continued from the Runs panel
(:meth:`TrainingController.continue_run`), through the same worker and locks.
"""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING, Any

from PySide6.QtCore import QCoreApplication, QObject, Qt, QTimer, Signal
from PySide6.QtGui import QAction, QKeySequence
from PySide6.QtWidgets import QLabel, QTabWidget

from dlstudio.gui.training_panel import TrainingPanel
from dlstudio.gui.worker import BackgroundTask, TaskContext, TrainingRequest, TrainingWorker, run_task

if TYPE_CHECKING:
    from dlstudio.gui.main_window import MainWindow

# How long closing the window waits for a stopped run to write its checkpoint and end.
STOP_WAIT_MS = 10_000


def _summarize_runs(context: TaskContext, run_dirs: list[Path]) -> list[dict[str, Any]]:
    """The run history's rows (on a worker thread: reading runs imports the training package, hence torch)."""
    from dlstudio.core.training.runs import summarize_run

    return [summarize_run(run_dir) for run_dir in run_dirs]


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
    """Starts, pauses and stops training for a :class:`MainWindow` and feeds its panels."""

    state_changed = Signal(str)  # idle, preparing, training, pausing, paused, stopping, or how the run ended

    def __init__(self, window: MainWindow) -> None:
        super().__init__(window)
        self.window = window
        self.worker: TrainingWorker | None = None
        self.state = "idle"
        self.class_names: list[str] = []
        self.run_dir: Path | None = None  # the folder of the run in progress, or of the last one
        self._active_run: Path | None = None  # the folder being written now (known once the run is prepared)
        self._tasks: set[BackgroundTask] = set()
        self._warmed_up = False

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
        self.confusion = ConfusionView()
        self.confusion.cell_clicked.connect(self._on_confusion_cell_clicked)
        self.metrics_tabs = QTabWidget()
        self.metrics_tabs.setObjectName("MetricsTabs")
        self.metrics_tabs.setDocumentMode(True)
        self.metrics_tabs.addTab(self.curves, "Curves")
        self.metrics_tabs.addTab(self.filters, "Filters")
        self.metrics_tabs.addTab(self.confusion, "Confusion matrix")
        self.runs = RunsPanel()
        self.runs.selection_changed.connect(self._on_runs_selection_changed)
        self.runs.run_deleted.connect(self._on_runs_run_deleted)
        self.runs.continue_requested.connect(self._on_runs_continue_requested)

        self.status_label = QLabel()
        self.status_label.setObjectName("training_status")
        self.status_label.setContentsMargins(0, 0, 16, 0)
        self.status_label.hide()
        self._update_actions()

    def _action(self, text: str, slot: Any, shortcut: str, tip: str) -> QAction:
        action = QAction(text, self.window)
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

    # -- project -----------------------------------------------------------

    def show_project(self) -> None:
        """Show the window's (new) project: its settings, its runs; the live plots start empty."""
        project = self.window.project
        self.panel.set_settings(project.training)
        self.panel.show_error("")
        self.curves.clear()
        self.curves.set_overlays({})
        self.filters.set_layers([])
        self.refresh_runs()

    def on_settings_changed(self, section: str, key: str, value: Any) -> None:
        if section == "training":
            self.panel.set_settings(self.window.project.training)

    def refresh_runs(self) -> None:
        """Read the project's run folders in the background and list them."""
        project = self.window.project
        if project.path is None or not project.runs:
            self.runs.set_runs([])
            return
        base = project.path.parent
        self._run_in_background(_summarize_runs, [base / entry for entry in project.runs],
                                on_finished=self._on_runs_summarized)

    def _on_runs_summarized(self, rows: list[dict[str, Any]]) -> None:
        # The folder of the run in progress looks "stopped" (a checkpoint, no result yet): say what it is.
        if self.worker is not None and self.run_dir is not None:
            for row in rows:
                if Path(row["run_dir"]).resolve() == self.run_dir.resolve():
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
        """Train the project (saving it first; an untitled one asks where). False if it did not start."""
        if self.worker is not None:
            return False
        if not self.window.ensure_saved_for_training():
            self.panel.show_error("Training needs a saved project: its runs are kept in a folder beside the file.")
            return False
        self._start_worker(TrainingRequest.from_project(self.window.project, epochs=epochs))
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
            self.window.statusBar().showMessage(message, 6000)
            return False
        if self.window.project.path is None:
            self.panel.show_error("Continuing a run needs the project it belongs to, saved.")
            return False
        self._active_run = run_dir  # known from the start, unlike a new run's folder
        self._start_worker(TrainingRequest.from_project(self.window.project, resume=run_dir))
        return True

    def _start_worker(self, request: TrainingRequest) -> None:
        self.worker = TrainingWorker(request, parent=self)
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
        self.window.set_editing_locked(True)
        self._set_state("preparing")
        self.window.training_dock.raise_()
        self.worker.start()
        QTimer.singleShot(0, self._warm_up_confusion)

    def _warm_up_confusion(self) -> None:
        """Build the confusion view's cells for the Output's class count while the worker prepares the data.

        Its first matrix creates one text item per cell (~0.3 s for 10 classes on a busy 2-core machine);
        paid now, the first epoch's matrix does not stall the window mid-training.
        """
        counts = [node.params.get("classes") for node in self.window.project.graph if node.type == "Output"]
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

    def _on_worker_started(self, payload: dict[str, Any]) -> None:
        from dlstudio.core.training.runs import record_run  # torch is loaded by now (the worker imported it)

        run_dir = self.run_dir = self._active_run = Path(payload["run_dir"])
        self.class_names = list(payload["class_names"])
        if not payload["resumed"]:
            # Reads the statistics from the run's settings.json, as TrainingSession.record takes them.
            record_run(self.window.project, run_dir)
            self.window.save_quietly()  # as dlstudio train does: the project file lists the run at once
            self.window.data_panel.show_normalization()
        self.panel.show_started(payload)
        self.curves.start_run(run_dir.name, payload.get("epochs"))
        for metrics in payload.get("history", ()):
            self.curves.add_epoch(metrics)
        self.filters.set_layers([tuple(layer) for layer in payload["conv_layers"]])
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
        self.refresh_runs()  # the run's row shows its epochs and best accuracy so far

    def _on_worker_filters_updated(self, node_id: str, weights: Any) -> None:
        if node_id == self.filters.current_layer():
            self.filters.set_weights(weights)

    def _on_worker_paused(self) -> None:
        self._set_state("paused")

    def _on_worker_resumed(self) -> None:
        self._set_state("training")

    def _on_worker_finished(self, summary: dict[str, Any]) -> None:
        self.panel.show_finished(summary)
        status = summary["status"]
        self._set_state(status, summary.get("message", ""))
        if status == "failed":
            self.window.statusBar().showMessage(f"Training failed: {summary.get('message', '')}", 10000)

    def _on_worker_failed(self, message: str) -> None:
        self.panel.show_error(message)
        self._set_state("failed", message)

    def _on_worker_ended(self) -> None:
        worker, self.worker = self.worker, None
        self._active_run = None
        if worker is not None:
            worker.deleteLater()
        self.panel.set_running(False)
        self.window.set_editing_locked(False)
        if self.state in ("preparing", "training", "pausing", "paused", "stopping"):
            self._set_state("stopped")
        self._update_actions()
        self.refresh_runs()

    # -- panels' signals ------------------------------------------------------------

    def _on_panel_edit_requested(self, key: str, value: Any) -> None:
        from dlstudio.gui.commands import SetSettingCommand

        self.window.push(SetSettingCommand(self.window.project, "training", key, value))

    def _on_runs_run_deleted(self, run_dir: str) -> None:
        """Forget a deleted run; the file is saved at once when nothing else is unsaved (it lists existing runs)."""
        project = self.window.project
        if project.path is None:
            return
        gone = Path(run_dir).resolve()
        kept = [entry for entry in project.runs if (project.path.parent / entry).resolve() != gone]
        if len(kept) != len(project.runs):
            project.runs[:] = kept
            if not self.window.is_dirty():
                self.window.save_quietly()
        self.refresh_runs()

    def _on_runs_continue_requested(self, run_dir: str) -> None:
        self.continue_run(run_dir)

    def _on_filters_layer_chosen(self, node_id: str) -> None:
        if self.worker is not None:
            self.worker.set_filter_layer(node_id)

    def _on_confusion_cell_clicked(self, true: int, predicted: int) -> None:
        names = self.class_names
        if 0 <= true < len(names) and 0 <= predicted < len(names):
            self.window.statusBar().showMessage(f"Validation samples of class {names[true]} predicted as "
                                                f"{names[predicted]}", 6000)

    def _on_runs_selection_changed(self, run_dirs: list[str]) -> None:
        if not run_dirs:
            self.curves.set_overlays({})
            return
        self._run_in_background(_read_curves, list(run_dirs), on_finished=self.curves.set_overlays)

    # -- state ---------------------------------------------------------------

    def _set_state(self, state: str, detail: str = "") -> None:
        self.state = state
        self.panel.show_state(state, detail if state == "failed" else "")
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
        self.pause_action.setText("&Resume" if running and worker.is_paused else "&Pause")  # type: ignore[union-attr]
        self.stop_action.setEnabled(running and not stopping)
        self.runs.set_training(running, self._active_run if running else None)


def _warm_up_job(context: TaskContext) -> None:
    from dlstudio.core.training.warmup import warm_up_training

    warm_up_training()


def _ignore(result: object) -> None:
    """Nothing to do with a warm-up's result."""

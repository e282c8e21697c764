"""Training › Sweep…: ranges per setting or node parameter, then the trials as they run.

The top half gathers the sweep: rows of (what to vary, kind of range, low, high or choices),
the number of trials, the sampler and pruning. Start checks every row with the core's parser
(an error names the row's parameter), then runs :func:`dlstudio.core.sweep.runner.run_sweep`
on a :class:`~dlstudio.gui.worker.BackgroundTask`: the trials run one after another on that
thread, each a normal run of the project. The table below shows each trial (values, state,
validation accuracy) with the best one in bold; ``run_started`` and ``run_finished`` tell the window
about each trial's run folder so the project and the Runs dock list it. Stop ends the running trial
after its batch. The Results tab plots Optuna's parameter importance and each trial's objective
against a chosen parameter (:class:`~dlstudio.gui.sweep_results_view.SweepResultsView`), redrawn on
the worker thread's data after every finished trial.
"""

from __future__ import annotations

import os
import sys
import traceback
from pathlib import Path
from typing import TYPE_CHECKING, Any

from PySide6.QtCore import Qt, Signal
from PySide6.QtGui import QCloseEvent, QFont
from PySide6.QtWidgets import (QAbstractItemView, QCheckBox, QComboBox, QDialog, QFormLayout, QHBoxLayout,
                               QHeaderView, QLabel, QLineEdit, QPushButton, QSpinBox, QTableWidget,
                               QTableWidgetItem, QTabWidget, QVBoxLayout, QWidget)

from dlstudio.gui.sweep_results_view import SweepResultsView
from dlstudio.gui.theme import ERROR, HINT, set_tone
from dlstudio.gui.worker import BackgroundTask

if TYPE_CHECKING:
    from dlstudio.core.project.model import Project
    from dlstudio.core.sweep.runner import SweepControl

TARGET, KIND, LOW, HIGH = range(4)
TRIAL, VALUES, STATE, ACCURACY = range(4)
DEFAULT_TRIALS = 10
# How long closing the dialog waits for the running trial to stop after its batch.
STOP_WAIT_MS = 60_000


def _run_sweep_job(context: Any, settings: Any, project: Project, control: SweepControl) -> Any:
    """On the worker thread: the trials a continued study holds already, then the sweep's events as they happen,
    and the plots' data (``{"results": SweepResults}``) at the start and after each trial that ends."""
    from dataclasses import asdict

    from dlstudio.core.sweep.runner import run_sweep

    def report(event: Any) -> None:
        context.report(asdict(event), force=True)
        if event.state in ("complete", "pruned"):
            _report_results(context, settings)

    for event in _earlier_trials(settings):
        context.report(event, force=True)
    _report_results(context, settings)
    outcome = run_sweep(settings, project, report, control)
    _report_results(context, settings)
    return outcome


def _report_results(context: Any, settings: Any) -> None:
    """The sweep's importances and scatters as they stand (nothing while the study has no trials)."""
    from dlstudio.core.sweep.results import sweep_results
    from dlstudio.core.sweep.space import SweepError
    from dlstudio.core.sweep.study import open_study

    if not settings.study.path.is_file():
        return
    try:
        study = open_study(settings.study, create=False)
        results = sweep_results(study, settings.study.params, settings.study.metric)
    except SweepError:
        return  # no study of this name yet
    except Exception:  # noqa: BLE001 - the plots must never end the sweep; the details go to the error log
        traceback.print_exc(file=sys.stderr)
        return
    context.report({"results": results}, force=True)


def _earlier_trials(settings: Any) -> list[dict[str, Any]]:
    """The trials of the study this sweep continues, as trial events (no run folder: they are listed already)."""
    from dlstudio.core.sweep.space import SweepError
    from dlstudio.core.sweep.study import open_study, trial_rows

    if not settings.study.path.is_file():
        return []
    try:
        rows = trial_rows(open_study(settings.study, create=False))
    except SweepError:
        return []  # no study of this name yet; another refusal is the sweep's own to report
    return [{"number": row["number"], "state": row["state"], "params": row["params"], "target": settings.trials,
             "value": row["value"], "epoch": 0, "epochs": row["epochs"] or 0, "pruned_at": row["pruned_at"],
             "run_dir": None, "message": row["message"]} for row in rows if row["state"] != "running"]


def _snapshot(project: Project) -> Project:
    """A copy of what trials start from, taken on the GUI thread: edits made while the sweep runs do not reach it."""
    from dlstudio.core.project.model import Project

    copy = Project(graph=project.graph.copy(), data=dict(project.data), training=dict(project.training),
                   weights=project.weights, path=project.path)
    copy.frozen.set(list(project.frozen), True)
    return copy


class SweepDialog(QDialog):
    """Set up and watch a sweep of ``project`` (saved: its runs and study file live beside it)."""

    run_started = Signal(str)  # a trial's run folder, once it exists (the sweep listed it in the project file)
    run_finished = Signal(str)  # a trial's run folder, once the trial ended
    sweep_ended = Signal(str)  # how the sweep ended, in words

    def __init__(self, project: Project, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.project = project
        self.setWindowTitle("Sweep")
        self.task: BackgroundTask | None = None
        self.control: SweepControl | None = None
        self._rows_of_trials: dict[int, int] = {}
        self._values: dict[int, float] = {}
        self.best_trial: int | None = None
        self._metric = "val_accuracy"

        from dlstudio.core.sweep.space import sweepable_targets

        self.targets = sweepable_targets(project.graph)
        self.ranges = QTableWidget(0, 4)
        self.ranges.setHorizontalHeaderLabels(["Setting or node parameter", "Range", "Low", "High or choices"])
        self.ranges.horizontalHeader().setSectionResizeMode(TARGET, QHeaderView.ResizeMode.Stretch)
        self.ranges.setColumnWidth(HIGH, 150)  # room for "32,64,128" and the header's words
        self.ranges.verticalHeader().setVisible(False)
        self.ranges.setSelectionBehavior(QAbstractItemView.SelectionBehavior.SelectRows)
        add = QPushButton("Add")
        add.setToolTip("Vary one more setting or node parameter")
        add.clicked.connect(lambda: self.add_row())
        remove = QPushButton("Remove")
        remove.setToolTip("Stop varying the selected row")
        remove.clicked.connect(self._remove_selected_row)
        self.range_buttons = (add, remove)

        self.trials = QSpinBox()
        self.trials.setRange(1, 10_000)
        self.trials.setValue(DEFAULT_TRIALS)
        self.trials.setToolTip("Trials the sweep holds when done, counting those of an earlier sweep of this name")
        self.parallel = QSpinBox()
        self.parallel.setRange(1, max(1, os.cpu_count() or 1))
        self.parallel.setValue(1)
        self.parallel.setToolTip("Trials trained at the same time, each in a process of its own with a share of the "
                                 "CPU cores: it pays off on a machine with many cores, not on one with two")
        self.epochs = QSpinBox()
        self.epochs.setRange(1, 100_000)
        self.epochs.setValue(int(project.training.get("epochs") or 10))
        self.epochs.setToolTip("Epochs of each trial")
        self.sampler = QComboBox()
        for label, name in (("TPE (learns from earlier trials)", "tpe"), ("Random", "random"),
                            ("Grid (ranges at 5 points)", "grid")):
            self.sampler.addItem(label, name)
        self.pruning = QCheckBox("Stop hopeless trials early (median pruning)")
        self.pruning.setChecked(True)
        self.name = QLineEdit("sweep")
        self.name.setToolTip("The study's name in the study file: a sweep of the same name continues it")
        form = QFormLayout()
        form.addRow("Trials", self.trials)
        form.addRow("Trials at once", self.parallel)
        form.addRow("Epochs per trial", self.epochs)
        form.addRow("Sampler", self.sampler)
        form.addRow("", self.pruning)
        form.addRow("Name", self.name)

        self.table = QTableWidget(0, 4)
        self.table.setHorizontalHeaderLabels(["Trial", "Values", "State", "Val accuracy"])
        self.table.horizontalHeader().setSectionResizeMode(VALUES, QHeaderView.ResizeMode.Stretch)
        self.table.horizontalHeader().setSectionResizeMode(STATE, QHeaderView.ResizeMode.ResizeToContents)
        self.table.verticalHeader().setVisible(False)
        self.table.setEditTriggers(QAbstractItemView.EditTrigger.NoEditTriggers)
        self.results_view = SweepResultsView()
        self.tabs = QTabWidget()
        self.tabs.addTab(self.table, "Trials")
        self.tabs.addTab(self.results_view, "Results")
        self.tabs.setTabToolTip(1, "Parameter importance and each trial's result against a parameter")

        self.status = QLabel("")
        self.status.setWordWrap(True)
        self.start_button = QPushButton("Start")
        self.start_button.clicked.connect(self.start)
        self.stop_button = QPushButton("Stop")
        self.stop_button.setEnabled(False)
        self.stop_button.setToolTip("Stop the running trial after its batch; finished trials stay in the study")
        self.stop_button.clicked.connect(self.stop)
        close = QPushButton("Close")
        close.clicked.connect(self.close)

        buttons = QHBoxLayout()
        buttons.addWidget(self.status, 1)
        buttons.addWidget(self.start_button)
        buttons.addWidget(self.stop_button)
        buttons.addWidget(close)
        range_buttons = QHBoxLayout()
        range_buttons.addWidget(add)
        range_buttons.addWidget(remove)
        range_buttons.addStretch(1)
        layout = QVBoxLayout(self)
        layout.addWidget(self.ranges, 2)
        layout.addLayout(range_buttons)
        layout.addLayout(form)
        layout.addWidget(self.tabs, 3)
        layout.addLayout(buttons)
        self.resize(760, 620)
        self._add_default_rows()

    # -- the ranges -----------------------------------------------------------------------------------------------

    def _add_default_rows(self) -> None:
        from dlstudio.core.sweep.space import first_conv_channels

        self.add_row("training.learning_rate", "log", "1e-4", "1e-1")
        self.add_row("training.batch_size", "choice", "", "32,64,128")
        conv = first_conv_channels(self.project.graph)
        if conv is not None:
            self.add_row(conv, "int", "4", "32")

    def add_row(self, target: str | None = None, kind: str | None = None, low: str | None = None,
                high: str | None = None) -> int:
        """Add a range row (the first target not yet varied by default); returns its row."""
        row = self.ranges.rowCount()
        self.ranges.insertRow(row)
        from dlstudio.core.sweep.space import target_label

        chooser = QComboBox()
        for name in self.targets:  # the person's words shown, the command line's name kept (and in the tooltip)
            chooser.addItem(target_label(name, self.project.graph), name)
            chooser.setItemData(chooser.count() - 1, name, Qt.ItemDataRole.ToolTipRole)
        kinds = QComboBox()
        self.ranges.setCellWidget(row, TARGET, chooser)
        self.ranges.setCellWidget(row, KIND, kinds)
        self.ranges.setCellWidget(row, LOW, QLineEdit())
        self.ranges.setCellWidget(row, HIGH, QLineEdit())
        taken = {self.row_values(other)[0] for other in range(row)}
        target = target or next((name for name in self.targets if name not in taken), self.targets[0])
        chooser.setCurrentIndex(max(0, chooser.findData(target)))
        self._on_target_chosen(chooser, target)
        if kind is not None:
            kinds.setCurrentText(kind)
        if low is not None:
            self._line(row, LOW).setText(low)
        if high is not None:
            self._line(row, HIGH).setText(high)
        chooser.currentIndexChanged.connect(
            lambda _index, chooser=chooser: self._on_target_chosen(chooser, str(chooser.currentData())))
        kinds.currentTextChanged.connect(lambda text, kinds=kinds: self._on_kind_chosen(kinds, text))
        return row

    def _row_of(self, widget: QWidget, column: int) -> int:
        return next(row for row in range(self.ranges.rowCount()) if self.ranges.cellWidget(row, column) is widget)

    def _line(self, row: int, column: int) -> QLineEdit:
        widget = self.ranges.cellWidget(row, column)
        assert isinstance(widget, QLineEdit)
        return widget

    def _on_target_chosen(self, chooser: QComboBox, target: str) -> None:
        from dlstudio.core.sweep.space import default_range, range_kinds

        row = self._row_of(chooser, TARGET)
        kind, low, high = default_range(target, self.project.graph, self.project.training)
        kinds = self.ranges.cellWidget(row, KIND)
        assert isinstance(kinds, QComboBox)
        kinds.blockSignals(True)
        kinds.clear()
        kinds.addItems(list(range_kinds(target, self.project.graph)))
        kinds.setCurrentText(kind)
        kinds.blockSignals(False)
        self._line(row, LOW).setText(low)
        self._line(row, HIGH).setText(high)
        self._on_kind_chosen(kinds, kind)

    def _on_kind_chosen(self, kinds: QComboBox, kind: str) -> None:
        row = self._row_of(kinds, KIND)
        low = self._line(row, LOW)
        low.setEnabled(kind != "choice")  # a choice lists its values in the last column
        self._line(row, HIGH).setPlaceholderText("a,b,c" if kind == "choice" else "high")

    def _remove_selected_row(self) -> None:
        rows = sorted({index.row() for index in self.ranges.selectedIndexes()}, reverse=True)
        for row in rows or [self.ranges.rowCount() - 1]:
            if row >= 0:
                self.ranges.removeRow(row)

    def _label(self, target: str) -> str:
        """The person's words for a varied setting ("Learning rate"); the key if the node was renamed since."""
        from dlstudio.core.errors import DlstudioError
        from dlstudio.core.sweep.space import target_label

        try:
            return target_label(target, self.project.graph)
        except DlstudioError:
            return target

    def row_values(self, row: int) -> tuple[str, str, str, str]:
        """(target, kind, low, high or choices) of a range row, as written."""
        chooser, kinds = self.ranges.cellWidget(row, TARGET), self.ranges.cellWidget(row, KIND)
        assert isinstance(chooser, QComboBox) and isinstance(kinds, QComboBox)
        return (str(chooser.currentData()), kinds.currentText(), self._line(row, LOW).text().strip(),
                self._line(row, HIGH).text().strip())

    def param_texts(self) -> list[str]:
        """The rows as the command line writes them: ``TARGET=KIND:LOW:HIGH`` or ``TARGET=choice:A,B``."""
        texts = []
        for row in range(self.ranges.rowCount()):
            target, kind, low, high = self.row_values(row)
            texts.append(f"{target}=choice:{high}" if kind == "choice" else f"{target}={kind}:{low}:{high}")
        return texts

    # -- running ------------------------------------------------------------------------------------------------

    def is_running(self) -> bool:
        return self.task is not None

    def start(self) -> bool:
        """Check the rows and start the sweep; False (the reason in the dialog) when it cannot start."""
        from dlstudio.core.errors import DlstudioError
        from dlstudio.core.sweep.runner import SweepControl, SweepSettings
        from dlstudio.core.sweep.space import parse_params
        from dlstudio.core.sweep.study import StudySpec, study_path

        if self.task is not None:
            return False
        if self.project.path is None:
            self._say("Save the project first: the trials' runs and the study file live beside it.", error=True)
            return False
        name = self.name.text().strip()
        if not name:
            self._say("Give the sweep a name.", error=True)
            return False
        try:
            params = parse_params(self.param_texts(), self.project.graph)
        except DlstudioError as error:
            self._say(error.message, error=True)
            return False
        path = Path(self.project.path)
        spec = StudySpec(study_path(path), name, tuple(params), str(self.sampler.currentData()), self._metric,
                         self.pruning.isChecked())
        settings = SweepSettings(path, spec, self.trials.value(), epochs=self.epochs.value(),
                                 parallel=self.parallel.value())
        self.table.setRowCount(0)
        self._rows_of_trials.clear()
        self._values.clear()
        self.best_trial = None
        self.results_view.clear()
        self.control = SweepControl()
        self.task = BackgroundTask(_run_sweep_job, settings, _snapshot(self.project), self.control, parent=self)
        self.task.progress.connect(self._on_task_progress)
        self.task.finished.connect(self._on_task_finished)
        self.task.failed.connect(self._on_task_failed)
        self.task.done.connect(self._on_task_done)
        self._set_running(True)
        at_once = self.parallel.value()
        self._say(f"Sweeping: {self.trials.value()} trials" + (f", {at_once} at once…" if at_once > 1 else "…"))
        self.task.start()
        return True

    def stop(self) -> None:
        """Stop the running trial after its batch and start no other; finished trials stay in the study."""
        if self.control is not None:
            self.control.stop()
            self.stop_button.setEnabled(False)
            self._say("Stopping after this batch…")

    def stop_and_wait(self, timeout_ms: int = STOP_WAIT_MS) -> bool:
        """Stop and wait for the worker thread to end (the dialog or the window is closing)."""
        if self.task is None:
            return True
        self.stop()
        return self.task.wait(timeout_ms)

    def _set_running(self, running: bool) -> None:
        self.start_button.setEnabled(not running)
        self.stop_button.setEnabled(running)
        for widget in (self.ranges, self.trials, self.parallel, self.epochs, self.sampler, self.pruning, self.name,
                       *self.range_buttons):
            widget.setEnabled(not running)

    def _say(self, text: str, error: bool = False) -> None:
        self.status.setText(text)
        set_tone(self.status, ERROR if error else HINT)  # readable in both themes

    def _on_task_progress(self, event: dict[str, Any]) -> None:
        if "results" in event:
            self.results_view.show_results(event["results"])
            return
        number = int(event["number"])
        row = self._rows_of_trials.get(number)
        if row is None:
            row = self._rows_of_trials[number] = self.table.rowCount()
            self.table.insertRow(row)
            for column in range(4):
                self.table.setItem(row, column, QTableWidgetItem(""))
            self.table.item(row, TRIAL).setText(str(number + 1))
            values = ", ".join(f"{self._label(name)} {_short(value)}" for name, value in event["params"].items())
            self.table.item(row, VALUES).setText(values)
        state = event["state"]
        shown = state
        if state == "running" and event["epoch"]:
            shown = f"running (epoch {event['epoch']}/{event['epochs']})"
        elif state == "pruned" and event.get("pruned_at"):
            shown = f"pruned at epoch {event['pruned_at']}"
        elif state == "failed" and event.get("message"):
            shown = f"failed: {event['message']}"
        self.table.item(row, STATE).setText(shown)
        self.table.item(row, STATE).setToolTip(event.get("message") or "")
        value = event.get("value")
        self.table.item(row, ACCURACY).setText(f"{value:.2%}" if value is not None else "")
        if state == "complete" and value is not None:
            self._values[number] = float(value)
            self._highlight_best()
        if event.get("run_dir") and state == "running" and not event["epoch"]:
            self.run_started.emit(str(event["run_dir"]))
        elif event.get("run_dir") and state != "running":
            self.run_finished.emit(str(event["run_dir"]))
        self.table.scrollToItem(self.table.item(row, TRIAL))

    def _highlight_best(self) -> None:
        best = max(self._values, key=lambda number: self._values[number])
        self.best_trial = best
        for number, row in self._rows_of_trials.items():
            for column in range(4):
                item = self.table.item(row, column)
                font = QFont(item.font())
                font.setBold(number == best)
                item.setFont(font)
        self.table.item(self._rows_of_trials[best], TRIAL).setToolTip("The best trial so far")

    def _on_task_finished(self, outcome: Any) -> None:
        tally = outcome.counts
        how = "stopped" if outcome.stopped else "time budget spent" if outcome.timed_out else "done"
        self._say(f"Sweep {how}: {tally['done']}/{outcome.target} trials ({tally['complete']} complete, "
                  f"{tally['pruned']} pruned, {tally['failed']} failed); study in {outcome.study_path.name}")
        self.sweep_ended.emit(how)

    def _on_task_failed(self, message: str) -> None:
        self._say(f"The sweep stopped: {message}", error=True)
        self.sweep_ended.emit("failed")

    def _on_task_done(self) -> None:
        task, self.task = self.task, None
        self.control = None
        self._set_running(False)
        if task is not None:
            task.deleteLater()

    def closeEvent(self, event: QCloseEvent) -> None:
        self.stop_and_wait()  # a thread must not outlive its dialog
        super().closeEvent(event)

    def reject(self) -> None:  # Escape
        self.stop_and_wait()
        super().reject()


def _short(value: Any) -> str:
    return f"{value:.4g}" if isinstance(value, float) else str(value)

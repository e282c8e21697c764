"""The Training dock: the training settings, Start / Pause / Stop, progress and the last epoch's metrics.

The panel shows; it decides nothing. Its buttons carry the window's actions
(so the menu, the toolbar, the shortcuts and the buttons share one enabled
state), settings edits leave as ``edit_requested`` (the window makes them
undo steps), and the window feeds it the training worker's payloads.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from PySide6.QtCore import Qt, Signal
from PySide6.QtGui import QAction
from PySide6.QtWidgets import (QFrame, QGridLayout, QGroupBox, QHBoxLayout, QLabel, QProgressBar, QScrollArea,
                               QSizePolicy, QToolButton, QVBoxLayout, QWidget)

from dlstudio.core.project.settings import TRAINING_SETTINGS, inapplicable_training_settings
from dlstudio.gui.settings_form import SettingsForm
from dlstudio.gui.theme import ERROR, HINT, set_tone

# What the state line says; the window passes one of these keys.
STATE_TEXT = {
    "idle": "Ready to train",
    "preparing": "Preparing the data and the model…",
    "training": "Training",
    "pausing": "Pausing after this batch…",
    "paused": "Paused",
    "stopping": "Stopping after this batch…",
    "completed": "Finished",
    "early_stopped": "Stopped early (no improvement)",
    "stopped": "Stopped; the run can be resumed from its last checkpoint",
    "failed": "Training failed",
}


# How a finished run's status reads in its summary line (summarize_run's statuses).
RUN_STATUS_TEXT = {
    "completed": "completed",
    "early_stopped": "stopped early",
    "stopped": "stopped",
    "failed": "failed",
    "incomplete": "did not finish",
    "damaged": "damaged",
    "missing": "missing",
}


def format_duration(seconds: float | None) -> str:
    """``75`` -> ``"1:15"``, ``3725`` -> ``"1:02:05"``; ``—`` when unknown."""
    if seconds is None or seconds != seconds or seconds < 0:
        return "—"
    whole = int(round(seconds))
    hours, minutes, secs = whole // 3600, whole // 60 % 60, whole % 60
    return f"{hours}:{minutes:02d}:{secs:02d}" if hours else f"{minutes}:{secs:02d}"


def _percent(value: float | None) -> str:
    return "—" if value is None else f"{value:.1%}"


def _number(value: float | None) -> str:
    return "—" if value is None else f"{value:.4f}"


def _sentence(text: str) -> str:
    return text[:1].upper() + text[1:]


def epoch_text(metrics: dict[str, Any]) -> str:
    """The last epoch in two short lines (train, then validation and learning rate)."""
    train = f"train loss {_number(metrics.get('train_loss'))}"
    if metrics.get("train_accuracy") is not None:
        train += f" · accuracy {_percent(metrics['train_accuracy'])}"
    parts = []
    if metrics.get("val_loss") is not None:
        parts.append(f"val loss {_number(metrics['val_loss'])}")
    if metrics.get("val_accuracy") is not None:
        parts.append(f"accuracy {_percent(metrics['val_accuracy'])}")
    parts.append(f"lr {metrics.get('learning_rate', 0.0):.3g}")
    best = " (best so far)" if metrics.get("is_best") else ""
    return f"Epoch {metrics['epoch']}{best}: {train}\n" + " · ".join(parts)


class TrainingPanel(QWidget):
    """Training settings, run controls and progress. ``start``, ``pause`` and ``stop`` are the window's actions."""

    edit_requested = Signal(str, object)  # training setting name, validated value

    def __init__(self, start: QAction, pause: QAction, stop: QAction, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.setObjectName("TrainingPanel")
        self.buttons: dict[str, QToolButton] = {}
        controls = QHBoxLayout()
        for name, action in (("start", start), ("pause", pause), ("stop", stop)):
            button = QToolButton()
            button.setObjectName(f"training_{name}_button")
            button.setDefaultAction(action)
            button.setToolButtonStyle(Qt.ToolButtonStyle.ToolButtonTextOnly)
            button.setSizePolicy(QSizePolicy.Policy.Expanding, QSizePolicy.Policy.Fixed)
            controls.addWidget(button)
            self.buttons[name] = button

        self.state_label = QLabel(STATE_TEXT["idle"])
        self.state_label.setObjectName("training_state")
        self.state_label.setWordWrap(True)
        self.progress = QProgressBar()
        self.progress.setObjectName("training_progress")
        self.progress.setRange(0, 1)
        self.progress.setValue(0)
        self.progress.setTextVisible(True)
        self.progress.setFormat("no run yet")

        figures = QGridLayout()
        figures.setHorizontalSpacing(12)
        self.rate_label, self.eta_label, self.elapsed_label = QLabel("—"), QLabel("—"), QLabel("—")
        for column, (title, label) in enumerate((("samples/s", self.rate_label), ("ETA", self.eta_label),
                                                 ("elapsed", self.elapsed_label))):
            caption = QLabel(title)
            set_tone(caption, HINT)  # dimmer than the figures, still 4.5:1 in both themes
            figures.addWidget(caption, 0, column)
            figures.addWidget(label, 1, column)

        self.epoch_label = QLabel("")
        self.epoch_label.setObjectName("training_epoch")
        self.epoch_label.setWordWrap(True)
        self.run_label = QLabel("")
        self.run_label.setObjectName("training_run")
        self.run_label.setWordWrap(True)
        self.run_label.setTextInteractionFlags(Qt.TextInteractionFlag.TextSelectableByMouse)
        self.weights_label = QLabel("")  # what the run's starting weights loaded
        self.weights_label.setObjectName("training_weights")
        self.weights_label.setWordWrap(True)
        set_tone(self.weights_label, HINT)
        self.weights_label.hide()
        self.error_label = QLabel("")
        self.error_label.setObjectName("training_error")
        self.error_label.setWordWrap(True)
        set_tone(self.error_label, ERROR)
        self.error_label.hide()

        self.form = SettingsForm(TRAINING_SETTINGS)
        self.form.edit_requested.connect(self.edit_requested)
        settings_box = QGroupBox("Settings")
        box_layout = QVBoxLayout(settings_box)
        box_layout.addWidget(self.form)

        content = QWidget()
        layout = QVBoxLayout(content)
        layout.addLayout(controls)
        layout.addWidget(self.state_label)
        layout.addWidget(self.progress)
        layout.addLayout(figures)
        layout.addWidget(self.epoch_label)
        layout.addWidget(self.error_label)
        layout.addWidget(self.run_label)
        layout.addWidget(self.weights_label)
        self._sections = QVBoxLayout()  # the window's own sections (starting weights), above the settings
        self._sections.setContentsMargins(0, 0, 0, 0)
        layout.addLayout(self._sections)
        layout.addWidget(settings_box)
        layout.addStretch(1)
        scroll = QScrollArea()
        scroll.setWidgetResizable(True)
        scroll.setHorizontalScrollBarPolicy(Qt.ScrollBarPolicy.ScrollBarAlwaysOff)  # the form follows the width
        scroll.setFrameShape(QFrame.Shape.NoFrame)
        scroll.setWidget(content)
        outer = QVBoxLayout(self)
        outer.setContentsMargins(0, 0, 0, 0)
        outer.addWidget(scroll)

    def add_section(self, widget: QWidget) -> None:
        """Show ``widget`` above the settings (e.g. the starting weights)."""
        self._sections.addWidget(widget)

    # -- settings ----------------------------------------------------------

    def set_settings(self, values: dict[str, Any], *, pretrained: bool = False) -> None:
        """Show the project's training settings (the dict is read, never written); those that change nothing
        with the others as they are (momentum under Adam, say) are greyed, with the reason as their tooltip.
        ``pretrained``: the network starts from weights."""
        self.form.set_values(values)
        self.form.set_inapplicable(inapplicable_training_settings(values, pretrained=pretrained))

    def set_running(self, running: bool) -> None:
        """Settings are read-only while a run trains (the run uses those it started with)."""
        self.form.set_read_only(running)

    # -- what the run does ---------------------------------------------------

    def show_state(self, state: str, detail: str = "") -> None:
        text = STATE_TEXT.get(state, state)
        self.state_label.setText(f"{text}: {detail}" if detail else text)

    def show_error(self, message: str) -> None:
        """A one-line reason the run was refused or failed; an empty message hides the line."""
        self.error_label.setText(message)
        self.error_label.setVisible(bool(message))

    def clear_run(self) -> None:
        """Back to the state before any run: no progress, figures, metrics, run line or error (a new project)."""
        self.show_state("idle")
        self.progress.setRange(0, 1)
        self.progress.setValue(0)
        self.progress.setFormat("no run yet")
        for label in (self.rate_label, self.eta_label, self.elapsed_label):
            label.setText("—")
        self.epoch_label.setText("")
        self.run_label.setText("")
        self.run_label.setToolTip("")
        self.show_weights("")
        self.show_error("")

    def show_run_summary(self, summary: dict[str, Any]) -> None:
        """Show a run that is not training now (the latest run of a reopened project), from ``summarize_run()``.

        One line for the run (``Run 20261203-101500 · completed · 15/15 epochs · best val 98.1%``), its
        epochs on the progress bar, and the reason when it failed or its folder cannot be read.
        """
        self.clear_run()
        status = str(summary.get("status") or "incomplete")
        epochs = int(summary.get("epochs") or 0)
        planned = summary.get("planned_epochs")
        parts = [f"Run {summary.get('name', '')}", RUN_STATUS_TEXT.get(status, status.replace("_", " "))]
        parts.append(f"{epochs}/{planned} epochs" if planned else f"{epochs} epoch{'s' if epochs != 1 else ''}")
        if summary.get("best_val_accuracy") is not None:
            parts.append(f"best val {_percent(summary['best_val_accuracy'])}")
        if summary.get("test_accuracy") is not None:
            parts.append(f"test {_percent(summary['test_accuracy'])}")
        self.run_label.setText(" · ".join(parts))
        self.run_label.setToolTip(str(summary.get("run_dir", "")))
        total = int(planned) if planned else max(epochs, 1)
        self.progress.setRange(0, max(total, 1))
        self.progress.setValue(min(epochs, total))
        self.progress.setFormat(f"{epochs}/{planned} epochs" if planned else f"{epochs} epochs")
        details = []
        if summary.get("best_val_accuracy") is not None:
            best_epoch = summary.get("best_epoch")
            details.append(f"Best validation accuracy {_percent(summary['best_val_accuracy'])}"
                           + (f" (epoch {best_epoch})" if best_epoch is not None else ""))
        if summary.get("last_val_loss") is not None:
            details.append(f"last val loss {_number(summary['last_val_loss'])}")
        self.epoch_label.setText(" · ".join(details))
        if status in ("failed", "damaged", "missing") and summary.get("message"):
            self.show_error(str(summary["message"]))

    def show_started(self, payload: dict[str, Any]) -> None:
        self.show_error("")
        sizes = payload.get("sizes", {})
        layout = (", memory layout tuned while training" if payload.get("layout_tuned")
                  else ", channels-last" if payload.get("channels_last") else "")
        self.run_label.setText(
            f"Run {payload['run_dir'].replace(chr(92), '/').rsplit('/', 1)[-1]} on {payload['device']}{layout} · "
            f"{sizes.get('train', 0):,} train / {sizes.get('val', 0):,} val / {sizes.get('test', 0):,} test samples")
        self.run_label.setToolTip(payload["run_dir"])
        frozen = int(payload.get("frozen") or 0)
        self.show_weights(" · ".join(part for part in (
            _sentence(str(payload.get("weights") or "")),
            f"{frozen} frozen layer{'s' if frozen != 1 else ''}" if frozen else "") if part))
        batches, epochs = int(payload["batches_per_epoch"]), int(payload["epochs"])
        self.progress.setRange(0, max(1, batches * epochs))
        done = len(payload.get("history", ()))
        self.progress.setValue(done * batches)
        self.progress.setFormat(f"epoch {min(done + 1, epochs)}/{epochs} · batch 0/{batches}")
        if payload.get("history"):
            self.show_epoch(payload["history"][-1])
        else:
            self.epoch_label.setText("")
        skipped = payload.get("skipped") or []
        if skipped:  # "path: reason"; the Data tab lists them all
            path, _, reason = str(skipped[0]).partition(": ")
            files = ("1 file that is not a readable image" if len(skipped) == 1
                     else f"{len(skipped)} files that are not readable images")
            self.show_error(f"Trained without {files} (listed in the Data tab), e.g. {Path(path).name}: {reason}")

    def show_weights(self, text: str) -> None:
        """What the run's starting weights loaded (and how many layers are frozen); empty hides the line."""
        self.weights_label.setText(text)
        self.weights_label.setVisible(bool(text))

    def show_progress(self, payload: dict[str, Any]) -> None:
        epoch, epochs = payload["epoch"], payload["epochs"]
        batch, batches = payload["batch"], payload["batches"]
        self.progress.setMaximum(max(1, batches * epochs))
        self.progress.setValue((epoch - 1) * batches + batch)
        self.progress.setFormat(f"epoch {epoch}/{epochs} · batch {batch}/{batches}")
        self.rate_label.setText(f"{payload['samples_per_second']:,.0f}")
        self.eta_label.setText(format_duration(payload.get("eta_seconds")))
        self.elapsed_label.setText(format_duration(payload.get("elapsed_seconds")))

    def show_epoch(self, metrics: dict[str, Any]) -> None:
        self.epoch_label.setText(epoch_text(metrics))

    def show_finished(self, summary: dict[str, Any]) -> None:
        status = summary.get("status", "completed")
        detail = ""
        if summary.get("test_accuracy") is not None:
            detail = f"test accuracy {_percent(summary['test_accuracy'])}"
        self.show_state(status, detail)
        if status == "completed":
            self.progress.setValue(self.progress.maximum())
        self.eta_label.setText("—")
        if summary.get("samples_per_second"):
            self.rate_label.setText(f"{summary['samples_per_second']:,.0f}")  # the whole run's rate
        if summary.get("seconds") is not None:
            self.elapsed_label.setText(format_duration(summary["seconds"]))
        if status == "failed":
            self.show_error(summary.get("message", ""))

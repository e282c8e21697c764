"""Dream: grow an image that excites a chosen channel (activation maximization from noise), or amplify what a
layer sees in the current image (DeepDream over several octaves), and watch it evolve.

The core generators run in ``session.submit``; each step is checked for a
stop request and reported (throttled to ~20 per second) as a numpy copy, so
the image evolves live and Stop ends the run within one step. The channel
offered first for a layer is its most responsive one (a dead channel 0 would
dream noise), found by one forward pass on the worker; once the person picks
a channel for a layer, that pick stays.
"""

from __future__ import annotations

import time
from pathlib import Path
from typing import Any

import numpy as np
from PySide6.QtCore import Signal
from PySide6.QtGui import QColor, QFont
from PySide6.QtWidgets import (
    QComboBox,
    QDoubleSpinBox,
    QFileDialog,
    QGridLayout,
    QHBoxLayout,
    QLabel,
    QPushButton,
    QSpinBox,
    QVBoxLayout,
    QWidget,
)

from dlstudio.gui.inspect.image_view import ImageView, raw_to_rgba
from dlstudio.gui.inspect.model_session import ModelSession
from dlstudio.gui.inspect.node_outputs import file_stem, shape_text
from dlstudio.gui.inspect.session_view import SessionView
from dlstudio.gui.plots.style import plot_colors
from dlstudio.gui.start_folders import EXPORTS, remember, start_path
from dlstudio.gui.worker import BackgroundTask

MAXIMIZE = "maximize"
DEEP_DREAM = "deep-dream"
_DREAM = "dream"
NO_MODEL = "Load a trained model, then press Start to dream."
_CHANNEL = "channel"
# Saved PNGs are enlarged (whole pixels, nearest neighbour) until the longer side is at least this long.
SAVE_MIN_SIZE = 512
# Per mode: default steps (total / per octave) and default step size ("strength").
_DEFAULTS = {MAXIMIZE: (200, 0.05), DEEP_DREAM: (20, 0.01)}


def run_dream(context: Any, trained: Any, mode: str, node_id: str, channel: int | None, steps: int, octaves: int,
              strength: float, raw: Any) -> dict[str, Any]:
    """Run a dream on the worker thread, reporting every step (throttled); returns the last step."""
    from dlstudio.core.inspect import activation_maximization, deep_dream

    if mode == MAXIMIZE:
        steps_iterator = activation_maximization(trained.model, node_id, channel, trained.normalization,
                                                 steps=steps, step_size=strength, yield_every=1)
    else:
        steps_iterator = deep_dream(trained.model, np.asarray(raw, dtype=np.float32), node_id, channel,
                                    trained.normalization, octaves=octaves, steps_per_octave=steps,
                                    step_size=strength, yield_every=1)
    start = time.perf_counter()
    payload: dict[str, Any] = {}
    for step in steps_iterator:
        elapsed = time.perf_counter() - start
        payload = {"step": step.step, "image": step.image, "objective": step.objective,
                   "rate": step.step / elapsed if elapsed > 0 and step.step else 0.0}
        context.report(payload, force=step.step == 0)  # the starting image at once, then ~20 per second
        context.check()
    return payload


def responsive_channel(context: Any, trained: Any, node_id: str) -> int:
    """The channel of ``node_id`` with the largest mean activation on a dream's starting noise (worker thread)."""
    from dlstudio.core.inspect import most_responsive_channel

    context.check()
    return most_responsive_channel(trained.model, node_id, trained.normalization)


class DreamView(SessionView):
    """Controls and the evolving image of a dream on the session's model.

    ``image_updated(step)`` follows each shown step; ``dream_ended(outcome)``
    is "finished", "stopped" or "failed"; ``default_channel_found(node_id,
    channel)`` follows each layer's most responsive channel becoming known.
    """

    image_updated = Signal(int)
    dream_ended = Signal(str)
    default_channel_found = Signal(str, int)

    def __init__(self, session: ModelSession, parent: QWidget | None = None) -> None:
        super().__init__(session, parent)
        self._task: BackgroundTask | None = None
        self._current: dict[str, Any] | None = None
        # Per layer: the most responsive channel once known, and the channel the person picked (kept over the other).
        self._default_channels: dict[str, int] = {}
        self._chosen_channels: dict[str, int] = {}
        self._setting_channel = False  # True while the view, not the person, moves the channel spin box

        self._mode_box = QComboBox()
        self._mode_box.addItem("Maximize a channel (from noise)", MAXIMIZE)
        self._mode_box.addItem("DeepDream (current image)", DEEP_DREAM)
        self._mode_box.setToolTip("Grow an image that makes the channel fire, or amplify in the current image "
                                  "what the layer responds to")
        self._mode_box.currentIndexChanged.connect(self._on_mode_changed)
        self._layer_box = QComboBox()
        self._layer_box.setSizeAdjustPolicy(QComboBox.SizeAdjustPolicy.AdjustToContents)
        self._layer_box.currentIndexChanged.connect(self._on_layer_changed)
        self._channel_spin = QSpinBox()
        self._channel_spin.setSpecialValueText("all")
        self._channel_spin.setToolTip("The channel (or unit) to excite; “all” uses the whole layer. The first "
                                      "offered is the one that fires most on noise")
        self._channel_spin.valueChanged.connect(self._on_channel_changed)
        self._steps_spin = QSpinBox()
        self._steps_spin.setRange(1, 100_000)
        self._octaves_spin = QSpinBox()
        self._octaves_spin.setRange(1, 6)
        self._octaves_spin.setValue(3)
        self._octaves_spin.setToolTip("Scales the dream runs at, from small to full size (sizes the model "
                                      "cannot take are skipped)")
        self._strength_spin = QDoubleSpinBox()
        self._strength_spin.setDecimals(3)
        self._strength_spin.setRange(0.001, 1.0)
        self._strength_spin.setSingleStep(0.005)
        self._strength_spin.setToolTip("Step size of the gradient ascent, as a fraction of the pixel range")
        self._steps_label = QLabel("Steps")
        self._octaves_label = QLabel("Octaves")

        self._start = QPushButton("Start")
        self._start.setDefault(True)
        self._start.clicked.connect(self.start)
        self._stop = QPushButton("Stop")
        self._stop.clicked.connect(self.stop)
        self._save = QPushButton("Save PNG…")
        self._save.setToolTip(f"Save the image, enlarged with whole pixels to at least {SAVE_MIN_SIZE} pixels")
        self._save.clicked.connect(self._on_save_clicked)
        self._progress = QLabel()
        font = QFont(self._progress.font())
        font.setBold(True)
        self._progress.setFont(font)
        self._note = QLabel()
        self._note.setWordWrap(True)
        self._note.setVisible(False)

        grid = QGridLayout()
        grid.setContentsMargins(6, 4, 6, 0)
        grid.setHorizontalSpacing(6)
        grid.setVerticalSpacing(3)
        grid.addWidget(QLabel("Mode"), 0, 0)
        grid.addWidget(self._mode_box, 0, 1, 1, 3)
        grid.addWidget(QLabel("Layer"), 1, 0)
        grid.addWidget(self._layer_box, 1, 1)
        grid.addWidget(QLabel("Channel"), 1, 2)
        grid.addWidget(self._channel_spin, 1, 3)
        grid.addWidget(self._steps_label, 2, 0)
        grid.addWidget(self._steps_spin, 2, 1)
        grid.addWidget(QLabel("Strength"), 2, 2)
        grid.addWidget(self._strength_spin, 2, 3)
        grid.addWidget(self._octaves_label, 3, 0)
        grid.addWidget(self._octaves_spin, 3, 1)
        grid.setColumnStretch(4, 1)
        buttons = QHBoxLayout()
        buttons.setContentsMargins(6, 2, 6, 0)
        buttons.addWidget(self._start)
        buttons.addWidget(self._stop)
        buttons.addWidget(self._save)
        buttons.addSpacing(8)
        buttons.addWidget(self._progress, 1)

        self._image = ImageView(NO_MODEL)
        layout = QVBoxLayout(self)
        layout.setContentsMargins(0, 0, 0, 0)
        layout.setSpacing(2)
        layout.addLayout(grid)
        layout.addLayout(buttons)
        layout.addWidget(self._note)
        layout.addWidget(self._image, 1)
        self._note.setContentsMargins(6, 0, 6, 0)
        self._apply_defaults(MAXIMIZE)
        self._on_mode_changed()
        self._apply_style()
        self._update_buttons()

    # ---- API ---------------------------------------------------------------------------------------------

    def configure(self, *, mode: str | None = None, node_id: str | None = None, channel: int | None = -1,
                  steps: int | None = None, octaves: int | None = None, strength: float | None = None) -> None:
        """Set the controls (as the person would); ``channel=None`` means all channels, -1 leaves it."""
        if mode is not None:
            self._mode_box.setCurrentIndex(self._mode_box.findData(mode))
        if node_id is not None:
            index = self._layer_box.findData(node_id)
            if index < 0:
                raise ValueError("the model has no such layer to dream with")
            self._layer_box.setCurrentIndex(index)
        if channel is None:
            self._channel_spin.setValue(self._channel_spin.minimum())
        elif channel >= 0:
            self._channel_spin.setValue(channel)
        if channel != -1:  # a pick even when the spin box showed that value already (no valueChanged then)
            self._on_channel_changed(self._channel_spin.value())
        if steps is not None:
            self._steps_spin.setValue(steps)
        if octaves is not None:
            self._octaves_spin.setValue(octaves)
        if strength is not None:
            self._strength_spin.setValue(strength)

    def show_node(self, node_id: str) -> bool:
        """Dream with ``node_id`` next (the window calls it for canvas clicks); False if it is not a layer here."""
        index = self._layer_box.findData(node_id)
        if index >= 0:
            self._layer_box.setCurrentIndex(index)
        return index >= 0

    def start(self) -> BackgroundTask | None:
        """Start a dream with the current settings; None (with a note saying why) when it cannot start."""
        if self.is_running() or not self.session.is_loaded or self._layer_box.currentData() is None:
            return None
        mode = str(self._mode_box.currentData())
        image = self.session.image
        if mode == DEEP_DREAM and image is None:
            self._set_note("DeepDream works on an image: choose one first (classify one, or drop one on the window).")
            return None
        self._set_note("")
        channel = self._channel_spin.value()
        if mode == MAXIMIZE:  # dreamed with: a default found later must not replace it
            self._chosen_channels.setdefault(str(self._layer_box.currentData()), channel)
        self._progress.setText("Starting…")
        self._task = self.request(
            _DREAM, run_dream, mode, str(self._layer_box.currentData()),
            None if channel == self._channel_spin.minimum() else channel, self._steps_spin.value(),
            self._octaves_spin.value(), self._strength_spin.value(), None if image is None else image["raw"],
            on_finished=self._on_dream_finished, on_progress=self._on_dream_progress)
        if self._task is not None:
            self._task.done.connect(self._on_dream_done)
        self._update_buttons()
        return self._task

    def stop(self) -> None:
        """Ask the running dream to stop at its next step."""
        if self._task is not None:
            self._task.cancel()
            self._progress.setText("Stopping…")

    def is_running(self) -> bool:
        return self._task is not None

    def task(self) -> BackgroundTask | None:
        return self._task

    def current_image(self) -> np.ndarray | None:
        """The raw image (C, H, W) in [0, 1] shown now."""
        return None if self._current is None else self._current["image"]

    def displayed_image(self) -> np.ndarray | None:
        return self._image.image()

    def progress_text(self) -> str:
        return self._progress.text()

    def save_png(self, path: str | Path | None = None) -> Path | None:
        """Write the current image as a PNG, enlarged crisply; asks for a path when none is given."""
        if self._current is None:
            return None
        path = path or self._ask_save_path()
        if not path:
            return None
        from dlstudio.core.inspect import save_png

        path = Path(path)
        if not path.suffix:
            path = path.with_suffix(".png")
        raw = self._current["image"]
        factor = max(1, -(-SAVE_MIN_SIZE // max(raw.shape[1:])))
        try:
            save_png(np.repeat(np.repeat(raw, factor, axis=1), factor, axis=2), path)
        except OSError as error:
            self._set_note(f"Could not save {path.name}: {error.strerror or error}")
            return None
        self._set_note(f"Saved {path.name} ({raw.shape[2] * factor}×{raw.shape[1] * factor}).")
        return path

    def suggested_file_name(self) -> str:
        """The file name the save dialog offers: the layer's name (as the person called it), e.g. "pool2-dream.png"."""
        output = self.output(str(self._layer_box.currentData()))
        return f"{file_stem(output.name)}-dream.png" if output is not None else "dream.png"

    def _ask_save_path(self) -> str:
        """The file dialog (tests replace this method)."""
        path, _ = QFileDialog.getSaveFileName(self, "Save the dream as PNG",
                                              start_path(EXPORTS, self.suggested_file_name()), "PNG image (*.png)")
        remember(EXPORTS, path)
        return path

    def clear(self) -> None:
        """Stop a running dream and drop its image, the layer choices and the channels found; see SessionView."""
        super().clear()  # cancels the dream and the channel searches
        self._forget_task()
        self._default_channels.clear()
        self._chosen_channels.clear()
        self._layer_box.clear()
        self._current = None
        self._progress.setText("")
        self._set_note("")
        self._image.set_placeholder(NO_MODEL)
        self._update_buttons()

    # ---- session hooks ----------------------------------------------------------------------------------------

    def _on_loading(self) -> None:
        self._forget_task()
        self._default_channels.clear()
        self._chosen_channels.clear()
        self._layer_box.clear()
        self._current = None
        self._image.set_placeholder("Loading the model…")
        self._update_buttons()

    def _on_model_failed(self, message: str) -> None:
        self._forget_task()
        self._layer_box.clear()
        self._current = None
        self._image.set_placeholder(message)
        self._update_buttons()

    def _on_outputs(self) -> None:
        previous = self._layer_box.currentData()
        takes_images = len(self.session.trained.input_shape) == 3
        self._layer_box.blockSignals(True)
        self._layer_box.clear()
        for output in self.outputs:
            if not output.is_input:
                self._layer_box.addItem(f"{output.label} · {shape_text(output.shape)}", output.node_id)
        index = self._layer_box.findData(previous)
        if index < 0:  # the last layer with image output: its channels are the most telling to dream of
            spatial = [output.node_id for output in self.outputs if output.spatial and not output.is_input]
            index = self._layer_box.findData(spatial[-1]) if spatial else 0
        self._layer_box.setCurrentIndex(index)
        self._layer_box.blockSignals(False)
        self._on_layer_changed()
        if takes_images:
            self._image.set_placeholder("Press Start to dream.")
            self._set_note("")
        else:
            self._image.set_placeholder("Dreams need a model with image input.")
            self._set_note(f"This model takes {list(self.session.trained.input_shape)}, not an image.")
        self._update_buttons()

    def _on_request_failed(self, message: str) -> None:
        self._progress.setText("Failed")
        self._set_note(message)
        self.dream_ended.emit("failed")

    def _on_request_cancelled(self) -> None:
        if self.sender() is not self._task:  # a channel search, not the dream
            return
        step = self._current["step"] if self._current else 0
        self._progress.setText(f"Stopped at step {step}")
        self.dream_ended.emit("stopped")

    # ---- internals ----------------------------------------------------------------------------------------------

    def _on_dream_progress(self, payload: dict[str, Any]) -> None:
        self._show(payload)

    def _on_dream_finished(self, payload: dict[str, Any]) -> None:
        if payload:
            self._show(payload)
        self._progress.setText(f"Done · {self._progress.text()}")
        self.dream_ended.emit("finished")

    def _on_dream_done(self) -> None:
        if self.sender() is self._task:
            self._task = None
            self._update_buttons()

    def _forget_task(self) -> None:
        self._task = None  # SessionView cancelled it; its late signals are ignored

    def _show(self, payload: dict[str, Any]) -> None:
        self._current = payload
        self._image.set_rgba(raw_to_rgba(payload["image"]))
        rate = f" · {payload['rate']:.0f} it/s" if payload["rate"] else ""
        self._progress.setText(f"step {payload['step']}{rate} · activation {payload['objective']:.3g}")
        self._save.setEnabled(True)
        self.image_updated.emit(int(payload["step"]))

    def _on_mode_changed(self, _index: int = -1) -> None:
        mode = str(self._mode_box.currentData())
        deep = mode == DEEP_DREAM
        self._octaves_spin.setVisible(deep)
        self._octaves_label.setVisible(deep)
        self._steps_label.setText("Steps per octave" if deep else "Steps")
        self._apply_defaults(mode)
        self._set_channel(self._channel_for(self._layer_box.currentData()))

    def _apply_defaults(self, mode: str) -> None:
        steps, strength = _DEFAULTS[mode]
        self._steps_spin.setValue(steps)
        self._strength_spin.setValue(strength)

    def _on_layer_changed(self, _index: int = -1) -> None:
        node_id = self._layer_box.currentData()
        output = self.output(str(node_id))
        channels = output.channels if output is not None else 1
        self._setting_channel = True
        # The lowest value is "all": -1 never reaches the core (it becomes None).
        self._channel_spin.setRange(-1, max(0, channels - 1))
        self._setting_channel = False
        self._set_channel(self._channel_for(node_id))
        if (node_id is not None and node_id not in self._default_channels and node_id not in self._chosen_channels
                and self.session.is_loaded and len(self.session.trained.input_shape) == 3):
            self.request(_CHANNEL, responsive_channel, str(node_id),
                         on_finished=lambda channel, node_id=str(node_id): self._on_default_channel(node_id, channel),
                         on_failed=self._on_default_channel_failed)

    def _channel_for(self, node_id: Any) -> int:
        """-1 ("all") for DeepDream, which amplifies the whole layer; else the person's pick for the layer, or its
        most responsive channel (0 until that is known): maximizing needs one channel to mean something."""
        if self._mode_box.currentData() == DEEP_DREAM:
            return -1
        if node_id is None:
            return 0
        return self._chosen_channels.get(node_id, self._default_channels.get(node_id, 0))

    def _set_channel(self, channel: int) -> None:
        self._setting_channel = True
        self._channel_spin.setValue(channel)
        self._setting_channel = False

    def _on_channel_changed(self, channel: int) -> None:
        node_id = self._layer_box.currentData()
        if not self._setting_channel and node_id is not None and self._mode_box.currentData() == MAXIMIZE:
            self._chosen_channels[node_id] = channel

    def _on_default_channel(self, node_id: str, channel: int) -> None:
        self._default_channels[node_id] = channel
        if node_id == self._layer_box.currentData():
            self._set_channel(self._channel_for(node_id))
        self.default_channel_found.emit(node_id, channel)

    def _on_default_channel_failed(self, _message: str) -> None:
        """No default found (the layer cannot be reached from noise, say): channel 0 stays; a dream would say why."""

    def _update_buttons(self) -> None:
        running = self.is_running()
        ready = self.session.is_loaded and self._layer_box.count() > 0 and len(self.session.trained.input_shape) == 3
        self._start.setEnabled(ready and not running)
        self._stop.setEnabled(running)
        self._save.setEnabled(self._current is not None)
        for widget in (self._mode_box, self._layer_box, self._channel_spin, self._steps_spin, self._octaves_spin,
                       self._strength_spin):
            widget.setEnabled(ready and not running)

    def _set_note(self, text: str) -> None:
        self._note.setText(text)
        self._note.setVisible(bool(text))

    def _on_save_clicked(self) -> None:
        self.save_png()

    def _apply_style(self) -> None:
        muted = plot_colors(self.palette()).muted
        self._note.setStyleSheet(f"color: {muted.name(QColor.NameFormat.HexArgb)};")


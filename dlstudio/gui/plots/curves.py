"""Live training curves: loss (per batch, smoothed, and per epoch), accuracy, learning rate; past runs overlaid.

Fed from the training worker's signals: ``add_batches`` with a chunk of
(epoch position, loss) pairs, ``add_epoch`` with an epoch's metrics. Data is
appended to numpy buffers and drawn by a timer at most ~30 times a second,
however fast it arrives, with ``setData`` on items created once
(design.md §6).

The three plots stand side by side in a short view (the Metrics dock is often
250-350 px high) and stacked in a tall one; one legend for all of them sits
beside the plots, never over their data.
"""

from __future__ import annotations

import math
import time
from collections.abc import Iterable, Sequence
from typing import Any

import numpy as np
import pyqtgraph as pg
from PySide6.QtCore import QEvent, Qt, QTimer
from PySide6.QtGui import QResizeEvent
from PySide6.QtWidgets import QGraphicsItem, QSizePolicy, QStackedLayout, QWidget

from dlstudio.gui.plots.style import (
    PlotColors,
    plot_colors,
    plot_hint,
    set_axis_label,
    set_title,
    style_legend,
    style_plot,
)

# A redraw at most every 33 ms (~30 Hz): enough for smooth curves, cheap for the GUI thread.
REDRAW_INTERVAL_MS = 33
# When data leaves a plot's range, the new one has this much room (a share of the data's span) on both sides;
# after an epoch a range is tightened only when it is this many times the data's span. A range change repaints
# the plot and re-renders its axes (~10 ms), so it should not happen every time the loss reaches a new low.
GROW_ROOM = 0.15
LOOSE_RANGE = 1.6
# Weight of the past in the per-batch loss average (about the last 10 batches), bias-corrected at the start.
SMOOTHING = 0.9
_EPOCH_SERIES = ("train_loss", "val_loss", "train_accuracy", "val_accuracy", "learning_rate")
# Per-epoch metrics shown in percent.
_PERCENT = ("train_accuracy", "val_accuracy")

# How the three plots share the view. Stacked, each plot gets the full width; in a dock shorter than
# _SIDE_BY_SIDE_BELOW px (the Metrics dock is often 250-350 px high) three stacked plots were slivers of
# 20-40 px, so they stand side by side when there is the width for it. A short and narrow view stacks
# loss and accuracy and folds the learning-rate plot away.
STACKED, SIDE_BY_SIDE, STACKED_WITHOUT_LR = "stacked", "side by side", "stacked without learning rate"
_SIDE_BY_SIDE_BELOW = 420
_SIDE_BY_SIDE_MIN_WIDTH = 640
_FOLD_LR_BELOW = 330
# Shares of the height (stacked) or width (side by side) of loss, accuracy and learning rate.
_STACKED_STRETCH = (5, 3, 2)
_SIDE_BY_SIDE_STRETCH = (4, 3, 2)
_LR_MAX_HEIGHT = 150
_NO_LIMIT = 16_777_215  # Qt's QWIDGETSIZE_MAX
# What the view shows before any run (and after a project switch) in place of empty axes.
EMPTY_HINT = "Press Train (F5): loss and accuracy are plotted here as the network learns"
# The ranges of an empty view (and of a cleared one): one epoch; loss and learning rate 0..1, accuracy 0..100%.
_INITIAL_Y = {"loss": (0.0, 1.0), "accuracy": (0.0, 100.0), "learning_rate": (0.0, 1.0)}
# Train solid, validation dashed: in the live run (which also has a colour for each) and in every past run
# (one colour a run). The legend's "train" and "validation" entries show the two styles.
_TRAIN_STYLE = Qt.PenStyle.SolidLine
_VALIDATION_STYLE = Qt.PenStyle.DashLine


class _Buffer:
    """An append-only pair of float arrays that grows by doubling (amortized O(1) appends, no list of floats)."""

    def __init__(self, capacity: int = 1024) -> None:
        self._x = np.empty(capacity)
        self._y = np.empty(capacity)
        self.size = 0

    def extend(self, xs: np.ndarray, ys: np.ndarray) -> None:
        needed = self.size + len(xs)
        if needed > len(self._x):
            capacity = max(needed, 2 * len(self._x))
            self._x = np.resize(self._x, capacity)
            self._y = np.resize(self._y, capacity)
        self._x[self.size:needed] = xs
        self._y[self.size:needed] = ys
        self.size = needed

    def truncate_from(self, x: float) -> None:
        """Drop the points at or after ``x`` (a resumed run repeats the unfinished epoch)."""
        self.size = int(np.searchsorted(self._x[:self.size], x, side="left"))

    @property
    def last_x(self) -> float:
        return float(self._x[self.size - 1]) if self.size else -math.inf

    def view(self) -> tuple[np.ndarray, np.ndarray]:
        return self._x[:self.size], self._y[:self.size]


class _Overlay:
    """One past run's curves in one colour: train loss solid, validation loss and accuracy dashed."""

    def __init__(self, loss_plot: pg.PlotItem, accuracy_plot: pg.PlotItem) -> None:
        self.name: str | None = None
        self.train_loss = loss_plot.plot()
        self.val_loss = loss_plot.plot()
        self.val_accuracy = accuracy_plot.plot()
        for item in self.items:
            item.setZValue(-1)  # under the live curves

    @property
    def items(self) -> tuple[pg.PlotDataItem, ...]:
        return self.train_loss, self.val_loss, self.val_accuracy

    def set_colour(self, colours: PlotColors, index: int) -> None:
        colour = colours.overlay(index)
        # Dotted train and dashed validation lines of 1.5 px looked the same: solid and dashed do not.
        self.train_loss.setPen(pg.mkPen(colour, width=1.5, style=_TRAIN_STYLE))
        self.val_loss.setPen(_dashed(colour, 1.5))
        self.val_accuracy.setPen(_dashed(colour, 1.5))

    def set_rows(self, rows: Sequence[dict[str, Any]]) -> None:
        for item, key in zip(self.items, ("train_loss", "val_loss", "val_accuracy"), strict=True):
            xs, ys = _column(rows, key)
            item.setData(xs, ys * 100.0 if key in _PERCENT else ys)

    def hide(self) -> None:
        """Free these items for another run (shown again, should a legend click have hidden them)."""
        self.name = None
        for item in self.items:
            item.setData([], [])
            item.setVisible(True)


def _column(rows: Iterable[dict[str, Any]], key: str) -> tuple[np.ndarray, np.ndarray]:
    """(epochs, values) of one metric, skipping rows where it is missing or not finite."""
    points = [(float(row["epoch"]), float(row[key])) for row in rows
              if row.get("epoch") is not None and row.get(key) is not None and math.isfinite(float(row[key]))]
    if not points:
        return np.empty(0), np.empty(0)
    xs, ys = zip(*points, strict=True)
    return np.asarray(xs), np.asarray(ys)


class _SideLegend(pg.LegendItem):
    """A legend that the plot grid places beside the plots, never over their data.

    pyqtgraph's legend floats: it sets its own geometry on every change. This
    one only reports its size, and the grid's layout positions it.
    """

    def __init__(self) -> None:
        super().__init__(offset=None, verSpacing=-4, frame=False)
        self.setSizePolicy(QSizePolicy.Policy.Fixed, QSizePolicy.Policy.Fixed)

    def updateSize(self) -> None:
        self.layout.invalidate()
        self.updateGeometry()


def _arrangement_for(width: int, height: int) -> str:
    """Which arrangement reads best in a view of ``width`` × ``height`` pixels."""
    if height < _SIDE_BY_SIDE_BELOW and width >= _SIDE_BY_SIDE_MIN_WIDTH:
        return SIDE_BY_SIDE
    return STACKED_WITHOUT_LR if height < _FOLD_LR_BELOW else STACKED


class CurvesView(QWidget):
    """Loss, accuracy and learning-rate plots of the live run, with past runs overlaid.

    The x axis counts epochs as a float: 1.25 is a quarter into the second
    epoch, and epoch 2's metrics sit at 2.0. Updates are coalesced: what is
    fed is drawn within ``REDRAW_INTERVAL_MS`` (call :meth:`flush` to draw now).
    """

    def __init__(self, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self._run_name = ""
        self._colours = plot_colors(self.palette())
        self._canvas = pg.GraphicsLayoutWidget()
        self._canvas.ci.setContentsMargins(4, 4, 8, 4)
        self._canvas.ci.setSpacing(2)
        # Until there is something to plot (a run, a past run's curves) a one-line hint stands in for the axes.
        self._hint_label = plot_hint(EMPTY_HINT)
        self._stack = QStackedLayout(self)
        self._stack.setContentsMargins(0, 0, 0, 0)
        self._stack.addWidget(self._hint_label)
        self._stack.addWidget(self._canvas)

        # The plots are placed by _arrange (stacked, or side by side in a short dock), not by addPlot's grid.
        self._loss_plot = pg.PlotItem()
        self._accuracy_plot = pg.PlotItem()
        self._lr_plot = pg.PlotItem()
        for plot in (self._accuracy_plot, self._lr_plot):
            plot.setXLink(self._loss_plot)
        for plot in self._plots:
            plot.showGrid(x=True, y=True, alpha=0.12)
            for side in ("left", "bottom"):
                axis = plot.getAxis(side)
                # Grid lines at major ticks only: the minor ones doubled the cost of a redraw (bench/plots.py).
                axis.setStyle(maxTickLevel=0)
                # An axis draws its grid across the plot, so every new point repainted its lines and tick
                # labels; cached as a pixmap (redrawn only when its ticks change) a redraw costs a quarter.
                axis.setCacheMode(QGraphicsItem.CacheMode.DeviceCoordinateCache)
            plot.setMenuEnabled(False)
            plot.hideButtons()
            plot.getAxis("left").setWidth(52)  # the same width on all three, so their x axes line up
            # The view follows the data with ranges set here, not pyqtgraph's auto-range: that re-fits (and
            # re-lays out every axis) on each update, which made a redraw 3-4× dearer (bench/plots.py).
            plot.enableAutoRange(x=False, y=False)
            plot.setMouseEnabled(x=False, y=False)
        self._ranges: dict[str, tuple[float, float]] = {}
        self._planned_epochs = 0

        # One legend for all three plots, in a column beside them: train and validation have the same colours
        # in loss and accuracy, and a legend floating in a plot covered its curves once the dock was short.
        self._legend = _SideLegend()
        # The per-batch curve is two items: the epoch in progress, redrawn with every report, and the epochs
        # before it, set once an epoch. Only the first one's area is repainted then (a whole curve across
        # 15 epochs repainted the plot's width for each new point: twice the cost).
        # The epoch in progress is a bare curve item: one epoch needs no decimation, and its setData costs a
        # tenth of a PlotDataItem's (0.017 vs 0.15 ms), paid ~30 times a second.
        self._batch_curve = pg.PlotCurveItem(skipFiniteCheck=True)
        self._loss_plot.addItem(self._batch_curve)
        self._batch_history = self._loss_plot.plot()
        self._history_end = 0  # how many points of the buffer the history item holds
        # Long runs: the epochs before are drawn decimated to the pixels in view.
        self._batch_history.setDownsampling(auto=True, method="peak")
        self._batch_history.setClipToView(True)
        self._epoch_curves = {
            "train_loss": self._loss_plot.plot(),
            "val_loss": self._loss_plot.plot(),
            "train_accuracy": self._accuracy_plot.plot(),
            "val_accuracy": self._accuracy_plot.plot(),
            "learning_rate": self._lr_plot.plot(),
        }
        self._legend.addItem(self._epoch_curves["train_loss"], "train")
        self._legend.addItem(self._epoch_curves["val_loss"], "validation")
        self._legend.addItem(self._batch_curve, "per batch")
        self._legend.sigSampleClicked.connect(self._on_legend_sample_clicked)
        self._arrangement: str | None = None
        self._with_accuracy = True  # a reconstruction (autoencoder) has no accuracy: its plot is left out
        self._arrange(_arrangement_for(self.width(), self.height()))
        self._overlays: list[_Overlay] = []
        self._overlay_order: list[str] = []

        self._batches = _Buffer()
        self._ema = 0.0
        self._ema_steps = 0
        self._epochs = {key: _Buffer(64) for key in _EPOCH_SERIES}
        self._dirty = False
        self._epochs_dirty = False  # epoch curves change once an epoch: left alone by batch-only redraws
        self._last_redraw = -math.inf
        self._refit = True
        self._redraw_timer = QTimer(self)
        self._redraw_timer.setSingleShot(True)
        self._redraw_timer.setInterval(REDRAW_INTERVAL_MS)
        self._redraw_timer.timeout.connect(self.flush)
        self.redraw_count = 0  # for tests and the benchmark: how many coalesced redraws happened
        self._apply_style()
        self._reset_ranges()

    @property
    def _plots(self) -> tuple[pg.PlotItem, ...]:
        return self._loss_plot, self._accuracy_plot, self._lr_plot

    # ---- feeding -------------------------------------------------------------------------------------

    def set_task(self, task: str) -> None:
        """The network's task: "classification" plots accuracy; "reconstruction" has none, so that plot goes
        and loss and learning rate share its room."""
        with_accuracy = task != "reconstruction"
        if with_accuracy != self._with_accuracy:
            self._with_accuracy = with_accuracy
            arrangement, self._arrangement = self.arrangement(), None
            self._arrange(arrangement)

    def has_accuracy_plot(self) -> bool:
        return self._with_accuracy

    def start_run(self, name: str, epochs: int | None = None) -> None:
        """Forget the live curves (overlays stay) and title the plots with the new run's name.

        ``epochs`` (the planned number) fixes the x axis from the start, so it
        does not grow as the run goes.
        """
        self._run_name = name
        self._planned_epochs = int(epochs or 0)
        self._reset_live()
        self._reset_ranges()  # fitted again to the overlays and the new run's data: not the last run's range
        self._set_titles()
        self.flush()
        self._update_hint()

    def show_history(self, name: str, epochs: int | None, rows: Sequence[dict[str, Any]]) -> None:
        """Show a finished run's per-epoch metrics as the current run (a reopened project's last run).

        ``rows`` are metrics.csv rows as ``dlstudio.core.training.runs.read_metrics``
        returns them (``epoch``, ``train_loss``... floats, None where empty);
        ``epochs`` is the number planned (None: as many as there are rows).
        There are no per-batch losses in metrics.csv, so none are drawn.
        """
        self.start_run(name, epochs)
        for row in rows:
            if row.get("epoch") is not None:
                self.add_epoch(row)
        self.flush()

    def add_batches(self, xs: Sequence[float], losses: Sequence[float]) -> None:
        """Append per-batch losses at epoch positions ``xs`` (smoothed before drawing; non-finite ones skipped)."""
        x = np.asarray(xs, dtype=float)
        loss = np.asarray(losses, dtype=float)
        if len(x) != len(loss):
            raise ValueError(f"add_batches got {len(x)} positions and {len(loss)} losses")
        keep = np.isfinite(x) & np.isfinite(loss)
        x, loss = x[keep], loss[keep]
        if not len(x):
            return
        if x[0] <= self._batches.last_x:  # a resumed run goes back to where its checkpoint was
            self._batches.truncate_from(float(x[0]))
        self._batches.extend(x, self._smooth(loss))
        self._schedule_redraw()

    def add_epoch(self, metrics: dict[str, Any]) -> None:
        """Append one epoch's metrics (EpochMetrics.to_dict(): epoch, train_loss, val_accuracy...; None is skipped)."""
        epoch = float(metrics["epoch"])
        for key, buffer in self._epochs.items():
            if epoch <= buffer.last_x:
                buffer.truncate_from(epoch)
            value = metrics.get(key)
            if value is None or not math.isfinite(float(value)):
                continue
            value = float(value) * (100.0 if key in _PERCENT else 1.0)
            buffer.extend(np.array([epoch]), np.array([value]))
        self._refit = True  # an epoch is a good moment to tighten the ranges again
        self._epochs_dirty = True
        self._schedule_redraw()

    def set_overlays(self, runs: dict[str, list[dict[str, Any]]]) -> None:
        """Show these past runs (name -> metrics.csv rows) dashed beside the live curves; replaces the last set.

        A run that stays in the set keeps its colour and items; new runs take
        free items, so changing the selection creates nothing in steady state.
        """
        kept = {overlay.name: overlay for overlay in self._overlays if overlay.name in runs}
        for overlay in self._overlays:
            if overlay.name is not None and overlay.name not in runs:
                self._legend.removeItem(overlay.train_loss)
                overlay.hide()
        free = [overlay for overlay in self._overlays if overlay.name is None]
        for name, rows in runs.items():
            overlay = kept.get(name)
            if overlay is None:
                if free:
                    overlay = free.pop(0)
                else:
                    overlay = _Overlay(self._loss_plot, self._accuracy_plot)
                    self._overlays.append(overlay)
                    overlay.set_colour(self._colours, len(self._overlays) - 1)
                overlay.name = name
                # The run's entry shows its colour as its (solid) train line; "validation" says dashed.
                self._legend.addItem(overlay.train_loss, name)
            overlay.set_rows(rows)
        self._overlay_order = list(runs)
        self._refresh_legend_style()
        self._refit = True
        self._fit_ranges()
        self._update_hint()

    def clear(self) -> None:
        """Back to a new view's state (a project switch): no curves, no overlays, no run name, the first ranges.

        Curves a legend click hid are shown again; the hint stands in for the
        plots until the next run (or past run) is shown.
        """
        self._run_name = ""
        self._planned_epochs = 0
        self._reset_live()
        self.set_overlays({})
        self._set_titles()
        self.flush()
        self._reset_ranges()
        for item in (self._batch_curve, self._batch_history, *self._epoch_curves.values()):
            item.setVisible(True)
        self._update_hint()

    def hint(self) -> str:
        """The hint shown in place of the plots, or "" while they are shown."""
        return self._hint_label.text() if self._stack.currentWidget() is self._hint_label else ""

    def flush(self) -> None:
        """Draw what was fed since the last redraw (the timer calls this; tests and benchmarks may too)."""
        self._redraw_timer.stop()
        if not self._dirty:
            return
        self._dirty = False
        self._last_redraw = time.monotonic()
        self.redraw_count += 1
        self._draw_batches()
        if self._epochs_dirty:
            # Setting unchanged data would still repaint the accuracy and learning-rate plots on every redraw.
            self._epochs_dirty = False
            for key, curve in self._epoch_curves.items():
                curve.setData(*self._epochs[key].view())
        self._fit_ranges()
        if self._stack.currentWidget() is self._hint_label:  # data came without a run (a test, the benchmark)
            self._update_hint()

    def _draw_batches(self) -> None:
        """Set the per-batch items: the history only when an epoch was completed (or the run went back)."""
        xs, ys = self._batches.view()
        if not len(xs):
            history_end = 0
        else:
            # Points of epochs before the one in progress: x up to its start (epoch k's last batch sits at k).
            current_start = math.ceil(float(xs[-1])) - 1
            history_end = int(np.searchsorted(xs, current_start, side="right"))
        if history_end != self._history_end or history_end == 0:
            self._history_end = history_end
            self._batch_history.setData(xs[:history_end], ys[:history_end])
        start = max(0, history_end - 1)  # the current epoch's line starts at the history's last point
        self._batch_curve.setData(xs[start:], ys[start:])

    def _fit_ranges(self) -> None:
        """Keep every curve in view; change a range only when data leaves it, or refit after an epoch.

        The x axis spans whole epochs (or the planned number), so it moves
        once per epoch, not on every redraw.
        """
        refit, self._refit = self._refit, False
        overlays = [overlay for overlay in self._overlays if overlay.name is not None]
        x_values = [self._batches.view()[0], *(buffer.view()[0] for buffer in self._epochs.values()),
                    *(overlay.train_loss.getOriginalDataset()[0] for overlay in overlays)]
        ends = [math.ceil(float(x.max())) for x in x_values if x is not None and len(x)]
        x_end = max([self._planned_epochs, 1, *ends])
        self._set_range("x", (0.0, float(x_end)), exact=True)
        series = {
            "loss": [self._batches.view()[1], self._epochs["train_loss"].view()[1], self._epochs["val_loss"].view()[1],
                     *(item.getOriginalDataset()[1] for overlay in overlays for item in overlay.items[:2])],
            "accuracy": [self._epochs["train_accuracy"].view()[1], self._epochs["val_accuracy"].view()[1],
                         *(overlay.val_accuracy.getOriginalDataset()[1] for overlay in overlays)],
            "learning_rate": [self._epochs["learning_rate"].view()[1]],
        }
        for name, values in series.items():
            present = [value for value in values if value is not None and len(value)]
            if not present:
                continue
            low = min(float(value.min()) for value in present)
            high = max(float(value.max()) for value in present)
            if name == "learning_rate" and low >= 0.0:
                low = 0.0  # from zero: a constant rate reads as a level line, not as noise around its value
            current = self._ranges.get(name)
            percent = name == "accuracy"
            if current is None:
                self._set_range(name, _padded(low, high, percent), exact=False)
            elif low < current[0] or high > current[1]:
                # A new range repaints the whole plot and its axes (~10 ms): leave room to grow into.
                self._set_range(name, _padded(low, high, percent, room=GROW_ROOM), exact=False)
            elif refit and current[1] - current[0] > LOOSE_RANGE * (high - low):
                self._set_range(name, _padded(low, high, percent), exact=False)

    def _reset_ranges(self) -> None:
        """Put every axis back to an empty view's range; the next data is fitted afresh (not grown into)."""
        self._ranges = {}
        self._set_range("x", (0.0, 1.0), exact=True)
        for name, plot in (("loss", self._loss_plot), ("accuracy", self._accuracy_plot),
                           ("learning_rate", self._lr_plot)):
            plot.setYRange(*_INITIAL_Y[name], padding=0.0)

    def _update_hint(self) -> None:
        """The plots while there is a run or a past run to show, else the hint."""
        empty = (not self._run_name and not self._batches.size
                 and not any(buffer.size for buffer in self._epochs.values())
                 and not any(overlay.name is not None for overlay in self._overlays))
        self._stack.setCurrentWidget(self._hint_label if empty else self._canvas)

    def _set_range(self, name: str, span: tuple[float, float], exact: bool) -> None:
        if self._ranges.get(name) == span:
            return
        self._ranges[name] = span
        if name == "x":
            self._loss_plot.setXRange(*span, padding=0.01)  # the other two are linked to it
        else:
            plot = {"loss": self._loss_plot, "accuracy": self._accuracy_plot, "learning_rate": self._lr_plot}[name]
            plot.setYRange(*span, padding=0.0)

    def point_count(self) -> dict[str, int]:
        """Points drawn per curve (``batch``, ``train_loss``... ``learning_rate``) and ``overlays`` (runs shown)."""
        current = _drawn(self._batch_curve)
        shared = 1 if self._history_end and current else 0  # the current epoch's line starts at the history's end
        counts = {"batch": _drawn(self._batch_history) + current - shared}
        counts.update({key: _drawn(curve) for key, curve in self._epoch_curves.items()})
        counts["overlays"] = sum(1 for overlay in self._overlays if overlay.name is not None)
        return counts

    def series(self, name: str) -> tuple[np.ndarray, np.ndarray]:
        """The (x, y) drawn for one curve: ``batch`` (smoothed), ``train_loss``... ``learning_rate`` (copies)."""
        if name == "batch":
            drawn = [_points(item) for item in (self._batch_history, self._batch_curve)]
            parts = [(x, y) if not index or not self._history_end else (x[1:], y[1:])
                     for index, (x, y) in enumerate(drawn) if x is not None]
            return (np.concatenate([x for x, _ in parts]) if parts else np.empty(0),
                    np.concatenate([y for _, y in parts]) if parts else np.empty(0))
        x, y = self._epoch_curves[name].getOriginalDataset()
        return (np.empty(0), np.empty(0)) if x is None else (np.array(x), np.array(y))

    def overlay_names(self) -> list[str]:
        """The past runs shown, in the order they were given."""
        return list(self._overlay_order)

    def arrangement(self) -> str:
        """How the plots stand now: ``STACKED``, ``SIDE_BY_SIDE`` or ``STACKED_WITHOUT_LR`` (follows the size)."""
        return self._arrangement or STACKED

    # ---- internals -----------------------------------------------------------------------------------

    def _smooth(self, losses: np.ndarray) -> np.ndarray:
        smoothed = np.empty_like(losses)
        ema, steps = self._ema, self._ema_steps
        for index, loss in enumerate(losses.tolist()):
            ema = SMOOTHING * ema + (1.0 - SMOOTHING) * loss
            steps += 1
            smoothed[index] = ema / (1.0 - SMOOTHING ** steps)  # debiased: the first batches are not pulled to 0
        self._ema, self._ema_steps = ema, steps
        return smoothed

    def _reset_live(self) -> None:
        self._batches = _Buffer()
        self._ema, self._ema_steps = 0.0, 0
        self._epochs = {key: _Buffer(64) for key in _EPOCH_SERIES}
        self._dirty = self._epochs_dirty = True
        self._refit = True

    def _schedule_redraw(self) -> None:
        """Redraw at the next REDRAW_INTERVAL_MS mark after the last redraw (at once if that has passed).

        Counting from the last redraw, not from the data's arrival, keeps the
        rate at the data's own up to ~30 Hz; a fixed delay after each arrival
        halved it whenever data came about as often as the interval.
        """
        self._dirty = True
        if not self._redraw_timer.isActive():
            since_ms = (time.monotonic() - self._last_redraw) * 1000.0
            self._redraw_timer.start(round(max(0.0, REDRAW_INTERVAL_MS - since_ms)))

    def _arrange(self, arrangement: str) -> None:
        """Put the plots and the legend into the grid for ``arrangement`` (only when it changes: on a resize)."""
        if arrangement == self._arrangement:
            return
        self._arrangement = arrangement
        grid = self._canvas.ci.layout
        for index in reversed(range(grid.count())):  # the grid holds only the plots and the legend
            grid.removeAt(index)
        for index in range(4):
            # Forget the last arrangement's stretch. An empty row or column with a stretch takes a share of
            # the space; a used one with a stretch of 0 is held at its preferred size (so every used one
            # gets a stretch below, and the legend's column stays as wide as its names).
            grid.setRowStretchFactor(index, 0)
            grid.setColumnStretchFactor(index, 0)
        top_left = Qt.AlignmentFlag.AlignTop | Qt.AlignmentFlag.AlignLeft
        plots = [plot for plot in self._plots if plot is not self._accuracy_plot or self._with_accuracy]
        if arrangement == SIDE_BY_SIDE:
            shown = plots
            for column, (plot, stretch) in enumerate(zip(shown, _SIDE_BY_SIDE_STRETCH, strict=False)):
                grid.addItem(plot, 0, column)
                grid.setColumnStretchFactor(column, stretch)
            grid.setRowStretchFactor(0, 1)
            grid.addItem(self._legend, 0, len(shown), top_left)
        else:
            shown = plots if arrangement == STACKED else [plot for plot in plots if plot is not self._lr_plot]
            for row, (plot, stretch) in enumerate(zip(shown, _STACKED_STRETCH, strict=False)):
                grid.addItem(plot, row, 0)
                grid.setRowStretchFactor(row, stretch)
            grid.setColumnStretchFactor(0, 1)
            grid.addItem(self._legend, 0, 1, len(shown), 1, top_left)
        self._shown = list(shown)
        self._lr_plot.setVisible(self._lr_plot in shown)
        self._accuracy_plot.setVisible(self._accuracy_plot in shown)
        # Stacked, the learning rate gives up height first; side by side a cap would cap the whole row.
        self._lr_plot.setMaximumHeight(_LR_MAX_HEIGHT if arrangement == STACKED else _NO_LIMIT)
        for plot in shown:
            # Stacked plots share one x axis: only the lowest one writes the epochs under it.
            lowest = arrangement == SIDE_BY_SIDE or plot is shown[-1]
            plot.getAxis("bottom").setStyle(showValues=lowest)
            plot.getAxis("bottom").setHeight(None if lowest else 4)
        self._set_x_label()

    def _set_x_label(self) -> None:
        """Name the x axis (epoch) under the lowest stacked plot; side by side it is left out for the height."""
        labelled = None if self.arrangement() == SIDE_BY_SIDE else self._shown[-1]
        for plot in self._plots:
            if plot is labelled:
                set_axis_label(plot, "bottom", "epoch", self._colours)
            else:
                plot.getAxis("bottom").showLabel(False)

    def resizeEvent(self, event: QResizeEvent) -> None:
        self._arrange(_arrangement_for(event.size().width(), event.size().height()))
        super().resizeEvent(event)

    def _set_titles(self) -> None:
        suffix = f" — {self._run_name}" if self._run_name else ""
        set_title(self._loss_plot, self._colours, f"Loss{suffix}")
        set_title(self._accuracy_plot, self._colours, "Accuracy")
        set_title(self._lr_plot, self._colours, "Learning rate")

    def _apply_style(self) -> None:
        colours = self._colours = plot_colors(self.palette())
        self._canvas.setBackground(colours.background)
        for plot in self._plots:
            style_plot(plot, colours)
        set_axis_label(self._loss_plot, "left", "loss", colours)
        set_axis_label(self._accuracy_plot, "left", "%", colours)
        set_axis_label(self._lr_plot, "left", "lr", colours)
        self._set_x_label()
        self._set_titles()
        for item in (self._batch_curve, self._batch_history):
            item.setPen(pg.mkPen(colours.batch, width=1))
        for key, curve in self._epoch_curves.items():
            colour = (colours.learning_rate if key == "learning_rate"
                      else colours.validation if key.startswith("val") else colours.train)
            curve.setPen(_dashed(colour, 2) if key.startswith("val") else pg.mkPen(colour, width=2))
            curve.setSymbol("o")
            curve.setSymbolSize(6)
            curve.setSymbolBrush(pg.mkBrush(colour))
            curve.setSymbolPen(pg.mkPen(colours.background, width=1))
        for index, overlay in enumerate(self._overlays):
            overlay.set_colour(colours, index)
        self._refresh_legend_style()

    def _refresh_legend_style(self) -> None:
        style_legend(self._legend, self._colours, panel=False)

    def _on_legend_sample_clicked(self, item: pg.PlotDataItem) -> None:
        """A click on a legend entry showed or hid its loss curve: the accuracy curve of that name follows."""
        partners = {self._epoch_curves["train_loss"]: (self._epoch_curves["train_accuracy"],),
                    self._epoch_curves["val_loss"]: (self._epoch_curves["val_accuracy"],),
                    self._batch_curve: (self._batch_history,)}
        for overlay in self._overlays:
            partners[overlay.train_loss] = (overlay.val_loss, overlay.val_accuracy)
        for partner in partners.get(item, ()):
            partner.setVisible(item.isVisible())

    def changeEvent(self, event: QEvent) -> None:
        if event.type() in (QEvent.Type.PaletteChange, QEvent.Type.ApplicationPaletteChange):
            self._apply_style()
        super().changeEvent(event)


def _dashed(colour: Any, width: float) -> Any:
    """A validation line: dashed (Qt's dashes are 4 pen widths long), told from a solid train line at a glance."""
    return pg.mkPen(colour, width=width, style=_VALIDATION_STYLE)


def _padded(low: float, high: float, percent: bool, room: float = 0.05) -> tuple[float, float]:
    """The range ``low..high`` with ``room`` (a share of it) on both sides (accuracy stays within 0..100; a
    range from zero, such as the learning rate's, starts at zero)."""
    room = room * (high - low) or room * abs(high) or 0.5
    padded_low = 0.0 if low == 0.0 else low - room
    padded = (padded_low, high + room)
    return (max(0.0, padded[0]), min(100.0, padded[1])) if percent else padded


def _points(item: pg.PlotDataItem | pg.PlotCurveItem) -> tuple[np.ndarray | None, np.ndarray | None]:
    """The (x, y) an item was given (before any decimation)."""
    return item.getData() if isinstance(item, pg.PlotCurveItem) else item.getOriginalDataset()


def _drawn(item: pg.PlotDataItem | pg.PlotCurveItem) -> int:
    x, _ = _points(item)
    return 0 if x is None else len(x)

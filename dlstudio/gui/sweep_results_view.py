"""A sweep's results as two plots: Optuna's parameter importance (horizontal bars) and the objective of each
trial against a chosen parameter (a scatter; pruned trials as crosses, at the value they were stopped at).

It draws a :class:`dlstudio.core.sweep.results.SweepResults` (plain data made by the core); it never
opens the study itself. A log-ranged parameter gets a log x axis, a choice its values as ticks.
"""

from __future__ import annotations

import math
from typing import TYPE_CHECKING

import pyqtgraph as pg
from PySide6.QtCore import QEvent
from PySide6.QtGui import QFontMetrics
from PySide6.QtWidgets import QComboBox, QHBoxLayout, QLabel, QVBoxLayout, QWidget

from dlstudio.gui.plots.style import plot_colors, plot_font, set_axis_label, set_title, style_plot

if TYPE_CHECKING:
    from dlstudio.core.sweep.results import SweepResults

METRIC_WORDS = {"val_accuracy": "Validation accuracy", "val_loss": "Validation loss"}
BAR_HEIGHT = 0.6
EMPTY_NOTE = "The plots appear when the sweep has finished trials."
SYMBOL_SIZE = 9


def _short_name(target: str) -> str:
    return target.removeprefix("training.")


class SweepResultsView(QWidget):
    """Importance bars above, the objective-vs-parameter scatter (with its parameter chooser) below."""

    def __init__(self, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.results: SweepResults | None = None
        self.note = QLabel(EMPTY_NOTE)
        self.note.setWordWrap(True)

        self.importance_plot = pg.PlotWidget()
        self.importance_bars = pg.BarGraphItem(x0=[], y=[], width=[], height=BAR_HEIGHT)
        self.importance_plot.addItem(self.importance_bars)

        self.param_chooser = QComboBox()
        self.param_chooser.setToolTip("The parameter on the scatter's x axis")
        self.param_chooser.currentIndexChanged.connect(lambda _index: self._draw_scatter())
        self.scatter_plot = pg.PlotWidget()
        self.complete_points = pg.ScatterPlotItem(symbol="o", size=SYMBOL_SIZE)
        self.pruned_points = pg.ScatterPlotItem(symbol="x", size=SYMBOL_SIZE + 2)
        self.scatter_plot.addItem(self.complete_points)
        self.scatter_plot.addItem(self.pruned_points)
        # Points at the plot's edges stay clear of the axes (a choice's first and last value sit there).
        self.scatter_plot.getPlotItem().getViewBox().setDefaultPadding(0.08)
        for plot in (self.importance_plot, self.scatter_plot):
            plot.setMenuEnabled(False)
            plot.hideButtons()
            # pyqtgraph makes its options menu without a parent: parented here, it goes with the view.
            menu = plot.getPlotItem().ctrlMenu
            menu.setParent(self, menu.windowFlags())
        self.importance_plot.setMouseEnabled(False, False)
        # Shares and parameter values as they are: pyqtgraph's "(x0.001)" scaling made 0.72 read as 720.
        for plot, side in ((self.importance_plot, "bottom"), (self.scatter_plot, "bottom"), (self.scatter_plot, "left")):
            plot.getAxis(side).enableAutoSIPrefix(False)

        chooser_row = QHBoxLayout()
        chooser_row.addWidget(QLabel("Parameter"))
        chooser_row.addWidget(self.param_chooser, 1)
        layout = QVBoxLayout(self)
        layout.setContentsMargins(0, 0, 0, 0)
        layout.addWidget(self.note)
        layout.addWidget(self.importance_plot, 1)
        layout.addLayout(chooser_row)
        layout.addWidget(self.scatter_plot, 2)
        self._apply_style()

    def show_results(self, results: SweepResults) -> None:
        """Draw ``results`` (the scatter keeps the chosen parameter when the new results have it)."""
        self.results = results
        self._apply_style()  # the scatter's title names the metric
        self.note.setText(results.importance_note)
        self.note.setVisible(bool(results.importance_note))
        self._draw_importance()
        chosen = self.param_chooser.currentData()
        self.param_chooser.blockSignals(True)
        self.param_chooser.clear()
        for target in results.scatter:
            self.param_chooser.addItem(_short_name(target), target)
        index = self.param_chooser.findData(chosen)
        self.param_chooser.setCurrentIndex(max(0, index))
        self.param_chooser.blockSignals(False)
        self._draw_scatter()

    def clear(self) -> None:
        """Nothing drawn (a new sweep starts: its study may have no trials yet)."""
        self.results = None
        self.note.setText(EMPTY_NOTE)
        self.note.setVisible(True)
        self.importance_bars.setOpts(x0=[], y=[], width=[], height=BAR_HEIGHT)
        self.importance_plot.getAxis("left").setTicks(None)
        self.param_chooser.blockSignals(True)
        self.param_chooser.clear()
        self.param_chooser.blockSignals(False)
        self.complete_points.setData(x=[], y=[])
        self.pruned_points.setData(x=[], y=[])

    def choose_param(self, target: str) -> None:
        """Show ``target`` on the scatter's x axis."""
        self.param_chooser.setCurrentIndex(self.param_chooser.findData(target))

    def _draw_importance(self) -> None:
        assert self.results is not None
        # Largest on top: the bars go from the bottom up in reverse order.
        ranked = list(reversed(self.results.importances))
        self.importance_bars.setOpts(x0=[0.0] * len(ranked), y=list(range(len(ranked))),
                                     width=[share for _, share in ranked], height=BAR_HEIGHT)
        names = [_short_name(name) for name, _ in ranked]
        axis = self.importance_plot.getAxis("left")
        axis.setTicks([list(enumerate(names))])
        # Room for the longest name: the axis does not grow to fit its tick labels.
        metrics = QFontMetrics(plot_font(-1.0))
        axis.setWidth(max([40, *(metrics.horizontalAdvance(name) + 16 for name in names)]))
        plot = self.importance_plot.getPlotItem()
        if ranked:
            plot.setXRange(0, max(1e-9, max(share for _, share in ranked)) * 1.05, padding=0)
            plot.setYRange(-0.5, len(ranked) - 0.5, padding=0.05)

    def _draw_scatter(self) -> None:
        if self.results is None:
            return
        points = self.results.scatter.get(self.param_chooser.currentData())
        plot = self.scatter_plot.getPlotItem()
        axis = plot.getAxis("bottom")
        if points is None:
            self.complete_points.setData(x=[], y=[])
            self.pruned_points.setData(x=[], y=[])
            return
        # Log ranges are drawn against log10 of the value, with the axis labelling the powers of ten.
        axis.setLogMode(points.log)
        # On a log axis only the powers of ten are labelled: the 2..9 between them ran into each other.
        axis.setStyle(maxTextLevel=0 if points.log else 2)
        axis.setTicks([points.ticks] if points.ticks else None)
        for item, pruned in ((self.complete_points, False), (self.pruned_points, True)):
            xs, ys = points.points(pruned)
            item.setData(x=[math.log10(x) for x in xs] if points.log else xs, y=ys,
                         data=[number for number, flag in zip(points.trials, points.pruned) if flag is pruned])
        colors = plot_colors(self.palette())
        set_axis_label(plot, "bottom", _short_name(points.target), colors)
        plot.enableAutoRange()

    def _apply_style(self) -> None:
        colors = plot_colors(self.palette())
        for widget in (self.importance_plot, self.scatter_plot):
            widget.setBackground(colors.background)
            style_plot(widget.getPlotItem(), colors)
        set_title(self.importance_plot.getPlotItem(), colors, "Parameter importance (Optuna, fANOVA)")
        set_axis_label(self.importance_plot.getPlotItem(), "bottom", "share of the objective's variance", colors)
        metric = METRIC_WORDS.get(self.results.metric, self.results.metric) if self.results else "Objective"
        # The markers are explained in the title: a legend box lay over the points.
        set_title(self.scatter_plot.getPlotItem(), colors, f"{metric} of each trial (● complete, ✕ pruned, "
                                                           f"at the epoch it stopped)")
        self.importance_bars.setOpts(brush=pg.mkBrush(colors.train), pen=pg.mkPen(None))
        self.complete_points.setBrush(pg.mkBrush(colors.train))
        self.complete_points.setPen(pg.mkPen(colors.foreground))
        self.pruned_points.setBrush(pg.mkBrush(colors.mistake))
        self.pruned_points.setPen(pg.mkPen(colors.mistake))

    def changeEvent(self, event: QEvent) -> None:
        if event.type() == QEvent.Type.PaletteChange:  # the theme changed: plots follow it
            self._apply_style()
        super().changeEvent(event)

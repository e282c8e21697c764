"""Colours and fonts the plots share, derived from the application palette (light or dark theme)."""

from __future__ import annotations

from dataclasses import dataclass

import pyqtgraph as pg
from PySide6.QtCore import Qt
from PySide6.QtGui import QColor, QFont, QPalette
from PySide6.QtWidgets import QApplication, QLabel

# Distinct, colour-blind-friendly hues for past runs overlaid on the live curves (Okabe-Ito, then Tableau).
_OVERLAYS_LIGHT = ("#8e44ad", "#009e73", "#cc79a7", "#8c6d31", "#0072b2", "#d55e00", "#7f7f7f", "#bcbd22")
_OVERLAYS_DARK = ("#c39bd3", "#48c9a9", "#f0a6ca", "#d4b36a", "#5dade2", "#f5a06b", "#bdbdbd", "#dbdc5a")


@dataclass(frozen=True)
class PlotColors:
    """What the plots paint with in one theme."""

    dark: bool
    background: QColor
    foreground: QColor
    muted: QColor
    train: QColor
    validation: QColor
    batch: QColor
    learning_rate: QColor
    overlays: tuple[str, ...]
    correct: QColor
    mistake: QColor

    def overlay(self, index: int) -> QColor:
        return QColor(self.overlays[index % len(self.overlays)])


def is_dark(palette: QPalette) -> bool:
    return palette.color(QPalette.ColorRole.Window).lightness() < 128


def plot_colors(palette: QPalette | None = None) -> PlotColors:
    """The plot colours for ``palette`` (the application's by default)."""
    palette = palette or QApplication.palette()
    dark = is_dark(palette)
    foreground = palette.color(QPalette.ColorRole.WindowText)
    muted = QColor(foreground)
    muted.setAlphaF(0.55)
    batch = QColor("#90caf9" if dark else "#6f9fd8")
    batch.setAlphaF(0.8)
    return PlotColors(
        dark=dark,
        background=palette.color(QPalette.ColorRole.Base),
        foreground=foreground,
        muted=muted,
        train=QColor("#64b5f6" if dark else "#1f6fb4"),
        validation=QColor("#ffb74d" if dark else "#e8710a"),
        batch=batch,
        learning_rate=QColor("#81c784" if dark else "#2e7d32"),
        overlays=_OVERLAYS_DARK if dark else _OVERLAYS_LIGHT,
        correct=QColor("#42a5f5" if dark else "#1565c0"),
        mistake=QColor("#ef5350" if dark else "#d32f2f"),
    )


def plot_font(delta: float = 0.0) -> QFont:
    """The application font, ``delta`` points larger or smaller (ticks are a point smaller than labels)."""
    font = QFont(QApplication.font())
    size = font.pointSizeF() if font.pointSizeF() > 0 else 9.0
    font.setPointSizeF(max(6.0, size + delta))
    return font


def style_plot(plot: pg.PlotItem, colors: PlotColors, title: str | None = None) -> None:
    """Axes, ticks, labels and title of ``plot`` in the theme's colours and the application font."""
    axis_pen = pg.mkPen(colors.muted, width=1)
    text_pen = pg.mkPen(colors.foreground)
    tick_font = plot_font(-1.0)
    for name in ("left", "bottom", "right", "top"):
        axis = plot.getAxis(name)
        axis.setPen(axis_pen)
        axis.setTextPen(text_pen)
        axis.setStyle(tickFont=tick_font, tickTextOffset=4)
    if title is not None:
        set_title(plot, colors, title)


def set_title(plot: pg.PlotItem, colors: PlotColors, title: str) -> None:
    plot.setTitle(title, color=colors.foreground.name(), size=f"{plot_font().pointSizeF():.0f}pt", bold=True)


def set_axis_label(plot: pg.PlotItem, side: str, text: str, colors: PlotColors) -> None:
    axis = plot.getAxis(side)
    axis.setLabel(text, color=colors.foreground.name())
    axis.label.setFont(plot_font())


def style_legend(legend: pg.LegendItem, colors: PlotColors, panel: bool = True) -> None:
    """Legend text in the theme's colours, on a translucent panel (``panel``) when it lies over a plot's data.

    The panel is in the plot's background colour, so curves under it stay
    visible; a legend beside the plots needs none.
    """
    if panel:
        fill = QColor(colors.background)
        fill.setAlphaF(0.8)
        legend.setBrush(pg.mkBrush(fill))
        legend.setPen(pg.mkPen(colors.muted))
    else:
        legend.setBrush(pg.mkBrush(None))
        legend.setPen(pg.mkPen(None))
    legend.setLabelTextColor(colors.foreground)
    legend.setLabelTextSize(f"{plot_font(-1.0).pointSizeF():.0f}pt")
    for _sample, label in legend.items:
        label.setText(label.text)  # pyqtgraph stores the new colour and size but redraws only on setText


def plot_hint(text: str = "") -> QLabel:
    """A one-line hint shown in place of a plot that has nothing to draw yet (empty axes say nothing).

    It is painted in the plots' background colour (the palette's Base) so it
    reads as the plot area; its text follows the theme with the palette.
    """
    label = QLabel(text)
    label.setObjectName("PlotHint")
    label.setAlignment(Qt.AlignmentFlag.AlignCenter)
    label.setWordWrap(True)
    label.setMargin(12)
    label.setBackgroundRole(QPalette.ColorRole.Base)
    label.setForegroundRole(QPalette.ColorRole.PlaceholderText)
    label.setAutoFillBackground(True)
    return label

"""Light and dark themes: the application palette and the canvas colours.

The palette dock and the canvas share the category colours, so a layer
looks the same in both places.
"""

from __future__ import annotations

from dataclasses import dataclass

from PySide6.QtGui import QColor, QPalette
from PySide6.QtWidgets import QApplication

LIGHT = "light"
DARK = "dark"

# One hue per layer category (header strip of nodes, swatch in the palette).
CATEGORY_COLORS = {
    "Input & Output": "#2e7d32",
    "Dense": "#1565c0",
    "Convolution": "#6a1b9a",
    "Pooling": "#00838f",
    "Normalization": "#ef6c00",
    "Regularization": "#795548",
    "Activation": "#c62828",
    "Merge": "#ad1457",
    "Shape": "#546e7a",
}


def category_color(category: str) -> QColor:
    return QColor(CATEGORY_COLORS.get(category, "#607d8b"))


@dataclass(frozen=True)
class CanvasColors:
    """Colours the canvas items paint with."""

    background: str
    grid: str
    node_fill: str
    node_border: str
    node_text: str
    node_subtext: str
    selection: str
    edge: str
    edge_label_fill: str
    edge_label_text: str
    port_fill: str
    port_border: str
    error: str
    valid: str


LIGHT_CANVAS = CanvasColors(
    background="#f4f5f7", grid="#c9ced6", node_fill="#ffffff", node_border="#9aa3ad", node_text="#1d2329",
    node_subtext="#56616c", selection="#1e88e5", edge="#6b7785", edge_label_fill="#ffffff",
    edge_label_text="#2b333b", port_fill="#ffffff", port_border="#56616c", error="#d32f2f", valid="#2e7d32",
)

DARK_CANVAS = CanvasColors(
    background="#1e2126", grid="#3a3f47", node_fill="#2b3038", node_border="#4d5561", node_text="#eceff3",
    node_subtext="#aab3be", selection="#64b5f6", edge="#8f9baa", edge_label_fill="#353b44",
    edge_label_text="#e3e7ec", port_fill="#2b3038", port_border="#aab3be", error="#ef5350", valid="#66bb6a",
)


def canvas_colors(theme: str) -> CanvasColors:
    return DARK_CANVAS if theme == DARK else LIGHT_CANVAS


def _dark_palette() -> QPalette:
    palette = QPalette()
    roles = {
        QPalette.ColorRole.Window: "#25292f",
        QPalette.ColorRole.WindowText: "#e6e9ed",
        QPalette.ColorRole.Base: "#1e2126",
        QPalette.ColorRole.AlternateBase: "#2b3038",
        QPalette.ColorRole.ToolTipBase: "#353b44",
        QPalette.ColorRole.ToolTipText: "#e6e9ed",
        QPalette.ColorRole.Text: "#e6e9ed",
        QPalette.ColorRole.Button: "#2f343b",
        QPalette.ColorRole.ButtonText: "#e6e9ed",
        QPalette.ColorRole.BrightText: "#ff6e6e",
        QPalette.ColorRole.Link: "#64b5f6",
        QPalette.ColorRole.Highlight: "#1e88e5",
        QPalette.ColorRole.HighlightedText: "#ffffff",
        QPalette.ColorRole.PlaceholderText: "#8a939e",
    }
    for role, color in roles.items():
        palette.setColor(role, QColor(color))
    for role in (QPalette.ColorRole.Text, QPalette.ColorRole.ButtonText, QPalette.ColorRole.WindowText):
        palette.setColor(QPalette.ColorGroup.Disabled, role, QColor("#6c747e"))
    return palette


def apply_theme(app: QApplication, theme: str) -> None:
    """Fusion style with a light or dark palette (Fusion follows the palette on every platform)."""
    app.setStyle("Fusion")
    app.setPalette(_dark_palette() if theme == DARK else app.style().standardPalette())

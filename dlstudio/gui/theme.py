"""Light and dark themes: the application palette, the canvas colours and the tones of message text.

The palette dock and the canvas share the category colours, so a layer
looks the same in both places. Every text colour here reads at WCAG AA
(4.5:1) against the background it is drawn on, in both themes
(tests/gui/test_theme_contrast.py measures them).
"""

from __future__ import annotations

from dataclasses import dataclass

from PySide6.QtCore import QEvent, QObject, QPointF, QRect, QRectF, QSize, Qt
from PySide6.QtGui import QColor, QIcon, QIconEngine, QPainter, QPalette, QPen, QPixmap
from PySide6.QtWidgets import QApplication, QProxyStyle, QStyle, QStyleOption, QWidget

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


Role = QPalette.ColorRole

# Colours both palettes set the same way: the text of a selection and of messages.
_LIGHT_ROLES = {
    # Fusion's own placeholder is black at half opacity (3.4:1 on the window); help text is drawn with it too.
    Role.PlaceholderText: "#5f6368",
    Role.Highlight: "#1f6fb4",         # white selected text on Fusion's #308cc6 was 3.7:1
    Role.HighlightedText: "#ffffff",
    Role.BrightText: "#b3261e",        # Fusion's is white, unreadable on the light window
}
_DARK_ROLES = {
    Role.Window: "#25292f",
    Role.WindowText: "#e6e9ed",
    Role.Base: "#1e2126",
    Role.AlternateBase: "#2b3038",
    Role.ToolTipBase: "#353b44",
    Role.ToolTipText: "#e6e9ed",
    Role.Text: "#e6e9ed",
    Role.Button: "#2f343b",
    Role.ButtonText: "#e6e9ed",
    Role.BrightText: "#ff6e6e",
    Role.Link: "#64b5f6",
    Role.LinkVisited: "#ce93d8",
    Role.Highlight: "#1565c0",         # white on #1e88e5 was 3.7:1
    Role.HighlightedText: "#ffffff",
    Role.PlaceholderText: "#9aa4af",   # help text, captions and placeholders: 5.8:1 on the window
    # Fusion shades its frames and bevels from these; the defaults are the light theme's.
    Role.Light: "#3d434c",
    Role.Midlight: "#353b44",
    Role.Mid: "#2a2e35",
    Role.Dark: "#181b1f",
    Role.Shadow: "#0d0f12",
}
# Disabled text is dimmed but still legible: 3:1 or more against its background (WCAG exempts it from 4.5:1).
_DISABLED_TEXT = {LIGHT: "#848484", DARK: "#7d8590"}


def _dark_palette() -> QPalette:
    palette = QPalette()
    for role, color in _DARK_ROLES.items():
        palette.setColor(role, QColor(color))
    return palette


def theme_palette(theme: str, base: QPalette | None = None) -> QPalette:
    """The application palette of ``theme``; the light one starts from ``base`` (Fusion's standard palette)."""
    if theme == DARK:
        palette = _dark_palette()
    else:
        palette = QPalette(base) if base is not None else QPalette()
        for role, color in _LIGHT_ROLES.items():
            palette.setColor(role, QColor(color))
    disabled = QColor(_DISABLED_TEXT[DARK if theme == DARK else LIGHT])
    for role in (Role.Text, Role.ButtonText, Role.WindowText, Role.PlaceholderText):
        palette.setColor(QPalette.ColorGroup.Disabled, role, disabled)
    return palette


# -- message tones ---------------------------------------------------------------

@dataclass(frozen=True)
class TextTones:
    """Colours of message text that the palette has no role for: errors and warnings."""

    error: str
    warning: str


TONES = {
    LIGHT: TextTones(error="#b3261e", warning="#8a4f00"),
    DARK: TextTones(error="#ff8a80", warning="#ffb74d"),
}
ERROR = "error"
WARNING = "warning"
HINT = "hint"  # help text and captions: the palette's placeholder colour


def is_dark(palette: QPalette) -> bool:
    return palette.color(Role.Window).lightness() < 128


def tone_color(palette: QPalette, tone: str) -> QColor:
    """The colour of ``tone`` (ERROR, WARNING or HINT) on a window of ``palette``."""
    if tone == HINT:
        return palette.color(Role.PlaceholderText)
    tones = TONES[DARK if is_dark(palette) else LIGHT]
    return QColor(getattr(tones, tone))


class _ToneKeeper(QObject):
    """Keeps a widget's text in its tone's colour for the palette it is shown with (a theme switch included)."""

    def __init__(self, widget: QWidget, tone: str) -> None:
        super().__init__(widget)
        self.tone = tone
        widget.installEventFilter(self)
        self.apply(widget)

    def apply(self, widget: QWidget) -> None:
        palette = widget.palette()
        color = tone_color(palette, self.tone)
        if palette.color(Role.WindowText) != color or palette.color(Role.Text) != color:
            tinted = QPalette()  # only these roles are the widget's own; the rest follow its parent
            for group in (QPalette.ColorGroup.Active, QPalette.ColorGroup.Inactive):
                tinted.setColor(group, Role.WindowText, color)
                tinted.setColor(group, Role.Text, color)
            widget.setPalette(tinted)

    def eventFilter(self, watched: QObject, event: QEvent) -> bool:
        if event.type() == QEvent.Type.PaletteChange and isinstance(watched, QWidget):
            self.apply(watched)
        return False


def set_tone(widget: QWidget, tone: str) -> None:
    """Draw ``widget``'s text in ``tone`` (ERROR, WARNING or HINT), readable in both themes.

    The colour follows theme switches; calling again changes the tone.
    """
    keeper = widget.findChild(_ToneKeeper, options=Qt.FindChildOption.FindDirectChildrenOnly)
    if keeper is None:
        _ToneKeeper(widget, tone)
    else:
        keeper.tone = tone
        keeper.apply(widget)


# -- dock title bar buttons --------------------------------------------------------

class _TitleBarIconEngine(QIconEngine):
    """A dock's float or close glyph in the current palette's window text colour (drawn when painted)."""

    def __init__(self, kind: QStyle.StandardPixmap) -> None:
        super().__init__()
        self.kind = kind

    def clone(self) -> QIconEngine:
        return _TitleBarIconEngine(self.kind)

    def paint(self, painter: QPainter, rect: QRect, mode: QIcon.Mode, state: QIcon.State) -> None:
        palette = QApplication.palette()
        group = QPalette.ColorGroup.Disabled if mode == QIcon.Mode.Disabled else QPalette.ColorGroup.Active
        color = palette.color(group, Role.WindowText)
        side = min(rect.width(), rect.height())
        box = QRectF(rect.x() + (rect.width() - side) / 2, rect.y() + (rect.height() - side) / 2, side, side)
        inset = box.adjusted(side * 0.2, side * 0.2, -side * 0.2, -side * 0.2)
        painter.save()
        painter.setRenderHint(QPainter.RenderHint.Antialiasing)
        pen = QPen(color, max(1.2, side / 10))
        pen.setCapStyle(Qt.PenCapStyle.RoundCap)
        painter.setPen(pen)
        painter.setBrush(Qt.BrushStyle.NoBrush)
        if self.kind == QStyle.StandardPixmap.SP_TitleBarNormalButton:
            # Two overlapping windows: float the dock.
            step = inset.width() * 0.3
            back = QRectF(inset.left() + step, inset.top(), inset.width() - step, inset.height() - step)
            front = QRectF(inset.left(), inset.top() + step, inset.width() - step, inset.height() - step)
            painter.drawLine(QPointF(back.left(), back.top() + step * 0.2), QPointF(back.left(), back.top()))
            painter.drawLine(QPointF(back.left(), back.top()), back.topRight())
            painter.drawLine(back.topRight(), back.bottomRight())
            painter.drawLine(back.bottomRight(), QPointF(back.right() - step * 0.2, back.bottom()))
            painter.drawRect(front)
        else:
            painter.drawLine(inset.topLeft(), inset.bottomRight())
            painter.drawLine(inset.topRight(), inset.bottomLeft())
        painter.restore()

    def pixmap(self, size: QSize, mode: QIcon.Mode, state: QIcon.State) -> QPixmap:
        pixmap = QPixmap(size)
        pixmap.fill(Qt.GlobalColor.transparent)
        painter = QPainter(pixmap)
        self.paint(painter, QRect(0, 0, size.width(), size.height()), mode, state)
        painter.end()
        return pixmap


_TITLE_BAR_ICONS = (QStyle.StandardPixmap.SP_TitleBarNormalButton, QStyle.StandardPixmap.SP_TitleBarCloseButton,
                    QStyle.StandardPixmap.SP_DockWidgetCloseButton)


class ThemedStyle(QProxyStyle):
    """Fusion, with dock title bar buttons drawn in the palette's text colour.

    Fusion's float and close glyphs are fixed dark grey: nearly invisible on the dark theme's title bars.
    """

    def __init__(self) -> None:
        super().__init__("Fusion")

    def standardIcon(self, standard_icon: QStyle.StandardPixmap, option: QStyleOption | None = None,
                     widget: QWidget | None = None) -> QIcon:
        if standard_icon in _TITLE_BAR_ICONS:
            return QIcon(_TitleBarIconEngine(standard_icon))
        return super().standardIcon(standard_icon, option, widget)


def apply_theme(app: QApplication, theme: str) -> None:
    """Fusion style with a light or dark palette (Fusion follows the palette on every platform)."""
    style = ThemedStyle()
    base = style.standardPalette()
    app.setStyle(style)
    app.setPalette(theme_palette(theme, base))

"""The window's icons: one name per action, drawn from an icon font in the palette's colours.

``icon("undo")`` gives a QIcon whose glyph is painted in the application
palette's colours *at paint time* (button text; the disabled colour for
disabled actions; highlighted text in a highlighted menu row), so a theme
switch recolours every icon on screen with no further call. :func:`refresh`
exists for icons whose colours were fixed when made (the qtawesome fallback).

The glyphs are Material Design Icons 6, the font file qtawesome ships. The font
is loaded directly (about 10 ms): importing qtawesome itself costs about 0.2 s
at start (qtpy star-imports all of PySide6, and the first icon loads eight
fonts). When the font file cannot be found, qtawesome's own API draws the icons.
"""

from __future__ import annotations

import importlib.util
import json
from pathlib import Path

from PySide6.QtCore import QPoint, QRect, QSize, Qt
from PySide6.QtGui import QAction, QColor, QFont, QFontDatabase, QIcon, QIconEngine, QPainter, QPalette, QPixmap
from PySide6.QtWidgets import QApplication

# Our name -> the glyph's name in Material Design Icons 6 (qtawesome's "mdi6" prefix).
GLYPHS: dict[str, str] = {
    "new": "file-plus-outline",
    "open": "folder-open-outline",
    "save": "content-save-outline",
    "save_as": "content-save-edit-outline",
    "export": "export-variant",
    "undo": "undo",
    "redo": "redo",
    "cut": "content-cut",
    "copy": "content-copy",
    "paste": "content-paste",
    "duplicate": "content-duplicate",
    "delete": "delete-outline",
    "zoom_in": "magnify-plus-outline",
    "zoom_out": "magnify-minus-outline",
    "fit": "fit-to-screen-outline",
    "auto_layout": "sitemap-outline",
    "train": "play",
    "pause": "pause",
    "resume": "play",
    "stop": "stop",
    "welcome": "home-outline",
    "help": "help-circle-outline",
    "image_folder": "folder-image",
    "log_folder": "text-box-search-outline",
}

NAMES: tuple[str, ...] = tuple(GLYPHS)

# The property that remembers which icon an action shows (for refresh()).
_ICON_PROPERTY = "dlstudio_icon"
# The glyph's size in its square: qtawesome's proportion, which leaves room for the font's bearings.
_GLYPH_SCALE = 0.875

_cache: dict[str, QIcon] = {}
_font: tuple[str, dict[str, int]] | None = None  # family, glyph name -> code point
_font_missing = False


def _load_font() -> tuple[str, dict[str, int]] | None:
    """The mdi6 font's family and charmap, loaded once from qtawesome's folder; None if absent."""
    global _font, _font_missing
    if _font is not None or _font_missing:
        return _font
    spec = importlib.util.find_spec("qtawesome")  # finds the folder without importing the package
    folders = list(spec.submodule_search_locations or []) if spec is not None else []
    for folder in (Path(f) / "fonts" for f in folders):
        fonts = sorted(folder.glob("materialdesignicons6-webfont-[0-9]*.ttf"))
        charmaps = sorted(folder.glob("materialdesignicons6-webfont-charmap-*.json"))
        if not fonts or not charmaps:
            continue
        font_id = QFontDatabase.addApplicationFont(str(fonts[-1]))
        families = QFontDatabase.applicationFontFamilies(font_id) if font_id >= 0 else []
        if families:
            charmap = json.loads(charmaps[-1].read_text(encoding="utf-8"))
            _font = (families[0], {name: int(code, 16) for name, code in charmap.items()})
            return _font
    _font_missing = True
    return None


def _palette() -> QPalette:
    app = QApplication.instance()
    return app.palette() if isinstance(app, QApplication) else QPalette()


def _color(mode: QIcon.Mode) -> QColor:
    palette = _palette()
    if mode == QIcon.Mode.Disabled:
        normal = palette.color(QPalette.ColorGroup.Active, QPalette.ColorRole.ButtonText)
        color = palette.color(QPalette.ColorGroup.Disabled, QPalette.ColorRole.ButtonText)
        if color == normal:  # a palette without a disabled group: fade the normal colour
            color = QColor(normal)
            color.setAlphaF(0.4)
        return color
    if mode == QIcon.Mode.Selected:
        return palette.color(QPalette.ColorRole.HighlightedText)
    return palette.color(QPalette.ColorGroup.Active, QPalette.ColorRole.ButtonText)


class _GlyphEngine(QIconEngine):
    """Paints one glyph of the icon font in the palette colour of the icon's mode."""

    def __init__(self, family: str, char: str) -> None:
        super().__init__()
        self._family = family
        self._char = char

    def paint(self, painter: QPainter, rect: QRect, mode: QIcon.Mode, state: QIcon.State) -> None:
        painter.save()
        font = QFont(self._family)
        font.setPixelSize(max(1, round(_GLYPH_SCALE * rect.height())))
        painter.setFont(font)
        painter.setPen(_color(mode))
        painter.drawText(rect, Qt.AlignmentFlag.AlignCenter, self._char)
        painter.restore()

    def pixmap(self, size: QSize, mode: QIcon.Mode, state: QIcon.State) -> QPixmap:
        pixmap = QPixmap(size)
        pixmap.fill(Qt.GlobalColor.transparent)
        painter = QPainter(pixmap)
        painter.setRenderHint(QPainter.RenderHint.TextAntialiasing)
        self.paint(painter, QRect(QPoint(0, 0), size), mode, state)
        painter.end()
        return pixmap

    def clone(self) -> QIconEngine:
        return _GlyphEngine(self._family, self._char)


def _qtawesome_icon(glyph: str) -> QIcon:
    import qtawesome  # the fallback: fixed colours, recoloured by refresh()

    palette = _palette()
    normal = palette.color(QPalette.ColorGroup.Active, QPalette.ColorRole.ButtonText)
    return qtawesome.icon(f"mdi6.{glyph}", color=normal, color_active=normal,
                          color_disabled=_color(QIcon.Mode.Disabled),
                          color_selected=palette.color(QPalette.ColorRole.HighlightedText))


def icon(name: str) -> QIcon:
    """The icon called ``name`` (one of :data:`NAMES`), painted in the current palette's colours.

    Needs a QApplication. KeyError for a name that is not one of ours.
    """
    glyph = GLYPHS.get(name)
    if glyph is None:
        raise KeyError(f"no icon called {name!r}; the icons are: {', '.join(NAMES)}")
    cached = _cache.get(name)
    if cached is None:
        font = _load_font()
        if font is not None and glyph in font[1]:
            cached = QIcon(_GlyphEngine(font[0], chr(font[1][glyph])))
        else:
            cached = _qtawesome_icon(glyph)
        _cache[name] = cached
    return cached


def set_icon(action: QAction, name: str) -> None:
    """Give ``action`` the icon ``name`` and remember it, so :func:`refresh` can redo it."""
    action.setIcon(icon(name))
    action.setProperty(_ICON_PROPERTY, name)


def refresh(*roots) -> None:
    """After a theme switch: make the icons again and give them to the actions :func:`set_icon` set under ``roots``.

    ``roots`` are QObjects (the main window) or QActions. Icons from the font
    follow the palette by themselves; this matters for the qtawesome fallback,
    whose colours are fixed when an icon is made.
    """
    _cache.clear()
    actions: list[QAction] = []
    for root in roots:
        if isinstance(root, QAction):
            actions.append(root)
        else:
            actions.extend(root.findChildren(QAction))
    for action in actions:
        name = action.property(_ICON_PROPERTY)
        if isinstance(name, str) and name in GLYPHS:
            action.setIcon(icon(name))

"""The window's icons: one name per action, drawn from a font in the palette's colours.

``icon("undo")`` gives a QIcon coloured for the current palette (normal and
disabled text colours), cached per name and colours, so the same call after a
theme switch gives the icon in the new colours. Actions given their icon with
:func:`set_icon` are recoloured by :func:`refresh` after a theme switch.

The glyphs come from qtawesome's Material Design Icons 6 set ("mdi6").
"""

from __future__ import annotations

from PySide6.QtGui import QAction, QColor, QIcon, QPalette
from PySide6.QtWidgets import QApplication

# Our name -> the glyph in qtawesome's "mdi6" set.
GLYPHS: dict[str, str] = {
    "new": "mdi6.file-plus-outline",
    "open": "mdi6.folder-open-outline",
    "save": "mdi6.content-save-outline",
    "save_as": "mdi6.content-save-edit-outline",
    "export": "mdi6.export-variant",
    "undo": "mdi6.undo",
    "redo": "mdi6.redo",
    "cut": "mdi6.content-cut",
    "copy": "mdi6.content-copy",
    "paste": "mdi6.content-paste",
    "duplicate": "mdi6.content-duplicate",
    "delete": "mdi6.delete-outline",
    "zoom_in": "mdi6.magnify-plus-outline",
    "zoom_out": "mdi6.magnify-minus-outline",
    "fit": "mdi6.fit-to-screen-outline",
    "auto_layout": "mdi6.sitemap-outline",
    "train": "mdi6.play",
    "pause": "mdi6.pause",
    "resume": "mdi6.play",
    "stop": "mdi6.stop",
    "welcome": "mdi6.home-outline",
    "help": "mdi6.help-circle-outline",
    "image_folder": "mdi6.folder-image",
    "log_folder": "mdi6.text-box-search-outline",
}

NAMES: tuple[str, ...] = tuple(GLYPHS)

# The QAction property that remembers which icon an action shows (for refresh()).
_ICON_PROPERTY = "dlstudio_icon"

_cache: dict[tuple[str, str, str], QIcon] = {}


def _colors() -> tuple[str, str]:
    """The palette's button text colours (normal, disabled) as #rrggbb."""
    app = QApplication.instance()
    palette = app.palette() if isinstance(app, QApplication) else QPalette()
    normal = palette.color(QPalette.ColorGroup.Active, QPalette.ColorRole.ButtonText)
    disabled = palette.color(QPalette.ColorGroup.Disabled, QPalette.ColorRole.ButtonText)
    if disabled == normal:  # some palettes leave the disabled group alone: fade it ourselves
        disabled = QColor(normal)
        disabled.setAlphaF(0.4)
    return normal.name(QColor.NameFormat.HexArgb), disabled.name(QColor.NameFormat.HexArgb)


def icon(name: str) -> QIcon:
    """The icon called ``name`` (one of :data:`NAMES`) in the current palette's colours.

    Needs a QApplication. KeyError for a name that is not one of ours.
    """
    glyph = GLYPHS.get(name)
    if glyph is None:
        raise KeyError(f"no icon called {name!r}; the icons are: {', '.join(NAMES)}")
    normal, disabled = _colors()
    key = (name, normal, disabled)
    cached = _cache.get(key)
    if cached is None:
        import qtawesome  # loads its fonts on first use, after the QApplication exists

        cached = qtawesome.icon(glyph, color=normal, color_active=normal, color_selected=normal,
                                color_disabled=disabled)
        _cache[key] = cached
    return cached


def set_icon(action: QAction, name: str) -> None:
    """Give ``action`` the icon ``name`` and remember it, so :func:`refresh` can recolour it."""
    action.setIcon(icon(name))
    action.setProperty(_ICON_PROPERTY, name)


def refresh(*roots) -> None:
    """Recolour, after a theme switch, the icons :func:`set_icon` gave to actions under ``roots``.

    ``roots`` are QObjects (the main window) or QActions. Icons of the old colours
    are dropped from the cache.
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

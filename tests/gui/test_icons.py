"""The window's icons: every name draws something, in the palette's colours."""

from __future__ import annotations

import pytest
from PySide6.QtGui import QAction, QColor, QImage, QPalette
from PySide6.QtWidgets import QApplication, QWidget

from dlstudio.gui import icons
from dlstudio.gui.theme import DARK, LIGHT, apply_theme

ACTION_NAMES = ["new", "open", "save", "save_as", "export", "undo", "redo", "cut", "copy", "paste", "duplicate",
                "delete", "zoom_in", "zoom_out", "fit", "auto_layout", "train", "pause", "resume", "stop",
                "welcome", "help"]


@pytest.fixture
def restore_theme(qapp):
    style, palette = qapp.style().name(), QPalette(qapp.palette())
    yield
    qapp.setStyle(style)
    qapp.setPalette(palette)
    icons.refresh()


def _ink(image: QImage) -> list[QColor]:
    """The opaque pixels of ``image``."""
    image = image.convertToFormat(QImage.Format.Format_ARGB32)
    return [image.pixelColor(x, y) for y in range(image.height()) for x in range(image.width())
            if image.pixelColor(x, y).alpha() > 200]


@pytest.mark.parametrize("name", ACTION_NAMES)
def test_every_action_name_draws_a_glyph(qapp, name):
    assert name in icons.NAMES
    icon = icons.icon(name)
    assert not icon.isNull()
    pixmap = icon.pixmap(24, 24)
    assert not pixmap.isNull()
    assert len(_ink(pixmap.toImage())) > 10  # some of the 576 pixels are drawn


def test_icons_are_cached(qapp):
    assert icons.icon("undo") is icons.icon("undo")


def test_an_unknown_name_is_a_key_error_naming_it(qapp):
    with pytest.raises(KeyError, match="no icon called 'frobnicate'.*undo"):
        icons.icon("frobnicate")


def _dark_on_light_then_light_on_dark(light_ink: list[QColor], dark_ink: list[QColor]) -> bool:
    return max(c.lightness() for c in light_ink) < 128 < min(c.lightness() for c in dark_ink)


def test_icons_follow_the_theme_without_being_made_again(qapp, restore_theme):
    apply_theme(qapp, LIGHT)
    undo = icons.icon("undo")
    light_ink = _ink(undo.pixmap(24, 24).toImage())
    apply_theme(qapp, DARK)
    assert _dark_on_light_then_light_on_dark(light_ink, _ink(undo.pixmap(24, 24).toImage()))


def test_without_the_font_file_qtawesome_draws_them_and_refresh_recolours_actions(qapp, restore_theme,
                                                                                  monkeypatch):
    monkeypatch.setattr(icons, "_font", None)
    monkeypatch.setattr(icons, "_font_missing", True)
    monkeypatch.setattr(icons, "_cache", {})
    owner = QWidget()
    action = QAction("Undo", owner)
    apply_theme(qapp, LIGHT)
    icons.set_icon(action, "undo")
    light_ink = _ink(action.icon().pixmap(24, 24).toImage())
    apply_theme(qapp, DARK)
    icons.refresh(owner)
    assert _dark_on_light_then_light_on_dark(light_ink, _ink(action.icon().pixmap(24, 24).toImage()))
    owner.deleteLater()


def test_disabled_icons_are_drawn_fainter(qapp):
    from PySide6.QtGui import QIcon

    icon = icons.icon("save")
    normal = _ink(icon.pixmap(24, 24, QIcon.Mode.Normal).toImage())
    disabled = icon.pixmap(24, 24, QIcon.Mode.Disabled).toImage().convertToFormat(QImage.Format.Format_ARGB32)
    text = QApplication.palette().color(QPalette.ColorRole.ButtonText)
    assert normal and all(abs(c.lightness() - text.lightness()) < 40 for c in normal)
    # The same glyph, in another colour or fainter.
    drawn = [disabled.pixelColor(x, y) for y in range(24) for x in range(24) if disabled.pixelColor(x, y).alpha()]
    assert drawn and {(c.rgb(), c.alpha()) for c in drawn} != {(c.rgb(), c.alpha()) for c in normal}

"""Every text the panels draw reads at WCAG AA (4.5:1) against its background, in the light and the dark theme."""

from __future__ import annotations

import pytest
from PySide6.QtCore import Qt
from PySide6.QtGui import QAction, QColor, QImage, QPalette
from PySide6.QtWidgets import QAbstractButton, QDockWidget, QLabel, QMainWindow, QWidget

from dlstudio.core.project import load_template
from dlstudio.core.shapes import ShapeInference
from dlstudio.gui.data_panel import DataPanel
from dlstudio.gui.inspector import Inspector
from dlstudio.gui.settings_form import SettingsForm
from dlstudio.gui.theme import DARK, ERROR, HINT, LIGHT, TONES, WARNING, apply_theme, tone_color
from dlstudio.gui.training_panel import TrainingPanel

Role = QPalette.ColorRole
AA = 4.5


def _channel(value: float) -> float:
    value /= 255
    return value / 12.92 if value <= 0.03928 else ((value + 0.055) / 1.055) ** 2.4


def luminance(color: QColor) -> float:
    return 0.2126 * _channel(color.red()) + 0.7152 * _channel(color.green()) + 0.0722 * _channel(color.blue())


def over(color: QColor, background: QColor) -> QColor:
    """``color`` as seen on ``background`` (a translucent colour blends with what is under it)."""
    alpha = color.alphaF()
    return QColor(*(round(a * alpha + b * (1 - alpha)) for a, b in
                    ((color.red(), background.red()), (color.green(), background.green()),
                     (color.blue(), background.blue()))))


def contrast(text: QColor, background: QColor) -> float:
    """The WCAG contrast ratio of ``text`` drawn on an opaque ``background``."""
    lighter, darker = sorted((luminance(over(text, background)), luminance(background)), reverse=True)
    return (lighter + 0.05) / (darker + 0.05)


def test_contrast_formula() -> None:
    assert contrast(QColor("black"), QColor("white")) == pytest.approx(21.0)
    assert contrast(QColor("#777777"), QColor("white")) == pytest.approx(4.48, abs=0.01)
    assert contrast(QColor(0, 0, 0, 128), QColor("white")) == pytest.approx(contrast(QColor("#7f7f7f"),
                                                                                     QColor("white")))


@pytest.fixture
def restore_theme(qapp):
    style, palette = qapp.style().name(), QPalette(qapp.palette())
    yield
    qapp.setStyle(style or "Fusion")
    qapp.setPalette(palette)


# (text role, background role) pairs the application draws with.
TEXT_PAIRS = [
    (Role.WindowText, Role.Window),
    (Role.Text, Role.Base),
    (Role.Text, Role.AlternateBase),
    (Role.PlaceholderText, Role.Base),     # placeholders in fields
    (Role.PlaceholderText, Role.Window),   # help text and captions
    (Role.ButtonText, Role.Button),
    (Role.ToolTipText, Role.ToolTipBase),
    (Role.BrightText, Role.Window),
    (Role.Link, Role.Base),
    (Role.Link, Role.Window),
    (Role.HighlightedText, Role.Highlight),
]


@pytest.mark.parametrize("theme", [LIGHT, DARK])
@pytest.mark.parametrize(("text", "background"), TEXT_PAIRS, ids=lambda role: role.name)
def test_palette_text_roles_meet_aa(qapp, restore_theme, theme, text, background) -> None:
    apply_theme(qapp, theme)
    palette = qapp.palette()
    for group in (QPalette.ColorGroup.Active, QPalette.ColorGroup.Inactive):
        ratio = contrast(palette.color(group, text), palette.color(group, background))
        assert ratio >= AA, f"{theme} {text.name} on {background.name}: {ratio:.2f}"


@pytest.mark.parametrize("theme", [LIGHT, DARK])
def test_disabled_text_stays_legible(qapp, restore_theme, theme) -> None:
    apply_theme(qapp, theme)
    palette = qapp.palette()
    group = QPalette.ColorGroup.Disabled
    for text, background in ((Role.WindowText, Role.Window), (Role.Text, Role.Base), (Role.ButtonText, Role.Button)):
        assert contrast(palette.color(group, text), palette.color(group, background)) >= 3.0


@pytest.mark.parametrize("theme", [LIGHT, DARK])
def test_message_tones_meet_aa_on_the_window_and_in_tinted_boxes(qapp, restore_theme, theme) -> None:
    apply_theme(qapp, theme)
    window = qapp.palette().color(Role.Window)
    for tone in (ERROR, WARNING, HINT):
        color = tone_color(qapp.palette(), tone)
        assert contrast(color, window) >= AA, (theme, tone)
        tint = QColor(color)
        tint.setAlpha(28)  # the Data panel's message boxes
        assert contrast(color, over(tint, window)) >= AA, (theme, tone)
    assert set(TONES) == {LIGHT, DARK}


def _text_colors(widget: QWidget) -> list[tuple[str, QColor, QColor]]:
    """(text, text colour, window colour) of every visible label under ``widget``."""
    return [(label.text(), label.palette().color(label.foregroundRole()), label.palette().color(Role.Window))
            for label in widget.findChildren(QLabel) if label.isVisibleTo(widget) and label.text()]


@pytest.mark.parametrize("theme", [LIGHT, DARK])
def test_panel_labels_meet_aa_after_a_theme_switch(qapp, qtbot, restore_theme, theme) -> None:
    # Built in the other theme first: the colours must follow the switch.
    apply_theme(qapp, DARK if theme == LIGHT else LIGHT)
    owner = QWidget()
    qtbot.addWidget(owner)
    training = TrainingPanel(*(QAction(text, owner) for text in ("Train", "Pause", "Stop")))
    qtbot.addWidget(training)
    training.show_error("The model does not fit the data")
    form = SettingsForm(training.form.specs and tuple(training.form.specs.values())[:2])
    qtbot.addWidget(form)
    form.show_refusal("Batch size: must be at least 1")
    project = load_template("lenet5")
    inspector = Inspector()
    qtbot.addWidget(inspector)
    inspector.set_model(project.graph, ShapeInference(project.graph))
    conv = next(node.id for node in project.graph.nodes.values() if node.spec.type_id == "Conv2d")
    inspector.show_node(conv)
    data = DataPanel()
    qtbot.addWidget(data)
    data.sample_caption.setText("80 training samples")
    data.sample_caption.show()
    for widget in (training, form, inspector, data):
        widget.show()
        qtbot.waitExposed(widget)
    apply_theme(qapp, theme)
    qapp.processEvents()
    seen = 0
    for widget in (training, form, inspector, data):
        for text, color, window in _text_colors(widget):
            assert contrast(color, window) >= AA, f"{theme}: {text!r} {color.name()} on {window.name()}"
            seen += 1
    assert seen > 20
    hint = tone_color(qapp.palette(), HINT).name()
    assert hint in inspector.title.text()  # the node's id beside its type, no fixed grey
    assert training.error_label.palette().color(Role.WindowText) == tone_color(qapp.palette(), ERROR)
    data.cancel_loading()


def _ink(image: QImage) -> list[QColor]:
    image = image.convertToFormat(QImage.Format.Format_ARGB32)
    return [image.pixelColor(x, y) for y in range(image.height()) for x in range(image.width())
            if image.pixelColor(x, y).alpha() > 200]


@pytest.mark.parametrize("theme", [LIGHT, DARK])
def test_dock_title_buttons_are_visible(qapp, qtbot, restore_theme, theme) -> None:
    window = QMainWindow()
    qtbot.addWidget(window)
    dock = QDockWidget("Training", window)
    dock.setWidget(QLabel("content"))
    window.addDockWidget(Qt.DockWidgetArea.RightDockWidgetArea, dock)
    window.show()
    qtbot.waitExposed(window)
    apply_theme(qapp, theme)
    qapp.processEvents()
    buttons = [b for b in dock.findChildren(QAbstractButton) if b.isVisible()]
    assert len(buttons) == 2  # float and close
    background = dock.palette().color(Role.Window)
    for button in buttons:
        ink = _ink(button.icon().pixmap(16, 16).toImage())
        assert len(ink) > 10
        # Graphics that carry meaning: at least 3:1 (WCAG 1.4.11) for their strongest pixels.
        assert max(contrast(color, background) for color in ink) >= 4.5, theme

"""The start page: a card per template with a picture of its network, recent projects, and the Start commands."""

from __future__ import annotations

import pytest
from PySide6.QtCore import QPoint, Qt
from PySide6.QtGui import QColor, QImage, QPalette
from PySide6.QtTest import QTest

from dlstudio.core.project import list_templates
from dlstudio.gui import welcome
from dlstudio.gui.theme import DARK, LIGHT, apply_theme, canvas_colors
from dlstudio.gui.welcome import WelcomePage


@pytest.fixture
def restore_theme(qapp):
    style, palette = qapp.style().name(), QPalette(qapp.palette())
    yield
    qapp.setStyle(style)
    qapp.setPalette(palette)


@pytest.fixture
def make_page(qtbot):
    def make(recent=(), show=True) -> WelcomePage:
        page = WelcomePage(recent)
        qtbot.addWidget(page)
        page.resize(1200, 800)
        if show:
            page.show()
            qtbot.waitExposed(page)
        return page

    return make


def _colours(image: QImage) -> set[int]:
    image = image.convertToFormat(QImage.Format.Format_RGB32)
    return {image.pixel(x, y) for y in range(0, image.height(), 2) for x in range(0, image.width(), 2)}


def test_a_card_for_every_template_each_with_a_picture_of_its_network(qtbot, make_page):
    page = make_page()
    assert [card.name for card in page.cards] == [t.name for t in list_templates()]
    assert len(page.cards) >= 6
    # Drawn after the page is shown, one per event-loop turn.
    qtbot.waitUntil(page.thumbnails_done, timeout=10_000)
    background = QColor(canvas_colors(LIGHT if page.palette().color(QPalette.ColorRole.Window).lightness() >= 128
                                      else DARK).background).rgb()
    for card in page.cards:
        assert card.thumbnail is not None and not card.failed, card.name
        colours = _colours(card.thumbnail.toImage())
        assert len(colours) > 20, card.name  # nodes, category colours, text: not a blank fill
        assert background in colours
        assert card.info.title and card.toolTip()


def test_thumbnails_are_cached_per_theme(make_page):
    page = make_page(show=False)
    page.ensure_thumbnails()
    first = {card.name: card.thumbnail.cacheKey() for card in page.cards}
    again = make_page(show=False)
    again.ensure_thumbnails()
    assert {card.name: card.thumbnail.cacheKey() for card in again.cards} == first


def test_clicking_a_card_chooses_its_template(qtbot, make_page):
    page = make_page()
    card = page.cards[2]
    page.scroll.ensureWidgetVisible(card)
    with qtbot.waitSignal(page.template_chosen, timeout=2000) as blocker:
        QTest.mouseClick(card, Qt.MouseButton.LeftButton, pos=QPoint(card.width() // 2, card.height() // 2))
    assert blocker.args == [card.name]


def test_cards_work_from_the_keyboard(qtbot, make_page):
    page = make_page()
    page.activateWindow()
    first = page.cards[0]
    first.setFocus()
    qtbot.waitUntil(first.hasFocus, timeout=2000)
    QTest.keyClick(first, Qt.Key.Key_Right)
    second = page.cards[1]
    assert second.hasFocus()
    with qtbot.waitSignal(page.template_chosen, timeout=2000) as blocker:
        QTest.keyClick(second, Qt.Key.Key_Return)
    assert blocker.args == [second.name]
    with qtbot.waitSignal(page.template_chosen, timeout=2000) as blocker:
        QTest.keyClick(second, Qt.Key.Key_Space)
    assert blocker.args == [second.name]
    # Tab reaches the cards after the Start commands.
    page.image_folder_button.setFocus()
    QTest.keyClick(page.image_folder_button, Qt.Key.Key_Tab)
    assert page.cards[0].hasFocus()


def test_recent_projects_show_name_and_folder_and_grey_out_missing_files(qtbot, make_page, tmp_path):
    present = tmp_path / "cats" / "cats-vs-dogs.dlstudio"
    present.parent.mkdir()
    present.write_text("{}")
    gone = tmp_path / "gone.dlstudio"
    page = make_page([str(present), str(gone)])
    assert [item.file_name for item in page.recent_items] == ["cats-vs-dogs.dlstudio", "gone.dlstudio"]
    assert page.recent_items[0].folder == str(present.parent)
    assert page.recent_items[0].isEnabled() and not page.recent_items[1].isEnabled()
    assert "no longer there" in page.recent_items[1].toolTip()
    assert not page.no_recent_label.isVisible()
    with qtbot.waitSignal(page.recent_chosen, timeout=2000) as blocker:
        QTest.mouseClick(page.recent_items[0], Qt.MouseButton.LeftButton)
    assert blocker.args == [str(present)]
    with qtbot.assertNotEmitted(page.recent_chosen):
        QTest.mouseClick(page.recent_items[1], Qt.MouseButton.LeftButton)

    page.set_recent_files([])
    assert page.recent_items == [] and page.no_recent_label.isVisible()


def test_the_start_commands_emit(qtbot, make_page):
    page = make_page()
    assert page.image_folder_button.text() == "Open an image folder to train on…"
    for button, signal in ((page.new_button, page.new_requested), (page.open_button, page.open_requested),
                           (page.image_folder_button, page.image_folder_requested)):
        with qtbot.waitSignal(signal, timeout=2000):
            QTest.mouseClick(button, Qt.MouseButton.LeftButton)


def test_a_template_that_cannot_load_says_so_on_its_card(make_page, monkeypatch):
    from dlstudio.core.errors import DlstudioError

    def broken(name, theme, size, ratio=1.0):
        raise DlstudioError("template mlp is damaged")

    monkeypatch.setattr(welcome, "render_thumbnail", broken)
    page = make_page(show=False)
    page.ensure_thumbnails()
    assert all(card.failed and card.thumbnail is None for card in page.cards)
    assert page.thumbnails_done()


def test_the_dark_theme_redraws_the_pictures_in_dark_colours(qtbot, qapp, make_page, restore_theme):
    apply_theme(qapp, LIGHT)
    page = make_page()
    qtbot.waitUntil(page.thumbnails_done, timeout=10_000)
    light = page.cards[0].thumbnail.toImage().pixelColor(1, 1)
    apply_theme(qapp, DARK)
    qtbot.waitUntil(lambda: page.thumbnails_done() and page.cards[0].thumbnail.toImage().pixelColor(1, 1) != light,
                    timeout=10_000)
    assert page.cards[0].thumbnail.toImage().pixelColor(1, 1) == QColor(canvas_colors(DARK).background)
    assert light == QColor(canvas_colors(LIGHT).background)
    # Quiet text stays readable: clearly apart from the dark window colour.
    hint = page.findChild(welcome.QLabel, "welcome_hint")
    text = hint.palette().color(QPalette.ColorRole.WindowText)
    assert text.lightness() - page.palette().color(QPalette.ColorRole.Window).lightness() > 60


def test_between_the_docks_start_and_recent_go_above_the_templates(qtbot, make_page):
    page = make_page()
    assert page.wide and page.grid.columns == 3
    page.resize(760, 480)  # about the canvas's share of a 1400x900 window
    qtbot.waitUntil(lambda: page.wide is False, timeout=2000)
    qtbot.waitUntil(lambda: page.grid.columns == 2, timeout=2000)
    assert page.recent_section.geometry().top() == page.start_section.geometry().top()
    assert page.templates_section.geometry().top() > page.start_section.geometry().bottom()


def test_file_new_from_template_shows_the_template_cards_with_the_first_focused(make_window, qtbot):
    window = make_window()
    window.hide_welcome()
    window.resize(1000, 600)  # short enough that the cards start below the fold
    window.new_from_template_action.trigger()
    assert window.is_welcome_shown()
    page = window.welcome
    qtbot.waitUntil(lambda: page.cards[0].hasFocus(), timeout=3000)
    viewport = page.scroll.viewport()

    def first_card_top():
        return page.cards[0].mapTo(viewport, page.cards[0].rect().topLeft()).y()

    qtbot.waitUntil(lambda: 0 <= first_card_top() < viewport.height() // 2, timeout=3000)
    assert page.scroll.verticalScrollBar().value() > 0, "scrolled down to the cards"

"""The dock arrangement: remembered between launches, refused when saved by another layout, reset on request."""

from __future__ import annotations

from PySide6.QtCore import QSettings
from PySide6.QtWidgets import QMenu

from dlstudio.gui.main_window import LAYOUT_VERSION


def _view_menu_action(window, text: str):
    for action in window.menuBar().actions():
        menu = action.menu()
        if isinstance(menu, QMenu) and action.text() == "&View":
            return next(item for item in menu.actions() if item.text() == text)
    raise AssertionError("no View menu")


def test_reset_layout_puts_moved_and_hidden_docks_back(make_window) -> None:
    window = make_window()
    assert window.runs_dock.isVisible() and not window.metrics_dock.isFloating()
    window.runs_dock.close()
    window.metrics_dock.setFloating(True)
    _view_menu_action(window, "&Reset Layout").trigger()
    assert window.runs_dock.isVisible()
    assert not window.metrics_dock.isFloating()


def test_an_arrangement_is_remembered_but_one_from_another_layout_version_is_not(make_window) -> None:
    window = make_window()
    window.runs_dock.close()
    window.close()  # saves the arrangement
    assert not make_window().runs_dock.isVisible()

    other = make_window()
    other.runs_dock.close()
    QSettings().setValue("window/state", other.saveState(LAYOUT_VERSION - 1))
    assert make_window().runs_dock.isVisible()


def test_no_stray_dock_tab_bar_is_drawn_over_the_palette(make_window, qtbot):
    """Qt 6.11 makes a second, unused tab bar for the Metrics | Inspect group; it must not show."""
    from PySide6.QtWidgets import QTabBar

    window = make_window()
    window.resize(1600, 1000)

    def visible_groups():
        return [tuple(bar.tabText(i) for i in range(bar.count())) for bar in window.findChildren(QTabBar)
                if bar.parent() is window and bar.isVisible()]

    qtbot.waitUntil(lambda: visible_groups().count(("Metrics", "Inspect")) == 1, timeout=3000)
    assert sorted(visible_groups()) == [("Inspector", "Training", "Data"), ("Metrics", "Inspect")]
    window.reset_layout()
    qtbot.waitUntil(lambda: visible_groups().count(("Metrics", "Inspect")) == 1, timeout=3000)


def test_the_inspect_tab_opens_tall_enough_to_draw_in_once_and_a_size_set_later_stays(make_window, qtbot):
    from PySide6.QtCore import Qt
    from PySide6.QtTest import QTest
    from PySide6.QtWidgets import QTabBar

    window = make_window()
    window.resize(1400, 900)
    qtbot.waitUntil(lambda: any(bar.parent() is window and bar.isVisible() and bar.tabText(1) == "Inspect"
                                for bar in window.findChildren(QTabBar)), timeout=3000)
    bar = next(bar for bar in window.findChildren(QTabBar)
               if bar.parent() is window and bar.isVisible() and bar.tabText(1) == "Inspect")
    strip = window.metrics_dock.height()
    assert strip < 0.3 * window.height(), "before anything is plotted the bottom docks are a strip"
    QTest.mouseClick(bar, Qt.MouseButton.LeftButton, pos=bar.tabRect(1).center())
    qtbot.waitUntil(lambda: window.inspect_dock.height() >= 0.35 * window.height(), timeout=3000)

    window.resizeDocks([window.inspect_dock], [strip], Qt.Orientation.Vertical)  # the person makes it small
    QTest.mouseClick(bar, Qt.MouseButton.LeftButton, pos=bar.tabRect(0).center())
    QTest.mouseClick(bar, Qt.MouseButton.LeftButton, pos=bar.tabRect(1).center())
    qtbot.wait(50)
    assert window.inspect_dock.height() < 0.3 * window.height(), "grown once, not at every click"

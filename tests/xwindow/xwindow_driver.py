"""Drives a shown MainWindow through real events: menubar clicks, toolbar clicks, right clicks.

Every step runs through :meth:`WindowDriver.step`, which afterwards settles the event loop,
stops a training the step started (through the toolbar's Pause, Resume and Stop), undoes what
it pushed, puts the project back when the step replaced it, and checks that nothing raised
and that the canvas is still usable. Failures are collected with the step's label, so one run
reports every broken action, not only the first.
"""

from __future__ import annotations

import time
import traceback
from collections.abc import Callable

from PySide6.QtCore import QPoint, QRect, Qt, QTimer
from PySide6.QtGui import QImage
from PySide6.QtTest import QTest
from PySide6.QtWidgets import QAbstractItemView, QApplication, QDockWidget, QMenu, QTabBar, QToolBar, QWidget

LEFT, RIGHT = Qt.MouseButton.LeftButton, Qt.MouseButton.RightButton
NO_MODIFIER = Qt.KeyboardModifier.NoModifier
TRAINING_TEXTS = {"Train", "Pause", "Resume", "Stop"}
MENU_TIMEOUT_MS = 3000
TRAINING_TIMEOUT_MS = 20_000


class ItemUnavailable(LookupError):
    """A menu item seen when the menus were walked is gone or disabled now (Redo after a project was reopened)."""


def plain(text: str) -> str:
    """An action's text as read on screen: no mnemonic ampersand, no trailing shortcut."""
    return text.replace("&&", "\0").replace("&", "").replace("\0", "&").split("\t")[0].strip()


def distinct_colors(image: QImage, step: int = 3) -> int:
    """How many different colours a sample of the image's pixels has (every ``step``-th row and column)."""
    image = image.convertToFormat(QImage.Format.Format_RGB32)
    colors = set()
    for y in range(0, image.height(), step):
        for x in range(0, image.width(), step):
            colors.add(image.pixel(x, y))
            if len(colors) > 50:
                return len(colors)
    return len(colors)


class WindowDriver:
    def __init__(self, window, qtbot, restore: Callable[[], None], name: str, dialogs: list[str]) -> None:
        self.window = window
        self.dialogs = dialogs  # what the patched static dialogs were asked, in order (conftest.py)
        self.qtbot = qtbot
        self.restore = restore
        self.name = name
        self.failures: list[str] = []
        self.steps: list[str] = []
        self.modals: list[str] = []
        self._layout_problems: set[str] = set()
        self._modal_watch = QTimer()
        self._modal_watch.setInterval(250)
        self._modal_watch.timeout.connect(self._close_modal)
        self._modal_watch.start()

    def close(self) -> None:
        self._modal_watch.stop()

    # -- one step ------------------------------------------------------------------

    def fail(self, label: str, message: str) -> None:
        self.failures.append(f"[{self.name}] {label}: {message}")

    def step(self, label: str, do: Callable[[], object]) -> None:
        window = self.window
        self.steps.append(label)
        self.select_a_node()
        index_before = window.undo_stack.index()
        project_before = window.project
        dialogs_before = len(self.dialogs)
        with self.qtbot.captureExceptions() as exceptions:
            try:
                do()
            except ItemUnavailable as error:
                self.steps[-1] = f"{label}: skipped ({error})"
            except Exception:  # the step's own machinery (a menu that did not open, a right click without menu)
                self.fail(label, traceback.format_exc())
            self.settle()
            if window.training.is_running():
                self.stop_training(label)
            self.close_popups(label)
            if not window.editing_locked:
                while window.undo_stack.index() > index_before:
                    window.undo_stack.undo()
                self.settle()
        if len(self.dialogs) > dialogs_before:
            self.steps.append(f"{label}: answered {', '.join(self.dialogs[dialogs_before:])}")
        for _type, value, tb in exceptions:
            self.fail(label, "".join(traceback.format_exception(_type, value, tb)))
        if window.project is not project_before:
            self.restore()
            self.settle()
        self.check_canvas(label)

    def settle(self, ms: int = 30) -> None:
        QApplication.processEvents()
        self.qtbot.wait(ms)

    def select_a_node(self) -> None:
        """Edits (Cut, Delete, Layer Help…) act on a selection: the second node is selected before each step."""
        window = self.window
        if window.editing_locked or window.scene is None:
            return
        nodes = list(window.project.graph.nodes)
        if len(nodes) > 1:
            window.scene.select_nodes([nodes[1]])

    def check_canvas(self, label: str) -> None:
        window = self.window
        if not window.isVisible():
            self.fail(label, "the window is no longer shown")
            return
        scale = window.view.transform().m11()
        if not scale > 0.05:
            self.fail(label, f"canvas zoom is {scale:.4f} (unusable)")
        self.check_layout(label)
        if window.project.graph.nodes:
            viewport = window.view.viewport()
            image = viewport.grab().toImage()
            colors = distinct_colors(image)
            if colors <= 3:
                self.fail(label, f"canvas looks blank ({colors} colours in a {image.width()}x{image.height()} grab)")

    def check_layout(self, label: str) -> None:
        """Dock tab bars sit beside docks, never over one, and no two show the same tabs.

        Reported once per problem (with the first step that saw it), not after every step.
        """
        window = self.window
        shown = window.rect()
        bars = [b for b in window.findChildren(QTabBar)  # unused tab bars wait, empty, outside the window
                if b.parent() is window and b.isVisible() and b.count() and shown.intersects(b.geometry())]
        docks = [d for d in window.findChildren(QDockWidget)
                 if d.isVisible() and not d.isFloating() and d.geometry().top() >= 0 and d.geometry().left() >= 0]
        problems = []
        seen: dict[tuple, QRect] = {}
        for bar in bars:
            tabs = tuple(bar.tabText(i) for i in range(bar.count()))
            for dock in docks:
                overlap = bar.geometry().intersected(dock.geometry())
                if overlap.width() > 4 and overlap.height() > 4:
                    problems.append(f"the dock tab bar {list(tabs)} at {_rect(bar.geometry())} is drawn over the "
                                    f"{dock.windowTitle()!r} dock at {_rect(dock.geometry())}")
            if tabs in seen:
                problems.append(f"two dock tab bars show {list(tabs)}: at {_rect(seen[tabs])} and "
                                f"{_rect(bar.geometry())}")
            seen[tabs] = bar.geometry()
        for problem in problems:
            if problem not in self._layout_problems:
                self._layout_problems.add(problem)
                self.fail(label, f"layout: {problem}")

    def close_popups(self, label: str) -> None:
        for _ in range(5):
            popup = QApplication.activePopupWidget()
            if popup is None:
                return
            self.fail(label, f"a popup was left open: {popup.metaObject().className()}")
            popup.close()
            self.settle()

    def _close_modal(self) -> None:
        modal = QApplication.activeModalWidget()
        if modal is not None:
            self.modals.append(f"{self.steps[-1] if self.steps else '?'}: {modal.windowTitle()!r}")
            modal.close()

    # -- training ------------------------------------------------------------------

    def toolbar(self) -> QToolBar:
        bars = [b for b in self.window.findChildren(QToolBar) if b.isVisible()]
        return bars[0]

    def toolbar_button(self, text: str) -> QWidget | None:
        for bar in self.window.findChildren(QToolBar):
            for action in bar.actions():
                if plain(action.text()) == text and action.isVisible():
                    widget = bar.widgetForAction(action)
                    if widget is not None and widget.isVisible():
                        return widget
        return None

    def click_toolbar(self, text: str) -> None:
        button = self.toolbar_button(text)
        assert button is not None, f"no visible toolbar button {text!r}"
        assert button.isEnabled(), f"toolbar button {text!r} is disabled"
        QTest.mouseClick(button, LEFT, NO_MODIFIER, button.rect().center())

    def stop_training(self, label: str) -> None:
        """A step started training: wait for its first batches, Pause, Resume and Stop it through the toolbar."""
        training, qtbot = self.training_controller(), self.qtbot
        started = time.monotonic()
        states = [training.state]
        training.state_changed.connect(states.append)
        try:
            qtbot.waitUntil(lambda: training.state == "training" or not training.is_running(), timeout=TRAINING_TIMEOUT_MS)
            if training.is_running():
                self.click_toolbar("Pause")
                qtbot.waitUntil(lambda: training.state == "paused" or not training.is_running(),
                                timeout=TRAINING_TIMEOUT_MS)
            if training.is_running():
                self.click_toolbar("Resume")
                qtbot.waitUntil(lambda: training.state == "training" or not training.is_running(),
                                timeout=TRAINING_TIMEOUT_MS)
            if training.is_running():
                self.click_toolbar("Stop")
            qtbot.waitUntil(lambda: not training.is_running(), timeout=TRAINING_TIMEOUT_MS)
        except Exception:
            self.fail(label, f"training did not pause/resume/stop (state {training.state!r}):\n"
                             f"{traceback.format_exc()}")
            training.stop_and_wait()
        training.state_changed.disconnect(states.append)
        self.steps.append(f"{label}: training went {' > '.join(states)} in {time.monotonic() - started:.1f} s")

    def training_controller(self):
        return self.window.training

    # -- menus ---------------------------------------------------------------------

    def open_menubar_menu(self, title: str) -> QMenu:
        bar = self.window.menuBar()
        for action in bar.actions():
            if plain(action.text()) == title and action.menu() is not None:
                menu = action.menu()
                QTest.mouseClick(bar, LEFT, NO_MODIFIER, bar.actionGeometry(action).center())
                self.qtbot.waitUntil(menu.isVisible, timeout=MENU_TIMEOUT_MS)
                return menu
        raise LookupError(f"no menu {title!r} in the menubar")

    def open_submenu(self, menu: QMenu, title: str) -> QMenu:
        for action in menu.actions():
            if plain(action.text()) == title and action.menu() is not None:
                submenu = action.menu()
                QTest.mouseClick(menu, LEFT, NO_MODIFIER, menu.actionGeometry(action).center())
                self.qtbot.waitUntil(submenu.isVisible, timeout=MENU_TIMEOUT_MS)
                return submenu
        raise LookupError(f"no submenu {title!r} in {plain(menu.title())!r}")

    def menubar_leaves(self) -> list[tuple[tuple[str, ...], bool]]:
        """Every item of every menubar menu, submenus opened (so aboutToShow fills them) and walked."""
        leaves: list[tuple[tuple[str, ...], bool]] = []
        for action in self.window.menuBar().actions():
            if action.menu() is None or not action.isVisible():
                continue
            top = plain(action.text())
            menu = self.open_menubar_menu(top)
            self._collect(menu, (top,), leaves)
            self.escape_all()
        return leaves

    def _collect(self, menu: QMenu, path: tuple[str, ...], leaves: list) -> None:
        for action in menu.actions():
            if action.isSeparator() or not action.isVisible():
                continue
            text = plain(action.text())
            if action.menu() is not None:
                if action.isEnabled():
                    submenu = self.open_submenu(menu, text)
                    self._collect(submenu, (*path, text), leaves)
                else:
                    leaves.append(((*path, text), False))
            else:
                leaves.append(((*path, text), action.isEnabled()))

    def trigger_menu_path(self, path: tuple[str, ...]) -> None:
        menu = self.open_menubar_menu(path[0])
        for title in path[1:-1]:
            menu = self.open_submenu(menu, title)
        try:
            self.click_menu_item(menu, path[-1])
        except ItemUnavailable:
            self.escape_all()
            raise

    def click_menu_item(self, menu: QMenu, text: str) -> None:
        for action in menu.actions():
            if plain(action.text()) == text and not action.isSeparator():
                if not action.isEnabled():
                    raise ItemUnavailable(f"{text!r} is disabled now")
                center = menu.actionGeometry(action).center()
                triggered: list[bool] = []
                action.triggered.connect(lambda *args: triggered.append(True))
                for _attempt in range(3):  # a menu that has just popped up may take the first click as its own
                    QTest.mouseMove(menu, center)
                    QTest.mouseClick(menu, LEFT, NO_MODIFIER, center)
                    if triggered or not menu.isVisible():
                        return
                    self.settle(50)
                    if triggered or not menu.isVisible():
                        return
                return
        raise ItemUnavailable(f"no item {text!r} in menu {plain(menu.title())!r}: "
                          f"{[plain(a.text()) for a in menu.actions()]}")

    def escape_all(self) -> None:
        for _ in range(5):
            popup = QApplication.activePopupWidget()
            if popup is None:
                return
            QTest.keyClick(popup, Qt.Key.Key_Escape)
            self.settle(10)
        while (popup := QApplication.activePopupWidget()) is not None:
            popup.close()
            self.settle(10)

    # -- context menus -----------------------------------------------------------------

    def right_click(self, widget: QWidget, pos: QPoint) -> None:
        """A right click through the window system (so Qt makes the context menu event itself)."""
        top = widget.window()
        QTest.mouseClick(top.windowHandle(), RIGHT, NO_MODIFIER, widget.mapTo(top, pos))

    def context_menu_items(self, widget: QWidget, pos: QPoint) -> list[tuple[str, bool]] | None:
        """The items of the menu a right click at ``pos`` opens (None when none opens); closes it again."""
        found: list = []

        def read(popup: QMenu) -> None:
            found.append([(plain(a.text()), a.isEnabled()) for a in popup.actions()
                          if not a.isSeparator() and a.isVisible()])
            popup.close()

        state = self._with_popup(read)
        self.right_click(widget, pos)
        self.qtbot.waitUntil(lambda: state["done"], timeout=MENU_TIMEOUT_MS)
        self.escape_all()
        return found[0] if found else None

    def context_menu_click(self, widget: QWidget, pos: QPoint, text: str) -> None:
        clicked: list[str] = []

        def click(popup: QMenu) -> None:
            try:
                self.click_menu_item(popup, text)
                clicked.append(text)
            except ItemUnavailable as error:
                clicked.append(error)
                popup.close()

        state = self._with_popup(click)
        self.right_click(widget, pos)
        self.qtbot.waitUntil(lambda: state["done"], timeout=MENU_TIMEOUT_MS)
        if not clicked:
            raise AssertionError(f"the right click opened no menu (wanted {text!r})")
        if isinstance(clicked[0], ItemUnavailable):
            raise clicked[0]

    def _with_popup(self, act: Callable[[QMenu], None], tries: int = 40) -> dict:
        """Call ``act`` on the next popup menu once it shows (menus run their own loop in exec()).

        Returns a state whose "done" turns true once ``act`` ran or the popup never came (~1 s).
        """
        state = {"done": False}

        def poll(left: int = tries) -> None:
            popup = QApplication.activePopupWidget()
            if isinstance(popup, QMenu) and popup.isVisible():
                try:
                    act(popup)
                finally:
                    state["done"] = True
            elif left > 0:
                QTimer.singleShot(25, lambda: poll(left - 1))
            else:
                state["done"] = True

        QTimer.singleShot(0, poll)
        return state


def _rect(rect: QRect) -> str:
    return f"({rect.x()}, {rect.y()}, {rect.width()}x{rect.height()})"


def item_view_point(view: QAbstractItemView) -> QPoint | None:
    """The centre of the first row of an item view, in its viewport's coordinates; None when it is empty."""
    model = view.model()
    if model is None or model.rowCount() == 0:
        return None
    return view.visualRect(model.index(0, 0)).center()

"""Every menu item, toolbar button and context menu of a real 1600x1000 window, through real events.

For two kinds of project: templates (lenet5, resnet-mini) and a saved project with a finished
run (its Runs list has a row; Train really trains, and is paused, resumed and stopped from the
toolbar). Dialogs answer Cancel (conftest.py). After each step the driver undoes what the step
pushed and checks that nothing raised and the canvas is still usable (xwindow_driver.py). The
test fails once at the end with every failed step by its text.
"""

from __future__ import annotations

import time

import pytest
from PySide6.QtCore import QPoint
from PySide6.QtWidgets import QAbstractItemView, QWidget

from dlstudio.core.project import load_template
from xwindow_driver import TRAINING_TEXTS, WindowDriver, item_view_point

PROJECTS = ["lenet5", "resnet-mini", "finished-run", "lenet5-grouped"]
# Ending the window is the fixture's job; training is driven by the Train step itself.
NEVER_CLICKED = {"Quit", "Close", "Exit"} | (TRAINING_TEXTS - {"Train"})


def grouped_lenet():
    project = load_template("lenet5")
    project.blocks.group(list(project.graph.nodes)[1:4], "features", collapsed=True)
    return project


@pytest.fixture(params=PROJECTS)
def driver(request, make_window, qtbot, dialogs):
    name = request.param
    if name == "finished-run":
        path = request.getfixturevalue("finished_run_project")
        window = make_window()
        assert window.open_file(path)

        def restore() -> None:
            window.open_file(path)
    elif name == "lenet5-grouped":  # a collapsed block on the canvas, for its own context menu
        window = make_window(grouped_lenet())

        def restore() -> None:
            window.set_project(grouped_lenet())
    else:
        window = make_window(load_template(name))

        def restore() -> None:
            window.set_project(load_template(name))
    qtbot.waitUntil(lambda: window.project.graph.nodes and window.view.transform().m11() > 0.05, timeout=5000)
    driver = WindowDriver(window, qtbot, restore, name, dialogs)
    yield driver
    driver.close()


def _canvas_targets(driver: WindowDriver) -> list[tuple[str, QWidget, callable]]:
    """(label, widget, where) for right clicks on the canvas: a node, an edge, empty space."""
    window = driver.window
    viewport = window.view.viewport()

    def on_node() -> QPoint:
        # The second node, or the next one drawn (a collapsed block hides its nodes).
        node_id = next(n for n in list(window.project.graph.nodes)[1:] if window.scene.node_items[n].isVisible())
        item = window.scene.node_items[node_id]
        return window.view.mapFromScene(item.sceneBoundingRect().center())

    def on_edge() -> QPoint:
        from dlstudio.gui.canvas.items import EdgeItem

        edges = [item for item in window.scene.items() if isinstance(item, EdgeItem)]
        assert edges, "the canvas shows no edge"
        edge = edges[0]
        return window.view.mapFromScene(edge.mapToScene(edge.path().pointAtPercent(0.5)))

    def on_empty() -> QPoint:
        size = viewport.size()
        for y in range(20, size.height() - 20, 25):
            for x in range(20, size.width() - 20, 25):
                if not window.scene.items(window.view.mapToScene(QPoint(x, y))):
                    return QPoint(x, y)
        raise AssertionError("no empty spot on the canvas")

    targets = [("canvas on a node", viewport, on_node), ("canvas on an edge", viewport, on_edge),
               ("canvas on empty space", viewport, on_empty)]
    if window.scene.block_items:
        def on_block() -> QPoint:
            item = next(iter(window.scene.block_items.values()))
            return window.view.mapFromScene(item.sceneBoundingRect().center())

        targets.append(("canvas on a block", viewport, on_block))
    return targets


def _custom_menu_targets(driver: WindowDriver) -> list[tuple[str, QWidget, callable]]:
    """Every shown widget with a custom context menu (the Runs list, …), right-clicked on its first row."""
    from PySide6.QtCore import Qt

    targets = []
    for widget in driver.window.findChildren(QWidget):
        if widget.contextMenuPolicy() != Qt.ContextMenuPolicy.CustomContextMenu or not widget.isVisible():
            continue
        label = f"{widget.metaObject().className()} {widget.objectName()!r}".strip()
        if isinstance(widget, QAbstractItemView):
            def where(view=widget) -> QPoint:
                point = item_view_point(view)
                assert point is not None, "the list is empty"
                return point
            targets.append((f"context menu of {label} (first row)", widget.viewport(), where))
        else:
            targets.append((f"context menu of {label}", widget, lambda w=widget: w.rect().center()))
    return targets


def _exercise_context_menus(driver: WindowDriver) -> None:
    for label, widget, where in _canvas_targets(driver) + _custom_menu_targets(driver):
        try:
            items = driver.context_menu_items(widget, where())
        except AssertionError as error:
            driver.steps.append(f"{label}: not tried ({error})")
            continue
        if items is None:
            if label.startswith("canvas"):
                driver.fail(label, "a right click opened no menu")
            else:
                driver.steps.append(f"{label}: no menu here")
            continue
        for text, enabled in items:
            if not enabled or text in NEVER_CLICKED:
                driver.steps.append(f"{label} › {text}: skipped ({'disabled' if not enabled else 'never clicked'})")
                continue
            driver.step(f"{label} › {text}",
                        lambda w=widget, f=where, t=text: driver.context_menu_click(w, f(), t))


def _exercise_toolbar(driver: WindowDriver) -> None:
    from PySide6.QtWidgets import QToolBar

    from xwindow_driver import plain

    for bar in driver.window.findChildren(QToolBar):
        if not bar.isVisible():
            continue
        for action in bar.actions():
            text = plain(action.text())
            if action.isSeparator() or not action.isVisible() or not text:
                continue
            if text in NEVER_CLICKED or not action.isEnabled():
                driver.steps.append(f"toolbar › {text}: skipped")
                continue
            driver.step(f"toolbar › {text}", lambda t=text: driver.click_toolbar(t))


def _exercise_menubar(driver: WindowDriver) -> None:
    for path, enabled in driver.menubar_leaves():
        label = "menu " + " › ".join(path)
        if not enabled or path[-1] in NEVER_CLICKED:
            driver.steps.append(f"{label}: skipped ({'disabled' if not enabled else 'never clicked'})")
            continue
        driver.step(label, lambda p=path: driver.trigger_menu_path(p))


def test_every_action_through_real_events(driver):
    started = time.monotonic()
    driver.check_canvas("the window as opened")
    _exercise_context_menus(driver)
    _exercise_toolbar(driver)
    _exercise_menubar(driver)
    print(f"\n[{driver.name}] {len(driver.steps)} steps in {time.monotonic() - started:.1f} s")
    for step in driver.steps:
        print(f"  {step}")
    for modal in driver.modals:
        print(f"  modal dialog closed: {modal}")
    assert not driver.failures, "\n\n".join(driver.failures)

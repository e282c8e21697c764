"""Canvas editing as a person meets it: fitting the view, totals, names, paste, fixes, first launch."""

from __future__ import annotations

from PySide6.QtCore import QPoint, Qt
from PySide6.QtGui import QKeySequence
from PySide6.QtTest import QTest

from gui_helpers import chain_project


def _coloured_pixels(widget) -> int:
    """How many sampled pixels are strongly coloured (node headers), as opposed to the grey canvas."""
    image = widget.grab().toImage()
    count = 0
    for y in range(0, image.height(), 3):
        for x in range(0, image.width(), 3):
            if image.pixelColor(x, y).hsvSaturation() > 100:
                count += 1
    return count


def _totals(window) -> tuple[int, int]:
    totals = window.inference.totals()
    return totals.nodes, len(totals.errors)


def _shown_totals(window) -> str:
    text = window.totals_label.text()
    return text.split("·")[0].strip() + " / " + text.split("·")[-1].strip()


# -- 1. Fit to Window ------------------------------------------------------------------------------


def test_fit_to_window_keeps_a_usable_zoom_and_a_drawn_canvas(make_window):
    window = make_window()
    view = window.view
    window.fit_action.trigger()  # QAction.triggered passes checked=False along
    zoom = view.zoom_level()
    assert 0 < zoom <= 1.0
    assert _coloured_pixels(view.viewport()) > 50, "the fitted canvas shows the nodes"

    QTest.keySequence(view, QKeySequence(QKeySequence.StandardKey.ZoomIn))
    assert view.zoom_level() > zoom
    QTest.keySequence(view, QKeySequence(QKeySequence.StandardKey.ZoomOut))
    QTest.keySequence(view, QKeySequence(QKeySequence.StandardKey.ZoomOut))
    assert 0 < view.zoom_level() < zoom
    window.fit_action.trigger()
    assert view.zoom_level() == zoom
    assert _coloured_pixels(view.viewport()) > 50


def test_fit_all_treats_a_non_positive_scale_as_the_default(make_window):
    view = make_window().view
    for bad in (False, True, 0, -2.0, float("nan")):
        view.fit_all(bad)
        assert 0 < view.zoom_level() <= 1.0
        view.zoom_by(1.25)
        assert 0 < view.zoom_level() <= 1.25


# -- 2. Totals follow every change of the node set ---------------------------------------------------


def test_totals_follow_adding_deleting_undo_and_redo_of_an_unconnected_node(make_window):
    window = make_window()
    nodes, errors = _totals(window)
    clean = window.totals_label.text()
    assert f"{nodes} nodes" in clean and "0 errors" in clean

    node_id = window.add_layer("Conv2d", window.view.center_scene_pos())
    assert f"{nodes + 1} nodes" in window.totals_label.text() and "1 error" in window.totals_label.text()

    window.scene.select_nodes([node_id])
    window.view.setFocus()
    QTest.keyClick(window.view, Qt.Key.Key_Delete)
    assert node_id not in window.project.graph
    assert window.totals_label.text() == clean

    QTest.keySequence(window.view, QKeySequence(QKeySequence.StandardKey.Undo))  # the node is back
    assert f"{nodes + 1} nodes" in window.totals_label.text() and "1 error" in window.totals_label.text()
    QTest.keySequence(window.view, QKeySequence(QKeySequence.StandardKey.Redo))  # and gone again
    assert window.totals_label.text() == clean
    QTest.keySequence(window.view, QKeySequence(QKeySequence.StandardKey.Undo))
    QTest.keySequence(window.view, QKeySequence(QKeySequence.StandardKey.Undo))  # undo the add itself
    assert node_id not in window.project.graph
    assert window.totals_label.text() == clean


def test_the_scene_reports_removed_nodes(make_window):
    window = make_window(chain_project(("Input", {"shape": [4]}), ("Linear", {}), ("ReLU", {})))
    reported: list[list[str]] = []
    window.scene.infos_changed.connect(reported.append)
    node_id = window.add_layer("ReLU", window.view.center_scene_pos())
    assert node_id in reported[-1]
    reported.clear()
    window.undo()
    assert reported == [[node_id]]

"""The toolbar: icons with fixed short words, so that an edit never moves a button under the mouse."""

from __future__ import annotations

from PySide6.QtCore import QPointF


def _geometries(window) -> list[tuple[str, int, int]]:
    toolbar = window.toolbar
    return [(action.iconText(), toolbar.widgetForAction(action).x(), toolbar.widgetForAction(action).width())
            for action in toolbar.actions() if not action.isSeparator()]


def test_an_edit_does_not_reflow_the_toolbar_and_the_full_undo_text_is_in_the_tooltip(make_window):
    window = make_window()
    before = _geometries(window)
    node_id = window.add_layer("ReLU", QPointF(0, 0))
    window.rename_node(node_id, "a much longer name for this activation")
    assert window.undo_action.isEnabled()
    assert _geometries(window) == before
    assert window.undo_action.iconText() == "Undo"
    assert "a much longer name" in window.undo_action.text()
    assert window.undo_action.toolTip().startswith(window.undo_action.text().replace("&", ""))
    assert all(not action.icon().isNull() for action in window.toolbar.actions() if not action.isSeparator())


def test_toolbar_buttons_show_their_icon_and_a_word(make_window):
    window = make_window()
    words = [text for text, _, _ in _geometries(window)]
    assert words[:5] == ["New", "Open", "Save", "Undo", "Redo"]
    assert {"Zoom In", "Zoom Out", "Fit", "Train", "Pause", "Stop"} <= set(words)

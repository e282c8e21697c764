"""The canvas driven by real events: palette drops, port drags, keyboard shortcuts, node drags."""

from __future__ import annotations

import pytest
from PySide6.QtCore import QMimeData, QPoint, QPointF, Qt
from PySide6.QtGui import QDragEnterEvent, QDragMoveEvent, QDropEvent, QKeySequence
from PySide6.QtTest import QTest
from PySide6.QtWidgets import QApplication

from dlstudio.gui.canvas.items import INPUT, OUTPUT
from dlstudio.gui.palette import layer_mime_data
from gui_helpers import chain_project, drag, port_point


def _drop(viewport, mime: QMimeData, point: QPoint) -> None:
    """Deliver the three drag-and-drop events of a drop at ``point`` to the view's viewport."""
    pos = QPointF(point)
    buttons, modifiers = Qt.MouseButton.LeftButton, Qt.KeyboardModifier.NoModifier
    action = Qt.DropAction.CopyAction
    for event in (QDragEnterEvent(point, action, mime, buttons, modifiers),
                  QDragMoveEvent(point, action, mime, buttons, modifiers),
                  QDropEvent(pos, action, mime, buttons, modifiers)):
        QApplication.sendEvent(viewport, event)


def test_a_layer_dragged_from_the_palette_lands_where_it_is_dropped(make_window):
    window = make_window()
    graph = window.project.graph
    before = set(graph.nodes)
    # The palette's own drag payload for Conv2d (what LayerTree.startDrag puts in its QDrag).
    mime = layer_mime_data("Conv2d")
    target = window.view.viewport().rect().center() + QPoint(60, 40)
    _drop(window.view.viewport(), mime, target)

    added = set(graph.nodes) - before
    assert len(added) == 1
    node_id = added.pop()
    assert graph.node(node_id).type == "Conv2d"
    scene_point = window.view.mapToScene(target)
    assert window.scene.node_items[node_id].sceneBoundingRect().contains(scene_point)
    assert window.is_dirty() and window.isWindowModified()


def test_foreign_drops_are_ignored(make_window):
    window = make_window()
    before = window.project.graph.to_dict()
    mime = QMimeData()
    mime.setText("Conv2d")
    _drop(window.view.viewport(), mime, window.view.viewport().rect().center())
    assert window.project.graph.to_dict() == before


def test_double_click_in_the_palette_adds_at_the_view_centre(make_window):
    window = make_window(chain_project(("Input", {"shape": [1, 8, 8]})))
    item = window.palette.layer_item("ReLU")
    window.palette.tree.itemActivated.emit(item, 0)
    assert [n.type for n in window.project.graph] == ["Input", "ReLU"]


def test_dragging_from_an_output_to_an_input_connects_and_labels_the_edge(make_window):
    project = chain_project(("Input", {"shape": [1, 28, 28]}), ("Flatten", {}))
    graph = project.graph
    graph.disconnect(graph.edges[0])
    window = make_window(project)
    drag(window.view.viewport(), port_point(window, "input1", "out", OUTPUT),
         port_point(window, "flatten1", "in", INPUT))

    assert [str(e) for e in graph.edges] == ["input1.out -> flatten1.in"]
    edge_item = window.scene.edge_items[graph.edges[0]]
    assert edge_item.label == "(N, 1, 28, 28)"  # the shape the edge carries: the Input's output
    assert window.undo_stack.count() == 1


def test_a_drag_that_would_close_a_cycle_is_refused(make_window):
    window = make_window(chain_project(("Input", {"shape": [4]}), ("Linear", {}), ("ReLU", {})))
    graph = window.project.graph
    before = graph.to_dict()
    # linear1's input is taken and the edge would close a cycle: either way, refused.
    drag(window.view.viewport(), port_point(window, "relu1", "out", OUTPUT),
         port_point(window, "linear1", "in", INPUT))
    assert graph.to_dict() == before
    assert window.undo_stack.count() == 0
    assert "cycle" in window.statusBar().currentMessage() or "already connected" in window.statusBar().currentMessage()


def test_a_cycle_through_a_free_port_is_refused_with_the_reason(make_window):
    window = make_window(chain_project(("Input", {"shape": [4]}), ("Linear", {}), ("Add", {}), ("ReLU", {})))
    graph = window.project.graph
    before = graph.to_dict()
    drag(window.view.viewport(), port_point(window, "relu1", "out", OUTPUT),
         port_point(window, "add1", "in2", INPUT))
    assert graph.to_dict() == before
    assert "cycle" in window.statusBar().currentMessage()


def test_delete_then_undo_and_redo_round_trip_the_graph_exactly(make_window):
    window = make_window(chain_project(("Input", {"shape": [1, 8, 8]}), ("Conv2d", {"kernel_size": 3}),
                                       ("ReLU", {}), ("Flatten", {})))
    graph = window.project.graph
    original = graph.to_dict()
    window.scene.select_nodes(["conv1"])
    window.view.setFocus()
    QTest.keyClick(window.view, Qt.Key.Key_Delete)
    assert "conv1" not in graph and len(graph.edges) == 1
    after_delete = graph.to_dict()
    assert window.isWindowModified()

    QTest.keySequence(window.view, QKeySequence(QKeySequence.StandardKey.Undo))
    assert graph.to_dict() == original
    assert window.project.layout.position("conv1") == (320.0, 0.0)
    assert not window.isWindowModified()  # back at the saved state
    QTest.keySequence(window.view, QKeySequence(QKeySequence.StandardKey.Redo))
    assert graph.to_dict() == after_delete
    QTest.keySequence(window.view, QKeySequence(QKeySequence.StandardKey.Undo))
    assert graph.to_dict() == original
    assert set(window.scene.node_items) == set(graph.nodes)
    assert set(window.scene.edge_items) == set(graph.edges)


def test_dragging_two_selected_nodes_is_one_undo_step(make_window):
    window = make_window(chain_project(("Input", {"shape": [4]}), ("Linear", {}), ("ReLU", {})))
    layout = window.project.layout
    window.scene.select_nodes(["linear1", "relu1"])
    item = window.scene.node_items["linear1"]
    start = window.view.mapFromScene(item.sceneBoundingRect().center())
    QTest.mousePress(window.view.viewport(), Qt.MouseButton.LeftButton,
                     Qt.KeyboardModifier.ControlModifier, start)  # Ctrl keeps the selection of two
    for step in range(1, 6):
        QTest.mouseMove(window.view.viewport(), start + QPoint(10 * step, 8 * step))
    QTest.mouseRelease(window.view.viewport(), Qt.MouseButton.LeftButton, Qt.KeyboardModifier.ControlModifier,
                       start + QPoint(50, 40))
    assert window.undo_stack.count() == 1
    moved = layout.position("linear1"), layout.position("relu1")
    assert moved[0] != (320.0, 0.0) and moved[1] != (640.0, 0.0)
    # Both moved by the same scene distance (approx: at a fractional zoom the offsets differ in the last bit).
    assert moved[0][0] - 320.0 == pytest.approx(moved[1][0] - 640.0)
    window.undo()
    assert layout.position("linear1") == (320.0, 0.0) and layout.position("relu1") == (640.0, 0.0)
    assert window.scene.node_items["relu1"].pos() == QPointF(640.0, 0.0)


def test_copy_paste_creates_new_ids_and_works_in_another_window(make_window):
    window = make_window(chain_project(("Input", {"shape": [4]}), ("Linear", {"out_features": 7}), ("ReLU", {})))
    graph = window.project.graph
    window.scene.select_nodes(["linear1", "relu1"])
    QTest.keySequence(window.view, QKeySequence(QKeySequence.StandardKey.Copy))
    QTest.keySequence(window.view, QKeySequence(QKeySequence.StandardKey.Paste))
    assert list(graph.nodes) == ["input1", "linear1", "relu1", "linear2", "relu2"]
    assert graph.node("linear2").params["out_features"] == 7
    assert [str(e) for e in graph.edges if e.src == "linear2"] == ["linear2.out -> relu2.in"]
    x, y = window.project.layout.position("linear2")
    assert (x, y) != window.project.layout.position("linear1")
    assert window.scene.selected_node_ids() == ["linear2", "relu2"]
    window.undo()
    assert list(graph.nodes) == ["input1", "linear1", "relu1"]

    other = make_window(chain_project(("Input", {"shape": [4]})))
    other.paste()
    assert [n.type for n in other.project.graph] == ["Input", "Linear", "ReLU"]


def test_auto_layout_is_one_undo_step(make_window):
    window = make_window(chain_project(("Input", {"shape": [4]}), ("Linear", {}), ("ReLU", {})))
    layout = window.project.layout
    for node_id in ("input1", "linear1", "relu1"):
        layout.move(node_id, 0.0, 0.0)  # a pile (the model API, as a file could hold it)
    before = layout.positions
    window.auto_layout()
    assert window.undo_stack.count() == 1
    xs = [layout.position(n)[0] for n in ("input1", "linear1", "relu1")]
    ys = [layout.position(n)[1] for n in ("input1", "linear1", "relu1")]
    assert len(set(zip(xs, ys))) == 3
    window.undo()
    assert layout.positions == before


def test_a_backward_wire_goes_round_the_nodes_instead_of_through_them():
    from PySide6.QtCore import QPointF

    from dlstudio.gui.canvas.items import bezier_path

    # A source's output port at x=300 and a target's input port at x=100, one row lower (a column of nodes).
    start, end = QPointF(300, 0), QPointF(100, 120)
    path = bezier_path(start, end)
    bounds = path.boundingRect()
    assert bounds.right() >= start.x() + 30 and bounds.left() <= end.x() - 30, "out of each port, not across"
    middle = path.pointAtPercent(0.5)
    assert abs(middle.y() - 60) < 1 and end.x() < middle.x() < start.x(), "across in the gap between the rows"
    assert path.pointAtPercent(1.0) == end and path.pointAtPercent(0.0) == start
    forward = bezier_path(QPointF(0, 0), QPointF(300, 120)).boundingRect()
    assert forward.left() >= 0 and forward.right() <= 300, "a forward wire is the plain S curve"

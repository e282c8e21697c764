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


# -- 3, 4, 5. Names: unique on paste and duplicate; undo texts say names, never ids -----------------------


def _lenet_like():
    return chain_project(("Input", {"shape": [1, 12, 12]}), ("Conv2d", {"out_channels": 4, "kernel_size": 5}),
                         ("MaxPool2d", {"kernel_size": 2}), ("Flatten", {}), ("Linear", {"out_features": 10}),
                         ("Output", {"classes": 10}))


def test_undo_texts_name_the_nodes_by_their_names(make_window):
    window = make_window(_lenet_like())
    graph, stack = window.project.graph, window.undo_stack
    window.scene.select_nodes(["maxpool1"])
    window.inspector.name_edit.setText("pool2")
    window.inspector.name_edit.editingFinished.emit()
    assert stack.undoText() == "Rename maxpool1 to pool2"
    window.inspector.name_edit.setText("p2")
    window.inspector.name_edit.editingFinished.emit()
    assert stack.undoText() == "Rename pool2 to p2"

    window.scene.select_nodes(["conv1"])
    editor = window.inspector.editors["kernel_size"]
    editor.setFocus()
    editor.selectAll()
    QTest.keyClicks(editor, "3")
    QTest.keyClick(editor, Qt.Key.Key_Return)
    assert stack.undoText() == "Change kernel_size of conv1"

    window.scene.select_nodes(["flatten1"])
    window.view.setFocus()
    QTest.keyClick(window.view, Qt.Key.Key_Delete)
    assert stack.undoText() == "Delete flatten1"
    assert window.undo_action.text() == "&Undo Delete flatten1"
    window.undo()

    from gui_helpers import drag, port_point
    from dlstudio.gui.canvas.items import INPUT, OUTPUT

    graph.rename("linear1", "fc1")
    graph.disconnect(graph.input_edge("linear1", "in"))
    drag(window.view.viewport(), port_point(window, "flatten1", "out", OUTPUT),
         port_point(window, "linear1", "in", INPUT))
    assert stack.undoText() == "Connect flatten1 \u2192 fc1"

    window.scene.select_nodes(["conv1", "maxpool1"])
    item = window.scene.node_items["conv1"]
    start = window.view.mapFromScene(item.sceneBoundingRect().center())
    QTest.mousePress(window.view.viewport(), Qt.MouseButton.LeftButton, Qt.KeyboardModifier.ControlModifier, start)
    for step in range(1, 4):
        QTest.mouseMove(window.view.viewport(), start + QPoint(0, 20 * step))
    QTest.mouseRelease(window.view.viewport(), Qt.MouseButton.LeftButton, Qt.KeyboardModifier.ControlModifier,
                       start + QPoint(0, 60))
    assert stack.undoText() == "Move 2 layers"
    texts = [stack.text(i) for i in range(stack.count())]
    assert not any("linear1" in text for text in texts), texts  # its name is fc1 by then


def test_a_duplicate_name_is_refused_and_leaves_no_undo_step(make_window):
    window = make_window(_lenet_like())
    window.scene.select_nodes(["maxpool1"])
    window.inspector.name_edit.setText("conv1")
    window.inspector.name_edit.editingFinished.emit()
    names = [node.name for node in window.project.graph]
    assert names.count("conv1") == 1 and window.project.graph.node("maxpool1").name == "maxpool1"
    assert window.undo_stack.count() == 0


def test_copy_paste_cascades_selects_the_copies_and_gives_them_free_names(make_window):
    window = make_window(_lenet_like())
    graph, layout = window.project.graph, window.project.layout
    graph.rename("linear1", "classifier")
    window.scene.select_nodes(["conv1"])
    QTest.keySequence(window.view, QKeySequence(QKeySequence.StandardKey.Copy))
    QTest.keySequence(window.view, QKeySequence(QKeySequence.StandardKey.Paste))
    assert window.undo_stack.undoText() == "Paste conv1"
    QTest.keySequence(window.view, QKeySequence(QKeySequence.StandardKey.Paste))
    assert list(graph.nodes)[-2:] == ["conv2", "conv3"]
    assert window.scene.selected_node_ids() == ["conv3"]
    spots = [layout.position(n) for n in ("conv1", "conv2", "conv3")]
    assert len(set(spots)) == 3, "repeated pastes do not stack on one another"
    x0, y0 = spots[0]
    assert spots[1] == (x0 + 40, y0 + 40) and spots[2] == (x0 + 80, y0 + 80)
    assert window.view.mapFromScene(window.scene.node_items["conv3"].sceneBoundingRect().center()) \
        != window.view.mapFromScene(window.scene.node_items["conv1"].sceneBoundingRect().center())

    window.scene.select_nodes(["linear1"])
    QTest.keySequence(window.view, QKeySequence(QKeySequence.StandardKey.Copy))
    QTest.keySequence(window.view, QKeySequence(QKeySequence.StandardKey.Paste))
    copy = window.scene.selected_node_ids()[0]
    assert graph.node(copy).name == "classifier_2"
    names = [node.name for node in graph]
    assert len(names) == len(set(names))


# -- 6, 7. Fixes ----------------------------------------------------------------------------------------------


def test_the_class_count_fix_edits_the_last_linear_in_one_step(make_window):
    window = make_window(_lenet_like())
    graph = window.project.graph
    graph.rename("linear1", "fc3")
    window.set_param("output1", "classes", 7)
    error = window.inference.info("output1").error
    assert error.fix.description == "Set out_features of fc3 to 7"
    window.scene.select_nodes(["output1"])
    assert window.inspector.fix_button.text() == "Fix: Set out_features of fc3 to 7"
    count, nodes = window.undo_stack.count(), list(graph.nodes)
    QTest.mouseClick(window.inspector.fix_button, Qt.MouseButton.LeftButton)
    assert list(graph.nodes) == nodes, "no Linear is stacked on the last one"
    assert graph.node("linear1").params["out_features"] == 7
    assert window.inference.errors() == []
    assert window.undo_stack.count() == count + 1
    assert window.undo_stack.undoText() == "Fix output1: Set out_features of fc3 to 7"
    window.undo()
    assert graph.node("linear1").params["out_features"] == 10


def _labels_clear_of_nodes(window) -> list[str]:
    covered = []
    for edge, edge_item in window.scene.edge_items.items():
        rect = edge_item.mapRectToScene(edge_item.label_rect())
        for node_id, node_item in window.scene.node_items.items():
            if edge_item.label and node_item.sceneBoundingRect().intersects(rect):
                covered.append(f"{edge} under {node_id}")
    return covered


def test_an_inserted_flatten_leaves_room_for_the_edge_labels(make_window):
    # Spaced as auto-layout spaces nodes (196 px wide, 110 px apart).
    window = make_window(chain_project(("Input", {"shape": [1, 8, 8]}), ("Linear", {"out_features": 10}),
                                       ("ReLU", {}), ("Output", {"classes": 10}), spacing=306.0))
    assert _labels_clear_of_nodes(window) == []
    before = window.project.layout.positions
    window.scene.select_nodes(["linear1"])
    QTest.mouseClick(window.inspector.fix_button, Qt.MouseButton.LeftButton)
    assert window.project.graph.node("flatten1").type == "Flatten"
    assert window.undo_stack.count() == 1
    assert _labels_clear_of_nodes(window) == []
    layout = window.project.layout
    order = [layout.position(n)[0] for n in ("input1", "flatten1", "linear1", "relu1", "output1")]
    assert order == sorted(order)
    window.undo()
    assert window.project.layout.positions == before


def test_an_inserted_node_in_a_row_drawn_right_to_left_goes_between_its_neighbours(make_window):
    project = chain_project(("Input", {"shape": [1, 8, 8]}), ("Linear", {"out_features": 10}),
                            ("Output", {"classes": 10}), spacing=-306.0)
    window = make_window(project)
    window.apply_fix("linear1")
    layout = window.project.layout
    xs = [layout.position(n)[0] for n in ("input1", "flatten1", "linear1", "output1")]
    assert xs == sorted(xs, reverse=True)
    assert _labels_clear_of_nodes(window) == []

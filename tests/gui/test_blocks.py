"""Blocks on the canvas: group, collapse and expand, rename, ungroup, move, save and reopen, imports.

Gestures that matter go through real events (shortcuts, double-clicks, a drag); every edit must be one
undo step that marks the window dirty and comes back exactly.
"""

from __future__ import annotations

import pytest
from PySide6.QtCore import QPoint, QRectF, Qt
from PySide6.QtTest import QTest

from dlstudio.core.project import load_project, load_template, save_project
from dlstudio.gui.canvas.block_items import BlockFrame, BlockItem
from dlstudio.gui.canvas.items import NodeItem
from gui_helpers import drag


def lenet_window(make_window):
    window = make_window(load_template("lenet5"))
    window.hide_welcome()
    return window, list(window.project.graph.nodes)


def visible_items(window) -> list:
    return [item for item in window.scene.items()
            if isinstance(item, (NodeItem, BlockItem)) and item.isVisible()]


def group(window, node_ids: list[str]) -> str:
    """Select ``node_ids`` and press Ctrl+G; returns the new block's id."""
    window.scene.select_nodes(node_ids)
    QTest.keyClick(window.view, Qt.Key.Key_G, Qt.KeyboardModifier.ControlModifier)
    (block,) = [b for b in window.project.blocks if set(b.nodes) == set(node_ids)]
    return block.id


def item_point(window, item) -> QPoint:
    return window.view.mapFromScene(item.mapToScene(item.boundingRect().center()))


def test_ctrl_g_groups_three_lenet_layers_into_one_item_with_their_shapes_and_counts(make_window):
    window, ids = lenet_window(make_window)
    conv1, relu1, pool1 = ids[1:4]
    before = len(visible_items(window))
    block_id = group(window, [conv1, relu1, pool1])

    assert window.is_dirty()
    assert len(visible_items(window)) == before - 2
    item = window.scene.block_items[block_id]
    assert item.isVisible() and item.isSelected()
    assert not any(window.scene.node_items[n].isVisible() for n in (conv1, relu1, pool1))
    summary = item.summary
    assert summary.layers == 3
    assert summary.input_shapes == [(1, 28, 28)]  # what the image node gives it
    assert summary.output_shapes == [(6, 14, 14)]  # what leaves the pooling
    infos = [window.inference.info(n) for n in (conv1, relu1, pool1)]
    assert summary.params == sum(i.params for i in infos) == 156
    assert summary.macs == sum(i.macs for i in infos) > 0
    # The edges crossing the boundary are drawn to the block's ports; the ones inside are hidden.
    crossing = [e for e in window.scene.edge_items.values() if e.edge.dst == conv1 or e.edge.src == pool1]
    assert {e.source.node_item for e in crossing} | {e.target.node_item for e in crossing} >= {item}
    inner = [e for e in window.scene.edge_items.values() if e.edge.src == conv1 and e.edge.dst == relu1]
    assert inner and not inner[0].isVisible()

    window.undo()
    assert not window.scene.block_items and len(visible_items(window)) == before
    assert all(window.scene.node_items[n].isVisible() for n in (conv1, relu1, pool1))
    assert not window.is_dirty()
    window.redo()
    assert list(window.scene.block_items) == [block_id]


def test_double_click_expands_the_frame_button_collapses_and_each_is_one_undo_step(make_window, qtbot):
    window, ids = lenet_window(make_window)
    block_id = group(window, ids[1:4])
    window.view.fit_all()
    steps = window.undo_stack.count()
    QTest.mouseDClick(window.view.viewport(), Qt.MouseButton.LeftButton, Qt.KeyboardModifier.NoModifier,
                      item_point(window, window.scene.block_items[block_id]))
    assert not window.project.blocks.get(block_id).collapsed
    assert window.undo_stack.count() == steps + 1
    frame = window.scene.frame_items[block_id]
    assert block_id not in window.scene.block_items
    assert all(window.scene.node_items[n].isVisible() for n in ids[1:4])
    members = [window.scene.node_items[n].sceneBoundingRect() for n in ids[1:4]]
    assert all(frame.frame_rect().contains(rect) for rect in members)  # the frame surrounds its layers

    button = window.view.mapFromScene(frame.collapse_button_rect().center())
    QTest.mouseClick(window.view.viewport(), Qt.MouseButton.LeftButton, Qt.KeyboardModifier.NoModifier, button)
    assert window.project.blocks.get(block_id).collapsed and block_id in window.scene.block_items

    window.undo()
    assert not window.project.blocks.get(block_id).collapsed and block_id in window.scene.frame_items
    window.undo()
    assert window.project.blocks.get(block_id).collapsed and block_id in window.scene.block_items
    window.redo()
    window.redo()
    assert window.project.blocks.get(block_id).collapsed


def test_clicking_the_frame_label_selects_the_block_and_edit_menu_collapses_it(make_window):
    window, ids = lenet_window(make_window)
    block_id = group(window, ids[1:4])
    window.block_actions.expand_action.trigger()
    frame = window.scene.frame_items[block_id]
    window.scene.clearSelection()
    label = frame.label_rect()
    point = window.view.mapFromScene(label.left() + 12, label.center().y())
    QTest.mouseClick(window.view.viewport(), Qt.MouseButton.LeftButton, Qt.KeyboardModifier.NoModifier, point)
    assert window.scene.selected_block_ids() == [block_id]
    window.block_actions.collapse_action.trigger()
    assert window.project.blocks.get(block_id).collapsed


def test_f2_renames_the_block_and_undo_restores_the_name(make_window, monkeypatch):
    window, ids = lenet_window(make_window)
    block_id = group(window, ids[1:4])
    old = window.project.blocks.get(block_id).name
    asked = []
    monkeypatch.setattr(window.block_actions, "_ask_block_name", lambda current: asked.append(current) or " stem ")
    QTest.keyClick(window.view, Qt.Key.Key_F2)
    assert asked == [old]
    assert window.project.blocks.get(block_id).name == "stem"
    assert window.scene.block_items[block_id].summary.name == "stem"
    assert window.undo_stack.undoText() == f"Rename block {old} to stem"
    window.undo()
    assert window.project.blocks.get(block_id).name == old
    assert window.scene.block_items[block_id].summary.name == old


def test_a_name_another_block_has_is_refused_with_the_reason_and_no_step(make_window, monkeypatch):
    window, ids = lenet_window(make_window)
    first = group(window, ids[1:3])
    second = group(window, ids[4:6])
    taken = window.project.blocks.get(first).name
    steps = window.undo_stack.count()
    window.scene.select_block(second)
    monkeypatch.setattr(window.block_actions, "_ask_block_name", lambda current: taken)
    assert not window.block_actions.rename_selection()
    assert window.undo_stack.count() == steps
    assert f"already called {taken}" in window.statusBar().currentMessage()


def test_ungroup_and_its_undo_bring_back_the_same_block(make_window):
    window, ids = lenet_window(make_window)
    block_id = group(window, ids[1:4])
    block = window.project.blocks.get(block_id)
    window.scene.select_block(block_id)
    QTest.keyClick(window.view, Qt.Key.Key_G, Qt.KeyboardModifier.ControlModifier | Qt.KeyboardModifier.ShiftModifier)
    assert len(window.project.blocks) == 0 and not window.scene.block_items
    assert all(window.scene.node_items[n].isVisible() for n in ids[1:4])
    window.undo()
    assert list(window.project.blocks) == [block]
    assert window.scene.block_items[block_id].isVisible()
    window.redo()
    assert len(window.project.blocks) == 0


def test_grouping_a_node_that_is_in_a_block_is_refused_by_name(make_window):
    window, ids = lenet_window(make_window)
    block_id = group(window, ids[1:3])
    window.block_actions.expand_action.trigger()
    steps = window.undo_stack.count()
    window.scene.select_nodes(ids[2:5])
    window.block_actions.group_action.trigger()
    assert window.undo_stack.count() == steps
    name = window.project.graph.node(ids[2]).name
    block_name = window.project.blocks.get(block_id).name
    assert f"{name} is already in block {block_name}" in window.statusBar().currentMessage()


def test_dragging_a_collapsed_block_moves_its_layers_in_one_undo_step(make_window):
    window, ids = lenet_window(make_window)
    members = ids[1:4]
    block_id = group(window, members)
    window.view.fit_all()
    before = {n: window.project.layout.position(n) for n in members}
    item = window.scene.block_items[block_id]
    start = item_point(window, item)
    drag(window.view.viewport(), start, start + QPoint(60, 90))
    dx = item.pos().x() - before[members[0]][0]
    dy = item.pos().y() - before[members[0]][1]
    assert dx > 0 and dy > 0
    for n in members:
        assert window.project.layout.position(n) == pytest.approx((before[n][0] + dx, before[n][1] + dy))
    assert window.undo_stack.undoText().startswith("Move")
    window.undo()
    assert {n: window.project.layout.position(n) for n in members} == before
    assert (item.pos().x(), item.pos().y()) == before[members[0]]


def test_an_error_inside_a_collapsed_block_shows_on_the_block_with_the_layer_name(make_window):
    window, ids = lenet_window(make_window)
    graph = window.project.graph
    conv2 = next(n for n in ids if graph.node(n).type == "Conv2d" and n != ids[1])
    block_id = group(window, [conv2])
    window.set_param(conv2, "kernel_size", 30)  # larger than its input: a shape error
    item = window.scene.block_items[block_id]
    assert item.has_error
    assert item.badge.toolTip().startswith(f"{graph.node(conv2).name}: ")
    window.undo()
    assert not item.has_error


def test_fit_to_window_frames_what_is_drawn_not_the_hidden_layers(make_window):
    window, ids = lenet_window(make_window)
    block_id = group(window, ids[1:-1])  # everything between the image and the output
    rect = window.scene.content_rect()
    assert not window.scene.node_items[ids[5]].isVisible()
    drawn = QRectF()
    for item in window.scene.items():
        if item.isVisible() and item.parentItem() is None:
            drawn = drawn.united(item.sceneBoundingRect())
    assert rect == drawn  # what is drawn, and nothing of the hidden layers
    assert rect.height() < window.scene.itemsBoundingRect().height()  # they lay in three more rows
    window.view.fit_all()
    assert window.view.sceneRect().contains(rect)


def test_a_collapsed_block_is_saved_and_reopens_collapsed(make_window, tmp_path):
    window, ids = lenet_window(make_window)
    block_id = group(window, ids[1:4])
    path = tmp_path / "grouped.dlstudio"
    save_project(window.project, path)
    assert load_project(path).blocks.get(block_id).collapsed
    other = make_window()
    assert other.open_file(path)
    assert list(other.scene.block_items) == [block_id]
    assert other.scene.block_items[block_id].summary.output_shapes == [(6, 14, 14)]
    assert not any(other.scene.node_items[n].isVisible() for n in ids[1:4])


def test_switching_projects_shows_the_new_projects_blocks_only(make_window):
    window, ids = lenet_window(make_window)
    group(window, ids[1:4])
    other = load_template("lenet5")
    other_ids = list(other.graph.nodes)
    other.blocks.group(other_ids[5:8], "head", collapsed=False)
    window.set_project(other)
    assert not window.scene.block_items
    assert list(window.scene.frame_items) == [b.id for b in other.blocks]
    assert [i for i in window.scene.items() if isinstance(i, BlockItem)] == []
    assert len([i for i in window.scene.items() if isinstance(i, BlockFrame)]) == 1


def test_an_imported_resnet18_shows_collapsed_blocks_with_shapes(make_window):
    pytest.importorskip("torchvision")
    from dlstudio.core.importer import import_torchvision

    project = import_torchvision("resnet18", opaque=True).project
    if not len(project.blocks):  # imports that arrive ungrouped: group layer1.0 here
        members = [n for n in project.graph.nodes if project.graph.node(n).name.startswith("layer1.0.")]
        project.blocks.group(members, "layer1.0", collapsed=True)
    window = make_window(project)
    window.hide_welcome()
    collapsed = [b for b in project.blocks if b.collapsed]
    assert collapsed and set(window.scene.block_items) == {b.id for b in collapsed}
    layer1 = next(b for b in collapsed if b.name == "layer1.0")
    summary = window.scene.block_items[layer1.id].summary
    assert summary.input_shapes == [(64, 56, 56)] and summary.output_shapes == [(64, 56, 56)]
    assert summary.params == sum(window.inference.info(n).params for n in layer1.nodes) > 70_000
    assert not summary.errors
    # Drawn as a chain of blocks: no two drawn items overlap.
    drawn = [i.sceneBoundingRect() for i in visible_items(window)]
    assert not any(a.intersects(b) for k, a in enumerate(drawn) for b in drawn[k + 1:])


@pytest.fixture
def saved_blocks_folder():
    """The user data folder's saved blocks (under the tests' temporary XDG_DATA_HOME), emptied afterwards so
    that no other test's palette lists them."""
    import shutil

    from dlstudio.core.project.block_library import blocks_folder

    folder = blocks_folder()
    shutil.rmtree(folder, ignore_errors=True)
    yield folder
    shutil.rmtree(folder, ignore_errors=True)


def _drop(viewport, mime, point: QPoint) -> None:
    from PySide6.QtCore import QPointF
    from PySide6.QtGui import QDragEnterEvent, QDragMoveEvent, QDropEvent
    from PySide6.QtWidgets import QApplication

    buttons, modifiers, action = Qt.MouseButton.LeftButton, Qt.KeyboardModifier.NoModifier, Qt.DropAction.CopyAction
    for event in (QDragEnterEvent(point, action, mime, buttons, modifiers),
                  QDragMoveEvent(point, action, mime, buttons, modifiers),
                  QDropEvent(QPointF(point), action, mime, buttons, modifiers)):
        QApplication.sendEvent(viewport, event)


def test_a_block_saved_to_the_palette_is_dropped_back_as_a_new_collapsed_block_in_one_step(
        make_window, monkeypatch, saved_blocks_folder):
    from dlstudio.gui.palette import BLOCK_PATH_ROLE, saved_block_mime_data

    window, ids = lenet_window(make_window)
    block_id = group(window, ids[1:4])
    window.scene.select_block(block_id)
    monkeypatch.setattr(window.block_actions, "_ask_palette_name", lambda current: "conv stage")
    window.block_actions.save_to_palette_action.trigger()
    assert (saved_blocks_folder / "conv stage.json").is_file()
    item = window.palette.saved_block_item("conv stage")  # listed under My blocks at once
    path = item.data(0, BLOCK_PATH_ROLE)

    graph = window.project.graph
    before_nodes, before_blocks = set(graph.nodes), len(window.project.blocks)
    steps = window.undo_stack.count()
    target = window.view.viewport().rect().center() + QPoint(40, 120)
    _drop(window.view.viewport(), saved_block_mime_data(path), target)

    added = [n for n in graph.nodes if n not in before_nodes]
    assert len(added) == 3 and window.undo_stack.count() == steps + 1
    assert [graph.node(n).type for n in added] == [graph.node(n).type for n in ids[1:4]]
    assert len({graph.node(n).name for n in graph.nodes}) == len(graph)  # names made unique
    new_block = list(window.project.blocks)[-1]
    assert new_block.name == "conv stage" and new_block.collapsed and set(new_block.nodes) == set(added)
    inner = [(e.src, e.dst) for e in graph.edges if e.src in added and e.dst in added]
    assert len(inner) == 2
    item = window.scene.block_items[new_block.id]
    assert item.isVisible() and item.isSelected()
    drop_point = window.view.mapToScene(target)
    assert item.pos().x() == pytest.approx(drop_point.x() - 98, abs=1)  # its first layer centred on the drop

    window.undo()
    assert set(graph.nodes) == before_nodes and len(window.project.blocks) == before_blocks
    window.redo()
    assert list(window.project.blocks)[-1] == new_block

    # Double-click in the palette adds it again, at the view's centre, under a free name.
    window.palette.tree.itemActivated.emit(window.palette.saved_block_item("conv stage"), 0)
    assert list(window.project.blocks)[-1].name == "conv stage_2"


def test_a_broken_saved_block_is_refused_in_the_status_bar(make_window, saved_blocks_folder):
    window, ids = lenet_window(make_window)
    saved_blocks_folder.mkdir(parents=True)
    bad = saved_blocks_folder / "bad.json"
    bad.write_text('{"format": "dlstudio-block", "format_version": 1, "name": "x", "nodes": '
                   '[{"id": "a", "type": "Warp", "name": "a", "params": {}}], "edges": [], "positions": {}}')
    steps = window.undo_stack.count()
    assert not window.block_actions.insert_saved_block(str(bad), window.view.center_scene_pos())
    assert window.undo_stack.count() == steps
    assert window.statusBar().currentMessage() == "Cannot add the block: bad.json: layer a: unknown layer type 'Warp'"
    assert window.palette.reload_saved_blocks() == []
    assert "bad.json" in window.palette.my_blocks.toolTip(0)


def test_auto_layout_places_a_collapsed_block_as_one_item_and_keeps_its_layers_arrangement(make_window):
    window, ids = lenet_window(make_window)
    members = ids[1:4]
    block_id = group(window, members)
    layout = window.project.layout
    inside = {n: (layout.position(n)[0] - layout.position(members[0])[0],
                  layout.position(n)[1] - layout.position(members[0])[1]) for n in members}
    window.auto_layout_action.trigger()
    anchor = layout.position(members[0])
    for n in members:
        assert layout.position(n) == pytest.approx((anchor[0] + inside[n][0], anchor[1] + inside[n][1]))
    item = window.scene.block_items[block_id]
    assert (item.pos().x(), item.pos().y()) == anchor
    drawn = [i.sceneBoundingRect() for i in visible_items(window)]
    assert not any(a.intersects(b) for k, a in enumerate(drawn) for b in drawn[k + 1:])
    window.undo()
    assert item.pos().x() == pytest.approx(layout.position(members[0])[0])


def test_a_connection_can_end_only_at_drawn_ports_not_at_a_collapsed_blocks_hidden_layers(make_window):
    window, ids = lenet_window(make_window)
    members = ids[1:4]
    block_id = group(window, members)
    ports = window.scene.all_ports()  # what a connection drag snaps to
    assert ports and all(p.node_id not in members and p.node_item.isVisible() for p in ports)
    window.scene.select_block(block_id)
    window.block_actions.expand_action.trigger()
    assert {p.node_id for p in window.scene.all_ports()} >= set(members)


def test_expanding_an_imported_block_makes_room_for_its_layers_in_the_same_undo_step(make_window, qtbot):
    pytest.importorskip("torchvision")
    from dlstudio.core.importer import import_torchvision

    project = import_torchvision("resnet18", opaque=True).project
    window = make_window(project)
    window.hide_welcome()
    layer1 = next(b for b in project.blocks if b.name == "layer1.0")
    assert not window.scene.drawn_items_overlap()
    before = dict(project.layout.positions)
    steps = window.undo_stack.count()
    QTest.mouseDClick(window.view.viewport(), Qt.MouseButton.LeftButton, Qt.KeyboardModifier.NoModifier,
                      item_point(window, window.scene.block_items[layer1.id]))
    assert not project.blocks.get(layer1.id).collapsed and window.undo_stack.count() == steps + 1
    assert not window.scene.drawn_items_overlap()  # its seven layers pushed the rest aside
    assert project.layout.positions != before
    window.undo()  # one step: the layers go back where they were and the block collapses
    assert project.blocks.get(layer1.id).collapsed and project.layout.positions == before
    window.redo()
    assert not project.blocks.get(layer1.id).collapsed and not window.scene.drawn_items_overlap()


def test_a_copied_collapsed_frozen_block_pastes_as_a_collapsed_frozen_block_in_one_undo_step(make_window):
    from PySide6.QtGui import QKeySequence

    window, ids = lenet_window(make_window)
    conv1, relu1, pool1 = ids[1:4]
    block_id = group(window, [conv1, relu1, pool1])
    window.project.blocks.rename(block_id, "stem")
    window.project.frozen.set([conv1], True)
    nodes_before, blocks_before = len(window.project.graph), len(window.project.blocks)
    window.scene.select_block(block_id)
    QTest.keySequence(window.view, QKeySequence(QKeySequence.StandardKey.Copy))
    QTest.keySequence(window.view, QKeySequence(QKeySequence.StandardKey.Paste))

    graph, blocks = window.project.graph, window.project.blocks
    assert len(graph) == nodes_before + 3
    (copy,) = [block for block in blocks if block.id != block_id]
    assert copy.name == "stem copy" and copy.collapsed
    assert [graph.node(n).type for n in copy.nodes] == ["Conv2d", "ReLU", "MaxPool2d"]
    assert [n for n in copy.nodes if n in window.project.frozen] == [copy.nodes[0]]  # the conv, as copied
    item = window.scene.block_items[copy.id]
    assert item.isVisible() and item.isSelected()  # the pasted block shows as one collapsed card, selected
    assert window.undo_stack.undoText().startswith("Paste")

    window.undo_stack.undo()  # all of it in one step
    assert len(graph) == nodes_before and len(blocks) == blocks_before
    assert list(window.project.frozen) == [conv1]
    window.undo_stack.redo()
    assert len(blocks) == blocks_before + 1 and len(window.project.frozen) == 2

    # Duplicate (Ctrl+D) of the block and one loose node: the block comes along, the node stays loose.
    window.scene.select_nodes([*copy.nodes, ids[4]])
    window.duplicate_action.trigger()
    assert len(blocks) == blocks_before + 2
    newest = list(blocks)[-1]
    assert len(newest.nodes) == 3 and ids[4] not in newest.nodes


def test_a_paste_the_graph_refuses_leaves_nothing_behind(make_window):
    """A fragment from elsewhere with a parameter value the layer refuses: one line, no half paste, no undo step."""
    from dlstudio.gui import clipboard

    window, ids = lenet_window(make_window)
    fragment = clipboard.make_fragment(window.project.graph, window.project.layout, ids[1:3])
    fragment["nodes"][1]["params"] = {"not_a_parameter": 1}
    before, steps = len(window.project.graph), window.undo_stack.count()
    window._paste_fragment(fragment)
    assert len(window.project.graph) == before and window.undo_stack.count() == steps
    assert window.statusBar().currentMessage().startswith("Cannot paste: ")

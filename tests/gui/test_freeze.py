"""Frozen nodes on the canvas: the lock badge, freezing a block, the inspector's toggle, and exact undo of a
delete (block membership and frozen state come back with the node)."""

from __future__ import annotations

from PySide6.QtCore import Qt
from PySide6.QtTest import QTest

from dlstudio.core.project import load_template


def lenet_window(make_window):
    window = make_window(load_template("lenet5"))
    window.hide_welcome()
    return window, list(window.project.graph.nodes)


def test_ctrl_k_freezes_the_selection_with_a_lock_badge_and_undo_unfreezes(make_window):
    window, ids = lenet_window(make_window)
    conv1 = ids[1]
    item = window.scene.node_items[conv1]
    assert not item.frozen
    window.scene.select_nodes([conv1])
    QTest.keyClick(window.view, Qt.Key.Key_K, Qt.KeyboardModifier.ControlModifier)
    assert conv1 in window.project.frozen
    assert item.frozen and item.lock.isVisible() and item.lock.state == "all"
    assert window.is_dirty()
    assert window.undo_stack.undoText() == f"Freeze {window.project.graph.node(conv1).name}"
    window.undo()
    assert conv1 not in window.project.frozen and not item.frozen
    window.redo()
    QTest.keyClick(window.view, Qt.Key.Key_K, Qt.KeyboardModifier.ControlModifier | Qt.KeyboardModifier.ShiftModifier)
    assert conv1 not in window.project.frozen and not item.frozen


def test_freezing_a_collapsed_block_freezes_its_layers_and_the_badge_shows_all_or_some(make_window):
    window, ids = lenet_window(make_window)
    members = ids[1:4]
    window.scene.select_nodes(members)
    window.block_actions.group_action.trigger()
    (block,) = list(window.project.blocks)
    item = window.scene.block_items[block.id]
    assert item.frozen_state == "none"
    window.scene.select_block(block.id)
    window.block_actions.freeze_action.trigger()
    assert set(window.project.frozen) == set(members)
    assert item.frozen_state == "all"
    window.undo()
    assert len(window.project.frozen) == 0 and item.frozen_state == "none"
    # One layer frozen (from the inspector of the expanded block): the block's badge is half.
    window.block_actions.set_frozen([members[0]], True)
    assert item.frozen_state == "some" and item.lock.toolTip().startswith("Some layers are frozen")
    window.scene.select_block(block.id)
    window.block_actions.expand_action.trigger()
    assert window.scene.node_items[members[0]].frozen and not window.scene.node_items[members[1]].frozen


def test_the_inspector_shows_frozen_and_its_toggle_is_an_undo_step(make_window):
    window, ids = lenet_window(make_window)
    conv1 = ids[1]
    window.scene.select_nodes([conv1])
    box = window.inspector.frozen_box
    assert box.isVisible() and not box.isChecked()
    assert box.text() == "Frozen: weights are not trained"
    QTest.mouseClick(box, Qt.MouseButton.LeftButton)
    assert conv1 in window.project.frozen and box.isChecked()
    assert window.scene.node_items[conv1].frozen
    window.undo()
    assert conv1 not in window.project.frozen and not box.isChecked()
    window.block_actions.set_frozen([conv1], True)  # from the menu: the inspector follows
    assert box.isChecked()


def test_deleting_a_frozen_layer_of_a_block_and_undoing_restores_membership_and_frozen(make_window):
    window, ids = lenet_window(make_window)
    members = ids[1:4]
    window.scene.select_nodes(members)
    window.block_actions.group_action.trigger()
    (block,) = list(window.project.blocks)
    window.block_actions.set_frozen(members, True)
    window.scene.select_block(block.id)
    window.block_actions.expand_action.trigger()
    window.scene.select_nodes([members[1]])
    QTest.keyClick(window.view, Qt.Key.Key_Delete)
    assert members[1] not in window.project.graph
    assert window.project.blocks.get(block.id).nodes == (members[0], members[2])
    assert members[1] not in window.project.frozen
    window.undo()
    assert list(window.project.blocks) == [window.project.blocks.get(block.id)]
    assert window.project.blocks.get(block.id).nodes == tuple(members)
    assert set(window.project.frozen) == set(members)
    assert window.scene.node_items[members[1]].frozen
    window.redo()
    window.undo()
    assert window.project.blocks.get(block.id).nodes == tuple(members)


def test_deleting_a_whole_collapsed_block_and_undoing_brings_it_back_collapsed_and_frozen(make_window):
    window, ids = lenet_window(make_window)
    members = ids[1:4]
    window.scene.select_nodes(members)
    window.block_actions.group_action.trigger()
    (block,) = list(window.project.blocks)
    window.block_actions.set_frozen([members[0]], True)
    window.scene.select_block(block.id)
    QTest.keyClick(window.view, Qt.Key.Key_Delete)
    assert not any(n in window.project.graph for n in members)
    assert len(window.project.blocks) == 0 and not window.scene.block_items
    window.undo()
    assert list(window.project.blocks) == [block]
    assert list(window.project.frozen) == [members[0]]
    assert window.scene.block_items[block.id].frozen_state == "some"
    assert not any(window.scene.node_items[n].isVisible() for n in members)


def test_cut_of_a_frozen_node_in_a_block_undoes_exactly(make_window):
    window, ids = lenet_window(make_window)
    window.project.blocks.group(ids[1:4], "stem", collapsed=False)
    window.project.frozen.set([ids[2]], True)
    window.scene.select_nodes([ids[2]])
    window.cut()
    assert ids[2] not in window.project.graph
    window.undo()
    assert window.project.blocks.get(next(iter(window.project.blocks)).id).nodes == tuple(ids[1:4])
    assert ids[2] in window.project.frozen


def test_a_selected_block_shows_in_the_inspector_where_its_box_freezes_all_and_its_name_renames(make_window):
    window, ids = lenet_window(make_window)
    members = ids[1:4]
    window.scene.select_nodes(members)
    window.block_actions.group_action.trigger()  # the new block is selected
    (block,) = list(window.project.blocks)
    inspector = window.inspector
    assert inspector.block_id == block.id and block.name in inspector.title.text()
    assert "(N, 1, 28, 28)" in inspector.shapes.text() and "(N, 6, 14, 14)" in inspector.shapes.text()
    window.block_actions.set_frozen([members[0]], True)
    assert inspector.frozen_box.checkState() == Qt.CheckState.PartiallyChecked
    QTest.mouseClick(inspector.frozen_box, Qt.MouseButton.LeftButton)
    assert set(window.project.frozen) == set(members)
    assert inspector.frozen_box.checkState() == Qt.CheckState.Checked
    QTest.mouseClick(inspector.frozen_box, Qt.MouseButton.LeftButton)
    assert len(window.project.frozen) == 0
    inspector.name_edit.setFocus()
    inspector.name_edit.selectAll()
    QTest.keyClicks(inspector.name_edit, "stem")
    QTest.keyClick(inspector.name_edit, Qt.Key.Key_Return)
    assert window.project.blocks.get(block.id).name == "stem"
    window.undo()
    assert window.project.blocks.get(block.id).name == block.name
    # A node selected again: the inspector is the node's, with a two-state box.
    window.scene.select_block(block.id)
    window.block_actions.expand_action.trigger()
    window.scene.select_nodes([members[0]])
    assert inspector.node_id == members[0] and inspector.block_id is None
    assert not inspector.frozen_box.isTristate()


def test_the_frozen_box_is_offered_only_where_there_are_weights_to_freeze(make_window):
    window, ids = lenet_window(make_window)
    box = window.inspector.frozen_box
    graph = window.project.graph
    for node_id in ids:
        window.scene.select_nodes([node_id])
        node = graph.node(node_id)
        has_weights = window.inference.info(node_id).params > 0
        assert box.isVisible() == has_weights, f"{node.name} ({node.type})"
    assert any(graph.node(i).type == "ReLU" for i in ids) and any(graph.node(i).type == "Output" for i in ids)

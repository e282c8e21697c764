"""What the window says about canvas edits: names in status messages, refusals with reasons.

These need the window to use the canvas modules' helpers (clipboard.paste_message, Graph.check_rename,
make_fix_command's sizes); see the canvas notes in the lead's hand-over.
"""

from __future__ import annotations

from PySide6.QtCore import Qt
from PySide6.QtGui import QKeySequence
from PySide6.QtTest import QTest

from gui_helpers import chain_project


def _project():
    return chain_project(("Input", {"shape": [1, 12, 12]}), ("Conv2d", {"out_channels": 4, "kernel_size": 5}),
                         ("MaxPool2d", {"kernel_size": 2}), ("Flatten", {}), ("Linear", {"out_features": 10}),
                         ("Output", {"classes": 10}))


def test_renaming_to_a_name_in_use_is_refused_with_the_reason(make_window):
    window = make_window(_project())
    window.scene.select_nodes(["maxpool1"])
    window.inspector.name_edit.setText("conv1")
    window.inspector.name_edit.editingFinished.emit()
    assert window.project.graph.node("maxpool1").name == "maxpool1"
    assert window.undo_stack.count() == 0
    reason = "Cannot rename maxpool1 to conv1: another layer is already called conv1"
    assert window.statusBar().currentMessage() == reason
    assert window.inspector.refusal.text() == reason
    assert window.inspector.name_edit.text() == "maxpool1"


def test_copy_paste_and_duplicate_say_what_they_did_by_name(make_window):
    window = make_window(_project())
    window.scene.select_nodes(["conv1"])
    QTest.keySequence(window.view, QKeySequence(QKeySequence.StandardKey.Copy))
    assert window.statusBar().currentMessage() == "Copied conv1"
    QTest.keySequence(window.view, QKeySequence(QKeySequence.StandardKey.Paste))
    assert window.statusBar().currentMessage() == "Pasted conv1 as conv2"
    assert window.undo_stack.undoText() == "Paste conv1"

    window.scene.select_nodes(["conv1"])
    QTest.keySequence(window.view, QKeySequence("Ctrl+D"))
    assert window.undo_stack.undoText() == "Duplicate conv1"
    assert window.statusBar().currentMessage() == "Duplicated conv1 as conv3"
    x, y = window.project.layout.position("conv1")
    assert window.project.layout.position("conv3") == (x + 80, y + 80)  # conv2 already sits at +40

    window.scene.select_nodes(["conv1", "maxpool1", "flatten1"])
    QTest.keySequence(window.view, QKeySequence(QKeySequence.StandardKey.Copy))
    QTest.keySequence(window.view, QKeySequence(QKeySequence.StandardKey.Paste))
    assert window.statusBar().currentMessage() == "Pasted 3 layers"
    assert window.undo_stack.undoText() == "Paste 3 layers"


def test_fix_and_connect_messages_use_names(make_window):
    window = make_window(chain_project(("Input", {"shape": [1, 8, 8]}), ("Linear", {"out_features": 10}),
                                       ("Output", {"classes": 10})))
    window.project.graph.rename("linear1", "fc1")
    window.scene.select_nodes(["linear1"])
    QTest.mouseClick(window.inspector.fix_button, Qt.MouseButton.LeftButton)
    assert window.statusBar().currentMessage() == "Fixed fc1: Insert a Flatten before it"
    assert window.undo_stack.undoText() == "Fix fc1: Insert a Flatten before it"


def test_a_clicked_node_brings_the_inspector_in_front_of_the_data_tab_but_not_during_a_run(make_window, qtbot,
                                                                                           monkeypatch):
    window = make_window(_project())
    window.hide_welcome()
    window.data_dock.raise_()
    def in_front(dock):  # a dock behind another tab keeps isVisible(); it has nothing on screen
        return not dock.visibleRegion().isEmpty()

    qtbot.waitUntil(lambda: in_front(window.data_dock) and not in_front(window.inspector_dock), timeout=3000)
    item = window.scene.node_items["conv1"]
    center = window.view.mapFromScene(item.sceneBoundingRect().center())
    QTest.mouseClick(window.view.viewport(), Qt.MouseButton.LeftButton, pos=center)
    assert window.scene.selected_node_ids() == ["conv1"]
    qtbot.waitUntil(lambda: in_front(window.inspector_dock) and not in_front(window.data_dock), timeout=3000)
    assert window.inspector.node_id == "conv1"

    window.training_dock.raise_()
    monkeypatch.setattr(window.training, "is_running", lambda: True)
    window.scene.clearSelection()
    QTest.mouseClick(window.view.viewport(), Qt.MouseButton.LeftButton, pos=center)
    qtbot.wait(50)
    assert in_front(window.training_dock) and not in_front(window.inspector_dock), "the run's progress stays"
    monkeypatch.undo()  # no run to stop when the window closes

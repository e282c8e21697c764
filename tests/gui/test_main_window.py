"""The window around the canvas: inspector edits and fixes, files, dirty flag, close prompt, screenshot."""

from __future__ import annotations

import subprocess
import sys

from PySide6.QtCore import Qt
from PySide6.QtGui import QImage
from PySide6.QtTest import QTest

from dlstudio.core.layers.spec import format_shape
from dlstudio.core.project import load_project
from dlstudio.gui.main_window import CANCEL_CHOICE, DISCARD_CHOICE, SAVE_CHOICE
from gui_helpers import chain_project


def _lenet_like():
    # Linear with in_features set explicitly, so a kernel change upstream breaks it.
    return chain_project(("Input", {"shape": [1, 12, 12]}), ("Conv2d", {"out_channels": 4, "kernel_size": 5}),
                         ("Flatten", {}), ("Linear", {"in_features": 256, "out_features": 10}),
                         ("Output", {"classes": 10}))


def test_first_launch_opens_the_default_lenet5_project(make_window):
    window = make_window()
    assert window.project.graph.nodes, "the default project has a network"
    assert not window.is_dirty() and not window.inference.totals().errors
    assert "untitled" in window.windowTitle() or window.project.name in window.windowTitle()
    assert "parameters" in window.totals_label.text()


def test_a_kernel_change_in_the_inspector_updates_shapes_and_the_fix_repairs_the_linear(make_window):
    window = make_window(_lenet_like())
    graph, inference = window.project.graph, window.inference
    window.scene.select_nodes(["conv1"])
    assert window.inspector.node_id == "conv1"
    editor = window.inspector.editors["kernel_size"]
    editor.setFocus()
    editor.selectAll()
    QTest.keyClicks(editor, "3")
    QTest.keyClick(editor, Qt.Key.Key_Return)

    assert graph.node("conv1").params["kernel_size"] == 3
    assert inference.info("flatten1").output_shape == (400,)
    edge = graph.input_edge("linear1", "in")
    assert window.scene.edge_items[edge].label == format_shape((400,))
    error = inference.info("linear1").error
    assert error is not None and "in_features=256" in error.message
    assert window.scene.node_items["linear1"].badge.isVisible()
    assert window.scene.node_items["linear1"].badge.toolTip() == error.message
    assert "1 error" in window.totals_label.text()

    window.scene.select_nodes(["linear1"])
    assert window.inspector.fix_button.isVisible() and "Set in_features to 400" in window.inspector.fix_button.text()
    QTest.mouseClick(window.inspector.fix_button, Qt.MouseButton.LeftButton)
    assert graph.node("linear1").params["in_features"] == 400
    assert inference.errors() == []
    assert not window.scene.node_items["linear1"].badge.isVisible()
    window.undo()  # the fix is one step
    assert graph.node("linear1").params["in_features"] == 256
    window.undo()  # the kernel change is one step
    assert graph.node("conv1").params["kernel_size"] == 5 and inference.errors() == []


def test_an_invalid_value_is_refused_on_the_spot(make_window):
    window = make_window(_lenet_like())
    window.scene.select_nodes(["conv1"])
    editor = window.inspector.editors["kernel_size"]
    editor.setFocus()
    editor.selectAll()
    QTest.keyClicks(editor, "0")
    QTest.keyClick(editor, Qt.Key.Key_Return)
    assert window.project.graph.node("conv1").params["kernel_size"] == 5
    assert "at least 1" in window.inspector.refusal.text()
    assert window.undo_stack.count() == 0 and editor.text() == "5"


def test_insert_flatten_fix_is_one_undo_step(make_window):
    window = make_window(chain_project(("Input", {"shape": [1, 8, 8]}), ("Linear", {"out_features": 10}),
                                       ("Output", {"classes": 10})))
    graph = window.project.graph
    before = graph.to_dict()
    assert window.inference.info("linear1").error.fix.layer_type == "Flatten"
    assert window.apply_fix("linear1")
    assert [n.type for n in graph] == ["Input", "Linear", "Output", "Flatten"]
    assert {str(e) for e in graph.edges} == {"input1.out -> flatten1.in", "flatten1.out -> linear1.in",
                                             "linear1.out -> output1.in"}
    assert window.inference.errors() == []
    assert window.undo_stack.count() == 1
    window.undo()
    assert graph.to_dict() == before


def test_a_fix_that_pushes_nodes_beyond_the_view_scrolls_them_into_sight(make_window, qtbot):
    window = make_window(chain_project(("Input", {"shape": [1, 8, 8]}), ("Conv2d", {"out_channels": 4}),
                                       ("Output", {"classes": 10}), spacing=420.0))
    window.hide_welcome()
    window.resize(1000, 700)
    window.view.fit_all()
    qtbot.wait(50)

    def on_screen(node_id):
        visible = window.view.mapToScene(window.view.viewport().rect()).boundingRect()
        return visible.contains(window.scene.node_items[node_id].sceneBoundingRect())

    assert on_screen("output1")
    assert window.apply_fix("output1")  # inserts a Flatten where the Output was, and moves the Output right
    flatten = next(node.id for node in window.project.graph if node.type == "Flatten")
    assert on_screen(flatten) and on_screen("output1")


def test_parameter_and_name_edits_are_undo_steps(make_window):
    window = make_window(_lenet_like())
    window.scene.select_nodes(["linear1"])
    window.inspector.editors["bias"].click()
    assert window.project.graph.node("linear1").params["bias"] is False
    window.inspector.name_edit.setText("classifier")
    window.inspector.name_edit.editingFinished.emit()
    assert window.project.graph.node("linear1").name == "classifier"
    assert window.undo_stack.count() == 2
    window.undo()
    window.undo()
    assert window.project.graph.node("linear1").name == "linear1"
    assert window.project.graph.node("linear1").params["bias"] is True


def test_save_close_reopen_gives_the_same_graph_and_layout(make_window, tmp_path, monkeypatch):
    window = make_window(_lenet_like())
    window.scene.select_nodes(["linear1"])
    window.inspector.editors["out_features"].setValue(10)  # unchanged: no step
    window.set_param("conv1", "out_channels", 6)
    assert window.isWindowModified()
    path = tmp_path / "net.dlstudio"
    monkeypatch.setattr(window, "_ask_save_path", lambda: str(path))
    assert window.save()
    assert not window.isWindowModified() and "net" in window.windowTitle()
    graph_before, layout_before = window.project.graph.to_dict(), window.project.layout.to_dict()
    assert window.close()

    reopened = make_window(load_project(path))
    assert reopened.project.graph.to_dict() == graph_before
    assert reopened.project.layout.to_dict() == layout_before
    third = make_window(show=False)
    assert third.open_file(path)
    assert third.project.graph.to_dict() == graph_before
    assert str(path.resolve()) in third.recent_files()


def test_the_close_prompt_guards_unsaved_changes(make_window, tmp_path, monkeypatch):
    window = make_window(_lenet_like())
    window.set_param("conv1", "out_channels", 6)
    answers = []

    def answer(choice):
        def ask():
            answers.append(choice)
            return choice
        return ask

    monkeypatch.setattr(window, "_ask_save_changes", answer(CANCEL_CHOICE))
    assert not window.close() and window.isVisible()
    window.undo()  # back to the saved state: no prompt
    assert not window.isWindowModified()
    window.redo()
    path = tmp_path / "saved.dlstudio"
    monkeypatch.setattr(window, "_ask_save_changes", answer(SAVE_CHOICE))
    monkeypatch.setattr(window, "_ask_save_path", lambda: str(path))
    assert window.close()
    assert load_project(path).graph.node("conv1").params["out_channels"] == 6
    assert answers == [CANCEL_CHOICE, SAVE_CHOICE]

    other = make_window(_lenet_like())
    other.set_param("conv1", "out_channels", 7)
    monkeypatch.setattr(other, "_ask_save_changes", answer(DISCARD_CHOICE))
    assert other.close()


def test_theme_switch_and_geometry_persist(make_window):
    window = make_window()
    window.dark_theme_action.trigger()
    assert window.view.colors.background != "#f4f5f7"
    window.resize(700, 500)  # inside the offscreen screen (800 x 600), which restoreGeometry clamps to
    window.close()
    again = make_window()
    assert again.theme == "dark" and again.dark_theme_action.isChecked()
    assert again.size().width() == 700
    again.light_theme_action.trigger()


def test_screenshot_command_writes_a_1400x900_png_without_importing_torch(tmp_path):
    out = tmp_path / "shot.png"
    code = ("import sys; from dlstudio.app import main; rc = main(['--screenshot', sys.argv[1]]); "
            "print('torch' in sys.modules); sys.exit(rc)")
    env = {"QT_QPA_PLATFORM": "offscreen", "XDG_CONFIG_HOME": str(tmp_path), "HOME": str(tmp_path),
           "PATH": "/usr/bin:/bin"}
    result = subprocess.run([sys.executable, "-c", code, str(out)], capture_output=True, text=True, env=env,
                            timeout=60)
    assert result.returncode == 0, result.stderr
    assert result.stdout.strip() == "False"
    image = QImage(str(out))
    assert (image.width(), image.height()) == (1400, 900)


def test_help_keyboard_shortcuts_lists_the_menus_keys_and_the_canvas_gestures_and_searches(make_window):
    window = make_window()
    window.shortcuts_action.trigger()
    dialog = window._shortcuts_dialog
    assert dialog is not None and dialog.isVisible()
    rows = dialog.visible_rows()
    assert ("File", "Save", "Ctrl+S") in rows and ("Training", "Train", "F5") in rows
    assert ("Help", "Keyboard Shortcuts", "Ctrl+/") in rows
    assert ("Canvas", "Pan", "middle-drag, or hold Space and drag") in rows
    shown = {(where, command) for where, command, _ in rows}
    for action in (window.undo_action, window.copy_action, window.fit_action):  # every key a menu has is listed
        assert any(command == action.text().replace("&", "").rstrip(".…") for _, command in shown), action.text()
    dialog.search.setText("f5")
    assert {command for _, command, keys in dialog.visible_rows()} == {"Train", "Stop"}
    dialog.close()

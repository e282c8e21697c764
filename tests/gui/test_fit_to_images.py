"""Opening a folder of pictures gives a network shaped for them; the Data panel offers the same fit, undoably."""

from __future__ import annotations

from PIL import Image
from PySide6.QtCore import Qt
from PySide6.QtTest import QTest

from dlstudio.core.project import load_template


def _photos(root, classes=("cats", "dogs", "owls"), size=(120, 90)):
    for index, name in enumerate(classes):
        (root / name).mkdir(parents=True)
        for i in range(4):
            Image.new("RGB", size, (60 * index, 20 * i, 200 - 50 * index)).save(root / name / f"{name}{i}.jpg")
    return root


def _input_and_head(window):
    graph = window.project.graph
    shape = next(node.params["shape"] for node in graph if node.type == "Input")
    classes = next(node.params["classes"] for node in graph if node.type == "Output")
    return shape, classes


def test_open_an_image_folder_from_the_welcome_page_shapes_lenet_for_the_photos(make_window, qtbot, tmp_path,
                                                                               monkeypatch):
    folder = _photos(tmp_path / "pets")
    window = make_window()
    window.show_welcome()
    monkeypatch.setattr(window, "_ask_image_folder", lambda: str(folder))
    QTest.mouseClick(window.welcome.image_folder_button, Qt.MouseButton.LeftButton)
    assert not window.is_welcome_shown()
    assert _input_and_head(window) == ([3, 64, 64], 3)
    assert window.inference.errors() == [] and "pets" in window.windowTitle()
    assert [node.name for node in window.project.graph if node.type == "Output"] == ["class"]
    assert window.statusBar().currentMessage() == ("A LeNet-5 for pets: 3 classes (cats, dogs, owls); colour "
                                                   "images at 64×64")
    qtbot.waitUntil(lambda: window.data_panel.preview is not None and bool(window.data_panel.preview.class_names),
                    timeout=20000)
    assert window.data_panel.preview.problems == [], "the network and the folder agree"


def test_the_data_panels_fit_button_reshapes_the_open_network_in_one_undo_step(make_window, qtbot, tmp_path):
    folder = _photos(tmp_path / "birds", classes=("finch", "robin"), size=(300, 300))
    project = load_template("lenet5")
    project.data = {**project.data, "source": "folder", "path": str(folder)}
    window = make_window(project)
    panel = window.data_panel
    window.data_dock.raise_()
    qtbot.waitUntil(lambda: panel.fit_button.isVisible(), timeout=20000)
    assert panel.preview.problems, "10 classes on a folder of 2: the panel says so"
    before = window.project.graph.to_dict()
    QTest.mouseClick(panel.fit_button, Qt.MouseButton.LeftButton)
    assert _input_and_head(window) == ([3, 64, 64], 2)
    assert window.undo_stack.count() == 1 and window.undo_stack.undoText() == "Fit the network to birds"
    qtbot.waitUntil(lambda: panel.preview is not None and panel.preview.class_names and not panel.preview.problems,
                    timeout=20000)
    QTest.mouseClick(panel.fit_button, Qt.MouseButton.LeftButton)
    assert window.undo_stack.count() == 1 and "already fits" in window.statusBar().currentMessage()
    window.undo()
    assert window.project.graph.to_dict() == before


def test_the_fit_button_is_only_offered_for_an_image_folder(make_window, qtbot):
    window = make_window(load_template("lenet5"))  # the bundled digits
    window.data_dock.raise_()
    qtbot.waitUntil(lambda: window.data_panel.preview is not None and bool(window.data_panel.preview.class_names),
                    timeout=20000)
    assert not window.data_panel.fit_button.isVisible()

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
    from dlstudio.gui.main_window import SMALL_NETWORK

    folder = _photos(tmp_path / "pets")
    window = make_window()
    window.show_welcome()
    monkeypatch.setattr(window, "_ask_image_folder", lambda: str(folder))
    asked = []
    monkeypatch.setattr(window, "_ask_folder_network", lambda survey: asked.append(survey) or SMALL_NETWORK)
    QTest.mouseClick(window.welcome.image_folder_button, Qt.MouseButton.LeftButton)
    assert [survey.class_names for survey in asked] == [("cats", "dogs", "owls")]
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


def test_a_pretrained_mobilenet_can_learn_the_folder_instead_with_its_classifier_sized_for_it(
        make_window, tmp_path, monkeypatch):
    from dlstudio.core.project.head import find_head
    from dlstudio.gui.main_window import PRETRAINED_NETWORK

    folder = _photos(tmp_path / "fruit", classes=("apples", "limes", "plums", "pears"))
    window = make_window()
    monkeypatch.setattr(window, "_ask_image_folder", lambda: str(folder))
    monkeypatch.setattr(window, "_ask_folder_network", lambda survey: PRETRAINED_NETWORK)
    window._on_welcome_image_folder_requested()
    project = window.project
    assert project.weights is not None and project.weights.model == "mobilenet_v3_small"
    output_id, head_id = find_head(project.graph)
    assert project.graph.node(output_id).params["classes"] == 4 == project.graph.node(head_id).params["out_features"]
    assert project.graph.node(output_id).name == "class" and project.data["path"] == str(folder)
    assert len(project.frozen) > 0 and window.inference.errors() == []
    assert window.statusBar().currentMessage().startswith("MobileNetV3 with ImageNet weights for fruit: 4 classes")


def test_cancelling_the_network_question_changes_nothing(make_window, tmp_path, monkeypatch):
    folder = _photos(tmp_path / "pets")
    window = make_window()
    before = window.project
    monkeypatch.setattr(window, "_ask_image_folder", lambda: str(folder))
    monkeypatch.setattr(window, "_ask_folder_network", lambda survey: None)
    window._on_welcome_image_folder_requested()
    assert window.project is before


def test_the_question_proposes_the_pretrained_network_for_photos_and_says_what_it_downloads(
        make_window, tmp_path, monkeypatch):
    from PySide6.QtWidgets import QMessageBox

    from dlstudio.core.project.fit_to_data import survey_image_folder
    from dlstudio.gui.main_window import PRETRAINED_NETWORK, SMALL_NETWORK

    monkeypatch.setenv("TORCH_HOME", str(tmp_path / "torch"))  # no weights on this machine
    shown = []

    def answer_with_the_default(box):
        shown.append((box.defaultButton().text(), box.informativeText()))
        box.defaultButton().click()
        return 0

    monkeypatch.setattr(QMessageBox, "exec", answer_with_the_default)
    window = make_window()
    photos = survey_image_folder(_photos(tmp_path / "pets"))
    assert window._ask_folder_network(photos) == PRETRAINED_NETWORK
    assert shown[-1][0] == "Pretrained MobileNet" and "(10 MB) are downloaded once" in shown[-1][1]
    glyphs = tmp_path / "glyphs"
    for name in ("a", "b"):
        (glyphs / name).mkdir(parents=True)
        Image.new("L", (20, 20), 90).save(glyphs / name / "0.png")
    assert window._ask_folder_network(survey_image_folder(glyphs)) == SMALL_NETWORK
    assert shown[-1][0] == "Small CNN"


def test_the_data_panel_fits_the_network_to_a_csv_table_too(make_window, qtbot, tmp_path):
    empty = load_template("mlp")
    empty.data = {**empty.data, "source": "csv", "path": ""}
    first = make_window(empty)
    first.data_dock.raise_()
    qtbot.waitUntil(lambda: first.data_panel.preview is not None, timeout=20000)
    assert first.data_panel.preview.problems and not first.data_panel.fit_button.isVisible(), "no file, no fit"
    table = tmp_path / "flowers.csv"
    rows = ["a,b,c,label"] + [f"{i},{i % 4},{i * 0.5},{'yes' if i % 2 else 'no'}" for i in range(30)]
    table.write_text("\n".join(rows) + "\n")
    project = load_template("mlp")  # Input 1x28x28: the table's 3 features do not fit it
    project.data = {**project.data, "source": "csv", "path": str(table), "label_column": ""}
    window = make_window(project)
    panel = window.data_panel
    window.data_dock.raise_()
    qtbot.waitUntil(lambda: panel.fit_button.isVisible(), timeout=20000)
    assert panel.fit_button.text() == "Fit the network to this table"
    assert any("3 feature columns" in problem for problem in panel.preview.problems)
    QTest.mouseClick(panel.fit_button, Qt.MouseButton.LeftButton)
    assert _input_and_head(window) == ([3], 2)
    assert window.undo_stack.undoText() == "Fit the network to flowers.csv"
    assert window.inference.errors() == []
    qtbot.waitUntil(lambda: panel.current_problems() == [], timeout=20000)

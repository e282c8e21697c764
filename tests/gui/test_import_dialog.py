"""File › Import Model: the dialog's three sources, the import on a worker thread, pretrained weights named."""

from __future__ import annotations

import warnings

import pytest
from PySide6.QtCore import Qt
from PySide6.QtTest import QTest
from PySide6.QtWidgets import QDialogButtonBox

from dlstudio.core.project import load_template
from dlstudio.gui import main_window
from dlstudio.gui.import_dialog import MODULE, ONNX, TORCHVISION, ImportDialog, ImportRequest

MODELS = ["alexnet", "mobilenet_v2", "mobilenet_v3_small", "resnet18", "resnet50"]


def import_through_window(window, qtbot, request: ImportRequest, monkeypatch):
    before = window.project
    monkeypatch.setattr(window, "_ask_import_request", lambda classes: request)
    assert window.import_model_action.trigger() is None
    qtbot.waitUntil(lambda: window.project is not before and window._import_task is None, timeout=60_000)


def click_import(dialog: ImportDialog) -> None:
    button = dialog.findChild(QDialogButtonBox).button(QDialogButtonBox.StandardButton.Ok)
    QTest.mouseClick(button, Qt.MouseButton.LeftButton)


@pytest.mark.timeout(120)
def test_a_torchvision_architecture_arrives_with_its_pretrained_weights_named(make_window, qtbot, monkeypatch):
    window = make_window(load_template("lenet5"))
    window.rename_node(next(iter(window.project.graph)).id, "edited")
    monkeypatch.setattr(window, "_ask_save_changes", lambda: main_window.DISCARD_CHOICE)
    import_through_window(window, qtbot, ImportRequest(TORCHVISION, "resnet18", classes=10, pretrained=True),
                          monkeypatch)
    project = window.project
    assert project.path is None and not window.is_dirty()
    assert any(node.name == "layer1.0.conv1" for node in project.graph)
    assert [node.params["classes"] for node in project.graph if node.type == "Output"] == [10]
    assert project.data["source"] == "digits"  # the open project's data: a new network for it
    assert project.weights is not None and project.weights.describe() == "torchvision resnet18 (IMAGENET1K_V1)"
    assert project.weights.key_map["layer1_0_conv1.weight"] == "layer1.0.conv1.weight"
    message = window.statusBar().currentMessage()
    assert "Imported resnet18" in message and "starts from torchvision resnet18 (IMAGENET1K_V1) weights" in message


@pytest.mark.timeout(120)
def test_without_pretrained_weights_the_import_says_random(make_window, qtbot, monkeypatch):
    window = make_window(load_template("lenet5"))
    import_through_window(window, qtbot, ImportRequest(TORCHVISION, "squeezenet1_1", classes=4), monkeypatch)
    assert window.project.weights is None
    assert "random weights" in window.statusBar().currentMessage()


@pytest.mark.timeout(120)
def test_an_onnx_file_is_imported(make_window, qtbot, monkeypatch, tmp_path):
    import torch
    from torch import nn

    model = nn.Sequential(nn.Conv2d(1, 4, 3), nn.ReLU(), nn.Flatten(), nn.Linear(4 * 6 * 6, 3)).eval()
    path = tmp_path / "small.onnx"
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # the TorchScript exporter (no onnxscript needed) warns that it is deprecated
        torch.onnx.export(model, (torch.zeros(1, 1, 8, 8),), str(path), dynamo=False, opset_version=17,
                          input_names=["image"], dynamic_axes={"image": {0: "batch"}})
    window = make_window(load_template("lenet5"))
    import_through_window(window, qtbot, ImportRequest(ONNX, str(path)), monkeypatch)
    types = sorted(node.type for node in window.project.graph)
    assert types == sorted(["Input", "Conv2d", "ReLU", "Flatten", "Linear", "Output"])
    message = window.statusBar().currentMessage()
    assert "Imported small.onnx" in message and "3 classes" in message
    assert "starts from the weights in small.onnx" in message


@pytest.mark.timeout(120)
def test_an_onnx_files_weights_are_kept_and_saved_beside_the_project(make_window, qtbot, monkeypatch, tmp_path):
    """The window's ONNX import starts from the file's weights: kept in the user's data folder while the
    project is unsaved, written beside it by the first save, loaded by name when a run starts."""
    import torch
    from torch import nn

    from dlstudio.core.compiler import compile_graph
    from dlstudio.core.training.pretrained import load_weights

    torch.manual_seed(3)
    model = nn.Sequential(nn.Conv2d(1, 4, 3), nn.ReLU(), nn.Flatten(), nn.Linear(4 * 6 * 6, 3)).eval()
    source = tmp_path / "trained.onnx"
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        torch.onnx.export(model, (torch.zeros(1, 1, 8, 8),), str(source), dynamo=False, opset_version=17,
                          input_names=["image"], dynamic_axes={"image": {0: "batch"}})
    window = make_window(load_template("lenet5"))
    import_through_window(window, qtbot, ImportRequest(ONNX, str(source)), monkeypatch)
    stashed = window.project.weights
    assert stashed is not None and stashed.kind == "file" and stashed.path.endswith(".weights.safetensors")
    box = window.starting_weights
    assert "imported network's own weights" in box.source_label.text()

    folder = tmp_path / "projects"
    folder.mkdir()
    monkeypatch.setattr(window, "_ask_save_path", lambda: str(folder / "mine.dlstudio"))
    assert window.save_action.trigger() is None
    assert window.project.path == folder / "mine.dlstudio"
    assert window.project.weights.path == "mine.weights.safetensors"  # relative: the two move together
    assert (folder / "mine.weights.safetensors").is_file()
    assert box.source_label.text() == "From file mine.weights.safetensors"

    compiled = compile_graph(window.project.graph).eval()
    loaded = load_weights(compiled, window.project.graph, window.project.weights, base_dir=folder)
    assert loaded.tensors_loaded == loaded.tensors_total == 4
    x = torch.randn(5, 1, 8, 8)
    with torch.no_grad():
        assert torch.allclose(compiled(x), model(x), atol=1e-6)


MODULE_SOURCE = '''
import torch
from torch import nn


class SkipNet(nn.Module):
    def __init__(self, classes=3):
        super().__init__()
        self.conv1 = nn.Conv2d(1, 4, 3, padding=1)
        self.conv2 = nn.Conv2d(4, 4, 3, padding=1)
        self.head = nn.Linear(4 * 8 * 8, classes)

    def forward(self, x):
        y = torch.relu(self.conv1(x))
        y = y + self.conv2(y)
        return self.head(torch.flatten(y, 1))
'''


@pytest.mark.timeout(120)
def test_your_own_module_class_is_read_from_the_dialog_and_imported(make_window, qtbot, monkeypatch, tmp_path):
    source = tmp_path / "skipnet.py"
    source.write_text(MODULE_SOURCE)
    dialog = ImportDialog(MODELS, 10)
    qtbot.addWidget(dialog)
    dialog.select(MODULE)
    dialog.module_spec.setText(f"{source}:SkipNet")
    dialog.input_shape.setText("1, 8, 8")
    dialog.module_args.setText('{"classes": 5}')
    click_import(dialog)
    request = dialog.request()
    assert request == ImportRequest(MODULE, f"{source}:SkipNet", input_shape=(1, 8, 8), kwargs={"classes": 5})
    window = make_window(load_template("lenet5"))
    import_through_window(window, qtbot, request, monkeypatch)
    graph = window.project.graph
    assert [node.params["classes"] for node in graph if node.type == "Output"] == [5]
    assert any(node.type == "Add" for node in graph)  # the skip connection
    assert "Imported SkipNet" in window.statusBar().currentMessage()


def test_the_architecture_list_filters_as_you_type_and_imports_the_visible_choice(qtbot):
    dialog = ImportDialog(MODELS, 7)
    qtbot.addWidget(dialog)
    assert dialog.model_list.currentItem().text() == "resnet18"
    QTest.keyClicks(dialog.model_filter, "mobilenet v3")
    visible = [dialog.model_list.item(i).text() for i in range(dialog.model_list.count())
               if not dialog.model_list.item(i).isHidden()]
    assert visible == ["mobilenet_v3_small"]
    dialog.pretrained.setChecked(False)
    click_import(dialog)
    assert dialog.request() == ImportRequest(TORCHVISION, "mobilenet_v3_small", classes=7, pretrained=False)


def test_a_wrong_input_shape_is_said_in_the_dialog_which_stays_open(qtbot):
    dialog = ImportDialog(MODELS, 10)
    qtbot.addWidget(dialog)
    dialog.show()
    dialog.select(MODULE)
    dialog.module_spec.setText("mypackage.nets:Net")
    dialog.input_shape.setText("three by 32")
    click_import(dialog)
    assert dialog.request() is None and dialog.isVisible()
    assert dialog.error.text().startswith("Input shape: whole numbers separated by commas")
    dialog.select(ONNX)
    click_import(dialog)
    assert dialog.error.text() == "Choose an ONNX file."


@pytest.mark.timeout(120)
def test_an_import_that_fails_says_why_and_keeps_the_open_project(make_window, qtbot, monkeypatch, tmp_path):
    window = make_window(load_template("lenet5"))
    before = window.project
    errors = []
    monkeypatch.setattr(window, "_show_error", lambda title, message: errors.append((title, message)))
    monkeypatch.setattr(window, "_ask_import_request",
                        lambda classes: ImportRequest(ONNX, str(tmp_path / "missing.onnx")))
    window.import_model_action.trigger()
    qtbot.waitUntil(lambda: window._import_task is None, timeout=30_000)
    assert window.project is before
    assert errors and errors[0][0] == "Cannot import the model" and "missing.onnx" in errors[0][1]
    assert "Error" not in errors[0][1].split(":")[0]  # a reason, not an exception's name


def test_typing_at_once_filters_the_list(qtbot):
    dialog = ImportDialog(MODELS, 10)
    qtbot.addWidget(dialog)
    dialog.show()
    qtbot.waitExposed(dialog)
    assert dialog.focusWidget() is dialog.model_filter

"""The Training panel's Starting weights: what it says, and changing the source as one undoable step."""

from __future__ import annotations

import pytest
from PySide6.QtCore import Qt
from PySide6.QtTest import QTest

from dlstudio.core.project import load_project, load_template
from dlstudio.core.project.pretrained import WeightsSource
from gui_helpers import train_recorded_run


def test_a_new_project_trains_from_random_weights(make_window):
    window = make_window(load_template("lenet5"))
    box = window.starting_weights
    assert box.source_label.text() == "Random (trained from scratch)"
    assert box.detail_label.isHidden() and not box.random_action.isEnabled()


def test_a_weights_file_inside_the_project_folder_is_kept_relative_and_the_change_undoes(make_window, monkeypatch,
                                                                                          tmp_path):
    project = load_template("lenet5")
    from dlstudio.core.project import save_project

    save_project(project, tmp_path / "digits.dlstudio")
    window = make_window(load_project(tmp_path / "digits.dlstudio"))
    (tmp_path / "weights").mkdir()
    monkeypatch.setattr(window, "_ask_weights_file", lambda: str(tmp_path / "weights" / "backbone.safetensors"))
    window.starting_weights.file_action.trigger()
    assert window.project.weights == WeightsSource("file", path="weights/backbone.safetensors")
    box = window.starting_weights
    assert box.source_label.text() == "From file weights/backbone.safetensors"
    assert box.detail_label.text() == "pretrained layers learn at 0.1× the rate"
    assert window.is_dirty() and window.undo_stack.undoText() == "Start from file weights/backbone.safetensors"
    window.undo_stack.undo()
    assert window.project.weights is None and box.source_label.text() == "Random (trained from scratch)"
    window.undo_stack.redo()
    window.starting_weights.random_action.trigger()
    assert window.project.weights is None and window.undo_stack.undoText() == "Train from random weights"


@pytest.mark.timeout(120)
def test_start_from_an_earlier_run_lists_the_runs_with_their_accuracy(make_window, monkeypatch, tmp_path):
    project = load_template("mlp")
    project.training["epochs"] = 1
    run_dir = train_recorded_run(project, tmp_path / "mlp.dlstudio", epochs=1)
    window = make_window(load_project(tmp_path / "mlp.dlstudio"))
    offered = []

    def pick_first(labels):
        offered.extend(labels)
        return labels[0]

    monkeypatch.setattr(window, "_ask_starting_run", pick_first)
    window.starting_weights.run_action.trigger()
    assert offered[0].startswith(run_dir.name) and "validation accuracy" in offered[0]
    assert offered[-1] == "Another run folder…"
    assert window.project.weights == WeightsSource("run", path=f"mlp.runs/{run_dir.name}")
    window.save()
    assert load_project(tmp_path / "mlp.dlstudio").weights == window.project.weights


def test_frozen_layers_and_the_rate_multiplier_are_said_by_name(make_window):
    project = load_template("lenet5")
    project.set_weights(WeightsSource("torchvision", model="resnet18", weights="IMAGENET1K_V1"))
    window = make_window(project)
    box = window.starting_weights
    assert box.source_label.text() == "From torchvision resnet18 (IMAGENET1K_V1)"
    conv = [node for node in window.project.graph if node.type == "Conv2d"]
    window.project.frozen.set([conv[0].id], True)
    assert box.detail_label.text() == f"pretrained layers learn at 0.1× the rate; 1 frozen layer ({conv[0].name})"
    window.project.set_setting("training", "pretrained_lr_multiplier", 1.0)
    assert box.detail_label.text().startswith("pretrained layers learn at the full rate")


def test_only_frozen_layers_with_weights_are_counted(make_window):
    """Freezing a block freezes its activations and pooling too; they hold nothing, so they are not counted."""
    window = make_window(load_template("lenet5"))
    graph = window.project.graph
    conv = next(node for node in graph if node.type == "Conv2d")
    weightless = [node.id for node in graph if node.type in ("ReLU", "MaxPool2d", "Flatten")]
    assert weightless
    window.project.frozen.set([conv.id, *weightless], True)
    assert window.starting_weights.detail_label.text() == f"1 frozen layer ({conv.name})"


def test_another_project_shows_its_own_starting_weights(make_window):
    project = load_template("lenet5")
    project.set_weights(WeightsSource("file", path="a.pth"))
    window = make_window(project)
    assert window.starting_weights.source_label.text() == "From file a.pth"
    window.set_project(load_template("mlp"))
    assert window.starting_weights.source_label.text() == "Random (trained from scratch)"
    project.set_weights(None)  # the old project no longer reaches the panel
    assert window.starting_weights.project is window.project


def test_the_change_button_opens_its_menu_with_the_three_choices(make_window, qtbot):
    window = make_window(load_template("lenet5"))
    window.training_dock.raise_()
    button = window.starting_weights.change_button
    texts = [action.text() for action in button.menu().actions() if not action.isSeparator()]
    assert texts == ["From a Weights File…", "From an Earlier Run…", "Random Weights (from Scratch)"]
    assert button.isVisible() and button.isEnabled()


def test_a_classifier_sized_for_other_classes_is_fitted_to_the_data_in_one_undo_step(make_window, qtbot):
    from dlstudio.core.project.head import find_head

    project = load_template("lenet5")
    output_id, head_id = find_head(project.graph)
    project.graph.set_param(head_id, "out_features", 1000)  # as an ImageNet network arrives
    project.graph.set_param(output_id, "classes", 1000)
    window = make_window(project)
    window.data_panel.show()
    button = window.starting_weights.head_button
    head = window.project.graph.node(head_id)
    window.training_dock.raise_()
    qtbot.waitUntil(button.isVisible, timeout=30_000)  # once the data preview has counted the digits' classes
    assert button.text() == f"Fit {head.name} to 10 classes"
    QTest.mouseClick(button, Qt.MouseButton.LeftButton)
    assert head.params["out_features"] == 10 and window.project.graph.node(output_id).params["classes"] == 10
    assert not button.isVisible() and window.undo_stack.undoText() == f"Fit {head.name} to 10 classes"
    assert window.totals_label.text().endswith("0 errors")
    window.undo_stack.undo()
    assert head.params["out_features"] == 1000 and window.project.graph.node(output_id).params["classes"] == 1000
    assert button.isVisible()

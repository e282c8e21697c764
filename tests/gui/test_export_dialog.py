"""File › Export Model: the dialog writes the chosen format, checks it, and shows the result."""

from __future__ import annotations

import json

import pytest
from PySide6.QtCore import Qt
from PySide6.QtTest import QTest

from dlstudio.core.project import load_project, load_template
from dlstudio.gui.export_dialog import ExportDialog
from gui_helpers import train_recorded_run


@pytest.fixture(scope="module")
def trained(tmp_path_factory):
    folder = tmp_path_factory.mktemp("export")
    project = load_template("mlp")
    project.training["epochs"] = 1
    run_dir = train_recorded_run(project, folder / "digits.dlstudio", epochs=1)
    return folder, run_dir


def open_dialog(make_window, qtbot, trained):
    folder, _ = trained
    window = make_window(load_project(folder / "digits.dlstudio"))
    dialog = ExportDialog(window.project, window._trained_runs(), window)
    qtbot.addWidget(dialog)
    dialog.show()
    return window, dialog


def export(qtbot, dialog) -> None:
    QTest.mouseClick(dialog.export_button, Qt.MouseButton.LeftButton)
    qtbot.waitUntil(lambda: dialog.task is None, timeout=60_000)


@pytest.mark.timeout(180)
def test_onnx_is_written_checked_and_the_check_is_shown(make_window, qtbot, trained):
    folder, run_dir = trained
    window, dialog = open_dialog(make_window, qtbot, trained)
    assert dialog.run_box.currentText().startswith(run_dir.name)  # the newest trained run by default
    dialog.select_format("onnx")
    assert dialog.path_edit.text() == str(folder / "digits.onnx")
    export(qtbot, dialog)
    text = dialog.result_label.text()
    assert text.startswith(f"Wrote digits.onnx with the weights of run {run_dir.name}"), text
    assert "✓ Verified on" in text and "validation samples: max abs difference" in text
    assert (folder / "digits.onnx").is_file() and dialog.folder_button.isVisible()
    preprocess = json.loads((folder / "preprocess.json").read_text())
    assert len(preprocess["class_names"]) == 10
    assert dialog.error_label.text() == ""


@pytest.mark.timeout(180)
def test_torchscript_and_safetensors_one_after_the_other_from_the_same_dialog(make_window, qtbot, trained):
    folder, _ = trained
    window, dialog = open_dialog(make_window, qtbot, trained)
    for key, suffix in (("torchscript", ".pt"), ("safetensors", ".safetensors")):
        dialog.select_format(key)
        assert dialog.path_edit.text().endswith(f"digits{suffix}")
        export(qtbot, dialog)
        assert "✓ Verified on" in dialog.result_label.text(), dialog.error_label.text()
        assert (folder / f"digits{suffix}").is_file()


@pytest.mark.timeout(180)
def test_the_training_script_needs_no_run(make_window, qtbot, tmp_path):
    window = make_window(load_template("mlp"))
    dialog = ExportDialog(window.project, [], window)
    qtbot.addWidget(dialog)
    dialog.select_format("onnx")
    assert not dialog.export_button.isEnabled()
    assert dialog.error_label.text() == "Train the network first: this format carries a run's trained weights."
    dialog.select_format("script")
    dialog.path_edit.setText(str(tmp_path / "train_mlp.py"))
    assert dialog.export_button.isEnabled()
    export(qtbot, dialog)
    assert dialog.result_label.text().startswith("Wrote train_mlp.py: a standalone training script")
    source = (tmp_path / "train_mlp.py").read_text()
    assert "import torch" in source and "dlstudio" not in source.split('"""', 2)[-1].split("import")[0]


@pytest.mark.timeout(180)
def test_a_refused_export_says_why_and_leaves_no_file(make_window, qtbot, trained, tmp_path):
    window, dialog = open_dialog(make_window, qtbot, trained)
    dialog.select_format("onnx")
    target = tmp_path / "no-such-folder" / "model.onnx"
    dialog.path_edit.setText(str(target))
    export(qtbot, dialog)
    assert dialog.error_label.text().startswith("Not exported: "), dialog.result_label.text()
    assert "Error" not in dialog.error_label.text().split(":")[1]  # a reason, not an exception's name
    assert not target.exists() and not dialog.folder_button.isVisible()


def test_file_export_model_opens_the_dialog_with_the_trained_runs(make_window, monkeypatch, trained):
    folder, run_dir = trained
    window = make_window(load_project(folder / "digits.dlstudio"))
    seen = []
    monkeypatch.setattr(window, "_open_export_dialog", seen.append)
    window.export_model_action.trigger()
    assert [run for _, run in seen[0]] == [run_dir]
    assert window.export_model_action.shortcut().toString() == "Ctrl+E"

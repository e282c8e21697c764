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


@pytest.mark.timeout(180)
def test_an_existing_file_is_replaced_only_when_the_person_agrees(make_window, qtbot, trained, tmp_path,
                                                                  monkeypatch):
    from dlstudio.gui import export_dialog

    window, dialog = open_dialog(make_window, qtbot, trained)
    dialog.select_format("onnx")
    target = tmp_path / "model.onnx"
    target.write_bytes(b"another model's file")
    (tmp_path / "preprocess.json").write_text('{"another": "model"}\n', encoding="utf-8")
    dialog.path_edit.setText(str(target))
    asked = []

    def answer(reply):
        def question(parent, title, text, *args):
            asked.append(text)
            return reply
        return question

    monkeypatch.setattr(export_dialog.QMessageBox, "question", answer(export_dialog.QMessageBox.StandardButton.Cancel))
    assert not dialog.start_export() and dialog.task is None
    assert asked and asked[0].startswith("model.onnx already exists") and "preprocess.json" in asked[0]
    assert target.read_bytes() == b"another model's file"
    monkeypatch.setattr(export_dialog.QMessageBox, "question", answer(export_dialog.QMessageBox.StandardButton.Yes))
    export(qtbot, dialog)
    assert "✓ Verified on" in dialog.result_label.text(), dialog.error_label.text()
    assert target.read_bytes() != b"another model's file"
    preprocess = json.loads((tmp_path / "preprocess.json").read_text(encoding="utf-8"))
    assert len(preprocess["class_names"]) == 10  # replaced with this model's, as the question said
    assert "written beside it" in dialog.result_label.text()


@pytest.mark.timeout(180)
def test_a_preprocess_json_of_another_model_is_kept_and_the_result_says_it_is_not_this_ones(
        make_window, qtbot, trained, tmp_path, monkeypatch):
    from dlstudio.gui import export_dialog

    monkeypatch.setattr(export_dialog.QMessageBox, "question", lambda *args: pytest.fail("nothing to replace"))
    window, dialog = open_dialog(make_window, qtbot, trained)
    for key in ("safetensors", "script"):
        folder = tmp_path / key
        folder.mkdir()
        (folder / "preprocess.json").write_text('{"another": "model"}\n', encoding="utf-8")
        dialog.select_format(key)
        dialog.path_edit.setText(str(folder / f"model{export_dialog.FORMATS[key][1]}"))
        export(qtbot, dialog)
        text = dialog.result_label.text()
        assert "it describes another export (another model or run), not this one" in text, text
        assert "already describes" not in text
        assert (folder / "preprocess.json").read_text(encoding="utf-8") == '{"another": "model"}\n'


@pytest.mark.timeout(180)
def test_a_file_chosen_in_the_file_dialog_is_not_asked_about_twice_and_a_planted_link_writes_nothing(
        make_window, qtbot, trained, tmp_path, monkeypatch):
    from dlstudio.gui import export_dialog

    monkeypatch.setattr(export_dialog.QMessageBox, "question", lambda *args: pytest.fail("asked twice"))
    window, dialog = open_dialog(make_window, qtbot, trained)
    dialog.select_format("torchscript")
    target = tmp_path / "chosen.pt"
    target.write_bytes(b"old")
    monkeypatch.setattr(export_dialog.QFileDialog, "getSaveFileName", lambda *args: (str(target), ""))
    dialog._browse()  # the file dialog confirms replacing an existing file itself
    export(qtbot, dialog)
    assert "✓ Verified on" in dialog.result_label.text(), dialog.error_label.text()
    assert target.read_bytes() != b"old"

    links = tmp_path / "links"
    links.mkdir()
    victim = tmp_path / "victim.txt"
    victim.write_text("keep me\n", encoding="utf-8")
    (links / "preprocess.json").symlink_to(victim)
    dialog.path_edit.setText(str(links / "model.pt"))
    export(qtbot, dialog)
    error = dialog.error_label.text()
    assert error.startswith("Not exported: ") and "preprocess.json" in error and "symbolic link" in error, error
    assert not (links / "model.pt").exists() and victim.read_text(encoding="utf-8") == "keep me\n"


@pytest.mark.timeout(180)
def test_a_network_edited_since_the_run_says_the_export_is_the_runs(make_window, qtbot, trained, tmp_path):
    window, dialog = open_dialog(make_window, qtbot, trained)
    dialog.select_format("safetensors")
    dialog.path_edit.setText(str(tmp_path / "model.safetensors"))
    export(qtbot, dialog)
    assert "Note:" not in dialog.result_label.text()
    linear = next(node for node in window.project.graph if node.type == "Linear")
    window.project.graph.set_param(linear.id, "out_features", 77)
    dialog.path_edit.setText(str(tmp_path / "edited.safetensors"))
    export(qtbot, dialog)
    assert "Note: The network was changed after run " in dialog.result_label.text(), dialog.error_label.text()


@pytest.mark.timeout(180)
def test_the_training_script_takes_the_projects_settings_unless_a_run_is_chosen_and_says_whose(
        make_window, qtbot, trained, tmp_path):
    _, run_dir = trained
    window, dialog = open_dialog(make_window, qtbot, trained)
    linear = next(node for node in window.project.graph if node.type == "Linear")
    window.project.graph.set_param(linear.id, "out_features", 77)  # changed since the run
    dialog.select_format("script")
    assert dialog.run_label.text() == "Settings from:" and dialog._run_dir() is None
    dialog.path_edit.setText(str(tmp_path / "train_now.py"))
    export(qtbot, dialog)
    text = dialog.result_label.text()
    assert text.startswith("Wrote train_now.py: a standalone training script with the project's settings"), text
    assert ", 77)" in (tmp_path / "train_now.py").read_text(encoding="utf-8") and "Note:" not in text
    dialog.run_box.setCurrentIndex(0)  # the run's settings, on request
    dialog.path_edit.setText(str(tmp_path / "train_run.py"))
    export(qtbot, dialog)
    text = dialog.result_label.text()
    assert f"with the settings of run {run_dir.name}" in text and "Note: the network was changed" in text, text
    assert ", 77)" not in (tmp_path / "train_run.py").read_text(encoding="utf-8")
    dialog.select_format("onnx")
    assert dialog.run_label.text() == "Weights from:" and dialog._run_dir() == run_dir


@pytest.mark.timeout(180)
def test_a_planted_link_as_the_file_is_refused_without_asking_and_its_target_is_untouched(
        make_window, qtbot, trained, tmp_path, monkeypatch):
    from dlstudio.gui import export_dialog

    monkeypatch.setattr(export_dialog.QMessageBox, "question", lambda *args: pytest.fail("nothing to ask"))
    window, dialog = open_dialog(make_window, qtbot, trained)
    victim = tmp_path / "victim.txt"
    victim.write_text("keep me\n", encoding="utf-8")
    link = tmp_path / "out" / "model.onnx"
    link.parent.mkdir()
    link.symlink_to(victim)
    dialog.select_format("onnx")
    dialog.path_edit.setText(str(link))
    export(qtbot, dialog)
    error = dialog.error_label.text()
    assert error.startswith(f"Not exported: {link}: cannot write: it is a symbolic link"), error
    assert victim.read_text(encoding="utf-8") == "keep me\n" and link.is_symlink()
    assert sorted(p.name for p in link.parent.iterdir()) == ["model.onnx"]


@pytest.mark.timeout(180)
def test_the_dialog_grows_to_show_every_line_of_a_long_result(make_window, qtbot, trained, tmp_path):
    window, dialog = open_dialog(make_window, qtbot, trained)
    linear = next(node for node in window.project.graph if node.type == "Linear")
    window.project.graph.set_param(linear.id, "out_features", 77)  # adds the note: five lines, some wrapped
    dialog.resize(dialog.minimumWidth(), dialog.sizeHint().height())
    dialog.select_format("onnx")
    dialog.path_edit.setText(str(tmp_path / "long.onnx"))
    export(qtbot, dialog)
    qtbot.wait(50)
    label = dialog.result_label
    assert "Note:" in label.text()
    assert label.height() >= label.heightForWidth(label.width()), (label.height(), label.heightForWidth(label.width()))
    assert label.geometry().bottom() < dialog.export_button.mapTo(dialog, dialog.export_button.rect().topLeft()).y()


@pytest.mark.timeout(180)
def test_model_code_is_a_format_of_the_dialog_and_file_export_python_code_opens_it(make_window, qtbot, trained,
                                                                                    monkeypatch, tmp_path):
    import runpy

    folder, run_dir = trained
    window = make_window(load_project(folder / "digits.dlstudio"))
    opened = []

    def exec_dialog(dialog):
        opened.append((dialog.format, dialog.path_edit.text(), dialog.run_box.currentText()))
        return 0

    monkeypatch.setattr(ExportDialog, "exec", exec_dialog)
    window.export_python_action.trigger()
    assert opened == [("python", str(folder / "digits.py"), opened[0][2])]
    assert opened[0][2].startswith(run_dir.name)

    window, dialog = open_dialog(make_window, qtbot, trained)
    dialog.select_format("script")
    assert dialog.path_edit.text() == str(folder / "digits_train.py")
    dialog.select_format("python")
    assert dialog.path_edit.text() == str(folder / "digits.py"), "the proposed name follows the format"
    assert dialog.run_label.text() == "For run:"
    dialog.path_edit.setText(str(tmp_path / "net.py"))
    export(qtbot, dialog)
    lines = dialog.result_label.text().splitlines()
    assert lines[0].startswith("Wrote net.py: class Digits (needs torch). Try it with: python net.py"), lines
    assert lines[1].startswith(f"Load run {run_dir.name}'s weights into it from a safetensors export")
    assert (tmp_path / "preprocess.json").is_file()
    namespace = runpy.run_path(str(tmp_path / "net.py"))
    assert sum(p.numel() for p in namespace["Digits"]().parameters()) == 101_770


@pytest.mark.timeout(180)
def test_an_import_not_trained_yet_exports_with_its_starting_weights(make_window, qtbot, tmp_path, monkeypatch):
    import torch
    import torchvision

    from dlstudio.core.importer.torchvision_models import import_torchvision
    from dlstudio.core.project import save_project
    from dlstudio.core.project.pretrained import WeightsSource

    monkeypatch.setenv("TORCH_HOME", str(tmp_path / "torch"))
    cache = tmp_path / "torch" / "hub" / "checkpoints" / "squeezenet1_1-b8a52dc0.pth"
    cache.parent.mkdir(parents=True)
    torch.save(torchvision.models.squeezenet1_1().state_dict(), cache)
    result = import_torchvision("squeezenet1_1", num_classes=1000)
    project = result.project
    project.set_weights(WeightsSource("torchvision", model="squeezenet1_1", weights="IMAGENET1K_V1",
                                      key_map=dict(result.key_map)))
    save_project(project, tmp_path / "imported.dlstudio")
    window = make_window(project)
    dialog = ExportDialog(window.project, window._trained_runs(), window)
    qtbot.addWidget(dialog)
    dialog.show()
    dialog.select_format("onnx")
    assert dialog.run_box.currentText() == ("The starting weights: torchvision squeezenet1_1 (IMAGENET1K_V1) "
                                            "(not trained here)")
    assert dialog.export_button.isEnabled()
    export(qtbot, dialog)
    lines = dialog.result_label.text().splitlines()
    assert lines[0] == ("Wrote imported.onnx with the starting weights from torchvision squeezenet1_1 "
                        "(IMAGENET1K_V1) (not trained here)."), lines
    assert lines[1].startswith("✓") and lines[-1].startswith("Loaded 52 of 52 tensors")
    assert (tmp_path / "imported.onnx").is_file()


def test_an_untitled_projects_export_is_proposed_where_exports_went_last(make_window, qtbot, tmp_path, monkeypatch):
    import platformdirs

    from dlstudio.gui.start_folders import EXPORTS, remember

    documents = tmp_path / "Documents"
    documents.mkdir()
    monkeypatch.setattr(platformdirs, "user_documents_dir", lambda: str(documents))
    window = make_window(load_template("lenet5"))  # untitled: no folder of its own
    dialog = ExportDialog(window.project, [], window)
    qtbot.addWidget(dialog)
    dialog.select_format("python")
    assert dialog.path_edit.text() == str(documents / "LeNet-5.py")
    exports = tmp_path / "exports"
    exports.mkdir()
    remember(EXPORTS, exports / "earlier.onnx")
    again = ExportDialog(window.project, [], window)
    qtbot.addWidget(again)
    again.select_format("python")
    assert again.path_edit.text() == str(exports.resolve() / "LeNet-5.py")

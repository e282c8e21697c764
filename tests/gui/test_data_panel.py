"""The Data panel: source rows, Browse, previews off the GUI thread, undo, problems, superseded loads."""

from __future__ import annotations

import threading
from pathlib import Path

import pytest
from PIL import Image
from PySide6.QtCore import Qt
from PySide6.QtGui import QUndoStack
from PySide6.QtTest import QTest

from dlstudio.core.errors import ProjectError
from dlstudio.core.project import load_template
from dlstudio.gui.commands import SetSettingCommand
from dlstudio.gui.data_panel import DataPanel

LOAD_TIMEOUT = 15_000


@pytest.fixture
def lenet(tmp_path: Path):
    project = load_template("lenet5")
    project.path = tmp_path / "lenet.dlstudio"
    return project


@pytest.fixture
def make_panel(qtbot):
    """A shown panel wired to an undo stack the way the main window wires it; loads are stopped afterwards."""
    panels: list[DataPanel] = []

    def make(project) -> tuple[DataPanel, QUndoStack]:
        panel = DataPanel()
        qtbot.addWidget(panel)
        stack = QUndoStack(panel)

        def push(key, value):
            try:
                stack.push(SetSettingCommand(project, "data", key, value))
            except ProjectError as error:
                panel.show_refusal(error.message)

        panel.setting_edit_requested.connect(push)
        panel.resize(420, 900)
        panel.show()
        qtbot.waitExposed(panel)
        with qtbot.waitSignal(panel.preview_shown, timeout=LOAD_TIMEOUT):
            panel.set_project(project)
        panels.append(panel)
        return panel, stack

    yield make
    for panel in panels:
        assert panel.cancel_loading(5000)


def _image_folder(root: Path, classes: tuple[str, ...] = ("blue", "red"), per_class: int = 10) -> Path:
    for index, name in enumerate(classes):
        (root / name).mkdir(parents=True)
        for i in range(per_class):
            Image.new("RGB", (20, 16), (40 * index, 20, 200 - 40 * index)).save(root / name / f"{i}.png")
    return root


def _row_visible(panel: DataPanel, key: str) -> bool:
    form = panel.source_form
    if key == "path":
        return form.form.isRowVisible(panel._path_row)
    return form.form.isRowVisible(form.editors[key])


def test_digits_preview_with_lenet5(make_panel) -> None:
    panel, _ = make_panel(load_template("lenet5"))
    preview = panel.preview
    assert sum(panel.counts_chart.totals()) == 1797
    assert panel.split_summary.text() == "1,259 train · 269 validation · 269 test"
    assert preview.images.shape == (80, 28, 28, 1) and set(panel.sample_grid.labels) == set(range(10))
    assert panel.problem_label.isHidden() and not panel.is_loading()
    assert panel.counts_chart.row_text(0) == "0: 124 train · 27 validation · 27 test"
    assert "mean 0.306" in panel.normalization_label.text()


def test_source_switch_shows_only_its_rows(make_panel, lenet, qtbot) -> None:
    panel, stack = make_panel(lenet)
    assert not _row_visible(panel, "path") and not _row_visible(panel, "dataset")
    combo = panel.source_form.editors["source"]
    combo.setFocus()
    with qtbot.waitSignal(panel.preview_shown, timeout=LOAD_TIMEOUT):
        QTest.keyClick(combo, Qt.Key.Key_Down)  # digits -> folder
    assert lenet.data["source"] == "folder" and stack.count() == 1
    assert _row_visible(panel, "path") and not _row_visible(panel, "dataset")
    assert panel.source_form.labels["path"].text() == "Image folder"
    assert "no image folder chosen" in panel.problem_label.text() and panel.problem_label.isVisibleTo(panel)
    QTest.keyClick(combo, Qt.Key.Key_Down)  # -> torchvision
    assert _row_visible(panel, "dataset") and not _row_visible(panel, "label_column")
    QTest.keyClick(combo, Qt.Key.Key_Down)  # -> csv
    assert _row_visible(panel, "label_column") and not _row_visible(panel, "dataset")
    assert not panel.prepare_form.form.isRowVisible(panel.prepare_form.editors["augment_hflip"])
    assert panel.augmented_box.isHidden()
    stack.undo()
    stack.undo()
    stack.undo()
    assert combo.currentText() == "digits" and not _row_visible(panel, "path")


def test_browse_sets_a_relative_path_and_lists_skipped_files(make_panel, lenet, qtbot, tmp_path) -> None:
    root = _image_folder(tmp_path / "images")
    (root / "red" / "broken.png").write_text("not an image")
    lenet.graph.set_param("output1", "classes", 2)
    panel, stack = make_panel(lenet)
    lenet.set_setting("data", "source", "folder")
    asked = []

    def choose_folder(title, start):
        asked.append(title)
        return str(root)

    panel.choose_folder = choose_folder
    with qtbot.waitSignal(panel.preview_shown, timeout=LOAD_TIMEOUT,
                          check_params_cb=lambda preview: preview.class_names == ["blue", "red"]):
        QTest.mouseClick(panel.browse_button, Qt.MouseButton.LeftButton)
    assert asked == ["Choose an image folder"]
    assert lenet.data["path"] == "images" and panel.path_edit.text() == "images"
    assert panel.problem_label.isHidden()
    assert panel.preview.images.shape[1:] == (28, 28, 1)
    assert panel.skipped_button.text() == "1 file skipped (unreadable)"
    QTest.mouseClick(panel.skipped_button, Qt.MouseButton.LeftButton)
    assert panel.skipped_list.isVisibleTo(panel) and panel.skipped_list.count() == 1
    assert panel.skipped_list.item(0).text().startswith("red/broken.png — ")


def test_class_count_mismatch_is_shown_with_both_numbers(make_panel, lenet, qtbot, tmp_path) -> None:
    _image_folder(tmp_path / "three", ("a", "b", "c"))
    lenet.data.update(source="folder", path="three")
    panel, _ = make_panel(lenet)
    text = panel.problem_label.text()
    assert "3 classes" in text and "set to 10" in text and "set its classes to 3" in text
    assert panel.problem_label.isVisibleTo(panel)
    # Fixing the Output node clears the problem without the window's help.
    with qtbot.waitSignal(panel.preview_shown, timeout=LOAD_TIMEOUT):
        lenet.graph.set_param("output1", "classes", 3)
    assert panel.problem_label.isHidden()


def test_undo_of_a_setting_edit_refreshes_the_panel(make_panel, lenet, qtbot) -> None:
    panel, stack = make_panel(lenet)
    spin = panel.split_form.editors["val_fraction"]
    with qtbot.waitSignal(panel.preview_shown, timeout=LOAD_TIMEOUT):
        spin.stepUp()  # 0.15 -> 0.20
    assert lenet.data["val_fraction"] == pytest.approx(0.2)
    assert "359 validation" in panel.split_summary.text()
    with qtbot.waitSignal(panel.preview_shown, timeout=LOAD_TIMEOUT):
        stack.undo()
    assert spin.value() == pytest.approx(0.15)
    assert panel.split_summary.text() == "1,259 train · 269 validation · 269 test"


def test_shuffle_and_augmented_change_the_samples(make_panel, lenet, qtbot) -> None:
    lenet.data["augment_rotation"] = 30.0
    panel, _ = make_panel(lenet)
    first = panel.preview.images.copy()
    with qtbot.waitSignal(panel.preview_shown, timeout=LOAD_TIMEOUT):
        QTest.mouseClick(panel.shuffle_button, Qt.MouseButton.LeftButton)
    shuffled = panel.preview.images.copy()
    assert (shuffled != first).any()
    with qtbot.waitSignal(panel.preview_shown, timeout=LOAD_TIMEOUT):
        panel.augmented_box.click()
    assert (panel.preview.images != shuffled).any() and list(panel.preview.labels) == list(panel.sample_grid.labels)
    assert "augmented" in panel.sample_caption.text()


def test_a_newer_request_supersedes_an_older_one(make_panel, lenet, qtbot, monkeypatch, tmp_path) -> None:
    from dlstudio.core.data import preview as preview_module

    _image_folder(tmp_path / "slow")
    _image_folder(tmp_path / "fast", ("x", "y", "z"))
    panel, _ = make_panel(lenet)
    gate = threading.Event()
    real_load = preview_module.load_source

    def gated_load(settings, *args, **kwargs):
        if settings["path"] == "slow":
            assert gate.wait(10)  # held until the newer request has been shown
        return real_load(settings, *args, **kwargs)

    monkeypatch.setattr(preview_module, "load_source", gated_load)
    shown = []
    panel.preview_shown.connect(lambda preview: shown.append(preview.class_names))
    lenet.data.update(source="folder", path="slow")
    with qtbot.waitSignal(panel.loading_changed, timeout=LOAD_TIMEOUT, check_params_cb=bool):
        panel.refresh()
    slow_task = panel._task
    with qtbot.waitSignal(panel.preview_shown, timeout=LOAD_TIMEOUT):
        lenet.set_setting("data", "path", "fast")
    assert shown == [["x", "y", "z"]] and slow_task in panel._retired and slow_task.context.cancelled
    gate.set()
    qtbot.waitUntil(lambda: slow_task not in panel._retired, timeout=LOAD_TIMEOUT)
    assert shown == [["x", "y", "z"]] and panel.preview.class_names == ["x", "y", "z"]
    assert not panel.is_loading() and panel.busy.isHidden()


def test_read_only_locks_the_settings_but_not_the_samples(make_panel, lenet) -> None:
    panel, _ = make_panel(lenet)
    panel.set_read_only(True)
    assert not panel.source_form.editors["source"].isEnabled() and not panel.browse_button.isEnabled()
    assert not panel.split_form.editors["val_fraction"].isEnabled()
    assert panel.shuffle_button.isEnabled()
    panel.set_read_only(False)
    assert panel.browse_button.isEnabled() and panel.prepare_form.editors["normalize"].isEnabled()


def test_fractions_that_leave_nothing_to_train_are_refused_in_place(make_panel, lenet) -> None:
    panel, stack = make_panel(lenet)
    lenet.set_setting("data", "test_fraction", 0.5)
    panel.split_form.editors["val_fraction"].setValue(0.6)
    assert lenet.data["val_fraction"] == pytest.approx(0.15)
    assert "val_fraction + test_fraction" in panel.split_form.refusal.text()
    assert panel.split_form.editors["val_fraction"].value() == pytest.approx(0.15)

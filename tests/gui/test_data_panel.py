"""The Data panel: source rows, Browse, previews off the GUI thread, undo, problems, superseded loads."""

from __future__ import annotations

import io
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
    assert panel.split_form.refusal.text() == ("Validation and test fractions take 110% of the data (60% + 50%): "
                                               "leave some for training.")
    assert panel.split_form.editors["val_fraction"].value() == pytest.approx(0.15)


def _type_into(spin, text: str) -> None:
    """Select what the spin box shows, type ``text`` and press Enter, as a person does."""
    QTest.keyClick(spin, Qt.Key.Key_A, Qt.KeyboardModifier.ControlModifier)
    QTest.keyClicks(spin, text)
    QTest.keyClick(spin, Qt.Key.Key_Return)


def test_the_split_refusal_names_the_fields_and_goes_once_a_valid_value_is_set(make_panel, lenet, qtbot) -> None:
    panel, stack = make_panel(lenet)
    refusal = panel.split_form.refusal
    validation = panel.split_form.editors["val_fraction"]
    _type_into(validation, "0.9")  # with the test fraction's 0.15: 105%
    assert refusal.isVisibleTo(panel)
    assert refusal.text() == ("Validation and test fractions take 105% of the data (90% + 15%): "
                              "leave some for training.")
    assert "val_fraction" not in refusal.text() and "data:" not in refusal.text()
    assert lenet.data["val_fraction"] == pytest.approx(0.15) and stack.count() == 0
    with qtbot.waitSignal(panel.preview_shown, timeout=LOAD_TIMEOUT):
        _type_into(validation, "0.5")
    assert lenet.data["val_fraction"] == pytest.approx(0.5) and refusal.isHidden()

    # Refused again, then made valid elsewhere (the other field through undo): the refusal goes too.
    _type_into(panel.split_form.editors["test_fraction"], "0.6")
    assert refusal.isVisibleTo(panel) and "110%" in refusal.text()
    with qtbot.waitSignal(panel.preview_shown, timeout=LOAD_TIMEOUT):
        stack.undo()  # val_fraction back to 0.15
    assert refusal.isHidden()


def test_switching_the_source_does_not_carry_the_image_folder_path(make_panel, lenet, qtbot, tmp_path) -> None:
    _image_folder(tmp_path / "images")
    lenet.graph.set_param("output1", "classes", 2)
    lenet.data.update(source="folder", path="images")
    panel, stack = make_panel(lenet)
    combo = panel.source_form.editors["source"]
    assert panel.path_edit.text() == "images"
    combo.setFocus()
    with qtbot.waitSignal(panel.preview_shown, timeout=LOAD_TIMEOUT):
        QTest.keyClick(combo, Qt.Key.Key_Down)  # folder -> torchvision
    assert lenet.data["source"] == "torchvision" and lenet.data["path"] == ""
    assert panel.source_form.labels["path"].text() == "Dataset folder"
    assert panel.path_edit.text() == "" and "default" in panel.path_edit.placeholderText()
    QTest.keyClick(combo, Qt.Key.Key_Down)  # -> csv: not the folder either
    assert lenet.data["source"] == "csv" and panel.path_edit.text() == ""
    QTest.keyClick(combo, Qt.Key.Key_Up)
    QTest.keyClick(combo, Qt.Key.Key_Up)  # back to the image folder: its path comes back
    assert lenet.data["source"] == "folder" and lenet.data["path"] == "images"
    assert panel.path_edit.text() == "images"
    while stack.canUndo():
        stack.undo()
    assert (lenet.data["source"], lenet.data["path"]) == ("folder", "images")


def test_a_source_switch_is_one_edit_for_a_window_that_takes_several(qtbot, lenet, tmp_path) -> None:
    from dlstudio.gui.commands import MacroCommand

    lenet.data.update(source="folder", path="images")
    panel = DataPanel()
    qtbot.addWidget(panel)
    stack = QUndoStack(panel)
    singles = []
    panel.setting_edit_requested.connect(lambda key, value: singles.append(key))

    def push_all(edits):
        stack.push(MacroCommand("switch source", [SetSettingCommand(lenet, "data", key, value)
                                                  for key, value in edits.items()]))

    panel.settings_edit_requested.connect(push_all)
    panel.set_project(lenet)
    combo = panel.source_form.editors["source"]
    combo.activated.emit(combo.findText("torchvision"))
    assert (lenet.data["source"], lenet.data["path"]) == ("torchvision", "") and stack.count() == 1
    assert singles == []
    stack.undo()
    assert (lenet.data["source"], lenet.data["path"]) == ("folder", "images")
    assert panel.cancel_loading(5000)


def _panel_texts(panel: DataPanel) -> str:
    from PySide6.QtWidgets import QLabel, QLineEdit

    texts = [w.text() for w in panel.findChildren(QLabel) + panel.findChildren(QLineEdit) if w.isVisibleTo(panel)]
    texts += [panel.skipped_button.text()] if panel.skipped_button.isVisibleTo(panel) else []
    return "\n".join(texts)


def test_another_project_shows_nothing_of_the_previous_one(make_panel, lenet, qtbot, tmp_path) -> None:
    root = _image_folder(tmp_path / "pets", ("cat", "dog", "owl"))
    (root / "owl" / "broken.png").write_text("not an image")
    lenet.data.update(source="folder", path="pets")
    panel, _ = make_panel(lenet)
    combo = panel.source_form.editors["source"]
    combo.activated.emit(combo.findText("torchvision"))  # the panel remembers "pets" for the image folder
    with qtbot.waitSignal(panel.preview_shown, timeout=LOAD_TIMEOUT):
        combo.activated.emit(combo.findText("folder"))
    _type_into(panel.split_form.editors["val_fraction"], "0.9")
    before = _panel_texts(panel)
    assert "pets" in before and "3 classes" in before and "1 file skipped" in before and "105%" in before
    assert panel.counts_chart.class_names == ["cat", "dog", "owl"]

    other = load_template("lenet5")  # the bundled digits
    other.path = tmp_path / "digits.dlstudio"
    with qtbot.waitSignal(panel.preview_shown, timeout=LOAD_TIMEOUT):
        panel.set_project(other)
        # At once, before the new samples arrive: none of the old project's samples, counts or messages.
        shown = _panel_texts(panel)
        for old in ("pets", "3 classes", "skipped", "105%", "cat", "owl", "training samples"):
            assert old not in shown, old
        assert panel.sample_grid.mosaic is None and panel.counts_chart.class_names == []
        assert panel.problem_label.isHidden() and panel.split_form.refusal.isHidden()
    assert panel.split_summary.text() == "1,259 train · 269 validation · 269 test"
    assert panel.problem_label.isHidden() and panel.skipped_button.isHidden()
    assert not panel.source_form.form.isRowVisible(panel._path_row)
    assert len(set(panel.sample_grid.labels)) == 10

    # An image folder for this project starts empty: nothing remembered from the other one.
    combo.activated.emit(combo.findText("folder"))
    assert other.data["path"] == "" and panel.path_edit.text() == ""


def _skipped_list_of(make_panel, lenet, qtbot, root, count: int):
    """A panel on the two-class folder ``root`` (with ``count`` skipped files), 300 px wide, its list opened."""
    lenet.graph.set_param("output1", "classes", 2)
    lenet.data.update({"source": "folder", "path": str(root)})
    panel, _ = make_panel(lenet)
    qtbot.waitUntil(lambda: panel.skipped_list.count() == count, timeout=LOAD_TIMEOUT)
    panel.resize(300, 900)
    QTest.mouseClick(panel.skipped_button, Qt.MouseButton.LeftButton)
    qtbot.waitUntil(panel.skipped_list.isVisible)
    return panel, panel.skipped_list


def test_skipped_files_show_their_whole_reason_in_a_narrow_dock(make_panel, lenet, qtbot, tmp_path) -> None:
    # A dock at its usual width: the reasons were cut in the middle ("not a …ge (Truncated File Read)").
    root = _image_folder(tmp_path / "images")
    encoded = io.BytesIO()
    Image.effect_noise((120, 120), 60).convert("RGB").save(encoded, "JPEG")
    (root / "red" / "half.jpg").write_bytes(encoded.getvalue()[:len(encoded.getvalue()) // 2])
    (root / "red" / "empty.jpg").write_bytes(b"")
    (root / "blue" / "notes.txt").write_text("a note")
    panel, listing = _skipped_list_of(make_panel, lenet, qtbot, root, 3)
    metrics = listing.fontMetrics()
    width = listing.viewport().width()

    def heights() -> list[int]:
        return [listing.visualItemRect(listing.item(row)).height() for row in range(listing.count())]

    texts = [listing.item(row).text() for row in range(listing.count())]
    assert any("truncated" in text for text in texts)
    for text, height in zip(texts, heights(), strict=True):
        needed = metrics.boundingRect(0, 0, width - 8, 10_000, Qt.TextFlag.TextWordWrap, text).height()
        assert height >= needed, text  # wrapped, whole: nothing elided
    assert max(heights()) > metrics.height() * 1.5  # the long reason does wrap at this width
    assert sum(heights()) <= listing.viewport().height()  # every entry shown without scrolling
    assert not listing.verticalScrollBar().isVisible()
    narrow = listing.height()
    panel.resize(900, 900)
    qtbot.waitUntil(lambda: listing.height() < narrow)
    assert sum(heights()) <= listing.viewport().height()


def test_a_long_skipped_list_shows_eight_whole_entries_and_scrolls(make_panel, lenet, qtbot, tmp_path) -> None:
    root = _image_folder(tmp_path / "images")
    for index in range(12):
        (root / "red" / f"empty{index:02d}.jpg").write_bytes(b"")
    panel, listing = _skipped_list_of(make_panel, lenet, qtbot, root, 12)
    qtbot.waitUntil(lambda: listing.verticalScrollBar().isVisible())
    assert panel.skipped_button.text() == "12 files skipped (unreadable)"
    bottom = listing.viewport().height()
    assert listing.visualItemRect(listing.item(7)).bottom() < bottom <= listing.visualItemRect(listing.item(8)).top()


def test_the_skipped_files_say_which_were_not_images_and_which_could_not_be_read(make_panel, lenet, qtbot,
                                                                                 tmp_path) -> None:
    root = _image_folder(tmp_path / "images")
    (root / "red" / "notes.txt").write_text("about the red ones")
    (root / "blue" / "readme.md").write_text("about the blue ones")
    lenet.graph.set_param("output1", "classes", 2)
    lenet.data.update({"source": "folder", "path": str(root)})
    panel, _ = make_panel(lenet)
    qtbot.waitUntil(lambda: panel.skipped_list.count() == 2, timeout=LOAD_TIMEOUT)
    assert panel.skipped_button.text() == "2 files skipped (not images)"
    (root / "red" / "broken.png").write_text("not an image")
    panel.refresh()
    qtbot.waitUntil(lambda: panel.skipped_list.count() == 3, timeout=LOAD_TIMEOUT)
    assert panel.skipped_button.text() == "3 files skipped (2 not images, 1 unreadable)"

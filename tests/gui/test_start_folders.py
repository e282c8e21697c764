"""Where file dialogs open: the person's own folders and the folder they used last, never the process's cwd."""

from __future__ import annotations

from pathlib import Path

import platformdirs
import pytest
from PySide6.QtWidgets import QFileDialog

from dlstudio.core.project import save_project
from dlstudio.gui.start_folders import IMAGES, PROJECTS, remember, start_folder


@pytest.fixture
def personal_folders(tmp_path, monkeypatch):
    """Documents and Pictures folders of a made-up person, so the tests never look at the real ones."""
    documents, pictures = tmp_path / "Documents", tmp_path / "Pictures"
    documents.mkdir()
    pictures.mkdir()
    monkeypatch.setattr(platformdirs, "user_documents_dir", lambda: str(documents))
    monkeypatch.setattr(platformdirs, "user_pictures_dir", lambda: str(pictures))
    return documents, pictures


def _capture(monkeypatch, name: str, answer):
    """Replace QFileDialog.<name> with one that records the folder or path it was told to start in."""
    seen: list[str] = []

    def dialog(parent, title, start="", *rest, **kwargs):
        seen.append(start)
        return answer

    monkeypatch.setattr(QFileDialog, name, staticmethod(dialog))
    return seen


def test_a_templates_first_save_proposes_its_title_in_documents(make_window, personal_folders, monkeypatch):
    documents, _ = personal_folders
    window = make_window()
    assert window._open_template("mlp")
    assert "Shallow MLP" in window.windowTitle()
    seen = _capture(monkeypatch, "getSaveFileName", ("", ""))
    window._ask_save_path()
    assert seen == [str(documents / "Shallow MLP.dlstudio")]


def test_open_starts_where_the_last_project_was_saved_or_opened(make_window, personal_folders, tmp_path,
                                                                 monkeypatch):
    window = make_window()
    folder = tmp_path / "work" / "nets"
    folder.mkdir(parents=True)
    monkeypatch.setattr(window, "_ask_save_path", lambda: str(folder / "mine.dlstudio"))
    assert window.save_as()
    seen = _capture(monkeypatch, "getOpenFileName", ("", ""))
    window._ask_open_path()
    assert seen == [str(folder.resolve())]

    other = tmp_path / "elsewhere"
    other.mkdir()
    save_project(window.project, other / "copy.dlstudio")
    assert window.open_file(other / "copy.dlstudio")
    window._ask_open_path()
    assert seen[-1] == str(other.resolve()), "opening a project is remembered too"


def test_a_remembered_folder_that_is_gone_falls_back_to_documents(make_window, personal_folders, tmp_path):
    documents, pictures = personal_folders
    gone = tmp_path / "gone"
    gone.mkdir()
    remember(PROJECTS, gone / "old.dlstudio")
    assert start_folder(PROJECTS) == str(gone.resolve())
    gone.rmdir()
    assert start_folder(PROJECTS) == str(documents)
    assert start_folder(IMAGES) == str(pictures), "pictures start in Pictures"


def test_images_opened_to_classify_are_remembered_for_the_next_image_dialog(make_window, personal_folders,
                                                                            tmp_path, monkeypatch):
    _, pictures = personal_folders
    window = make_window()
    view = window.inspect.classify
    photos = tmp_path / "holiday"
    photos.mkdir()
    seen = _capture(monkeypatch, "getOpenFileNames", ([str(photos / "a.png")], ""))
    assert view.choose_images() == [str(photos / "a.png")]
    assert seen == [str(pictures)]
    folders = _capture(monkeypatch, "getExistingDirectory", "")
    assert view.choose_folder() == ""
    assert folders == [str(photos.resolve())], "the folder dialog starts where the images came from"
    assert window.inspect.evaluate.choose_folder() == ""
    assert folders[-1] == str(photos.resolve()), "a cancelled dialog changes nothing"


def test_an_imported_model_is_named_after_its_source_until_saved(make_window, personal_folders, monkeypatch):
    from dlstudio.core.importer.torchvision_models import import_torchvision
    from dlstudio.gui.import_dialog import ImportRequest

    documents, _ = personal_folders
    window = make_window()
    request = ImportRequest("torchvision", "squeezenet1_1", classes=10)
    window._show_imported(request, import_torchvision("squeezenet1_1", num_classes=10))
    assert "squeezenet1_1" in window.windowTitle()
    seen = _capture(monkeypatch, "getSaveFileName", ("", ""))
    window._ask_save_path()
    assert seen == [str(documents / "squeezenet1_1.dlstudio")]

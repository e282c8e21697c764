"""What `dlstudio` shows when it starts: the welcome page without a file, the project with one."""

from __future__ import annotations

import pytest
from PySide6.QtCore import QSettings
from PySide6.QtWidgets import QApplication

from dlstudio.core.project import load_template, save_project


@pytest.fixture
def launch(monkeypatch):
    """Run ``dlstudio.app.main`` without its event loop; returns the windows it made."""
    import dlstudio.gui.error_report as error_report
    import dlstudio.gui.settings as settings
    from dlstudio import app
    from dlstudio.gui.main_window import MainWindow

    QSettings().clear()  # a first launch
    windows: list[MainWindow] = []
    original_show = MainWindow.show
    monkeypatch.setattr(QApplication, "exec", lambda self: 0)
    monkeypatch.setattr(settings, "apply_identity", lambda: None)  # keep the tests' settings store
    monkeypatch.setattr(error_report, "install_error_handler", lambda window: None)
    monkeypatch.setattr(MainWindow, "offer_recovery", lambda self: False)
    monkeypatch.setattr(MainWindow, "show", lambda self: (windows.append(self), original_show(self)))

    def run(*argv: str) -> MainWindow:
        assert app.main(list(argv)) == 0
        return windows[-1]

    yield run
    for window in windows:
        window.undo_stack.setClean()
        window.close()
        window.deleteLater()


def test_every_launch_without_a_file_opens_on_the_welcome_page_with_the_recent_projects(launch, tmp_path):
    first = launch()
    assert first.is_welcome_shown()
    save_project(load_template("mlp"), tmp_path / "digits.dlstudio")
    assert first.open_file(tmp_path / "digits.dlstudio")
    first.close()

    again = launch()
    assert again.is_welcome_shown(), "a returning person starts from their recent projects too"
    assert str((tmp_path / "digits.dlstudio").resolve()) in again.recent_files()
    assert [item.file_name for item in again.welcome.recent_items] == ["digits.dlstudio"]

    with_file = launch(str(tmp_path / "digits.dlstudio"))
    assert not with_file.is_welcome_shown() and with_file.project.name == "digits"

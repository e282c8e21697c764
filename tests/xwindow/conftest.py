"""Real-window test support: Qt's xcb platform on an Xvfb display, dialogs that answer Cancel.

This folder runs in its own process (tests/gui/test_real_window.py starts it with
QT_QPA_PLATFORM=xcb and pytest-xvfb's display); the main, offscreen run leaves it out
(tests/conftest.py).
"""

from __future__ import annotations

import os

# Run directly (`pytest tests/xwindow`), the platform is still xcb, never offscreen.
os.environ.setdefault("QT_QPA_PLATFORM", "xcb")

import pytest  # noqa: E402
from PySide6.QtCore import QCoreApplication, QEvent, QSettings  # noqa: E402
from PySide6.QtGui import QDesktopServices  # noqa: E402
from PySide6.QtWidgets import QApplication, QFileDialog, QInputDialog, QMessageBox  # noqa: E402

from dlstudio.gui.settings import apply_identity  # noqa: E402

WINDOW_SIZE = (1600, 1000)
# Qt's own short-lived top-level helpers that are not ours to close.
_IGNORED_TOP_LEVELS = {"QTipLabel"}


def pytest_configure(config):
    if os.environ.get("QT_QPA_PLATFORM") != "xcb":
        raise pytest.UsageError("tests/xwindow needs QT_QPA_PLATFORM=xcb (run it through tests/gui/test_real_window.py)")


@pytest.fixture(scope="session", autouse=True)
def isolated_settings(qapp, tmp_path_factory):
    """Every QSettings() reads and writes an ini file under a temporary folder."""
    folder = tmp_path_factory.mktemp("qsettings")
    QSettings.setDefaultFormat(QSettings.Format.IniFormat)
    QSettings.setPath(QSettings.Format.IniFormat, QSettings.Scope.UserScope, str(folder))
    apply_identity("dlstudio-xwindow-tests", "dlstudio-xwindow-tests")
    yield folder
    QApplication.clipboard().clear()


@pytest.fixture
def dialogs(monkeypatch):
    """Qt's static dialogs answer Cancel (or OK for a plain message) at once; each call is recorded."""
    shown: list[str] = []

    def fake(kind: str, answer):
        def call(*args, **kwargs):
            title = next((a for a in args if isinstance(a, str)), "")
            shown.append(f"{kind}({title!r})")
            return answer
        return staticmethod(call)

    button = QMessageBox.StandardButton
    for name, answer in (("question", button.Cancel), ("warning", button.Ok), ("information", button.Ok),
                         ("critical", button.Ok), ("about", None), ("aboutQt", None)):
        monkeypatch.setattr(QMessageBox, name, fake(f"QMessageBox.{name}", answer))
    for name, answer in (("getOpenFileName", ("", "")), ("getOpenFileNames", ([], "")),
                         ("getSaveFileName", ("", "")), ("getExistingDirectory", ""),
                         ("getOpenFileUrl", (None, "")), ("getSaveFileUrl", (None, ""))):
        monkeypatch.setattr(QFileDialog, name, fake(f"QFileDialog.{name}", answer))
    for name, answer in (("getItem", ("", False)), ("getText", ("", False)), ("getInt", (0, False)),
                         ("getDouble", (0.0, False)), ("getMultiLineText", ("", False))):
        monkeypatch.setattr(QInputDialog, name, fake(f"QInputDialog.{name}", answer))
    monkeypatch.setattr(QDesktopServices, "openUrl", fake("QDesktopServices.openUrl", True))
    return shown


def _top_levels() -> set:
    return {w for w in QApplication.topLevelWidgets() if w.metaObject().className() not in _IGNORED_TOP_LEVELS}


@pytest.fixture
def make_window(qtbot, dialogs):
    """A factory of 1600x1000 main windows shown on the X display; afterwards closes them and fails on leaks."""
    from dlstudio.gui.main_window import MainWindow

    QSettings().clear()  # each test starts from a first launch
    before = _top_levels()
    windows: list = []

    def make(project=None):
        window = MainWindow(project)
        windows.append(window)
        window.resize(*WINDOW_SIZE)
        window.move(0, 0)
        window.show()
        qtbot.waitExposed(window)
        window.activateWindow()
        window.raise_()
        qtbot.waitUntil(window.isActiveWindow, timeout=5000)
        window.view.setFocus()
        return window

    yield make
    for window in windows:
        try:
            if window.training.is_running():
                window.training.stop_and_wait()
            window.undo_stack.setClean()  # no close prompt at teardown
            window.close()
            window.deleteLater()
        except RuntimeError:
            pass  # already deleted by the test
    QCoreApplication.sendPostedEvents(None, QEvent.Type.DeferredDelete)
    QCoreApplication.processEvents()
    leaked = [w for w in _top_levels() - before if w.isVisible()]
    names = [f"{w.metaObject().className()} {w.objectName()!r}" for w in leaked]
    assert not leaked, f"top-level widgets left open: {names}"


@pytest.fixture(scope="session")
def finished_run_project(tmp_path_factory):
    """A saved project with one finished run: a tiny CNN trained on the bundled digits for 2 epochs (~1 s).

    The same recipe as tests/gui/conftest.py's digits_run (gui_helpers.train_recorded_run); returns the
    project file.
    """
    import sys
    from pathlib import Path

    sys.path.insert(0, str(Path(__file__).resolve().parent.parent / "gui"))  # the GUI tests' helpers
    from gui_helpers import chain_project, train_recorded_run

    project = chain_project(("Input", {"shape": [1, 12, 12]}), ("Conv2d", {"out_channels": 4, "kernel_size": 3}),
                            ("ReLU", {}), ("Flatten", {}), ("Linear", {"out_features": 10}),
                            ("Output", {"task": "classification", "classes": 10}))
    project.data = {"source": "digits"}
    project.training = {"epochs": 50, "batch_size": 64}  # Train in the test runs long enough to pause and stop
    project_path = tmp_path_factory.mktemp("finished_run") / "digits.dlstudio"
    train_recorded_run(project, project_path, epochs=2)
    return project_path

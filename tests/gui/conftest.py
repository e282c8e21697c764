"""GUI test support: offscreen Qt, settings kept away from the user's, a window fixture that checks for leaks."""

from __future__ import annotations

import os

os.environ.setdefault("QT_QPA_PLATFORM", "offscreen")  # before Qt is imported anywhere
# The user's folders (autosaved recovery copies, the error log) go to a temporary folder, never the real ones.
import tempfile  # noqa: E402

_USER_FOLDERS = tempfile.mkdtemp(prefix="dlstudio-tests-")
os.environ["XDG_DATA_HOME"] = os.path.join(_USER_FOLDERS, "data")
os.environ["XDG_STATE_HOME"] = os.path.join(_USER_FOLDERS, "state")

import pytest  # noqa: E402
from PySide6.QtCore import QCoreApplication, QEvent, QSettings  # noqa: E402
from PySide6.QtWidgets import QApplication  # noqa: E402

from dlstudio.gui.settings import apply_identity  # noqa: E402

# Qt's own short-lived top-level helpers that are not ours to close.
_IGNORED_TOP_LEVELS = {"QTipLabel"}


@pytest.fixture(scope="session", autouse=True)
def isolated_settings(qapp, tmp_path_factory):
    """Every QSettings() in the tests reads and writes an ini file under a temporary folder."""
    folder = tmp_path_factory.mktemp("qsettings")
    QSettings.setDefaultFormat(QSettings.Format.IniFormat)
    QSettings.setPath(QSettings.Format.IniFormat, QSettings.Scope.UserScope, str(folder))
    apply_identity("dlstudio-tests", "dlstudio-tests")
    yield folder


@pytest.fixture(scope="session", autouse=True)
def clipboard_cleared_at_exit(qapp):
    """Qt's offscreen platform crashes at interpreter exit (SIGSEGV, exit 139) when the
    clipboard still holds QMimeData, as after the copy/paste tests (PySide6 6.11; the xcb
    platform and plain text are fine). Empty it while Qt is still whole."""
    yield
    QApplication.clipboard().clear()


@pytest.fixture(autouse=True)
def modal_dialogs_fail_instead_of_blocking(monkeypatch):
    """A modal dialog nobody answers would hang the suite until its timeout: fail the test at once instead.

    Tests answer dialogs by replacing the window's ``_ask_*``/``_show_*`` methods (or the static
    QMessageBox function they expect); anything else that opens a modal loop is a test bug.
    """
    from PySide6.QtWidgets import QDialog, QFileDialog, QInputDialog, QMessageBox

    def blocked(kind):
        def fail(*args, **kwargs):
            texts = [str(arg) for arg in args if isinstance(arg, str)]
            pytest.fail(f"a modal {kind} would block the test: {' / '.join(texts)[:200]}")
        return fail

    for name in ("question", "warning", "information", "critical", "about"):
        monkeypatch.setattr(QMessageBox, name, staticmethod(blocked(f"QMessageBox.{name}")))
    for name in ("getOpenFileName", "getOpenFileNames", "getSaveFileName", "getExistingDirectory"):
        monkeypatch.setattr(QFileDialog, name, staticmethod(blocked(f"QFileDialog.{name}")))
    for name in ("getItem", "getText", "getInt", "getDouble"):
        monkeypatch.setattr(QInputDialog, name, staticmethod(blocked(f"QInputDialog.{name}")))
    monkeypatch.setattr(QMessageBox, "exec", lambda self: blocked("message box")(self.windowTitle(), self.text()))
    monkeypatch.setattr(QDialog, "exec", lambda self: blocked("dialog")(self.windowTitle()))


def _top_levels() -> set:
    return {w for w in QApplication.topLevelWidgets() if w.metaObject().className() not in _IGNORED_TOP_LEVELS}


@pytest.fixture
def make_window(qtbot):
    """A factory of shown main windows; afterwards closes them all and fails on leaked top-level widgets."""
    from dlstudio.gui.main_window import MainWindow

    QSettings().clear()  # each test starts from a first launch
    before = _top_levels()
    windows: list[MainWindow] = []

    def make(project=None, show: bool = True) -> MainWindow:
        window = MainWindow(project)
        windows.append(window)
        if show:
            window.show()
            qtbot.waitExposed(window)
            window.activateWindow()
            # Shortcuts only reach the active window; offscreen activation arrives as an event.
            qtbot.waitUntil(window.isActiveWindow, timeout=3000)
            window.view.setFocus()
        return window

    yield make
    for window in windows:
        try:
            window.undo_stack.setClean()  # no close prompt at teardown
            window.close()
            window.deleteLater()
        except RuntimeError:
            pass  # already deleted by the test
    QCoreApplication.sendPostedEvents(None, QEvent.Type.DeferredDelete)
    QCoreApplication.processEvents()
    leaked = [w for w in _top_levels() - before]
    names = [f"{w.metaObject().className()} {w.objectName()!r} visible={w.isVisible()}" for w in leaked]
    assert not leaked, f"top-level widgets left open: {names}"


@pytest.fixture(scope="session")
def digits_run(tmp_path_factory):
    """A real run folder of a tiny CNN trained on the bundled digits (12x12 inputs, 2 epochs, ~1 s).

    The project file beside it records the run, as after `dlstudio train`.
    """
    from gui_helpers import chain_project, train_recorded_run

    project = chain_project(("Input", {"shape": [1, 12, 12]}), ("Conv2d", {"out_channels": 4, "kernel_size": 3}),
                            ("ReLU", {}), ("Flatten", {}), ("Linear", {"out_features": 10}),
                            ("Output", {"task": "classification", "classes": 10}))
    project.data = {"source": "digits"}
    return train_recorded_run(project, tmp_path_factory.mktemp("digits_run") / "digits.dlstudio", epochs=2)


@pytest.fixture
def session(qtbot, digits_run):
    """A ModelSession with the digits run loaded; afterwards every task it started must have ended."""
    from dlstudio.gui.inspect.model_session import ModelSession

    session = ModelSession()
    with qtbot.waitSignal(session.model_loaded, timeout=20_000):
        session.load(digits_run)
    yield session
    assert session.cancel_all()

"""Errors a person can see: a failing slot gives a short message, a logged traceback, and a window still running.

pytest-qt turns exceptions in Qt slots and virtual methods into test failures by
replacing sys.excepthook during each test; these tests switch that off
(``qt_no_exception_capture``) so that the handler under test sees them.
"""

from __future__ import annotations

import sys
import threading

import pytest
from PySide6.QtCore import QObject, Signal
from PySide6.QtWidgets import QMessageBox, QWidget

from dlstudio.core.errors import DlstudioError
from dlstudio.gui import error_report
from dlstudio.gui.error_report import ErrorReporter, activity, install_error_handler, log_path, short_message

pytestmark = pytest.mark.qt_no_exception_capture


class Emitter(QObject):
    fired = Signal()


@pytest.fixture(autouse=True)
def log_folder(tmp_path, monkeypatch):
    """platformdirs points at tmp_path: nothing is written to the real user folders."""
    for variable in ("XDG_STATE_HOME", "XDG_DATA_HOME", "XDG_CACHE_HOME"):
        monkeypatch.setenv(variable, str(tmp_path / variable.lower()))
    assert str(log_path()).startswith(str(tmp_path))
    return log_path().parent


@pytest.fixture
def shown(monkeypatch):
    """The messages the dialog was asked to show (instead of showing it)."""
    messages: list[tuple[str, str]] = []
    monkeypatch.setattr(ErrorReporter, "show_dialog", lambda self, message, details: messages.append(
        (message, details)))
    return messages


@pytest.fixture
def handler(qapp):
    hooks = (sys.excepthook, threading.excepthook)
    reporter = install_error_handler(lambda: None)
    yield reporter
    error_report.uninstall_error_handler()
    assert (sys.excepthook, threading.excepthook) == hooks


def _explode() -> None:
    raise ValueError("the learning rate must be positive")


def test_an_error_in_a_slot_is_logged_and_shown_briefly(handler, shown, capsys):
    emitter = Emitter()
    emitter.fired.connect(_explode)
    emitter.fired.emit()  # PySide reports the slot's exception through sys.excepthook and goes on

    assert len(shown) == 1
    message, details = shown[0]
    assert message == "Something went wrong: the learning rate must be positive"
    assert "ValueError" not in message
    assert "Traceback (most recent call last)" in details and "_explode" in details
    log = log_path().read_text(encoding="utf-8")
    assert log.startswith("==== 20")  # a timestamp
    assert message in log and "Traceback (most recent call last)" in log and "_explode" in log
    assert "the learning rate must be positive" in capsys.readouterr().err  # stderr keeps the traceback too

    emitter.fired.emit()  # still working: the next error is reported too, appended to the same log
    assert len(shown) == 2
    assert log_path().read_text(encoding="utf-8").count("Traceback (most recent call last)") == 2


def test_activity_names_what_the_person_asked_for(handler, shown):
    @activity("saving the project")
    def save() -> None:
        raise OSError(13, "Permission denied", "/home/ann/net.dlstudio")

    emitter = Emitter()
    emitter.fired.connect(save)
    emitter.fired.emit()
    assert shown[0][0] == "Something went wrong while saving the project: Permission denied: /home/ann/net.dlstudio"


@pytest.mark.parametrize(("exc", "reason"), [
    (DlstudioError("Conv1 expects (N, C, H, W); received (N, 784)"), "Conv1 expects (N, C, H, W); received (N, 784)"),
    (KeyError("conv1"), "'conv1' was not found"),
    (MemoryError(), "the computer ran out of memory"),
    (RuntimeError(), "an unexpected problem inside dlstudio"),
    (RuntimeError("first line\n  second line"), "first line"),
    (ValueError("x" * 500), "x" * 199 + "…"),
])
def test_short_messages_are_one_plain_line(exc, reason):
    assert short_message(exc) == f"Something went wrong: {reason}"


def test_an_error_in_a_python_thread_is_shown_on_the_gui_thread(qtbot, handler, shown):
    thread = threading.Thread(target=_explode, name="loader")
    thread.start()
    thread.join()
    qtbot.waitUntil(lambda: len(shown) == 1, timeout=3000)
    assert shown[0][0] == "Something went wrong: the learning rate must be positive"
    assert "Thread: loader" in log_path().read_text(encoding="utf-8")


def test_an_error_while_reporting_goes_to_stderr_only(handler, monkeypatch, capsys):
    def broken_dialog(self, message, details):
        raise RuntimeError("the dialog is broken")

    monkeypatch.setattr(ErrorReporter, "show_dialog", broken_dialog)
    emitter = Emitter()
    emitter.fired.connect(_explode)
    emitter.fired.emit()  # no recursion, nothing raised into Qt
    err = capsys.readouterr().err
    assert "the error report itself failed" in err and "the dialog is broken" in err
    assert "the learning rate must be positive" in err
    assert "the learning rate must be positive" in log_path().read_text(encoding="utf-8")


def test_the_log_is_rotated_at_its_cap(handler, shown, monkeypatch):
    monkeypatch.setattr(error_report, "MAX_LOG_BYTES", 3000)
    emitter = Emitter()
    emitter.fired.connect(_explode)
    for _ in range(10):
        emitter.fired.emit()
    assert len(shown) == 10
    assert log_path().stat().st_size <= 3000
    assert log_path().with_name("dlstudio.log.1").exists()


def test_the_real_dialog_does_not_block_and_shows_one_at_a_time(qtbot, handler):
    window = QWidget()
    qtbot.addWidget(window)
    handler._parent_getter = lambda: window
    emitter = Emitter()
    emitter.fired.connect(_explode)
    emitter.fired.emit()
    emitter.fired.emit()
    box = handler.dialog
    assert isinstance(box, QMessageBox) and box.isVisible() and box.parent() is window
    assert box.text() == "Something went wrong: the learning rate must be positive"
    assert "Traceback (most recent call last)" in box.detailedText()
    assert "1 more error followed" in box.informativeText() and str(log_path()) in box.informativeText()
    assert window.findChildren(QMessageBox) == [box]
    box.accept()
    qtbot.waitUntil(lambda: handler.dialog is None, timeout=3000)

"""Errors a person can see: an exception that escapes a slot becomes a short message, not a silent console line.

:func:`install_error_handler` replaces ``sys.excepthook`` (slots, event handlers,
timers: PySide reports their exceptions through it) and ``threading.excepthook``
(Python threads). Each unexpected error is

* written with a timestamp and its traceback to :func:`log_path` (appended; the
  file is rotated at :data:`MAX_LOG_BYTES`, one older file kept),
* echoed to stderr, as Python would have,
* shown in a dialog that does not block: "Something went wrong while saving the
  project: <reason>", the traceback under Details, the window still running.

Code that knows what the user asked for says so with :class:`activity`; the
message then names it. Nothing here may itself raise into Qt: an error while
reporting is written to stderr only.
"""

from __future__ import annotations

import contextlib
import datetime
import os
import platform
import re
import sys
import threading
import traceback
from collections.abc import Callable
from pathlib import Path
from types import TracebackType

from PySide6.QtCore import QObject, Qt, QThread, QUrl, Signal, Slot
from PySide6.QtGui import QDesktopServices
from PySide6.QtWidgets import QApplication, QMessageBox, QWidget

LOG_NAME = "dlstudio.log"
MAX_LOG_BYTES = 1_000_000
MAX_REASON_CHARS = 200
DIALOG_TITLE = "Something went wrong"

# The attribute an exception carries once it left an `activity` block (the words for "while …").
_ACTIVITY_ATTRIBUTE = "_dlstudio_activity"

_log_lock = threading.Lock()


def log_path() -> Path:
    """The error log: ``dlstudio.log`` in the user's log folder (it may not exist yet)."""
    import platformdirs

    return Path(platformdirs.user_log_dir("dlstudio", appauthor=False)) / LOG_NAME


def show_log_folder() -> bool:
    """Open the log's folder in the file manager (made first if missing); False if that failed."""
    folder = log_path().parent
    try:
        folder.mkdir(parents=True, exist_ok=True)
    except OSError:
        return False
    return QDesktopServices.openUrl(QUrl.fromLocalFile(str(folder)))


def write_log(text: str) -> Path:
    """Append ``text`` under a timestamp to the log, rotating it first when it would pass the cap.

    Raises OSError when the folder cannot be made or written.
    """
    path = log_path()
    stamp = datetime.datetime.now().astimezone().isoformat(timespec="seconds")
    entry = f"==== {stamp} ====\n{text.rstrip()}\n\n"
    data = entry.encode("utf-8", errors="replace")
    with _log_lock:
        path.parent.mkdir(parents=True, exist_ok=True)
        try:
            size = path.stat().st_size
        except FileNotFoundError:
            size = 0
        if size and size + len(data) > MAX_LOG_BYTES:
            os.replace(path, path.with_name(LOG_NAME + ".1"))  # one older file kept, the one before dropped
        with open(path, "ab") as file:
            file.write(data)
    return path


class activity(contextlib.ContextDecorator):  # noqa: N801 - reads as words: `with activity("saving the project"):`
    """What the user asked for, so an error escaping the block says "Something went wrong while <text>".

    A context manager or a decorator. The innermost block names the error; the
    exception itself passes on unchanged.
    """

    def __init__(self, text: str) -> None:
        self.text = text

    def __enter__(self) -> activity:
        return self

    def __exit__(self, exc_type, exc: BaseException | None, tb) -> bool:
        if exc is not None and not hasattr(exc, _ACTIVITY_ATTRIBUTE):
            with contextlib.suppress(AttributeError, TypeError):  # a few built-in exceptions refuse attributes
                setattr(exc, _ACTIVITY_ATTRIBUTE, self.text)
        return False


def plain_reason(exc: BaseException) -> str:
    """One line that says what failed, in words (never the exception's class name)."""
    from dlstudio.core.errors import DlstudioError

    if isinstance(exc, DlstudioError):
        text = exc.message
    elif isinstance(exc, MemoryError):
        text = "the computer ran out of memory"
    elif isinstance(exc, OSError) and exc.strerror:
        text = exc.strerror + (f": {exc.filename}" if exc.filename else "")
    elif isinstance(exc, KeyError) and len(exc.args) == 1:
        text = f"{exc.args[0]!r} was not found"
    else:
        text = str(exc)
    lines = [line.strip() for line in text.splitlines() if line.strip()]
    text = re.sub(r"\s+", " ", lines[0]) if lines else ""
    if not text:
        return "an unexpected problem inside dlstudio"
    return text if len(text) <= MAX_REASON_CHARS else text[: MAX_REASON_CHARS - 1] + "…"


def short_message(exc: BaseException) -> str:
    """'Something went wrong while <activity>: <reason>' (or without 'while …' when nobody said)."""
    doing = getattr(exc, _ACTIVITY_ATTRIBUTE, None)
    head = f"Something went wrong while {doing}" if doing else "Something went wrong"
    return f"{head}: {plain_reason(exc)}"


def _environment() -> str:
    from PySide6 import __version__ as pyside_version

    from dlstudio import __version__

    return (f"dlstudio {__version__}, Python {platform.python_version()}, PySide6 {pyside_version}, "
            f"{platform.platform()}")


def _stderr(text: str) -> None:
    stream = sys.stderr or sys.__stderr__  # None under pythonw on Windows
    if stream is not None:
        with contextlib.suppress(Exception):
            stream.write(text if text.endswith("\n") else text + "\n")
            stream.flush()


class ErrorReporter(QObject):
    """The installed hooks; shows one dialog at a time and counts what followed while it was open."""

    # Errors from other threads reach the GUI thread through this queued signal.
    _reported_elsewhere = Signal(str, str)  # message, details

    def __init__(self, parent_getter: Callable[[], QWidget | None] | None = None) -> None:
        super().__init__()
        self._parent_getter = parent_getter
        self._local = threading.local()  # .busy: this thread is reporting (an error now is not reported again)
        self._box: QMessageBox | None = None
        self._more = 0
        self._previous_hooks: tuple | None = None
        self._reported_elsewhere.connect(self._on_reported_elsewhere, Qt.ConnectionType.QueuedConnection)

    # -- hooks -------------------------------------------------------------------

    def install(self) -> None:
        if self._previous_hooks is None:
            self._previous_hooks = (sys.excepthook, threading.excepthook)
            sys.excepthook = self._excepthook
            threading.excepthook = self._threading_excepthook

    def uninstall(self) -> None:
        """Put back the hooks found at install time (if nobody replaced ours since)."""
        if self._previous_hooks is None:
            return
        previous_sys, previous_threading = self._previous_hooks
        if sys.excepthook == self._excepthook:
            sys.excepthook = previous_sys
        if threading.excepthook == self._threading_excepthook:
            threading.excepthook = previous_threading
        self._previous_hooks = None

    def _excepthook(self, exc_type: type[BaseException], exc: BaseException, tb: TracebackType | None) -> None:
        if issubclass(exc_type, KeyboardInterrupt):
            sys.__excepthook__(exc_type, exc, tb)
            return
        self.report(exc, tb)

    def _threading_excepthook(self, args: threading.ExceptHookArgs) -> None:
        if args.exc_type is SystemExit or args.exc_value is None:
            return  # as threading's own hook: a thread that exits on purpose is no error
        name = args.thread.name if args.thread is not None else "a background thread"
        self.report(args.exc_value, args.exc_traceback, thread_name=name)

    # -- reporting ---------------------------------------------------------------

    def report(self, exc: BaseException, tb: TracebackType | None = None, thread_name: str | None = None) -> None:
        """Log ``exc`` and show it (on the GUI thread; from another thread the dialog follows shortly)."""
        if getattr(self._local, "busy", False):
            _stderr("dlstudio: another error while reporting one:\n" + _format(exc, tb))
            return
        self._local.busy = True
        try:
            self._report(exc, tb, thread_name)
        except BaseException as failure:  # noqa: BLE001 - the reporter must never raise into Qt
            _stderr("dlstudio: the error report itself failed:\n" + _format(failure, failure.__traceback__)
                    + "\nThe error it was reporting:\n" + _format(exc, tb))
        finally:
            self._local.busy = False

    def _report(self, exc: BaseException, tb: TracebackType | None, thread_name: str | None) -> None:
        message = short_message(exc)
        details = _format(exc, tb)
        _stderr(details)
        where = thread_name or threading.current_thread().name
        try:
            write_log(f"{message}\n{_environment()}\nThread: {where}\n{details}")
        except OSError as failure:
            _stderr(f"dlstudio: cannot write the error log {log_path()}: {failure}")
        app = QApplication.instance()
        if not isinstance(app, QApplication):
            return  # no window to show it in: stderr and the log have it
        if QThread.currentThread() is app.thread():
            self._show(message, details)
        else:
            self._reported_elsewhere.emit(message, details)

    @Slot(str, str)
    def _on_reported_elsewhere(self, message: str, details: str) -> None:
        self._local.busy = True
        try:
            self._show(message, details)
        except BaseException as failure:  # noqa: BLE001
            _stderr("dlstudio: the error report itself failed:\n" + _format(failure, failure.__traceback__))
        finally:
            self._local.busy = False

    def _show(self, message: str, details: str) -> None:
        if self._box is not None:  # one dialog at a time: say how many more followed
            self._more += 1
            self._box.setInformativeText(self._informative_text())
            return
        self._more = 0
        self.show_dialog(message, details)

    def _informative_text(self) -> str:
        more = (f"{self._more} more error{'s' if self._more != 1 else ''} followed. " if self._more else "")
        return f"{more}dlstudio is still running. The details are also in the log file:\n{log_path()}"

    def show_dialog(self, message: str, details: str) -> None:
        """Show the message (not blocking: no event loop inside the hook); tests replace this."""
        parent = self._parent_getter() if self._parent_getter is not None else None
        if parent is not None and not isinstance(parent, QWidget):
            parent = None
        box = QMessageBox(QMessageBox.Icon.Warning, DIALOG_TITLE, message, QMessageBox.StandardButton.Ok, parent)
        box.setObjectName("error_report")
        box.setAttribute(Qt.WidgetAttribute.WA_DeleteOnClose)
        box.setWindowModality(Qt.WindowModality.WindowModal if parent is not None
                              else Qt.WindowModality.ApplicationModal)
        box.setInformativeText(self._informative_text())
        box.setDetailedText(details)
        log_button = box.addButton("Show Log Folder", QMessageBox.ButtonRole.ActionRole)
        log_button.clicked.connect(show_log_folder)
        box.finished.connect(self._on_box_finished)
        box.destroyed.connect(self._on_box_finished)  # its window went away with it
        self._box = box
        box.show()

    def _on_box_finished(self, *args: object) -> None:
        self._box = None
        self._more = 0

    @property
    def dialog(self) -> QMessageBox | None:
        """The error dialog on screen, if any."""
        return self._box


def _format(exc: BaseException, tb: TracebackType | None) -> str:
    return "".join(traceback.format_exception(type(exc), exc, tb))


_installed: ErrorReporter | None = None


def install_error_handler(parent_getter: Callable[[], QWidget | None] | None = None) -> ErrorReporter:
    """Report unexpected errors to the person at the screen (after the QApplication exists).

    ``parent_getter`` gives the window a dialog should sit over (called at report
    time; None for none). Installing again replaces the earlier reporter.
    """
    global _installed
    if _installed is not None:
        _installed.uninstall()
    _installed = ErrorReporter(parent_getter)
    _installed.install()
    return _installed


def uninstall_error_handler() -> None:
    """Put back the hooks that were there before :func:`install_error_handler`."""
    global _installed
    if _installed is not None:
        _installed.uninstall()
        _installed = None

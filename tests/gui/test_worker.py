"""The thread bridge: results, failures and cancellation arrive on the GUI thread, in order."""

from __future__ import annotations

import threading
import time

from PySide6.QtCore import QThread

from dlstudio.core.errors import ProjectError
from dlstudio.gui.worker import BackgroundTask, TaskContext, run_task


def _count(context: TaskContext, upto: int) -> dict:
    threads = {threading.get_ident()}
    for i in range(upto):
        context.report(i, force=True)
    return {"total": sum(range(upto)), "threads": threads}


def test_result_and_progress_arrive_on_the_gui_thread(qtbot):
    gui_thread = QThread.currentThread()
    received, where = [], []
    task = BackgroundTask(_count, 5)
    task.progress.connect(lambda value: (received.append(value), where.append(QThread.currentThread())))
    with qtbot.waitSignal(task.done, timeout=5000):
        with qtbot.waitSignal(task.finished, timeout=5000) as result:
            task.start()
    assert received == [0, 1, 2, 3, 4]
    assert all(thread is gui_thread for thread in where)  # the lambda ran on the GUI thread
    assert result.args[0]["total"] == 10
    assert threading.get_ident() not in result.args[0]["threads"]  # the work ran elsewhere
    assert not task.is_running()


def _fail(context: TaskContext, message: str) -> None:
    raise ProjectError(f"refused:\n  {message}")


def test_a_core_error_becomes_one_line(qtbot):
    task = BackgroundTask(_fail, "bad  value")
    with qtbot.waitSignal(task.failed, timeout=5000) as failed:
        task.start()
    assert failed.args == ["refused: bad value"]


def _unexpected(context: TaskContext) -> None:
    raise ZeroDivisionError("division by zero")


def test_an_unexpected_error_gives_its_reason_not_its_type(qtbot, capsys):
    task = BackgroundTask(_unexpected)
    with qtbot.waitSignal(task.failed, timeout=5000) as failed:
        task.start()
    assert failed.args == ["unexpected error: division by zero"]  # words a person reads: no exception names
    assert "Traceback" in capsys.readouterr().err  # kept for a bug report, not shown as the message


def _until_cancelled(context: TaskContext) -> int:
    steps = 0
    while True:
        context.check()
        steps += 1
        time.sleep(0.001)


def test_cancel_stops_the_work_at_its_next_check(qtbot):
    task = run_task(_until_cancelled)
    finished = []
    task.finished.connect(finished.append)
    started = time.monotonic()
    with qtbot.waitSignal(task.cancelled, timeout=5000):
        task.cancel()
    assert time.monotonic() - started < 1.0
    assert task.wait(1000) and finished == []


def test_reports_are_throttled_unless_forced():
    sent = []
    context = TaskContext(sent.append, interval=60.0)
    assert context.report(1) is True
    assert context.report(2) is False
    assert context.report(3, force=True) is True
    assert sent == [1, 3]

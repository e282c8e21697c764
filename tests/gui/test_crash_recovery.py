"""Autosave and crash recovery, and a project file changed by another program while the window has it open."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import textwrap
import time
from pathlib import Path

from dlstudio.core.project import load_project, load_template, project_to_doc, save_project
from dlstudio.core.project.recovery import RecoveryStore
from dlstudio.gui import main_window

_CRASHING_WINDOW = textwrap.dedent("""
    import sys
    from PySide6.QtCore import QSettings, QTimer
    from PySide6.QtWidgets import QApplication
    app = QApplication([])
    QSettings.setDefaultFormat(QSettings.Format.IniFormat)
    QSettings.setPath(QSettings.Format.IniFormat, QSettings.Scope.UserScope, sys.argv[2])
    from dlstudio.core.project import load_project
    from dlstudio.gui import main_window
    main_window.AUTOSAVE_IDLE_MS = 300  # the idle pause, shortened
    window = main_window.MainWindow(load_project(sys.argv[1]))
    window.show()
    conv = next(node for node in window.project.graph if node.type == "Conv2d")
    window.set_param(conv.id, "out_channels", 11)
    window.rename_node(conv.id, "edited conv")
    window.project.layout.move(conv.id, 1234.0, 567.0)
    window._on_training_setting_edit_requested("training", "epochs", 7)
    print("edited", flush=True)
    app.exec()
""")


def _comparable(project) -> dict:
    doc = project_to_doc(project)
    doc.pop("runs")
    return doc


def test_a_killed_windows_unsaved_edits_are_restored_by_the_next_one(make_window, qtbot, tmp_path, monkeypatch):
    monkeypatch.setenv("XDG_DATA_HOME", str(tmp_path / "data"))
    path = tmp_path / "net.dlstudio"
    save_project(load_template("lenet5"), path)
    child = subprocess.Popen([sys.executable, "-c", _CRASHING_WINDOW, str(path), str(tmp_path / "settings")],
                             stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
                             env={**os.environ, "QT_QPA_PLATFORM": "offscreen"})
    try:
        assert child.stdout.readline().strip() == "edited", child.stderr.read()
        store = RecoveryStore()
        assert store.folder == tmp_path / "data" / "dlstudio" / "recovery"
        deadline = time.monotonic() + 30
        while not store.entries() and time.monotonic() < deadline:
            time.sleep(0.05)
        assert store.entries(), "the window did not autosave its edits"
        time.sleep(0.3)
    finally:
        child.send_signal(signal.SIGKILL)  # a crash: no clean close, no chance to tidy up
        child.communicate(timeout=10)
    assert load_project(path).training.get("epochs") != 7  # the file itself was never written

    window = make_window(load_project(path))
    asked = []
    monkeypatch.setattr(window, "_ask_restore", lambda entry: asked.append(entry) or "restore")
    assert window.offer_recovery()
    assert [entry.original for entry in asked] == [path]
    conv = next(node for node in window.project.graph if node.type == "Conv2d")
    assert conv.name == "edited conv" and conv.params["out_channels"] == 11
    assert window.project.layout.position(conv.id) == (1234.0, 567.0)
    assert window.project.training["epochs"] == 7 and window.project.path == path
    assert window.is_dirty() and window.isWindowModified()

    # Saving makes the copy unnecessary: it is removed, and the file holds the restored edits.
    restored = _comparable(window.project)
    assert window.save()
    assert _comparable(load_project(path)) == restored
    assert RecoveryStore().entries() == []


def test_discarding_a_recovered_copy_removes_it_and_a_clean_close_leaves_none(make_window, tmp_path, monkeypatch):
    monkeypatch.setenv("XDG_DATA_HOME", str(tmp_path / "data"))
    window = make_window(load_template("mlp"))
    node = next(iter(window.project.graph))
    window.rename_node(node.id, "renamed")
    assert window.autosave() and len(RecoveryStore().entries()) == 1
    window.undo_action.trigger()  # back to the clean state: nothing to recover
    assert RecoveryStore().entries() == []
    window.redo_action.trigger()
    assert window.autosave()

    other = make_window(load_template("mlp"))
    entries = RecoveryStore().entries()
    assert [entry.name for entry in entries] == ["Shallow MLP"]
    assert RecoveryStore().restore(entries[0]).name == "Shallow MLP", "an untitled copy keeps its name"
    monkeypatch.setattr(other, "_ask_restore", lambda entry: "discard")
    monkeypatch.setattr(RecoveryStore, "orphans", lambda self: entries)  # as if the first window had crashed
    assert not other.offer_recovery()
    assert RecoveryStore().entries() == []


def test_a_file_changed_by_another_program_is_offered_for_reload_never_overwritten(make_window, qtbot, tmp_path,
                                                                                   monkeypatch):
    path = tmp_path / "net.dlstudio"
    save_project(load_template("lenet5"), path)
    window = make_window(load_project(path))
    asked = []
    monkeypatch.setattr(window, "_ask_reload_changed_file", lambda: asked.append(True) or False)

    elsewhere = load_project(path)
    elsewhere.description = "saved by another program"
    time.sleep(0.02)
    save_project(elsewhere, path)
    qtbot.waitUntil(lambda: asked == [True], timeout=10_000)
    assert window.project.description != "saved by another program"  # kept, as the person chose

    # Saving now asks before overwriting; refused, the other program's file stays.
    node = next(iter(window.project.graph))
    window.rename_node(node.id, "mine")
    monkeypatch.setattr(window, "_ask_overwrite_changed_file", lambda: False)
    assert not window.save()
    assert load_project(path).description == "saved by another program"

    # Reloading shows the file as the other program saved it.
    monkeypatch.setattr(window, "_ask_reload_changed_file", lambda: True)
    monkeypatch.setattr(window, "_ask_save_changes", lambda: main_window.DISCARD_CHOICE)
    again = load_project(path)
    again.description = "saved again"
    time.sleep(0.02)
    save_project(again, path)
    qtbot.waitUntil(lambda: window.project.description == "saved again", timeout=10_000)
    assert not window.is_dirty()


def test_a_run_the_window_records_is_merged_with_what_another_program_wrote(make_window, qtbot, tmp_path,
                                                                            monkeypatch):
    from dlstudio.core.project.fileformat import update_project_file
    from test_project_switch import _tiny_cnn_project, _train

    path = tmp_path / "net.dlstudio"
    _tiny_cnn_project(path)
    window = make_window(load_project(path))
    monkeypatch.setattr(window, "_ask_reload_changed_file", lambda: False)
    # Meanwhile `dlstudio train` in a terminal recorded a run of its own in the file.
    update_project_file(path, lambda project: project.runs.append("net.runs/20260101-000000"))
    run_dir = _train(qtbot, window)
    assert load_project(path).runs == ["net.runs/20260101-000000", f"net.runs/{run_dir.name}"]


def test_a_read_only_project_is_not_overwritten_and_save_as_is_offered(make_window, tmp_path, monkeypatch):
    path = tmp_path / "net.dlstudio"
    save_project(load_template("mlp"), path)
    before = path.read_bytes()
    window = make_window(load_project(path))
    node = next(iter(window.project.graph))
    window.rename_node(node.id, "renamed")
    path.chmod(0o444)
    offered = []
    monkeypatch.setattr(window, "_ask_save_as_after_error", lambda message: offered.append(message) or True)
    monkeypatch.setattr(window, "_ask_save_path", lambda: str(tmp_path / "copy.dlstudio"))
    try:
        assert window.save()
    finally:
        path.chmod(0o644)
    assert len(offered) == 1 and "read-only" in offered[0]
    assert path.read_bytes() == before
    assert window.project.path == tmp_path / "copy.dlstudio" and not window.is_dirty()
    assert next(n for n in load_project(tmp_path / "copy.dlstudio").graph if n.id == node.id).name == "renamed"

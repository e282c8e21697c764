"""Settings forms: edits become undoable project changes; bad values are refused in place."""

from __future__ import annotations

from PySide6.QtGui import QUndoStack

from dlstudio.core.project import TRAINING_SETTINGS, default_project
from dlstudio.gui.commands import SetSettingCommand
from dlstudio.gui.settings_form import SettingsForm


def _form_for(project, qtbot):
    form = SettingsForm(TRAINING_SETTINGS)
    qtbot.addWidget(form)
    form.set_values(project.training)
    stack = QUndoStack()
    form.edit_requested.connect(
        lambda key, value: stack.push(SetSettingCommand(project, "training", key, value)))
    return form, stack


def test_spinning_a_value_is_one_undo_step(qtbot):
    project = default_project()
    form, stack = _form_for(project, qtbot)
    first = project.training["epochs"]
    spin = form.editors["epochs"]
    for _ in range(3):
        spin.stepUp()
    assert project.training["epochs"] == first + 3
    assert stack.count() == 1  # merged
    stack.undo()
    assert project.training["epochs"] == first


def test_choice_edit_and_refusal(qtbot):
    project = default_project()
    form, stack = _form_for(project, qtbot)
    combo = form.editors["optimizer"]
    combo.activated.emit(combo.findText("sgd"))
    assert project.training["optimizer"] == "sgd"
    spec = form.specs["batch_size"]
    form._commit(spec, 0)  # what a typed 0 would ask for, below the minimum of 1
    assert "Batch size" in form.refusal.text() and not form.refusal.isHidden()
    assert project.training["batch_size"] == 64 and stack.count() == 1

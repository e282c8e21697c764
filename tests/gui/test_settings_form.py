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


def test_settings_that_change_nothing_are_greyed_with_the_reason_and_follow_the_optimizer(make_window):
    from dlstudio.core.project.pretrained import WeightsSource

    window = make_window()
    form = window.training.panel.form
    assert window.project.training["optimizer"] == "adam" and window.project.weights is None
    momentum, multiplier = form.editors["momentum"], form.editors["pretrained_lr_multiplier"]
    assert not momentum.isEnabled() and "SGD and RMSprop" in momentum.toolTip()
    assert not form.labels["momentum"].isEnabled()
    assert not multiplier.isEnabled() and "random weights" in multiplier.toolTip()

    combo = form.editors["optimizer"]
    combo.activated.emit(combo.findText("sgd"))
    assert window.project.training["optimizer"] == "sgd"
    assert momentum.isEnabled() and "Not used now" not in momentum.toolTip()
    window.undo()
    assert not momentum.isEnabled(), "undo greys it again"

    window.project.set_weights(WeightsSource("torchvision", model="resnet18", weights="IMAGENET1K_V1"))
    assert multiplier.isEnabled()
    window.training.panel.set_running(True)
    assert not multiplier.isEnabled() and not form.editors["epochs"].isEnabled()
    window.training.panel.set_running(False)
    assert multiplier.isEnabled() and form.editors["epochs"].isEnabled() and not momentum.isEnabled()

"""Project.set_setting: validated edits of data and training settings, announced by an event."""

from __future__ import annotations

import pytest

from dlstudio.core.errors import ProjectError
from dlstudio.core.project import default_project


def test_set_setting_stores_the_validated_value_and_emits():
    project = default_project()
    seen = []
    project.settings_changed.connect(lambda *args: seen.append(args))
    stored = project.set_setting("training", "epochs", 3)
    assert stored == 3 and project.training["epochs"] == 3
    assert seen == [("training", "epochs", 3)]
    # An int given for a float setting is stored as the float the file format holds.
    assert project.set_setting("training", "learning_rate", 1) == 1.0
    assert isinstance(project.training["learning_rate"], float)


@pytest.mark.parametrize(("section", "key", "value", "message"), [
    ("training", "batch_size", 0, "training.batch_size"),
    ("training", "optimizer", "lbfgs", "training.optimizer"),
    ("data", "nonsense", 1, "unknown setting 'nonsense'"),
    ("data", "val_fraction", 0.9, "nothing left to train on"),
])
def test_refused_setting_leaves_the_project_unchanged(section, key, value, message):
    project = default_project()
    before = (dict(project.data), dict(project.training))
    seen = []
    project.settings_changed.connect(lambda *args: seen.append(args))
    with pytest.raises(ProjectError, match=message):
        project.set_setting(section, key, value)
    assert (project.data, project.training) == before
    assert seen == []

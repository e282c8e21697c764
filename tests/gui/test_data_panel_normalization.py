"""The Data panel's normalization line: the preview's statistics, and whether the project's stored ones still hold."""

from __future__ import annotations

from dlstudio.core.project import NormalizationStats, input_shape, load_template, statistics_basis
from dlstudio.gui.data_panel import DataPanel

LOAD_TIMEOUT = 15_000


def test_the_line_says_where_the_statistics_come_from_and_when_they_are_stale(qtbot, tmp_path) -> None:
    project = load_template("lenet5")
    project.path = tmp_path / "lenet.dlstudio"
    panel = DataPanel()
    qtbot.addWidget(panel)
    panel.show()
    with qtbot.waitSignal(panel.preview_shown, timeout=LOAD_TIMEOUT):
        panel.set_project(project)
    label = panel.normalization_label
    assert label.text().startswith("Normalized with the training split's mean 0.")
    assert label.text().endswith("Stored in the project when training starts.")

    project.normalization = NormalizationStats((0.2,), (0.3,), "lenet.runs/20261123-101500",
                                               statistics_basis(project.data, input_shape(project.graph)))
    panel.show_normalization()
    assert label.text().endswith("Stored in the project from run 20261123-101500.")

    with qtbot.waitSignal(panel.preview_shown, timeout=LOAD_TIMEOUT):
        project.set_setting("data", "split_seed", 4)
    assert label.text().endswith("The project's statistics from run 20261123-101500 are out of date (the split seed "
                                 "changed (0 → 4)); training computes new ones.")

    with qtbot.waitSignal(panel.preview_shown, timeout=LOAD_TIMEOUT):
        project.set_setting("data", "normalize", False)
    assert label.isHidden()  # nothing is normalized: nothing to say
    assert panel.cancel_loading(5000)

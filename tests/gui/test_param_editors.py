"""Typed parameter editors: what a number spin box shows, keeps and steps to."""

from __future__ import annotations

import pytest
from PySide6.QtCore import Qt
from PySide6.QtTest import QTest

from dlstudio.core.layers import get_spec
from dlstudio.core.project.settings import DATA_SETTINGS, TRAINING_SETTINGS
from dlstudio.gui.param_editors import make_editor, set_editor_value

_SETTINGS = {spec.name: spec for spec in (*DATA_SETTINGS, *TRAINING_SETTINGS)}


def _editor(qtbot, spec):
    committed: list = []
    editor = make_editor(spec, lambda _spec, value: committed.append(value), lambda _spec, message: None)
    qtbot.addWidget(editor)
    return editor, committed


@pytest.mark.parametrize(("name", "value", "text"), [
    ("val_fraction", 0.15, "0.15"), ("val_fraction", 0.0, "0"), ("test_fraction", 0.5, "0.5"),
    ("learning_rate", 0.001, "0.001"), ("learning_rate", 3e-4, "0.0003"), ("learning_rate", 1e-8, "0.00000001"),
    ("augment_rotation", 15.0, "15"), ("momentum", 0.999, "0.999"),
])
def test_a_number_shows_only_the_decimals_it_needs(qtbot, name, value, text) -> None:
    editor, committed = _editor(qtbot, _SETTINGS[name])
    set_editor_value(editor, value)
    assert editor.text() == text and editor.value() == pytest.approx(value)
    assert committed == []  # showing a value is not an edit


def test_a_layer_parameter_too(qtbot) -> None:
    spec = next(param for param in get_spec("BatchNorm2d").params if param.name == "eps")
    editor, _ = _editor(qtbot, spec)
    set_editor_value(editor, 1e-5)
    assert editor.text() == "0.00001"


def test_what_is_typed_keeps_its_digits(qtbot) -> None:
    editor, committed = _editor(qtbot, _SETTINGS["val_fraction"])
    set_editor_value(editor, 0.15)
    editor.show()
    editor.lineEdit().selectAll()
    QTest.keyClicks(editor, "0.12345")
    QTest.keyClick(editor, Qt.Key.Key_Return)
    assert committed == [pytest.approx(0.12345, abs=1e-12)]  # four decimals would have kept 0.1235
    assert editor.text() == "0.12345"


def test_arrows_step_fractions_by_a_twentieth_and_small_rates_by_a_tenth_of_their_size(qtbot) -> None:
    fraction, committed = _editor(qtbot, _SETTINGS["val_fraction"])
    set_editor_value(fraction, 0.15)
    fraction.stepUp()
    assert fraction.text() == "0.2" and committed == [pytest.approx(0.2)]
    rate, committed = _editor(qtbot, _SETTINGS["learning_rate"])
    set_editor_value(rate, 0.001)
    rate.stepUp()
    assert rate.text() == "0.0011"
    rate.stepDown()
    rate.stepDown()
    assert rate.text() == "0.0009" and committed[-1] == pytest.approx(0.0009)  # down from 0.001, not to 0

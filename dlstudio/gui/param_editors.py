"""Editors for typed values described by a ParamSpec: layer parameters, data and training settings.

One factory so that the inspector and the settings panels look and parse
alike. An editor reports a candidate value through ``commit(spec, value)``;
the caller validates it and either accepts it (as an undo command) or refuses
it and puts the editor back with :func:`set_editor_value`.
"""

from __future__ import annotations

import math
import re
from collections.abc import Callable
from typing import Any

from PySide6.QtCore import QEvent, QObject, Qt
from PySide6.QtWidgets import (
    QAbstractSpinBox, QCheckBox, QComboBox, QDoubleSpinBox, QLabel, QLineEdit, QSpinBox, QWidget,
)

from dlstudio.core.errors import ParamError
from dlstudio.core.layers.spec import BOOL, CHOICE, FLOAT, INT, INTS, PADDING, SIZE, ParamSpec

_INT_LIMIT = 2**31 - 1

Commit = Callable[[ParamSpec, Any], None]
Refuse = Callable[[ParamSpec, str], None]


def parse_param_text(spec: ParamSpec, text: str) -> Any:
    """Turn what a person typed into a parameter value: ``"3"``, ``"3, 3"``, ``"3x3"``, ``"same"``, ``"auto"``."""
    text = text.strip()
    if spec.kind == "str":
        return text
    if spec.auto and text.lower() in ("", "auto"):
        return None
    if spec.kind == PADDING and text in spec.choices:
        return text
    parts = [p for p in re.split(r"[\s,x×\[\]()]+", text) if p]
    try:
        numbers = [int(p) for p in parts]
    except ValueError:
        raise ParamError(f"{spec.display_name}: expected whole numbers, got {text!r}", param=spec.name) from None
    if spec.kind in (SIZE, PADDING) and len(numbers) == 1:
        return numbers[0]
    return numbers


def param_text(value: Any) -> str:
    """How a value shows in a text editor."""
    if value is None:
        return "auto"
    if isinstance(value, (list, tuple)):
        return ", ".join(str(v) for v in value)
    return str(value)


def _decimals(param: ParamSpec) -> int:
    # The digits a value keeps (what is typed is rounded to them); the text shows only those it needs.
    # Learning rates go down to 1e-8; show enough digits for them without a scientific-notation editor.
    low = param.min if param.min is not None else 0.0
    return 10 if 0 < low < 1e-4 else 6


def _single_step(param: ParamSpec) -> float:
    """The arrow-key step for values of ordinary size: 0.05 for fractions, 1 up to 100s (degrees), 0.1 otherwise."""
    high = param.max if param.max is not None else 10.0
    return 0.05 if high <= 1 else 1.0 if high >= 100 else 0.1


class CompactDoubleSpinBox(QDoubleSpinBox):
    """A QDoubleSpinBox that writes as few decimals as its value needs: 0.15, 0.001, 2, not 0.1500.

    Values much smaller than the single step (a learning rate of 0.001 with
    a step of 0.1) step by a tenth of their order of magnitude instead, so an
    arrow key nudges them rather than jumping to the step.
    """

    def textFromValue(self, value: float) -> str:
        text = super().textFromValue(value)
        point = self.locale().decimalPoint()
        return text.rstrip("0").rstrip(point) if point in text else text

    def stepBy(self, steps: int) -> None:
        value = abs(self.value())
        if 0 < value < self.singleStep():
            # One order of magnitude below the value: 0.001 steps to 0.0011 and down to 0.0009, never to 0.
            step = max(10.0 ** (math.floor(math.log10(value)) - 1), 10.0 ** -self.decimals())
            self.setValue(self.value() + steps * step)
            return
        super().stepBy(steps)


class _WheelGuard(QObject):
    """Turns of the mouse wheel change the guarded field only while it has the keyboard focus.

    An unfocused field ignores the wheel, so Qt hands it on to the parents:
    the panel's scroll area scrolls instead of the field changing under the pointer.
    """

    def eventFilter(self, watched: QObject, event: QEvent) -> bool:
        if event.type() == QEvent.Type.Wheel and isinstance(watched, QWidget) and not watched.hasFocus():
            event.ignore()
            return True  # not for the field; ignored, so the parent widgets get it
        return False


def guard_wheel(widget: QWidget) -> QWidget:
    """Make a spin box or combo box take the wheel only when focused (click or Tab focuses it, the wheel does not).

    Every value editor of the settings panels and the inspector goes through here.
    """
    widget.setFocusPolicy(Qt.FocusPolicy.StrongFocus)
    if widget.findChild(_WheelGuard, options=Qt.FindChildOption.FindDirectChildrenOnly) is None:
        widget.installEventFilter(_WheelGuard(widget))
    return widget


def make_editor(param: ParamSpec, commit: Commit, refuse: Refuse) -> QWidget:
    """A widget that edits one value of ``param``; edits call ``commit`` (or ``refuse`` for unparsable text).

    A recorded value (an imported module's facts) gets a label whose text can be selected, not an editor.
    """
    if param.recorded:
        shown = QLabel()
        shown.setWordWrap(True)
        shown.setTextInteractionFlags(Qt.TextInteractionFlag.TextSelectableByMouse)
        shown.setObjectName(f"param_{param.name}")
        shown.setToolTip(param.help + " (recorded at import)")
        return shown
    if param.kind == INT:
        spin = QSpinBox()
        low = int(param.min) if param.min is not None else -_INT_LIMIT
        if param.auto:
            low -= 1  # one below the minimum stands for "auto"
            spin.setSpecialValueText("auto")
        spin.setRange(low, int(param.max) if param.max is not None else _INT_LIMIT)
        spin.setKeyboardTracking(False)
        spin.valueChanged.connect(lambda value, s=spin, p=param: commit(
            p, None if p.auto and value == s.minimum() else value))
        editor: QWidget = spin
    elif param.kind == FLOAT:
        dspin = CompactDoubleSpinBox()
        dspin.setDecimals(_decimals(param))
        dspin.setRange(param.min if param.min is not None else -1e9, param.max if param.max is not None else 1e9)
        dspin.setSingleStep(_single_step(param))
        dspin.setKeyboardTracking(False)
        dspin.valueChanged.connect(lambda value, p=param: commit(p, value))
        editor = dspin
    elif param.kind == BOOL:
        box = QCheckBox()
        box.toggled.connect(lambda checked, p=param: commit(p, checked))
        editor = box
    elif param.kind == CHOICE:
        combo = QComboBox()
        combo.addItems(list(param.choices))
        combo.activated.connect(lambda index, c=combo, p=param: commit(p, c.itemText(index)))
        editor = combo
    else:
        line = QLineEdit()
        hint = {INTS: "e.g. 1, 28, 28", SIZE: "e.g. 3 or 3, 3",
                PADDING: "e.g. 1, 1, 1 or " + " / ".join(param.choices)}
        line.setPlaceholderText(hint.get(param.kind, ""))

        def commit_text(l: QLineEdit = line, p: ParamSpec = param) -> None:
            try:
                value = parse_param_text(p, l.text())
            except ParamError as error:
                refuse(p, error.message)
                return
            commit(p, value)

        line.editingFinished.connect(commit_text)
        editor = line
    if isinstance(editor, (QAbstractSpinBox, QComboBox)):
        guard_wheel(editor)
    editor.setObjectName(f"param_{param.name}")
    editor.setToolTip(param.help)
    return editor


def set_editor_value(editor: QWidget, value: Any) -> None:
    """Show ``value`` without emitting an edit (a line edit being typed in is left alone)."""
    editor.blockSignals(True)
    try:
        if isinstance(editor, QSpinBox):
            editor.setValue(editor.minimum() if value is None else int(value))
        elif isinstance(editor, QDoubleSpinBox):
            editor.setValue(float(value))
        elif isinstance(editor, QCheckBox):
            editor.setChecked(bool(value))
        elif isinstance(editor, QComboBox):
            editor.setCurrentText(str(value))
        elif isinstance(editor, QLineEdit) and not editor.hasFocus():
            editor.setText(param_text(value))
        elif isinstance(editor, QLabel):
            editor.setText(f"{value:,}" if isinstance(value, int) and not isinstance(value, bool)
                           else param_text(value))
    finally:
        editor.blockSignals(False)

"""A form of data or training settings, generated from their ParamSpec schema.

The form shows a project's values and asks for edits through a signal; the
main window turns an accepted edit into a :class:`SetSettingCommand`, so a
settings change is one undo step like a graph edit. The form checks a value
against its spec first and shows a refusal in place.
"""

from __future__ import annotations

from typing import Any

from PySide6.QtCore import Signal
from PySide6.QtWidgets import QFormLayout, QLabel, QVBoxLayout, QWidget

from dlstudio.core.errors import ParamError, ProjectError
from dlstudio.core.layers.spec import ParamSpec
from dlstudio.gui.param_editors import make_editor, set_editor_value
from dlstudio.gui.theme import ERROR, set_tone


class SettingsForm(QWidget):
    """Editors for ``specs`` (a subset of a settings schema) over a dict of values."""

    edit_requested = Signal(str, object)  # setting name, validated value

    def __init__(self, specs: tuple[ParamSpec, ...], parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.specs = {spec.name: spec for spec in specs}
        self.values: dict[str, Any] = {}
        self.editors: dict[str, QWidget] = {}
        self.labels: dict[str, QLabel] = {}
        self.read_only = False  # while a run trains
        self.inapplicable: dict[str, str] = {}  # setting name -> why it changes nothing just now
        self.form = QFormLayout()
        self.form.setContentsMargins(0, 0, 0, 0)
        for spec in specs:
            editor = make_editor(spec, self._commit, self._refuse)
            label = QLabel(spec.display_name)
            label.setToolTip(spec.help)
            self.form.addRow(label, editor)
            self.editors[spec.name] = editor
            self.labels[spec.name] = label
        self.refusal = QLabel()
        self.refusal.setObjectName("settings_refusal")
        self.refusal.setWordWrap(True)
        set_tone(self.refusal, ERROR)
        self.refusal.hide()
        layout = QVBoxLayout(self)
        layout.setContentsMargins(0, 0, 0, 0)
        layout.addLayout(self.form)
        layout.addWidget(self.refusal)

    def set_values(self, values: dict[str, Any]) -> None:
        """Show ``values`` (the project's dict; read, never written)."""
        self.values = values
        for name, editor in self.editors.items():
            if name in values:
                set_editor_value(editor, values[name])

    def set_row_visible(self, name: str, visible: bool) -> None:
        """Hide settings that do not apply (a CSV label column for an image folder)."""
        self.form.setRowVisible(self.editors[name], visible)

    def set_inapplicable(self, reasons: dict[str, str]) -> None:
        """Grey out the settings that change nothing just now, the reason in their tooltip; enable the rest."""
        self.inapplicable = dict(reasons)
        for name, editor in self.editors.items():
            reason = reasons.get(name)
            editor.setEnabled(not self.read_only and reason is None)
            self.labels[name].setEnabled(reason is None)
            tip = self.specs[name].help + (f"\n\nNot used now: {reason}." if reason else "")
            editor.setToolTip(tip)
            self.labels[name].setToolTip(tip)

    def set_read_only(self, read_only: bool) -> None:
        self.read_only = read_only
        for name, editor in self.editors.items():
            editor.setEnabled(not read_only and name not in self.inapplicable)

    def show_refusal(self, message: str) -> None:
        """Say why an edit was refused (also used by the window for cross-setting rules)."""
        self.refusal.setText(message)
        self.refusal.setVisible(bool(message))
        self.set_values(self.values)  # put the editors back to what the project holds

    def clear_refusal(self) -> None:
        """Hide the last refusal (a valid value was set, here or elsewhere: undo, another field)."""
        self.refusal.clear()
        self.refusal.hide()

    def _commit(self, spec: ParamSpec, value: Any) -> None:
        try:
            value = spec.validate(value)
        except (ParamError, ProjectError) as error:
            self._refuse(spec, error.message)
            return
        self.clear_refusal()  # a valid value: what was refused before no longer stands
        if spec.name in self.values and self.values[spec.name] == value:
            return
        self.edit_requested.emit(spec.name, value)

    def _refuse(self, spec: ParamSpec, message: str) -> None:
        self.show_refusal(message)

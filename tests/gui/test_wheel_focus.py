"""The mouse wheel over a settings form scrolls the panel; only a focused field takes it to change its value."""

from __future__ import annotations

import pytest
from PySide6.QtCore import QPoint, QPointF, Qt
from PySide6.QtGui import QAction
from PySide6.QtTest import QTest
from PySide6.QtWidgets import QAbstractSpinBox, QComboBox, QScrollArea, QWidget

from dlstudio.core.project import load_template
from dlstudio.core.shapes import ShapeInference
from dlstudio.gui.data_panel import DataPanel
from dlstudio.gui.inspector import Inspector
from dlstudio.gui.training_panel import TrainingPanel


def wheel(field: QWidget, notches: int) -> None:
    """Turn the wheel ``notches`` (negative: towards the person, scrolling down) over the middle of ``field``.

    A real turn: it enters through the window, reaches the widget under the pointer (a spin box's line edit)
    and travels up the parents while they ignore it.
    """
    window = field.window()
    position = field.mapTo(window, field.rect().center())
    QTest.wheelEvent(window.windowHandle(), QPointF(position), QPoint(0, 120 * notches))


def value_of(field: QWidget):
    return field.currentText() if isinstance(field, QComboBox) else field.value()


def scroll_area_of(widget: QWidget) -> QScrollArea:
    parent = widget.parentWidget()
    while not isinstance(parent, QScrollArea):
        parent = parent.parentWidget()
    return parent


def assert_wheel_scrolls_instead(field: QWidget) -> None:
    """An unfocused ``field`` keeps its value under the wheel and the scroll area around it moves."""
    assert not field.hasFocus()
    area = scroll_area_of(field)
    area.ensureWidgetVisible(field)
    bar = area.verticalScrollBar()
    assert bar.maximum() > 0, "the panel should be taller than its view for this test"
    before_value, before_scroll = value_of(field), bar.value()
    notches = -1 if before_scroll < bar.maximum() else 1
    wheel(field, notches)
    assert value_of(field) == before_value
    assert (bar.value() > before_scroll) if notches < 0 else (bar.value() < before_scroll)


@pytest.fixture
def training_panel(qtbot):
    owner = QWidget()
    actions = [QAction(text, owner) for text in ("Train", "Pause", "Stop")]
    panel = TrainingPanel(*actions)
    qtbot.addWidget(panel)
    qtbot.addWidget(owner)
    panel.set_settings({"epochs": 15, "optimizer": "adam", "batch_size": 64, "learning_rate": 0.001})
    panel.resize(340, 260)  # shorter than its content: the panel can scroll
    panel.show()
    qtbot.waitExposed(panel)
    return panel


@pytest.mark.parametrize("name", ["epochs", "optimizer", "learning_rate", "batch_size"])
def test_wheel_over_an_unfocused_training_field_scrolls_the_panel(training_panel, name) -> None:
    field = training_panel.form.editors[name]
    assert_wheel_scrolls_instead(field)
    assert not field.hasFocus()
    assert field.focusPolicy() == Qt.FocusPolicy.StrongFocus  # click or Tab focuses it, a wheel turn does not


def test_wheel_changes_a_focused_field(training_panel, qtbot) -> None:
    training_panel.activateWindow()
    qtbot.waitUntil(training_panel.isActiveWindow, timeout=3000)
    epochs = training_panel.form.editors["epochs"]
    scroll_area_of(epochs).ensureWidgetVisible(epochs)
    epochs.setFocus()
    qtbot.waitUntil(epochs.hasFocus, timeout=3000)
    edits = []
    training_panel.edit_requested.connect(lambda key, value: edits.append((key, value)))
    wheel(epochs, -1)
    assert epochs.value() == 14 and edits == [("epochs", 14)]


def test_wheel_over_data_and_inspector_fields_scrolls_too(qtbot) -> None:
    project = load_template("lenet5")
    data = DataPanel()
    qtbot.addWidget(data)
    data.set_project(project)
    data.resize(340, 300)
    data.show()
    qtbot.waitExposed(data)
    for name in ("val_fraction", "split_seed"):
        assert_wheel_scrolls_instead(data.split_form.editors[name])
    assert_wheel_scrolls_instead(data.source_form.editors["source"])
    assert data.cancel_loading(5000)

    inspector = Inspector()
    qtbot.addWidget(inspector)
    inspector.set_model(project.graph, ShapeInference(project.graph))
    conv = next(node.id for node in project.graph.nodes.values() if node.spec.type_id == "Conv2d")
    inspector.show_node(conv)
    inspector.resize(340, 200)
    inspector.show()
    qtbot.waitExposed(inspector)
    out_channels = inspector.editors["out_channels"]
    assert_wheel_scrolls_instead(out_channels)
    assert project.graph.node(conv).params["out_channels"] == out_channels.value()


def test_every_value_editor_takes_the_wheel_only_with_focus(training_panel, qtbot) -> None:
    data = DataPanel()
    qtbot.addWidget(data)
    fields = [w for panel in (training_panel, data) for w in panel.findChildren(QWidget)
              if isinstance(w, (QAbstractSpinBox, QComboBox))]
    assert len(fields) > 10
    assert all(w.focusPolicy() == Qt.FocusPolicy.StrongFocus for w in fields)

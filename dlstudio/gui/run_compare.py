"""Two runs side by side: the settings that differ, how the network differs, and both runs' curves overlaid.

Opened by the Runs panel from rows it already holds (read in the background by
``dlstudio.core.runs_compare.read_run_for_comparison``), so opening it reads no
file. Run A is the older run; its curves are in the first run colour, B's in the
second; train loss is solid and validation dashed, as in the Metrics dock.
"""

from __future__ import annotations

from typing import Any

import numpy as np
import pyqtgraph as pg
from PySide6.QtCore import Qt, Signal
from PySide6.QtGui import QFont, QPalette
from PySide6.QtWidgets import (
    QCheckBox,
    QDialog,
    QDialogButtonBox,
    QHeaderView,
    QLabel,
    QPushButton,
    QSplitter,
    QTabWidget,
    QTreeWidget,
    QTreeWidgetItem,
    QVBoxLayout,
    QWidget,
)

from dlstudio.core.runs_compare import RunComparison, compare_runs, settings_to_apply
from dlstudio.gui.commands import MacroCommand, SetParamCommand, SetSettingCommand, check_param_value
from dlstudio.gui.plots.style import plot_colors, set_axis_label, style_legend, style_plot

_SETTING, _A, _B = range(3)


class RunCompareDialog(QDialog):
    """Runs ``a`` (older) and ``b`` side by side. ``apply_requested(run_dir)``: make a run's settings the project's."""

    apply_requested = Signal(str)

    def __init__(self, a: dict[str, Any], b: dict[str, Any], parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.setObjectName("RunCompareDialog")
        self.comparison: RunComparison = compare_runs(a, b)
        self.run_dirs = (str(a["run_dir"]), str(b["run_dir"]))
        name_a, name_b = self.comparison.a, self.comparison.b
        self.setWindowTitle(f"Compare Runs: {name_a} and {name_b}")
        self.resize(1080, 620)

        self.settings_table = self._settings_table()
        self.same_check = QCheckBox("Show settings that are the same")
        self.same_check.setObjectName("compare_show_same")
        self.same_check.toggled.connect(self._on_same_check_toggled)
        settings_page = QWidget()
        settings_layout = QVBoxLayout(settings_page)
        settings_layout.setContentsMargins(0, 4, 0, 0)
        settings_layout.addWidget(self.settings_table, 1)
        settings_layout.addWidget(self.same_check)
        self.network_table = self._network_table()
        self.tabs = QTabWidget()
        differing = len(self.comparison.differing)
        self.tabs.addTab(settings_page, f"Settings ({differing} differ)" if differing else "Settings (the same)")
        graph = self.comparison.graph
        changes = len(graph.added) + len(graph.removed) + len(graph.changed)
        self.tabs.addTab(self.network_table, f"Network ({changes} changed)" if changes else "Network (the same)")

        self.curves = _CompareCurves(a, b)
        splitter = QSplitter(Qt.Orientation.Horizontal)
        splitter.addWidget(self.tabs)
        splitter.addWidget(self.curves)
        splitter.setStretchFactor(0, 2)
        splitter.setStretchFactor(1, 3)
        splitter.setSizes([440, 620])

        heading = QLabel(f"<b>A</b> {name_a} ({_result_text(a)}) &nbsp;·&nbsp; <b>B</b> {name_b} ({_result_text(b)})")
        heading.setTextFormat(Qt.TextFormat.RichText)
        heading.setWordWrap(True)
        buttons = QDialogButtonBox(QDialogButtonBox.StandardButton.Close)
        buttons.rejected.connect(self.reject)
        self.apply_buttons: dict[str, QPushButton] = {}
        for label, row in (("A", a), ("B", b)):
            button = QPushButton(f"Apply {label}'s Settings")
            button.setToolTip(f"Set the project's training settings to those of the run {row.get('name')} (and its "
                              "layer parameters, when the network has the same layers), as one step to undo")
            button.clicked.connect(lambda _checked=False, run_dir=str(row["run_dir"]): self.apply_requested.emit(run_dir))
            buttons.addButton(button, QDialogButtonBox.ButtonRole.ActionRole)
            self.apply_buttons[label] = button
        layout = QVBoxLayout(self)
        layout.addWidget(heading)
        layout.addWidget(splitter, 1)
        layout.addWidget(buttons)

    # ---- what the dialog shows (for tests and the person alike) -----------------------------------------

    def settings_rows(self, include_same: bool = False) -> list[tuple[str, str, str]]:
        """(setting, A, B) of the rows shown (those that differ; all with ``include_same``)."""
        rows = []
        for index in range(self.settings_table.topLevelItemCount()):
            item = self.settings_table.topLevelItem(index)
            if include_same or not item.isHidden():
                rows.append((item.text(_SETTING), item.text(_A), item.text(_B)))
        return rows

    def network_lines(self) -> list[str]:
        """The network differences as text lines: "added: conv3 (Conv2d)", "conv1: out_channels 6 → 8"."""
        lines = []
        for index in range(self.network_table.topLevelItemCount()):
            group = self.network_table.topLevelItem(index)
            for child in range(group.childCount()):
                lines.append(f"{group.text(0).split(' (')[0].lower()}: {group.child(child).text(0)}")
        return lines

    # ---- building ---------------------------------------------------------------------------------------

    def _settings_table(self) -> QTreeWidget:
        table = QTreeWidget()
        table.setObjectName("compare_settings")
        table.setRootIsDecorated(False)
        table.setAlternatingRowColors(True)
        table.setUniformRowHeights(True)
        table.setHeaderLabels(["Setting", f"A  {self.comparison.a}", f"B  {self.comparison.b}"])
        table.header().setSectionResizeMode(QHeaderView.ResizeMode.Interactive)
        table.header().setStretchLastSection(True)
        bold = QFont(table.font())
        bold.setBold(True)
        for diff in self.comparison.settings:
            item = QTreeWidgetItem([diff.label, diff.a, diff.b])
            for column in range(3):
                item.setToolTip(column, f"{diff.label}: A {diff.a}, B {diff.b}")
            if diff.same:
                item.setForeground(_A, self.palette().brush(QPalette.ColorGroup.Disabled, QPalette.ColorRole.Text))
                item.setForeground(_B, self.palette().brush(QPalette.ColorGroup.Disabled, QPalette.ColorRole.Text))
            else:
                item.setFont(_B, bold)
            table.addTopLevelItem(item)
            item.setHidden(diff.same)
        if not self.comparison.differing:
            note = QTreeWidgetItem(["The runs started with the same settings."])
            note.setFirstColumnSpanned(True)
            table.addTopLevelItem(note)
        table.resizeColumnToContents(_SETTING)
        table.setColumnWidth(_SETTING, min(table.columnWidth(_SETTING) + 12, 200))
        table.setColumnWidth(_A, 130)
        return table

    def _network_table(self) -> QTreeWidget:
        table = QTreeWidget()
        table.setObjectName("compare_network")
        table.setHeaderHidden(True)
        graph = self.comparison.graph
        if graph.same:
            table.addTopLevelItem(QTreeWidgetItem(["Both runs trained the same network."]))
            return table
        groups = (("Added in B", list(graph.added)), ("Removed in B", list(graph.removed)),
                  ("Changed", [_change_text(change) for change in graph.changed]))
        for title, lines in groups:
            if not lines:
                continue
            group = QTreeWidgetItem([f"{title} ({len(lines)})"])
            for line in lines:
                child = QTreeWidgetItem([line])
                child.setToolTip(0, line)
                group.addChild(child)
            table.addTopLevelItem(group)
            group.setExpanded(True)
        if graph.rewired:
            table.addTopLevelItem(QTreeWidgetItem(["The layers are connected differently."]))
        return table

    def _on_same_check_toggled(self, show: bool) -> None:
        for diff, index in zip(self.comparison.settings, range(self.settings_table.topLevelItemCount()), strict=False):
            self.settings_table.topLevelItem(index).setHidden(diff.same and not show)


class _CompareCurves(pg.GraphicsLayoutWidget):
    """Validation accuracy and loss (train loss too) per epoch of both runs, A and B each in one colour."""

    def __init__(self, a: dict[str, Any], b: dict[str, Any]) -> None:
        super().__init__()
        colours = plot_colors()
        self.setBackground(colours.background)
        self.ci.setContentsMargins(4, 4, 8, 4)
        self.accuracy_plot = self.addPlot(row=0, col=0)
        self.loss_plot = self.addPlot(row=1, col=0)
        self.loss_plot.setXLink(self.accuracy_plot)
        style_plot(self.accuracy_plot, colours, "Validation accuracy")
        style_plot(self.loss_plot, colours, "Loss")
        set_axis_label(self.accuracy_plot, "left", "%", colours)
        set_axis_label(self.loss_plot, "bottom", "epoch", colours)
        # Bottom right: accuracy curves rise towards the top right, where a legend would cover their ends.
        legend = self.accuracy_plot.addLegend(offset=(-8, -8))
        self.series: dict[str, tuple[np.ndarray, np.ndarray]] = {}  # "A val_accuracy" -> (epochs, values)
        for index, (label, row) in enumerate((("A", a), ("B", b))):
            colour = colours.overlay(index)
            name = f"{label} {row.get('name', '')}"
            rows = row.get("curves") or []
            for key, plot, style in (("val_accuracy", self.accuracy_plot, Qt.PenStyle.DashLine),
                                     ("train_loss", self.loss_plot, Qt.PenStyle.SolidLine),
                                     ("val_loss", self.loss_plot, Qt.PenStyle.DashLine)):
                xs, ys = _column(rows, key)
                if key == "val_accuracy":
                    ys = ys * 100.0
                self.series[f"{label} {key}"] = (xs, ys)
                item = plot.plot(xs, ys, pen=pg.mkPen(colour, width=2, style=style),
                                 symbol="o" if len(xs) < 30 else None, symbolSize=5, symbolBrush=colour,
                                 symbolPen=pg.mkPen(colours.background))
                if key == "val_accuracy":
                    legend.addItem(item, name)
        for plot in (self.accuracy_plot, self.loss_plot):
            plot.showGrid(x=True, y=True, alpha=0.12)
            plot.setMenuEnabled(False)
            plot.hideButtons()
            plot.getAxis("left").setWidth(48)
        style_legend(legend, colours)
        self.loss_plot.addLegend(offset=(-8, 8))
        loss_legend = self.loss_plot.legend
        dummy_solid = pg.PlotDataItem(pen=pg.mkPen(colours.foreground, width=2))
        dummy_dashed = pg.PlotDataItem(pen=pg.mkPen(colours.foreground, width=2, style=Qt.PenStyle.DashLine))
        loss_legend.addItem(dummy_solid, "train")
        loss_legend.addItem(dummy_dashed, "validation")
        style_legend(loss_legend, colours)


def _column(rows: list[dict[str, Any]], key: str) -> tuple[np.ndarray, np.ndarray]:
    """(epochs, values) of one metrics column, skipping epochs without a value."""
    points = [(float(row["epoch"]), float(row[key])) for row in rows
              if row.get("epoch") is not None and row.get(key) is not None and np.isfinite(row[key])]
    if not points:
        return np.zeros(0), np.zeros(0)
    xs, ys = zip(*points, strict=True)
    return np.asarray(xs), np.asarray(ys)


def _change_text(change: Any) -> str:
    parts = [f"{param} {old} → {new}" for param, old, new in change.params]
    if change.renamed_from:
        parts.insert(0, f"renamed from {change.renamed_from}")
    return f"{change.name}: " + ", ".join(parts) if parts else f"{change.name}: type {change.type}"


def _result_text(row: dict[str, Any]) -> str:
    best, test = row.get("best_val_accuracy"), row.get("test_accuracy")
    parts = [f"best val {best:.1%}" if best is not None else "no validation",
             *([f"test {test:.1%}"] if test is not None else [])]
    return ", ".join(parts)


def apply_run_settings_command(project: Any, row: dict[str, Any]) -> tuple[MacroCommand | None, str]:
    """One undo step that sets ``project``'s training settings (and, when its network has the run's layers and
    connections, the layer parameters) to the run's; None when nothing differs or a value is refused.
    The text says what was done, for the status bar."""
    from dlstudio.core.errors import DlstudioError
    from dlstudio.core.project.settings import TRAINING_SETTINGS, validate_settings

    name = str(row.get("name", ""))
    plan = settings_to_apply(row, project.training, project.graph.to_dict())
    try:
        validate_settings(TRAINING_SETTINGS, {**project.training, **plan.training}, "training")
        params = [(node_id, param, check_param_value(project.graph, node_id, param, value))
                  for node_id, param, value in plan.params]
    except DlstudioError as error:
        return None, f"Cannot apply the settings of the run {name}: {error.message}"
    note = f"; {plan.network_note}" if plan.network_note else ""
    if plan.empty:
        return None, f"The project already has the settings of the run {name}{note}."
    command = MacroCommand(f"Apply the settings of run {name}")
    for key, value in plan.training.items():
        command.add(SetSettingCommand(project, "training", key, value))
    for node_id, param, value in params:
        command.add(SetParamCommand(project.graph, node_id, param, value))
    changed = [f"{len(plan.training)} training setting{'s' if len(plan.training) != 1 else ''}"]
    if params:
        changed.append(f"{len(params)} layer parameter{'s' if len(params) != 1 else ''}")
    return command, f"Applied {' and '.join(changed)} of the run {name}{note}."

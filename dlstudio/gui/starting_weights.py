"""The Training panel's "Starting weights" section: where a run's weights start, and how to change it.

A project trains from random weights unless it names a source (``Project.weights``): torchvision's
pretrained weights (set by File › Import Model), a ``.pth``/``.safetensors`` file, or an earlier run's
checkpoint ("Start from run…"). The section says which, how many layers are frozen and how fast the
pretrained ones learn; its menu changes the source as one undoable step. The weights are read when a run
starts; only those whose node and shape match load, and the run says which did not.
"""

from __future__ import annotations

import os
from collections.abc import Callable
from pathlib import Path
from typing import Any

from PySide6.QtGui import QAction, QUndoCommand, QUndoStack
from PySide6.QtWidgets import (QFileDialog, QGroupBox, QHBoxLayout, QInputDialog, QLabel, QMenu, QPushButton,
                               QToolButton, QVBoxLayout, QWidget)

from dlstudio.core.errors import GraphError
from dlstudio.core.importer.weights_file import is_stashed
from dlstudio.core.project import Project
from dlstudio.core.project.head import find_head
from dlstudio.core.project.pretrained import WeightsSource
from dlstudio.gui.commands import MacroCommand, SetParamCommand
from dlstudio.gui.start_folders import MODELS, PROJECTS, remember, start_folder
from dlstudio.gui.theme import HINT, set_tone

_HEAD_PARAMS = {"Linear": "out_features", "Conv2d": "out_channels"}

WEIGHT_FILES = "Weights (*.safetensors *.pth *.pt);;All files (*)"
OTHER_RUN = "Another run folder…"


class SetWeightsCommand(QUndoCommand):
    """Change where the project's starting weights come from (None: random)."""

    def __init__(self, project: Project, source: WeightsSource | None, parent: QUndoCommand | None = None) -> None:
        text = "Train from random weights" if source is None else f"Start from {source.describe()}"
        super().__init__(text, parent)
        self.project, self.old, self.new = project, project.weights, source

    def redo(self) -> None:
        self.project.set_weights(self.new)

    def undo(self) -> None:
        self.project.set_weights(self.old)


def relative_to_project(path: str | Path, project: Project) -> str:
    """``path`` relative to the project's folder when it lies inside it (the project can move), else absolute."""
    path = Path(path)
    if project.path is not None:
        try:
            return Path(os.path.relpath(path, project.path.parent)).as_posix() \
                if path.resolve().is_relative_to(project.path.parent.resolve()) else str(path)
        except ValueError:  # another drive
            return str(path)
    return str(path)


class StartingWeightsBox(QGroupBox):
    """Shows the project's starting weights and frozen layers; its menu changes the weights source.

    ``ask_file`` and ``ask_run`` are the window's dialogs (tests replace them); ``runs`` gives the
    project's run folders, newest first, with their list labels; ``params`` a node's parameter count (from
    shape inference), so that only frozen layers with weights are counted (a frozen Add holds nothing).
    """

    def __init__(self, undo_stack: QUndoStack, ask_file: Callable[[], str], ask_run: Callable[[list[str]], str],
                 runs: Callable[[], list[tuple[str, Path]]], params: Callable[[str], int] | None = None,
                 parent: QWidget | None = None) -> None:
        super().__init__("Starting weights", parent)
        self.setObjectName("starting_weights")
        self.undo_stack, self.ask_file, self.ask_run, self.runs = undo_stack, ask_file, ask_run, runs
        self.params = params
        self.project: Project | None = None
        self.source_label = QLabel()
        self.source_label.setObjectName("starting_weights_source")
        self.source_label.setWordWrap(True)
        self.detail_label = QLabel()
        self.detail_label.setObjectName("starting_weights_detail")
        self.detail_label.setWordWrap(True)
        set_tone(self.detail_label, HINT)
        self.file_action = QAction("From a Weights File…", self)
        self.file_action.setStatusTip("Start from a .safetensors or .pth file (layers match by name and shape)")
        self.file_action.triggered.connect(lambda _checked=False: self.choose_file())
        self.run_action = QAction("From an Earlier Run…", self)
        self.run_action.setStatusTip("Start from a run's trained weights (layers match by name and shape)")
        self.run_action.triggered.connect(lambda _checked=False: self.choose_run())
        self.random_action = QAction("Random Weights (from Scratch)", self)
        self.random_action.triggered.connect(lambda _checked=False: self.set_source(None))
        menu = QMenu(self)
        menu.addActions([self.file_action, self.run_action])
        menu.addSeparator()
        menu.addAction(self.random_action)
        self.change_button = QToolButton()
        self.change_button.setObjectName("starting_weights_change")
        self.change_button.setText("Change…")
        self.change_button.setMenu(menu)
        self.change_button.setPopupMode(QToolButton.ToolButtonPopupMode.InstantPopup)
        # Shown when the data has another number of classes than the classifier (an imported network's 1000).
        self.head_button = QPushButton()
        self.head_button.setObjectName("starting_weights_fit_head")
        self.head_button.clicked.connect(lambda _checked=False: self.fit_head())
        self.head_button.hide()
        self.data_classes: int | None = None
        buttons = QHBoxLayout()
        buttons.addWidget(self.change_button)
        buttons.addWidget(self.head_button)
        buttons.addStretch(1)
        layout = QVBoxLayout(self)
        layout.addWidget(self.source_label)
        layout.addWidget(self.detail_label)
        layout.addLayout(buttons)

    def set_project(self, project: Project) -> None:
        """Follow ``project`` (the window's document was replaced)."""
        if self.project is not None:
            for event in self._events(self.project):
                event.disconnect(self._refresh_later)
        self.project = project
        self.data_classes = None  # until the new project's data is read
        for event in self._events(project):
            event.connect(self._refresh_later)
        self.refresh()

    @staticmethod
    def _events(project: Project) -> tuple[Any, ...]:
        return (project.weights_changed, project.frozen.changed, project.settings_changed,
                project.graph.param_changed, project.graph.node_added, project.graph.node_removed)

    def set_data_classes(self, count: int | None) -> None:
        """The number of classes the project's data has (None: not known, or not a classification)."""
        self.data_classes = count
        self.refresh()

    def _refresh_later(self, *_args: Any) -> None:
        self.refresh()

    def refresh(self) -> None:
        project = self.project
        if project is None:
            return
        source = project.weights
        if source is None:
            text = "Random (trained from scratch)"
        elif is_stashed(source):  # an import's own weights, not yet saved with the project
            text = "From the imported network's own weights (written beside the project when it is saved)"
        else:
            text = f"From {source.describe()}"
        self.source_label.setText(text)
        self.random_action.setEnabled(source is not None)
        details = []
        if source is not None:
            multiplier = project.training.get("pretrained_lr_multiplier", 0.1)
            details.append("pretrained layers learn at the full rate" if multiplier == 1
                           else f"pretrained layers learn at {multiplier:g}× the rate")
        frozen = [project.graph.node(node_id).name for node_id in project.frozen
                  if node_id in project.graph and (self.params is None or self.params(node_id) > 0)]
        if frozen:
            details.append(f"{len(frozen)} frozen layer{'s' if len(frozen) != 1 else ''}"
                           f" ({', '.join(frozen[:3])}{', …' if len(frozen) > 3 else ''})")
        self.detail_label.setText("; ".join(details))
        self.detail_label.setVisible(bool(details))
        head = self._head()
        if head is not None:
            node, classes = head
            self.head_button.setText(f"Fit {node.name} to {self.data_classes} classes")
            self.head_button.setToolTip(f"{node.name} gives {classes} class scores; your data has "
                                        f"{self.data_classes} classes. Its weights start afresh, the rest keep "
                                        "theirs.")
        self.head_button.setVisible(head is not None)

    def _head(self) -> tuple[Any, int] | None:
        """(the classifier layer, the classes it gives) when they differ from the data's, else None."""
        if self.project is None or self.data_classes is None or self.data_classes < 2:
            return None
        try:
            output_id, head_id = find_head(self.project.graph)
        except GraphError:
            return None
        classes = self.project.graph.node(output_id).params.get("classes")
        return (self.project.graph.node(head_id), classes) if classes != self.data_classes else None

    def fit_head(self) -> None:
        """Size the classifier layer and the Output for the data's classes: one undo step."""
        head = self._head()
        if head is None or self.project is None:
            return
        graph, count = self.project.graph, self.data_classes
        output_id, head_id = find_head(graph)
        node = graph.node(head_id)
        commands = [SetParamCommand(graph, node_id, param, count)
                    for node_id, param in ((head_id, _HEAD_PARAMS[node.type]), (output_id, "classes"))
                    if graph.node(node_id).params.get(param) != count]
        self.undo_stack.push(MacroCommand(f"Fit {node.name} to {count} classes", commands))

    def set_source(self, source: WeightsSource | None) -> None:
        if self.project is not None and source != self.project.weights:
            self.undo_stack.push(SetWeightsCommand(self.project, source))

    def choose_file(self) -> None:
        path = self.ask_file()
        if path and self.project is not None:
            self.set_source(WeightsSource("file", path=relative_to_project(path, self.project)))

    def choose_run(self) -> None:
        if self.project is None:
            return
        runs = self.runs()
        labels = [label for label, _ in runs] + [OTHER_RUN]
        choice = self.ask_run(labels)
        if not choice:
            return
        if choice == OTHER_RUN:
            folder = QFileDialog.getExistingDirectory(self, "Choose a run folder (inside a project's .runs folder)",
                                                      start_folder(PROJECTS))
            if not folder:
                return
            run_dir = Path(folder)
        else:
            run_dir = dict(runs)[choice]
        self.set_source(WeightsSource("run", path=relative_to_project(run_dir, self.project)))


def ask_weights_file(parent: QWidget) -> str:
    path = QFileDialog.getOpenFileName(parent, "Start from a weights file", start_folder(MODELS), WEIGHT_FILES)[0]
    remember(MODELS, path)
    return path


def ask_run(parent: QWidget, labels: list[str]) -> str:
    choice, ok = QInputDialog.getItem(parent, "Start from an earlier run",
                                      "Layers whose name and shape match start from the run's trained weights:",
                                      labels, 0, False)
    return choice if ok else ""

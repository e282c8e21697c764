"""The main window: palette, canvas, inspector, menus, undo stack, dirty flag, recent files.

Gestures and editors send intents here; each becomes one undo command
pushed on the window's stack (design.md §2). The window is dirty exactly when
the stack is not clean. Dialogs go through small ``_ask_*`` / ``_show_*``
methods so that tests can answer them without a modal loop.
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import TYPE_CHECKING

from PySide6.QtCore import QByteArray, QFileSystemWatcher, QPointF, QRect, QRectF, QSettings, Qt, QTimer
from PySide6.QtGui import (QAction, QActionGroup, QCloseEvent, QDragEnterEvent, QDropEvent, QKeySequence, QShortcut,
                           QShowEvent, QUndoCommand, QUndoStack)
from PySide6.QtWidgets import (QApplication, QDialog, QDockWidget, QFileDialog, QLabel, QMainWindow, QMenu,
                               QMessageBox, QProgressDialog, QStackedWidget, QTabBar, QUndoView, QWidget)

from dlstudio import __version__
from dlstudio.core.autolayout import LEFT_TO_RIGHT, TOP_TO_BOTTOM
from dlstudio.core.errors import DlstudioError, GraphError, ProjectError
from dlstudio.core.graph import Edge
from dlstudio.core.importer.weights_file import weights_for_saving
from dlstudio.core.project import (DATA_SETTINGS, Project, ProjectDocument, copy_runs, default_project, load_project,
                                   load_template, save_project, validate_settings)
from dlstudio.core.project.fileformat import update_project_file
from dlstudio.core.project.recovery import Recoverable, RecoveryStore
from dlstudio.core.shapes import ShapeInference
from dlstudio.gui import clipboard, icons
from dlstudio.gui.canvas import arrange
from dlstudio.gui.canvas.block_actions import BlockActions
from dlstudio.gui.canvas.items import HEADER_HEIGHT, NODE_WIDTH, format_count
from dlstudio.gui.canvas.scene import GraphScene
from dlstudio.gui.canvas.view import GraphView
from dlstudio.gui.commands import (AddNodeCommand, ConnectCommand, MacroCommand, MoveNodesCommand, RemoveCommand,
                                   RenameCommand, SetParamCommand, SetSettingCommand, make_fix_command)
from dlstudio.gui.data_panel import DataPanel
from dlstudio.gui.error_report import log_path, show_log_folder
from dlstudio.gui.inspect_controller import InspectController
from dlstudio.gui.inspector import Inspector
from dlstudio.gui.palette import Palette
from dlstudio.gui.settings import MAX_RECENT_FILES
from dlstudio.gui.start_folders import IMAGES, PROJECTS, remember, start_folder, start_path
from dlstudio.gui.starting_weights import StartingWeightsBox, ask_run, ask_weights_file
from dlstudio.gui.theme import DARK, LIGHT, apply_theme, canvas_colors
from dlstudio.gui.training_controller import TrainingController
from dlstudio.gui.welcome import WelcomePage
from dlstudio.gui.worker import BackgroundTask

if TYPE_CHECKING:
    from dlstudio.core.importer import ImportResult
    from dlstudio.core.project.fit_to_data import FolderSurvey
    from dlstudio.gui.import_dialog import ImportRequest
    from dlstudio.gui.sweep_dialog import SweepDialog

PROJECT_FILTER = "dlstudio projects (*.dlstudio);;All files (*)"
SAVE_CHOICE, DISCARD_CHOICE, CANCEL_CHOICE = "save", "discard", "cancel"
STOP_AND_CLOSE_CHOICE, KEEP_TRAINING_CHOICE = "stop", "keep"
SMALL_NETWORK, PRETRAINED_NETWORK = "small", "pretrained"  # what learns a folder of images
LOCKED_MESSAGE = "Training — editing is locked"
# Unsaved changes are copied to the recovery folder after this long without an edit.
AUTOSAVE_IDLE_MS = 30_000
# Saved dock arrangements carry this number; bump it when docks are added, removed or regrouped, so that an
# arrangement saved by an older version is dropped for the new default instead of half-applied.
LAYOUT_VERSION = 2


class MainWindow(QMainWindow):
    """One project in one window."""

    def __init__(self, project: Project | None = None, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.setObjectName("MainWindow")
        self.settings = QSettings()
        self.theme = str(self.settings.value("theme", LIGHT))
        # The open project: replaced whole by New, Open and Open Recent (set_document).
        self.document = ProjectDocument(project if project is not None else default_project())
        self.inference: ShapeInference | None = None
        self.scene: GraphScene | None = None
        self._fitted_once = False
        self._state_restored = False  # whether the docks were put where the person left them
        self._plots_grown = False  # the Metrics strip grew once it had something to show
        self._inspect_grown = False  # the Inspect dock grew once, the first time its tab was shown
        self._shortcuts_dialog: QDialog | None = None
        self.editing_locked = False
        self._import_task: BackgroundTask | None = None  # File > Import Model's worker, while it runs

        self.undo_stack = QUndoStack(self)
        self.undo_stack.cleanChanged.connect(self._on_undo_stack_clean_changed)
        self.undo_stack.indexChanged.connect(self._on_undo_stack_index_changed)
        # Crash recovery: unsaved changes are copied, after a pause in editing, to the user's data folder
        # (never over the project's file); the copy goes when the project is saved or the window closes.
        self.recovery = RecoveryStore()
        self._recovery_key = RecoveryStore.new_key()
        self._autosave_timer = QTimer(self)
        self._autosave_timer.setSingleShot(True)
        self._autosave_timer.setInterval(AUTOSAVE_IDLE_MS)
        self._autosave_timer.timeout.connect(self.autosave)
        # The project file changed by another program (dlstudio train recording a run, another window):
        # offered to reload, never silently overwritten.
        self._file_watcher = QFileSystemWatcher(self)
        self._file_watcher.fileChanged.connect(self._on_file_watcher_file_changed)
        self._disk_signature: tuple[int, int] | None = None  # (mtime_ns, size) of the file as we last read or wrote it
        self._asking_reload = False
        self._declined_signature: tuple[int, int] | None = None
        self.view = GraphView()
        self.view.layer_dropped.connect(self._on_view_layer_dropped)
        # The centre shows the canvas, or the welcome page (Help > Welcome, first launch, New).
        self.welcome = WelcomePage(self.recent_files())
        self.welcome.template_chosen.connect(self._on_welcome_template_chosen)
        self.welcome.recent_chosen.connect(self._on_welcome_recent_chosen)
        self.welcome.new_requested.connect(self._on_welcome_new_requested)
        self.welcome.open_requested.connect(self._on_welcome_open_requested)
        self.welcome.image_folder_requested.connect(self._on_welcome_image_folder_requested)
        # Esc leaves the page for the canvas (the open network stays as it was).
        QShortcut(QKeySequence(Qt.Key.Key_Escape), self.welcome, self.hide_welcome,
                  context=Qt.ShortcutContext.WidgetWithChildrenShortcut)
        self.central = QStackedWidget()
        self.central.setObjectName("CentralStack")
        self.central.addWidget(self.view)
        self.central.addWidget(self.welcome)
        self.setCentralWidget(self.central)

        self.palette = Palette()
        self.palette.layer_activated.connect(self._on_palette_layer_activated)
        self.inspector = Inspector()
        self.inspector.param_edit_requested.connect(self.set_param)
        self.inspector.rename_requested.connect(self.rename_node)
        self.inspector.fix_requested.connect(self.apply_fix)
        self.palette_dock = self._dock("Layers", "PaletteDock", self.palette, Qt.DockWidgetArea.LeftDockWidgetArea)
        self.inspector_dock = self._dock("Inspector", "InspectorDock", self.inspector,
                                         Qt.DockWidgetArea.RightDockWidgetArea)
        self.history_view = QUndoView(self.undo_stack)
        self.history_dock = self._dock("Undo History", "HistoryDock", self.history_view,
                                       Qt.DockWidgetArea.RightDockWidgetArea)
        self.history_dock.hide()
        self.palette_dock.setMinimumWidth(190)
        self.inspector_dock.setMinimumWidth(280)

        top_levels_before = set(QApplication.topLevelWidgets())
        self.training = TrainingController(self, preflight=self._preflight_training)
        self.training.status_message.connect(self._on_training_status_message)
        self.training.editing_lock_requested.connect(self.set_editing_locked)
        self.training.run_recorded.connect(self._on_training_run_recorded)
        self.training.setting_edit_requested.connect(self._on_training_setting_edit_requested)
        self.training.training_started.connect(self._on_training_training_started)
        self.training.plots_filled.connect(self._on_training_plots_filled)
        self.training.skipped_found.connect(self._on_training_skipped_found)
        self.training.runs.apply_settings_requested.connect(self._on_runs_apply_settings_requested)
        # Through lambdas: the dialogs are looked up when asked (tests answer them by replacing the methods).
        self.starting_weights = StartingWeightsBox(self.undo_stack, lambda: self._ask_weights_file(),
                                                   lambda labels: self._ask_starting_run(labels),
                                                   self._runs_to_start_from,
                                                   params=lambda node_id: self.inference.info(node_id).params)
        self.training.panel.add_section(self.starting_weights)
        self.training_dock = self._dock("Training", "TrainingDock", self.training.panel,
                                        Qt.DockWidgetArea.RightDockWidgetArea)
        self.training_dock.setMinimumWidth(340)
        self.tabifyDockWidget(self.inspector_dock, self.training_dock)
        self.inspector_dock.raise_()
        self.metrics_dock = self._dock("Metrics", "MetricsDock", self.training.metrics_tabs,
                                       Qt.DockWidgetArea.BottomDockWidgetArea)
        self.runs_dock = self._dock("Runs", "RunsDock", self.training.runs, Qt.DockWidgetArea.BottomDockWidgetArea)
        self.splitDockWidget(self.metrics_dock, self.runs_dock, Qt.Orientation.Horizontal)
        self.resizeDocks([self.metrics_dock, self.runs_dock], [900, 320], Qt.Orientation.Horizontal)
        # The canvas gets most of the window: the plots are small until there is something to plot.
        self.resizeDocks([self.metrics_dock], [230], Qt.Orientation.Vertical)

        self.data_panel = DataPanel()
        self.data_panel.setting_edit_requested.connect(self._on_data_panel_setting_edit_requested)
        self.data_panel.settings_edit_requested.connect(self._on_data_panel_settings_edit_requested)
        self.data_panel.preview_shown.connect(self._on_data_panel_preview_shown)
        self.data_panel.fit_network_requested.connect(self.fit_network_to_data)
        self.data_dock = self._dock("Data", "DataDock", self.data_panel, Qt.DockWidgetArea.RightDockWidgetArea)
        self.tabifyDockWidget(self.training_dock, self.data_dock)
        self.inspector_dock.raise_()

        self.inspect = InspectController(self)
        self.inspect.shown.connect(self._on_inspect_shown)
        self.training.run_deleted.connect(self.inspect.forget_run)
        self.inspect_dock = self._dock("Inspect", "InspectDock", self.inspect.widget, None)
        # The Inspect views need room only when used; their sum of minimum heights (~300 px) must not keep the
        # bottom strip tall and squeeze the canvas on first launch.
        self.inspect.widget.setMinimumHeight(160)
        self.tabifyDockWidget(self.metrics_dock, self.inspect_dock)
        self.metrics_dock.raise_()
        self.inspect_dock.visibilityChanged.connect(self._on_inspect_dock_visibility_changed)
        self.training.state_changed.connect(self.inspect.on_training_state_changed)
        self.training.runs.selection_changed.connect(self.inspect.on_runs_selected)
        self.training.confusion.cell_clicked.connect(self.inspect.on_confusion_cell_clicked)
        self.setAcceptDrops(True)  # image files dropped anywhere are classified
        # pyqtgraph makes its plots' context menus without a parent: give them the window, so that they
        # go with it instead of living on as hidden top-level widgets.
        for widget in set(QApplication.topLevelWidgets()) - top_levels_before:
            if isinstance(widget, QMenu):
                widget.setParent(self, widget.windowFlags())

        self.totals_label = QLabel()
        self.statusBar().addPermanentWidget(self.training.status_label)
        self.statusBar().addPermanentWidget(self.totals_label)
        self._create_actions()
        self._create_menus()
        self._create_toolbar()
        self.set_document(self.document)
        self._default_state = self.saveState(LAYOUT_VERSION)  # for View > Reset Layout
        self._restore_window_state()
        self.set_theme(self.theme)

    # -- building ------------------------------------------------------------

    def _dock(self, title: str, name: str, widget: QWidget, area: Qt.DockWidgetArea | None) -> QDockWidget:
        """A dock in ``area``; with None, one that the caller tabifies with another (added to no area first:
        a dock added to an area and then tabified leaves its first tab bar drawn over the other docks)."""
        dock = QDockWidget(title, self)
        dock.setObjectName(name)
        dock.setWidget(widget)
        if area is not None:
            self.addDockWidget(area, dock)
        return dock

    def _action(self, text: str, slot, shortcut: QKeySequence.StandardKey | str | None = None,
                tip: str = "") -> QAction:
        action = QAction(text, self)
        if shortcut is not None:
            action.setShortcut(QKeySequence(shortcut))
        action.setStatusTip(tip)
        # The slot is called without arguments: `triggered` passes `checked`, which a slot with a default
        # parameter would take for it (Fit to Window once zoomed to 0, New once skipped the welcome page).
        action.triggered.connect(lambda checked=False: slot())
        return action

    def _create_actions(self) -> None:
        key = QKeySequence.StandardKey
        self.new_action = self._action("&New", self.new_project, key.New, "Start an empty network")
        self.new_from_template_action = self._action("New from &Template…", self.new_from_template)
        self.open_action = self._action("&Open…", self.open_dialog, key.Open, "Open a project file")
        self.save_action = self._action("&Save", self.save, key.Save, "Save the project")
        self.save_as_action = self._action("Save &As…", self.save_as, key.SaveAs)
        self.import_model_action = self._action("&Import Model…", self.import_model, None,
                                                "Open a torchvision architecture as an editable network")
        self.export_python_action = self._action("Export &Python Code…", self.export_python_code)
        self.export_model_action = self._action(
            "&Export Model…", self.export_model, "Ctrl+E",
            "The trained network as ONNX, TorchScript, safetensors or a training script, checked as it is written")
        self.sweep_action = self._action("S&weep…", self.show_sweep, None,
                                         "Train many runs over ranges of settings and node parameters (Optuna)")
        self.sweep_dialog: SweepDialog | None = None
        self.evaluate_action = self._action(
            "&Evaluate on a Labelled Folder…", self.evaluate_folder, None,
            "Score the trained model on a folder with one subfolder per class: accuracy, per-class "
            "precision, recall and F1, the confusion matrix and the worst-classified files")
        self.quit_action = self._action("&Quit", self.close, key.Quit)

        self.undo_action = self._action("&Undo", self.undo, key.Undo)
        self.redo_action = self._action("&Redo", self.redo, key.Redo)
        self.undo_action.setEnabled(False)
        self.redo_action.setEnabled(False)
        self.undo_stack.canUndoChanged.connect(lambda can: self.undo_action.setEnabled(can and not self.editing_locked))
        self.undo_stack.canRedoChanged.connect(lambda can: self.redo_action.setEnabled(can and not self.editing_locked))
        self.undo_stack.undoTextChanged.connect(self._on_undo_stack_undo_text_changed)
        self.undo_stack.redoTextChanged.connect(self._on_undo_stack_redo_text_changed)
        self.cut_action = self._action("Cu&t", self.cut, key.Cut)
        self.copy_action = self._action("&Copy", self.copy, key.Copy)
        self.paste_action = self._action("&Paste", self.paste, key.Paste)
        self.duplicate_action = self._action("D&uplicate", self.duplicate, "Ctrl+D")
        self.delete_action = self._action("&Delete", self.delete_selection, key.Delete)
        self.delete_action.setShortcuts([QKeySequence(key.Delete), QKeySequence(Qt.Key.Key_Backspace)])
        self.select_all_action = self._action("Select &All", self.select_all, key.SelectAll)

        self.zoom_in_action = self._action("Zoom &In", lambda: self.view.zoom_by(1.25), key.ZoomIn)
        self.zoom_out_action = self._action("Zoom &Out", lambda: self.view.zoom_by(0.8), key.ZoomOut)
        self.fit_action = self._action("&Fit to Window", self.view.fit_all, "Ctrl+0",
                                       "Show the whole network")
        self.auto_layout_action = self._action("&Auto-layout", lambda: self.auto_layout(LEFT_TO_RIGHT), "Ctrl+L",
                                               "Arrange the network in layers, left to right")
        self.auto_layout_tb_action = self._action("Auto-layout Top to &Bottom",
                                                  lambda: self.auto_layout(TOP_TO_BOTTOM), "Ctrl+Shift+L")
        self.theme_group = QActionGroup(self)
        self.light_theme_action = self._action("&Light Theme", lambda: self.set_theme(LIGHT))
        self.dark_theme_action = self._action("&Dark Theme", lambda: self.set_theme(DARK))
        for action in (self.light_theme_action, self.dark_theme_action):
            action.setCheckable(True)
            self.theme_group.addAction(action)
        self.history_action = self.history_dock.toggleViewAction()
        self.history_action.setText("Undo &History")

        self.welcome_action = self._action("&Welcome", self.toggle_welcome, None,
                                           "Templates, recent projects and ways to begin (Esc goes back)")
        self.welcome_action.setCheckable(True)
        self.log_folder_action = self._action("Show &Log Folder", self._show_log_folder, None,
                                              "Open the folder of dlstudio's error log")
        self.about_action = self._action("&About dlstudio", self._show_about)
        self.shortcuts_action = self._action("&Keyboard Shortcuts", self.show_shortcuts, "Ctrl+/",
                                             "Every command's keys, and what the mouse does on the canvas")
        self.layer_help_action = self._action("&Layer Help", self._show_layer_help, key.HelpContents)
        self.block_actions = BlockActions(self, self)  # Group into Block, Collapse, Rename Block, Freeze...
        self.block_actions.saved_blocks_changed.connect(self.palette.reload_saved_blocks)
        self.palette.saved_block_activated.connect(
            lambda path: self.block_actions.insert_saved_block(path, self.view.center_scene_pos()))
        self.view.saved_block_dropped.connect(self.block_actions.insert_saved_block)
        self.inspector.freeze_requested.connect(self.block_actions.freeze_node)
        self.inspector.block_rename_requested.connect(self.block_actions.rename)
        self.inspector.block_freeze_requested.connect(self.block_actions.freeze_block)

    def _create_menus(self) -> None:
        bar = self.menuBar()
        file_menu = bar.addMenu("&File")
        file_menu.addActions([self.new_action, self.new_from_template_action, self.open_action,
                              self.import_model_action])
        self.recent_menu = file_menu.addMenu("Open &Recent")
        self.recent_menu.aboutToShow.connect(self._fill_recent_menu)
        file_menu.addSeparator()
        file_menu.addActions([self.save_action, self.save_as_action])
        file_menu.addSeparator()
        file_menu.addAction(self.export_model_action)
        file_menu.addAction(self.export_python_action)
        file_menu.addSeparator()
        file_menu.addAction(self.quit_action)

        edit_menu = bar.addMenu("&Edit")
        edit_menu.addActions([self.undo_action, self.redo_action])
        edit_menu.addSeparator()
        edit_menu.addActions([self.cut_action, self.copy_action, self.paste_action, self.duplicate_action,
                              self.delete_action])
        edit_menu.addSeparator()
        edit_menu.addActions(self.block_actions.actions)
        edit_menu.addSeparator()
        edit_menu.addAction(self.select_all_action)

        view_menu = bar.addMenu("&View")
        view_menu.addActions([self.zoom_in_action, self.zoom_out_action, self.fit_action])
        view_menu.addSeparator()
        view_menu.addActions([self.auto_layout_action, self.auto_layout_tb_action])
        view_menu.addSeparator()
        view_menu.addActions([self.light_theme_action, self.dark_theme_action])
        view_menu.addSeparator()
        view_menu.addActions([self.palette_dock.toggleViewAction(), self.inspector_dock.toggleViewAction(),
                              self.history_action])

        view_menu.addActions([self.data_dock.toggleViewAction(), self.training_dock.toggleViewAction(),
                              self.metrics_dock.toggleViewAction(), self.runs_dock.toggleViewAction(),
                              self.inspect_dock.toggleViewAction()])
        view_menu.addSeparator()
        reset_layout = view_menu.addAction("&Reset Layout")
        reset_layout.setToolTip("Put every panel back where it was on first launch")
        reset_layout.triggered.connect(self.reset_layout)

        training_menu = bar.addMenu("&Training")
        training_menu.addActions(self.training.actions)
        training_menu.addSeparator()
        training_menu.addAction(self.sweep_action)
        training_menu.addAction(self.evaluate_action)

        help_menu = bar.addMenu("&Help")
        help_menu.addActions([self.welcome_action, self.layer_help_action, self.shortcuts_action,
                              self.log_folder_action])
        help_menu.addSeparator()
        help_menu.addAction(self.about_action)

    def _create_toolbar(self) -> None:
        """Icons with short, fixed words: the buttons keep their width whatever the undo text or state says
        (the full text is in each tooltip), so nothing moves under the mouse after an edit."""
        for action, name, short in (
                (self.new_action, "new", "New"), (self.new_from_template_action, "new", None),
                (self.open_action, "open", "Open"), (self.save_action, "save", "Save"),
                (self.save_as_action, "save_as", None), (self.export_python_action, "export", None),
                (self.export_model_action, "export", None),
                (self.import_model_action, "open", None),
                (self.undo_action, "undo", "Undo"), (self.redo_action, "redo", "Redo"),
                (self.cut_action, "cut", None), (self.copy_action, "copy", None), (self.paste_action, "paste", None),
                (self.duplicate_action, "duplicate", None), (self.delete_action, "delete", None),
                (self.zoom_in_action, "zoom_in", "Zoom In"), (self.zoom_out_action, "zoom_out", "Zoom Out"),
                (self.fit_action, "fit", "Fit"), (self.auto_layout_action, "auto_layout", "Layout"),
                (self.training.start_action, "train", "Train"), (self.training.pause_action, "pause", "Pause"),
                (self.training.stop_action, "stop", "Stop"), (self.layer_help_action, "help", None),
                (self.welcome_action, "welcome", None), (self.log_folder_action, "log_folder", None)):
            icons.set_icon(action, name)
            if short is not None:
                action.setIconText(short)
                if not action.toolTip() or action.toolTip() == action.text().replace("&", ""):
                    action.setToolTip(_tooltip(action))
        toolbar = self.addToolBar("Main")
        toolbar.setObjectName("MainToolbar")
        toolbar.setMovable(False)
        toolbar.addActions([self.new_action, self.open_action, self.save_action])
        toolbar.addSeparator()
        toolbar.addActions([self.undo_action, self.redo_action])
        toolbar.addSeparator()
        toolbar.addActions([self.zoom_in_action, self.zoom_out_action, self.fit_action, self.auto_layout_action])
        toolbar.addSeparator()
        toolbar.addActions(self.training.actions)
        toolbar.setToolButtonStyle(Qt.ToolButtonStyle.ToolButtonTextBesideIcon)
        self.toolbar = toolbar

    # -- project -------------------------------------------------------------

    @property
    def project(self) -> Project:
        """The open project (the document's)."""
        return self.document.project

    def set_project(self, project: Project, tidy: bool = True) -> None:
        """Open ``project`` in this window as a new document (see :meth:`set_document`)."""
        self.set_document(ProjectDocument(project), tidy)

    def set_document(self, document: ProjectDocument, tidy: bool = True) -> None:
        """Show ``document`` and nothing of the previous one: a fresh scene and inference, an empty undo
        stack, a clean window, and every dock reset from the new document. ``tidy``: lay out a network whose
        nodes sit too close for their edge labels (not for a restored copy, which comes back exactly)."""
        if self.training.is_running():
            raise RuntimeError("the project cannot be replaced while a run trains")
        if self.scene is not None:
            self.scene.detach()
            self.scene.deleteLater()
        if self.inference is not None:
            self.inference.close()
        self.document = document
        self._discard_recovery()
        project = document.project
        self.inference = ShapeInference(project.graph)
        self.scene = GraphScene(project.graph, project.layout, self.inference, canvas_colors(self.theme), self,
                                blocks=project.blocks, frozen=project.frozen)
        self.scene.block_context_menu_requested.connect(self._on_scene_block_context_menu_requested)
        self.scene.block_collapse_requested.connect(self.block_actions.set_collapsed)
        self.scene.connect_requested.connect(self.connect_ports)
        self.scene.nodes_dragged.connect(self._on_scene_nodes_dragged)
        self.scene.status_message.connect(self._on_scene_status_message)
        self.scene.infos_changed.connect(self._on_scene_infos_changed)
        self.scene.selectionChanged.connect(self._on_scene_selection_changed)
        self.scene.context_menu_requested.connect(self._on_scene_context_menu_requested)
        self.view.setScene(self.scene)
        if tidy:
            self._tidy_cramped_layout()
        self.inspector.set_model(project.graph, self.inference, project.frozen, project.blocks)
        self.undo_stack.clear()
        self.undo_stack.setClean()
        self.training.set_document(document)
        self.starting_weights.set_project(project)
        self.data_panel.set_project(project)
        self.inspect.set_document(document)
        self.statusBar().clearMessage()
        self._watch_file()
        self._update_title()
        self._update_totals()
        if self.isVisible():
            self.view.fit_all()

    def _tidy_cramped_layout(self) -> None:
        """Lay out a project whose nodes lack positions or sit too close for edge labels (not an undo step)."""
        arrange.tidy_cramped_layout(self.project.graph, self.project.layout, self.scene, self.view)

    def _layered_positions(self, direction: str) -> dict[str, tuple[float, float]]:
        return arrange.layered_positions(self.project.graph, self.scene, self.view, direction)

    def is_dirty(self) -> bool:
        return not self.undo_stack.isClean()

    def new_project(self, welcome: bool = True) -> bool:
        """An empty network on the same data and training settings; the welcome page offers ways to begin."""
        if not self._confirm_discard():
            return False
        project = Project()
        project.data = dict(self.project.data)  # keep the data settings: a new network on the same data
        project.training = dict(self.project.training)
        self.set_project(project)
        if welcome:
            self.show_welcome()
        return True

    # -- the welcome page --------------------------------------------------------

    def show_welcome(self) -> None:
        self.welcome.set_recent_files(self.recent_files())
        self.central.setCurrentWidget(self.welcome)
        self.welcome.setFocus(Qt.FocusReason.OtherFocusReason)
        self.welcome_action.setChecked(True)

    def hide_welcome(self) -> None:
        self.central.setCurrentWidget(self.view)
        self.view.setFocus()
        self.welcome_action.setChecked(False)

    def toggle_welcome(self) -> None:
        """Help > Welcome: the page, or back to the canvas when it is shown."""
        if self.is_welcome_shown():
            self.hide_welcome()
        else:
            self.show_welcome()

    def is_welcome_shown(self) -> bool:
        return self.central.currentWidget() is self.welcome

    def _on_welcome_template_chosen(self, name: str) -> None:
        if self._confirm_discard():
            self._open_template(name)

    def _on_welcome_recent_chosen(self, path: str) -> None:
        if self._confirm_discard() and self.open_file(path):
            self.hide_welcome()

    def _on_welcome_new_requested(self) -> None:
        if self.project.graph.nodes or self.project.path is not None:
            if not self.new_project(welcome=False):
                return
        self.hide_welcome()

    def _on_welcome_open_requested(self) -> None:
        if not self._confirm_discard():
            return
        path = self._ask_open_path()
        if path and self.open_file(path):
            self.hide_welcome()

    def _on_welcome_image_folder_requested(self) -> None:
        """A network for the person's folder of images (one subfolder per class): a small CNN shaped for the
        pictures, or a pretrained MobileNet with its classifier sized for the classes, as the person chooses;
        the Data panel shows what it found."""
        from dlstudio.core.project.fit_to_data import survey_image_folder

        if not self._confirm_discard():
            return
        folder = self._ask_image_folder()
        if not folder:
            return
        try:
            survey = survey_image_folder(folder)
        except (DlstudioError, OSError) as error:  # the Data panel says what is wrong with the folder
            survey, problem = None, f"{Path(folder).name}: {getattr(error, 'message', None) or error}"
        if survey is not None:
            choice = self._ask_folder_network(survey)
            if choice is None:
                return
            project, message = self._folder_project(folder, survey, choice)
        else:
            project, message = load_template("lenet5"), problem
            project.data = {**project.data, "source": "folder", "path": folder}
            project.untitled_name = Path(folder).name or project.untitled_name
        self.set_project(project)
        self.hide_welcome()
        self.data_dock.show()
        self.data_dock.raise_()
        self.statusBar().showMessage(message, 10000)

    def _folder_project(self, folder: str, survey: FolderSurvey, choice: str) -> tuple[Project, str]:
        """The new project for an image folder and the line that says what it is."""
        from dlstudio.core.project.fit_to_data import fit_network
        from dlstudio.core.project.head import replace_head

        name = survey.name
        if choice == PRETRAINED_NETWORK:
            project = load_template("finetune-mobilenet")  # ImageNet weights, backbone frozen
            replace_head(project, len(survey.class_names))
            message = (f"MobileNetV3 with ImageNet weights for {name}: {len(survey.class_names)} classes; its "
                       "backbone is frozen, only the classifier learns")
        else:
            project = load_template("lenet5")
            fit_network(project, survey)
            message = f"A LeNet-5 for {name}: {survey.describe()}"
        project.data = {**project.data, "source": "folder", "path": folder}
        project.untitled_name = name or project.untitled_name
        output = next(node for node in project.graph if node.spec.role == "output")
        if output.name in ("digit", "output"):  # the template's name for its Output, not the person's classes
            project.graph.rename(output.id, "class")
        return project, message

    def _ask_folder_network(self, survey: FolderSurvey) -> str | None:
        """Which network learns the folder: SMALL_NETWORK, PRETRAINED_NETWORK, or None (cancelled)."""
        from dlstudio.core.project.fit_to_data import pretrained_weights_on_disk

        on_disk = pretrained_weights_on_disk()
        download = ("its ImageNet weights are on this machine" if on_disk else
                    "its ImageNet weights (10 MB) are downloaded once, when it first trains")
        box = QMessageBox(QMessageBox.Icon.Question, "Which network?",
                          f"{survey.name}: {survey.describe()}.\n\nWhich network should learn it?",
                          parent=self)
        box.setInformativeText(
            "Small CNN: a LeNet-5 for these pictures, trained from scratch; seconds per epoch, nothing to "
            "download, and every layer to look into.\n\n"
            f"Pretrained MobileNet: learns from few photos far better, as it starts from what it learned on "
            f"ImageNet; {download}.")
        small = box.addButton("Small CNN", QMessageBox.ButtonRole.AcceptRole)
        pretrained = box.addButton("Pretrained MobileNet", QMessageBox.ButtonRole.AcceptRole)
        box.addButton(QMessageBox.StandardButton.Cancel)
        photos = survey.channels == 3 and survey.side >= 64
        box.setDefaultButton(pretrained if photos else small)
        box.exec()
        clicked = box.clickedButton()
        return PRETRAINED_NETWORK if clicked is pretrained else SMALL_NETWORK if clicked is small else None

    # -- autosave and crash recovery ----------------------------------------------

    def autosave(self) -> bool:
        """Copy unsaved changes to the recovery folder (never over the project's file); False if nothing to do."""
        self._autosave_timer.stop()
        if not self.is_dirty():
            return False
        try:
            self.recovery.save(self._recovery_key, self.project)
        except (DlstudioError, OSError) as error:
            message = getattr(error, "message", None) or str(error)
            self.statusBar().showMessage(f"Cannot autosave: {message}", 8000)
            return False
        return True

    def _discard_recovery(self) -> None:
        self._autosave_timer.stop()
        self.recovery.discard(self._recovery_key)

    def offer_recovery(self) -> bool:
        """At launch: offer each project a crashed window left unsaved; True if one was restored."""
        for entry in self.recovery.orphans():
            choice = self._ask_restore(entry)
            if choice == "restore":
                return self.restore_recovered(entry)
            if choice == "discard":
                self.recovery.discard(entry.key)
        return False

    def restore_recovered(self, entry: Recoverable) -> bool:
        """Open an autosaved copy: the graph, layout and settings as they were, unsaved, bound to their file."""
        try:
            project = self.recovery.restore(entry)
        except DlstudioError as error:
            self._show_error("Cannot restore the autosaved project", error.message)
            return False
        self.set_project(project, tidy=False)
        self.hide_welcome()
        self._recovery_key = entry.key  # the copy stays until the restored project is saved
        self.undo_stack.resetClean()  # unsaved: the file on disk is the older version
        self._update_title()
        self.autosave()
        self.statusBar().showMessage(f"Restored the unsaved changes to “{entry.name}” from "
                                     f"{entry.saved_at:%Y-%m-%d %H:%M}", 8000)
        return True

    # -- the project file changed by another program --------------------------------

    def _watch_file(self) -> None:
        """Watch the project's file and remember it as it is now (our own read or write)."""
        if self._file_watcher.files():
            self._file_watcher.removePaths(self._file_watcher.files())
        path = self.project.path
        self._disk_signature = _signature(path) if path is not None else None
        if path is not None and path.is_file():
            self._file_watcher.addPath(str(path))

    def _changed_on_disk(self) -> bool:
        path = self.project.path
        return path is not None and self._disk_signature is not None and _signature(path) not in (
            None, self._disk_signature)

    def _on_file_watcher_file_changed(self, changed: str) -> None:
        path = self.project.path
        if path is None or os.path.abspath(changed) != os.path.abspath(path):
            return
        if path.is_file() and str(path) not in self._file_watcher.files():
            self._file_watcher.addPath(str(path))  # a file replaced by a rename is no longer watched
        if not self._changed_on_disk() or self._asking_reload or self.training.is_running():
            return
        if self.sweep_dialog is not None and self.sweep_dialog.is_running():
            return  # the sweep records each trial's run in the file as it starts, as training does
        if _signature(path) == self._declined_signature:
            return  # this change was offered already
        self._asking_reload = True
        try:
            reload = self._ask_reload_changed_file()
        finally:
            self._asking_reload = False
        if reload:
            self.open_file(path)  # the question said that unsaved changes here would be lost
        else:
            self._declined_signature = _signature(path)  # asked once per change; Save asks before overwriting

    def _show_log_folder(self) -> None:
        if not show_log_folder():
            self._show_error("Cannot open the log folder", f"The error log is kept in {log_path().parent}")

    def new_from_template(self) -> None:
        """File › New from Template: the welcome page's template cards, each with a picture of its network (a
        card asks before discarding unsaved changes)."""
        self.show_welcome()
        self.welcome.show_templates()

    def _open_template(self, name: str) -> bool:
        """A new, untitled project from the template ``name``, on the canvas."""
        try:
            self.set_project(load_template(name))
        except DlstudioError as error:
            self._show_error("Cannot open the template", error.message)
            return False
        self.hide_welcome()
        return True

    def import_model(self) -> bool:
        """File › Import Model: a torchvision architecture, the person's own module class or an ONNX file.

        The network becomes a new, untitled project on the open project's data. The import runs on a
        worker thread behind a busy dialog (a large network takes a second or two); True when it started.
        """
        if self._import_task is not None and self._import_task.is_running():
            return False
        if not self._confirm_discard():
            return False
        outputs = [node.params.get("classes") for node in self.project.graph if node.type == "Output"]
        request = self._ask_import_request(outputs[0] if outputs and isinstance(outputs[0], int) else 10)
        if request is None:
            return False
        from dlstudio.gui.import_dialog import run_import

        progress = QProgressDialog(f"Importing {request.title}…", "Cancel", 0, 0, self)
        progress.setWindowTitle("Import Model")
        progress.setWindowModality(Qt.WindowModality.WindowModal)
        progress.setMinimumDuration(300)  # a small network arrives before the dialog would show
        task = BackgroundTask(run_import, request, parent=self)
        self._import_task = task
        progress.canceled.connect(task.cancel)
        task.finished.connect(lambda result: self._show_imported(request, result))
        task.failed.connect(lambda message: self._show_error("Cannot import the model", message))
        task.done.connect(progress.reset)
        task.done.connect(progress.deleteLater)
        task.done.connect(self._forget_import_task)
        task.start()
        return True

    def _forget_import_task(self) -> None:
        if self._import_task is not None:
            self._import_task.deleteLater()
            self._import_task = None

    def _show_imported(self, request: ImportRequest, result: ImportResult) -> None:
        project = result.project
        project.data = dict(self.project.data)  # the same data: a new network for it
        project.training = dict(self.project.training)
        project.untitled_name = Path(request.title).stem  # resnet18, MyNet, or the ONNX file's name
        self.set_project(project)
        self.hide_welcome()
        classes = result.num_classes or request.classes
        if request.kind == "onnx" and project.weights is not None:
            weights = f"starts from the weights in {Path(request.source).name}"
        elif project.weights is not None:
            weights = f"starts from {project.weights.describe()} weights"
        elif request.kind == "torchvision":
            weights = "random weights"
        else:
            weights = "random weights (a weights file can be chosen under Training › Starting weights)"
        self.statusBar().showMessage(f"Imported {request.title}: {len(project.graph)} layers, "
                                     f"{result.param_count:,} parameters, {classes} classes; {weights}", 10000)

    def open_dialog(self) -> None:
        if not self._confirm_discard():
            return
        path = self._ask_open_path()
        if path:
            self.open_file(path)

    def open_file(self, path: str | Path) -> bool:
        """Load a project file into this window; a refused file is reported and leaves the window as it was."""
        try:
            project = load_project(path)
        except DlstudioError as error:
            self._show_error("Cannot open the project", error.message)
            return False
        self.set_project(project)
        self._add_recent_file(Path(path))
        self.hide_welcome()
        return True

    def save(self) -> bool:
        if self.project.path is None:
            return self.save_as()
        return self._save_to(self.project.path)

    def save_as(self) -> bool:
        path = self._ask_save_path()
        if not path:
            return False
        if not str(path).endswith(".dlstudio"):
            path = f"{path}.dlstudio"
        return self._save_to(Path(path))

    def _save_to(self, path: Path) -> bool:
        """Save to ``path``; saved under a new name, the copy gets runs of its own (copied, never shared)."""
        path = Path(path)
        project = self.project
        old_path, old_runs, old_weights = project.path, list(project.runs), project.weights
        moved = old_path is None or os.path.abspath(old_path) != os.path.abspath(path)
        if not moved and self._changed_on_disk() and not self._ask_overwrite_changed_file():
            self.statusBar().showMessage(f"Not saved: {path.name} was changed by another program", 6000)
            return False
        try:
            if moved and project.runs:
                project.runs = copy_runs(project, path)
            # An import's weights go beside the file; a weights path relative to the old folder follows it.
            weights = weights_for_saving(old_weights, old_path, path)
            if weights != old_weights:
                project.set_weights(weights)
            save_project(project, path)
        except (DlstudioError, OSError) as error:
            project.path, project.runs = old_path, old_runs
            if project.weights != old_weights:
                project.set_weights(old_weights)
            message = getattr(error, "message", None) or f"{path.name}: {getattr(error, 'strerror', None) or error}"
            if not moved and self._ask_save_as_after_error(message):
                return self.save_as()  # a read-only file, a full disk: the work goes elsewhere, not lost
            if moved:
                self._show_error("Cannot save the project", message)
            return False
        if moved:
            # Another file, another runs folder: the panels follow the copy's runs (the undo history stays).
            self.document = ProjectDocument(project)
            self.training.set_document(self.document)
            self.inspect.set_document(self.document)
        self.undo_stack.setClean()
        self._discard_recovery()
        self._watch_file()
        self._add_recent_file(Path(path))
        self._update_title()
        self.statusBar().showMessage(f"Saved {Path(path).name}", 4000)
        return True

    def _preflight_training(self) -> bool:
        """Whether training may start now; says in one place what stands in the way (and offers Save).

        A network with errors is refused before anything is saved or started; an
        untitled project is offered a Save (its runs live in a folder beside the file);
        unsaved changes are saved, so the run and the file agree.
        """
        self.autosave()  # whatever happens next, the unsaved network is kept
        errors = [error for error in self.inference.totals().errors]
        if errors:
            lines = [f"{self._node_name(error.node_id)}: {error.message}" for error in errors[:5]]
            more = f"\n… and {len(errors) - 5} more" if len(errors) > 5 else ""
            self._show_error("Cannot train yet",
                             f"The network has {len(errors)} error{'s' if len(errors) != 1 else ''}; fix "
                             f"{'them' if len(errors) != 1 else 'it'} first (the red nodes offer a Fix):\n\n"
                             + "\n".join(lines) + more)
            return False
        ends = self._missing_ends()
        if ends:
            self._show_error("Cannot train yet", ends)
            return False
        problems = self.data_panel.current_problems()  # the Data tab's verdict, when it is up to date
        if problems:
            fit = {"folder": "these images", "csv": "this table"}.get(str(self.project.data.get("source")))
            hint = (f"\n\nThe Data tab's 'Fit the network to {fit}' sizes the network for them." if fit
                    else "\n\nThe Data tab shows the data and what does not fit.")
            self.data_dock.show()
            self.data_dock.raise_()
            self._show_error("Cannot train yet", "\n".join(problems) + hint)
            return False
        from dlstudio.core.memory import check_fits  # torch-free: estimated from the inferred shapes

        too_big = check_fits(self.project.graph, int(self.project.training.get("batch_size") or 64))
        if too_big:
            self._show_error("Cannot train yet", too_big)
            return False
        if self.project.path is None:
            if not self._ask_save_before_training():
                self.statusBar().showMessage("Not trained: the project needs a file first", 5000)
                return False
            return self.save_as()
        return self.save() if self.is_dirty() else True

    def _missing_ends(self) -> str:
        """Why the network cannot be trained as drawn for want of its ends ('' when it has one of each): training
        feeds one Input node and scores one Output node."""
        graph = self.project.graph
        inputs = [node.name for node in graph if node.spec.role == "input"]
        outputs = [node.name for node in graph if node.spec.role == "output"]
        palette = "drag one from Input & Output in the Layers palette"
        if not inputs:
            return f"The network has no Input node: {palette} and wire it to your first layer."
        if not outputs:
            return (f"The network has no Output node, which sets the task and the number of classes: {palette} "
                    "and wire your last layer to it.")
        if len(inputs) > 1 or len(outputs) > 1:
            many = inputs if len(inputs) > 1 else outputs
            kind = "Input" if len(inputs) > 1 else "Output"
            return (f"Training takes one {kind} node; this network has {len(many)} ({', '.join(many)}): "
                    "remove all but one.")
        return ""

    def _node_name(self, node_id: str) -> str:
        graph = self.project.graph
        return graph.node(node_id).name if node_id in graph else node_id

    def save_quietly(self) -> bool:
        """Save to the project's own file (after a run was recorded in it), without asking."""
        return self.project.path is not None and self._save_to(self.project.path)

    def evaluate_folder(self) -> None:
        """Training › Evaluate on a Labelled Folder: the Inspect dock's Evaluate tab, then its folder dialog."""
        self.inspect.show_evaluate()  # loads the latest run when none is (on a worker thread)
        view = self.inspect.evaluate
        if not view.session.is_loaded and not self.document.run_dirs():
            view.evaluate("")  # says in the tab why not: there is no trained model yet
            return
        folder = self._ask_evaluate_folder()
        if not folder:
            return
        if view.session.is_loaded:
            view.evaluate(folder)
            return

        def when_loaded(_info: object) -> None:
            view.session.model_loaded.disconnect(when_loaded)
            view.evaluate(folder)

        view.session.model_loaded.connect(when_loaded)

    def _ask_evaluate_folder(self) -> str:
        return self.inspect.evaluate.choose_folder()

    def export_model(self) -> None:
        """File › Export Model: a dialog that writes and verifies ONNX, TorchScript, safetensors or a script."""
        self._open_export_dialog(self._trained_runs())

    def _trained_runs(self) -> list[tuple[str, Path]]:
        """The project's runs that hold a checkpoint, newest first, labelled as Start from run labels them."""
        return [(label, run_dir) for label, run_dir in self._runs_to_start_from()
                if (run_dir / "best.pt").is_file() or (run_dir / "last.pt").is_file()]

    def _open_export_dialog(self, runs: list[tuple[str, Path]], format: str | None = None) -> None:
        from dlstudio.gui.export_dialog import ExportDialog

        dialog = ExportDialog(self.project, runs, self)
        if format is not None:
            dialog.select_format(format)
        try:
            dialog.exec()
        finally:
            dialog.deleteLater()

    def export_python_code(self) -> None:
        """File › Export Python Code: the Export dialog on its model-code format (the class, preprocess.json
        beside it, and what to load into it), the same export as ``dlstudio export --format python``."""
        self._open_export_dialog(self._trained_runs(), format="python")

    # -- edits: every one is an undo command -----------------------------------

    def push(self, command: QUndoCommand) -> bool:
        """Push one undo step, refreshing shapes once at the end however many events it causes.

        Refused (False, with a status message) while training locks editing.
        """
        if self._refuse_if_locked():
            return False
        with self.scene.batched():
            self.undo_stack.push(command)
        return True

    def undo(self) -> None:
        if self._refuse_if_locked():
            return
        with self.scene.batched():
            self.undo_stack.undo()

    def redo(self) -> None:
        if self._refuse_if_locked():
            return
        with self.scene.batched():
            self.undo_stack.redo()

    def _refuse_if_locked(self) -> bool:
        if self.editing_locked:
            self.statusBar().showMessage(f"{LOCKED_MESSAGE}: stop training to change the network", 4000)
        return self.editing_locked

    def set_editing_locked(self, locked: bool) -> None:
        """Make the network read-only (and show it) while training, or editable again."""
        self.editing_locked = locked
        self.scene.set_read_only(locked)
        self.view.set_locked_message(LOCKED_MESSAGE if locked else "")
        self.palette.setEnabled(not locked)
        self.data_panel.set_read_only(locked)
        self.inspector.setEnabled(not locked)
        self.block_actions.set_enabled(not locked)
        self.starting_weights.setEnabled(not locked)
        for action in (self.new_action, self.new_from_template_action, self.open_action, self.import_model_action,
                       self.save_as_action,
                       self.cut_action,
                       self.paste_action, self.duplicate_action, self.delete_action, self.auto_layout_action,
                       self.auto_layout_tb_action):
            action.setEnabled(not locked)
        self.recent_menu.setEnabled(not locked)
        self.undo_action.setEnabled(not locked and self.undo_stack.canUndo())
        self.redo_action.setEnabled(not locked and self.undo_stack.canRedo())

    def add_layer(self, type_id: str, scene_pos: QPointF) -> str | None:
        """Add a node of ``type_id`` centred on ``scene_pos``; returns its id (None while editing is locked)."""
        command = AddNodeCommand(self.project.graph, self.project.layout, type_id,
                                 (scene_pos.x() - NODE_WIDTH / 2, scene_pos.y() - HEADER_HEIGHT / 2))
        if not self.push(command):
            return None
        self.scene.select_nodes([command.node_id])
        return command.node_id

    def connect_ports(self, src: str, src_port: str, dst: str, dst_port: str) -> None:
        ok, reason = self.project.graph.can_connect(src, src_port, dst, dst_port)
        if not ok:
            self.statusBar().showMessage(f"Cannot connect: {reason}", 6000)
            return
        if self.push(ConnectCommand(self.project.graph, src, src_port, dst, dst_port)):
            graph = self.project.graph
            self.statusBar().showMessage(f"Connected {graph.node(src).name} to {graph.node(dst).name}", 3000)

    def set_param(self, node_id: str, name: str, value: object) -> None:
        self.push(SetParamCommand(self.project.graph, node_id, name, value))

    def rename_node(self, node_id: str, name: str) -> None:
        try:
            self.project.graph.check_rename(node_id, name)
        except GraphError as error:  # another node has the name: refused, with the reason where it was typed
            message = error.message[:1].upper() + error.message[1:]
            self.statusBar().showMessage(message, 6000)
            self.inspector.show_node(node_id)
            self.inspector.refusal.setText(message)
            return
        self.push(RenameCommand(self.project.graph, node_id, name))

    def apply_fix(self, node_id: str) -> bool:
        """Apply the offered fix of ``node_id``'s error as one undo step; False if there is none."""
        error = self.inference.info(node_id).error
        if error is None or error.fix is None:
            return False
        name = self.project.graph.node(node_id).name
        command = make_fix_command(self.project.graph, self.project.layout, node_id, error.fix,
                                   self.scene.node_sizes())
        if not self.push(command):
            return False
        self.statusBar().showMessage(f"Fixed {name}: {error.fix.description}", 4000)
        graph = self.project.graph
        if node_id in graph:  # the fixed node and what now feeds it (a layer the fix inserted) come into sight
            self._reveal_nodes([node_id, *(edge.src for edge in graph.input_edges(node_id))])
        return True

    def _reveal_nodes(self, node_ids: list[str]) -> None:
        rect = QRectF()
        for node_id in node_ids:
            item = self.scene.node_items.get(node_id)
            if item is not None and item.isVisible():
                rect = rect.united(item.sceneBoundingRect())
        self.view.reveal(rect)

    def delete_selection(self) -> None:
        nodes = self.scene.selected_node_ids()
        edges: list[Edge] = self.scene.selected_edges()
        if nodes or edges:
            self.push(RemoveCommand(self.project.graph, self.project.layout, nodes, edges,
                                    blocks=self.project.blocks, frozen=self.project.frozen))

    def select_all(self) -> None:
        self.scene.select_nodes(list(self.project.graph.nodes))

    def copy(self) -> bool:
        nodes = self.scene.selected_node_ids()
        if not nodes:
            return False
        project = self.project
        clipboard.copy_to_clipboard(clipboard.make_fragment(project.graph, project.layout, nodes, project.blocks,
                                                            project.frozen))
        self.statusBar().showMessage(clipboard.copy_message(self.project.graph, nodes), 3000)
        return True

    def cut(self) -> None:
        if self.copy():
            self.delete_selection()

    def paste(self) -> None:
        fragment = clipboard.fragment_from_clipboard()
        if fragment is None:
            self.statusBar().showMessage("Nothing to paste: the clipboard holds no dlstudio layers", 4000)
            return
        self._paste_fragment(fragment)

    def duplicate(self) -> None:
        nodes = self.scene.selected_node_ids()
        if nodes:
            project = self.project
            self._paste_fragment(clipboard.make_fragment(project.graph, project.layout, nodes, project.blocks,
                                                         project.frozen), "Duplicate")

    def _paste_fragment(self, fragment: dict, verb: str = "Paste") -> None:
        if self._refuse_if_locked():
            return
        try:
            command, new_ids = clipboard.make_paste_command(self.project.graph, self.project.layout, fragment,
                                                            verb=verb, blocks=self.project.blocks,
                                                            frozen=self.project.frozen)
            with self.scene.batched():
                command.apply()  # a clipboard from elsewhere may hold what the graph refuses: nothing half pasted
        except (DlstudioError, KeyError, TypeError, ValueError) as error:
            self.statusBar().showMessage(f"Cannot {verb.lower()}: {getattr(error, 'message', None) or error}", 6000)
            return
        if self.push(command):
            self.scene.select_nodes(new_ids)
            self._reveal_nodes(new_ids)
            done = "Duplicated" if verb == "Duplicate" else "Pasted"
            self.statusBar().showMessage(clipboard.paste_message(self.project.graph, fragment, new_ids, done), 4000)

    def auto_layout(self, direction: str = LEFT_TO_RIGHT) -> None:
        layout = self.project.layout
        new = self._layered_positions(direction)
        old = {node_id: layout.position(node_id) or (0.0, 0.0) for node_id in new}
        changed = {n: p for n, p in new.items() if old[n] != p}
        if changed:
            self.push(MoveNodesCommand(layout, {n: old[n] for n in changed}, changed, "Auto-layout"))
        self.view.fit_all()

    # -- view state ------------------------------------------------------------

    def set_theme(self, theme: str, remember: bool = True) -> None:
        self.theme = DARK if theme == DARK else LIGHT
        app = QApplication.instance()
        if isinstance(app, QApplication):
            apply_theme(app, self.theme)
        colors = canvas_colors(self.theme)
        self.view.set_colors(colors)
        self.scene.set_colors(colors)
        (self.dark_theme_action if self.theme == DARK else self.light_theme_action).setChecked(True)
        icons.refresh(self, self.training)
        if remember:
            self.settings.setValue("theme", self.theme)

    def fit_network_to_data(self, path: str) -> bool:
        """Data › Fit the network to these images (or this table): the Input's shape (channels and size, or feature
        columns) and the head's class count from the data, as one undo step; False (and why, in the status bar)
        when nothing was changed."""
        from dlstudio.core.project.fit_to_data import fit_network, survey_image_folder, survey_table

        if self._refuse_if_locked():
            return False
        try:
            if self.project.data.get("source") == "csv":
                survey = survey_table(path, str(self.project.data.get("label_column") or ""))
            else:
                survey = survey_image_folder(path)
            trial = Project(graph=self.project.graph.copy())  # the changes, worked out on a copy
            changes = fit_network(trial, survey)
        except DlstudioError as error:
            self.statusBar().showMessage(f"Cannot fit the network to {Path(path).name}: {error.message}", 8000)
            return False
        name = survey.name
        if not changes:
            self.statusBar().showMessage(f"The network already fits {name}: {survey.describe()}", 6000)
            return False
        graph = self.project.graph
        self.push(MacroCommand(f"Fit the network to {name}",
                               [SetParamCommand(graph, c.node_id, c.param, c.new) for c in changes]))
        self.statusBar().showMessage(f"Fitted the network to {name}: {survey.describe()}", 8000)
        return True

    def _on_data_panel_preview_shown(self, preview: object) -> None:
        names = getattr(preview, "class_names", None)
        self.starting_weights.set_data_classes(len(names) if names else None)
        self.training.warm_up()  # the first time only: torch is loaded by now, the window long on screen

    def _update_title(self) -> None:
        self.setWindowTitle(f"{self.project.name}[*] — dlstudio")
        self.setWindowModified(self.is_dirty())

    def _update_totals(self) -> None:
        totals = self.inference.totals()
        errors = len(totals.errors)
        self.totals_label.setText(
            f"{totals.nodes} nodes  ·  {totals.params:,} parameters ({format_count(totals.params)})  ·  "
            f"{format_count(totals.macs)} MACs  ·  {errors} error{'s' if errors != 1 else ''}")

    def _restore_window_state(self) -> None:
        geometry = self.settings.value("window/geometry")
        if isinstance(geometry, QByteArray) and not geometry.isEmpty():
            self.restoreGeometry(geometry)
        else:
            self.resize(1400, 900)
        state = self.settings.value("window/state")
        if isinstance(state, QByteArray) and not state.isEmpty():
            # Refused (default kept) when saved by another layout.
            self._state_restored = self.restoreState(state, LAYOUT_VERSION)

    def reset_layout(self) -> None:
        """Every dock back to its first-launch place, size and visibility."""
        self.restoreState(self._default_state, LAYOUT_VERSION)
        self._size_docks_for_window()
        QTimer.singleShot(0, self._hide_stray_tab_bars)

    def _hide_stray_tab_bars(self) -> None:
        """Hide the dock tab bars Qt leaves behind unused.

        Qt 6.11 makes two tab bars for the second group of tabbed docks (Metrics | Inspect) and lays out
        only one; the other stays where it was first drawn, over the Layers palette. The one in use sits
        against the group's visible dock; a bar with the same tabs anywhere else is the stray one.
        """
        bars = [bar for bar in self.findChildren(QTabBar) if bar.parent() is self and bar.isVisible()]
        docks = {dock.windowTitle(): dock for dock in self.findChildren(QDockWidget)}
        tabs = [tuple(bar.tabText(i) for i in range(bar.count())) for bar in bars]
        for bar, texts in zip(bars, tabs):
            if tabs.count(texts) < 2:
                continue
            shown = [docks[text] for text in texts if text in docks and docks[text].isVisible()
                     and not docks[text].isFloating()]
            if not any(_touches(bar.geometry(), dock.geometry()) for dock in shown):
                bar.hide()

    def _size_docks_for_window(self) -> None:
        """First-launch proportions for the window's real size: the canvas gets most of it, the plots a strip
        below until there is something to plot, the side panels what their forms need."""
        self.resizeDocks([self.metrics_dock], [max(190, int(self.height() * 0.22))], Qt.Orientation.Vertical)
        self.resizeDocks([self.palette_dock, self.inspector_dock], [200, 350], Qt.Orientation.Horizontal)
        self.resizeDocks([self.metrics_dock, self.runs_dock], [int(self.width() * 0.62), int(self.width() * 0.38)],
                         Qt.Orientation.Horizontal)

    def recent_files(self) -> list[str]:
        value = self.settings.value("recent_files", [])
        if isinstance(value, str):  # QSettings gives a bare string for a one-item list on some back ends
            value = [value]
        return [str(v) for v in value or []]

    def _add_recent_file(self, path: Path) -> None:
        text = str(path.resolve())
        files = [text, *(f for f in self.recent_files() if f != text)][:MAX_RECENT_FILES]
        self.settings.setValue("recent_files", files)
        remember(PROJECTS, path)  # the next Open or Save As starts in this folder

    def _fill_recent_menu(self) -> None:
        self.recent_menu.clear()
        files = self.recent_files()
        for path in files:
            action = self.recent_menu.addAction(Path(path).name)
            action.setToolTip(path)
            action.triggered.connect(lambda checked=False, p=path: self._open_recent(p))
        if not files:
            self.recent_menu.addAction("(none)").setEnabled(False)

    def _open_recent(self, path: str) -> None:
        if self._confirm_discard():
            self.open_file(path)

    # -- closing ---------------------------------------------------------------

    def _confirm_discard(self) -> bool:
        """True when the current project may be replaced: it is clean, saved now, or the user discards it."""
        if not self.is_dirty():
            return True
        choice = self._ask_save_changes()
        if choice == SAVE_CHOICE:
            return self.save()
        return choice == DISCARD_CHOICE

    def closeEvent(self, event: QCloseEvent) -> None:
        if self.training.is_running():
            if self._ask_stop_training() != STOP_AND_CLOSE_CHOICE:
                event.ignore()
                return
            self.statusBar().showMessage("Stopping training…")
            self.training.stop_and_wait()
        if not self._confirm_discard():
            event.ignore()
            return
        if self.sweep_dialog is not None:
            self.sweep_dialog.stop_and_wait()  # its trial stops after the batch; the study keeps finished trials
        self.inspect.shut_down()
        self.data_panel.cancel_loading()
        self.training.wait_for_background()
        self._discard_recovery()  # a clean close: saved, or the person chose to discard
        self.settings.setValue("window/geometry", self.saveGeometry())
        self.settings.setValue("window/state", self.saveState(LAYOUT_VERSION))
        event.accept()

    def showEvent(self, event: QShowEvent) -> None:
        super().showEvent(event)
        if not self._fitted_once:
            self._fitted_once = True
            if not self._state_restored:
                self._size_docks_for_window()
            self.view.fit_all()
            QTimer.singleShot(0, self._hide_stray_tab_bars)  # once the docks have their real places

    # -- dialogs (tests replace these) ----------------------------------------------

    def _ask_save_before_training(self) -> bool:
        box = QMessageBox(QMessageBox.Icon.Information, "Save before training",
                          "Training keeps every run (its curves and checkpoints) in a folder beside the project "
                          "file, so the project needs a file first.", parent=self)
        save = box.addButton("Save As…", QMessageBox.ButtonRole.AcceptRole)
        box.addButton(QMessageBox.StandardButton.Cancel)
        box.exec()
        return box.clickedButton() is save

    def _ask_save_changes(self) -> str:
        answer = QMessageBox.question(
            self, "Unsaved changes", f"Save the changes to {self.project.name}?",
            QMessageBox.StandardButton.Save | QMessageBox.StandardButton.Discard | QMessageBox.StandardButton.Cancel,
            QMessageBox.StandardButton.Save)
        return {QMessageBox.StandardButton.Save: SAVE_CHOICE,
                QMessageBox.StandardButton.Discard: DISCARD_CHOICE}.get(answer, CANCEL_CHOICE)

    def _ask_stop_training(self) -> str:
        box = QMessageBox(QMessageBox.Icon.Question, "Training in progress",
                          "The network is still training. Stop it (keeping a checkpoint to resume from) and close?",
                          parent=self)
        stop = box.addButton("Stop and Close", QMessageBox.ButtonRole.AcceptRole)
        box.addButton("Keep Training", QMessageBox.ButtonRole.RejectRole)
        box.exec()
        return STOP_AND_CLOSE_CHOICE if box.clickedButton() is stop else KEEP_TRAINING_CHOICE

    def _ask_restore(self, entry: Recoverable) -> str:
        box = QMessageBox(QMessageBox.Icon.Question, "Restore unsaved changes",
                          f"dlstudio closed without saving “{entry.name}”. Restore the changes it autosaved?\n\n"
                          f"{entry.describe()}", parent=self)
        restore = box.addButton("Restore", QMessageBox.ButtonRole.AcceptRole)
        discard = box.addButton("Discard", QMessageBox.ButtonRole.DestructiveRole)
        box.addButton("Later", QMessageBox.ButtonRole.RejectRole)
        box.exec()
        return {restore: "restore", discard: "discard"}.get(box.clickedButton(), "later")

    def _ask_reload_changed_file(self) -> bool:
        unsaved = " Your unsaved changes here would be lost." if self.is_dirty() else ""
        answer = QMessageBox.question(
            self, "Project changed on disk",
            f"{self.project.path.name} was changed by another program (for example a run recorded by dlstudio "
            f"train). Reload it?{unsaved}", QMessageBox.StandardButton.Yes | QMessageBox.StandardButton.No,
            QMessageBox.StandardButton.Yes)
        return answer == QMessageBox.StandardButton.Yes

    def _ask_save_as_after_error(self, message: str) -> bool:
        answer = QMessageBox.warning(self, "Cannot save the project", f"{message}\n\nSave it under another name?",
                                     QMessageBox.StandardButton.Save | QMessageBox.StandardButton.Cancel,
                                     QMessageBox.StandardButton.Save)
        return answer == QMessageBox.StandardButton.Save

    def _ask_overwrite_changed_file(self) -> bool:
        answer = QMessageBox.warning(
            self, "Project changed on disk",
            f"{self.project.path.name} was changed by another program since you opened it. Overwrite it with "
            "this window's version? (Choose No, then Save As to keep both.)",
            QMessageBox.StandardButton.Yes | QMessageBox.StandardButton.No, QMessageBox.StandardButton.No)
        return answer == QMessageBox.StandardButton.Yes

    def _ask_import_request(self, classes: int) -> ImportRequest | None:
        from dlstudio.core.importer import classification_models
        from dlstudio.gui.import_dialog import ask_import

        return ask_import(self, classification_models(), classes)

    def _ask_weights_file(self) -> str:
        return ask_weights_file(self)

    def _ask_starting_run(self, labels: list[str]) -> str:
        return ask_run(self, labels)

    def _runs_to_start_from(self) -> list[tuple[str, Path]]:
        """The project's runs, newest first, labelled with their best validation accuracy.

        The Runs panel's rows (read on a worker thread) say it; a run it has not listed yet is read here.
        """
        from dlstudio.core.training.runs import summarize_run

        runs = []
        for run_dir in reversed(self.document.run_dirs()):
            row = self.training.runs.run_row(str(run_dir)) or summarize_run(run_dir)
            accuracy = row.get("best_val_accuracy")
            label = run_dir.name if accuracy is None else f"{run_dir.name} ({accuracy:.1%} validation accuracy)"
            runs.append((label, run_dir))
        return runs

    def _ask_image_folder(self) -> str:
        folder = QFileDialog.getExistingDirectory(self, "Choose a folder of images (one subfolder per class)",
                                                  start_folder(IMAGES))
        remember(IMAGES, folder)
        return folder

    def _ask_open_path(self) -> str:
        return QFileDialog.getOpenFileName(self, "Open project", start_folder(PROJECTS), PROJECT_FILTER)[0]

    def _ask_save_path(self) -> str:
        start = str(self.project.path) if self.project.path else start_path(PROJECTS, f"{self.project.name}.dlstudio")
        return QFileDialog.getSaveFileName(self, "Save project", start, PROJECT_FILTER)[0]

    def show_sweep(self) -> None:
        """Training › Sweep…: the project must be saved (trials are runs beside it) and free of errors first."""
        from dlstudio.gui.sweep_dialog import SweepDialog

        if self.sweep_dialog is not None and self.sweep_dialog.is_running():
            self.sweep_dialog.raise_()
            return
        if not self._preflight_training():
            return
        if self.sweep_dialog is not None:
            self.sweep_dialog.deleteLater()
        self.sweep_dialog = SweepDialog(self.project, self)
        self.sweep_dialog.run_started.connect(self._on_sweep_run_finished)  # listed at once, as training does
        self.sweep_dialog.run_finished.connect(self._on_sweep_run_finished)
        self.sweep_dialog.show()

    def _on_sweep_run_finished(self, run_dir: str) -> None:
        """A trial's run started or ended (the sweep recorded it in the file): list it, as a run trained here is."""
        from dlstudio.core.training.runs import record_run

        if not self.document.owns(run_dir):
            return  # a sweep of the project that was open before
        record_run(self.project, Path(run_dir))
        self._on_training_run_recorded()
        self.document.runs_changed.emit()
        self.training.refresh_runs()

    def _show_error(self, title: str, message: str) -> None:
        QMessageBox.warning(self, title, message)

    def show_shortcuts(self) -> None:
        """Help › Keyboard Shortcuts: read from the menus as they are now (one window, reused)."""
        from dlstudio.gui.shortcuts_dialog import ShortcutsDialog

        if self._shortcuts_dialog is None:
            self._shortcuts_dialog = ShortcutsDialog(self.menuBar(), self)
        self._shortcuts_dialog.show()
        self._shortcuts_dialog.raise_()

    def _show_about(self) -> None:
        QMessageBox.about(self, "About dlstudio",
                          f"<b>dlstudio {__version__}</b><p>Draw a neural network, train it, look inside it.</p>"
                          "<p>Runs locally; nothing leaves your machine.</p>")

    def _show_layer_help(self) -> None:
        nodes = self.scene.selected_node_ids()
        if nodes:
            spec = self.project.graph.node(nodes[0]).spec
            QMessageBox.information(self, f"{spec.display_name}", spec.help)
        else:
            QMessageBox.information(self, "Layer help", "Select a node, or hover over a layer in the palette, to "
                                    "read what it does.")

    # -- slots -----------------------------------------------------------------

    def _on_undo_stack_clean_changed(self, clean: bool) -> None:
        self._update_title()
        if clean:
            self._discard_recovery()  # back to what the file holds: nothing to recover

    def _on_undo_stack_index_changed(self, index: int) -> None:
        if self.is_dirty():
            self._autosave_timer.start()  # restarted by every edit: saved after a pause

    def _on_undo_stack_undo_text_changed(self, text: str) -> None:
        self.undo_action.setText(f"&Undo {text}".strip())  # the menu says what; the toolbar button stays "Undo"
        self.undo_action.setToolTip(_tooltip(self.undo_action))

    def _on_undo_stack_redo_text_changed(self, text: str) -> None:
        self.redo_action.setText(f"&Redo {text}".strip())
        self.redo_action.setToolTip(_tooltip(self.redo_action))

    def _on_view_layer_dropped(self, type_id: str, scene_pos: QPointF) -> None:
        if not self.editing_locked:
            self.add_layer(type_id, scene_pos)
        self.view.setFocus()

    def _on_palette_layer_activated(self, type_id: str) -> None:
        self.hide_welcome()  # a layer added from the palette goes on the canvas, which must be seen
        self.add_layer(type_id, self.view.center_scene_pos())

    def _on_scene_nodes_dragged(self, old: dict, new: dict) -> None:
        self.push(MoveNodesCommand(self.project.layout, old, new, graph=self.project.graph))

    def _on_scene_status_message(self, message: str) -> None:
        if message:
            self.statusBar().showMessage(message, 6000)
        else:
            self.statusBar().clearMessage()

    def _on_scene_infos_changed(self, node_ids: list) -> None:
        self._update_totals()
        self.training.graph_changed()
        self.inspector.on_infos_changed(node_ids)

    def _on_scene_selection_changed(self) -> None:
        nodes = self.scene.selected_node_ids()
        blocks = self.scene.selected_block_ids()
        if len(blocks) == 1 and set(nodes) <= set(self.project.blocks.get(blocks[0]).nodes):
            self.inspector.show_block(blocks[0])  # one block selected (collapsed, or by its frame's label)
            self._bring_inspector_forward()
            return
        single = nodes[0] if len(nodes) == 1 else None
        if single != self.inspector.node_id or single is None:
            self.inspector.show_node(single, len(nodes))
        if single is not None:
            self._bring_inspector_forward()
        if single is not None:
            self.inspect.on_node_selected(single)
        if single is not None:
            error = self.inference.info(single).error
            if error is not None:
                self.statusBar().showMessage(f"{self.project.graph.node(single).name}: {error.message}")

    def _bring_inspector_forward(self) -> None:
        """A node was picked: its parameters come to the front of the right dock (Training and Data share it),
        except while a run is going, whose progress the person is probably watching there."""
        if not self.training.is_running() and not self.inspector_dock.isFloating():
            self.inspector_dock.raise_()

    def _on_scene_context_menu_requested(self, node_id: str | None, screen_pos) -> None:
        menu = QMenu(self)
        if node_id is not None:
            error = self.inference.info(node_id).error
            if error is not None and error.fix is not None:
                menu.addAction(f"Fix: {error.fix.description}", lambda: self.apply_fix(node_id))
                menu.addSeparator()
            menu.addActions([self.copy_action, self.cut_action, self.duplicate_action, self.delete_action])
            menu.addSeparator()
            self.block_actions.add_node_entries(menu)
        else:
            menu.addActions([self.paste_action, self.select_all_action, self.auto_layout_action])
        menu.exec(screen_pos)
        menu.deleteLater()

    def _on_scene_block_context_menu_requested(self, block_id: str, screen_pos) -> None:
        menu = QMenu(self)
        self.block_actions.fill_block_menu(menu, block_id)
        menu.addSeparator()
        menu.addActions([self.copy_action, self.cut_action, self.duplicate_action, self.delete_action])
        menu.exec(screen_pos)
        menu.deleteLater()

    def _on_data_panel_setting_edit_requested(self, key: str, value: object) -> None:
        if self._refuse_if_locked():
            return
        try:  # rules across settings (the split fractions) are checked before the command is pushed
            validate_settings(DATA_SETTINGS, {**self.project.data, key: value}, "data")
        except ProjectError as error:
            self.data_panel.show_refusal(error.message)
            return
        self.push(SetSettingCommand(self.project, "data", key, value))

    def _on_data_panel_settings_edit_requested(self, edits: dict) -> None:
        """Related data settings changed together (a source and its path): one undo step."""
        if self._refuse_if_locked():
            return
        try:
            validate_settings(DATA_SETTINGS, {**self.project.data, **edits}, "data")
        except ProjectError as error:
            self.data_panel.show_refusal(error.message)
            return
        self.push(MacroCommand("Change the data source",
                               [SetSettingCommand(self.project, "data", key, value) for key, value in edits.items()]))

    def _on_training_status_message(self, message: str, milliseconds: int) -> None:
        self.statusBar().showMessage(message, milliseconds)

    def _on_training_run_recorded(self) -> None:
        """The project's list of runs changed: written into its file at once, merged with what the file holds now
        (a run another program recorded meanwhile is kept; the window's other unsaved changes are not saved)."""
        path = self.project.path
        if path is not None:
            ours = list(self.project.runs)
            forgotten = self.document.forgotten_runs
            normalization = self.project.normalization

            def merge(on_disk: Project) -> None:
                kept = [entry for entry in on_disk.runs if entry not in forgotten]
                on_disk.runs = kept + [entry for entry in ours if entry not in kept]  # the newest run last
                on_disk.normalization = normalization

            try:
                update_project_file(path, merge)
            except (DlstudioError, OSError) as error:
                message = getattr(error, "message", None) or str(error)
                self.statusBar().showMessage(f"Cannot record the run in {path.name}: {message}", 10000)
            else:
                self._watch_file()
        self.data_panel.show_normalization()

    def _on_training_setting_edit_requested(self, section: str, key: str, value: object) -> None:
        self.push(SetSettingCommand(self.project, section, key, value))

    def _on_runs_apply_settings_requested(self, run: dict) -> None:
        """Make a run's training settings (and layer parameters, same network) the project's: one undo step."""
        from dlstudio.gui.run_compare import apply_run_settings_command

        command, message = apply_run_settings_command(self.project, run)
        if command is not None and not self.push(command):
            return  # refused while training locks editing (push said why)
        self.statusBar().showMessage(message, 8000)

    def _on_training_training_started(self) -> None:
        self.training_dock.raise_()

    def _on_training_skipped_found(self, entries: list) -> None:
        self.data_panel.add_training_skipped(entries)

    def _on_training_plots_filled(self) -> None:
        """The plots have something to show: the strip they had while empty grows, once, to a readable height."""
        if self._plots_grown or self._state_restored or self.metrics_dock.isFloating():
            return
        self._plots_grown = True
        wanted = int(self.height() * 0.32)
        if self.metrics_dock.height() < wanted:
            self.resizeDocks([self.metrics_dock], [wanted], Qt.Orientation.Vertical)

    def _on_inspect_shown(self) -> None:
        """A view of the Inspect dock was asked for (a drop, a confusion cell): show it with room to read it."""
        self.inspect_dock.show()
        self.inspect_dock.raise_()
        self._give_inspect_room()

    def _give_inspect_room(self) -> None:
        # The drawing pad, image cards and feature-map grids need more height than the plots' strip.
        wanted = int(self.height() * 0.4)
        if not self.inspect_dock.isFloating() and self.inspect_dock.height() < wanted:
            self.resizeDocks([self.inspect_dock], [wanted], Qt.Orientation.Vertical)

    def _on_inspect_dock_visibility_changed(self, visible: bool) -> None:
        if not visible:
            return
        self.inspect.ensure_loaded()
        if not self._inspect_grown and not self._state_restored:
            # The person's first look at it (its tab clicked): room to read it, once; a size they set stays.
            self._inspect_grown = True
            QTimer.singleShot(0, self._give_inspect_room)

    # -- dropping image files ----------------------------------------------------

    def dragEnterEvent(self, event: QDragEnterEvent) -> None:
        if event.mimeData().hasUrls() and any(url.isLocalFile() for url in event.mimeData().urls()):
            event.acceptProposedAction()
        else:
            super().dragEnterEvent(event)

    def dropEvent(self, event: QDropEvent) -> None:
        paths = [url.toLocalFile() for url in event.mimeData().urls() if url.isLocalFile()]
        if len(paths) == 1 and paths[0].endswith(".dlstudio"):
            event.acceptProposedAction()
            if self._confirm_discard():
                self.open_file(paths[0])
            return
        if self.inspect.classify_files(paths):
            event.acceptProposedAction()
        else:
            self.statusBar().showMessage("Drop image files or folders to classify them, or a .dlstudio project "
                                         "to open it", 5000)
            event.ignore()


def _tooltip(action: QAction) -> str:
    """The action's full text and its shortcut, e.g. "Undo Delete conv1 (Ctrl+Z)"."""
    text = action.text().replace("&", "")
    shortcut = action.shortcut().toString(QKeySequence.SequenceFormat.NativeText)
    return f"{text} ({shortcut})" if shortcut else text


def _touches(bar: QRect, dock: QRect, slack: int = 8) -> bool:
    """Whether a tab bar sits against a dock's top or bottom edge, across the dock's width."""
    vertical = abs(bar.top() - dock.bottom()) <= slack or abs(bar.bottom() - dock.top()) <= slack
    return vertical and bar.left() < dock.right() and dock.left() < bar.right()


def _signature(path: Path) -> tuple[int, int] | None:
    """(modification time in ns, size) of a file, to tell another program's write from our own."""
    try:
        status = os.stat(path)
    except OSError:
        return None
    return status.st_mtime_ns, status.st_size

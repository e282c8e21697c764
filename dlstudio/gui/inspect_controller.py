"""Use and look inside a trained model from the window: which run is loaded, and who follows what.

The controller owns the :class:`ModelSession` and the Inspect dock's views
(Classify, Feature maps, Saliency, Weights, Dream, Mistakes, Evaluate). It connects them
to the rest of the window: a node clicked on the canvas is the layer the
feature maps (and the weights and dream views) show; image files dropped on
the window are classified; a click on a cell of the confusion matrix opens
the gallery of those validation images; a worst-classified file of an
evaluation opens in Classify; a finished run is loaded. Loading
happens on first use, so the window paints before torch is imported.

It works on the window's :class:`ProjectDocument`: :meth:`set_document`
drops the model and everything the views show of the previous project.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from PySide6.QtCore import QObject, Qt, Signal, Slot
from PySide6.QtWidgets import QComboBox, QHBoxLayout, QLabel, QSizePolicy, QTabWidget, QVBoxLayout, QWidget

from dlstudio.core.project import ProjectDocument
from dlstudio.gui.inspect.classify_view import ClassifyView
from dlstudio.gui.inspect.dream_view import DreamView
from dlstudio.gui.inspect.evaluate_view import EvaluateView
from dlstudio.gui.inspect.feature_maps_view import FeatureMapsView
from dlstudio.gui.inspect.mistakes_view import MistakesView
from dlstudio.gui.inspect.model_session import ModelSession
from dlstudio.gui.inspect.saliency_view import SaliencyView
from dlstudio.gui.inspect.weights_view import WeightsView

IMAGE_SUFFIXES = (".png", ".jpg", ".jpeg", ".bmp", ".gif", ".webp", ".tif", ".tiff")
CHECKPOINTS = ("best", "last")
# Training states after which the run's checkpoints are complete enough to look at.
_ENDED = ("completed", "early_stopped", "stopped")


class InspectController(QObject):
    """The Inspect dock: a run chooser above tabs of views that share one loaded model."""

    shown = Signal()  # a view was brought forward (a drop, a confusion cell): the window shows the dock

    def __init__(self, parent: QObject | None = None) -> None:
        super().__init__(parent)
        self.document = ProjectDocument()
        self.session = ModelSession(self)
        self.session.loading.connect(self._on_session_loading)
        self.session.model_loaded.connect(self._on_session_model_loaded)
        self.session.model_failed.connect(self._on_session_model_failed)
        self._pending_cell: tuple[int, int] | None = None
        self._wanted: tuple[str, str] | None = None  # (run dir, checkpoint) asked for last

        self.classify = ClassifyView(self.session)
        self.feature_maps = FeatureMapsView(self.session)
        self.saliency = SaliencyView(self.session)
        self.weights = WeightsView(self.session)
        self.dream = DreamView(self.session)
        self.mistakes = MistakesView(self.session)
        self.mistakes.image_activated.connect(self._on_mistakes_image_activated)
        self.evaluate = EvaluateView(self.session)
        self.evaluate.file_activated.connect(self._on_evaluate_file_activated)

        self.tabs = QTabWidget()
        self.tabs.setObjectName("InspectTabs")
        self.tabs.setDocumentMode(True)
        for view, title in ((self.classify, "Classify"), (self.feature_maps, "Feature maps"),
                            (self.saliency, "Grad-CAM / saliency"), (self.weights, "Weights"),
                            (self.dream, "Dream"), (self.mistakes, "Mistakes"), (self.evaluate, "Evaluate")):
            self.tabs.addTab(view, title)

        self.run_combo = QComboBox()
        self.run_combo.setObjectName("inspect_run")
        self.run_combo.setToolTip("The trained run whose model these views use")
        self.run_combo.setSizeAdjustPolicy(QComboBox.SizeAdjustPolicy.AdjustToContents)
        self.run_combo.activated.connect(self._on_run_combo_activated)
        self.checkpoint_combo = QComboBox()
        self.checkpoint_combo.addItems(["best checkpoint", "last checkpoint"])
        self.checkpoint_combo.setToolTip("Best: the epoch with the best validation score; last: the final epoch")
        self.checkpoint_combo.activated.connect(self._on_run_combo_activated)
        self.model_label = QLabel("No trained model yet: train the network, then look inside it here.")
        self.model_label.setObjectName("inspect_model")
        self.model_label.setTextInteractionFlags(Qt.TextInteractionFlag.TextSelectableByMouse)
        # A long run description must not widen the window: it may be cut, the tooltip holds it all.
        self.model_label.setSizePolicy(QSizePolicy.Policy.Ignored, QSizePolicy.Policy.Preferred)
        header = QHBoxLayout()
        header.setContentsMargins(6, 4, 6, 0)
        header.addWidget(QLabel("Model:"))
        header.addWidget(self.run_combo)
        header.addWidget(self.checkpoint_combo)
        header.addWidget(self.model_label, 1)
        self.widget = QWidget()
        layout = QVBoxLayout(self.widget)
        layout.setContentsMargins(0, 0, 0, 0)
        layout.addLayout(header)
        layout.addWidget(self.tabs, 1)

    # -- runs ----------------------------------------------------------------

    def run_dirs(self) -> list[Path]:
        """The project's runs, newest first (absolute folders)."""
        if self.document.path is None:
            return []
        return list(reversed(self.document.run_dirs()))

    def set_document(self, document: ProjectDocument) -> None:
        """Show ``document``: no model and nothing in any view of the previous project; its runs to choose from."""
        self.document = document
        self._pending_cell = None
        self._wanted = None
        self.session.unload()
        for view in self._views():
            view.clear()
        self.model_label.setToolTip("")
        self.show_project()

    def forget_run(self, run_dir: str | Path) -> None:
        """A run was deleted or taken off the list: its model is dropped, the chooser no longer offers it."""
        if self._wanted is not None and Path(self._wanted[0]) == Path(run_dir):
            self._wanted = None
            self._pending_cell = None
        self.session.forget_run(Path(run_dir))
        self.show_project()

    def _views(self) -> tuple[Any, ...]:
        return (self.classify, self.feature_maps, self.saliency, self.weights, self.dream, self.mistakes,
                self.evaluate)

    def show_project(self) -> None:
        """Fill the run chooser for the window's (new) project; a model of another project is dropped."""
        runs = self.run_dirs()
        self.run_combo.clear()
        for run_dir in runs:
            self.run_combo.addItem(run_dir.name, str(run_dir))
        self.run_combo.setEnabled(bool(runs))
        if self.session.run_dir is not None and self.session.run_dir not in runs:
            self.session.unload()
            self._wanted = None
            self.model_label.setText("Choose a run to look inside its model.")
        elif self._wanted is not None:
            index = self.run_combo.findData(self._wanted[0])
            if index >= 0:
                self.run_combo.setCurrentIndex(index)
        if not runs:
            self.run_combo.addItem("no runs yet")
            self.model_label.setText("No trained model yet: train the network, then look inside it here.")

    def ensure_loaded(self) -> None:
        """Load the latest run the first time the views are needed (not at start-up: that imports torch)."""
        if self._wanted is None and self.run_dirs():
            self.load_run(self.run_dirs()[0])

    def load_run(self, run_dir: Path | str, checkpoint: str | None = None) -> None:
        run_dir = Path(run_dir)
        which = checkpoint or CHECKPOINTS[self.checkpoint_combo.currentIndex()]
        self.checkpoint_combo.setCurrentIndex(CHECKPOINTS.index(which))
        index = self.run_combo.findData(str(run_dir))
        if index < 0:
            self.show_project()
            index = self.run_combo.findData(str(run_dir))
        if index >= 0:
            self.run_combo.setCurrentIndex(index)
        if self._wanted == (str(run_dir), which) and self.session.is_loaded:
            return
        self._wanted = (str(run_dir), which)
        self.session.load(run_dir, which)

    def on_training_state_changed(self, state: str) -> None:
        """A run that ended is the one to look inside (its best checkpoint)."""
        run_dir = self.document.current_run
        if state in _ENDED and run_dir is not None and (run_dir / "settings.json").is_file():
            self.show_project()
            self.load_run(run_dir, "best")

    def on_runs_selected(self, run_dirs: list[str]) -> None:
        if len(run_dirs) == 1:
            self.load_run(run_dirs[0])

    # -- window events -----------------------------------------------------------

    def on_node_selected(self, node_id: str) -> None:
        """A node clicked on the canvas: the layer the feature maps, weights and dream views show."""
        graph = self.document.project.graph
        self.feature_maps.show_node(node_id, graph.node(node_id).name if node_id in graph else None)
        for view in (self.weights, self.dream):
            view.show_node(node_id)

    def on_confusion_cell_clicked(self, true: int, predicted: int) -> None:
        """Open the gallery of validation images of (true, predicted), with the model the matrix came from."""
        run_dir = self.document.current_run
        self._show_tab(self.mistakes)
        # The matrix on screen is the last epoch's: load the last checkpoint so the gallery counts match it.
        if run_dir is not None and self._wanted != (str(run_dir), "last"):
            self._pending_cell = (true, predicted)
            self.load_run(run_dir, "last")
            return
        if self.session.is_loaded:
            self.mistakes.show_cell(true, predicted)
        else:
            self._pending_cell = (true, predicted)

    def classify_files(self, paths: list[str]) -> bool:
        """Classify dropped or opened files; returns whether any was taken."""
        paths = [p for p in paths if Path(p).is_dir() or Path(p).suffix.lower() in IMAGE_SUFFIXES]
        if not paths:
            return False
        self.ensure_loaded()
        self._show_tab(self.classify)
        self.classify.add_images(paths)
        return True

    def shut_down(self) -> None:
        """Stop dreams and folder runs and wait for them (the window is closing)."""
        self.dream.stop()
        self.classify.cancel_folder()
        self.evaluate.cancel()
        self.session.cancel_all()

    def show_evaluate(self) -> None:
        """Bring the Evaluate tab forward, loading the latest run if none is (for a menu entry)."""
        self.ensure_loaded()
        self._show_tab(self.evaluate)

    def _show_tab(self, view: QWidget) -> None:
        self.shown.emit()
        self.tabs.setCurrentWidget(view)

    # -- slots -------------------------------------------------------------------

    @Slot(int)
    def _on_run_combo_activated(self, index: int) -> None:
        run_dir = self.run_combo.currentData()
        if run_dir:
            self.load_run(run_dir, CHECKPOINTS[self.checkpoint_combo.currentIndex()])

    @Slot(str)
    def _on_session_loading(self, run_dir: str) -> None:
        self.model_label.setText(f"Loading {Path(run_dir).name}…")

    @Slot(dict)
    def _on_session_model_loaded(self, info: dict[str, Any]) -> None:
        classes = info["class_names"]
        shown = ", ".join(classes[:6]) + (", …" if len(classes) > 6 else "")
        checkpoint = Path(info["checkpoint"]).stem if info["checkpoint"] else ""
        answers = (f"{len(classes)} classes ({shown})" if info.get("task", "classification") == "classification"
                   else "rebuilds its input (an autoencoder)")
        self.model_label.setText(f"{Path(info['run_dir']).name} · {checkpoint} checkpoint · input "
                                 f"{'×'.join(str(s) for s in info['input_shape'])} · {answers}")
        self.model_label.setToolTip(info["checkpoint"])
        if self._pending_cell is not None:
            true, predicted = self._pending_cell
            self._pending_cell = None
            self.mistakes.show_cell(true, predicted)

    @Slot(str)
    def _on_session_model_failed(self, message: str) -> None:
        self._wanted = None
        self._pending_cell = None
        self.model_label.setText(f"Cannot load the model: {message}")

    @Slot(object, str)
    def _on_mistakes_image_activated(self, raw: Any, label: str) -> None:
        self._show_tab(self.classify)
        self.classify.add_raw(raw, label)

    @Slot(str)
    def _on_evaluate_file_activated(self, path: str) -> None:
        self._show_tab(self.classify)
        self.classify.add_images([path])

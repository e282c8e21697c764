"""The Inspect views name layers as the person named them, empty themselves for another project, keep a
confusion-cell request across a model load, and let go of a deleted run's model."""

from __future__ import annotations

import re
from pathlib import Path

import numpy as np
import pytest
from PySide6.QtWidgets import QComboBox, QLabel, QWidget

from dlstudio.gui.inspect.classify_view import PLACEHOLDER, ClassifyView
from dlstudio.gui.inspect.dream_view import DreamView
from dlstudio.gui.inspect.feature_maps_view import FeatureMapsView
from dlstudio.gui.inspect.mistakes_view import NO_MODEL, MistakesView
from dlstudio.gui.inspect.model_session import ModelSession, NoModelError
from dlstudio.gui.inspect.node_outputs import file_stem
from dlstudio.gui.inspect.saliency_view import SaliencyView
from dlstudio.gui.inspect.weights_view import WeightsView

TIMEOUT = 20_000
# The ids of the renamed run's graph, and the names the person gave those nodes.
NAMES = {"input1": "picture", "conv1": "edge finder", "relu1": "rectify", "maxpool1": "pool2",
         "flatten1": "unroll", "linear1": "fc1", "output1": "digit"}
IDS = tuple(NAMES)


@pytest.fixture(scope="session")
def renamed_run(tmp_path_factory):
    """A run (1 epoch on the bundled digits) of a small CNN whose every node has a name unlike its id."""
    from gui_helpers import chain_project, train_recorded_run

    project = chain_project(("Input", {"shape": [1, 12, 12]}), ("Conv2d", {"out_channels": 4, "kernel_size": 3}),
                            ("ReLU", {}), ("MaxPool2d", {}), ("Flatten", {}), ("Linear", {"out_features": 10}),
                            ("Output", {"task": "classification", "classes": 10}))
    assert list(project.graph.nodes) == list(NAMES)
    for node_id, name in NAMES.items():
        project.graph.rename(node_id, name)
    project.data = {"source": "digits"}
    return train_recorded_run(project, tmp_path_factory.mktemp("renamed_run") / "renamed.dlstudio", epochs=1)


def _loaded_session(qtbot, run_dir) -> ModelSession:
    session = ModelSession()
    with qtbot.waitSignal(session.model_loaded, timeout=TIMEOUT):
        session.load(run_dir)
    raw = session.trained.preprocessor.raw(np.eye(12, dtype=np.float32)).numpy()
    session.set_image(raw, None)
    return session


@pytest.fixture
def renamed_session(qtbot, renamed_run):
    session = _loaded_session(qtbot, renamed_run)
    yield session
    assert session.cancel_all()


def shown(qtbot, widget: QWidget) -> QWidget:
    qtbot.addWidget(widget)
    widget.resize(560, 460)
    widget.show()
    qtbot.waitExposed(widget)
    return widget


def combo_texts(widget: QWidget) -> list[str]:
    return [box.itemText(i) for box in widget.findChildren(QComboBox) for i in range(box.count())]


def visible_texts(widget: QWidget) -> str:
    """Every word the view shows in combo boxes and labels."""
    return "\n".join(combo_texts(widget) + [label.text() for label in widget.findChildren(QLabel)])


def assert_no_ids(text: str) -> None:
    for node_id in IDS:
        assert not re.search(rf"\b{node_id}\b", text), (node_id, text)


def make_views(qtbot, session) -> dict[str, QWidget]:
    return {"classify": shown(qtbot, ClassifyView(session)), "maps": shown(qtbot, FeatureMapsView(session)),
            "saliency": shown(qtbot, SaliencyView(session)), "weights": shown(qtbot, WeightsView(session)),
            "dream": shown(qtbot, DreamView(session)), "mistakes": shown(qtbot, MistakesView(session))}


# ---- names, never ids --------------------------------------------------------------------------------------

def test_layer_choosers_and_titles_show_names_never_ids(qtbot, renamed_session):
    views = make_views(qtbot, renamed_session)
    maps, saliency, weights, dream = views["maps"], views["saliency"], views["weights"], views["dream"]
    qtbot.waitUntil(lambda: maps.maps() is not None and saliency.heatmap() is not None
                    and weights.weight_histogram() is not None and len(combo_texts(dream)) > 2, timeout=TIMEOUT)
    texts = combo_texts(maps)
    for node_id in ("conv1", "relu1", "maxpool1", "flatten1", "linear1", "output1"):
        assert any(text.startswith(NAMES[node_id] + " · ") for text in texts), (NAMES[node_id], texts)
    with qtbot.waitSignal(maps.maps_shown, timeout=TIMEOUT):
        assert maps.show_node("maxpool1")
    assert maps.title().startswith("pool2 · 4 channels")
    assert "fc1" in combo_texts(weights) and "edge finder" in combo_texts(weights)
    assert weights.plot_titles()[0] == "Weights of edge finder"
    assert any(text.startswith("pool2 · ") for text in combo_texts(dream))
    assert "rectify" in combo_texts(saliency) or "pool2" in combo_texts(saliency)
    for view in views.values():
        assert_no_ids(visible_texts(view))


def test_a_dream_is_saved_under_the_layers_name(qtbot, renamed_session):
    dream = shown(qtbot, DreamView(renamed_session))
    qtbot.waitUntil(lambda: len(combo_texts(dream)) > 2, timeout=TIMEOUT)
    dream.configure(node_id="maxpool1")
    assert dream.suggested_file_name() == "pool2-dream.png"
    dream.configure(node_id="conv1")
    assert dream.suggested_file_name() == "edge finder-dream.png"
    assert file_stem('a/b:c*"d"') == "a_b_c_d" and file_stem("..") == "layer"


def test_a_node_the_run_lacks_is_named_in_the_note(qtbot, renamed_session):
    maps = shown(qtbot, FeatureMapsView(renamed_session))
    with qtbot.waitSignal(maps.maps_shown, timeout=TIMEOUT):
        pass
    assert not maps.show_node("conv7", name="new conv")
    assert "“new conv” is not a layer of the trained model" in visible_texts(maps)
    assert not maps.show_node("input1")  # in the run's graph, but not a layer to show
    assert "“picture” is not a layer" in visible_texts(maps)
    assert not maps.show_node("conv8")
    assert "This node is not a layer" in visible_texts(maps)
    assert_no_ids(visible_texts(maps))
    assert "conv7" not in visible_texts(maps) and "conv8" not in visible_texts(maps)


def test_the_inspector_header_names_the_node(qtbot):
    from dlstudio.core.project import load_template
    from dlstudio.core.shapes import ShapeInference
    from dlstudio.gui.inspector import Inspector

    graph = load_template("lenet5").graph
    inspector = Inspector()
    qtbot.addWidget(inspector)
    inspector.set_model(graph, ShapeInference(graph))
    inspector.show_node("maxpool2")
    assert "pool2" in inspector.title.text() and "maxpool2" not in inspector.title.text()
    graph.rename("maxpool2", "shrink <twice>")
    inspector.refresh()
    assert "shrink &lt;twice&gt;" in inspector.title.text() and "maxpool2" not in inspector.title.text()


# ---- unloading and clearing -----------------------------------------------------------------------------------

def _fill(qtbot, views, session, tmp_path: Path) -> None:
    """Every view shows something of the loaded model."""
    from PIL import Image

    classify, maps, saliency, weights, dream, mistakes = (views[k] for k in ("classify", "maps", "saliency",
                                                                           "weights", "dream", "mistakes"))
    folder = tmp_path / "folder"
    folder.mkdir()
    for index in range(3):
        Image.fromarray((np.eye(12) * (80 * index + 80)).astype(np.uint8)).save(folder / f"{index}.png")
    classify.add_images([folder / "0.png"])
    qtbot.waitUntil(lambda: classify.cards and classify.cards[0].ok, timeout=TIMEOUT)
    classify.classify_folder(folder)
    qtbot.waitUntil(lambda: not classify.folder_running, timeout=TIMEOUT)
    assert classify.folder_panel.model.rowCount() == 3
    with qtbot.waitSignal(mistakes.cell_shown, timeout=TIMEOUT):
        mistakes.show_cell(3, 3)
    assert mistakes.model.rowCount() > 0
    qtbot.waitUntil(lambda: maps.maps() is not None and saliency.heatmap() is not None
                    and weights.weight_histogram() is not None, timeout=TIMEOUT)
    dream.configure(steps=100_000)
    with qtbot.waitSignal(dream.image_updated, timeout=TIMEOUT):
        assert dream.start() is not None
    assert dream.is_running()


def assert_all_empty(views) -> None:
    classify, maps, saliency, weights, dream, mistakes = (views[k] for k in ("classify", "maps", "saliency",
                                                                           "weights", "dream", "mistakes"))
    assert classify.cards == [] and classify.folder_panel.model.rowCount() == 0
    assert classify.folder_panel.unreadable.count() == 0 and not classify.folder_running
    assert maps.maps() is None and maps.displayed_image() is None and maps.title() == ""
    assert saliency.heatmap() is None and saliency.displayed_image() is None and saliency.title() == ""
    assert weights.weight_histogram() is None and weights.gradient_histogram() is None
    assert weights.plot_titles() == ("Weights", "Gradients")
    assert not dream.is_running() and dream.current_image() is None and dream.displayed_image() is None
    assert mistakes.model.rowCount() == 0 and mistakes.cell is None and mistakes.pending_cell is None
    for view in (maps, saliency, weights, dream):
        assert combo_texts(view) == [text for text in combo_texts(view) if "·" not in text]  # no layer entries
        assert view.outputs == []
    assert not any(box.count() for view in (maps, weights)
                   for box in view.findChildren(QComboBox) if box.toolTip().lower().startswith(("the layer",
                                                                                               "convolution")))


def test_unload_empties_every_view_and_classifying_waits_for_a_model(qtbot, session, digits_run, tmp_path):
    views = make_views(qtbot, session)
    _fill(qtbot, views, session, tmp_path)
    with qtbot.waitSignal(session.unloaded, timeout=1000):
        session.unload()
    assert not session.is_loaded and session.trained is None and session.image is None
    assert_all_empty(views)
    classify, mistakes = views["classify"], views["mistakes"]
    assert classify.stack.currentIndex() == 0 and classify.placeholder.text() == PLACEHOLDER
    assert mistakes.message.text() == NO_MODEL
    # Nothing is classified until a model loads again; each view says so in plain words.
    with pytest.raises(NoModelError, match="No model is loaded"):
        session.submit(lambda context, trained: None)
    classify.classify_folder(tmp_path / "folder")
    assert classify.folder_panel.status.text().startswith("Load a model first")
    classify.add_images([tmp_path / "folder" / "1.png"])
    assert classify.cards[0].status.text() == "Waiting for a model…" and not classify.cards[0].ok
    assert views["dream"].start() is None
    # ... and is once one loads.
    with qtbot.waitSignal(session.model_loaded, timeout=TIMEOUT):
        session.load(digits_run)
    qtbot.waitUntil(lambda: classify.cards[0].ok, timeout=TIMEOUT)
    assert classify.stack.currentIndex() == 1


def test_clear_empties_each_view_and_stops_its_work(qtbot, session, tmp_path):
    views = make_views(qtbot, session)
    _fill(qtbot, views, session, tmp_path)
    classify = views["classify"]
    classify.classify_folder(tmp_path / "folder")  # running again: clear() must cancel it
    assert classify.folder_running
    for view in views.values():
        view.clear()
    assert_all_empty(views)
    assert session.cancel_all()  # nothing left running, and nothing arrives late
    qtbot.wait(50)
    assert_all_empty(views)


# ---- the Mistakes tab and a model that loads ---------------------------------------------------------------

def test_a_cell_asked_without_a_model_fills_once_one_loads(qtbot, session, digits_run):
    view = shown(qtbot, MistakesView(session))
    session.unload()
    view.show_cell(3, 3)
    assert view.pending_cell == (3, 3) and view.model.rowCount() == 0
    with qtbot.waitSignal(view.cell_shown, timeout=TIMEOUT) as shown_cell:
        session.load(digits_run)
    assert shown_cell.args[0]["true"] == 3 and shown_cell.args[0]["count"] > 0
    assert view.model.rowCount() == shown_cell.args[0]["count"]
    assert view.stack.currentWidget() is view.gallery and view.pending_cell is None


def test_a_cell_asked_while_a_model_loads_fills_with_that_model(qtbot, session, digits_run):
    view = shown(qtbot, MistakesView(session))
    session.load(digits_run, "last")  # the model on screen is replaced: a load is in flight
    view.show_cell(3, 3)
    with qtbot.waitSignal(view.cell_shown, timeout=TIMEOUT) as shown_cell:
        pass
    assert shown_cell.args[0]["count"] > 0 and view.model.rowCount() > 0
    assert session.trained.checkpoint.name == "last.pt"


def test_a_cell_asked_by_an_earlier_model_loaded_slot_is_not_discarded(qtbot, session, digits_run):
    """The window's controller connects to model_loaded before the gallery does and asks for the clicked cell
    there: the gallery's own model_loaded slot runs after that and must not throw the request away."""
    holder: dict[str, MistakesView] = {}
    session.model_loaded.connect(lambda _info: holder["view"].show_cell(3, 3))
    view = holder["view"] = shown(qtbot, MistakesView(session))
    with qtbot.waitSignal(view.cell_shown, timeout=TIMEOUT) as shown_cell:
        session.load(digits_run, "last")
    assert shown_cell.args[0]["count"] > 0
    assert view.model.rowCount() == shown_cell.args[0]["count"]


# ---- a deleted run ---------------------------------------------------------------------------------------------

def test_forgetting_the_loaded_run_unloads_its_model(qtbot, session, digits_run, tmp_path):
    session.set_image(session.trained.preprocessor.raw(np.eye(12, dtype=np.float32)).numpy(), None)
    views = make_views(qtbot, session)
    qtbot.waitUntil(lambda: views["maps"].maps() is not None, timeout=TIMEOUT)
    assert not session.forget_run(tmp_path / "another-run")
    assert session.is_loaded
    with qtbot.waitSignal(session.unloaded, timeout=1000):
        assert session.forget_run(Path(str(digits_run) + "/") / ".." / digits_run.name)  # the same folder
    assert not session.is_loaded
    assert views["maps"].maps() is None and views["classify"].stack.currentIndex() == 0
    views["classify"].add_images([tmp_path / "x.png"])
    assert views["classify"].cards[0].status.text() == "Waiting for a model…"


def test_forgetting_a_run_that_is_still_loading_drops_the_load(qtbot, session, digits_run):
    loaded = []
    session.model_loaded.connect(loaded.append)
    session.load(digits_run, "last")
    assert session.forget_run(digits_run)
    assert session.cancel_all()
    qtbot.wait(50)  # the load's late result (if any) has been delivered by now
    assert loaded == [] and not session.is_loaded

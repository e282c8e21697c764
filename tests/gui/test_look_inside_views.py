"""The "look inside" views on a real trained run: feature maps, Grad-CAM/saliency, weights, Dream."""

from __future__ import annotations

import numpy as np
import pytest
from PySide6.QtCore import Qt
from PySide6.QtTest import QTest

from dlstudio.gui.inspect.dream_view import DreamView
from dlstudio.gui.inspect.feature_maps_view import FeatureMapsView
from dlstudio.gui.inspect.model_session import ModelSession
from dlstudio.gui.inspect.saliency_view import SaliencyView
from dlstudio.gui.inspect.weights_view import WeightsView

TIMEOUT = 10_000


@pytest.fixture
def digit_png(tmp_path):
    """A held-out digit of the bundled data written as an 8x8 grey PNG."""
    from PIL import Image
    from sklearn.datasets import load_digits

    digits = load_digits()
    path = tmp_path / "seven.png"
    index = int(np.flatnonzero(digits.target == 7)[-1])
    Image.fromarray(np.rint(digits.images[index] / 16.0 * 255.0).astype(np.uint8)).save(path)
    return path


@pytest.fixture
def session(qtbot, digits_run, digit_png):
    """A ModelSession with the digits run loaded and a digit as the current image."""
    session = ModelSession()
    with qtbot.waitSignal(session.model_loaded, timeout=TIMEOUT):
        session.load(digits_run)
    session.set_image(session.trained.preprocessor.raw(digit_png).numpy(), str(digit_png))
    yield session
    session.cancel_all()


def shown(qtbot, widget):
    qtbot.addWidget(widget)
    widget.resize(520, 440)
    widget.show()
    qtbot.waitExposed(widget)
    return widget


# ---- feature maps -----------------------------------------------------------------------------------------

def make_feature_maps(qtbot, session):
    view = shown(qtbot, FeatureMapsView(session))
    with qtbot.waitSignal(view.maps_shown, timeout=TIMEOUT):
        pass  # the first spatial layer is shown as soon as the model's nodes are known
    return view


def test_show_node_conv1_gives_a_tile_per_channel(qtbot, session):
    view = make_feature_maps(qtbot, session)
    with qtbot.waitSignal(view.maps_shown, timeout=TIMEOUT) as shown_node:
        assert view.show_node("relu1") or True  # go elsewhere first, so that conv1 is a real change
    assert shown_node.args == ["relu1"]
    with qtbot.waitSignal(view.maps_shown, timeout=TIMEOUT) as shown_node:
        assert view.show_node("conv1")
    assert shown_node.args == ["conv1"]
    mosaic = view.mosaic
    assert mosaic.count == 4 and mosaic.tile_shape == (10, 10)
    # 4 tiles of 10x10 in a 2x2 grid with 1-pixel gaps.
    assert view.displayed_image().shape == (21, 21, 4)
    assert view.title() == "conv1 · 4 channels · 10×10"
    assert view.current_node() == "conv1"
    # The gaps are transparent, the tiles opaque.
    alpha = view.displayed_image()[..., 3]
    assert alpha[10].max() == 0 and alpha[:, 10].max() == 0 and alpha[:10, :10].min() == 255


def test_switching_node_updates_the_view_and_dense_layers_are_bars(qtbot, session):
    view = make_feature_maps(qtbot, session)
    with qtbot.waitSignal(view.maps_shown, timeout=TIMEOUT):
        view.show_node("conv1")
    conv_maps = view.maps().copy()
    with qtbot.waitSignal(view.maps_shown, timeout=TIMEOUT) as shown_node:
        view.show_node("linear1")
    assert shown_node.args == ["linear1"]
    assert view.mosaic is None and view.displayed_image() is None
    assert view.bar_heights().shape == (10,)
    assert view.title().startswith("linear1 · 10 classes" if "linear1" in session.trained.model.output_ids
                                   else "linear1 · 10 units")
    assert view._layer_box.currentData() == "linear1"  # the combo follows show_node
    # A node the trained model does not have is refused with a note, and the view stays.
    assert not view.show_node("conv9")
    assert view.current_node() == "linear1"
    # A new image recomputes the maps of the shown layer.
    with qtbot.waitSignal(view.maps_shown, timeout=TIMEOUT):
        view.show_node("conv1")
    with qtbot.waitSignal(view.maps_shown, timeout=TIMEOUT):
        session.set_image(np.zeros((1, 12, 12), dtype=np.float32), None)
    assert not np.array_equal(view.maps(), conv_maps)


def test_tile_hover_text_and_click_enlarges_a_channel(qtbot, session):
    view = make_feature_maps(qtbot, session)
    with qtbot.waitSignal(view.maps_shown, timeout=TIMEOUT):
        view.show_node("relu1")
    with qtbot.waitSignal(view.maps_shown, timeout=TIMEOUT):
        view.show_node("conv1")
    maps = view.maps()
    assert view.tile_text(2, 13) == f"channel 1, max {maps[1].max():.3g}, mean {maps[1].mean():.3g}"
    assert view.tile_text(10, 3) == ""  # a gap
    point = view._image.viewport_point(15, 15)  # inside tile 3 (bottom right)
    QTest.mouseClick(view._image.viewport(), Qt.MouseButton.LeftButton, Qt.KeyboardModifier.NoModifier, point)
    assert view.displayed_image().shape == (10, 10, 4)
    assert view.title().startswith("conv1 · channel 3 of 4 · 10×10")
    QTest.mouseClick(view._back, Qt.MouseButton.LeftButton)
    assert view.displayed_image().shape == (21, 21, 4)
    # Shared scaling keeps the channels' relative strengths: the weakest tile is no longer stretched to 1.
    view.set_per_channel(False)
    assert view.mosaic.image.max() == pytest.approx(1.0)
    peaks = [view.mosaic.image[r:r + 10, c:c + 10].max() for r in (0, 11) for c in (0, 11)]
    assert min(peaks) < 1.0 or maps.max() == maps.min()


def test_show_node_before_the_model_loads_is_honoured(qtbot, digits_run):
    session = ModelSession()
    view = shown(qtbot, FeatureMapsView(session))
    assert not view.show_node("relu1")  # no model yet: kept for later
    session.set_image(np.full((1, 12, 12), 0.5, dtype=np.float32))
    with qtbot.waitSignal(view.maps_shown, timeout=TIMEOUT) as shown_node:
        session.load(digits_run)
    assert shown_node.args == ["relu1"]
    session.cancel_all()


# ---- Grad-CAM and saliency -----------------------------------------------------------------------------------

def test_grad_cam_overlay_has_the_input_size_and_depends_on_the_class(qtbot, session):
    view = shown(qtbot, SaliencyView(session))
    with qtbot.waitSignal(view.heatmap_shown, timeout=TIMEOUT):
        pass
    assert view.method() == "grad-cam" and view.grad_cam_available()
    assert view.cam_layer() == "relu1"  # the last layer with image output, as core's default_cam_node
    assert view.displayed_image().shape == (12, 12, 4)
    assert view.heatmap().shape == (12, 12)
    predicted = view.result()["target"]
    assert view.title().startswith(f"Grad-CAM at relu1 for “{predicted}”")
    if not view.heatmap().any():  # this tiny model has no positive evidence after its ReLU: the view says so
        assert view.note().startswith("The map is empty")
    with qtbot.waitSignal(view.heatmap_shown, timeout=TIMEOUT):
        view.set_cam_layer("conv1")
    assert view.title().startswith(f"Grad-CAM at conv1 for “{predicted}”") and view.heatmap().any()
    first = view.heatmap().copy()
    other = (predicted + 1) % 10
    with qtbot.waitSignal(view.heatmap_shown, timeout=TIMEOUT):
        view.set_target(other)
    assert view.result()["target"] == other
    assert not np.array_equal(view.heatmap(), first)
    # The class picker shows probabilities; the opacity slider re-blends without recomputing.
    assert view._class_box.itemText(0).startswith(f"Predicted: {predicted} (")
    before = view.displayed_image().copy()
    view.set_opacity(0.0)
    assert not np.array_equal(view.displayed_image(), before)
    image = session.image["raw"][0]
    plain = np.rint(np.clip(image, 0, 1) * 255)
    assert np.abs(view.displayed_image()[..., 0].astype(float) - plain).max() <= 1  # just the image (rounding)
    with qtbot.waitSignal(view.heatmap_shown, timeout=TIMEOUT):
        view.set_method("saliency")
    assert view.title().startswith("Saliency for") and view.heatmap().shape == (12, 12)


def test_a_model_without_conv_layers_has_saliency_but_no_grad_cam(qtbot, tmp_path):
    import torch

    from dlstudio.core.compiler import compile_graph
    from dlstudio.core.data import DataRequirements, prepare_data
    from dlstudio.core.project import save_project
    from dlstudio.core.training import TrainConfig, Trainer, create_run_dir, record_run, write_run_files
    from gui_helpers import chain_project

    project = chain_project(("Input", {"shape": [1, 8, 8]}), ("Flatten", {}), ("Linear", {"out_features": 10}),
                            ("Output", {"task": "classification", "classes": 10}))
    project.path, project.data = tmp_path / "mlp.dlstudio", {"source": "digits"}
    torch.manual_seed(0)
    model = compile_graph(project.graph)
    data = prepare_data(project.data, DataRequirements.from_model(model))
    run_dir = create_run_dir(project.path)
    write_run_files(run_dir, {"graph": project.graph.to_dict(), "data": project.data, "training": {},
                              "data_summary": data.summary()}, data.class_names)
    record_run(project, run_dir)
    save_project(project, project.path)
    Trainer(model, data, TrainConfig.from_settings({"epochs": 1, "device": "cpu", "channels_last": "off"}),
            run_dir=run_dir).fit()
    session = ModelSession()
    view = shown(qtbot, SaliencyView(session))
    session.set_image(np.full((1, 8, 8), 0.5, dtype=np.float32))
    with qtbot.waitSignal(view.heatmap_shown, timeout=TIMEOUT):
        session.load(run_dir)
    assert not view.grad_cam_available() and view.method() == "saliency"
    assert "Grad-CAM needs a convolutional layer" in view.note()
    view.set_method("grad-cam")  # refused
    assert view.method() == "saliency" and view.displayed_image().shape == (8, 8, 4)
    weights = shown(qtbot, WeightsView(session))  # no filters to show: the histograms get the whole view
    qtbot.waitUntil(lambda: weights.weight_histogram() is not None and weights.gradient_histogram() is not None,
                    timeout=TIMEOUT)
    assert not weights.filters.isVisible()
    assert weights._message.text().startswith("This network has no convolution layer, so no filters to show")
    session.cancel_all()


# ---- weights and histograms ---------------------------------------------------------------------------------

def test_weights_view_shows_conv1_filters_and_histograms(qtbot, session):
    view = shown(qtbot, WeightsView(session))
    qtbot.waitUntil(lambda: view.gradient_histogram() is not None, timeout=TIMEOUT)
    assert view.current_node() == "conv1"
    assert view.filters.current_layer() == "conv1"
    assert view.filters.image() is not None
    assert view.filters._details.text() == "4 filters × 1 channel, 3×3"
    counts, edges = view.weight_histogram()
    assert counts.sum() == 4 * 1 * 3 * 3 and len(edges) == len(counts) + 1
    gradient_counts, _ = view.gradient_histogram()
    assert gradient_counts.sum() == 36
    assert "validation samples" in view._stats.text()
    # The step curves show exactly these histograms.
    x, y = view._curves["weights"].getData()
    assert np.array_equal(y, counts)
    # Another layer: the linear layer's 10 x 400 weights (4 channels of 10 x 10, flattened).
    with qtbot.waitSignal(view.histograms_shown, timeout=TIMEOUT):
        assert view.show_node("linear1")
    assert view.weight_histogram()[0].sum() == 10 * 400
    assert view.filters.current_layer() == "conv1"  # not a conv layer: the filters stay
    # Gradients of the current image as its predicted class.
    view.set_gradient_source("image")
    qtbot.waitUntil(lambda: "current image" in view._stats.text(), timeout=TIMEOUT)
    assert view.gradient_histogram()[0].sum() == 10 * 400


# ---- Dream ------------------------------------------------------------------------------------------------------

def test_dream_runs_updates_and_stops_on_request(qtbot, session, tmp_path, monkeypatch):
    view = shown(qtbot, DreamView(session))
    qtbot.waitUntil(lambda: view._start.isEnabled(), timeout=TIMEOUT)
    view.configure(mode="maximize", node_id="conv1", channel=2, steps=100_000, strength=0.05)
    images = []
    view.image_updated.connect(lambda step: images.append(view.current_image().copy()))
    QTest.mouseClick(view._start, Qt.MouseButton.LeftButton)
    task = view.task()
    assert task is not None and view._stop.isEnabled() and not view._start.isEnabled()
    qtbot.waitUntil(lambda: len(images) >= 3, timeout=TIMEOUT)
    assert not np.array_equal(images[0], images[-1])
    assert "it/s" in view.progress_text()
    with qtbot.waitSignal(task.cancelled, timeout=1000):
        QTest.mouseClick(view._stop, Qt.MouseButton.LeftButton)
    qtbot.waitUntil(lambda: not view.is_running(), timeout=1000)
    assert view._start.isEnabled() and view.progress_text().startswith("Stopped at step")
    # Save PNG... through the button, with the dialog replaced.
    target = tmp_path / "dream.png"
    monkeypatch.setattr(view, "_ask_save_path", lambda: str(target))
    QTest.mouseClick(view._save, Qt.MouseButton.LeftButton)
    from PIL import Image

    with Image.open(target) as saved:
        assert saved.size == (516, 516)  # 12 x 12 enlarged 43 times: at least 512, whole pixels
        assert saved.mode == "L"


def test_the_default_channel_is_the_most_responsive_and_a_pick_stays(qtbot, session):
    import torch

    from dlstudio.core.inspect import most_responsive_channel

    model, normalization = session.trained.model, session.trained.normalization
    with torch.no_grad():  # conv1's channel 0 never fires after relu1: a dream of it would stay noise
        model.conv1.weight[0] = 0.0
        model.conv1.bias[0] = -1.0
    expected = {node_id: most_responsive_channel(model, node_id, normalization) for node_id in ("relu1", "conv1")}
    assert 0 not in expected.values()
    view = DreamView(session)
    found = []
    view.default_channel_found.connect(lambda node_id, channel: found.append((node_id, channel)))
    shown(qtbot, view)
    qtbot.waitUntil(lambda: bool(found), timeout=TIMEOUT)
    assert found == [("relu1", expected["relu1"])]  # the last layer with image output, as before
    assert view._layer_box.currentData() == "relu1" and view._channel_spin.value() == expected["relu1"]
    # The person picks another channel with the keyboard; it stays across a layer change and a mode change.
    view._channel_spin.setFocus()
    key = Qt.Key.Key_Down if expected["relu1"] == view._channel_spin.maximum() else Qt.Key.Key_Up
    QTest.keyClick(view._channel_spin, key)
    picked = view._channel_spin.value()
    assert picked != expected["relu1"]
    with qtbot.waitSignal(view.default_channel_found, timeout=TIMEOUT) as conv1_found:
        view.configure(node_id="conv1", channel=0)  # picked before conv1's default is known
    assert conv1_found.args == ["conv1", expected["conv1"]] and view._channel_spin.value() == 0
    view.show_node("relu1")
    assert view._channel_spin.value() == picked
    view.configure(mode="deep-dream")
    assert view._channel_spin.value() == view._channel_spin.minimum()  # DeepDream: the whole layer
    view.configure(mode="maximize")
    assert view._channel_spin.value() == picked
    assert len(found) == 2  # each layer searched once


def test_deep_dream_changes_the_current_image_and_finishes(qtbot, session):
    view = shown(qtbot, DreamView(session))
    qtbot.waitUntil(lambda: view._start.isEnabled(), timeout=TIMEOUT)
    view.configure(mode="deep-dream", node_id="relu1", channel=None, steps=5, octaves=2)
    with qtbot.waitSignal(view.dream_ended, timeout=TIMEOUT) as ended:
        view.start()
    assert ended.args == ["finished"]
    result = view.current_image()
    assert result.shape == (1, 12, 12) and 0.0 <= result.min() and result.max() <= 1.0
    assert not np.allclose(result, session.image["raw"])
    assert view.progress_text().startswith("Done")


# ---- sample image --------------------------------------------------------------------------------------

def test_sample_image_shows_a_validation_image_of_the_run_with_its_true_class(qtbot, digits_run):
    import torch

    from dlstudio.core.inspect import load_trained

    session = ModelSession()
    try:
        with qtbot.waitSignal(session.model_loaded, timeout=TIMEOUT):
            session.load(digits_run)
        view = shown(qtbot, FeatureMapsView(session))
        picker = view.sample
        assert session.image is None and picker.button.isEnabled()
        with qtbot.waitSignal(view.maps_shown, timeout=TIMEOUT):
            QTest.mouseClick(picker.button, Qt.MouseButton.LeftButton)
        raw = np.asarray(session.image["raw"])
        assert raw.shape == (1, 12, 12) and 0.0 <= raw.min() and raw.max() <= 1.0
        caption = picker.caption.text()
        assert caption.startswith("validation image ") and " · true class " in caption

        # The very image the run was checked on: prepared again as training made it, the model input matches.
        trained = load_trained(digits_run)
        val = trained.prepare_data().val
        number = int(caption.split()[2]) - 1
        expected = trained.preprocessor.denormalize(val.x[number:number + 1]).clamp(0, 1)[0]
        assert torch.allclose(torch.as_tensor(raw), expected, atol=1e-5)
        assert caption.endswith(f"true class {trained.class_names[int(val.y[number])]}")

        saliency = shown(qtbot, SaliencyView(session))
        assert saliency.sample.button.isEnabled()
        assert saliency.sample.caption.text() == caption, "made after the pick, it says what is shown"
        with qtbot.waitSignal(view.maps_shown, timeout=TIMEOUT):
            QTest.mouseClick(saliency.sample.button, Qt.MouseButton.LeftButton)
        assert picker.caption.text() == saliency.sample.caption.text() != "", "one image, one caption in both views"
        session.set_image(np.zeros((1, 12, 12), dtype=np.float32))
        assert picker.caption.text() == "", "another image: the caption no longer describes it"
        session.unload()
        assert not picker.button.isEnabled() and not saliency.sample.button.isEnabled()
    finally:
        session.cancel_all()

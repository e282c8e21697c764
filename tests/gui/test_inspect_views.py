"""The "look inside" views on a real trained run: feature maps, Grad-CAM/saliency, weights, Dream."""

from __future__ import annotations

import numpy as np
import pytest
from PySide6.QtCore import Qt
from PySide6.QtTest import QTest

from dlstudio.gui.inspect.feature_maps_view import FeatureMapsView
from dlstudio.gui.inspect.model_session import ModelSession

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

"""The drawing pad in the Classify view: a stroke drawn with the mouse gives a live prediction; Clear empties it."""

from __future__ import annotations

import time

import numpy as np
import pytest
import torch
from PySide6.QtCore import QPoint, Qt
from PySide6.QtTest import QTest

from dlstudio.gui.inspect.classify_view import ClassifyView
from dlstudio.gui.inspect.drawing_pad import CANVAS_PIXELS, THROTTLE_MS
from dlstudio.gui.inspect.thumbnails import pixels_to_qimage

TIMEOUT_MS = 15_000


@pytest.fixture
def view(qtbot, session):
    view = ClassifyView(session)
    qtbot.addWidget(view)
    view.resize(760, 560)
    view.show()
    qtbot.waitExposed(view)
    view.show_pad()
    qtbot.waitUntil(lambda: view.pad.canvas.isVisible() and view.pad.canvas.width() > 100, timeout=TIMEOUT_MS)
    return view


def draw_seven(canvas, steps: int = 12) -> None:
    """A "7" drawn with real mouse events: press, moves with the button held, release."""
    side = min(canvas.width(), canvas.height())
    left, top = (canvas.width() - side) // 2, (canvas.height() - side) // 2

    def at(x: float, y: float) -> QPoint:
        return QPoint(left + round(x * side), top + round(y * side))

    corners = [(0.25, 0.2), (0.75, 0.2), (0.45, 0.85)]
    QTest.mousePress(canvas, Qt.MouseButton.LeftButton, Qt.KeyboardModifier.NoModifier, at(*corners[0]))
    for (x0, y0), (x1, y1) in zip(corners, corners[1:]):
        for i in range(1, steps + 1):
            t = i / steps
            QTest.mouseMove(canvas, at(x0 + (x1 - x0) * t, y0 + (y1 - y0) * t))
    QTest.mouseRelease(canvas, Qt.MouseButton.LeftButton, Qt.KeyboardModifier.NoModifier, at(*corners[-1]))


def test_a_stroke_drawn_with_the_mouse_gives_a_prediction(qtbot, view) -> None:
    pad = view.pad
    assert pad.canvas.empty and pad.answer.text() == "–" and not pad.bars.isVisible()
    assert not view.clear_button.isVisible()  # the toolbar's Clear removes cards; the pad has its own
    # The digits are white on black: the pad draws that way, so nothing needs inverting.
    assert pad.canvas.pixels().max() == 0
    with qtbot.waitSignal(pad.predicted, timeout=TIMEOUT_MS) as blocker:
        draw_seven(pad.canvas)
    qtbot.waitUntil(lambda: pad._task is None and not pad._throttle.isActive(), timeout=TIMEOUT_MS)
    pixels = pad.canvas.pixels()
    assert pixels.shape == (CANVAS_PIXELS, CANVAS_PIXELS) and (pixels > 128).mean() > 0.02
    result = blocker.args[0]
    assert pad.answer.text() in view.class_names
    assert pad.answer.text() == view.class_names[int(np.argmax(pad.probabilities))]
    assert pad.confidence.text().endswith("% sure")
    rows = pad.bars.rows
    assert pad.bars.isVisible() and len(rows) == 5 and rows[0][0] == pad.answer.text()
    assert abs(rows[0][1] - float(np.max(pad.probabilities))) < 1e-6
    # The model input is shown beside the canvas, and what was done to the drawing is said.
    assert not pad.model_image.pixmap().isNull()
    assert pad.model_caption.text() == "model input 12×12"
    assert tuple(result["raw"].shape) == (1, 12, 12)
    assert "Cropped to the digit" in pad.steps.text() and "inverted" not in pad.steps.text()
    # The answer is the model's on exactly that input.
    trained = view.session.trained
    [expected] = trained.classify(trained.preprocessor.normalize(torch.from_numpy(result["raw"])).unsqueeze(0))
    np.testing.assert_allclose(pad.probabilities, expected.probabilities, atol=1e-6)


def test_clear_and_delete_empty_the_pad(qtbot, view) -> None:
    pad = view.pad
    with qtbot.waitSignal(pad.predicted, timeout=TIMEOUT_MS):
        draw_seven(pad.canvas)
    QTest.mouseClick(pad.clear_button, Qt.MouseButton.LeftButton)
    assert pad.canvas.empty and pad.canvas.pixels().max() == 0
    assert pad.answer.text() == "–" and not pad.bars.isVisible() and pad.probabilities is None
    assert pad.model_image.pixmap().isNull() and pad.steps.text() == ""
    # Draw again, then the Delete key (focus is on the canvas after drawing).
    with qtbot.waitSignal(pad.predicted, timeout=TIMEOUT_MS):
        draw_seven(pad.canvas)
    qtbot.waitUntil(lambda: pad._task is None, timeout=TIMEOUT_MS)
    pad.canvas.setFocus()
    QTest.keyClick(pad.canvas, Qt.Key.Key_Delete)
    assert pad.canvas.empty and pad.answer.text() == "–"
    with qtbot.waitSignal(pad.predicted, timeout=TIMEOUT_MS):
        draw_seven(pad.canvas)
    qtbot.waitUntil(lambda: pad._task is None, timeout=TIMEOUT_MS)
    QTest.keyClick(pad.canvas, Qt.Key.Key_Backspace)
    assert pad.canvas.empty


def test_the_pen_width_control_draws_wider_strokes(qtbot, view) -> None:
    pad = view.pad
    pad.pen_slider.setValue(pad.pen_slider.minimum())
    draw_seven(pad.canvas)
    thin = int((pad.canvas.pixels() > 128).sum())
    pad.clear()
    pad.pen_slider.setValue(pad.pen_slider.maximum())
    draw_seven(pad.canvas)
    thick = int((pad.canvas.pixels() > 128).sum())
    assert thick > 3 * thin > 0
    qtbot.waitUntil(lambda: pad._task is None and not pad._throttle.isActive(), timeout=TIMEOUT_MS)


def test_the_model_is_asked_at_most_every_throttle_interval_while_drawing(qtbot, view, monkeypatch) -> None:
    pad = view.pad
    submitted = []
    original = view.session.submit

    def counting(function, *args):
        submitted.append(function.__name__)
        return original(function, *args)

    monkeypatch.setattr(view.session, "submit", counting)
    started = time.monotonic()
    with qtbot.waitSignal(pad.predicted, timeout=TIMEOUT_MS):
        draw_seven(pad.canvas, steps=40)  # 81 mouse events, each a change of the drawing
        drawing_ms = (time.monotonic() - started) * 1000
    qtbot.waitUntil(lambda: pad._task is None and not pad._throttle.isActive(), timeout=TIMEOUT_MS)
    # One per interval while the pen moves (however slow a busy machine makes the drawing), then the lifted
    # pen's and one for a change made while the model was busy: far fewer than the 81 changes.
    assert 1 <= len(submitted) <= 3 + drawing_ms / THROTTLE_MS, (len(submitted), drawing_ms)


def test_a_dark_on_light_picture_card_says_it_was_inverted(qtbot, view) -> None:
    paper = np.full((64, 64), 255, np.uint8)
    paper[10:54, 28:36] = 0  # a black "1" on white paper
    view.add_image(pixels_to_qimage(paper), "typed one")
    qtbot.waitUntil(lambda: view.cards and view.cards[0].ok, timeout=TIMEOUT_MS)
    card = view.cards[0]
    assert card.steps.isVisible()
    assert card.steps.text().startswith("Inverted to match the training data, cropped to the digit")
    assert card.raw.max() > 0.9 and card.raw[0, 0, 0] == 0.0  # white strokes on black, as the digits are
    # An image of the training data from another view is already a model input: nothing is replayed on it.
    view.add_raw(card.raw, "from the mistakes")
    qtbot.waitUntil(lambda: len(view.cards) == 2 and view.cards[0].ok, timeout=TIMEOUT_MS)
    assert not view.cards[0].steps.isVisible()
    np.testing.assert_allclose(view.cards[0].raw, card.raw, atol=1e-6)


def test_a_model_of_table_rows_gets_no_pad(qtbot, view) -> None:
    pad = view.pad
    pad.set_model(["a", "b"], light_on_dark=False, takes_images=False)
    assert not pad.canvas.isEnabled() and "table rows" in pad.confidence.text()
    draw_seven(pad.canvas)
    assert pad.canvas.empty and pad._task is None
    pad.set_model(view.class_names, light_on_dark=True)  # an image model again: drawing works, black paper
    assert pad.canvas.isEnabled() and pad.confidence.text() == "Draw to see what the model thinks"
    with qtbot.waitSignal(pad.predicted, timeout=TIMEOUT_MS):
        draw_seven(pad.canvas)
    qtbot.waitUntil(lambda: pad._task is None and not pad._throttle.isActive(), timeout=TIMEOUT_MS)


def test_a_newer_model_keeps_the_drawing_and_answers_again(qtbot, view) -> None:
    pad = view.pad
    with qtbot.waitSignal(pad.predicted, timeout=TIMEOUT_MS):
        draw_seven(pad.canvas)
    qtbot.waitUntil(lambda: pad._task is None and not pad._throttle.isActive(), timeout=TIMEOUT_MS)
    drawn = pad.canvas.pixels()
    with qtbot.waitSignal(pad.predicted, timeout=TIMEOUT_MS):
        with qtbot.waitSignal(view.session.model_loaded, timeout=TIMEOUT_MS):
            view.session.load(view.session.run_dir, "last")
    np.testing.assert_array_equal(pad.canvas.pixels(), drawn)
    qtbot.waitUntil(lambda: pad._task is None, timeout=TIMEOUT_MS)
    # A model trained on dark drawings on light paper gets light paper: what was drawn in white goes.
    pad.set_model(view.class_names, light_on_dark=False)
    assert pad.canvas.empty and pad.canvas.pixels().min() == 255


def test_an_autoencoder_answers_a_drawing_with_its_reconstruction(qtbot, tmp_path) -> None:
    from dlstudio.core.project import load_template
    from dlstudio.gui.inspect.model_session import ModelSession
    from gui_helpers import train_recorded_run

    project = load_template("autoencoder")
    run_dir = train_recorded_run(project, tmp_path / "ae.dlstudio", epochs=1)
    session = ModelSession()
    with qtbot.waitSignal(session.model_loaded, timeout=TIMEOUT_MS):
        session.load(run_dir)
    try:
        view = ClassifyView(session)
        qtbot.addWidget(view)
        view.resize(760, 560)
        view.show()
        view.show_pad()
        pad = view.pad
        qtbot.waitUntil(lambda: pad.canvas.isVisible() and pad.canvas.width() > 100, timeout=TIMEOUT_MS)
        with qtbot.waitSignal(pad.predicted, timeout=TIMEOUT_MS) as blocker:
            draw_seven(pad.canvas)
        qtbot.waitUntil(lambda: pad._task is None and not pad._throttle.isActive(), timeout=TIMEOUT_MS)
        result = blocker.args[0]
        assert result["reconstruction"].shape == result["raw"].shape == (1, 28, 28)
        assert pad.reconstruction_image.isVisible() and not pad.reconstruction_image.pixmap().isNull()
        assert not pad.answer.isVisible() and not pad.bars.isVisible()
        assert pad.confidence.text().startswith("What the network rebuilds from it (mean squared error ")
        trained = session.trained
        x = trained.preprocessor.normalize(torch.from_numpy(result["raw"])).unsqueeze(0)
        with torch.no_grad():
            expected = trained.preprocessor.denormalize(trained.model(x)).clamp(0, 1)[0].numpy()
        np.testing.assert_allclose(result["reconstruction"], expected, atol=1e-5)
        pad.clear()
        assert not pad.reconstruction_image.isVisible() and pad.answer.text() == "–"
        from dlstudio.gui.inspect_controller import InspectController

        controller = InspectController()
        with qtbot.waitSignal(controller.session.model_loaded, timeout=TIMEOUT_MS):
            controller.session.load(run_dir)
        assert controller.model_label.text().endswith("· rebuilds its input (an autoencoder)")
        controller.shut_down()
    finally:
        session.cancel_all()

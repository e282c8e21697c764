"""The Mistakes gallery: a confusion-matrix cell's validation images, sorted by confidence; activation hands one on."""

from __future__ import annotations

import numpy as np
import pytest
from PySide6.QtCore import Qt
from PySide6.QtTest import QTest

from dlstudio.gui.inspect.mistakes_view import MAX_PAIRS, NO_MODEL, MistakesView
from dlstudio.gui.inspect.model_session import ModelSession

TIMEOUT_MS = 20_000


@pytest.fixture
def view(qtbot, session):
    view = MistakesView(session)
    qtbot.addWidget(view)
    view.resize(520, 420)
    view.show()
    qtbot.waitExposed(view)
    return view


@pytest.fixture
def split_predictions(session):
    """The validation split and the model's predictions on it, computed here independently of the view."""
    from dlstudio.core.inspect import predict_split

    data = session.trained.prepare_data()
    return data.val, predict_split(session.trained.model, data.val.x, data.val.y)


def busiest_mistake(predictions) -> tuple[int, int]:
    """The off-diagonal cell with the most images (or the fullest diagonal cell if there is no mistake)."""
    matrix = predictions.confusion(10)
    off = matrix - np.diag(np.diag(matrix))
    cell = np.unravel_index(np.argmax(off if off.any() else matrix), matrix.shape)
    return int(cell[0]), int(cell[1])


def show(qtbot, view, true: int, predicted: int) -> dict:
    with qtbot.waitSignal(view.cell_shown, timeout=TIMEOUT_MS) as shown:
        view.show_cell(true, predicted)
    return shown.args[0]


def test_without_a_model_it_says_so(qtbot):
    view = MistakesView(ModelSession())
    qtbot.addWidget(view)
    view.show_cell(3, 8)
    assert view.message.text() == NO_MODEL and view.stack.currentWidget() is view.message


def test_cell_gallery_matches_the_confusion_matrix_and_is_sorted(qtbot, view, split_predictions):
    split, predictions = split_predictions
    qtbot.waitUntil(lambda: view.stack.currentWidget() in (view.overview_page, view.message)
                    and view._overview is not None, timeout=TIMEOUT_MS)
    true, predicted = busiest_mistake(predictions)
    expected = int(predictions.confusion(10)[true, predicted])
    assert expected > 0
    info = show(qtbot, view, true, predicted)
    assert info == {"true": true, "predicted": predicted, "count": expected}
    assert view.model.rowCount() == expected
    noun = "image" if expected == 1 else "images"
    assert view.title.text() == f"true {true} → predicted {predicted}: {expected} {noun}"
    assert view.stack.currentWidget() is view.gallery
    confidences = [sample.confidence for sample in view.model.samples]
    assert confidences == sorted(confidences, reverse=True)
    assert [s.index for s in view.model.samples] == predictions.cell(true, predicted).tolist()
    # A second cell comes from the cached predictions: the diagonal, every correctly classified sample of `true`.
    diagonal = int(predictions.confusion(10)[true, true])
    assert show(qtbot, view, true, true)["count"] == diagonal == view.model.rowCount()


def test_empty_cell_says_so(qtbot, view, split_predictions):
    _, predictions = split_predictions
    matrix = predictions.confusion(10)
    empty = np.argwhere(matrix == 0)
    if not len(empty):
        pytest.skip("this tiny model confuses every pair at least once")
    true, predicted = (int(v) for v in empty[0])
    assert show(qtbot, view, true, predicted)["count"] == 0
    assert view.title.text() == f"true {true} → predicted {predicted}: no images"
    assert view.stack.currentWidget() is view.message and "No validation image of class" in view.message.text()
    assert view.model.rowCount() == 0


def test_double_click_emits_the_raw_image_and_a_label(qtbot, view, session, split_predictions):
    split, predictions = split_predictions
    true, predicted = busiest_mistake(predictions)
    show(qtbot, view, true, predicted)
    first = view.model.index(0)
    point = view.gallery.visualRect(first).center()
    with qtbot.waitSignal(view.image_activated, timeout=2000) as activated:
        # Qt 6's QTest.mouseDClick alone has no press for the view to pair with; a real double-click starts with one.
        QTest.mouseClick(view.gallery.viewport(), Qt.MouseButton.LeftButton, pos=point)
        QTest.mouseDClick(view.gallery.viewport(), Qt.MouseButton.LeftButton, pos=point)
    raw, label = activated.args
    index = int(predictions.cell(true, predicted)[0])
    expected_raw = session.trained.preprocessor.denormalize(split.x[index]).clamp(0, 1).numpy()
    assert raw.shape == (1, 12, 12)
    np.testing.assert_allclose(raw, expected_raw, atol=1e-6)
    assert label.startswith(f"validation #{index}: true {true}, predicted {predicted} (")


def test_before_a_cell_is_chosen_it_lists_the_pairs_mixed_up_most_and_one_click_opens_its_gallery(
        qtbot, view, split_predictions):
    _, predictions = split_predictions
    matrix = predictions.confusion(10)
    off = matrix - np.diag(np.diag(matrix))
    expected = sorted(((int(off[t, p]), int(t), int(p)) for t, p in zip(*np.nonzero(off))),
                      key=lambda item: (-item[0], item[1], item[2]))[:MAX_PAIRS]
    if not expected:
        pytest.skip("this run made no mistake on its validation split")
    qtbot.waitUntil(lambda: view.stack.currentWidget() is view.overview_page, timeout=TIMEOUT_MS)
    assert view.title.text() == "Most confused classes" and not view.back_button.isVisible()
    texts = [view.pairs.item(row).text() for row in range(view.pairs.count())]
    assert texts == [f"true {t} → predicted {p}: {c} image{'s' if c != 1 else ''}" for c, t, p in expected]
    wrong, total = int(off.sum()), int(matrix.sum())
    assert view.overview_caption.text().startswith(f"{wrong} of {total} validation images are misclassified")

    count, true, predicted = expected[0]
    first = view.pairs.item(0)
    with qtbot.waitSignal(view.cell_shown, timeout=TIMEOUT_MS) as shown:
        QTest.mouseClick(view.pairs.viewport(), Qt.MouseButton.LeftButton,
                         pos=view.pairs.visualItemRect(first).center())
    assert shown.args[0] == {"true": true, "predicted": predicted, "count": count}
    assert view.stack.currentWidget() is view.gallery and view.back_button.isVisible()
    QTest.mouseClick(view.back_button, Qt.MouseButton.LeftButton)
    assert view.stack.currentWidget() is view.overview_page and view.cell is None, "back, without predicting again"

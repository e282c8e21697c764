"""The confusion matrix in the Metrics dock: counts painted in their cells (one item draws them all, only where
they fit), class names beside their rows however wide the dock."""

from __future__ import annotations

import numpy as np
import pytest
from PySide6.QtCore import QPoint, Qt
from PySide6.QtTest import QTest
from PySide6.QtWidgets import QApplication

from dlstudio.gui.plots.confusion import ConfusionView


def _digits_matrix() -> list[list[int]]:
    matrix = np.diag(np.full(10, 30))
    matrix[3, 8] = 12
    matrix[7, 1] = 1
    return matrix.tolist()


@pytest.fixture
def confusion(qtbot) -> ConfusionView:
    view = ConfusionView()
    qtbot.addWidget(view)
    view.resize(460, 440)
    view.show()
    qtbot.waitExposed(view)
    return view


def _text_pixels(view: ConfusionView, true: int, predicted: int) -> int:
    """Pixels inside a cell (its middle half) that are not the cell's own colour: the strokes of its count."""
    image = view.viewport().grab().toImage()
    centre = view.cell_point(true, predicted)
    half = abs(view.cell_point(true, predicted + 1).x() - centre.x()) // 4
    fill = view.image()[true, predicted][:3].astype(int)
    strokes = 0
    for x in range(centre.x() - half, centre.x() + half + 1):
        for y in range(centre.y() - half, centre.y() + half + 1):
            colour = image.pixelColor(x, y)
            if np.abs(np.array([colour.red(), colour.green(), colour.blue()]) - fill).max() > 60:
                strokes += 1
    return strokes


def test_each_count_is_painted_in_its_cell(confusion: ConfusionView) -> None:
    confusion.set_matrix(_digits_matrix(), [str(i) for i in range(10)])
    QApplication.processEvents()
    assert confusion.count_texts()[3][8] == "12"
    assert _text_pixels(confusion, 3, 8) > 10  # "12" on the red mistake cell
    assert _text_pixels(confusion, 0, 0) > 10  # "30" on the blue diagonal
    assert _text_pixels(confusion, 0, 5) > 5  # a muted "0"
    # A later matrix repaints the same item with the new numbers.
    matrix = _digits_matrix()
    matrix[3][8] = 0
    confusion.set_matrix(matrix, [str(i) for i in range(10)])
    QApplication.processEvents()
    assert confusion.count_texts()[3][8] == "0"


def test_no_counts_where_they_would_not_fit(qtbot, confusion: ConfusionView) -> None:
    confusion.set_matrix(np.eye(20, dtype=int).tolist(), [f"class {i}" for i in range(20)])
    QApplication.processEvents()
    assert confusion.count_texts() == [] and _text_pixels(confusion, 0, 0) == 0
    confusion.set_matrix(_digits_matrix(), [str(i) for i in range(10)])
    confusion.resize(170, 160)  # cells of about 8 px: narrower than "30"
    qtbot.waitUntil(lambda: abs(confusion.cell_point(0, 1).x() - confusion.cell_point(0, 0).x()) < 12, timeout=1000)
    QApplication.processEvents()
    assert _text_pixels(confusion, 0, 0) == 0


def test_in_a_wide_short_dock_the_class_names_stay_beside_their_rows(qtbot, confusion: ConfusionView) -> None:
    confusion.set_matrix(_digits_matrix(), [str(i) for i in range(10)])
    confusion.resize(960, 260)  # the Metrics dock at the bottom of the window
    qtbot.waitUntil(lambda: confusion._plot.width() < 500, timeout=1000)
    QApplication.processEvents()
    cells = confusion._image.sceneBoundingRect()
    names = confusion._plot.getAxis("left").sceneBoundingRect()
    assert cells.height() > 150  # the cells use the height
    # Were ~400 px apart (the names at the far left of the dock); a title wider than the cells leaves some room.
    assert 0 <= cells.left() - names.right() < 60


def test_the_matrix_is_row_normalized_with_counts_and_accuracy(confusion: ConfusionView) -> None:
    matrix = _digits_matrix()
    matrix[0][0] = 300  # a ten times larger class gets the same colour for a perfect row
    confusion.set_matrix(matrix, [str(i) for i in range(10)])
    image = confusion.image()
    assert image.shape == (10, 10, 4)
    assert image[0, 0].tolist() == image[1, 1].tolist()
    assert image[3, 3].tolist() != image[1, 1].tolist()  # 30 of 42: a paler blue
    assert confusion.accuracy() == pytest.approx(570 / 583)
    assert "97.8%" in confusion._plot.titleLabel.text
    counts = confusion.count_texts()
    assert [len(row) for row in counts] == [10] * 10
    assert counts[3][8] == "12" and counts[7][1] == "1" and counts[0][0] == "300" and counts[0][1] == "0"


def test_large_matrices_have_no_count_texts(confusion: ConfusionView) -> None:
    confusion.set_matrix(np.eye(20, dtype=int).tolist(), [f"class {i}" for i in range(20)])
    assert confusion.count_texts() == []
    with pytest.raises(ValueError, match="10×10 but there are 3 class names"):
        confusion.set_matrix(_digits_matrix(), ["a", "b", "c"])


def test_clicking_a_cell_emits_true_and_predicted(qtbot, confusion: ConfusionView) -> None:
    confusion.set_matrix(_digits_matrix(), [str(i) for i in range(10)])
    QApplication.processEvents()
    with qtbot.waitSignal(confusion.cell_clicked, timeout=1000) as clicked:
        QTest.mouseClick(confusion.viewport(), Qt.MouseButton.LeftButton, Qt.KeyboardModifier.NoModifier,
                         confusion.cell_point(3, 8))
    assert clicked.args == [3, 8]
    with qtbot.assertNotEmitted(confusion.cell_clicked):  # outside the matrix
        QTest.mouseClick(confusion.viewport(), Qt.MouseButton.LeftButton, Qt.KeyboardModifier.NoModifier,
                         QPoint(2, 2))


def test_hovering_a_cell_says_what_it_counts(qtbot, confusion: ConfusionView) -> None:
    confusion.set_matrix(_digits_matrix(), [str(i) for i in range(10)])
    QApplication.processEvents()
    QTest.mouseMove(confusion.viewport(), confusion.cell_point(3, 8))
    qtbot.waitUntil(lambda: confusion._canvas.toolTip() == "true 3, predicted 8: 12 samples", timeout=1000)
    QTest.mouseMove(confusion.viewport(), confusion.cell_point(7, 1))
    qtbot.waitUntil(lambda: confusion._canvas.toolTip() == "true 7, predicted 1: 1 sample", timeout=1000)


def test_clear_forgets_the_matrix(confusion: ConfusionView) -> None:
    confusion.set_matrix(_digits_matrix(), [str(i) for i in range(10)])
    confusion.clear()
    assert confusion.matrix().shape == (0, 0) and confusion.accuracy() is None
    assert confusion.count_texts() == []

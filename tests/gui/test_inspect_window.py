"""The inspect views inside the window: files dropped on the window, canvas clicks and confusion-matrix clicks."""

from __future__ import annotations

from pathlib import Path

import numpy as np
from PIL import Image
from PySide6.QtCore import QPoint, QPointF, QMimeData, Qt, QUrl
from PySide6.QtGui import QDragEnterEvent, QDropEvent
from PySide6.QtWidgets import QApplication

from dlstudio.core.project import load_project

TIMEOUT_MS = 20_000


def _window_with_run(make_window, digits_run: Path):
    project = load_project(digits_run.parent.parent / "digits.dlstudio")
    return make_window(project)


def _drop_on(widget, paths: list[Path]) -> bool:
    mime = QMimeData()
    mime.setUrls([QUrl.fromLocalFile(str(path)) for path in paths])
    point = QPoint(widget.width() // 2, widget.height() // 2)
    enter = QDragEnterEvent(point, Qt.DropAction.CopyAction, mime, Qt.MouseButton.LeftButton,
                            Qt.KeyboardModifier.NoModifier)
    QApplication.sendEvent(widget, enter)
    drop = QDropEvent(QPointF(point), Qt.DropAction.CopyAction, mime, Qt.MouseButton.LeftButton,
                      Qt.KeyboardModifier.NoModifier)
    QApplication.sendEvent(widget, drop)
    return enter.isAccepted() and drop.isAccepted()


def test_an_image_dropped_on_the_window_is_classified_with_the_latest_run(qtbot, make_window, digits_run, tmp_path):
    window = _window_with_run(make_window, digits_run)
    png = tmp_path / "seven.png"
    Image.fromarray((np.eye(12) * 255).astype(np.uint8)).save(png)
    with qtbot.waitSignal(window.inspect.session.model_loaded, timeout=TIMEOUT_MS):
        assert _drop_on(window, [png])
    view = window.inspect.classify
    assert window.inspect.tabs.currentWidget() is view and window.inspect_dock.isVisible()
    qtbot.waitUntil(lambda: len(view.cards) == 1 and view.cards[0].ok, timeout=TIMEOUT_MS)
    # Under the session's lock: the views' feature maps and Grad-CAM put hooks on the same model meanwhile.
    with window.inspect.session.using_model() as trained:
        expected = trained.classify([png], top_k=5)[0]
    rows = view.cards[0].bars.rows
    assert [label for label, _ in rows] == [score.label for score in expected.top]
    assert np.allclose([p for _, p in rows], [score.probability for score in expected.top], atol=1e-6)
    assert window.inspect.run_combo.currentData() == str(digits_run)


def test_a_file_that_is_no_image_is_not_taken(qtbot, make_window, digits_run, tmp_path):
    window = _window_with_run(make_window, digits_run)
    text = tmp_path / "notes.txt"
    text.write_text("hello")
    assert not _drop_on(window, [text])
    assert window.inspect.classify.cards == []


def test_a_conv_node_clicked_on_the_canvas_shows_its_feature_maps(qtbot, make_window, digits_run):
    window = _window_with_run(make_window, digits_run)
    inspect = window.inspect
    with qtbot.waitSignal(inspect.session.model_loaded, timeout=TIMEOUT_MS):
        inspect.ensure_loaded()
    trained = inspect.session.trained
    inspect.session.set_image(np.asarray(trained.preprocessor.raw(np.eye(12, dtype=np.float32))), None)
    item = window.scene.node_items["conv1"]
    point = window.view.mapFromScene(item.sceneBoundingRect().center())
    with qtbot.waitSignal(inspect.feature_maps.maps_shown, timeout=TIMEOUT_MS) as shown:
        qtbot.mouseClick(window.view.viewport(), Qt.MouseButton.LeftButton, pos=point)
    assert shown.args == ["conv1"]
    assert inspect.feature_maps.mosaic.count == 4  # conv1 has 4 channels: 4 tiles


def test_a_confusion_cell_click_opens_the_gallery_of_those_images(qtbot, make_window, digits_run):
    from dlstudio.core.inspect import predict_split

    window = _window_with_run(make_window, digits_run)
    inspect = window.inspect
    with qtbot.waitSignal(inspect.session.model_loaded, timeout=TIMEOUT_MS):
        inspect.ensure_loaded()
    trained = inspect.session.trained
    data = trained.prepare_data()
    split = predict_split(trained.model, data.val.x, data.val.y)
    matrix = split.confusion(10)
    off = matrix - np.diag(np.diag(matrix))
    true, predicted = np.unravel_index(int(np.argmax(off)), off.shape) if off.max() > 0 else (3, 3)
    with qtbot.waitSignal(inspect.mistakes.cell_shown, timeout=TIMEOUT_MS) as shown:
        window.training.confusion.cell_clicked.emit(int(true), int(predicted))
    assert shown.args[0]["count"] == int(matrix[true, predicted])
    assert inspect.tabs.currentWidget() is inspect.mistakes

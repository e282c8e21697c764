"""The Classify view: drops, pastes and buttons give cards with the model's top-k; folders give a table and a CSV."""

from __future__ import annotations

import csv
import time
from pathlib import Path

import numpy as np
import pytest
from PySide6.QtCore import QMimeData, QPoint, QPointF, Qt, QTimer, QUrl
from PySide6.QtGui import QDragEnterEvent, QDropEvent
from PySide6.QtTest import QTest
from PySide6.QtWidgets import QApplication

from dlstudio.gui.inspect.classify_view import PLACEHOLDER, ClassifyView
from dlstudio.gui.inspect.model_session import ModelSession
from dlstudio.gui.inspect.thumbnails import pixels_to_qimage
from gui_helpers import session_heap_set_aside

TIMEOUT_MS = 15_000


def digit_pixels(count: int) -> tuple[np.ndarray, np.ndarray]:
    """sklearn's 8x8 digits as uint8 (white strokes on black, as the dataset holds them) and their labels."""
    from sklearn.datasets import load_digits

    bunch = load_digits()
    images = np.rint(bunch.images[:count] * (255.0 / 16.0)).astype(np.uint8)
    return images, bunch.target[:count]


def write_digits(folder: Path, count: int) -> list[Path]:
    from PIL import Image

    folder.mkdir(parents=True, exist_ok=True)
    images, labels = digit_pixels(count)
    paths = []
    for index, (image, label) in enumerate(zip(images, labels)):
        path = folder / f"digit_{index:04d}_{label}.png"
        Image.fromarray(image).save(path)
        paths.append(path)
    return paths


@pytest.fixture
def view(qtbot, session):
    view = ClassifyView(session)
    qtbot.addWidget(view)
    view.resize(640, 560)
    view.show()
    qtbot.waitExposed(view)
    return view


def drop_files(widget, paths: list[Path]) -> bool:
    """A real drag-enter and drop of local files on ``widget``; returns whether the drop was accepted."""
    mime = QMimeData()
    mime.setUrls([QUrl.fromLocalFile(str(path)) for path in paths])
    point = QPoint(widget.width() // 2, widget.height() // 2)
    actions = Qt.DropAction.CopyAction
    enter = QDragEnterEvent(point, actions, mime, Qt.MouseButton.LeftButton, Qt.KeyboardModifier.NoModifier)
    QApplication.sendEvent(widget, enter)
    assert enter.isAccepted()
    drop = QDropEvent(QPointF(point), actions, mime, Qt.MouseButton.LeftButton, Qt.KeyboardModifier.NoModifier)
    QApplication.sendEvent(widget, drop)
    return drop.isAccepted()


def wait_cards_done(qtbot, view, count: int) -> None:
    qtbot.waitUntil(lambda: len(view.cards) == count and all(c.ok or c.error for c in view.cards),
                    timeout=TIMEOUT_MS)


def assert_bars_match(card, prediction) -> None:
    rows = card.bars.rows
    assert len(rows) == len(prediction.top) == 5
    for (label, probability), expected in zip(rows, prediction.top):
        assert label == expected.label
        assert abs(probability - expected.probability) <= 1e-6
    assert sum(p for _, p in rows) <= 1.0 + 1e-6


def test_without_a_model_the_view_says_what_to_do(qtbot):
    view = ClassifyView(ModelSession())
    qtbot.addWidget(view)
    assert view.stack.currentWidget() is view.placeholder
    assert view.placeholder.text() == PLACEHOLDER


def test_dropped_png_becomes_a_card_with_the_models_top_k(qtbot, view, session, tmp_path):
    [path] = write_digits(tmp_path, 1)
    with qtbot.waitSignal(session.image_changed, timeout=TIMEOUT_MS) as changed:
        assert drop_files(view, [path])
    wait_cards_done(qtbot, view, 1)
    [card] = view.cards
    [expected] = session.trained.classify([path], top_k=5)
    assert_bars_match(card, expected)
    assert card.bars.isVisible() and not card.status.isVisible()
    # The card became the session's image, at the model's input size, so the other views follow it.
    assert changed.args[0]["path"] == str(path)
    assert changed.args[0]["raw"].shape == (1, 12, 12)
    assert view.selected_card is card and card.selected


def test_corrupt_file_becomes_a_card_with_the_reason(qtbot, view, tmp_path):
    [good] = write_digits(tmp_path, 1)
    bad = tmp_path / "broken.png"
    bad.write_bytes(b"this is not a PNG")
    assert drop_files(view.cards_scroll.viewport(), [good, bad])  # dropped on a child: reaches the view
    wait_cards_done(qtbot, view, 2)
    broken = next(card for card in view.cards if card.source.name == "broken.png")
    assert not broken.ok and "not an image" in broken.error
    assert "Cannot classify" in broken.status.text() and not broken.bars.isVisible()
    assert next(card for card in view.cards if card is not broken).ok


def test_pasted_image_is_classified(qtbot, view, session):
    images, _ = digit_pixels(3)
    QApplication.clipboard().setImage(pixels_to_qimage(images[2]))
    view.setFocus()
    qtbot.waitUntil(view.hasFocus, timeout=2000)
    QTest.keyClick(view, Qt.Key.Key_V, Qt.KeyboardModifier.ControlModifier)
    wait_cards_done(qtbot, view, 1)
    [card] = view.cards
    assert card.source.name == "pasted image" and card.ok
    [expected] = session.trained.classify([images[2]], top_k=5)
    assert_bars_match(card, expected)


def test_open_button_top_k_and_card_selection(qtbot, view, session, tmp_path, monkeypatch):
    paths = write_digits(tmp_path, 2)
    monkeypatch.setattr(view, "choose_images", lambda: [str(p) for p in paths])
    QTest.mouseClick(view.open_button, Qt.MouseButton.LeftButton)
    wait_cards_done(qtbot, view, 2)
    assert [card.source.path for card in view.cards] == [str(paths[1]), str(paths[0])]  # newest on top
    view.top_k_spin.setValue(3)
    assert all(len(card.bars.rows) == 3 for card in view.cards)
    older = view.cards[1]
    with qtbot.waitSignal(session.image_changed, timeout=2000) as changed:
        QTest.mouseClick(older, Qt.MouseButton.LeftButton, pos=QPoint(5, 5))
    assert changed.args[0]["path"] == str(paths[0]) and view.selected_card is older
    assert not view.cards[0].selected


def test_top_k_never_offers_more_places_than_the_model_has_classes(view, session):
    assert len(session.trained.class_names) == 10
    assert view.top_k_spin.maximum() == 10 and view.top_k_spin.value() == 5
    view.top_k_spin.setValue(8)
    view.class_names = ["cat", "dog", "owl"]  # a model of three classes loads
    view._limit_top_k()
    assert view.top_k_spin.maximum() == 3 and view.top_k_spin.value() == 3
    view.class_names = list(session.trained.class_names)  # and ten again: the person's choice comes back
    view._limit_top_k()
    assert view.top_k_spin.maximum() == 10 and view.top_k_spin.value() == 8


def test_add_raw_classifies_an_image_from_another_view(qtbot, view, session):
    raw = np.zeros((1, 12, 12), dtype=np.float32)
    raw[0, 2:10, 5:7] = 1.0  # a bar, roughly a one
    view.add_raw(raw, "validation #7")
    wait_cards_done(qtbot, view, 1)
    [card] = view.cards
    import torch

    [expected] = session.trained.classify(session.trained.preprocessor.normalize(torch.from_numpy(raw)), top_k=5)
    assert_bars_match(card, expected)
    np.testing.assert_allclose(card.raw, raw, atol=1e-6)


def test_folder_table_csv_sorting_and_double_click(qtbot, view, session, tmp_path, monkeypatch):
    folder = tmp_path / "digits"
    paths = write_digits(folder, 30)
    (folder / "broken.png").write_bytes(b"\x89PNG but not really")
    (folder / "notes.txt").write_text("not an image")
    monkeypatch.setattr(view, "choose_folder", lambda: str(folder))
    QTest.mouseClick(view.folder_button, Qt.MouseButton.LeftButton)
    assert view.tabs.currentWidget() is view.folder_panel
    qtbot.waitUntil(lambda: not view.folder_running, timeout=TIMEOUT_MS)
    panel = view.folder_panel
    assert panel.model.rowCount() == len(paths) == 30
    assert panel.unreadable.count() == 2 and "30 image(s) classified, 2 unreadable" in panel.status.text()

    # Sorted by probability, ascending: the most doubtful first.
    QTest.mouseClick(panel.table.horizontalHeader().viewport(), Qt.MouseButton.LeftButton,
                     pos=QPoint(panel.table.columnViewportPosition(3) + 5, 5))
    shown = [panel.proxy.index(row, 3).data(Qt.ItemDataRole.UserRole) for row in range(panel.proxy.rowCount())]
    assert shown == sorted(shown) or shown == sorted(shown, reverse=True)
    assert shown[0] != shown[-1]

    target = tmp_path / "out" / "classified.csv"
    target.parent.mkdir()
    monkeypatch.setattr(view, "choose_csv_path", lambda: str(target))
    assert panel.save_button.isEnabled()
    QTest.mouseClick(panel.save_button, Qt.MouseButton.LeftButton)
    with target.open(newline="", encoding="utf-8") as stream:
        written = list(csv.DictReader(stream))
    assert [p.name for p in target.parent.iterdir()] == ["classified.csv"]  # no temporary left behind
    expected = {item.path: item for item in session.trained.classify_paths([folder], top_k=5)}
    assert len(written) == 32 and {row["file"] for row in written} == set(expected)
    for row in written:
        outcome = expected[row["file"]]
        if outcome.ok:
            assert row["top_class"] == outcome.prediction.label and row["error"] == ""
            assert abs(float(row["probability"]) - outcome.prediction.probability) < 1e-6
            assert row["class_5"] == outcome.prediction.top[4].label
        else:
            assert row["error"] == outcome.error and row["top_class"] == ""
    table_rows = {(r.path, r.top[0][0], f"{r.top[0][1]:.6f}") for r in panel.model.rows}
    assert table_rows == {(r["file"], r["top_class"], r["probability"]) for r in written if not r["error"]}

    first = panel.proxy.index(0, 1)
    rect = panel.table.visualRect(first)
    # Qt 6's QTest.mouseDClick alone sends no press the view can pair with it; a real double-click starts with one.
    QTest.mouseClick(panel.table.viewport(), Qt.MouseButton.LeftButton, pos=rect.center())
    QTest.mouseDClick(panel.table.viewport(), Qt.MouseButton.LeftButton, pos=rect.center())
    assert view.tabs.currentWidget() is view.cards_scroll
    wait_cards_done(qtbot, view, 1)
    assert view.cards[0].source.path == first.data(Qt.ItemDataRole.UserRole + 1)


def test_a_thousand_files_keep_the_gui_responsive_and_cancel_stops(qtbot, view, tmp_path):
    folder = tmp_path / "many"
    paths = write_digits(folder, 1000)
    gaps: list[float] = []
    last = [time.perf_counter()]

    def tick() -> None:
        now = time.perf_counter()
        gaps.append(now - last[0])
        last[0] = now

    timer = QTimer()
    timer.setInterval(5)
    timer.timeout.connect(tick)
    with session_heap_set_aside():
        last[0] = time.perf_counter()
        timer.start()
        view.classify_folder(folder)
        qtbot.waitUntil(lambda: view.folder_panel.model.rowCount() >= 100, timeout=TIMEOUT_MS)
        QTest.mouseClick(view.folder_panel.cancel_button, Qt.MouseButton.LeftButton)
        qtbot.waitUntil(lambda: not view.folder_running, timeout=TIMEOUT_MS)
        timer.stop()
    rows = view.folder_panel.model.rowCount()
    assert 100 <= rows < len(paths)
    assert view.folder_panel.status.text().startswith(f"Cancelled after {rows} of 1000")
    # The event loop kept turning while rows arrived (generous bound: two shared cores).
    assert max(gaps) < 0.5, f"the GUI stalled for {max(gaps):.2f} s"


def test_images_added_before_a_model_loads_are_classified_when_it_does(qtbot, digits_run, tmp_path):
    [path] = write_digits(tmp_path, 1)
    session = ModelSession()
    view = ClassifyView(session)
    qtbot.addWidget(view)
    view.add_images([path])
    [card] = view.cards
    assert card.status.text() == "Waiting for a model…" and not card.ok
    with qtbot.waitSignal(session.model_loaded, timeout=TIMEOUT_MS):
        session.load(digits_run)
    assert view.stack.currentIndex() == 1
    wait_cards_done(qtbot, view, 1)
    assert_bars_match(card, session.trained.classify([path], top_k=5)[0])
    assert session.cancel_all()

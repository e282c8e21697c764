"""Training › Evaluate on a Labelled Folder: the Evaluate tab, the folder asked, the scores shown."""

from __future__ import annotations

import numpy as np
import pytest
from PIL import Image

from dlstudio.core.project import load_project, load_template
from gui_helpers import train_recorded_run


@pytest.mark.timeout(180)
def test_the_menu_entry_evaluates_the_chosen_folder_with_the_latest_run(make_window, qtbot, monkeypatch, tmp_path):
    from sklearn.datasets import load_digits

    project = load_template("mlp")
    train_recorded_run(project, tmp_path / "digits.dlstudio", epochs=1)
    digits = load_digits()
    folder = tmp_path / "labelled"
    for label in (0, 1):
        (folder / str(label)).mkdir(parents=True)
        for index in np.flatnonzero(digits.target == label)[:3]:
            pixels = (digits.images[index] / 16 * 255).astype(np.uint8)
            Image.fromarray(pixels).resize((32, 32)).save(folder / str(label) / f"{index}.png")
    window = make_window(load_project(tmp_path / "digits.dlstudio"))
    monkeypatch.setattr(window, "_ask_evaluate_folder", lambda: str(folder))
    window.evaluate_action.trigger()
    view = window.inspect.evaluate
    assert window.inspect.tabs.currentWidget() is view
    qtbot.waitUntil(lambda: view.summary.text().startswith("6 images") or "accuracy" in view.summary.text(),
                    timeout=60_000)
    assert "accuracy" in view.summary.text()


def test_without_a_trained_run_the_tab_says_why_and_nothing_is_asked(make_window, monkeypatch):
    window = make_window(load_template("mlp"))
    asked = []
    monkeypatch.setattr(window, "_ask_evaluate_folder", lambda: asked.append(1) or "")
    window.evaluate_action.trigger()
    assert not asked and window.inspect.tabs.currentWidget() is window.inspect.evaluate
    assert "No model is loaded" in window.inspect.evaluate.errors.text()

"""Training from the window with starting weights and frozen layers: what loads, what trains, what is said."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
import torch
from PySide6.QtCore import Qt
from PySide6.QtTest import QTest

from dlstudio.core.project import load_project, load_template, save_project
from dlstudio.core.training.checkpoint import load_checkpoint
from gui_helpers import train_recorded_run

SIGNAL_TIMEOUT_MS = 60_000


def train_in_window(window, qtbot) -> tuple[dict, dict]:
    """Press Start; returns the started payload and the finished summary."""
    started, finished = [], []
    QTest.mouseClick(window.training.panel.buttons["start"], Qt.MouseButton.LeftButton)
    worker = window.training.worker
    assert worker is not None, window.training.panel.error_label.text()
    worker.started.connect(started.append)
    worker.finished.connect(finished.append)
    with qtbot.waitSignal(worker.ended, timeout=SIGNAL_TIMEOUT_MS):
        pass
    assert started and finished, window.training.panel.error_label.text()
    return started[0], finished[0]


@pytest.mark.timeout(180)
def test_a_run_started_from_an_earlier_run_with_frozen_layers_keeps_them_and_says_so(make_window, qtbot,
                                                                                      monkeypatch, tmp_path):
    project = load_template("lenet5")
    project.training.update({"epochs": 1, "batch_size": 64, "channels_last": "off", "device": "cpu"})
    first = train_recorded_run(project, tmp_path / "net.dlstudio", epochs=1)
    window = make_window(load_project(tmp_path / "net.dlstudio"))
    monkeypatch.setattr(window, "_ask_starting_run", lambda labels: labels[0])
    window.starting_weights.run_action.trigger()
    convs = [node for node in window.project.graph if node.type == "Conv2d"]
    window.project.frozen.set([node.id for node in convs], True)
    window.save()

    started, finished = train_in_window(window, qtbot)
    assert started["weights"].startswith(f"loaded 10 of 10 tensors from run net.runs/{first.name}")
    assert started["frozen"] == len(convs)
    shown = window.training.panel.weights_label.text()
    assert shown.startswith("Loaded 10 of 10 tensors") and shown.endswith(f"{len(convs)} frozen layers")
    assert window.training.panel.weights_label.isVisible()

    run_dir = Path(finished["run_dir"])
    settings = json.loads((run_dir / "settings.json").read_text())
    assert settings["frozen"] == sorted(node.id for node in convs)
    assert settings["weights"]["source"] == {"source": "run", "path": f"net.runs/{first.name}"}
    before = load_checkpoint(first / "last.pt")["model"]
    after = load_checkpoint(run_dir / "last.pt")["model"]
    for node in convs:  # frozen: exactly the first run's weights
        assert torch.equal(before[f"{node.id}.weight"], after[f"{node.id}.weight"])
    trained = [key for key in after if key.split(".")[0] not in {n.id for n in convs}]
    assert any(not torch.equal(before[key], after[key]) for key in trained)  # the rest learned


@pytest.mark.timeout(120)
def test_missing_torchvision_weights_are_refused_before_the_run_with_where_to_put_them(make_window, qtbot,
                                                                                       monkeypatch, tmp_path):
    import urllib.error
    import urllib.request

    from dlstudio.core.project.pretrained import WeightsSource

    monkeypatch.setenv("TORCH_HOME", str(tmp_path / "torch-home"))

    def offline(*args, **kwargs):  # never the network in a test: the download fails as an offline machine's
        raise urllib.error.URLError("Temporary failure in name resolution")

    monkeypatch.setattr(urllib.request, "urlopen", offline)
    project = load_template("lenet5")
    project.set_weights(WeightsSource("torchvision", model="resnet18", weights="IMAGENET1K_V1"))
    project.training.update({"epochs": 1, "device": "cpu"})
    save_project(project, tmp_path / "net.dlstudio")
    window = make_window(load_project(tmp_path / "net.dlstudio"))
    QTest.mouseClick(window.training.panel.buttons["start"], Qt.MouseButton.LeftButton)
    worker = window.training.worker
    if worker is not None:
        with qtbot.waitSignal(worker.ended, timeout=SIGNAL_TIMEOUT_MS):
            pass
    error = window.training.panel.error_label.text()
    assert "resnet18-f37072fd.pth" in error and str(tmp_path / "torch-home") in error, error
    assert load_project(tmp_path / "net.dlstudio").runs == []  # refused before a run folder was made

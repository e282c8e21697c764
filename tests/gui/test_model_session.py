"""The shared trained model of the inspect views: loads off the GUI thread, serializes work, reports failures."""

from __future__ import annotations

import numpy as np

from dlstudio.gui.inspect.model_session import ModelSession


def _classify_raw(context, trained, raw):
    import torch

    return trained.classify(trained.preprocessor.normalize(torch.as_tensor(raw)).unsqueeze(0), top_k=3)[0]


def test_loads_a_run_and_runs_work_on_it(qtbot, digits_run):
    session = ModelSession()
    with qtbot.waitSignal(session.model_loaded, timeout=10_000) as loaded:
        session.load(digits_run)
    info = loaded.args[0]
    assert info["class_names"] == [str(i) for i in range(10)]
    assert info["input_shape"] == (1, 12, 12)
    assert info["nodes"][0].startswith("input") and "conv1" in info["nodes"]
    task = session.submit(_classify_raw, np.zeros((1, 12, 12), dtype=np.float32))
    with qtbot.waitSignal(task.finished, timeout=10_000) as result:
        pass
    prediction = result.args[0]
    assert len(prediction.top) == 3
    assert abs(sum(score.probability for score in prediction.top)) <= 1.0 + 1e-6


def test_a_folder_that_is_not_a_run_fails_with_one_line(qtbot, tmp_path):
    session = ModelSession()
    with qtbot.waitSignal(session.model_failed, timeout=10_000) as failed:
        session.load(tmp_path)
    assert "not a run folder" in failed.args[0] and "\n" not in failed.args[0]
    assert not session.is_loaded


def test_image_is_shared(qtbot):
    session = ModelSession()
    raw = np.ones((1, 12, 12), dtype=np.float32)
    with qtbot.waitSignal(session.image_changed, timeout=1000) as changed:
        session.set_image(raw, "a.png")
    assert changed.args[0]["path"] == "a.png" and changed.args[0]["raw"] is raw

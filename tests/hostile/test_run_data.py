"""Malformed but safe run data (settings.json, checkpoints) given to `classify` and `train --resume`:
refused with one line, never a traceback, never a huge allocation."""

from __future__ import annotations

import json
import os
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np
import pytest
import torch
from PIL import Image

from hostile_runs import assert_one_line_refusal

pytestmark = pytest.mark.timeout(60)


def _settings(run_dir: Path) -> dict[str, Any]:
    return json.loads((run_dir / "settings.json").read_text())


def _set_settings(run_dir: Path, change: Callable[[dict[str, Any]], Any]) -> None:
    settings = _settings(run_dir)
    change(settings)
    (run_dir / "settings.json").write_text(json.dumps(settings))


def _set_input_shape(shape: list[int]) -> Callable[[dict[str, Any]], None]:
    def change(settings: dict[str, Any]) -> None:
        for node in settings["graph"]["nodes"]:
            if node["type"] == "Input":
                node["params"]["shape"] = shape
    return change


SETTINGS_CASES: dict[str, Callable[[Path], None]] = {
    "not json": lambda run: (run / "settings.json").write_text("{not json"),
    "a list": lambda run: (run / "settings.json").write_text("[1, 2]"),
    "nested too deeply": lambda run: (run / "settings.json").write_text("[" * 100_000 + "]" * 100_000),
    "no graph": lambda run: _set_settings(run, lambda s: s.pop("graph")),
    "graph is text": lambda run: _set_settings(run, lambda s: s.update(graph="lenet")),
    "nodes are numbers": lambda run: _set_settings(run, lambda s: s["graph"].update(nodes=[1, 2])),
    "unknown layer": lambda run: _set_settings(run, lambda s: s["graph"]["nodes"][1].update(type="Evil")),
    "data is a list": lambda run: _set_settings(run, lambda s: s.update(data=[1])),
    "training is text": lambda run: _set_settings(run, lambda s: s.update(training="fast")),
    "monitor is a list": lambda run: _set_settings(run, lambda s: s["training"].update(monitor=[1])),
    "huge input": lambda run: _set_settings(run, _set_input_shape([3, 100_000, 100_000])),
    "huge linear": lambda run: _set_settings(run, _set_input_shape([1, 100_000, 100_000])),
    "a device": lambda run: ((run / "settings.json").unlink(), (run / "settings.json").symlink_to("/dev/zero")),
    "a pipe": lambda run: ((run / "settings.json").unlink(), os.mkfifo(run / "settings.json")),
}


def _checkpoint_case(change: Callable[[dict[str, Any]], Any],
                     names: tuple[str, ...] = ("best.pt", "last.pt")) -> Callable[[Path], None]:
    def damage(run: Path) -> None:
        for name in names:
            state = torch.load(run / name, weights_only=True)
            change(state)
            torch.save(state, run / name)
    return damage


CHECKPOINT_CASES: dict[str, Callable[[Path], None]] = {
    "model is a list": _checkpoint_case(lambda s: s.update(model=[1, 2])),
    "model holds text": _checkpoint_case(lambda s: s["model"].update({next(iter(s["model"])): "weights"})),
    "no model": _checkpoint_case(lambda s: s.pop("model")),
    "meta is text": _checkpoint_case(lambda s: s.update(meta="x")),
    "class names are a number": _checkpoint_case(lambda s: s["meta"].update(class_names=7)),
    "a million class names": _checkpoint_case(lambda s: s["meta"].update(class_names=["c"] * 1_000_001)),
    "three class names": _checkpoint_case(lambda s: s["meta"].update(class_names=["a", "b", "c"])),
    "normalization is text": _checkpoint_case(lambda s: s["meta"].update(normalization="z")),
    "zero std": _checkpoint_case(lambda s: s["meta"].update(normalization={"mean": [0.5], "std": [0.0]})),
    "std is text": _checkpoint_case(lambda s: s["meta"].update(normalization={"mean": [0.5], "std": ["x"]})),
    "not a checkpoint": lambda run: [(run / name).write_bytes(b"PK\x03\x04 garbage") for name in ("best.pt", "last.pt")],
}

def _last(change: Callable[[dict[str, Any]], Any]) -> Callable[[Path], None]:
    return _checkpoint_case(change, ("last.pt",))


RESUME_CASES: dict[str, Callable[[Path], None]] = {
    "epoch is text": _last(lambda s: s.update(epoch="3")),
    "history does not match": _last(lambda s: s.update(history=[{"epoch": "x"}])),
    "history values are text": _last(lambda s: s["history"][0].update(train_loss="low")),
    "best is text": _last(lambda s: s.update(best="yes")),
    "best value is text": _last(lambda s: s["best"].update(value="low")),
    "rng is damaged": _last(lambda s: s["rng"].update(torch=torch.zeros(3))),
    "optimizer is damaged": _last(lambda s: s.update(optimizer={"state": 1, "param_groups": "x"})),
    "position with a huge batch": _last(lambda s: s.update(position={
        "epoch": 2, "batch": 10**12, "permutation": torch.arange(10), "losses": torch.zeros(1),
        "correct": torch.zeros(()), "sizes": [1]})),
    "position with a huge order": _last(lambda s: s.update(position={
        "epoch": 2, "batch": 0, "permutation": torch.tensor([10**15]), "losses": torch.zeros(10),
        "correct": torch.zeros(()), "sizes": None})),
    "model of another shape": _last(lambda s: s["model"].update(
        {key: torch.zeros(3) for key in s["model"]})),
}


@pytest.fixture
def image(tmp_path: Path) -> Path:
    path = tmp_path / "digit.png"
    Image.fromarray(np.zeros((8, 8), dtype=np.uint8)).save(path)
    return path


@pytest.mark.parametrize("case", [*SETTINGS_CASES, *CHECKPOINT_CASES])
def test_classify_refuses_damaged_run_data_with_one_line(run_copy: Path, image: Path, cli_run, case: str) -> None:
    (SETTINGS_CASES.get(case) or CHECKPOINT_CASES[case])(run_copy)
    code, _, err = cli_run("classify", run_copy, image)
    assert_one_line_refusal(code, err)


@pytest.mark.parametrize("case", [*SETTINGS_CASES, "model is a list", "no model", "not a checkpoint",
                                  *RESUME_CASES])
def test_resume_refuses_damaged_run_data_with_one_line(run_copy: Path, cli_run, case: str) -> None:
    _set_settings(run_copy, lambda s: s["training"].update(epochs=2))
    (run_copy / "result.json").write_text('{"status": "stopped"}')
    (SETTINGS_CASES.get(case) or CHECKPOINT_CASES.get(case) or RESUME_CASES[case])(run_copy)
    project = run_copy.parent.parent / "tiny.dlstudio"
    code, _, err = cli_run("train", project, "--resume", run_copy)
    assert_one_line_refusal(code, err)
    assert not (run_copy / ".training.lock").exists()


def test_classify_of_a_device_says_what_it_is(image: Path, cli_run) -> None:
    code, _, err = cli_run("classify", "/dev/zero", image)
    assert_one_line_refusal(code, err, "/dev/zero")
    assert "does not exist" not in err

"""An import's own weights as a file: stashed while the project is unsaved, beside it once saved; a weights
path relative to the project follows a Save As into another folder."""

from __future__ import annotations

import os
import time
from pathlib import Path

import pytest
import torch
from safetensors.torch import load_file

from dlstudio.core.importer.weights_file import (
    STASH_DAYS, is_stashed, stash_folder, stash_weights, weights_for_saving, write_weights_beside,
)
from dlstudio.core.project.pretrained import WeightsSource
from dlstudio.core.safe_io import WriteError


@pytest.fixture(autouse=True)
def user_data(tmp_path, monkeypatch):
    monkeypatch.setenv("XDG_DATA_HOME", str(tmp_path / "user data"))


def test_a_stash_is_copied_beside_the_project_at_its_first_save(tmp_path):
    state = {"conv.weight": torch.arange(6.0).view(2, 3)}
    stashed = stash_weights(state, "model.onnx")
    assert is_stashed(stashed) and Path(stashed.path).parent == stash_folder()
    assert Path(stashed.path).name.startswith("model-")

    saved = weights_for_saving(stashed, None, tmp_path / "net.dlstudio")
    assert saved == WeightsSource("file", path="net.weights.safetensors") and not is_stashed(saved)
    assert torch.equal(load_file(tmp_path / "net.weights.safetensors")["conv.weight"], state["conv.weight"])


def test_a_relative_path_follows_a_save_as_into_another_folder(tmp_path):
    old = tmp_path / "a" / "net.dlstudio"
    (tmp_path / "a").mkdir()
    source = WeightsSource("file", path="backbone.safetensors")
    # Saved in the same folder: untouched.
    assert weights_for_saving(source, old, tmp_path / "a" / "copy.dlstudio") is source
    # Into a folder outside: the same file, by its absolute path.
    moved = weights_for_saving(source, old, tmp_path / "b" / "net.dlstudio")
    assert moved.path == str(tmp_path / "a" / "backbone.safetensors")
    # Into the folder above: still relative, through the subfolder.
    up = weights_for_saving(source, old, tmp_path / "net.dlstudio")
    assert up.path == "a/backbone.safetensors"
    # A run folder follows the same way; absolute paths and torchvision names stay as they are.
    run = weights_for_saving(WeightsSource("run", path="net.runs/run-1"), old, tmp_path / "b" / "x.dlstudio")
    assert run.path == str(tmp_path / "a" / "net.runs" / "run-1")
    absolute = WeightsSource("file", path=str(tmp_path / "w.pth"))
    assert weights_for_saving(absolute, old, tmp_path / "b" / "x.dlstudio") is absolute
    named = WeightsSource("torchvision", model="resnet18", weights="IMAGENET1K_V1")
    assert weights_for_saving(named, old, tmp_path / "b" / "x.dlstudio") is named


def test_a_planted_link_where_the_weights_go_is_refused_not_followed(tmp_path):
    victim = tmp_path / "victim.txt"
    victim.write_text("keep me")
    os.symlink(victim, tmp_path / "net.weights.safetensors")
    with pytest.raises(WriteError):
        write_weights_beside({"w": torch.zeros(2)}, tmp_path / "net.dlstudio")
    assert victim.read_text() == "keep me"


def test_stashes_older_than_a_month_are_removed_at_the_next_import():
    old = stash_weights({"w": torch.zeros(1)}, "old.onnx")
    month_ago = time.time() - (STASH_DAYS + 1) * 86_400
    os.utime(old.path, (month_ago, month_ago))
    recent = stash_weights({"w": torch.ones(1)}, "recent.onnx")
    assert not Path(old.path).exists() and Path(recent.path).exists()


def test_a_planted_link_where_a_save_copies_the_stash_is_refused_and_the_stash_kept(tmp_path):
    stashed = stash_weights({"w": torch.ones(3)}, "model.onnx")
    victim = tmp_path / "victim.txt"
    victim.write_text("keep me")
    os.symlink(victim, tmp_path / "net.weights.safetensors")
    with pytest.raises(WriteError):
        weights_for_saving(stashed, None, tmp_path / "net.dlstudio")
    assert victim.read_text() == "keep me" and Path(stashed.path).is_file()  # nothing lost: save elsewhere

"""Hostile image folders: hidden subfolders, link loops, dangling links, FIFOs, a class linked to '..', and files
that break while streaming. One rule (data.folder.walk_images) decides for training, preview and classify;
whatever is not read is listed with its reason, and nothing hangs."""

from __future__ import annotations

import json
import os
from pathlib import Path

import numpy as np
import pytest
import torch

from dlstudio.core.data import DataRequirements, prepare_data
from dlstudio.core.data import prepare as prepare_module
from dlstudio.core.data.folder import load_image_folder, scan_folder, walk_images
from dlstudio.core.inspect.classify import find_images
from hostile_images import save

pytestmark = pytest.mark.timeout(60)

SHAPE = (1, 8, 8)


def _two_classes(root: Path, per_class: int = 3) -> Path:
    for label, name in enumerate(("cats", "dogs")):
        for index in range(per_class):
            save(root / name / f"{index}.png", np.full((10, 10), 40 + 150 * label, np.uint8))
    return root


def test_images_in_hidden_subfolders_are_neither_trained_on_nor_classified(tmp_path: Path) -> None:
    root = _two_classes(tmp_path / "data")
    save(root / "cats" / ".thumbnails" / "t.png", np.zeros((10, 10), np.uint8))
    save(root / "cats" / "sub" / ".hidden.png", np.zeros((10, 10), np.uint8))
    loaded = load_image_folder(root, SHAPE)
    assert loaded.class_counts() == [3, 3] and not loaded.skipped
    classified = [path for path, reason in find_images([root]) if reason is None]
    trained = [path for path, reason in walk_images(root) if reason is None]
    assert classified == trained and len(trained) == 6
    assert not any(part.startswith(".") for path in classified for part in path.relative_to(root).parts)


def test_link_loops_dangling_links_and_fifos_are_listed_as_skipped_without_hanging(tmp_path: Path) -> None:
    root = _two_classes(tmp_path / "data")
    (root / "cats" / "loop").symlink_to(root / "cats")            # a folder link back to its own folder
    (root / "cats" / "self.png").symlink_to(root / "cats" / "self.png")  # a link to itself (ELOOP)
    (root / "dogs" / "gone.png").symlink_to(tmp_path / "missing.png")
    os.mkfifo(root / "dogs" / "pipe.png")
    loaded = load_image_folder(root, SHAPE)
    assert loaded.class_counts() == [3, 3]
    reasons = {Path(s.path).name: s.reason for s in loaded.skipped}
    assert set(reasons) == {"loop", "self.png", "gone.png", "pipe.png"}
    assert "loop" in reasons["loop"] and "loop" in reasons["self.png"]
    assert "broken link" in reasons["gone.png"]
    assert "not a regular file" in reasons["pipe.png"]
    # classify walks the same way: the same skips, the same reasons
    from_classify = {path.name: reason for path, reason in find_images([root]) if reason is not None}
    assert from_classify == reasons


def test_a_class_folder_linked_to_its_parent_is_skipped_not_read_twice(tmp_path: Path) -> None:
    root = _two_classes(tmp_path / "data")
    (root / "everything").symlink_to("..")
    (root / "again").symlink_to(root / "cats")  # the same class twice through a link
    class_names, files, skipped = scan_folder(root)
    assert class_names == ["cats", "dogs"] and [len(paths) for paths in files] == [3, 3]
    reasons = {Path(s.path).name: s.reason for s in skipped}
    assert "contains it" in reasons["everything"] and "inside the image folder" in reasons["again"]


def test_a_folder_linked_from_elsewhere_is_read_once(tmp_path: Path) -> None:
    elsewhere = tmp_path / "elsewhere"
    for index in range(2):
        save(elsewhere / f"{index}.png", np.zeros((10, 10), np.uint8))
    root = _two_classes(tmp_path / "data")
    (root / "birds").symlink_to(elsewhere)
    (root / "cats" / "more").symlink_to(elsewhere)  # the same real folder a second time
    class_names, files, skipped = scan_folder(root)
    assert class_names == ["birds", "cats", "dogs"] and [len(paths) for paths in files] == [2, 3, 3]
    assert [Path(s.path).name for s in skipped] == ["more"] and "already read" in skipped[0].reason


def _model() -> torch.nn.Module:
    from dlstudio.core.compiler import compile_graph
    from dlstudio.core.graph import Graph

    graph = Graph()
    previous = None
    for kind, params in [("Input", {"shape": list(SHAPE)}), ("Flatten", {}), ("Linear", {"out_features": 2}),
                         ("Output", {"task": "classification", "classes": 2})]:
        node = graph.add_node(kind, params)
        if previous is not None:
            graph.connect(previous.id, "out", node.id, "in")
        previous = node
    torch.manual_seed(0)
    return compile_graph(graph)


def test_every_file_that_fails_while_streaming_reaches_the_run_folder_log(tmp_path: Path,
                                                                          monkeypatch: pytest.MonkeyPatch) -> None:
    from dlstudio.core.training import TrainConfig, Trainer

    root = _two_classes(tmp_path / "data", per_class=6)
    broken = [root / ("cats" if i % 2 else "dogs") / f"broken{i}.png" for i in range(5)]
    for path in broken:
        path.write_bytes(b"\x89PNG\r\n\x1a\n not an image")
    monkeypatch.setattr(prepare_module, "NORMALIZATION_SAMPLE", 4)  # most broken files are met while training
    data = prepare_data({"source": "folder", "path": str(root), "val_fraction": 0.25, "test_fraction": 0.0},
                        DataRequirements(SHAPE, classes=2), stream_threshold_bytes=0, num_workers=0)
    assert data.streaming
    run_dir = tmp_path / "run"
    run_dir.mkdir()
    data.log_skipped(run_dir / "skipped.jsonl")
    config = TrainConfig.from_settings({"batch_size": 4, "epochs": 2, "device": "cpu"})
    Trainer(_model(), data, config).fit()
    logged = [json.loads(line) for line in (run_dir / "skipped.jsonl").read_text().splitlines()]
    assert sorted(entry["path"] for entry in logged) == sorted(str(path) for path in broken)
    assert all(entry["reason"] for entry in logged)
    assert sorted(s.path for s in data.skipped) == sorted(str(path) for path in broken)
    # a resumed run's log keeps its entries once
    data.log_skipped(run_dir / "skipped.jsonl")
    assert len((run_dir / "skipped.jsonl").read_text().splitlines()) == 5


def test_the_skipped_log_is_never_written_through_a_planted_link(tmp_path: Path) -> None:
    from dlstudio.core.data.dataset import SkippedFile, SkippedFiles

    outside = tmp_path / "outside.txt"
    outside.write_text("precious\n")
    run_dir = tmp_path / "run"
    run_dir.mkdir()
    (run_dir / "skipped.jsonl").symlink_to(outside)
    skipped = SkippedFiles([SkippedFile("a.png", "not an image")])
    skipped.log_to(run_dir / "skipped.jsonl")
    skipped.add([SkippedFile("b.png", "too large")])
    assert outside.read_text() == "precious\n" and len(skipped) == 2

"""The Data panel's preview of an image folder training would stream decodes only what it shows.

The stream threshold is lowered so that a folder of a few hundred small PNGs counts as too large for memory;
the one image reader is wrapped wherever it is bound, to count decodes.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np
import pytest
import torch
from PIL import Image

from dlstudio.core.data import DataRequirements, LabeledTensors, folder, prepare, prepare_data, reader, streaming
from dlstudio.core.data import preview as preview_module
from dlstudio.core.data.preview import load_preview

pytestmark = [pytest.mark.timeout(60), pytest.mark.usefixtures("one_torch_thread")]

SHAPE = (1, 8, 8)
# Grey level of each class's images: the mosaic shows which class a sample came from.
CLASSES = {"ants": 30, "bees": 130, "cats": 230}
PER_CLASS = 100
STATS_SAMPLE = 32  # training's statistics subset, lowered so that it is well below the folder's size


def _write_folder(root: Path, per_class: int = PER_CLASS) -> Path:
    for name, grey in CLASSES.items():
        (root / name).mkdir(parents=True)
        for index in range(per_class):
            Image.new("L", (10 + index % 3, 9), grey).save(root / name / f"{index:03d}.png")
    (root / "ants" / "notes.txt").write_text("not an image")  # skipped by the walk, nothing decoded
    return root


def _settings(root: Path, **changes: Any) -> dict[str, Any]:
    return {"source": "folder", "path": str(root), "val_fraction": 0.2, "test_fraction": 0.1, "split_seed": 3,
            **changes}


@pytest.fixture
def decodes(monkeypatch) -> list[str]:
    """Paths handed to the one image reader, wherever a module bound it."""
    original = reader.read_image
    seen: list[str] = []

    def counting(path, *args, **kwargs):
        seen.append(str(path))
        return original(path, *args, **kwargs)

    for module in (reader, folder, prepare, streaming, preview_module):
        if getattr(module, "read_image", None) is original:
            monkeypatch.setattr(module, "read_image", counting)
    return seen


@pytest.fixture
def streams(monkeypatch) -> None:
    """Every folder counts as too large for memory; training's statistics subset is small."""
    monkeypatch.setattr(streaming, "stream_threshold", lambda: 0)
    monkeypatch.setattr(prepare, "NORMALIZATION_SAMPLE", STATS_SAMPLE)


def _shown_labels_match_pixels(images: np.ndarray, labels: np.ndarray) -> bool:
    greys = list(CLASSES.values())
    return all(int(image.mean().round()) == greys[label] for image, label in zip(images, labels))


def test_a_streamed_folder_decodes_only_the_samples_shown_and_the_statistics_subset(
        tmp_path, decodes, streams) -> None:
    root = _write_folder(tmp_path / "big")
    preview = load_preview(_settings(root), SHAPE, 3)
    shown = len(preview.images)
    assert shown == 3 * 8 and preview.grouped
    assert len(decodes) <= shown + STATS_SAMPLE < 3 * PER_CLASS
    assert preview.problems == []
    # The split and counts are training's: the same split function over the same walk's labels.
    trained = prepare_data(_settings(root), DataRequirements(SHAPE, classes=3), stream_threshold_bytes=0,
                           num_workers=0)
    assert trained.streaming
    summary = trained.summary()
    assert preview.split_sizes == summary["sizes"] and preview.class_counts == summary["class_counts"]
    assert preview.class_names == list(CLASSES)
    # The mosaic: 8 samples per class in class order, each showing its class's pixels.
    assert list(preview.labels) == [c for c in range(3) for _ in range(8)]
    assert preview.images.shape == (24, 8, 8, 1) and _shown_labels_match_pixels(preview.images, preview.labels)
    # Statistics estimated as training estimates them, and said to be.
    assert preview.normalization == trained.normalization and preview.normalization_sample == STATS_SAMPLE
    assert any(f"estimated from {STATS_SAMPLE} training images" in w for w in preview.warnings)
    assert [Path(s.path).name for s in preview.skipped] == ["notes.txt"]
    # Kept for the panel to pass back: the walk's listing (a FolderListing), not decoded pixels.
    assert type(preview.data).__name__ == "FolderListing" and len(preview.data) == 3 * PER_CLASS


def test_a_shuffle_of_a_streamed_folder_reuses_its_listing(tmp_path, decodes, streams, monkeypatch) -> None:
    root = _write_folder(tmp_path / "big")
    first = load_preview(_settings(root), SHAPE, 3)
    decodes.clear()
    monkeypatch.setattr(preview_module, "scan_folder", lambda root: pytest.fail("walked the folder again"))
    other = load_preview(_settings(root), SHAPE, 3, data=first.data, seed=1)
    assert len(decodes) == len(other.images) == 24  # the statistics are kept with the listing
    assert other.normalization == first.normalization and other.class_counts == first.class_counts
    assert _shown_labels_match_pixels(other.images, other.labels)
    assert sorted(decodes) != sorted(_decoded_for(first, root))  # other files this time
    augmented = load_preview(_settings(root), SHAPE, 3, data=first.data, seed=1, augmented=True)
    assert list(augmented.labels) == list(other.labels)
    no_stats = load_preview(_settings(root, normalize=False), SHAPE, 3, data=first.data)
    assert no_stats.normalization is None and no_stats.normalization_sample == 0


def _decoded_for(preview, root: Path) -> list[str]:
    # The first preview's shown files are unknown to the test; re-run it with a counter instead.
    seen: list[str] = []
    original = preview_module.reader.read_image

    def counting(path, *args, **kwargs):
        seen.append(str(path))
        return original(path, *args, **kwargs)

    preview_module.reader.read_image = counting
    try:
        load_preview(_settings(root, normalize=False), SHAPE, 3, data=preview.data)
    finally:
        preview_module.reader.read_image = original
    return seen


def test_only_unreadable_files_met_while_decoding_are_listed(tmp_path, decodes, streams) -> None:
    root = _write_folder(tmp_path / "big", per_class=12)
    broken = set()
    for index in range(6):  # half of 'bees' is broken: the 8 shown bees must meet some of them
        path = root / "bees" / f"{index:03d}.png"
        path.write_bytes(b"\x89PNG\r\n\x1a\n not really")
        broken.add(str(path))
    preview = load_preview(_settings(root, val_fraction=0.0, test_fraction=0.0, normalize=False), SHAPE, 3)
    listed = {s.path for s in preview.skipped} - {str(root / "ants" / "notes.txt")}
    assert listed and listed <= broken and listed <= set(decodes)
    assert all("not" in s.reason for s in preview.skipped)
    # The readable bees are all shown (a broken one is replaced by the next); counts stay the walk's.
    assert list(preview.labels).count(1) == 6 and _shown_labels_match_pixels(preview.images, preview.labels)
    assert preview.class_counts["train"] == [12, 12, 12]
    assert len(decodes) <= 8 + 2 * 8 + 8
    # A shuffle does not decode the known broken files again, and still lists them.
    decodes.clear()
    again = load_preview(_settings(root, val_fraction=0.0, test_fraction=0.0, normalize=False), SHAPE, 3,
                         data=preview.data, seed=1)
    assert not (set(decodes) & listed) and listed <= {s.path for s in again.skipped}


def test_a_folder_that_fits_in_memory_is_loaded_whole_as_before(tmp_path, decodes) -> None:
    root = _write_folder(tmp_path / "small", per_class=20)
    preview = load_preview(_settings(root), SHAPE, 3)
    assert len(decodes) == 60 and isinstance(preview.data, LabeledTensors)
    assert preview.normalization_sample == 0 and preview.warnings == []
    expected = prepare_data(_settings(root), DataRequirements(SHAPE, classes=3), stream_threshold_bytes=2**62)
    assert preview.normalization == expected.normalization
    assert torch.equal(preview.data.y, torch.repeat_interleave(torch.arange(3), 20))

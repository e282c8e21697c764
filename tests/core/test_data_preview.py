"""The Data panel's preview: samples, split sizes, class counts, skipped files and problems."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from dlstudio.core.data import load_source
from dlstudio.core.data.preview import DataPreview, class_warnings, graph_requirements, load_key, load_preview
from dlstudio.core.project import load_template


@pytest.fixture(scope="module")
def digits():
    return load_source({"source": "digits"}, (1, 28, 28))


def _colour_folder(root: Path, classes: dict[str, tuple[int, int, int]], per_class: int = 4) -> Path:
    for name, colour in classes.items():
        (root / name).mkdir(parents=True)
        for i in range(per_class):
            Image.new("RGB", (12 + i, 10), colour).save(root / name / f"{i}.png")
    return root


def test_digits_preview_counts_samples_and_labels(digits) -> None:
    preview = load_preview({"source": "digits"}, (1, 28, 28), 10, data=digits)
    assert sum(sum(counts) for counts in preview.class_counts.values()) == 1797
    assert preview.total == 1797 and preview.split_sizes["val"] > 0 and preview.split_sizes["test"] > 0
    assert preview.images is not None and preview.images.shape == (80, 28, 28, 1)
    assert preview.images.dtype == np.uint8 and preview.images.max() > 200  # raw pixels, not normalized
    assert preview.grouped and list(preview.labels) == [c for c in range(10) for _ in range(8)]
    assert preview.problems == [] and preview.warnings == []
    assert preview.normalization is not None and 0.2 < preview.normalization.mean[0] < 0.4


def test_shuffle_seed_and_augmentation_change_the_samples(digits) -> None:
    settings = {"source": "digits", "augment_rotation": 30.0, "augment_crop_padding": 3}
    first = load_preview(settings, (1, 28, 28), 10, data=digits, seed=0)
    again = load_preview(settings, (1, 28, 28), 10, data=digits, seed=0)
    other = load_preview(settings, (1, 28, 28), 10, data=digits, seed=1)
    augmented = load_preview(settings, (1, 28, 28), 10, data=digits, seed=0, augmented=True)
    assert np.array_equal(first.images, again.images)
    assert not np.array_equal(first.images, other.images)
    assert list(augmented.labels) == list(first.labels) and not np.array_equal(first.images, augmented.images)


def test_image_folder_in_colour_with_a_corrupt_file_listed(tmp_path: Path) -> None:
    root = _colour_folder(tmp_path / "shapes", {"blue": (20, 40, 220), "red": (220, 30, 30)}, per_class=12)
    (root / "red" / "broken.png").write_text("not an image")
    preview = load_preview({"source": "folder", "path": "shapes", "val_fraction": 0.25, "test_fraction": 0.0},
                           (3, 16, 16), 2, base_dir=tmp_path)
    assert preview.problems == []
    assert [Path(s.path).name for s in preview.skipped] == ["broken.png"]
    assert preview.class_names == ["blue", "red"] and preview.split_sizes == {"train": 18, "val": 6, "test": 0}
    assert preview.images.shape == (16, 16, 16, 3)
    red = preview.images[list(preview.labels).index(1)]
    assert tuple(red[8, 8]) == (220, 30, 30)  # colour kept, raw values


def test_class_count_mismatch_names_both_numbers(tmp_path: Path) -> None:
    root = _colour_folder(tmp_path / "five", {name: (i * 40, 0, 0) for i, name in enumerate("abcde")}, per_class=10)
    preview = load_preview({"source": "folder", "path": str(root)}, (1, 8, 8), 10)
    assert len(preview.problems) == 1
    assert "5 classes" in preview.problems[0] and "10" in preview.problems[0]
    assert "set its classes to 5" in preview.problems[0]
    assert preview.images is not None and preview.images.shape[-1] == 1  # samples still shown


@pytest.mark.parametrize(("settings", "shape", "expected"), [
    ({"source": "folder"}, (1, 8, 8), "no image folder chosen"),
    ({"source": "csv"}, (4,), "no CSV file chosen"),
    ({"source": "folder", "path": "missing"}, (1, 8, 8), "does not exist"),
    ({"source": "digits"}, (64,), "[C, H, W]"),
])
def test_problems_that_stop_loading_are_one_line(tmp_path, settings, shape, expected) -> None:
    preview = load_preview(settings, shape, 10, base_dir=tmp_path)
    assert isinstance(preview, DataPreview) and preview.images is None and preview.data is None
    assert len(preview.problems) == 1 and expected in preview.problems[0] and "\n" not in preview.problems[0]


def test_offline_torchvision_says_where_to_put_the_files(tmp_path: Path) -> None:
    preview = load_preview({"source": "torchvision", "dataset": "mnist", "path": str(tmp_path)}, (1, 28, 28), 10)
    assert len(preview.problems) == 1
    assert "put train-images-idx3-ubyte" in preview.problems[0] and str(tmp_path) in preview.problems[0]


def test_csv_rows_instead_of_images(tmp_path: Path) -> None:
    lines = ["a,b,label"] + [f"{i},{i * 2},{'yes' if i % 2 else 'no'}" for i in range(40)]
    (tmp_path / "table.csv").write_text("\n".join(lines) + "\n")
    preview = load_preview({"source": "csv", "path": "table.csv"}, (2,), 2, base_dir=tmp_path)
    assert preview.images is None and preview.rows.shape == (16, 2)
    assert preview.class_names == ["no", "yes"] and preview.problems == []


def test_split_that_leaves_nothing_to_train_is_a_problem(digits) -> None:
    preview = load_preview({"source": "digits", "val_fraction": 0.9, "test_fraction": 0.5}, (1, 28, 28), 10,
                           data=digits)
    assert preview.problems and "val_fraction + test_fraction" in preview.problems[0]
    assert preview.images is not None  # samples are shown anyway


def test_tiny_and_unbalanced_classes_are_warned_about() -> None:
    warnings = class_warnings(["cat", "dog", "eel"], [300, 40, 3])
    assert any("'eel' (3)" in w for w in warnings)
    assert any("unbalanced" in w and "'cat' has 300" in w and "'eel' only 3" in w for w in warnings)
    assert class_warnings(["a", "b"], [100, 90]) == []


def test_graph_requirements_and_load_key() -> None:
    project = load_template("lenet5")
    requirements = graph_requirements(project.graph)
    assert requirements.input_shape == (1, 28, 28) and requirements.classes == 10
    key = load_key({"source": "digits"}, requirements.input_shape, None)
    assert key == load_key({"source": "digits", "val_fraction": 0.3, "split_seed": 4}, (1, 28, 28), None)
    assert key != load_key({"source": "digits"}, (1, 32, 32), None)


def test_many_classes_give_random_samples(tmp_path: Path) -> None:
    classes = {f"class{i:02d}": (i * 20, 255 - i * 20, 90) for i in range(12)}
    root = _colour_folder(tmp_path / "many", classes, per_class=10)
    preview = load_preview({"source": "folder", "path": str(root)}, (3, 8, 8), 12)
    assert not preview.grouped and preview.images.shape == (48, 8, 8, 3)
    assert len(set(preview.labels.tolist())) > 5 and preview.problems == []


def test_an_empty_class_folder_is_a_problem_beside_the_other_classes_samples(tmp_path: Path) -> None:
    # A person's folder with one class folder not filled yet: the preview still shows what it found.
    root = _colour_folder(tmp_path / "pets", {"cats": (220, 30, 30), "dogs": (30, 200, 40)}, per_class=8)
    (root / "fish").mkdir()
    (root / "fish" / "notes.txt").write_text("to do")
    preview = load_preview({"source": "folder", "path": "pets", "val_fraction": 0.25, "test_fraction": 0.0},
                           (3, 8, 8), 3, base_dir=tmp_path)
    assert preview.problems == [f"class folder 'fish' in {str(root)!r} has no images: each subfolder is one class, "
                                f"so add images to it or move it out of the image folder"]
    assert preview.class_names == ["cats", "dogs", "fish"]
    assert preview.class_counts["train"][2] == preview.class_counts["val"][2] == 0
    assert sorted(set(preview.labels.tolist())) == [0, 1] and preview.images.shape[0] == 12  # 6 train each
    assert [Path(s.path).name for s in preview.skipped] == ["notes.txt"]


def test_a_class_folder_of_unreadable_files_names_one_and_why(tmp_path: Path) -> None:
    root = _colour_folder(tmp_path / "pets", {"cats": (220, 30, 30), "dogs": (30, 200, 40)}, per_class=8)
    (root / "birds").mkdir()
    (root / "birds" / "a.jpg").write_bytes(b"")
    (root / "birds" / "b.png").write_text("not a png")
    preview = load_preview({"source": "folder", "path": "pets", "val_fraction": 0.25, "test_fraction": 0.0},
                           (3, 8, 8), 3, base_dir=tmp_path)
    assert len(preview.problems) == 1
    problem = preview.problems[0]
    assert problem.startswith(f"class folder 'birds' in {str(root)!r} has no readable images: none of its 2 image "
                              f"files could be read (a.jpg: not an image")
    assert "\n" not in problem and "Error" not in problem
    assert preview.class_counts["train"][0] == 0 and len(preview.skipped) == 2


def test_training_still_refuses_an_empty_class_folder_in_the_previews_words(tmp_path: Path) -> None:
    from dlstudio.core.data import DataError
    from dlstudio.core.data.prepare import DataRequirements, prepare_data

    root = _colour_folder(tmp_path / "pets", {"cats": (220, 30, 30), "dogs": (30, 200, 40)}, per_class=8)
    (root / "fish").mkdir()
    settings = {"source": "folder", "path": str(root)}
    preview = load_preview(settings, (3, 8, 8), 3)
    with pytest.raises(DataError) as refused:
        prepare_data(settings, DataRequirements((3, 8, 8), "classification", 3))
    assert refused.value.message == preview.problems[0]
    with pytest.raises(DataError) as streamed:  # a folder too large for memory, streamed: the same words
        prepare_data(settings, DataRequirements((3, 8, 8), "classification", 3), stream_threshold_bytes=0,
                     num_workers=0)
    assert streamed.value.message == preview.problems[0]


@pytest.mark.parametrize("streamed", [False, True])
@pytest.mark.parametrize(("output_classes", "mismatch"), [
    (3, None), (4, None), (10, "the data has 3 classes; the Output node is set to 10 (set its classes to 3)")])
def test_an_empty_class_folder_does_not_ask_for_a_class_count_it_cannot_train(
        tmp_path: Path, monkeypatch, streamed: bool, output_classes: int, mismatch: str | None) -> None:
    # Three classes of images and a folder not filled yet: with the Output node at 3 or 4 the empty folder is the
    # one thing to fix (its line says: fill it or move it out), not "set its classes to 4".
    from dlstudio.core.data import streaming

    if streamed:
        monkeypatch.setattr(streaming, "stream_threshold", lambda: 0)
    root = _colour_folder(tmp_path / "pets", {"birds": (20, 40, 220), "cats": (220, 30, 30),
                                              "dogs": (30, 200, 40)}, per_class=8)
    (root / "fish").mkdir()
    preview = load_preview({"source": "folder", "path": str(root)}, (3, 8, 8), output_classes)
    assert preview.problems[0].startswith("class folder 'fish' in ") and "has no images" in preview.problems[0]
    assert preview.problems[1:] == ([mismatch] if mismatch else [])
    assert preview.class_names == ["birds", "cats", "dogs", "fish"] and len(preview.images) > 0
    assert not any("fish" in warning for warning in preview.warnings)  # said once, as the problem above

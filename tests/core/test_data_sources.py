"""Each data source on data the test makes: digits, image folders, CSV, torchvision (offline)."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import torch
from PIL import Image

from dlstudio.core.data import DataError, DataRequirements, load_source, prepare_data
from dlstudio.core.data.images import convert_channels


def _write_image(path: Path, mode: str, size: tuple[int, int], value: int) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    channels = {"L": 1, "RGB": 3, "RGBA": 4}[mode]
    array = np.full((size[1], size[0], channels), value, dtype=np.uint8)
    if mode == "RGBA":
        array[..., 3] = 255  # opaque, so the grey value survives compositing onto black
    image = Image.fromarray(array.squeeze(-1) if channels == 1 else array, mode)
    image.save(path)


@pytest.fixture
def image_folder(tmp_path: Path) -> Path:
    """Two classes of mixed modes and sizes, plus a truncated JPEG, a text file named .png, and a note."""
    root = tmp_path / "images"
    for i, mode in enumerate(["L", "RGB", "RGBA"]):
        _write_image(root / "dark" / f"d{i}.png", mode, (10 + i, 12), 40)
        _write_image(root / "light" / f"l{i}.png", mode, (16, 9 + i), 220)
    _write_image(root / "light" / "l3.jpg", "RGB", (20, 20), 220)
    _write_image(root / "dark" / "d3.bmp", "L", (8, 8), 40)
    whole = root / "dark" / "whole.jpg"
    _write_image(whole, "RGB", (64, 64), 30)
    truncated = root / "dark" / "truncated.jpg"
    truncated.write_bytes(whole.read_bytes()[: len(whole.read_bytes()) // 2])
    whole.unlink()
    (root / "light" / "fake.png").write_text("this is not an image")
    (root / "light" / "notes.txt").write_text("labels checked by hand")
    return root


def test_digits_are_resized_to_the_input_node(tmp_path: Path) -> None:
    data = load_source({"source": "digits"}, (1, 28, 28))
    assert data.x.shape == (1797, 1, 28, 28)
    assert data.class_names == [str(i) for i in range(10)]
    assert 0.0 <= float(data.x.min()) and float(data.x.max()) <= 1.0
    assert sum(data.class_counts()) == 1797


def test_digits_refuse_a_flat_input_shape() -> None:
    with pytest.raises(DataError, match=r"\[C, H, W\].*\[64\]"):
        load_source({"source": "digits"}, (64,))


def test_image_folder_skips_and_lists_bad_files(image_folder: Path) -> None:
    data = load_source({"source": "folder", "path": str(image_folder)}, (3, 8, 8))
    assert data.class_names == ["dark", "light"]
    assert data.class_counts() == [4, 4]
    skipped = {Path(s.path).name: s.reason for s in data.skipped}
    assert set(skipped) == {"truncated.jpg", "fake.png", "notes.txt"}
    assert "truncated" in skipped["truncated.jpg"].lower()
    assert "not an image file type" in skipped["notes.txt"]


@pytest.mark.parametrize("channels", [1, 3, 4])
def test_image_folder_converts_modes_consistently(image_folder: Path, channels: int) -> None:
    data = load_source({"source": "folder", "path": str(image_folder)}, (channels, 6, 7))
    assert data.x.shape == (8, channels, 6, 7)
    colour = data.x[:, :3]
    dark, light = colour[data.y == 0], colour[data.y == 1]
    # Grey, RGB and opaque RGBA files of one value come out the same, whatever the target mode.
    assert torch.allclose(dark, torch.full_like(dark, 40 / 255), atol=2 / 255)
    assert torch.allclose(light, torch.full_like(light, 220 / 255), atol=2 / 255)
    if channels == 4:
        assert torch.all(data.x[:, 3] == 1.0)


def test_image_folder_trains_on_what_it_could_read(image_folder: Path) -> None:
    requirements = DataRequirements((1, 8, 8), "classification", 2)
    prepared = prepare_data({"source": "folder", "path": str(image_folder), "val_fraction": 0.25,
                             "test_fraction": 0.0}, requirements)
    assert len(prepared.train) + len(prepared.val) == 8
    assert len(prepared.summary()["skipped"]) == 3


def test_image_folder_with_one_class_is_refused(tmp_path: Path) -> None:
    _write_image(tmp_path / "only" / "a.png", "L", (8, 8), 10)
    with pytest.raises(DataError, match=r"at least two classes; found only 'only'"):
        load_source({"source": "folder", "path": str(tmp_path)}, (1, 8, 8))


def test_image_folder_with_an_empty_class_is_refused(tmp_path: Path) -> None:
    _write_image(tmp_path / "cats" / "a.png", "L", (8, 8), 10)
    (tmp_path / "dogs").mkdir()
    (tmp_path / "dogs" / "broken.png").write_text("nope")
    with pytest.raises(DataError, match=r"class folder 'dogs' .* no readable images"):
        load_source({"source": "folder", "path": str(tmp_path)}, (1, 8, 8))


def test_missing_image_folder_is_named(tmp_path: Path) -> None:
    with pytest.raises(DataError, match="does not exist"):
        load_source({"source": "folder", "path": str(tmp_path / "nowhere")}, (1, 8, 8))


def _write_csv(path: Path, rows: list[str]) -> Path:
    path.write_text("\n".join(rows) + "\n")
    return path


def test_csv_reads_features_and_labels_by_name(tmp_path: Path) -> None:
    path = _write_csv(tmp_path / "t.csv", ["a,species,b", "1,setosa,2.5", "3,virginica,4", "5,setosa,6e-1"])
    data = load_source({"source": "csv", "path": str(path), "label_column": "species"}, (2,))
    assert data.class_names == ["setosa", "virginica"]
    assert data.y.tolist() == [0, 1, 0]
    assert torch.allclose(data.x, torch.tensor([[1, 2.5], [3, 4], [5, 0.6]]))


def test_csv_orders_numeric_labels_numerically(tmp_path: Path) -> None:
    rows = ["x,label"] + [f"{i},{label}" for i, label in enumerate([10, 9, 2, 10])]
    data = load_source({"source": "csv", "path": str(_write_csv(tmp_path / "t.csv", rows))}, (1,))
    assert data.class_names == ["2", "9", "10"]


def test_csv_refuses_a_non_numeric_feature_column_by_name(tmp_path: Path) -> None:
    path = _write_csv(tmp_path / "t.csv", ["height,colour,label", "1.0,red,a", "2.0,blue,b"])
    with pytest.raises(DataError, match=r"column 'colour' .* is not numeric \(row 2: 'red'\)"):
        load_source({"source": "csv", "path": str(path)}, (2,))


def test_csv_refuses_a_missing_label_column(tmp_path: Path) -> None:
    path = _write_csv(tmp_path / "t.csv", ["a,b", "1,2"])
    with pytest.raises(DataError, match=r"no column 'label'; its columns are a, b"):
        load_source({"source": "csv", "path": str(path), "label_column": "label"}, (1,))


def test_csv_label_column_defaults_to_the_last(tmp_path: Path) -> None:
    path = _write_csv(tmp_path / "t.csv", ["a,b,kind", "1,2,x", "3,4,y"])
    data = load_source({"source": "csv", "path": str(path), "label_column": ""}, (2,))
    assert data.class_names == ["x", "y"] and data.x.shape == (2, 2)


def test_csv_feature_count_must_match_the_input(tmp_path: Path) -> None:
    path = _write_csv(tmp_path / "t.csv", ["a,b,label", "1,2,x", "3,4,y"])
    with pytest.raises(DataError, match=r"2 feature columns; the Input node has shape \[3\]"):
        load_source({"source": "csv", "path": str(path)}, (3,))


def test_absent_torchvision_dataset_names_the_folder_offline(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    import torchvision.datasets.utils as tv_utils

    def offline(*args: object, **kwargs: object) -> None:
        raise OSError("network is unreachable")

    # Belt and braces: even if download were attempted, nothing reaches the network.
    monkeypatch.setattr(tv_utils, "download_url", offline)
    monkeypatch.setattr(tv_utils, "download_and_extract_archive", offline)
    root = tmp_path / "datasets"
    with pytest.raises(DataError) as caught:
        load_source({"source": "torchvision", "dataset": "mnist", "path": str(root)}, (1, 28, 28),
                    allow_download=False)
    message = str(caught.value)
    assert str(root / "MNIST" / "raw") in message and "train-images-idx3-ubyte" in message
    assert "\n" not in message


def test_torchvision_dataset_keeps_its_official_test_split(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    from torchvision import datasets

    class FakeMNIST:
        classes = [f"{i} - digit" for i in range(10)]

        def __init__(self, root: str, train: bool, download: bool) -> None:
            count = 30 if train else 10
            self.data = torch.randint(0, 256, (count, 28, 28), dtype=torch.uint8)
            self.targets = torch.arange(count) % 10

    monkeypatch.setattr(datasets, "MNIST", FakeMNIST)
    prepared = prepare_data({"source": "torchvision", "dataset": "mnist", "path": str(tmp_path),
                             "val_fraction": 0.2}, DataRequirements((3, 32, 32), "classification", 10))
    assert (len(prepared.train), len(prepared.val), len(prepared.test)) == (20, 10, 10)
    assert prepared.train.x.shape[1:] == (3, 32, 32)


def test_class_count_must_match_the_output_node() -> None:
    with pytest.raises(DataError, match=r"10 classes; the Output node is set to 3"):
        prepare_data({"source": "digits"}, DataRequirements((1, 8, 8), "classification", 3))


def test_convert_channels_rgba_composites_on_black() -> None:
    rgba = torch.tensor([1.0, 1.0, 1.0, 0.5]).view(1, 4, 1, 1)
    assert torch.allclose(convert_channels(rgba, 3), torch.full((1, 3, 1, 1), 0.5))
    assert torch.allclose(convert_channels(rgba, 1), torch.full((1, 1, 1, 1), 0.5))

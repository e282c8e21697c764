"""Loading a run's model and classifying images: PNG round trips, folders, corrupt files, refusals."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np
import pytest
import torch
from PIL import Image

from core_helpers import chain_graph
from dlstudio.core.compiler import compile_graph
from dlstudio.core.data import DataRequirements, prepare_data
from dlstudio.core.data.folder import load_image_folder
from dlstudio.core.graph import Graph
from dlstudio.core.inspect import InspectError, Preprocessor, find_images, load_trained, save_png
from dlstudio.core.project import Project, save_project
from dlstudio.core.training import TrainConfig, Trainer, create_run_dir, record_run, write_run_files


pytestmark = pytest.mark.usefixtures("one_torch_thread")


def digits_cnn() -> Graph:
    return chain_graph([("Input", {"shape": [1, 12, 12]}), ("Conv2d", {"out_channels": 4, "kernel_size": 3}),
                  ("ReLU", {}), ("Flatten", {}), ("Linear", {"out_features": 10}),
                  ("Output", {"task": "classification", "classes": 10})])


def train_run(project_path: Path, graph: Graph, data_settings: dict[str, Any], epochs: int = 2) -> Path:
    """A real run folder (settings, classes, best/last checkpoints), recorded in the project file."""
    torch.manual_seed(0)
    model = compile_graph(graph)
    data = prepare_data(data_settings, DataRequirements.from_model(model), base_dir=project_path.parent)
    project = Project(graph=graph, data=data_settings)
    project.path = project_path
    run_dir = create_run_dir(project_path)
    write_run_files(run_dir, {"graph": graph.to_dict(), "data": data_settings, "training": {},
                              "data_summary": data.summary()}, data.class_names)
    record_run(project, run_dir)
    save_project(project, project_path)
    config = TrainConfig.from_settings({"epochs": epochs, "batch_size": 64, "learning_rate": 0.01, "device": "cpu",
                                        "channels_last": "off"})
    Trainer(model, data, config, run_dir=run_dir).fit()
    return run_dir


@pytest.fixture(scope="module")
def digits_run(tmp_path_factory: pytest.TempPathFactory) -> Path:
    root = tmp_path_factory.mktemp("digits")
    return train_run(root / "digits.dlstudio", digits_cnn(), {"source": "digits"})


def test_png_on_disk_classifies_like_the_preprocessed_tensor(digits_run: Path, tmp_path: Path) -> None:
    trained = load_trained(digits_run)
    data = trained.prepare_data()
    raw = trained.preprocessor.denormalize(data.test.x[:8])
    paths = []
    for index, image in enumerate(raw):
        paths.append(tmp_path / f"{index}.png")
        save_png(image, paths[-1])
    from_files = [result.prediction for result in trained.classify_paths(paths)]
    # The model on the PNG's preprocessed tensor: the same probabilities, exactly.
    direct = trained.classify(torch.stack([trained.preprocess(path) for path in paths]))
    for file_prediction, tensor_prediction in zip(from_files, direct, strict=True):
        np.testing.assert_array_equal(file_prediction.probabilities, tensor_prediction.probabilities)
        assert [s.label for s in file_prediction.top] == [s.label for s in tensor_prediction.top]
    # Without the digits' recipe, a digit's round trip through an 8-bit PNG loses at most half a grey level...
    round_trip = torch.stack([trained.preprocessor.prepare(path, replay=False).raw for path in paths])
    assert float((round_trip - raw.clamp(0, 1)).abs().max()) <= 0.5 / 255 + 1e-6
    # ... and with it (cropped, reduced to 8×8 again, as a person's picture is) the file is still read as the
    # split's own tensor is: the recipe changes nothing for the pictures the model was trained on.
    on_split = trained.classify(data.test.x[:8])
    agree = sum(f.label == t.label for f, t in zip(from_files, on_split, strict=True))
    assert agree >= 7, [(f.label, t.label) for f, t in zip(from_files, on_split)]
    assert all("reduced to 8×8 like the training digits" in f.steps for f in from_files)


def test_loaded_model_carries_the_runs_classes_shape_and_normalization(digits_run: Path) -> None:
    trained = load_trained(digits_run, which="last", device="cpu")
    assert trained.class_names == [str(i) for i in range(10)]
    assert trained.input_shape == (1, 12, 12)
    assert trained.normalization is not None and trained.normalization == trained.prepare_data().normalization
    assert not trained.model.training and trained.checkpoint == digits_run / "last.pt"
    [prediction] = trained.classify(torch.zeros(1, 12, 12), top_k=3)
    assert len(prediction.top) == 3 and prediction.probabilities.shape == (10,)
    assert prediction.probabilities.sum() == pytest.approx(1.0, abs=1e-5)
    assert [s.probability for s in prediction.top] == sorted((s.probability for s in prediction.top), reverse=True)


def test_a_project_file_means_its_latest_run(digits_run: Path) -> None:
    project_path = digits_run.parent.parent / "digits.dlstudio"
    assert load_trained(project_path).run_dir == digits_run


def test_preprocess_accepts_pil_images_and_arrays_like_files(digits_run: Path, tmp_path: Path) -> None:
    trained = load_trained(digits_run)
    pixels = np.random.default_rng(0).integers(0, 256, (30, 20), dtype=np.uint8)
    Image.fromarray(pixels).save(tmp_path / "a.png")
    from_file = trained.preprocess(tmp_path / "a.png")
    assert tuple(from_file.shape) == (1, 12, 12)
    torch.testing.assert_close(trained.preprocess(Image.fromarray(pixels)), from_file)
    torch.testing.assert_close(trained.preprocess(pixels), from_file)
    torch.testing.assert_close(trained.preprocess(pixels[:, :, None]), from_file)  # (H, W, 1)
    with pytest.raises(InspectError, match="image array"):
        trained.preprocess(np.zeros((5, 6, 7, 8)))


def test_folder_model_preprocesses_like_the_folder_loader(tmp_path: Path) -> None:
    rng = np.random.default_rng(1)
    for name in ("cats", "dogs"):
        (tmp_path / "data" / name).mkdir(parents=True)
        for index in range(3):
            colours = rng.integers(0, 256, (17, 23, 4), dtype=np.uint8)
            Image.fromarray(colours, "RGBA").save(tmp_path / "data" / name / f"{index}.png")
    files = sorted((tmp_path / "data").rglob("*.png"))
    loaded = load_image_folder(tmp_path / "data", (3, 9, 9))
    preprocessor = Preprocessor((3, 9, 9), "folder", None)
    torch.testing.assert_close(torch.stack([preprocessor.raw(path) for path in files]), loaded.x)


def test_corrupt_and_non_image_files_are_reported_not_fatal(digits_run: Path, tmp_path: Path) -> None:
    trained = load_trained(digits_run)
    folder = tmp_path / "mixed"
    (folder / "sub").mkdir(parents=True)
    Image.fromarray(np.zeros((8, 8), np.uint8)).save(folder / "good.png")
    Image.fromarray(np.full((8, 8), 200, np.uint8)).save(folder / "sub" / "good2.png")
    (folder / "notes.txt").write_text("not an image")
    (folder / "fake.png").write_bytes(b"this is not a png")
    valid = (folder / "good.png").read_bytes()
    (folder / "truncated.png").write_bytes(valid[: len(valid) // 2])
    (folder / ".hidden.png").write_bytes(b"ignored")
    results = {Path(r.path).name: r for r in trained.classify_paths([folder, tmp_path / "missing.png"],
                                                                      batch_size=1)}
    assert set(results) == {"good.png", "good2.png", "notes.txt", "fake.png", "truncated.png", "missing.png"}
    assert results["good.png"].ok and results["good2.png"].ok
    assert "not an image file type (.txt)" in results["notes.txt"].error
    assert "not an image" in results["fake.png"].error
    assert results["truncated.png"].error and not results["truncated.png"].ok
    assert results["missing.png"].error == "no such file or folder"
    for result in results.values():
        assert result.error is None or "\n" not in result.error


def test_find_images_walks_folders_in_sorted_order(tmp_path: Path) -> None:
    for name in ("b.png", "a.jpg", "c/d.PNG"):
        (tmp_path / name).parent.mkdir(exist_ok=True)
        (tmp_path / name).write_bytes(b"")
    assert [p.relative_to(tmp_path).as_posix() for p, _ in find_images([tmp_path])] == ["a.jpg", "b.png", "c/d.PNG"]


def test_refusals_are_one_line_errors(tmp_path: Path, digits_run: Path) -> None:
    with pytest.raises(InspectError, match="does not exist"):
        load_trained(tmp_path / "nothing")
    with pytest.raises(InspectError, match="not a run folder"):
        load_trained(tmp_path)
    empty = tmp_path / "empty.dlstudio"
    save_project(Project(graph=digits_cnn()), empty)
    with pytest.raises(InspectError, match="has no runs yet"):
        load_trained(empty)
    with pytest.raises(InspectError, match="unknown checkpoint"):
        load_trained(digits_run, which="middle")

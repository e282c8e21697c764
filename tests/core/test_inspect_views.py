"""Feature maps, filters, histograms and the mistakes of a split, on small seeded models."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import torch

from core_helpers import chain_graph
from dlstudio.core.compiler import compile_graph
from dlstudio.core.inspect import (
    InspectError,
    all_feature_maps,
    conv_weight,
    feature_maps,
    filter_mosaic,
    gradient_histograms,
    histogram,
    mistakes,
    node_ids,
    predict_split,
    weight_histograms,
)
from dlstudio.core.training.checkpoint import save_checkpoint


pytestmark = pytest.mark.usefixtures("one_torch_thread")


def cnn(in_channels: int = 3) -> torch.nn.Module:
    graph = chain_graph([("Input", {"shape": [in_channels, 10, 10]}),
                         ("Conv2d", {"out_channels": 5, "kernel_size": 3}), ("BatchNorm2d", {}), ("ReLU", {}),
                         ("MaxPool2d", {"kernel_size": 2}), ("Flatten", {}), ("Dropout", {"p": 0.5}),
                         ("Linear", {"out_features": 4}), ("Output", {"task": "classification", "classes": 4})])
    torch.manual_seed(0)
    return compile_graph(graph)


def test_feature_maps_of_any_node_match_the_layers_output() -> None:
    model = cnn().train()
    x = torch.rand(3, 10, 10)
    maps = all_feature_maps(model, x)
    assert list(maps) == node_ids(model)
    assert maps["conv1"].shape == (5, 8, 8) and maps["maxpool1"].shape == (5, 4, 4)
    assert maps["flatten1"].shape == (80,) and maps["output1"].shape == (4,)
    model.eval()
    with torch.no_grad():
        expected_conv = model.conv1(x[None])[0].numpy()
        expected_output = model(x[None])[0].numpy()
    for node_id in ("conv1", "relu1", "linear1", "input1"):
        np.testing.assert_allclose(feature_maps(model, x, node_id), maps[node_id], rtol=1e-5, atol=1e-6)
    np.testing.assert_allclose(maps["conv1"], expected_conv, rtol=1e-5, atol=1e-6)
    np.testing.assert_allclose(maps["output1"], expected_output, rtol=1e-5, atol=1e-6)
    model.train()
    feature_maps(model, x, "relu1")
    assert model.training  # feature_maps ran in eval mode and put back the mode it found
    with pytest.raises(InspectError, match="has no such layer"):
        feature_maps(model, x, "conv9")


def test_filters_render_rgb_for_three_input_channels_and_load_from_a_checkpoint(tmp_path: Path) -> None:
    model = cnn(in_channels=3)
    weight = conv_weight(model, "conv1")
    assert weight.shape == (5, 3, 3, 3)
    rgb = filter_mosaic(weight)
    assert rgb.image.shape == (2 * 3 + 1, 3 * 3 + 2, 3) and rgb.filters == 5 and rgb.colour
    assert 0.0 <= rgb.image.min() and rgb.image.max() <= 1.0
    grey = filter_mosaic(weight, rgb=False)
    assert (grey.blocks.rows, grey.blocks.columns, grey.block.columns) == (5, 1, 3)  # a filter per row
    assert grey.image.shape == (5 * 3 + 4, 3 * 3 + 2) and grey.image[3, 0] == 1.0  # white gaps
    assert grey.tile_at(4, 8) == (1, 2)
    with pytest.raises(InspectError, match="RGB filters need 3 input channels; this layer has 1"):
        filter_mosaic(np.ones((2, 1, 3, 3)), rgb=True)
    save_checkpoint({"model": model.state_dict()}, tmp_path / "best.pt")
    np.testing.assert_array_equal(conv_weight(tmp_path / "best.pt", "conv1"), weight)
    with pytest.raises(InspectError, match="not a 2-D convolution"):
        conv_weight(model, "linear1")
    with pytest.raises(InspectError, match="has no weights"):
        conv_weight(model, "relu1")
    assert filter_mosaic(conv_weight(cnn(in_channels=1), "conv1")).image.ndim == 2


def test_zero_weights_are_mid_grey() -> None:
    weight = np.zeros((2, 1, 3, 3), dtype=np.float32)
    weight[0, 0, 0, 0] = -2.0
    mosaic = filter_mosaic(weight)
    assert mosaic.image[0, 0] == 0.0 and mosaic.image[1, 1] == 0.5 and mosaic.image[0, 4] == 0.5


def test_weight_and_gradient_histograms_per_layer() -> None:
    model = cnn()
    weights = weight_histograms(model, bins=10)
    assert set(weights) == {"conv1", "bn1", "linear1"}
    assert weights["conv1"].counts.sum() == 5 * 3 * 3 * 3 and len(weights["conv1"].edges) == 11
    assert weight_histograms(model.state_dict(), bins=10)["linear1"].counts.sum() == 4 * 80
    x, y = torch.rand(6, 3, 10, 10), torch.arange(6) % 4
    gradients = gradient_histograms(model, x, y, bins=10)
    assert gradients["linear1"].counts.sum() == 4 * 80 and gradients["linear1"].std > 0
    assert all(p.grad is None for p in model.parameters())  # nothing accumulated into .grad
    flat = histogram(torch.full((5,), 2.0), bins=4)
    assert flat.counts.sum() == 5 and flat.edges[0] < 2.0 < flat.edges[-1]


def test_mistakes_of_a_confusion_cell_sorted_by_confidence() -> None:
    model = cnn().eval()
    x, y = torch.rand(40, 3, 10, 10), torch.arange(40) % 4
    predictions = predict_split(model, x, y)
    confusion = predictions.confusion(4)
    assert confusion.sum() == 40
    for true in range(4):
        for predicted in range(4):
            cell = predictions.cell(true, predicted)
            assert len(cell) == confusion[true, predicted]
            assert (y[cell].numpy() == true).all() and (predictions.predicted[cell] == predicted).all()
            assert (np.diff(predictions.confidence[cell]) <= 0).all()
    true, predicted = np.unravel_index(np.argmax(confusion), confusion.shape)
    np.testing.assert_array_equal(mistakes(model, x, y, int(true), int(predicted)),
                                  predictions.cell(int(true), int(predicted)))

"""Grad-CAM and saliency on a model trained (here) to tell a bright square on the left from one on the right."""

from __future__ import annotations


import numpy as np
import pytest
import torch
from torch.nn import functional

from core_helpers import chain_graph
from dlstudio.core.compiler import compile_graph
from dlstudio.core.graph import Graph
from dlstudio.core.inspect import InspectError, colorize, default_cam_node, grad_cam, overlay, saliency

SIZE = 16


pytestmark = pytest.mark.usefixtures("one_torch_thread")


def squares(n: int, seed: int, classes: int = 3) -> tuple[torch.Tensor, torch.Tensor]:
    """Dim noise with a bright 4x4 square in the left half (label 0), the right half (1), or none (2).

    The third class makes the model look for the square itself: with only two
    classes it may learn "left" as "nothing on the right", and Grad-CAM then
    (rightly) shows the empty half.
    """
    generator = torch.Generator().manual_seed(seed)
    x = torch.rand((n, 1, SIZE, SIZE), generator=generator) * 0.2
    y = torch.arange(n) % classes
    rows = torch.randint(0, SIZE - 4, (n,), generator=generator)
    columns = torch.randint(0, SIZE // 2 - 4, (n,), generator=generator) + y * (SIZE // 2)
    for i in range(n):
        if y[i] < 2:
            x[i, 0, rows[i]:rows[i] + 4, columns[i]:columns[i] + 4] = 1.0
    return x, y


def square_graph() -> Graph:
    return chain_graph([("Input", {"shape": [1, SIZE, SIZE]}),
                        ("Conv2d", {"out_channels": 4, "kernel_size": 3, "padding": 1}), ("ReLU", {}),
                        ("MaxPool2d", {"kernel_size": 2}), ("Flatten", {}), ("Linear", {"out_features": 3}),
                        ("Output", {"task": "classification", "classes": 3})])


@pytest.fixture(scope="module")
def trained() -> torch.nn.Module:
    torch.manual_seed(0)
    model = compile_graph(square_graph())
    x, y = squares(240, seed=1)
    optimizer = torch.optim.Adam(model.parameters(), lr=0.02)
    for step in range(60):
        batch = slice(step % 4 * 60, step % 4 * 60 + 60)
        optimizer.zero_grad()
        functional.cross_entropy(model(x[batch]), y[batch]).backward()
        optimizer.step()
    return model.eval()


def _peak_half(values: np.ndarray) -> int:
    column = int(np.unravel_index(np.argmax(values), values.shape)[1])
    return 0 if column < SIZE // 2 else 1


def test_the_model_learned_the_task(trained: torch.nn.Module) -> None:
    x, y = squares(64, seed=2)
    with torch.no_grad():
        accuracy = float((trained(x).argmax(1) == y).float().mean())
    assert accuracy >= 0.95


def test_grad_cam_peaks_in_the_half_with_the_square(trained: torch.nn.Module) -> None:
    x, y = squares(40, seed=3, classes=2)
    assert default_cam_node(trained, x[0]) == "maxpool1"
    hits = 0
    for sample, label in zip(x, y.tolist()):
        heat = grad_cam(trained, sample)
        assert heat.values.shape == (SIZE, SIZE) and heat.node_id == "maxpool1"
        assert 0.0 <= heat.values.min() and heat.values.max() == pytest.approx(1.0)
        hits += _peak_half(heat.values) == label
    assert hits >= 0.8 * len(x), f"Grad-CAM peak in the right half for only {hits} of {len(x)} samples"


def test_saliency_peaks_in_the_half_with_the_square(trained: torch.nn.Module) -> None:
    x, y = squares(40, seed=4, classes=2)
    hits = sum(_peak_half(saliency(trained, sample).values) == label for sample, label in zip(x, y.tolist()))
    assert hits >= 0.8 * len(x)


def test_a_chosen_class_and_refusals(trained: torch.nn.Module) -> None:
    x, _ = squares(1, seed=5)
    predicted = grad_cam(trained, x[0])
    other = grad_cam(trained, x[0], target=(predicted.target + 1) % 3)
    assert other.target == (predicted.target + 1) % 3 and other.probability < predicted.probability
    with pytest.raises(InspectError, match="class 7 does not exist"):
        saliency(trained, x[0], target=7)
    with pytest.raises(InspectError, match="image output"):
        grad_cam(trained, x[0], node_id="linear1")
    mlp = Graph()
    nodes = [mlp.add_node("Input", {"shape": [4]}), mlp.add_node("Linear", {"out_features": 2}),
             mlp.add_node("Output", {"task": "classification", "classes": 2})]
    mlp.connect(nodes[0].id, "out", nodes[1].id, "in")
    mlp.connect(nodes[1].id, "out", nodes[2].id, "in")
    with pytest.raises(InspectError, match="needs image inputs"):
        grad_cam(compile_graph(mlp), torch.zeros(4))


def test_overlay_blends_heat_over_the_image() -> None:
    image = np.full((1, 4, 4), 0.5, dtype=np.float32)
    heat = np.zeros((4, 4), dtype=np.float32)
    heat[0, 0] = 1.0
    blended = overlay(image, heat, alpha=0.6)
    assert blended.shape == (4, 4, 3) and blended.dtype == np.uint8
    assert (blended[3, 3] == 128).all()  # no heat: the image itself
    assert tuple(blended[0, 0]) != (128, 128, 128)
    assert colorize(np.array([0.0, 1.0])).shape == (2, 3)

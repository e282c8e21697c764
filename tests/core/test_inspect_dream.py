"""Dreams: activation maximization beats noise; DeepDream changes an image and keeps it in range; both stop."""

from __future__ import annotations


import numpy as np
import pytest
import torch

from core_helpers import chain_graph
from dlstudio.core.compiler import compile_graph
from dlstudio.core.data.normalization import Normalization
from dlstudio.core.inspect import (
    InspectError,
    activation_maximization,
    channel_activation,
    deep_dream,
    most_responsive_channel,
)


pytestmark = pytest.mark.usefixtures("one_torch_thread")


def lenet_like() -> torch.nn.Module:
    graph = chain_graph([("Input", {"shape": [1, 20, 20]}),
                         ("Conv2d", {"out_channels": 6, "kernel_size": 5, "padding": 2}), ("ReLU", {}),
                         ("MaxPool2d", {"kernel_size": 2}), ("Conv2d", {"out_channels": 8, "kernel_size": 3}),
                         ("ReLU", {}), ("Flatten", {}), ("Linear", {"out_features": 3}),
                         ("Output", {"task": "classification", "classes": 3})])
    torch.manual_seed(0)
    return compile_graph(graph).eval()


NORMALIZATION = Normalization((0.3,), (0.4,))


def test_activation_maximization_raises_the_channel_well_above_noise() -> None:
    model = lenet_like()
    noise = torch.rand((64, 1, 20, 20), generator=torch.Generator().manual_seed(1))
    for channel in range(8):
        # The strongest response among 64 random images is the bar to clear, by half again.
        on_noise = max(channel_activation(model, image, "relu2", channel, NORMALIZATION) for image in noise)
        steps = list(activation_maximization(model, "relu2", channel, NORMALIZATION, steps=60, yield_every=20))
        assert [s.step for s in steps] == [0, 20, 40, 60]
        final = torch.from_numpy(steps[-1].image)
        dreamed = channel_activation(model, final, "relu2", channel, NORMALIZATION)
        assert dreamed > 1.5 * on_noise, (channel, on_noise, dreamed)
        assert 0.0 <= float(final.min()) and float(final.max()) <= 1.0
        assert steps[-1].objective > steps[0].objective


def test_a_dream_stops_when_the_caller_stops_pulling() -> None:
    model = lenet_like()
    calls = 0

    def count(module: torch.nn.Module, inputs: tuple[torch.Tensor, ...], output: torch.Tensor) -> None:
        nonlocal calls
        calls += 1

    model.conv1.register_forward_hook(count)
    dream = activation_maximization(model, "conv1", 0, steps=1000, yield_every=5)
    first, second = next(dream), next(dream)
    dream.close()
    assert (first.step, second.step) == (0, 5) and calls == 6  # one look at the start, five steps


def test_deep_dream_changes_the_image_and_keeps_it_in_range() -> None:
    model = lenet_like()
    image = torch.rand((1, 20, 20), generator=torch.Generator().manual_seed(2)) * 0.5 + 0.25
    steps = list(deep_dream(model, image, "relu2", normalization=NORMALIZATION, octaves=3, steps_per_octave=10,
                            yield_every=5))
    assert steps[0].step == 0 and steps[-1].step == 30  # three octaves (20, 14 and 10 px) of ten steps
    final = steps[-1].image
    assert final.shape == (1, 20, 20)
    assert np.abs(final - image.numpy()).mean() > 0.02
    for step in steps:
        assert 0.0 <= step.image.min() and step.image.max() <= 1.0
    before = channel_activation(model, image, "relu2", None, NORMALIZATION)
    after = channel_activation(model, torch.from_numpy(final), "relu2", None, NORMALIZATION)
    assert after > before


def test_deep_dream_on_a_dense_layer_uses_only_the_full_size() -> None:
    model = lenet_like()
    steps = list(deep_dream(model, torch.full((1, 20, 20), 0.5), "linear1", octaves=3, steps_per_octave=4,
                            yield_every=2))
    assert steps[-1].step == 4  # smaller octaves cannot reach a Linear layer, so only one octave runs


def test_dream_refusals() -> None:
    model = lenet_like()
    with pytest.raises(InspectError, match="channel 9 does not exist"):
        next(activation_maximization(model, "relu2", 9))
    with pytest.raises(InspectError, match="input shape"):
        next(deep_dream(model, torch.zeros(1, 8, 8), "relu1"))


def test_the_default_channel_to_dream_of_is_the_most_responsive_not_a_dead_channel_0() -> None:
    model = lenet_like()
    with torch.no_grad():  # channel 0 of conv2 never fires after its ReLU, as in a lenet5 trained on digits
        model.conv2.weight[0] = 0.0
        model.conv2.bias[0] = -1.0
    assert channel_activation(model, torch.rand(1, 20, 20), "relu2", 0, NORMALIZATION) == 0.0
    chosen = most_responsive_channel(model, "relu2", NORMALIZATION)
    assert chosen != 0
    # On given images it is the channel with the largest mean activation over them.
    images = torch.rand((6, 1, 20, 20), generator=torch.Generator().manual_seed(3))
    means = [channel_activation(model, images, "relu2", channel, NORMALIZATION) for channel in range(8)]
    assert most_responsive_channel(model, "relu2", NORMALIZATION, images) == int(np.argmax(means))
    # A dense layer: the unit with the largest mean; its first unit made the weakest here.
    with torch.no_grad():
        model.linear1.bias[0] = -100.0
    assert most_responsive_channel(model, "linear1", NORMALIZATION) != 0
    with pytest.raises(InspectError, match="has no such layer"):
        most_responsive_channel(model, "conv9")

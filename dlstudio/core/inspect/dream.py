"""Dreams: activation maximization from noise and DeepDream on an image, as generators of snapshots.

Both optimize the raw image (values in [0, 1], what a user sees and saves);
the model gets it normalized as in training. Each yields a
:class:`DreamStep` every few steps, so a GUI worker shows the image evolving
and stops by not asking for the next one.
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass

import numpy as np
import torch
from torch.nn import functional

from dlstudio.core.data.normalization import Normalization
from dlstudio.core.inspect.activations import evaluating, layer_name, node_output
from dlstudio.core.inspect.errors import InspectError


@dataclass(frozen=True)
class DreamStep:
    """A snapshot: ``image`` (C, H, W) float32 raw values in [0, 1] after ``step`` steps, and the objective then."""

    step: int
    image: np.ndarray
    objective: float


def _device(model: torch.nn.Module) -> torch.device:
    return next(iter(model.parameters()), torch.empty(0)).device


def _normalize(raw: torch.Tensor, normalization: Normalization | None) -> torch.Tensor:
    return normalization.apply(raw) if normalization is not None else raw


def channel_objective(output: torch.Tensor, channel: int | None) -> torch.Tensor:
    """Mean activation of ``channel`` (of a (N, C, H, W) map or a (N, F) vector); all channels when None."""
    if channel is None:
        return output.float().mean()
    if not 0 <= channel < output.shape[1]:
        raise InspectError(f"channel {channel} does not exist; the layer has {output.shape[1]} channels "
                           f"(0 to {output.shape[1] - 1})")
    return output[:, channel].float().mean()


def channel_activation(model: torch.nn.Module, raw: torch.Tensor, node_id: str, channel: int | None,
                       normalization: Normalization | None = None) -> float:
    """Mean activation of ``channel`` at ``node_id`` for raw images (C, H, W) or (N, C, H, W) in [0, 1]."""
    batch = raw.unsqueeze(0) if raw.ndim == 3 else raw
    with evaluating(model), torch.no_grad():
        output = node_output(model, _normalize(batch.to(_device(model)), normalization), node_id)
    return float(channel_objective(output, channel))


def _blur(x: torch.Tensor, sigma: float) -> torch.Tensor:
    """A small separable Gaussian blur per channel (reflect padding, size kept)."""
    radius = max(1, int(round(2 * sigma)))
    offsets = torch.arange(-radius, radius + 1, dtype=x.dtype, device=x.device)
    kernel = torch.exp(-0.5 * (offsets / sigma) ** 2)
    kernel = kernel / kernel.sum()
    channels = x.shape[1]
    x = functional.pad(x, (radius, radius, radius, radius), mode="reflect")
    x = functional.conv2d(x, kernel.view(1, 1, 1, -1).expand(channels, 1, 1, -1), groups=channels)
    return functional.conv2d(x, kernel.view(1, 1, -1, 1).expand(channels, 1, -1, 1), groups=channels)


def _ascend(model: torch.nn.Module, raw: torch.Tensor, node_id: str, channel: int | None,
            normalization: Normalization | None, step_size: float, jitter: int,
            generator: torch.Generator, squared: bool) -> float:
    """One normalized gradient-ascent step on ``raw`` (in place), with a random shift (jitter) around it."""
    shift_y, shift_x = (torch.randint(-jitter, jitter + 1, (2,), generator=generator).tolist()
                        if jitter else (0, 0))
    shifted = torch.roll(raw, shifts=(shift_y, shift_x), dims=(2, 3)).detach().requires_grad_(True)
    output = node_output(model, _normalize(shifted, normalization), node_id)
    objective = output.float().pow(2).mean() if squared and channel is None else channel_objective(output, channel)
    (gradient,) = torch.autograd.grad(objective, shifted)
    gradient = torch.roll(gradient, shifts=(-shift_y, -shift_x), dims=(2, 3))
    # Normalizing the step by the gradient's mean size makes step_size mean the same for every layer.
    raw.add_(gradient * (step_size / (gradient.abs().mean() + 1e-12))).clamp_(0.0, 1.0)
    return float(objective.detach())


def _check_image_model(model: torch.nn.Module) -> tuple[int, int, int]:
    shape = tuple(model.input_shapes[model.input_ids[0]])
    if len(shape) != 3:
        raise InspectError(f"dreams need a model with image input (C, H, W); this one takes {list(shape)}")
    return shape  # type: ignore[return-value]


def _starting_noise(count: int, shape: tuple[int, int, int], generator: torch.Generator) -> torch.Tensor:
    """Raw images a dream starts from: noise wide enough that some units of a channel fire (a dead ReLU gives
    no gradient)."""
    return 0.25 + 0.5 * torch.rand((count, *shape), generator=generator)


def most_responsive_channel(model: torch.nn.Module, node_id: str, normalization: Normalization | None = None,
                            images: torch.Tensor | None = None, *, samples: int = 8, seed: int = 0) -> int:
    """The channel (or unit) of ``node_id`` with the largest mean activation: a good default to dream of.

    ``images`` are raw (N, C, H, W) in [0, 1]; by default ``samples`` noise
    images like those a dream starts from, so a channel that stays dead there
    (whose dream would stay noise) is never the pick. One forward pass, no
    gradients; ties go to the lowest channel.
    """
    if images is None:
        images = _starting_noise(samples, _check_image_model(model), torch.Generator().manual_seed(seed))
    with evaluating(model), torch.no_grad():
        output = node_output(model, _normalize(images.to(_device(model)), normalization), node_id)
    if output.ndim < 2 or output.shape[1] == 0:
        raise InspectError(f"{layer_name(model, node_id)} has no channels to choose from; its output is "
                           f"{list(output.shape)}")
    means = output.float().transpose(0, 1).reshape(output.shape[1], -1).mean(dim=1)
    return int(torch.argmax(means))


def activation_maximization(model: torch.nn.Module, node_id: str, channel: int | None,
                            normalization: Normalization | None = None, *, steps: int = 200,
                            step_size: float = 0.05, jitter: int = 1, blur_every: int = 4, blur_sigma: float = 0.5,
                            yield_every: int = 10, seed: int = 0) -> Iterator[DreamStep]:
    """Grow an image that makes ``channel`` of ``node_id`` fire, by gradient ascent from faint noise.

    Jitter (random shifts each step) and a light blur every ``blur_every``
    steps keep the result an image rather than high-frequency noise; values
    stay clamped to [0, 1]. Yields the first image (step 0), then every
    ``yield_every`` steps, and the last.
    """
    shape = _check_image_model(model)
    device = _device(model)
    generator = torch.Generator().manual_seed(seed)
    raw = _starting_noise(1, shape, generator).to(device)
    with evaluating(model):
        objective = channel_activation(model, raw, node_id, channel, normalization)
        yield DreamStep(0, raw[0].cpu().numpy().copy(), objective)
        for step in range(1, steps + 1):
            objective = _ascend(model, raw, node_id, channel, normalization, step_size, jitter, generator, False)
            if blur_every and step % blur_every == 0:
                raw.copy_(_blur(raw, blur_sigma).clamp_(0.0, 1.0))
            if step % yield_every == 0 or step == steps:
                yield DreamStep(step, raw[0].cpu().numpy().copy(), objective)


def _octave_sizes(model: torch.nn.Module, shape: tuple[int, int, int], node_id: str, octaves: int, scale: float,
                  min_size: int) -> list[tuple[int, int]]:
    """Image sizes from small to full; sizes the graph cannot run to ``node_id`` (a Linear on the way) are left out."""
    _, height, width = shape
    sizes = []
    for octave in range(octaves - 1, 0, -1):
        size = (round(height / scale ** octave), round(width / scale ** octave))
        if min(size) < min_size or size in sizes or size == (height, width):
            continue
        try:
            with torch.no_grad():
                node_output(model, torch.zeros((1, shape[0], *size), device=_device(model)), node_id)
        except RuntimeError:  # the path to the node needs the trained size
            continue
        sizes.append(size)
    return [*sizes, (height, width)]


def deep_dream(model: torch.nn.Module, image: torch.Tensor | np.ndarray, node_id: str, channel: int | None = None,
               normalization: Normalization | None = None, *, octaves: int = 3, octave_scale: float = 1.4,
               steps_per_octave: int = 20, step_size: float = 0.01, jitter: int = 1, min_size: int = 10,
               yield_every: int = 5) -> Iterator[DreamStep]:
    """Amplify what ``node_id`` (one ``channel``, or all: the mean squared activation) responds to in ``image``.

    ``image`` is raw (C, H, W) in [0, 1], at the model's input size. The
    dream runs from the smallest octave to full size, carrying the detail it
    added up each octave; snapshots are at full size and stay in [0, 1].
    """
    shape = _check_image_model(model)
    device = _device(model)
    original = torch.as_tensor(np.asarray(image, dtype=np.float32)).to(device)
    if tuple(original.shape) != shape:
        raise InspectError(f"DeepDream needs the image at the model's input shape {list(shape)}; got "
                           f"{list(original.shape)} (preprocess it first)")
    original = original.unsqueeze(0)
    generator = torch.Generator().manual_seed(0)
    full_size = shape[1:]

    def resized(x: torch.Tensor, size: tuple[int, int]) -> torch.Tensor:
        return x if tuple(x.shape[2:]) == size else functional.interpolate(
            x, size=size, mode="bilinear", align_corners=False)

    step = 0
    with evaluating(model):
        sizes = _octave_sizes(model, shape, node_id, octaves, octave_scale, min_size)
        detail = torch.zeros_like(resized(original, sizes[0]))
        yield DreamStep(0, original[0].cpu().numpy().copy(), 0.0)
        for size in sizes:
            base = resized(original, size)
            raw = (base + resized(detail, size)).clamp_(0.0, 1.0)
            for _ in range(steps_per_octave):
                objective = _ascend(model, raw, node_id, channel, normalization, step_size, jitter, generator, True)
                step += 1
                if step % yield_every == 0 or (size == full_size and _ == steps_per_octave - 1):
                    snapshot = resized(raw, full_size).clamp(0.0, 1.0)
                    yield DreamStep(step, snapshot[0].cpu().numpy().copy(), objective)
            detail = raw - base

"""Where the model looks: plain gradient saliency (any model) and Grad-CAM (conv models), plus overlays."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import torch
from torch.nn import functional

from dlstudio.core.inspect.activations import as_batch, evaluating, layer_name, spatial_nodes
from dlstudio.core.inspect.errors import InspectError


@dataclass(frozen=True)
class Heatmap:
    """``values`` (H, W) in [0, 1] at the input's resolution; ``target`` the class explained and its probability."""

    values: np.ndarray
    target: int
    probability: float
    node_id: str | None = None


def _target(logits: torch.Tensor, target: int | None) -> int:
    classes = logits.shape[1]
    if target is None:
        return int(logits[0].argmax())
    if not 0 <= int(target) < classes:
        raise InspectError(f"class {target} does not exist; the model has {classes} classes (0 to {classes - 1})")
    return int(target)


def _unit_range(values: torch.Tensor) -> np.ndarray:
    values = values.detach().float()
    peak = float(values.max()) if values.numel() else 0.0
    scaled = values / peak if peak > 0 else torch.zeros_like(values)
    return scaled.clamp_(0.0, 1.0).cpu().numpy()


def saliency(model: torch.nn.Module, x: torch.Tensor, target: int | None = None) -> Heatmap:
    """|d score / d input|, the maximum over channels, for class ``target`` (default: the predicted class).

    ``x`` is one preprocessed image (C, H, W) or a batch of one.
    """
    batch = as_batch(model, x)[:1].detach().clone().requires_grad_(True)
    if batch.ndim != 4:
        raise InspectError(f"saliency maps need image inputs (C, H, W); this model takes {list(batch.shape[1:])}")
    with evaluating(model):
        logits = model(batch)
        target = _target(logits, target)
        (gradient,) = torch.autograd.grad(logits[0, target], batch)
    probability = float(torch.softmax(logits.detach().float(), dim=1)[0, target])
    return Heatmap(_unit_range(gradient[0].abs().amax(dim=0)), target, probability)


def default_cam_node(model: torch.nn.Module, x: torch.Tensor) -> str:
    """The last node whose output is still an image with more than one pixel (the usual Grad-CAM layer)."""
    nodes = spatial_nodes(model, as_batch(model, x)[:1])
    if not nodes:
        raise InspectError("Grad-CAM needs a convolutional model: no layer outputs an image (N, C, H, W)")
    return nodes[-1]


def grad_cam(model: torch.nn.Module, x: torch.Tensor, target: int | None = None,
             node_id: str | None = None) -> Heatmap:
    """Grad-CAM of class ``target`` (default: predicted) at ``node_id`` (default: :func:`default_cam_node`).

    Channel weights are the spatial mean of the gradient; the weighted sum of
    the channels, kept where positive, is upsampled bilinearly to the input size.
    """
    batch = as_batch(model, x)[:1]
    if batch.ndim != 4:
        raise InspectError(f"Grad-CAM needs image inputs (C, H, W); this model takes {list(batch.shape[1:])}")
    node_id = node_id or default_cam_node(model, batch)
    captured: list[torch.Tensor] = []
    module = model.get_submodule(node_id) if node_id in model._modules else None
    if module is None:
        raise InspectError("the model has no such layer to compute Grad-CAM at (was it added after the model "
                           "was trained?)")
    handle = module.register_forward_hook(lambda _module, _inputs, output: captured.append(output))
    try:
        with evaluating(model):
            logits = model(batch)
    finally:
        handle.remove()
    activation = captured[0]
    if activation.ndim != 4:
        raise InspectError(f"Grad-CAM needs a layer with image output (N, C, H, W); {layer_name(model, node_id)} "
                           f"gives {list(activation.shape[1:])}")
    target = _target(logits, target)
    (gradient,) = torch.autograd.grad(logits[0, target], activation)
    weights = gradient.mean(dim=(2, 3), keepdim=True)
    cam = functional.relu((weights * activation).sum(dim=1, keepdim=True))
    cam = functional.interpolate(cam, size=batch.shape[2:], mode="bilinear", align_corners=False)
    probability = float(torch.softmax(logits.detach().float(), dim=1)[0, target])
    return Heatmap(_unit_range(cam[0, 0]), target, probability, node_id)


# A perceptually ordered dark-blue -> red -> yellow ramp (control points, interpolated linearly).
_RAMP = np.array([[0.0, 0.0, 0.2], [0.3, 0.0, 0.6], [0.8, 0.1, 0.3], [1.0, 0.5, 0.0], [1.0, 1.0, 0.4]],
                 dtype=np.float32)


def colorize(values: np.ndarray) -> np.ndarray:
    """(H, W) values in [0, 1] to (H, W, 3) float colours in [0, 1]."""
    position = np.clip(np.asarray(values, dtype=np.float32), 0.0, 1.0) * (len(_RAMP) - 1)
    low = np.floor(position).astype(int).clip(0, len(_RAMP) - 2)
    fraction = (position - low)[..., None]
    return _RAMP[low] * (1.0 - fraction) + _RAMP[low + 1] * fraction


def overlay(image: np.ndarray, heat: np.ndarray, alpha: float = 0.5) -> np.ndarray:
    """Blend a heat map over a raw image (C, H, W) in [0, 1]; returns (H, W, 3) uint8.

    The heat's colour counts in proportion to its value, so cold regions show the image itself.
    """
    image = np.asarray(image, dtype=np.float32)
    rgb = np.repeat(image[:1], 3, axis=0) if image.shape[0] == 1 else image[:3]
    rgb = np.clip(rgb.transpose(1, 2, 0), 0.0, 1.0)
    heat = np.clip(np.asarray(heat, dtype=np.float32), 0.0, 1.0)
    weight = (alpha * heat)[..., None]
    blended = rgb * (1.0 - weight) + colorize(heat) * weight
    return np.rint(blended * 255.0).astype(np.uint8)

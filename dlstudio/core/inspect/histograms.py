"""Weight and gradient histograms per layer (node), as numpy counts and bin edges."""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any

import numpy as np
import torch
from torch.nn import functional


@dataclass(frozen=True)
class Histogram:
    """``counts`` (bins,) and ``edges`` (bins + 1,), plus the mean and std of the values."""

    counts: np.ndarray
    edges: np.ndarray
    mean: float
    std: float


def histogram(values: torch.Tensor | np.ndarray, bins: int = 40) -> Histogram:
    """Histogram of all values; an empty or constant tensor gets a unit-wide range around its value."""
    array = (values.detach().float().cpu().numpy() if isinstance(values, torch.Tensor)
             else np.asarray(values, dtype=np.float32)).ravel()
    if array.size == 0:
        return Histogram(np.zeros(bins, dtype=np.int64), np.linspace(-0.5, 0.5, bins + 1), 0.0, 0.0)
    low, high = float(array.min()), float(array.max())
    if high <= low:
        low, high = low - 0.5, high + 0.5
    counts, edges = np.histogram(array, bins=bins, range=(low, high))
    return Histogram(counts, edges, float(array.mean()), float(array.std()))


def _by_node(named: Mapping[str, torch.Tensor], include_bias: bool) -> dict[str, list[torch.Tensor]]:
    groups: dict[str, list[torch.Tensor]] = {}
    for name, value in named.items():
        if not torch.is_floating_point(value) or name.endswith(("running_mean", "running_var")):
            continue
        if name.endswith("bias") and not include_bias:
            continue
        groups.setdefault(name.split(".", 1)[0], []).append(value.detach().reshape(-1))
    return groups


def weight_histograms(source: torch.nn.Module | Mapping[str, Any], bins: int = 40,
                      include_bias: bool = False) -> dict[str, Histogram]:
    """Per node id, the histogram of its weights, from a model or a state dict (e.g. a checkpoint's ``model``)."""
    named = dict(source.named_parameters()) if isinstance(source, torch.nn.Module) else dict(source)
    return {node_id: histogram(torch.cat(parts), bins) for node_id, parts in _by_node(named, include_bias).items()}


def gradient_histograms(model: torch.nn.Module, x: torch.Tensor, y: torch.Tensor | None = None, bins: int = 40,
                        loss: Callable[[torch.Tensor], torch.Tensor] | None = None,
                        include_bias: bool = False) -> dict[str, Histogram]:
    """Per node id, the histogram of the loss gradient on one batch (x, y), without touching ``.grad``.

    The loss is cross entropy against ``y``, or reconstruction MSE when ``y``
    is None, unless ``loss(output)`` is given. Runs in eval mode so that the
    batch does not change batch-norm statistics.
    """
    device = next(iter(model.parameters())).device
    was_training = model.training
    model.eval()
    try:
        output = model(x.to(device))
        if loss is not None:
            value = loss(output)
        elif y is not None:
            value = functional.cross_entropy(output.float(), y.to(device))
        else:
            value = functional.mse_loss(output.float(), x.to(device).float())
        names, params = zip(*[(n, p) for n, p in model.named_parameters() if p.requires_grad])
        grads = torch.autograd.grad(value, params, allow_unused=True)
    finally:
        model.train(was_training)
    named = {name: grad for name, grad in zip(names, grads) if grad is not None}
    return {node_id: histogram(torch.cat(parts), bins) for node_id, parts in _by_node(named, include_bias).items()}

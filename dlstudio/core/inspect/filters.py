"""Learned convolution filters of a node, from a live model, a state dict or a checkpoint file, as a mosaic."""

from __future__ import annotations

import math
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import numpy as np
import torch

from dlstudio.core import mosaic
from dlstudio.core.inspect.activations import layer_name
from dlstudio.core.inspect.errors import InspectError
from dlstudio.core.mosaic import FilterMosaic, filter_weights


def conv_weight(source: torch.nn.Module | Mapping[str, Any] | Path | str, node_id: str) -> np.ndarray:
    """The weight of conv node ``node_id`` as (out_channels, in_channels, kh, kw) float32.

    ``source`` is a model (live, e.g. during training), a state dict, or a
    checkpoint file (read with ``weights_only=True``).
    """
    if isinstance(source, (str, Path)):
        from dlstudio.core.training import load_checkpoint

        source = load_checkpoint(source)["model"]
    # A state dict or a checkpoint knows no names: its layers can only be called "that layer" (never by id).
    what = layer_name(source, node_id) if isinstance(source, torch.nn.Module) else "that layer"
    state = source.state_dict() if isinstance(source, torch.nn.Module) else source
    key = f"{node_id}.weight"
    if key not in state:
        raise InspectError(f"{what} has no weights (is it a layer with parameters?)")
    weight = state[key].detach().float().cpu().numpy()
    if weight.ndim != 4:
        raise InspectError(f"{what} is not a 2-D convolution; its weight has shape {list(weight.shape)}")
    return weight


def filter_mosaic(weight: np.ndarray, rgb: bool | None = None, max_inputs: int = 16, gap: int = 1) -> FilterMosaic:
    """Filters as one grey image on white. Each filter is scaled symmetrically, so that zero is mid-grey (0.5).

    With 3 input channels (a first layer on colour images) and ``rgb`` not
    False, each filter is one RGB tile. Otherwise each row is one filter and
    its columns are its first ``max_inputs`` input channels (one input: a square-ish grid).
    """
    weight = filter_weights(weight)
    out_channels, in_channels = weight.shape[:2]
    if rgb is None:
        rgb = in_channels == 3
    if rgb and in_channels != 3:
        raise InspectError(f"RGB filters need 3 input channels; this layer has {in_channels}")
    one_tile_each = rgb or in_channels == 1
    return mosaic.filter_mosaic(weight, colour=rgb, colour_scale=mosaic.SYMMETRIC, max_inputs=max_inputs,
                                columns=math.ceil(math.sqrt(out_channels)) if one_tile_each else 1, gap=gap,
                                fill=1.0)

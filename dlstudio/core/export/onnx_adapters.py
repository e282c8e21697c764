"""Equivalent stand-ins for modules the TorchScript-based ONNX exporter refuses, used only while exporting.

- ``nn.ChannelShuffle``: exported as the reshape-transpose-reshape it is.
- ``nn.Conv1d``/``nn.Conv2d`` with ``padding="same"``: the exporter writes ONNX's ``auto_pad=SAME_UPPER``,
  which onnxruntime refuses with a dilation; the padding is written out explicitly instead (torch's
  rule: total ``dilation * (kernel - 1)``, the smaller half first).
- ``nn.AdaptiveAvgPool2d`` / ``nn.AdaptiveMaxPool2d`` whose output size does not divide the input
  size (the exporter handles only the divisible case): the input size is fixed by the graph, so the
  pooling windows are known. Average pooling over a window is separable: two fixed averaging
  matrices, one per axis. Max pooling takes the maximum of each window's rows, then of its columns.

The stand-ins compute the same values (the exported file is verified against the original model,
not against them). Input sizes are taken from one forward pass with hooks, so modules nested in an
imported (opaque) module are found too.
"""

from __future__ import annotations

import copy
import math

import torch
from torch import nn
from torch.nn import functional


class ShuffleChannels(nn.Module):
    """``nn.ChannelShuffle(groups)`` as reshape, transpose, reshape (ONNX has no channel shuffle)."""

    def __init__(self, groups: int) -> None:
        super().__init__()
        self.groups = groups

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        batch, channels = x.shape[0], x.shape[1]
        rest = x.shape[2:]
        x = x.reshape(batch, self.groups, channels // self.groups, *rest).transpose(1, 2)
        return x.reshape(batch, channels, *rest)


class ExplicitSamePadding(nn.Module):
    """A ``padding="same"`` convolution as an explicit pad followed by the same convolution unpadded."""

    def __init__(self, conv: nn.Conv1d | nn.Conv2d) -> None:
        super().__init__()
        self.conv = conv
        pads: list[int] = []
        for kernel, dilation in reversed(list(zip(conv.kernel_size, conv.dilation))):
            total = dilation * (kernel - 1)
            pads += [total // 2, total - total // 2]
        self.pads = pads
        self.mode = "constant" if conv.padding_mode == "zeros" else conv.padding_mode
        self.function = functional.conv2d if isinstance(conv, nn.Conv2d) else functional.conv1d

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        conv = self.conv
        return self.function(functional.pad(x, self.pads, mode=self.mode), conv.weight, conv.bias, conv.stride, 0,
                             conv.dilation, conv.groups)


def _windows(size: int, out: int) -> list[tuple[int, int]]:
    """Adaptive pooling's windows along one axis: [floor(i*size/out), ceil((i+1)*size/out))."""
    return [((i * size) // out, math.ceil((i + 1) * size / out)) for i in range(out)]


def _averaging_matrix(size: int, out: int) -> torch.Tensor:
    matrix = torch.zeros(out, size)
    for row, (start, end) in enumerate(_windows(size, out)):
        matrix[row, start:end] = 1.0 / (end - start)
    return matrix


class FixedAdaptiveAvgPool2d(nn.Module):
    """Adaptive average pooling of a fixed input size, as ``A_h @ x @ A_w^T``."""

    def __init__(self, height: int, width: int, out_height: int, out_width: int) -> None:
        super().__init__()
        self.register_buffer("rows", _averaging_matrix(height, out_height), persistent=False)
        self.register_buffer("cols", _averaging_matrix(width, out_width), persistent=False)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return torch.matmul(torch.matmul(self.rows, x), self.cols.t())


class FixedAdaptiveMaxPool2d(nn.Module):
    """Adaptive max pooling of a fixed input size, window by window (rows, then columns)."""

    def __init__(self, height: int, width: int, out_height: int, out_width: int) -> None:
        super().__init__()
        self.row_windows = _windows(height, out_height)
        self.col_windows = _windows(width, out_width)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        rows = torch.stack([x[..., start:end, :].amax(dim=-2) for start, end in self.row_windows], dim=-2)
        return torch.stack([rows[..., start:end].amax(dim=-1) for start, end in self.col_windows], dim=-1)


def _output_size(module: nn.Module, height: int, width: int) -> tuple[int, int]:
    size = module.output_size  # type: ignore[attr-defined]
    pair = (size, size) if isinstance(size, int) or size is None else tuple(size)
    return (height if pair[0] is None else int(pair[0]), width if pair[1] is None else int(pair[1]))


def exportable_copy(model: nn.Module, example: tuple[torch.Tensor, ...]) -> nn.Module:
    """``model`` itself when nothing needs a stand-in; otherwise a copy with the stand-ins in place."""
    pools = (nn.AdaptiveAvgPool2d, nn.AdaptiveMaxPool2d)
    seen: dict[str, tuple[int, ...]] = {}
    hooks = []
    for name, module in model.named_modules():
        if isinstance(module, pools):
            hooks.append(module.register_forward_pre_hook(
                lambda _module, args, name=name: seen.__setitem__(name, tuple(args[0].shape))))
    try:
        if hooks:
            with torch.no_grad():
                model(*example)
    finally:
        for hook in hooks:
            hook.remove()
    replacements: dict[str, nn.Module] = {}
    for name, module in model.named_modules():
        if isinstance(module, nn.ChannelShuffle):
            replacements[name] = ShuffleChannels(module.groups)
        elif isinstance(module, (nn.Conv1d, nn.Conv2d)) and module.padding == "same":
            replacements[name] = ExplicitSamePadding(module)
        elif isinstance(module, pools) and name in seen and len(seen[name]) == 4:
            height, width = seen[name][2:]
            out_height, out_width = _output_size(module, height, width)
            if height % out_height or width % out_width:
                stand_in = FixedAdaptiveAvgPool2d if isinstance(module, nn.AdaptiveAvgPool2d) else FixedAdaptiveMaxPool2d
                if isinstance(module, nn.AdaptiveMaxPool2d) and module.return_indices:
                    continue  # indices have no stand-in; the exporter says what fails
                replacements[name] = stand_in(height, width, out_height, out_width)
    if not replacements:
        return model
    if "" in replacements:  # the model is itself one such module (a node exported alone)
        return replacements[""]
    copied = copy.deepcopy(model)
    for name, stand_in in replacements.items():
        parent_name, _, attribute = name.rpartition(".")
        parent = copied.get_submodule(parent_name) if parent_name else copied
        setattr(parent, attribute, stand_in)
    return copied

"""Small nn.Modules for graph operations PyTorch has no module for (torch)."""

from __future__ import annotations

import torch
from torch import nn


class Add(nn.Module):
    """Element-wise sum of all inputs (with broadcasting)."""

    def forward(self, *inputs: torch.Tensor) -> torch.Tensor:
        result = inputs[0]
        for tensor in inputs[1:]:
            result = result + tensor
        return result


class Multiply(nn.Module):
    """Element-wise product of all inputs (with broadcasting)."""

    def forward(self, *inputs: torch.Tensor) -> torch.Tensor:
        result = inputs[0]
        for tensor in inputs[1:]:
            result = result * tensor
        return result


class Concat(nn.Module):
    """Concatenate the inputs along ``dim`` (counted with the batch dimension)."""

    def __init__(self, dim: int) -> None:
        super().__init__()
        self.dim = dim

    def forward(self, *inputs: torch.Tensor) -> torch.Tensor:
        return torch.cat(inputs, dim=self.dim)

    def extra_repr(self) -> str:
        return f"dim={self.dim}"


class Reshape(nn.Module):
    """Reshape every sample to ``shape``, keeping the batch dimension."""

    def __init__(self, shape: tuple[int, ...]) -> None:
        super().__init__()
        self.shape = tuple(shape)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return x.reshape(x.shape[0], *self.shape)

    def extra_repr(self) -> str:
        return f"shape={self.shape}"

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


class Permute(nn.Module):
    """Reorder the dimensions of every sample; ``dims`` count the batch as 0 and leave it first."""

    def __init__(self, dims: tuple[int, ...]) -> None:
        super().__init__()
        self.dims = tuple(dims)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return x.permute(0, *self.dims)

    def extra_repr(self) -> str:
        return f"dims={self.dims}"


class Mean(nn.Module):
    """The mean over ``dims`` (counted with the batch as 0), optionally keeping them as size 1."""

    def __init__(self, dims: tuple[int, ...], keepdim: bool) -> None:
        super().__init__()
        self.dims = tuple(dims)
        self.keepdim = keepdim

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return x.mean(self.dims, keepdim=self.keepdim)

    def extra_repr(self) -> str:
        return f"dims={self.dims}, keepdim={self.keepdim}"


class Slice(nn.Module):
    """Keep indices ``start`` to ``end`` (excluded) along ``dim`` (counted with the batch as 0)."""

    def __init__(self, dim: int, start: int, end: int) -> None:
        super().__init__()
        self.dim, self.start, self.end = dim, start, end

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return x.narrow(self.dim, self.start, self.end - self.start)

    def extra_repr(self) -> str:
        return f"dim={self.dim}, start={self.start}, end={self.end}"


class StochasticDepth(nn.Module):
    """While training, zero the whole input of a sample ("row") or of the batch ("batch") with probability ``p``
    and scale what is kept by 1 / (1 - p); the identity in eval mode. torchvision.ops.StochasticDepth's rule.
    """

    def __init__(self, p: float, mode: str) -> None:
        super().__init__()
        self.p, self.mode = p, mode

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if not self.training or self.p == 0.0:
            return x
        rows = x.shape[0] if self.mode == "row" else 1
        keep = nn.functional.dropout(x.new_ones(rows, *[1] * (x.dim() - 1)), p=self.p, training=True)
        return x * keep

    def extra_repr(self) -> str:
        return f"p={self.p}, mode={self.mode}"

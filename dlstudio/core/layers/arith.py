"""Shape arithmetic shared by the conv and pooling specs (PyTorch's formulas)."""

from __future__ import annotations

import math
from typing import Any

from dlstudio.core.errors import Fix, LayerShapeError
from dlstudio.core.layers.spec import Shape, format_shape


def pair(value: int | list[int], dims: int) -> tuple[int, ...]:
    """Expand an int or a pair to ``dims`` values (1 for Conv1d, 2 for Conv2d)."""
    if isinstance(value, (list, tuple)):
        if dims == 1:
            return (value[0],)
        return tuple(value)
    return (value,) * dims


def conv_out(length: int, kernel: int, stride: int, padding: int, dilation: int) -> int:
    return (length + 2 * padding - dilation * (kernel - 1) - 1) // stride + 1


def pool_out(length: int, kernel: int, stride: int, padding: int, dilation: int, ceil_mode: bool) -> int:
    span = length + 2 * padding - dilation * (kernel - 1) - 1
    if ceil_mode:
        out = -(-span // stride) + 1
        # PyTorch drops a last window that would start in the right padding.
        if (out - 1) * stride >= length + padding:
            out -= 1
        return out
    return span // stride + 1


def transpose_out(length: int, kernel: int, stride: int, padding: int, dilation: int, output_padding: int) -> int:
    return (length - 1) * stride - 2 * padding + dilation * (kernel - 1) + output_padding + 1


def expect_rank(layer: str, shape: Shape, rank: int, layout: str) -> None:
    """Refuse an input of the wrong rank with a message that quotes both shapes."""
    if len(shape) == rank:
        return
    fix = None
    hint = ""
    if rank == 1 and len(shape) > 1:
        hint = ": insert a Flatten before it"
        fix = Fix("insert_before", "Insert a Flatten before it", layer_type="Flatten", port="in")
    raise LayerShapeError(f"{layer} expects {layout}; received {format_shape(shape)}{hint}", fix)


def check_auto(layer: str, params: dict[str, Any], name: str, actual: int, what: str) -> None:
    """A parameter that may be left on auto must, when set, equal what the input gives."""
    value = params.get(name)
    if value is not None and value != actual:
        raise LayerShapeError(
            f"{layer} has {name}={value} but its input has {actual} {what}",
            Fix("set_param", f"Set {name} to {actual}", param=name, value=actual),
        )


def resolve_padding(layer: str, padding: Any, kernel: tuple[int, ...], stride: tuple[int, ...],
                    dilation: tuple[int, ...]) -> tuple[int, ...] | str:
    """Turn "valid" into zeros; keep "same" (checked: PyTorch allows it only with stride 1)."""
    dims = len(kernel)
    if padding == "valid":
        return (0,) * dims
    if padding == "same":
        if any(s != 1 for s in stride):
            raise LayerShapeError(f"{layer}: padding 'same' needs stride 1 (PyTorch); stride is {_fmt(stride)}")
        return "same"
    return pair(padding, dims)


def check_positive(layer: str, in_shape: Shape, out: tuple[int, ...], what: str = "kernel") -> None:
    if any(d <= 0 for d in out):
        raise LayerShapeError(
            f"{layer}: the {what} does not fit the input {format_shape(in_shape)} "
            f"(output would be {', '.join(str(d) for d in out)}); use a smaller kernel or more padding"
        )


def _fmt(values: tuple[int, ...]) -> str:
    return str(values[0]) if len(set(values)) == 1 else str(list(values))


def prod(values: Any) -> int:
    return math.prod(values)

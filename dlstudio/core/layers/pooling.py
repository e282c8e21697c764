"""Pooling layers: max, average, adaptive (global) pooling and the mean over the spatial dimensions."""

from __future__ import annotations

from typing import Any

from dlstudio.core.errors import LayerShapeError
from dlstudio.core.layers.arith import check_positive, expect_rank, pair, pool_out
from dlstudio.core.layers.spec import (
    BOOL, INT, SIZE, Inferred, LayerCode, LayerSpec, ParamSpec, Shape, code_call, code_size, format_shape,
)

_KERNEL = ParamSpec("kernel_size", SIZE, 2, "Size of the pooling window (a number, or [height, width]).",
                    min=1, max=1000)
_STRIDE = ParamSpec("stride", SIZE, None, "Step between windows; auto uses the kernel size (no overlap).",
                    min=1, max=1000, auto=True)
_PADDING = ParamSpec("padding", SIZE, 0, "Padding on each side; at most half the kernel.", min=0, max=1000)
_CEIL = ParamSpec("ceil_mode", BOOL, False, "Round the output size up instead of down (keeps the border).")


def _pool_geometry(layer: str, shape: Shape, params: dict[str, Any], dilation: tuple[int, int]) -> tuple[int, ...]:
    expect_rank(layer, shape, 3, "(N, C, H, W)")
    kernel = pair(params["kernel_size"], 2)
    stride = pair(params["stride"], 2) if params["stride"] is not None else kernel
    padding = pair(params["padding"], 2)
    for p, k, d in zip(padding, kernel, dilation):
        if 2 * p > (k - 1) * d + 1:
            raise LayerShapeError(f"{layer}: padding {params['padding']} is more than half the kernel "
                                  f"{params['kernel_size']}")
    out = tuple(pool_out(length, k, s, p, d, params["ceil_mode"])
                for length, k, s, p, d in zip(shape[1:], kernel, stride, padding, dilation))
    check_positive(layer, shape, out, "window")
    return out


def _infer_max(in_shapes: list[Shape], params: dict[str, Any]) -> Inferred:
    (shape,) = in_shapes
    out = _pool_geometry("MaxPool2d", shape, params, pair(params["dilation"], 2))
    return Inferred(((shape[0], *out),))


def _infer_avg(in_shapes: list[Shape], params: dict[str, Any]) -> Inferred:
    (shape,) = in_shapes
    out = _pool_geometry("AvgPool2d", shape, params, (1, 1))
    return Inferred(((shape[0], *out),))


def _build_max(params: dict[str, Any], in_shapes: list[Shape]) -> Any:
    from torch import nn

    stride = params["stride"]
    return nn.MaxPool2d(pair(params["kernel_size"], 2), stride=None if stride is None else pair(stride, 2),
                        padding=pair(params["padding"], 2), dilation=pair(params["dilation"], 2),
                        ceil_mode=params["ceil_mode"])


def _build_avg(params: dict[str, Any], in_shapes: list[Shape]) -> Any:
    from torch import nn

    stride = params["stride"]
    return nn.AvgPool2d(pair(params["kernel_size"], 2), stride=None if stride is None else pair(stride, 2),
                        padding=pair(params["padding"], 2), ceil_mode=params["ceil_mode"],
                        count_include_pad=params["count_include_pad"])


def _code_max(params: dict[str, Any], in_shapes: list[Shape]) -> str:
    stride = params["stride"]
    return code_call("nn.MaxPool2d", code_size(params["kernel_size"], 2),
                     stride=None if stride is None else code_size(stride, 2),
                     padding=code_size(params["padding"], 2), dilation=code_size(params["dilation"], 2),
                     ceil_mode=params["ceil_mode"],
                     defaults={"stride": None, "padding": 0, "dilation": 1, "ceil_mode": False})


def _code_avg(params: dict[str, Any], in_shapes: list[Shape]) -> str:
    stride = params["stride"]
    return code_call("nn.AvgPool2d", code_size(params["kernel_size"], 2),
                     stride=None if stride is None else code_size(stride, 2),
                     padding=code_size(params["padding"], 2), ceil_mode=params["ceil_mode"],
                     count_include_pad=params["count_include_pad"],
                     defaults={"stride": None, "padding": 0, "ceil_mode": False, "count_include_pad": True})


class _AdaptivePool:
    """infer/build/code of torch's 2-D adaptive poolings, which differ only in the module they build."""

    def __init__(self, module: str) -> None:
        self.module = module  # "AdaptiveAvgPool2d" or "AdaptiveMaxPool2d"

    def infer(self, in_shapes: list[Shape], params: dict[str, Any]) -> Inferred:
        (shape,) = in_shapes
        expect_rank(self.module, shape, 3, "(N, C, H, W)")
        return Inferred(((shape[0], *pair(params["output_size"], 2)),))

    def build(self, params: dict[str, Any], in_shapes: list[Shape]) -> Any:
        from torch import nn

        return getattr(nn, self.module)(pair(params["output_size"], 2))

    def code(self, params: dict[str, Any], in_shapes: list[Shape]) -> str:
        return code_call(f"nn.{self.module}", code_size(params["output_size"], 2))


_ADAPTIVE_AVG = _AdaptivePool("AdaptiveAvgPool2d")
_ADAPTIVE_MAX = _AdaptivePool("AdaptiveMaxPool2d")


MAXPOOL2D = LayerSpec(
    type_id="MaxPool2d",
    display_name="MaxPool2d",
    category="Pooling",
    help=(
        "Keeps the largest value in each window of every feature map. Shrinks the maps (a 2x2 window "
        "halves height and width), which cuts computation and makes the response tolerant to small "
        "shifts of the pattern."
    ),
    params=(_KERNEL, _STRIDE, _PADDING,
            ParamSpec("dilation", SIZE, 1, "Spacing between the window's taps.", min=1, max=1000), _CEIL),
    infer=_infer_max,
    build=_build_max,
    code=LayerCode(module=_code_max),
    key_params=("kernel_size", "stride"),
    id_stem="maxpool",
)

AVGPOOL2D = LayerSpec(
    type_id="AvgPool2d",
    display_name="AvgPool2d",
    category="Pooling",
    help=(
        "Replaces each window of every feature map by its average. Shrinks the maps like max pooling "
        "but keeps a smoother summary; LeNet-5 used it."
    ),
    params=(_KERNEL, _STRIDE, _PADDING, _CEIL,
            ParamSpec("count_include_pad", BOOL, True, "Count padded zeros in the average.")),
    infer=_infer_avg,
    build=_build_avg,
    code=LayerCode(module=_code_avg),
    key_params=("kernel_size", "stride"),
    id_stem="avgpool",
)

ADAPTIVE_AVGPOOL2D = LayerSpec(
    type_id="AdaptiveAvgPool2d",
    display_name="AdaptiveAvgPool2d",
    category="Pooling",
    help=(
        "Averages each feature map down to a fixed size whatever the input size. With output size 1 "
        "it is global average pooling: one number per channel, the usual bridge from conv layers to "
        "the classifier in modern networks."
    ),
    params=(ParamSpec("output_size", SIZE, 1, "Height and width of the output (1 = global pooling).",
                      min=1, max=10_000),),
    infer=_ADAPTIVE_AVG.infer,
    build=_ADAPTIVE_AVG.build,
    code=LayerCode(module=_ADAPTIVE_AVG.code),
    key_params=("output_size",),
    id_stem="gap",
)



def _infer_max1d(in_shapes: list[Shape], params: dict[str, Any]) -> Inferred:
    (shape,) = in_shapes
    expect_rank("MaxPool1d", shape, 2, "(N, C, L)")
    kernel, padding, dilation = params["kernel_size"], params["padding"], params["dilation"]
    stride = kernel if params["stride"] is None else params["stride"]
    if 2 * padding > (kernel - 1) * dilation + 1:
        raise LayerShapeError(f"MaxPool1d: padding {padding} is more than half the kernel {kernel}")
    out = (pool_out(shape[1], kernel, stride, padding, dilation, params["ceil_mode"]),)
    check_positive("MaxPool1d", shape, out, "window")
    return Inferred(((shape[0], *out),))


def _build_max1d(params: dict[str, Any], in_shapes: list[Shape]) -> Any:
    from torch import nn

    return nn.MaxPool1d(params["kernel_size"], stride=params["stride"], padding=params["padding"],
                        dilation=params["dilation"], ceil_mode=params["ceil_mode"])


def _code_max1d(params: dict[str, Any], in_shapes: list[Shape]) -> str:
    return code_call("nn.MaxPool1d", params["kernel_size"], stride=params["stride"], padding=params["padding"],
                     dilation=params["dilation"], ceil_mode=params["ceil_mode"],
                     defaults={"stride": None, "padding": 0, "dilation": 1, "ceil_mode": False})


def _mean_dims(layer: str, shape: Shape) -> tuple[int, ...]:
    """The spatial dimensions of ``shape``, counted with the batch as 0: (2, 3) for (N, C, H, W)."""
    if len(shape) < 2:
        raise LayerShapeError(f"{layer} averages over the spatial dimensions, so it expects (N, C, L) or "
                              f"(N, C, H, W); received {format_shape(shape)}")
    return tuple(range(2, len(shape) + 1))


def _infer_mean(in_shapes: list[Shape], params: dict[str, Any]) -> Inferred:
    (shape,) = in_shapes
    dims = _mean_dims("Mean", shape)
    out = (shape[0], *(1,) * len(dims)) if params["keepdim"] else (shape[0],)
    return Inferred((out,))


def _build_mean(params: dict[str, Any], in_shapes: list[Shape]) -> Any:
    from dlstudio.core.layers.modules import Mean

    return Mean(_mean_dims("Mean", in_shapes[0]), params["keepdim"])


def _code_mean(names: list[str], params: dict[str, Any], in_shapes: list[Shape]) -> str:
    (name,) = names
    dims = _mean_dims("Mean", in_shapes[0])
    dim_text = str(dims[0]) if len(dims) == 1 else "(" + ", ".join(str(d) for d in dims) + ")"
    return f"{name}.mean({dim_text}{', keepdim=True' if params['keepdim'] else ''})"


MAXPOOL1D = LayerSpec(
    type_id="MaxPool1d",
    display_name="MaxPool1d",
    category="Pooling",
    help=(
        "Keeps the largest value in each window along a sequence or signal (N, C, L). A window of 2 "
        "halves the length; the 1-D companion of Conv1d."
    ),
    params=(ParamSpec("kernel_size", INT, 2, "Length of the pooling window.", min=1, max=1000),
            ParamSpec("stride", INT, None, "Step between windows; auto uses the kernel size (no overlap).",
                      min=1, max=1000, auto=True),
            ParamSpec("padding", INT, 0, "Padding on each end; at most half the kernel.", min=0, max=1000),
            ParamSpec("dilation", INT, 1, "Spacing between the window's taps.", min=1, max=1000), _CEIL),
    infer=_infer_max1d,
    build=_build_max1d,
    code=LayerCode(module=_code_max1d),
    key_params=("kernel_size", "stride"),
    id_stem="maxpool1d",
)

ADAPTIVE_MAXPOOL2D = LayerSpec(
    type_id="AdaptiveMaxPool2d",
    display_name="AdaptiveMaxPool2d",
    category="Pooling",
    help=(
        "Keeps the largest value of each region of every feature map, with the regions chosen so the "
        "output has a fixed size whatever the input size. With output size 1 it is global max pooling."
    ),
    params=(ParamSpec("output_size", SIZE, 1, "Height and width of the output (1 = global pooling).",
                      min=1, max=10_000),),
    infer=_ADAPTIVE_MAX.infer,
    build=_ADAPTIVE_MAX.build,
    code=LayerCode(module=_ADAPTIVE_MAX.code),
    key_params=("output_size",),
    id_stem="gmp",
)

MEAN = LayerSpec(
    type_id="Mean",
    display_name="Mean",
    category="Pooling",
    help=(
        "Averages every channel over its whole map (or sequence): (N, C, H, W) becomes (N, C), one number "
        "per channel. The same as global average pooling followed by Flatten; ShuffleNet ends with it."
    ),
    params=(ParamSpec("keepdim", BOOL, False, "Keep the averaged dimensions as size 1: (N, C, 1, 1) instead "
                                              "of (N, C)."),),
    infer=_infer_mean,
    build=_build_mean,
    code=LayerCode(inline=_code_mean),
    id_stem="mean",
)

SPECS = (MAXPOOL2D, MAXPOOL1D, AVGPOOL2D, ADAPTIVE_AVGPOOL2D, ADAPTIVE_MAXPOOL2D, MEAN)

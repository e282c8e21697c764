"""Pooling layers: max, average and adaptive (global) average pooling."""

from __future__ import annotations

from typing import Any

from dlstudio.core.errors import LayerShapeError
from dlstudio.core.layers.arith import check_positive, expect_rank, pair, pool_out
from dlstudio.core.layers.spec import (
    BOOL, SIZE, Inferred, LayerCode, LayerSpec, ParamSpec, Shape, code_call, code_size,
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


def _infer_adaptive(in_shapes: list[Shape], params: dict[str, Any]) -> Inferred:
    (shape,) = in_shapes
    expect_rank("AdaptiveAvgPool2d", shape, 3, "(N, C, H, W)")
    return Inferred(((shape[0], *pair(params["output_size"], 2)),))


def _build_adaptive(params: dict[str, Any], in_shapes: list[Shape]) -> Any:
    from torch import nn

    return nn.AdaptiveAvgPool2d(pair(params["output_size"], 2))


def _code_adaptive(params: dict[str, Any], in_shapes: list[Shape]) -> str:
    return code_call("nn.AdaptiveAvgPool2d", code_size(params["output_size"], 2))


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
    infer=_infer_adaptive,
    build=_build_adaptive,
    code=LayerCode(module=_code_adaptive),
    key_params=("output_size",),
    id_stem="gap",
)

SPECS = (MAXPOOL2D, AVGPOOL2D, ADAPTIVE_AVGPOOL2D)

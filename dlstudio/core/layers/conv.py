"""Convolution layers: Conv1d, Conv2d and ConvTranspose2d."""

from __future__ import annotations

from typing import Any

from dlstudio.core.errors import Fix, LayerShapeError
from dlstudio.core.layers.arith import (
    check_auto, check_positive, conv_out, expect_rank, pair, prod, resolve_padding, transpose_out,
)
from dlstudio.core.layers.spec import (
    BOOL, INT, PADDING, SIZE, Inferred, LayerCode, LayerSpec, ParamSpec, Shape, code_call, code_size,
)

_LAYOUT = {1: "(N, C, L)", 2: "(N, C, H, W)"}


def _conv_params(*, transpose: bool) -> tuple[ParamSpec, ...]:
    padding = (
        ParamSpec("padding", SIZE, 0, "Zeros removed from each side of the output.", min=0, max=1000)
        if transpose
        else ParamSpec("padding", PADDING, 0,
                       "Zeros added around the input; 'same' keeps the size (stride 1 only), 'valid' adds none.",
                       min=0, max=1000, choices=("same", "valid"))
    )
    params = [
        ParamSpec("in_channels", INT, None, "Input channels; leave on auto to take it from the input.",
                  min=1, max=100_000, auto=True),
        ParamSpec("out_channels", INT, 16, "Number of filters, i.e. output channels.", min=1, max=100_000),
        ParamSpec("kernel_size", SIZE, 3, "Size of each filter (a number, or [height, width]).", min=1, max=1000),
        ParamSpec("stride", SIZE, 1, "Step between filter positions; 2 halves the size.", min=1, max=1000),
        padding,
    ]
    if transpose:
        params.append(ParamSpec("output_padding", SIZE, 0,
                                "Extra rows/columns added to one side of the output (smaller than stride).",
                                min=0, max=1000))
    params += [
        ParamSpec("dilation", SIZE, 1, "Spacing between filter taps (atrous convolution).", min=1, max=1000),
        ParamSpec("groups", INT, 1, "Split channels into groups convolved separately; in and out channels "
                                    "must both divide by it (groups = channels gives a depthwise conv).",
                  min=1, max=100_000),
        ParamSpec("bias", BOOL, True, "Add a learned bias per output channel (often off before BatchNorm)."),
    ]
    return tuple(params)


def _check_groups(layer: str, in_ch: int, out_ch: int, groups: int) -> None:
    if in_ch % groups or out_ch % groups:
        raise LayerShapeError(
            f"{layer}: groups={groups} must divide both in_channels ({in_ch}) and out_channels ({out_ch})",
            Fix("set_param", "Set groups to 1", param="groups", value=1),
        )


def _make_conv_infer(dims: int):
    layer = f"Conv{dims}d"

    def infer(in_shapes: list[Shape], params: dict[str, Any]) -> Inferred:
        (shape,) = in_shapes
        expect_rank(layer, shape, dims + 1, _LAYOUT[dims])
        in_ch, spatial = shape[0], shape[1:]
        check_auto(layer, params, "in_channels", in_ch, "channels")
        out_ch, groups = params["out_channels"], params["groups"]
        _check_groups(layer, in_ch, out_ch, groups)
        kernel = pair(params["kernel_size"], dims)
        stride = pair(params["stride"], dims)
        dilation = pair(params["dilation"], dims)
        padding = resolve_padding(layer, params["padding"], kernel, stride, dilation)
        if padding == "same":
            out_spatial = tuple(spatial)
        else:
            out_spatial = tuple(conv_out(length, k, s, p, d)
                                for length, k, s, p, d in zip(spatial, kernel, stride, padding, dilation))
        check_positive(layer, shape, out_spatial)
        per_filter = (in_ch // groups) * prod(kernel)
        weights = out_ch * per_filter + (out_ch if params["bias"] else 0)
        macs = out_ch * prod(out_spatial) * per_filter
        return Inferred(((out_ch, *out_spatial),), weights, macs)

    return infer


def _make_conv_build(dims: int):
    def build(params: dict[str, Any], in_shapes: list[Shape]) -> Any:
        from torch import nn

        cls = nn.Conv1d if dims == 1 else nn.Conv2d
        padding = params["padding"]
        if not isinstance(padding, str):
            padding = pair(padding, dims)
        return cls(
            in_shapes[0][0], params["out_channels"], pair(params["kernel_size"], dims),
            stride=pair(params["stride"], dims), padding=padding, dilation=pair(params["dilation"], dims),
            groups=params["groups"], bias=params["bias"],
        )

    return build


# PyTorch's defaults, left out of exported code.
_CONV_DEFAULTS = {"stride": 1, "padding": 0, "dilation": 1, "groups": 1, "bias": True}
_TRANSPOSE_DEFAULTS = {**_CONV_DEFAULTS, "output_padding": 0}


def _make_conv_code(dims: int):
    def code(params: dict[str, Any], in_shapes: list[Shape]) -> str:
        padding = params["padding"]
        return code_call(
            f"nn.Conv{dims}d", in_shapes[0][0], params["out_channels"],
            kernel_size=code_size(params["kernel_size"], dims), stride=code_size(params["stride"], dims),
            padding=padding if isinstance(padding, str) else code_size(padding, dims),
            dilation=code_size(params["dilation"], dims), groups=params["groups"], bias=params["bias"],
            defaults=_CONV_DEFAULTS,
        )

    return code


def _infer_transpose(in_shapes: list[Shape], params: dict[str, Any]) -> Inferred:
    layer = "ConvTranspose2d"
    (shape,) = in_shapes
    expect_rank(layer, shape, 3, _LAYOUT[2])
    in_ch, spatial = shape[0], shape[1:]
    check_auto(layer, params, "in_channels", in_ch, "channels")
    out_ch, groups = params["out_channels"], params["groups"]
    _check_groups(layer, in_ch, out_ch, groups)
    kernel, stride = pair(params["kernel_size"], 2), pair(params["stride"], 2)
    padding, dilation = pair(params["padding"], 2), pair(params["dilation"], 2)
    output_padding = pair(params["output_padding"], 2)
    if any(op >= max(s, d) for op, s, d in zip(output_padding, stride, dilation)):
        raise LayerShapeError(
            f"{layer}: output_padding must be smaller than stride or dilation "
            f"(output_padding {params['output_padding']}, stride {params['stride']})",
            Fix("set_param", "Set output_padding to 0", param="output_padding", value=0),
        )
    out_spatial = tuple(transpose_out(*args) for args in zip(spatial, kernel, stride, padding, dilation, output_padding))
    check_positive(layer, shape, out_spatial, "padding")
    per_input = (out_ch // groups) * prod(kernel)
    weights = in_ch * per_input + (out_ch if params["bias"] else 0)
    macs = in_ch * prod(spatial) * per_input
    return Inferred(((out_ch, *out_spatial),), weights, macs)


def _build_transpose(params: dict[str, Any], in_shapes: list[Shape]) -> Any:
    from torch import nn

    return nn.ConvTranspose2d(
        in_shapes[0][0], params["out_channels"], pair(params["kernel_size"], 2),
        stride=pair(params["stride"], 2), padding=pair(params["padding"], 2),
        output_padding=pair(params["output_padding"], 2), groups=params["groups"],
        bias=params["bias"], dilation=pair(params["dilation"], 2),
    )


def _code_transpose(params: dict[str, Any], in_shapes: list[Shape]) -> str:
    return code_call(
        "nn.ConvTranspose2d", in_shapes[0][0], params["out_channels"],
        kernel_size=code_size(params["kernel_size"], 2), stride=code_size(params["stride"], 2),
        padding=code_size(params["padding"], 2), output_padding=code_size(params["output_padding"], 2),
        groups=params["groups"], bias=params["bias"], dilation=code_size(params["dilation"], 2),
        defaults=_TRANSPOSE_DEFAULTS,
    )


CONV1D = LayerSpec(
    type_id="Conv1d",
    display_name="Conv1d",
    category="Convolution",
    help=(
        "Slides learned filters along one axis of a signal (audio, sensor series, text embeddings) "
        "and gives one output channel per filter. Finds local patterns wherever they occur in the sequence."
    ),
    params=_conv_params(transpose=False),
    infer=_make_conv_infer(1),
    build=_make_conv_build(1),
    code=LayerCode(module=_make_conv_code(1)),
    key_params=("out_channels", "kernel_size", "stride"),
    id_stem="conv1d",
)

CONV2D = LayerSpec(
    type_id="Conv2d",
    display_name="Conv2d",
    category="Convolution",
    help=(
        "Slides small learned filters over an image; each filter gives one output channel (a feature "
        "map) that is high where its pattern appears. Early layers learn edges and blobs, later ones "
        "combinations of them. Shares weights across positions, so it needs far fewer parameters than "
        "a Linear layer on the same image."
    ),
    params=_conv_params(transpose=False),
    infer=_make_conv_infer(2),
    build=_make_conv_build(2),
    code=LayerCode(module=_make_conv_code(2)),
    key_params=("out_channels", "kernel_size", "stride"),
    id_stem="conv",
)

CONV_TRANSPOSE2D = LayerSpec(
    type_id="ConvTranspose2d",
    display_name="ConvTranspose2d",
    category="Convolution",
    help=(
        "The reverse direction of a strided convolution: spreads each input value over a filter-sized "
        "patch of a larger output. Used to grow feature maps back to image size in decoders, "
        "autoencoders and segmentation networks (stride 2 doubles the size)."
    ),
    params=_conv_params(transpose=True),
    infer=_infer_transpose,
    build=_build_transpose,
    code=LayerCode(module=_code_transpose),
    key_params=("out_channels", "kernel_size", "stride"),
    id_stem="deconv",
)

SPECS = (CONV1D, CONV2D, CONV_TRANSPOSE2D)

"""Layers that only rearrange, cut, pad or resize tensors: Flatten, Reshape, Upsample, Identity, Permute,
ChannelShuffle, Slice, ZeroPad2d."""

from __future__ import annotations

from typing import Any

from dlstudio.core.errors import Fix, LayerShapeError
from dlstudio.core.layers.arith import expect_rank, prod
from dlstudio.core.layers.spec import (
    CHOICE, INT, INTS, Inferred, LayerCode, LayerSpec, ParamSpec, Shape, code_call, format_shape,
)


def _infer_flatten(in_shapes: list[Shape], params: dict[str, Any]) -> Inferred:
    return Inferred(((prod(in_shapes[0]),),))


def _infer_reshape(in_shapes: list[Shape], params: dict[str, Any]) -> Inferred:
    (shape,) = in_shapes
    target = list(params["shape"])
    total = prod(shape)
    known = prod(d for d in target if d != -1)
    if -1 in target:
        if total % known:
            raise LayerShapeError(f"Reshape cannot fit {format_shape(shape)} ({total} values) into "
                                  f"{format_shape(target)}")
        target[target.index(-1)] = total // known
    elif known != total:
        raise LayerShapeError(f"Reshape: {format_shape(target)} holds {known} values but the input "
                              f"{format_shape(shape)} has {total}")
    return Inferred((tuple(target),))


def _infer_upsample(in_shapes: list[Shape], params: dict[str, Any]) -> Inferred:
    (shape,) = in_shapes
    if len(shape) not in (2, 3):
        raise LayerShapeError(f"Upsample expects (N, C, H, W) or (N, C, L); received {format_shape(shape)}")
    if params["mode"] == "bilinear" and len(shape) != 3:
        raise LayerShapeError(f"Upsample: bilinear needs (N, C, H, W); received {format_shape(shape)}")
    factor = params["scale_factor"]
    return Inferred(((shape[0], *(d * factor for d in shape[1:])),))


def _build_upsample(params: dict[str, Any], in_shapes: list[Shape]) -> Any:
    from torch import nn

    mode = params["mode"]
    if mode == "bilinear":
        return nn.Upsample(scale_factor=params["scale_factor"], mode="bilinear", align_corners=False)
    return nn.Upsample(scale_factor=params["scale_factor"], mode="nearest")


def _code_upsample(params: dict[str, Any], in_shapes: list[Shape]) -> str:
    if params["mode"] == "bilinear":
        return code_call("nn.Upsample", scale_factor=params["scale_factor"], mode="bilinear", align_corners=False)
    return code_call("nn.Upsample", scale_factor=params["scale_factor"])


def _build_plain(name: str):
    def build(params: dict[str, Any], in_shapes: list[Shape]) -> Any:
        from torch import nn

        return getattr(nn, name)()

    return build


def _build_reshape(params: dict[str, Any], in_shapes: list[Shape]) -> Any:
    from dlstudio.core.layers.modules import Reshape

    return Reshape(_infer_reshape(in_shapes, params).outputs[0])


def _code_reshape(names: list[str], params: dict[str, Any], in_shapes: list[Shape]) -> str:
    (name,) = names
    target = _infer_reshape(in_shapes, params).outputs[0]
    return f"{name}.reshape({name}.shape[0], {', '.join(str(d) for d in target)})"


def _code_plain(name: str) -> LayerCode:
    return LayerCode(module=lambda params, in_shapes: f"nn.{name}()")


FLATTEN = LayerSpec(
    type_id="Flatten", display_name="Flatten", category="Shape",
    help=("Lays each sample out as one long vector: (N, C, H, W) becomes (N, C*H*W). Put it between the "
          "conv/pooling part of a network and its Linear layers."),
    params=(), infer=_infer_flatten, build=_build_plain("Flatten"), id_stem="flatten",
    code=_code_plain("Flatten"),
)

RESHAPE = LayerSpec(
    type_id="Reshape", display_name="Reshape", category="Shape",
    help=("Gives each sample a new shape with the same number of values, e.g. a 784-vector back into "
          "1 x 28 x 28. One dimension may be -1: it takes whatever size is left."),
    params=(ParamSpec("shape", INTS, [-1], "Target shape of one sample, without the batch.",
                      min=1, max=10_000_000, allow_minus_one=True),),
    infer=_infer_reshape, build=_build_reshape, key_params=("shape",), id_stem="reshape",
    code=LayerCode(inline=_code_reshape),
)

UPSAMPLE = LayerSpec(
    type_id="Upsample", display_name="Upsample", category="Shape",
    help=("Enlarges feature maps by a whole factor, by repeating pixels (nearest) or interpolating "
          "(bilinear). A parameter-free alternative to ConvTranspose2d in decoders."),
    params=(ParamSpec("scale_factor", INT, 2, "How many times larger each side gets.", min=1, max=64),
            ParamSpec("mode", CHOICE, "nearest", "How new pixels are filled in.", choices=("nearest", "bilinear"))),
    infer=_infer_upsample, build=_build_upsample, key_params=("scale_factor", "mode"), id_stem="upsample",
    code=LayerCode(module=_code_upsample),
)

IDENTITY = LayerSpec(
    type_id="Identity", display_name="Identity", category="Shape",
    help=("Passes its input through unchanged. Useful as a placeholder while sketching, or as a named "
          "tap point to look at a tensor."),
    params=(), infer=lambda in_shapes, params: Inferred((in_shapes[0],)), build=_build_plain("Identity"),
    id_stem="identity", code=_code_plain("Identity"),
)



def _infer_permute(in_shapes: list[Shape], params: dict[str, Any]) -> Inferred:
    (shape,) = in_shapes
    dims = list(params["dims"])
    rank = len(shape)
    if sorted(dims) != list(range(1, rank + 1)):
        every = ", ".join(str(d) for d in range(1, rank + 1))
        raise LayerShapeError(f"Permute: dims={dims} must list each of {every} once (the batch, 0, stays first) "
                              f"for its input {format_shape(shape)}")
    return Inferred((tuple(shape[d - 1] for d in dims),))


def _build_permute(params: dict[str, Any], in_shapes: list[Shape]) -> Any:
    from dlstudio.core.layers.modules import Permute

    return Permute(tuple(params["dims"]))


def _code_permute(names: list[str], params: dict[str, Any], in_shapes: list[Shape]) -> str:
    (name,) = names
    return f"{name}.permute(0, {', '.join(str(d) for d in params['dims'])})"


def _infer_channel_shuffle(in_shapes: list[Shape], params: dict[str, Any]) -> Inferred:
    (shape,) = in_shapes
    if len(shape) < 2:
        raise LayerShapeError(f"ChannelShuffle expects (N, C, H, W) or (N, C, L); received {format_shape(shape)}")
    channels, groups = shape[0], params["groups"]
    if channels % groups:
        divisors = [g for g in range(min(groups, channels), 0, -1) if channels % g == 0]
        raise LayerShapeError(
            f"ChannelShuffle: groups={groups} does not divide the {channels} input channels of {format_shape(shape)}",
            Fix("set_param", f"Set groups to {divisors[0]}", param="groups", value=divisors[0]),
        )
    return Inferred((shape,))


def _build_channel_shuffle(params: dict[str, Any], in_shapes: list[Shape]) -> Any:
    from torch import nn

    return nn.ChannelShuffle(params["groups"])


def _slice_end(shape: Shape, params: dict[str, Any]) -> int:
    """Check dim, start and end against ``shape``; the end index (auto: the size of that dimension)."""
    dim, start = params["dim"], params["start"]
    if dim > len(shape):
        raise LayerShapeError(f"Slice: dim={dim} is not a dimension of {format_shape(shape)} "
                              f"(use 1 to {len(shape)}; the batch is 0)")
    size = shape[dim - 1]
    end = size if params["end"] is None else params["end"]
    if end > size:
        raise LayerShapeError(f"Slice: end={end} is past the {size} entries of dimension {dim} of "
                              f"{format_shape(shape)}", Fix("set_param", "Set end to auto", param="end", value=None))
    if start >= end:
        raise LayerShapeError(f"Slice: start={start} must be less than end={end} (dimension {dim} of "
                              f"{format_shape(shape)} has {size} entries)")
    return end


def _infer_slice(in_shapes: list[Shape], params: dict[str, Any]) -> Inferred:
    (shape,) = in_shapes
    end = _slice_end(shape, params)
    out = list(shape)
    out[params["dim"] - 1] = end - params["start"]
    return Inferred((tuple(out),))


def _build_slice(params: dict[str, Any], in_shapes: list[Shape]) -> Any:
    from dlstudio.core.layers.modules import Slice

    return Slice(params["dim"], params["start"], _slice_end(in_shapes[0], params))


def _code_slice(names: list[str], params: dict[str, Any], in_shapes: list[Shape]) -> str:
    (name,) = names
    end = _slice_end(in_shapes[0], params)
    return f"{name}[{':, ' * params['dim']}{params['start'] or ''}:{end}]"


_SIDES = ("left", "right", "top", "bottom")


def _infer_zero_pad(in_shapes: list[Shape], params: dict[str, Any]) -> Inferred:
    (shape,) = in_shapes
    expect_rank("ZeroPad2d", shape, 3, "(N, C, H, W)")
    channels, height, width = shape
    return Inferred(((channels, height + params["top"] + params["bottom"], width + params["left"] + params["right"]),))


def _build_zero_pad(params: dict[str, Any], in_shapes: list[Shape]) -> Any:
    from torch import nn

    return nn.ZeroPad2d(tuple(params[side] for side in _SIDES))


def _code_zero_pad(params: dict[str, Any], in_shapes: list[Shape]) -> str:
    sides = tuple(params[side] for side in _SIDES)
    return code_call("nn.ZeroPad2d", sides[0] if len(set(sides)) == 1 else sides)


PERMUTE = LayerSpec(
    type_id="Permute", display_name="Permute", category="Shape",
    help=("Reorders the dimensions of each sample, e.g. dims 2, 3, 1 turns (N, C, H, W) into (N, H, W, C) "
          "(channels last). The batch stays first; dims count it as 0."),
    params=(ParamSpec("dims", INTS, [2, 3, 1], "The new order of the dimensions after the batch, counting the "
                                               "batch as 0: each of 1 to the number of dimensions once.",
                      min=1, max=4),),
    infer=_infer_permute, build=_build_permute, key_params=("dims",), id_stem="permute",
    code=LayerCode(inline=_code_permute),
)

CHANNEL_SHUFFLE = LayerSpec(
    type_id="ChannelShuffle", display_name="ChannelShuffle", category="Shape",
    help=("Splits the channels into groups and interleaves them, so the next grouped convolution sees "
          "channels from every group. ShuffleNet uses it; the channel count must divide by the groups."),
    params=(ParamSpec("groups", INT, 2, "Number of channel groups to interleave.", min=1, max=100_000),),
    infer=_infer_channel_shuffle, build=_build_channel_shuffle, key_params=("groups",), id_stem="shuffle",
    code=LayerCode(module=lambda params, in_shapes: code_call("nn.ChannelShuffle", params["groups"])),
)

SLICE = LayerSpec(
    type_id="Slice", display_name="Slice", category="Shape",
    help=("Keeps a range of one dimension, e.g. channels 0 to 57 of 116: two Slices split a tensor in two "
          "(ShuffleNet does this). End is excluded; auto keeps everything to the end."),
    params=(ParamSpec("dim", INT, 1, "Dimension to cut, counting the batch as 0 (1 = channels or features).",
                      min=1, max=4),
            ParamSpec("start", INT, 0, "First index kept (counting from 0).", min=0, max=10_000_000),
            ParamSpec("end", INT, None, "Index after the last one kept; auto keeps everything to the end.",
                      min=1, max=10_000_000, auto=True)),
    infer=_infer_slice, build=_build_slice, key_params=("start", "end"), id_stem="slice",
    code=LayerCode(inline=_code_slice),
)

ZERO_PAD2D = LayerSpec(
    type_id="ZeroPad2d", display_name="ZeroPad2d", category="Shape",
    help=("Adds rows and columns of zeros around each feature map, a chosen number on each side. Use it "
          "when a network needs uneven padding, which a convolution's own padding cannot do."),
    params=tuple(ParamSpec(side, INT, 1, f"Columns of zeros added on the {side}." if side in ("left", "right")
                           else f"Rows of zeros added at the {side}.", min=0, max=10_000) for side in _SIDES),
    infer=_infer_zero_pad, build=_build_zero_pad, id_stem="pad",
    code=LayerCode(module=_code_zero_pad),
)

SPECS = (FLATTEN, RESHAPE, UPSAMPLE, IDENTITY, PERMUTE, CHANNEL_SHUFFLE, SLICE, ZERO_PAD2D)

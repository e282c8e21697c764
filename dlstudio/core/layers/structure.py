"""Layers that only rearrange or resize tensors: Flatten, Reshape, Upsample, Identity."""

from __future__ import annotations

from typing import Any

from dlstudio.core.errors import LayerShapeError
from dlstudio.core.layers.arith import prod
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

SPECS = (FLATTEN, RESHAPE, UPSAMPLE, IDENTITY)

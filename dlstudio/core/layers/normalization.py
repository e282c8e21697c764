"""Normalization and dropout layers."""

from __future__ import annotations

from typing import Any

from dlstudio.core.errors import Fix, LayerShapeError
from dlstudio.core.layers.arith import check_auto, expect_rank, prod
from dlstudio.core.layers.spec import (
    BOOL, CHOICE, FLOAT, INT, Inferred, LayerCode, LayerSpec, ParamSpec, Shape, code_call, format_shape,
)

_EPS = ParamSpec("eps", FLOAT, 1e-5, "Small number added to the variance to avoid dividing by zero.",
                 min=0.0, max=1.0)
_MOMENTUM = ParamSpec("momentum", FLOAT, 0.1, "How fast the running mean and variance follow new batches.",
                      min=0.0, max=1.0)
_AFFINE = ParamSpec("affine", BOOL, True, "Learn a scale and shift per channel after normalizing.")
_NUM_FEATURES = ParamSpec("num_features", INT, None, "Channels; leave on auto to take it from the input.",
                          min=1, max=1_000_000, auto=True)


def _infer_batchnorm1d(in_shapes: list[Shape], params: dict[str, Any]) -> Inferred:
    (shape,) = in_shapes
    if len(shape) not in (1, 2):
        raise LayerShapeError(
            f"BatchNorm1d expects (N, features) or (N, C, L); received {format_shape(shape)}"
            + (": use BatchNorm2d for images" if len(shape) == 3 else ""))
    check_auto("BatchNorm1d", params, "num_features", shape[0], "channels")
    return Inferred((shape,), 2 * shape[0] if params["affine"] else 0)


def _infer_batchnorm2d(in_shapes: list[Shape], params: dict[str, Any]) -> Inferred:
    (shape,) = in_shapes
    expect_rank("BatchNorm2d", shape, 3, "(N, C, H, W)")
    check_auto("BatchNorm2d", params, "num_features", shape[0], "channels")
    return Inferred((shape,), 2 * shape[0] if params["affine"] else 0)


def _build_batchnorm(dims: int):
    def build(params: dict[str, Any], in_shapes: list[Shape]) -> Any:
        from torch import nn

        cls = nn.BatchNorm1d if dims == 1 else nn.BatchNorm2d
        return cls(in_shapes[0][0], eps=params["eps"], momentum=params["momentum"], affine=params["affine"])

    return build


def _code_batchnorm(dims: int):
    def code(params: dict[str, Any], in_shapes: list[Shape]) -> str:
        return code_call(f"nn.BatchNorm{dims}d", in_shapes[0][0], eps=params["eps"], momentum=params["momentum"],
                         affine=params["affine"], defaults={"eps": 1e-5, "momentum": 0.1, "affine": True})

    return code


def _normalized_shape(shape: Shape, params: dict[str, Any]) -> tuple[int, ...]:
    return tuple(shape) if params["over"] == "all" else (shape[-1],)


def _infer_layernorm(in_shapes: list[Shape], params: dict[str, Any]) -> Inferred:
    (shape,) = in_shapes
    if not shape:
        raise LayerShapeError(f"LayerNorm expects at least (N, features); received {format_shape(shape)}")
    size = prod(_normalized_shape(shape, params))
    return Inferred((shape,), 2 * size if params["elementwise_affine"] else 0)


def _build_layernorm(params: dict[str, Any], in_shapes: list[Shape]) -> Any:
    from torch import nn

    return nn.LayerNorm(_normalized_shape(in_shapes[0], params), eps=params["eps"],
                        elementwise_affine=params["elementwise_affine"])


def _code_layernorm(params: dict[str, Any], in_shapes: list[Shape]) -> str:
    shape = _normalized_shape(in_shapes[0], params)
    return code_call("nn.LayerNorm", shape[0] if len(shape) == 1 else shape, eps=params["eps"],
                     elementwise_affine=params["elementwise_affine"],
                     defaults={"eps": 1e-5, "elementwise_affine": True})


def _infer_groupnorm(in_shapes: list[Shape], params: dict[str, Any]) -> Inferred:
    (shape,) = in_shapes
    if len(shape) < 2:
        raise LayerShapeError(f"GroupNorm expects (N, C, ...) with spatial dimensions; received {format_shape(shape)}")
    channels, groups = shape[0], params["num_groups"]
    if channels % groups:
        divisors = [g for g in range(min(groups, channels), 0, -1) if channels % g == 0]
        raise LayerShapeError(
            f"GroupNorm: num_groups={groups} does not divide the {channels} input channels",
            Fix("set_param", f"Set num_groups to {divisors[0]}", param="num_groups", value=divisors[0]),
        )
    return Inferred((shape,), 2 * channels if params["affine"] else 0)


def _build_groupnorm(params: dict[str, Any], in_shapes: list[Shape]) -> Any:
    from torch import nn

    return nn.GroupNorm(params["num_groups"], in_shapes[0][0], eps=params["eps"], affine=params["affine"])


def _code_groupnorm(params: dict[str, Any], in_shapes: list[Shape]) -> str:
    return code_call("nn.GroupNorm", params["num_groups"], in_shapes[0][0], eps=params["eps"],
                     affine=params["affine"], defaults={"eps": 1e-5, "affine": True})


def _infer_dropout(in_shapes: list[Shape], params: dict[str, Any]) -> Inferred:
    return Inferred((in_shapes[0],))


def _infer_dropout2d(in_shapes: list[Shape], params: dict[str, Any]) -> Inferred:
    (shape,) = in_shapes
    expect_rank("Dropout2d", shape, 3, "(N, C, H, W)")
    return Inferred((shape,))


def _build_dropout(channels: bool):
    def build(params: dict[str, Any], in_shapes: list[Shape]) -> Any:
        from torch import nn

        return (nn.Dropout2d if channels else nn.Dropout)(p=params["p"])

    return build


def _code_dropout(channels: bool):
    def code(params: dict[str, Any], in_shapes: list[Shape]) -> str:
        return code_call("nn.Dropout2d" if channels else "nn.Dropout", p=params["p"], defaults={"p": 0.5})

    return code


_P = ParamSpec("p", FLOAT, 0.5, "Probability of zeroing each element during training.", min=0.0, max=0.99)

BATCHNORM1D = LayerSpec(
    type_id="BatchNorm1d", display_name="BatchNorm1d", category="Normalization",
    help=("Normalizes each feature to zero mean and unit variance over the batch, then rescales it with "
          "learned weights. Steadies and speeds up training of deep MLPs; place it after a Linear layer."),
    params=(_NUM_FEATURES, _EPS, _MOMENTUM, _AFFINE),
    infer=_infer_batchnorm1d, build=_build_batchnorm(1), id_stem="bn1d",
    code=LayerCode(module=_code_batchnorm(1)),
)

BATCHNORM2D = LayerSpec(
    type_id="BatchNorm2d", display_name="BatchNorm2d", category="Normalization",
    help=("Normalizes each channel of the feature maps over the batch and the image, then rescales it with "
          "learned weights. The standard companion of Conv2d in VGG- and ResNet-style networks."),
    params=(_NUM_FEATURES, _EPS, _MOMENTUM, _AFFINE),
    infer=_infer_batchnorm2d, build=_build_batchnorm(2), id_stem="bn",
    code=LayerCode(module=_code_batchnorm(2)),
)

LAYERNORM = LayerSpec(
    type_id="LayerNorm", display_name="LayerNorm", category="Normalization",
    help=("Normalizes each sample on its own (not over the batch), so it behaves the same for any batch "
          "size, including 1. Used in transformers and small-batch training."),
    params=(ParamSpec("over", CHOICE, "all", "Normalize over all dimensions of a sample or only the last.",
                      choices=("all", "last")),
            _EPS, ParamSpec("elementwise_affine", BOOL, True, "Learn a scale and shift per element.")),
    infer=_infer_layernorm, build=_build_layernorm, id_stem="ln",
    code=LayerCode(module=_code_layernorm),
)

GROUPNORM = LayerSpec(
    type_id="GroupNorm", display_name="GroupNorm", category="Normalization",
    help=("Splits the channels into groups and normalizes each group within each sample. Works with small "
          "batches where BatchNorm's statistics get noisy; the channel count must divide by the groups."),
    params=(ParamSpec("num_groups", INT, 8, "Number of channel groups.", min=1, max=100_000), _EPS, _AFFINE),
    infer=_infer_groupnorm, build=_build_groupnorm, key_params=("num_groups",), id_stem="gn",
    code=LayerCode(module=_code_groupnorm),
)

DROPOUT = LayerSpec(
    type_id="Dropout", display_name="Dropout", category="Regularization",
    help=("During training, zeroes each value with probability p and scales the rest up, so the network "
          "cannot rely on any single neuron: a cheap guard against overfitting. Does nothing at inference."),
    params=(_P,), infer=_infer_dropout, build=_build_dropout(False), key_params=("p",), id_stem="dropout",
    code=LayerCode(module=_code_dropout(False)),
)

DROPOUT2D = LayerSpec(
    type_id="Dropout2d", display_name="Dropout2d", category="Regularization",
    help=("During training, zeroes whole feature maps (channels) with probability p. Suits conv layers, "
          "whose neighbouring pixels are too correlated for element-wise dropout to help."),
    params=(_P,), infer=_infer_dropout2d, build=_build_dropout(True), key_params=("p",), id_stem="dropout2d",
    code=LayerCode(module=_code_dropout(True)),
)



def _build_stochastic_depth(params: dict[str, Any], in_shapes: list[Shape]) -> Any:
    from dlstudio.core.layers.modules import StochasticDepth

    return StochasticDepth(params["p"], params["mode"])


def _code_stochastic_depth(names: list[str], params: dict[str, Any], in_shapes: list[Shape]) -> str:
    # torch has no StochasticDepth module (torchvision does): the same rule written with dropout on a mask of
    # ones, one value per sample ("row") or one for the batch, so the file still imports only torch.
    (name,) = names
    if params["p"] == 0.0:
        return name
    rows = f"{name}.shape[0]" if params["mode"] == "row" else "1"
    mask = f"{name}.new_ones({', '.join([rows] + ['1'] * len(in_shapes[0]))})"
    return f"{name} * nn.functional.dropout({mask}, p={params['p']!r}, training=self.training)"


STOCHASTIC_DEPTH = LayerSpec(
    type_id="StochasticDepth", display_name="StochasticDepth", category="Regularization",
    help=("During training, drops a residual branch's whole output for a random sample with probability p "
          "(so the skip connection alone carries it). Makes very deep networks train better; does nothing "
          "at inference. EfficientNet and ConvNeXt put it before the Add."),
    params=(ParamSpec("p", FLOAT, 0.1, "Probability of dropping the branch during training.", min=0.0, max=0.99),
            ParamSpec("mode", CHOICE, "row", "Drop per sample (row) or for the whole batch at once (batch).",
                      choices=("row", "batch"))),
    infer=_infer_dropout, build=_build_stochastic_depth, key_params=("p",), id_stem="stochdepth",
    code=LayerCode(inline=_code_stochastic_depth),
)

SPECS = (BATCHNORM1D, BATCHNORM2D, LAYERNORM, GROUPNORM, DROPOUT, DROPOUT2D, STOCHASTIC_DEPTH)

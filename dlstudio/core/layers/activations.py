"""Activation functions: element-wise non-linearities (and Softmax)."""

from __future__ import annotations

from typing import Any

from dlstudio.core.errors import Fix, LayerShapeError
from dlstudio.core.layers.spec import (
    CHOICE, FLOAT, INT, Inferred, LayerCode, LayerSpec, ParamSpec, Shape, code_call, format_shape,
)


def _infer_same(in_shapes: list[Shape], params: dict[str, Any]) -> Inferred:
    return Inferred((in_shapes[0],))


def _activation(type_id: str, help_text: str, params: tuple[ParamSpec, ...] = (),
                make: Any = None, key_params: tuple[str, ...] = (),
                torch_defaults: dict[str, Any] | None = None) -> LayerSpec:
    """An activation whose nn module is named like its type id and takes its parameters as keywords.

    ``torch_defaults`` are PyTorch's defaults of those keywords, left out of exported code.
    """

    def build(values: dict[str, Any], in_shapes: list[Shape]) -> Any:
        from torch import nn

        cls = getattr(nn, type_id)
        return make(cls, values) if make else cls()

    def code(values: dict[str, Any], in_shapes: list[Shape]) -> str:
        return code_call(f"nn.{type_id}", defaults=torch_defaults, **values)

    return LayerSpec(type_id=type_id, display_name=type_id, category="Activation", help=help_text,
                     params=params, infer=_infer_same, build=build, key_params=key_params,
                     id_stem=type_id.lower(), code=LayerCode(module=code))


def _infer_softmax(in_shapes: list[Shape], params: dict[str, Any]) -> Inferred:
    (shape,) = in_shapes
    rank = len(shape) + 1  # with the batch dimension
    dim = params["dim"]
    if not -rank <= dim < rank or dim % rank == 0:
        raise LayerShapeError(
            f"Softmax: dim={dim} is not a feature dimension of {format_shape(shape)} (use 1 to {rank - 1})")
    return Inferred((shape,))


RELU = _activation("ReLU", "max(0, x): passes positive values, zeroes negative ones. The default "
                           "non-linearity of modern networks: cheap, and its gradient does not vanish for x > 0.")
LEAKY_RELU = _activation(
    "LeakyReLU", "Like ReLU but lets a small slope through for negative inputs, so units never go "
                 "completely silent ('dead ReLUs').",
    (ParamSpec("negative_slope", FLOAT, 0.01, "Slope for negative inputs.", min=0.0, max=1.0),),
    lambda cls, v: cls(v["negative_slope"]), ("negative_slope",), {"negative_slope": 0.01})
GELU = _activation(
    "GELU", "A smooth ReLU that weighs each input by how likely it is to be positive. Standard in transformers.",
    (ParamSpec("approximate", CHOICE, "none", "Exact, or the faster tanh approximation.",
               choices=("none", "tanh")),),
    lambda cls, v: cls(approximate=v["approximate"]), torch_defaults={"approximate": "none"})
SILU = _activation("SiLU", "x * sigmoid(x) (also called Swish): smooth and slightly non-monotonic; "
                           "used in EfficientNet and many recent convnets.")
SIGMOID = _activation("Sigmoid", "Squashes any value into (0, 1). Historic hidden activation (its gradient "
                                 "vanishes for large inputs); today used for gates and probabilities.")
TANH = _activation("Tanh", "Squashes any value into (-1, 1), centred on zero. Classic hidden activation of "
                           "early networks and recurrent cells.")

SOFTMAX = LayerSpec(
    type_id="Softmax", display_name="Softmax", category="Activation",
    help=("Turns a vector of scores into probabilities that sum to 1. Not needed before a classification "
          "Output (cross-entropy applies it internally, and more stably); use it when you want the "
          "probabilities themselves inside the network."),
    params=(ParamSpec("dim", INT, 1, "Dimension that sums to 1, counting the batch as 0.", min=-4, max=4),),
    infer=_infer_softmax,
    build=lambda values, in_shapes: __import__("torch").nn.Softmax(dim=values["dim"]),
    key_params=("dim",), id_stem="softmax",
    code=LayerCode(module=lambda values, in_shapes: code_call("nn.Softmax", dim=values["dim"])),
)

RELU6 = _activation(
    "ReLU6", "Like ReLU, but also caps the output at 6: min(max(0, x), 6). The cap keeps values small, "
             "which suits phones and low-precision arithmetic; MobileNet uses it.")
HARDSWISH = _activation(
    "Hardswish", "A cheap, piecewise-linear stand-in for SiLU/Swish: 0 below -3, x above 3, a smooth bend "
                 "in between. Used in MobileNetV3.")
HARDSIGMOID = _activation(
    "Hardsigmoid", "A cheap, piecewise-linear stand-in for Sigmoid: 0 below -3, 1 above 3, a straight line "
                   "in between. MobileNetV3 uses it to gate channels in its squeeze-and-excitation blocks.")
ELU = _activation(
    "ELU", "Like ReLU for positive inputs, but negative inputs curve smoothly down to -alpha instead of "
           "stopping at 0, so the average output stays closer to zero.",
    (ParamSpec("alpha", FLOAT, 1.0, "The value that very negative inputs approach (as -alpha).",
               min=0.0, max=100.0),),
    lambda cls, v: cls(alpha=v["alpha"]), ("alpha",), {"alpha": 1.0})
MISH = _activation(
    "Mish", "x * tanh(softplus(x)): a smooth, slightly non-monotonic curve much like SiLU/Swish; some "
            "detection networks (YOLOv4) use it.")


def _prelu_count(shape: Shape, params: dict[str, Any]) -> int:
    """How many slopes PReLU learns: 1, or one per channel (the first dimension after the batch)."""
    wanted, channels = params["num_parameters"], shape[0]
    if wanted is None:
        return channels
    if wanted not in (1, channels):
        raise LayerShapeError(
            f"PReLU has num_parameters={wanted} but its input {format_shape(shape)} has {channels} channels "
            f"(use 1 for one shared slope, or {channels} for one per channel)",
            Fix("set_param", f"Set num_parameters to {channels}", param="num_parameters", value=channels))
    return wanted


def _infer_prelu(in_shapes: list[Shape], params: dict[str, Any]) -> Inferred:
    (shape,) = in_shapes
    return Inferred((shape,), _prelu_count(shape, params))


def _build_prelu(params: dict[str, Any], in_shapes: list[Shape]) -> Any:
    from torch import nn

    return nn.PReLU(_prelu_count(in_shapes[0], params), init=params["init"])


def _code_prelu(params: dict[str, Any], in_shapes: list[Shape]) -> str:
    return code_call("nn.PReLU", num_parameters=_prelu_count(in_shapes[0], params), init=params["init"],
                     defaults={"num_parameters": 1, "init": 0.25})


PRELU = LayerSpec(
    type_id="PReLU", display_name="PReLU", category="Activation",
    help=("Like LeakyReLU, but the slope for negative inputs is learned during training: one slope shared "
          "by all channels, or one per channel."),
    params=(ParamSpec("num_parameters", INT, 1, "Number of learned slopes: 1 (shared) or the number of "
                                                "channels; auto takes the channels from the input.",
                      min=1, max=100_000, auto=True),
            ParamSpec("init", FLOAT, 0.25, "Starting value of the learned slope(s).", min=0.0, max=1.0)),
    infer=_infer_prelu, build=_build_prelu, key_params=("num_parameters",), id_stem="prelu",
    code=LayerCode(module=_code_prelu),
)

# Palette order: each new variant beside the activation it resembles.
SPECS = (RELU, RELU6, LEAKY_RELU, PRELU, ELU, GELU, SILU, MISH, HARDSWISH, SIGMOID, HARDSIGMOID, TANH, SOFTMAX)

"""Fully connected layers."""

from __future__ import annotations

from typing import Any

from dlstudio.core.layers.arith import check_auto, expect_rank
from dlstudio.core.layers.spec import BOOL, INT, Inferred, LayerCode, LayerSpec, ParamSpec, Shape, code_call


def _infer_linear(in_shapes: list[Shape], params: dict[str, Any]) -> Inferred:
    (shape,) = in_shapes
    expect_rank("Linear", shape, 1, "(N, features)")
    check_auto("Linear", params, "in_features", shape[0], "features")
    n_in, n_out = shape[0], params["out_features"]
    weights = n_in * n_out + (n_out if params["bias"] else 0)
    return Inferred(((n_out,),), weights, n_in * n_out)


def _build_linear(params: dict[str, Any], in_shapes: list[Shape]) -> Any:
    from torch import nn

    return nn.Linear(in_shapes[0][0], params["out_features"], bias=params["bias"])


def _code_linear(params: dict[str, Any], in_shapes: list[Shape]) -> str:
    return code_call("nn.Linear", in_shapes[0][0], params["out_features"], bias=params["bias"],
                     defaults={"bias": True})


LINEAR = LayerSpec(
    type_id="Linear",
    display_name="Linear",
    category="Dense",
    help=(
        "A fully connected layer: every output is a weighted sum of all inputs plus a bias. "
        "The classic building block of a multilayer perceptron and the usual last layer of a "
        "classifier (one output per class). Needs a flat input: put a Flatten after conv layers."
    ),
    params=(
        ParamSpec("in_features", INT, None, "Inputs per sample; leave on auto to take it from the input.",
                  min=1, max=10_000_000, auto=True),
        ParamSpec("out_features", INT, 64, "Number of outputs (neurons).", min=1, max=1_000_000),
        ParamSpec("bias", BOOL, True, "Add a learned bias to each output."),
    ),
    infer=_infer_linear,
    build=_build_linear,
    code=LayerCode(module=_code_linear),
    key_params=("out_features",),
    id_stem="linear",
)

SPECS = (LINEAR,)

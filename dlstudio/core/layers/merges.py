"""Merge nodes: where branches of the graph join (skip connections, inception-style concatenation)."""

from __future__ import annotations

from typing import Any

from dlstudio.core.errors import LayerShapeError
from dlstudio.core.layers.spec import INT, Inferred, LayerCode, LayerSpec, ParamSpec, Shape, format_shape

_INPUTS = ParamSpec("inputs", INT, 2, "Number of inputs to merge.", min=2, max=8)


def _broadcast(layer: str, in_shapes: list[Shape]) -> Shape:
    """PyTorch broadcasting of the per-sample shapes (the batch dimension always matches)."""
    rank = max(len(s) for s in in_shapes)
    result = []
    for axis in range(-rank, 0):
        sizes = {s[axis] for s in in_shapes if len(s) >= -axis} - {1}
        if len(sizes) > 1:
            quoted = " and ".join(format_shape(s) for s in in_shapes)
            raise LayerShapeError(f"{layer} needs inputs of the same shape; received {quoted}")
        result.append(sizes.pop() if sizes else 1)
    return tuple(result)


def _infer_add(in_shapes: list[Shape], params: dict[str, Any]) -> Inferred:
    return Inferred((_broadcast("Add", in_shapes),))


def _infer_multiply(in_shapes: list[Shape], params: dict[str, Any]) -> Inferred:
    return Inferred((_broadcast("Multiply", in_shapes),))


def _infer_concat(in_shapes: list[Shape], params: dict[str, Any]) -> Inferred:
    dim = params["dim"]
    ranks = {len(s) for s in in_shapes}
    quoted = " and ".join(format_shape(s) for s in in_shapes)
    if len(ranks) != 1:
        raise LayerShapeError(f"Concat needs inputs with the same number of dimensions; received {quoted}")
    rank = ranks.pop() + 1
    if not -rank <= dim < rank or dim % rank == 0:
        raise LayerShapeError(f"Concat: dim={dim} is not a feature dimension of {quoted} (use 1 to {rank - 1})")
    axis = dim % rank - 1  # index into the per-sample shape
    for i in range(rank - 1):
        if i != axis and len({s[i] for s in in_shapes}) > 1:
            raise LayerShapeError(f"Concat along dim {dim} needs all other dimensions equal; received {quoted}")
    out = list(in_shapes[0])
    out[axis] = sum(s[axis] for s in in_shapes)
    return Inferred((tuple(out),))


def _build(name: str):
    def build(params: dict[str, Any], in_shapes: list[Shape]) -> Any:
        from dlstudio.core.layers import modules

        if name == "Concat":
            return modules.Concat(params["dim"])
        return getattr(modules, name)()

    return build


def _code_operator(operator: str) -> LayerCode:
    return LayerCode(inline=lambda names, params, in_shapes: f" {operator} ".join(names))


def _code_concat(names: list[str], params: dict[str, Any], in_shapes: list[Shape]) -> str:
    return f"torch.cat([{', '.join(names)}], dim={params['dim']})"


ADD = LayerSpec(
    type_id="Add", display_name="Add", category="Merge",
    help=("Adds its inputs element by element. The join of a residual (skip) connection: a block learns "
          "a correction to its input instead of a whole new signal, which lets very deep networks train. "
          "Inputs must have the same shape."),
    params=(_INPUTS,), infer=_infer_add, build=_build("Add"), variadic_param="inputs", id_stem="add",
    code=_code_operator("+"),
)

MULTIPLY = LayerSpec(
    type_id="Multiply", display_name="Multiply", category="Merge",
    help=("Multiplies its inputs element by element (shapes broadcast, so (C, 1, 1) scales each channel "
          "of (C, H, W)). Used for gating and attention, e.g. squeeze-and-excitation blocks."),
    params=(_INPUTS,), infer=_infer_multiply, build=_build("Multiply"), variadic_param="inputs",
    id_stem="mul", code=_code_operator("*"),
)

CONCAT = LayerSpec(
    type_id="Concat", display_name="Concat", category="Merge",
    help=("Stacks its inputs along one dimension (by default the channels), keeping everything each branch "
          "computed. Used in Inception and DenseNet-style blocks and in U-Net skips."),
    params=(_INPUTS, ParamSpec("dim", INT, 1, "Dimension to join along, counting the batch as 0 "
                                              "(1 = channels or features).", min=-4, max=4)),
    infer=_infer_concat, build=_build("Concat"), variadic_param="inputs", key_params=("dim",),
    id_stem="concat", code=LayerCode(inline=_code_concat),
)

SPECS = (ADD, CONCAT, MULTIPLY)

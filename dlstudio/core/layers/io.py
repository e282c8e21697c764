"""Input and Output nodes: where data enters the graph and what task it ends in."""

from __future__ import annotations

from typing import Any

from dlstudio.core.errors import Fix, LayerShapeError
from dlstudio.core.layers.spec import CHOICE, INT, INTS, Inferred, LayerSpec, ParamSpec, Shape, format_shape

CLASSIFICATION = "classification"
RECONSTRUCTION = "reconstruction"


def _infer_input(in_shapes: list[Shape], params: dict[str, Any]) -> Inferred:
    return Inferred((tuple(params["shape"]),))


def _build_identity(params: dict[str, Any], in_shapes: list[Shape]) -> Any:
    from torch import nn

    return nn.Identity()


def _infer_output(in_shapes: list[Shape], params: dict[str, Any]) -> Inferred:
    (shape,) = in_shapes
    if params["task"] == CLASSIFICATION:
        classes = params["classes"]
        if len(shape) != 1:
            raise LayerShapeError(
                f"Output (classification) expects (N, {classes}) class scores; received {format_shape(shape)}: "
                "insert a Flatten and a Linear before it",
                Fix("insert_before", "Insert a Flatten before it", layer_type="Flatten", port="in"),
            )
        if shape[0] != classes:
            # The repair is to the Linear that makes the scores, not a second Linear after it: the shape
            # engine finds that Linear in the graph (or, without one, inserts it).
            raise LayerShapeError(
                f"Output (classification) expects (N, {classes}) class scores; received {format_shape(shape)}",
                Fix("set_source_param", f"Set the Linear's out_features to {classes}", layer_type="Linear",
                    port="in", param="out_features", value=classes, params={"out_features": classes}),
            )
    return Inferred(())


INPUT = LayerSpec(
    type_id="Input",
    display_name="Input",
    category="Input & Output",
    help=(
        "Where samples enter the network. Give the shape of one sample without the batch: "
        "channels, height and width for an image (1 x 28 x 28 for a grey digit, 3 x 32 x 32 for a "
        "small colour photo), channels and length for a signal, or just the number of features for "
        "a row of a table."
    ),
    params=(
        ParamSpec("shape", INTS, [1, 8, 8], "Shape of one sample: [C, H, W], [C, L] or [features].",
                  min=1, max=100_000, min_len=1, max_len=3),
    ),
    infer=_infer_input,
    build=_build_identity,
    inputs=(),
    key_params=("shape",),
    id_stem="input",
    role="input",
)

OUTPUT = LayerSpec(
    type_id="Output",
    display_name="Output",
    category="Input & Output",
    help=(
        "The end of the network, and the task it is trained for. Classification: the node before "
        "it must give one score per class; training uses cross-entropy and predictions are the "
        "highest score. Reconstruction: the network should give back its input (an autoencoder); "
        "training uses the mean squared error between output and input."
    ),
    params=(
        ParamSpec("task", CHOICE, CLASSIFICATION, "What the network learns to do.",
                  choices=(CLASSIFICATION, RECONSTRUCTION)),
        ParamSpec("classes", INT, 10, "Number of classes (classification only).", min=2, max=100_000),
    ),
    infer=_infer_output,
    build=_build_identity,
    outputs=(),
    key_params=("task", "classes"),
    id_stem="output",
    role="output",
)

SPECS = (INPUT, OUTPUT)

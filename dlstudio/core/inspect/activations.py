"""What a node outputs for an input: one node (the forward stops there) or every node at once.

Forward hooks on the GraphModule's submodules, which are named by node id,
capture outputs. For one node the hook ends the forward pass early, which is
faster and lets the part of the graph before a Flatten run on inputs of
another size (DeepDream's smaller octaves).
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager

import numpy as np
import torch

from dlstudio.core.inspect.errors import InspectError


class _Reached(Exception):  # noqa: N818 - control flow, never escapes this module
    def __init__(self, output: torch.Tensor) -> None:
        super().__init__()
        self.output = output


@contextmanager
def evaluating(model: torch.nn.Module) -> Iterator[torch.nn.Module]:
    """Eval mode (dropout off, batch norm running statistics) for the block; the previous mode comes back after."""
    was_training = model.training
    model.eval()
    try:
        yield model
    finally:
        model.train(was_training)


def layer_name(model: torch.nn.Module, node_id: str) -> str:
    """``node_id`` as the person calls it, quoted for a message; ids never reach a message (design.md §12)."""
    name = (getattr(model, "node_names", None) or {}).get(node_id)
    return f"'{name}'" if name else "that layer"


def node_ids(model: torch.nn.Module) -> list[str]:
    """Every node whose output can be inspected, in the order the forward pass computes them."""
    return [*model.input_ids, *(step.node_id for step in model.steps), *model.output_ids]


def as_batch(model: torch.nn.Module, x: torch.Tensor) -> torch.Tensor:
    """``x`` as a batch on the model's device: a single sample gets a batch dimension."""
    sample_ndim = len(model.input_shapes[model.input_ids[0]])
    batch = x.unsqueeze(0) if x.ndim == sample_ndim else x
    device = next(iter(model.parameters()), torch.empty(0)).device
    return batch.to(device)


def node_output(model: torch.nn.Module, x: torch.Tensor, node_id: str) -> torch.Tensor:
    """The output of ``node_id`` for batch ``x``, running the graph only as far as that node.

    Keeps the autograd graph (for saliency and dreams); wrap in ``torch.no_grad()`` when it is not needed.
    """
    if node_id in model.input_ids:
        return x
    if node_id in model.output_ids:
        return model(x)
    if node_id not in model._modules:
        raise InspectError("the model has no such layer (was it added after the model was trained?)")

    def stop(module: torch.nn.Module, inputs: tuple[torch.Tensor, ...], output: torch.Tensor) -> None:
        raise _Reached(output)

    handle = model.get_submodule(node_id).register_forward_hook(stop)
    try:
        model(x)
    except _Reached as reached:
        return reached.output
    finally:
        handle.remove()
    raise InspectError(f"{layer_name(model, node_id)} is not on the path from the input to the output")


def feature_maps(model: torch.nn.Module, x: torch.Tensor, node_id: str) -> np.ndarray:
    """One sample's activations at ``node_id``: (C, H, W) for image layers, (F,) for dense ones."""
    with evaluating(model), torch.no_grad():
        output = node_output(model, as_batch(model, x)[:1], node_id)
    return output[0].detach().float().cpu().numpy()


def all_feature_maps(model: torch.nn.Module, x: torch.Tensor) -> dict[str, np.ndarray]:
    """One sample's activations at every node (in forward order), from a single forward pass."""
    captured: dict[str, torch.Tensor] = {}
    handles = []
    for step in model.steps:
        def keep(module: torch.nn.Module, inputs: tuple[torch.Tensor, ...], output: torch.Tensor,
                 node_id: str = step.node_id) -> None:
            captured[node_id] = output
        handles.append(model.get_submodule(step.node_id).register_forward_hook(keep))
    batch = as_batch(model, x)[:1]
    try:
        with evaluating(model), torch.no_grad():
            final = model(batch)
    finally:
        for handle in handles:
            handle.remove()
    result = {node_id: batch[0].float().cpu().numpy() for node_id in model.input_ids}
    result.update({node_id: output[0].float().cpu().numpy() for node_id, output in captured.items()})
    if len(model.output_ids) == 1:
        result[model.output_ids[0]] = final[0].float().cpu().numpy()
    return result


def spatial_nodes(model: torch.nn.Module, x: torch.Tensor) -> list[str]:
    """Nodes whose output is an image with more than one pixel (N, C, H, W), in forward order."""
    maps = all_feature_maps(model, x)
    return [node_id for node_id, value in maps.items()
            if value.ndim == 3 and value.shape[1] * value.shape[2] > 1 and node_id not in model.input_ids]

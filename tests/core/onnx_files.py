"""ONNX files the import tests write themselves: a module exported as torch's TorchScript-based exporter does."""

from __future__ import annotations

import warnings
from pathlib import Path

import torch
from torch import nn


def export_onnx(model: nn.Module, path: Path, shape: tuple[int, ...]) -> Path:
    """``model`` (in eval mode) as opset-17 ONNX at ``path``: input ``input`` of one sample of ``shape`` with a
    dynamic batch, output ``scores``, constants left unfolded (as a file from elsewhere may have them)."""
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # the TorchScript exporter warns that it is deprecated
        torch.onnx.export(model.eval(), (torch.randn(1, *shape),), str(path), dynamo=False, opset_version=17,
                          input_names=["input"], output_names=["scores"],
                          dynamic_axes={"input": {0: "N"}, "scores": {0: "N"}},
                          training=torch.onnx.TrainingMode.PRESERVE, do_constant_folding=False)
    return path

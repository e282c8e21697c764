"""Exporters (torch): PyTorch code, TorchScript, ONNX, safetensors weights and a standalone training script.

Each export is verified when it is written (see :mod:`dlstudio.core.export.verify`); a
``preprocess.json`` (:mod:`dlstudio.core.export.preprocess_info`) says how to feed it.
Import the exporter you need from its module; this package imports nothing heavy by itself.
"""

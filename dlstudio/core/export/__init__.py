"""Exporters (torch): standalone PyTorch code; TorchScript, ONNX and weights come later.

Import the exporter you need from its module; this package imports nothing
heavy by itself.
"""

"""dlstudio: draw a neural network, train it, look inside it."""

__version__ = "0.1.0"

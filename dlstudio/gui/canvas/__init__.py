"""The network editor canvas: scene, view, node/port/edge items and gestures."""

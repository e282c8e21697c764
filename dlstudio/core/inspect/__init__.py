"""Use and look inside a trained model (torch; no Qt).

Typical use::

    trained = load_trained(run_dir_or_project)              # best checkpoint of the run
    [prediction] = trained.classify([path], top_k=5)
    x = trained.preprocess(path)
    maps = feature_maps(trained.model, x, "conv1")           # (C, H, W) numpy
    mosaic = channel_mosaic(maps)                           # one array for one image item
    heat = grad_cam(trained.model, x)                       # (H, W) in [0, 1]
    for step in activation_maximization(trained.model, "conv2", 3, trained.normalization):
        show(step.image)                                    # stop by not pulling the next one

Functions take a model and tensors and return numpy arrays or small
dataclasses; nothing prints. Long computations are generators.
"""

from __future__ import annotations

from dlstudio.core.inspect.activations import all_feature_maps, feature_maps, node_ids, node_output, spatial_nodes
from dlstudio.core.inspect.classify import (
    ClassifiedFile,
    ClassScore,
    Prediction,
    classify_files,
    find_images,
    predictions,
    probabilities,
)
from dlstudio.core.inspect.dream import (
    DreamStep,
    activation_maximization,
    channel_activation,
    deep_dream,
    most_responsive_channel,
)
from dlstudio.core.inspect.errors import InspectError
from dlstudio.core.inspect.filters import conv_weight, filter_mosaic
from dlstudio.core.inspect.histograms import Histogram, gradient_histograms, histogram, weight_histograms
from dlstudio.core.inspect.mistakes import SplitPredictions, mistakes, predict_split
from dlstudio.core.inspect.input_recipe import InputRecipe, PreparedImage, recipe_for_run
from dlstudio.core.inspect.preprocess import Preprocessor, save_png, to_uint8
from dlstudio.core.inspect.saliency import Heatmap, colorize, default_cam_node, grad_cam, overlay, saliency
from dlstudio.core.inspect.trained import TrainedModel, find_run_dir, load_trained
from dlstudio.core.mosaic import Mosaic, channel_mosaic, scale_each, scale_together, tile

__all__ = [
    "ClassScore", "ClassifiedFile", "DreamStep", "Heatmap", "Histogram", "InputRecipe", "InspectError", "Mosaic",
    "Prediction", "PreparedImage", "Preprocessor", "SplitPredictions", "TrainedModel", "activation_maximization", "all_feature_maps",
    "channel_activation", "channel_mosaic", "classify_files", "colorize", "conv_weight", "deep_dream",
    "default_cam_node", "feature_maps", "filter_mosaic", "find_images", "find_run_dir", "gradient_histograms",
    "grad_cam", "histogram", "load_trained", "mistakes", "most_responsive_channel", "node_ids", "node_output",
    "overlay", "predict_split", "predictions", "probabilities", "recipe_for_run", "save_png", "saliency", "scale_each", "scale_together",
    "spatial_nodes", "tile", "to_uint8", "weight_histograms",
]

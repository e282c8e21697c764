"""Schemas of a project's data and training settings (no Qt, no torch).

The schemas are tuples of :class:`ParamSpec`, the same type that describes
layer parameters, so the GUI builds its settings editors with the code that
builds its layer inspector, and a file's values are validated by the same rules.
"""

from __future__ import annotations

from typing import Any

from dlstudio.core.errors import ParamError, ProjectError
from dlstudio.core.layers.spec import BOOL, CHOICE, FLOAT, INT, STR, ParamSpec
from dlstudio.core.project.jsontypes import describe
from dlstudio.core.text import quote

_MAX_SEED = 2**31 - 1

DATA_SETTINGS: tuple[ParamSpec, ...] = (
    ParamSpec("source", CHOICE, "digits",
              "Where samples come from: the bundled 8x8 digits (offline), an image folder with one subfolder "
              "per class, a standard torchvision dataset, or a CSV table.",
              choices=("digits", "folder", "torchvision", "csv"), label="Source"),
    ParamSpec("path", STR, "", "Folder of images, CSV file, or where torchvision keeps its datasets.",
              label="Path"),
    ParamSpec("dataset", CHOICE, "mnist", "Which torchvision dataset (source torchvision only).",
              choices=("mnist", "fashion-mnist", "cifar10"), label="Dataset"),
    ParamSpec("label_column", STR, "", "Column that holds the label (CSV only); empty means the last one.",
              label="Label column"),
    ParamSpec("val_fraction", FLOAT, 0.15, "Share of the samples held out to validate during training.",
              min=0.0, max=0.9, label="Validation fraction"),
    ParamSpec("test_fraction", FLOAT, 0.15, "Share of the samples kept apart for the final test.",
              min=0.0, max=0.9, label="Test fraction"),
    ParamSpec("split_seed", INT, 0, "Seed of the shuffle that splits train, validation and test.",
              min=0, max=_MAX_SEED, label="Split seed"),
    ParamSpec("normalize", BOOL, True, "Scale inputs to zero mean and unit variance (per channel).",
              label="Normalize"),
    ParamSpec("augment_crop_padding", INT, 0, "Pad images by this many pixels and crop back at a random "
                                              "position (0 = off).", min=0, max=16, label="Random crop padding"),
    ParamSpec("augment_hflip", BOOL, False, "Mirror training images left-right at random (not for digits "
                                            "or text).", label="Random horizontal flip"),
    ParamSpec("augment_rotation", FLOAT, 0.0, "Rotate training images by up to this many degrees (0 = off).",
              min=0.0, max=180.0, label="Random rotation"),
    ParamSpec("augment_color_jitter", FLOAT, 0.0, "Vary brightness and contrast of training images by up to "
                                                  "this fraction (0 = off).", min=0.0, max=1.0,
              label="Colour jitter"),
)

TRAINING_SETTINGS: tuple[ParamSpec, ...] = (
    ParamSpec("optimizer", CHOICE, "adam", "How weights are updated from their gradients; Adam is a safe start.",
              choices=("sgd", "adam", "adamw", "rmsprop"), label="Optimizer"),
    ParamSpec("learning_rate", FLOAT, 0.001, "Size of each update step; too high diverges, too low crawls.",
              min=1e-8, max=10.0, label="Learning rate"),
    ParamSpec("momentum", FLOAT, 0.9, "Momentum of SGD and RMSprop (ignored by Adam).",
              min=0.0, max=0.999, label="Momentum"),
    ParamSpec("weight_decay", FLOAT, 0.0, "Pull of the weights towards zero, against overfitting.",
              min=0.0, max=1.0, label="Weight decay"),
    ParamSpec("batch_size", INT, 64, "Samples per update step.", min=1, max=65536, label="Batch size"),
    ParamSpec("epochs", INT, 10, "Passes over the training data.", min=1, max=100000, label="Epochs"),
    ParamSpec("pretrained_lr_multiplier", FLOAT, 0.1, "Learning rate of layers that start from pretrained "
                                                      "weights, as a multiple of the learning rate (1 = the same).",
              min=0.0, max=10.0, label="Pretrained LR ×"),
    ParamSpec("schedule", CHOICE, "none", "How the learning rate changes during training.",
              choices=("none", "step", "cosine", "one-cycle", "reduce-on-plateau"), label="LR schedule"),
    ParamSpec("seed", INT, 0, "Seed of weight initialization and batch order, so a run can be repeated.",
              min=0, max=_MAX_SEED, label="Seed"),
    ParamSpec("early_stopping_patience", INT, 0, "Stop after this many epochs without a better validation "
                                                 "loss (0 = off).", min=0, max=1000, label="Early stopping patience"),
    ParamSpec("device", CHOICE, "auto", "Where to train; auto picks CUDA, then Apple MPS, then the CPU.",
              choices=("auto", "cpu", "cuda", "mps"), label="Device"),
    ParamSpec("precision", CHOICE, "auto", "Number format; auto uses mixed precision on a GPU, fp32 on the CPU.",
              choices=("auto", "fp32", "bf16", "fp16"), label="Precision"),
    ParamSpec("channels_last", CHOICE, "auto", "Memory layout of image tensors; channels-last is faster on "
                                               "recent GPUs.", choices=("auto", "on", "off"), label="Channels last"),
    ParamSpec("compile", BOOL, False, "Compile the model with torch.compile: slower start, faster steps.",
              label="torch.compile"),
    ParamSpec("sync_batchnorm", BOOL, False, "Under torchrun (several processes on CUDA), compute BatchNorm "
                                             "statistics over all processes' batches; ignored in one process.",
              label="Synchronized BatchNorm"),
)


def _defaults(schema: tuple[ParamSpec, ...]) -> dict[str, Any]:
    return {spec.name: spec.default for spec in schema}


def default_data_settings() -> dict[str, Any]:
    """A fresh dict of the data settings' defaults."""
    return _defaults(DATA_SETTINGS)


def default_training_settings() -> dict[str, Any]:
    """A fresh dict of the training settings' defaults."""
    return _defaults(TRAINING_SETTINGS)


def inapplicable_training_settings(values: dict[str, Any], *, pretrained: bool) -> dict[str, str]:
    """The training settings that change nothing as the others are, each with the reason (the form greys them).

    ``pretrained``: whether the network starts from weights (a file, a run, torchvision's), which is
    what the pretrained learning-rate multiplier applies to.
    """
    merged = {**default_training_settings(), **values}
    reasons = {}
    if merged["optimizer"] in ("adam", "adamw"):
        reasons["momentum"] = ("Adam and AdamW keep their own running averages of the gradients; momentum is "
                               "used by SGD and RMSprop")
    if not pretrained:
        reasons["pretrained_lr_multiplier"] = ("applies to layers that start from pretrained weights; this "
                                               "network starts from random weights (Starting weights, above)")
    return reasons


def validate_settings(schema: tuple[ParamSpec, ...], values: Any, where: str) -> dict[str, Any]:
    """Return ``values`` validated against ``schema``, in schema order, with defaults filled in.

    ``where`` names the settings in messages ("data", "training"). Unknown
    keys are refused. Raises ProjectError: "data.val_fraction: must be at most 0.9, got 1.5".
    """
    if not isinstance(values, dict):
        raise ProjectError(f"{where}: expected an object of settings, got {describe(values)}")
    known = {spec.name for spec in schema}
    unknown = [key for key in values if key not in known]
    if unknown:
        raise ProjectError(f"{where}: unknown setting {quote(unknown[0])}")
    result: dict[str, Any] = {}
    for spec in schema:
        try:
            result[spec.name] = spec.validate(values.get(spec.name, spec.default))
        except ParamError as error:
            reason = error.message.removeprefix(f"{spec.display_name}: ")
            raise ProjectError(f"{where}.{spec.name}: {reason}") from None
    _check_split_fractions(result, where)
    return result


def _check_split_fractions(values: dict[str, Any], where: str) -> None:
    # A rule across two settings: the training split must keep some samples.
    if "val_fraction" in values and "test_fraction" in values:
        total = values["val_fraction"] + values["test_fraction"]
        if total >= 1.0:
            raise ProjectError(f"{where}: val_fraction + test_fraction must be less than 1 (nothing left to "
                               f"train on), got {values['val_fraction']:g} + {values['test_fraction']:g}")


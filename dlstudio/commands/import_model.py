"""``dlstudio import``: a torchvision classifier, a person's own module class or an ONNX file as a project.

(``import`` is a keyword, hence the module's name.)
"""

from __future__ import annotations

import argparse
import json
import os
from pathlib import Path
from typing import Any

from dlstudio.commands.common import CommandError, check_writable, one_line, thousands
from dlstudio.core.text import printable

COMMAND = "import"


def add_parser(subparsers: argparse._SubParsersAction) -> None:
    parser = subparsers.add_parser(
        COMMAND, help="import a torchvision classifier, your own nn.Module class or an ONNX file as a project",
        description="Import a torchvision image classification architecture (resnet18, mobilenet_v2, "
                    "efficientnet_b0, ...) as an editable graph of layers, with an Input of 3 x 224 x 224 and a "
                    "classification Output; or your own nn.Module class, given as package.module:Class or "
                    "path/to/file.py:Class and built with --args, with an Input of --input-shape. Importing a "
                    "module class runs its code. Or an ONNX file (model.onnx, opset 13 or newer) with a dynamic "
                    "batch, whose input shape it gives. The model must give (N, classes) class scores. The "
                    "project holds the architecture, and with --weights where its starting weights come from "
                    "(read when a run starts, never copied into the project); without it training starts "
                    "from random weights.")
    parser.add_argument("source", metavar="SOURCE",
                        help="a torchvision model name (e.g. resnet18), package.module:Class, file.py:Class or "
                             "model.onnx")
    parser.add_argument("-o", "--output", metavar="FILE", required=True, help="the .dlstudio file to write")
    parser.add_argument("--classes", metavar="N", type=int, default=None,
                        help="number of classes of a torchvision model's head (default: the architecture's, 1000)")
    parser.add_argument("--input-shape", metavar="C,H,W", default=None,
                        help="shape of one sample without the batch (C,H,W, C,L or features); required for a "
                             "module class")
    parser.add_argument("--args", metavar="JSON", default=None,
                        help="the module class's constructor arguments: a JSON list (positional) or object "
                             "(keywords), e.g. '{\"num_classes\": 5}'")
    parser.add_argument("--weights", metavar="default|none|NAME|PATH", default="none",
                        help="starting weights: 'default' = torchvision's pretrained weights for the model (resolved "
                             "to their name, e.g. IMAGENET1K_V1; downloaded into torch's cache by the first "
                             "'dlstudio train' when missing) or, for an ONNX file, the file's own weights (saved "
                             "beside FILE as .safetensors); a torchvision weights name (IMAGENET1K_V2); a .pth, .pt "
                             "or .safetensors file (for a module class, keyed like its state_dict); 'none' (default) "
                             "= random")
    parser.add_argument("--force", action="store_true", help="overwrite FILE if it exists")
    parser.set_defaults(run=run)


def is_module_class(source: str) -> bool:
    """``package.module:Class`` or ``file.py:Class`` (a torchvision name has no colon)."""
    return ":" in source


def is_onnx_file(source: str) -> bool:
    """A path ending in ``.onnx`` (any case)."""
    return source.lower().endswith(".onnx")


def run(args: argparse.Namespace) -> int:
    from dlstudio.core.project import save_project

    path = Path(args.output)
    if is_onnx_file(args.source):
        for option, value in (("--classes", args.classes), ("--input-shape", args.input_shape),
                              ("--args", args.args)):
            if value is not None:
                raise CommandError(f"{option} is not for an ONNX file: {args.source} gives its own input shape "
                                   "and number of classes")
        check_writable(path, args.force)
        from dlstudio.core.importer import import_onnx

        result = import_onnx(args.source)
    elif is_module_class(args.source):
        if args.classes is not None:
            raise CommandError("--classes sizes a torchvision model's head; a module class gives its own number "
                               "of classes (set it with --args)")
        if args.input_shape is None:
            raise CommandError(f"importing {args.source} needs --input-shape C,H,W (the shape of one sample "
                               "without the batch)")
        shape = parse_input_shape(args.input_shape)
        positional, keywords = parse_constructor_args(args.args)
        check_writable(path, args.force)
        from dlstudio.core.importer import import_module_class

        result = import_module_class(args.source, args=positional, kwargs=keywords, input_shape=shape)
    else:
        if args.input_shape is not None or args.args is not None:
            option = "--input-shape" if args.input_shape is not None else "--args"
            raise CommandError(f"{option} is for a module class (package.module:Class or file.py:Class); "
                               f"{args.source} is a torchvision model name")
        check_writable(path, args.force)
        from dlstudio.core.importer import import_torchvision

        # What has no layer type becomes an opaque module node that keeps the source's submodule.
        result = import_torchvision(args.source, num_classes=args.classes, opaque=True)
    assert result.project is not None  # the importers raise when anything is unmapped
    source = weights_source(args.weights, args.source, result, path)
    result.project.set_weights(source)
    save_project(result.project, path)
    weights = f"starting weights: {source.describe()}" if source is not None else "architecture only: no weights"
    print(printable(f"wrote {path}: {result.name}, "
                    f"{len(result.project.graph)} nodes, {thousands(result.param_count)} parameters, "
                    f"{result.num_classes} classes ({weights})"))
    return 0


def weights_source(choice: str, source: str, result: Any, output: Path) -> Any:
    """The project's starting weights for ``--weights`` (None for 'none'); CommandError when they cannot be had."""
    from dlstudio.core.project.pretrained import WeightsSource
    from dlstudio.core.training.pretrained import WEIGHTS_SUFFIXES, WeightsError, torchvision_weights

    if choice.lower() == "none":
        return None
    if choice.lower().endswith(WEIGHTS_SUFFIXES):
        weights_file = Path(choice)
        if not weights_file.is_file():
            raise CommandError(f"--weights: {choice} is not a file")
        # Stored relative to the project file, so the two can move together.
        relative = os.path.relpath(weights_file.resolve(), output.resolve().parent)
        key_map = result.key_map if is_module_class(source) else {}
        return WeightsSource("file", path=Path(relative).as_posix(), key_map=key_map)
    if is_onnx_file(source):
        if choice.lower() != "default":
            raise CommandError(f"--weights for an ONNX file: default (its own weights) or none, got {choice!r}")
        return save_onnx_weights(result, output)
    if is_module_class(source):
        raise CommandError(f"--weights for a module class: a .pth, .pt or .safetensors file, or none; got {choice!r}")
    name = "DEFAULT" if choice.lower() == "default" else choice
    try:
        entry = torchvision_weights(source, name)
    except WeightsError as error:
        raise CommandError(f"--weights: {error.message}") from None
    return WeightsSource("torchvision", source, entry.name, key_map=result.key_map)


def save_onnx_weights(result: Any, output: Path) -> Any:
    """The ONNX file's weights, keyed like the imported graph, as ``OUTPUT.weights.safetensors`` beside it;
    returns the source naming that file."""
    from dlstudio.core.importer.weights_file import imported_state, write_weights_beside

    return write_weights_beside(imported_state(result), output)


def parse_input_shape(text: str) -> tuple[int, ...]:
    """``"3,32,32"`` (or ``3x32x32``) -> ``(3, 32, 32)``; CommandError for anything else."""
    parts = [part.strip() for part in text.replace("x", ",").replace("X", ",").split(",")]
    if not 1 <= len(parts) <= 3 or not all(part.isdigit() and int(part) >= 1 for part in parts):
        raise CommandError(f"--input-shape: expected 1 to 3 sizes such as 3,32,32 (C,H,W without the batch), "
                           f"got {text!r}")
    return tuple(int(part) for part in parts)


def parse_constructor_args(text: str | None) -> tuple[list[Any], dict[str, Any]]:
    """``--args``: a JSON list gives positional arguments, an object keyword arguments."""
    if text is None:
        return [], {}
    try:
        value = json.loads(text)
    except json.JSONDecodeError as error:
        raise CommandError(f"--args: not valid JSON ({one_line(str(error))}): {text!r}") from None
    if isinstance(value, list):
        return value, {}
    if isinstance(value, dict):
        return [], value
    raise CommandError(f"--args: expected a JSON list (positional arguments) or object (keyword arguments), "
                       f"got {text!r}")

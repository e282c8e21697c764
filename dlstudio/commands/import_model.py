"""``dlstudio import``: a torchvision classifier as an editable project (``import`` is a keyword, hence the name)."""

from __future__ import annotations

import argparse
from pathlib import Path

from dlstudio.commands.common import check_writable, thousands
from dlstudio.core.text import printable

COMMAND = "import"


def add_parser(subparsers: argparse._SubParsersAction) -> None:
    parser = subparsers.add_parser(
        COMMAND, help="import a torchvision classifier as a project",
        description="Import a torchvision image classification architecture (resnet18, mobilenet_v2, "
                    "efficientnet_b0, ...) as an editable graph of layers, with an Input of 3 x 224 x 224 and a "
                    "classification Output. The project holds the architecture only: weights are random when "
                    "it is trained, and nothing is downloaded; starting from pretrained weights comes later.")
    parser.add_argument("name", metavar="NAME", help="a torchvision model name, e.g. resnet18")
    parser.add_argument("-o", "--output", metavar="FILE", required=True, help="the .dlstudio file to write")
    parser.add_argument("--classes", metavar="N", type=int, default=None,
                        help="number of classes of the head (default: the architecture's, 1000)")
    parser.add_argument("--force", action="store_true", help="overwrite FILE if it exists")
    parser.set_defaults(run=run)


def run(args: argparse.Namespace) -> int:
    from dlstudio.core.importer import import_torchvision
    from dlstudio.core.project import save_project

    path = Path(args.output)
    check_writable(path, args.force)
    result = import_torchvision(args.name, num_classes=args.classes)
    assert result.project is not None  # import_torchvision raises when anything is unmapped
    save_project(result.project, path)
    print(printable(f"wrote {path}: {args.name}, {len(result.project.graph)} nodes, "
                    f"{thousands(result.param_count)} parameters, {result.num_classes} classes "
                    "(architecture only: no weights)"))
    return 0

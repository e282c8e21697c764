"""``dlstudio new``: start a project file from a template."""

from __future__ import annotations

import argparse
from pathlib import Path

from dlstudio.commands.common import CommandError, check_writable

# --dataset names: the bundled digits, or one of torchvision's standard datasets (the data settings'
# "dataset" choices, repeated here so that building the parser stays cheap).
_BUNDLED = "digits"
_TORCHVISION = ("mnist", "fashion-mnist", "cifar10")


def add_parser(subparsers: argparse._SubParsersAction) -> None:
    parser = subparsers.add_parser(
        "new", help="create a project file from a template",
        description="Create a project file from a template (see 'dlstudio templates').")
    parser.add_argument("--template", metavar="NAME", default=None,
                        help="template to start from (default: the project the app opens on first launch)")
    parser.add_argument("--dataset", choices=(_BUNDLED, *_TORCHVISION), default=None,
                        help="data to train on: the bundled 8x8 digits (offline), or a torchvision dataset "
                             "(downloaded on first use); default: the template's own")
    parser.add_argument("-o", "--output", metavar="FILE", required=True, help="the .dlstudio file to write")
    parser.add_argument("--force", action="store_true", help="overwrite FILE if it exists")
    parser.set_defaults(run=run)


def run(args: argparse.Namespace) -> int:
    from dlstudio.core.project import (
        DATA_SETTINGS, default_project, list_templates, load_template, save_project, validate_settings,
    )

    path = Path(args.output)
    check_writable(path, args.force)
    if args.template is None:
        project = default_project()
    else:
        names = [template.name for template in list_templates()]
        if args.template not in names:
            raise CommandError(f"unknown template {args.template!r} (available: {', '.join(names) or 'none'})")
        project = load_template(args.template)
    if args.dataset == _BUNDLED:
        project.data = validate_settings(DATA_SETTINGS, {**project.data, "source": _BUNDLED}, "data")
    elif args.dataset is not None:
        project.data = validate_settings(
            DATA_SETTINGS, {**project.data, "source": "torchvision", "dataset": args.dataset}, "data")
    save_project(project, path)
    origin = f"template {args.template}" if args.template else "the default template"
    print(f"created {path} from {origin}")
    return 0

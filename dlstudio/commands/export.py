"""``dlstudio export``: write a project's model in another form (standalone PyTorch code for now)."""

from __future__ import annotations

import argparse
from collections.abc import Callable
from pathlib import Path

from dlstudio.commands.common import check_writable, load
from dlstudio.core.project.model import Project
from dlstudio.core.text import printable


def _write_python(project: Project, path: Path, args: argparse.Namespace) -> str:
    from dlstudio.core.export.python_code import export_python

    from dlstudio.core.safe_io import write_text

    code = export_python(project.graph, class_name=args.class_name, description=project.description)
    write_text(path, code)  # a unique temporary beside it, no links followed, then a rename
    return printable(f"wrote {path}: class {args.class_name}; run 'python {path.name}' to try it")


# Format name -> writer(project, path, args) returning the line to print. New formats go here.
EXPORTERS: dict[str, Callable[[Project, Path, argparse.Namespace], str]] = {
    "python": _write_python,
}


def add_parser(subparsers: argparse._SubParsersAction) -> None:
    parser = subparsers.add_parser(
        "export", help="export the model (standalone PyTorch code)",
        description="Export a project's model. python: one standalone file that imports only torch, "
                    "with a class whose state_dict keys are the node ids (so weights trained in dlstudio "
                    "load with strict=True); running it pushes a random batch through the model.")
    parser.add_argument("file", metavar="FILE", help="a .dlstudio project file")
    parser.add_argument("--format", choices=tuple(EXPORTERS), default="python", help="what to write (default: python)")
    parser.add_argument("-o", "--output", metavar="OUT", required=True, help="the file to write")
    parser.add_argument("--class-name", default="Model", help="name of the generated class (default: Model)")
    parser.add_argument("--force", action="store_true", help="overwrite OUT if it exists")
    parser.set_defaults(run=run)


def run(args: argparse.Namespace) -> int:
    path = Path(args.output)
    check_writable(path, args.force)
    project = load(args.file)
    print(EXPORTERS[args.format](project, path, args))
    return 0

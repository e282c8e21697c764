"""``dlstudio templates``: list the example projects a new project can start from."""

from __future__ import annotations

import argparse

from dlstudio.commands.common import one_line


def add_parser(subparsers: argparse._SubParsersAction) -> None:
    parser = subparsers.add_parser("templates", help="list the templates a new project can start from",
                                   description="List the bundled templates: name, title and what each one is.")
    parser.set_defaults(run=run)


def run(args: argparse.Namespace) -> int:
    from dlstudio.core.project import list_templates

    templates = list_templates()
    if not templates:
        print("no templates are installed")
        return 0
    name_width = max(len(t.name) for t in templates)
    title_width = max(len(t.title) for t in templates)
    for template in templates:
        summary = one_line(template.description.strip().splitlines()[0]) if template.description.strip() else ""
        print(f"{template.name:<{name_width}}  {template.title:<{title_width}}  {summary}".rstrip())
    return 0

"""Headless subcommands of the ``dlstudio`` command, one module each (no Qt).

Each module has ``add_parser(subparsers)``, which registers the subcommand
and sets ``run`` as its handler, and ``run(args) -> int`` (the exit status).
``dlstudio.cli.COMMANDS`` lists them.
"""

"""The ``dlstudio`` command: headless subcommands, or the desktop app.

``dlstudio templates|new|import|info|export ...`` run here without Qt; anything else
(no arguments, a project file, window options such as ``--screenshot``) is
handed to :func:`dlstudio.app.main`, imported only then. Failures print one
line, ``dlstudio: error: ...``, and exit with status 2; never a traceback.
"""

from __future__ import annotations

import argparse
import importlib
import os
import sys
from types import ModuleType

from dlstudio import __version__
from dlstudio.commands import classify, evaluate, export, import_model, info, new, templates, train
from dlstudio.commands import sweep
from dlstudio.core.errors import DlstudioError

# The headless subcommands, in the order --help lists them. Each module has add_parser() and run().
COMMANDS: tuple[ModuleType, ...] = (templates, new, import_model, info, export, train, classify,
                                    sweep, evaluate)

PROG = "dlstudio"
_HEADLESS_OPTIONS = ("-h", "--help", "--version")
_PROJECT_SUFFIX = ".dlstudio"


def build_parser() -> tuple[argparse.ArgumentParser, tuple[str, ...]]:
    """The argument parser of the headless commands, and the subcommand names it knows."""
    parser = argparse.ArgumentParser(
        prog=PROG,
        description="Draw, train, inspect and export neural networks. Without a subcommand, "
                    f"'{PROG} [FILE.dlstudio]' opens the desktop app.")
    parser.add_argument("--version", action="version", version=f"{PROG} {__version__}")
    subparsers = parser.add_subparsers(dest="command", metavar="COMMAND", required=True)
    for command in COMMANDS:
        command.add_parser(subparsers)
    return parser, tuple(subparsers.choices)


def main(argv: list[str] | None = None) -> int:
    """Run the command line ``argv`` (default: ``sys.argv[1:]``); returns the exit status."""
    argv = list(sys.argv[1:] if argv is None else argv)
    parser, names = build_parser()
    if not argv or not (argv[0] in names or argv[0] in _HEADLESS_OPTIONS or _looks_like_command(argv[0])):
        return _run_app(argv)
    try:
        args = parser.parse_args(argv)
    except SystemExit as stop:  # argparse exits on --help, --version and usage errors
        return stop.code if isinstance(stop.code, int) else (0 if stop.code is None else 2)
    try:
        return args.run(args)
    except DlstudioError as error:
        return _fail(error.message)
    except BrokenPipeError:
        # The reader went away (`dlstudio info x | head`): not an error. Point stdout at devnull
        # so that the interpreter's final flush does not complain either.
        os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())
        return 0
    except OSError as error:
        where = f"{error.filename}: " if error.filename else ""
        return _fail(f"{where}{error.strerror or error}")
    except KeyboardInterrupt:
        return 130


def _looks_like_command(arg: str) -> bool:
    """A word that is neither an option nor a project file is a mistyped subcommand: let argparse say so."""
    return not arg.startswith("-") and not arg.endswith(_PROJECT_SUFFIX) and not os.path.exists(arg)


def _run_app(argv: list[str]) -> int:
    try:
        app = importlib.import_module("dlstudio.app")
    except ModuleNotFoundError as error:
        if error.name == "dlstudio.app":
            return _fail("the desktop app is not part of this installation; see 'dlstudio --help' for the "
                         "headless commands")
        return _fail(f"the desktop app cannot start: {error.name} is not installed")
    except ImportError as error:  # e.g. Qt's system libraries are missing
        return _fail(f"the desktop app cannot start: {error}")
    return app.main(argv)


def _fail(message: str) -> int:
    from dlstudio.core.text import printable  # a path or class name in the message may hold escapes

    print(f"{PROG}: error: {printable(' '.join(message.split()))}", file=sys.stderr)
    return 2

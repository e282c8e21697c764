"""The desktop app's entry point: arguments, the QApplication, the main window.

The only place a QApplication is made. Torch is not imported here: the
window paints first; torch loads when something needs it.
"""

from __future__ import annotations

import argparse
import os
import sys
from pathlib import Path

SCREENSHOT_SIZE = (1400, 900)


def _parse(argv: list[str]) -> argparse.Namespace:
    parser = argparse.ArgumentParser(prog="dlstudio", description="Draw, train and inspect neural networks.")
    parser.add_argument("file", nargs="?", help="a .dlstudio project to open (default: the LeNet-5 example)")
    parser.add_argument("--screenshot", metavar="OUT.png",
                        help="open the window at 1400x900, save a PNG of it and exit")
    parser.add_argument("--theme", choices=("light", "dark"),
                        help="colour theme (remembered; with --screenshot, used for that picture only)")
    return parser.parse_args(argv)


def main(argv: list[str] | None = None) -> int:
    """Open the main window (with FILE, or the default project); returns the exit status."""
    args = _parse(sys.argv[1:] if argv is None else argv)
    if args.screenshot and not (os.environ.get("DISPLAY") or os.environ.get("WAYLAND_DISPLAY")):
        os.environ.setdefault("QT_QPA_PLATFORM", "offscreen")  # a screenshot needs no screen

    from PySide6.QtWidgets import QApplication

    from dlstudio.core.errors import DlstudioError
    from dlstudio.core.project import default_project, load_project
    from dlstudio.gui.main_window import MainWindow
    from dlstudio.gui.settings import apply_identity

    app = QApplication.instance() or QApplication([sys.argv[0] if sys.argv else "dlstudio"])
    apply_identity()
    error = None
    try:
        project = load_project(args.file) if args.file else default_project()
    except DlstudioError as exc:
        error = exc.message
        project = default_project()
    if error is not None and args.screenshot:
        print(f"dlstudio: error: {error}", file=sys.stderr)
        return 2

    window = MainWindow(project)
    if not args.screenshot:
        # From here an error in a slot is shown to the person and logged, and the window keeps running.
        from dlstudio.gui.error_report import install_error_handler

        install_error_handler(lambda: window)
    if args.screenshot:
        # A rendering for docs and checks: the same picture on every machine, and nothing
        # of the user's saved preferences changed by it.
        window.set_theme(args.theme or "light", remember=False)
    elif args.theme:
        window.set_theme(args.theme)
    if not args.file and not args.screenshot:
        window.show_welcome()  # templates, recent projects and ways to begin; Esc gives the default network
    if args.file and error is None and not args.screenshot:
        window._add_recent_file(Path(args.file))
    if args.screenshot:
        from PySide6.QtCore import qInstallMessageHandler

        previous = qInstallMessageHandler(_quiet_offscreen_warning)
        try:
            return _screenshot(app, window, Path(args.screenshot))
        finally:
            qInstallMessageHandler(previous)
    window.show()
    window.offer_recovery()  # a project a crashed window left unsaved is offered back
    if error is not None:
        window._show_error("Cannot open the project", error)
    return app.exec()


def _quiet_offscreen_warning(mode, context, message: str) -> None:
    # The offscreen platform says it cannot propagate size hints; harmless, and noise in a script's output.
    if "propagateSizeHints" not in message:
        sys.stderr.write(message + "\n")


def _screenshot(app, window, out: Path) -> int:
    window.resize(*SCREENSHOT_SIZE)
    window.show()
    app.processEvents()
    window.view.fit_all()
    app.processEvents()
    ok = window.grab().save(str(out), "PNG")
    window.close()
    if not ok:
        print(f"dlstudio: cannot write {out}", file=sys.stderr)
        return 1
    return 0

"""Screenshots of the real window for the docs, at 1600x1000, under the current X display.

    xvfb-run -s "-screen 0 1600x1000x24" .venv/bin/python tools/screenshots.py docs/

Saves into the folder given (default docs/):
  screenshot.png          the window as a first launch shows it (light theme; the README's picture)
  first-launch-dark.png   the same in the dark theme
  welcome.png             Help › Welcome, when the window has it (skipped with a message otherwise)
  training.png            the LeNet-5 template training on the bundled digits, after ~2 epochs
  inspect.png             the Inspect dock after that training, classifying a few digit images

The user's settings are never read or written (QSettings go to a temporary folder). The window
is being reworked, so actions are found by their menu text ("Training › Train"), not by
attribute names, and a missing piece skips its picture with a message instead of failing all.
"""

from __future__ import annotations

import argparse
import os
import sys
import tempfile
import time
from pathlib import Path

WINDOW_SIZE = (1600, 1000)
TRAIN_EPOCHS_SHOWN = 2
TRAIN_TIMEOUT_S = 120


def _plain(text: str) -> str:
    return text.replace("&&", "\0").replace("&", "").replace("\0", "&").split("\t")[0].strip()


class Shooter:
    def __init__(self, app, out: Path, work: Path) -> None:
        self.app, self.out, self.work = app, out, work
        self.window = None
        self.saved: list[Path] = []

    # -- event loop ----------------------------------------------------------------

    def wait(self, seconds: float) -> None:
        end = time.monotonic() + seconds
        while time.monotonic() < end:
            self.app.processEvents()
            time.sleep(0.01)

    def wait_until(self, condition, timeout: float, what: str) -> bool:
        end = time.monotonic() + timeout
        while time.monotonic() < end:
            self.app.processEvents()
            if condition():
                return True
            time.sleep(0.02)
        print(f"screenshots: gave up waiting for {what} after {timeout:.0f} s", file=sys.stderr)
        return False

    # -- the window ------------------------------------------------------------------

    def open_window(self, project=None):
        from dlstudio.gui.main_window import MainWindow

        if self.window is not None:
            self.close_window()
        window = MainWindow(project)
        window.resize(*WINDOW_SIZE)
        window.move(0, 0)
        window.show()
        window.raise_()
        window.activateWindow()
        self.wait_until(window.isVisible, 10, "the window to show")
        self.window = window
        self.wait(1.5)  # the data panel's samples and the first fit arrive shortly after showing
        return window

    def close_window(self) -> None:
        window, self.window = self.window, None
        training = getattr(window, "training", None)
        if training is not None and getattr(training, "is_running", lambda: False)():
            training.stop_and_wait()
        window.undo_stack.setClean()
        window.close()
        window.deleteLater()
        self.wait(0.2)

    def action(self, *path: str):
        """The menubar action at ``path`` (menu texts without '&'; a last item may be a prefix), or None."""
        actions = self.window.menuBar().actions()
        for depth, title in enumerate(path):
            last = depth == len(path) - 1
            match = next((a for a in actions if _plain(a.text()) == title), None)
            if match is None and last:
                match = next((a for a in actions if _plain(a.text()).startswith(title)), None)
            if match is None:
                return None
            if last:
                return match
            menu = match.menu()
            if menu is None:
                return None
            menu.aboutToShow.emit()  # menus filled on show (Open Recent) have their items then
            actions = menu.actions()
        return None

    def trigger(self, *path: str) -> bool:
        action = self.action(*path)
        if action is None or not action.isEnabled():
            print(f"screenshots: no enabled menu item {' › '.join(path)}", file=sys.stderr)
            return False
        action.trigger()
        self.app.processEvents()
        return True

    def save(self, name: str) -> None:
        path = self.out / name
        self.app.processEvents()
        if not self.window.grab().save(str(path)):
            raise SystemExit(f"screenshots: could not write {path}")
        self.saved.append(path)
        print(f"screenshots: wrote {path}")

    # -- the pictures ------------------------------------------------------------------

    def first_launch(self) -> None:
        self.open_window()
        self.save("screenshot.png")  # the README's picture
        if self.trigger("View", "Dark Theme"):
            self.wait(0.3)
            self.save("first-launch-dark.png")
            self.trigger("View", "Light Theme")
            self.wait(0.2)

    def welcome(self) -> None:
        if self.action("Help", "Welcome") is None:
            print("screenshots: skipped welcome.png: the window has no Help › Welcome yet")
            return
        self.trigger("Help", "Welcome")
        self.wait(0.8)
        self.save("welcome.png")
        self.app.processEvents()

    def training_and_inspect(self) -> None:
        from dlstudio.core.project import load_template, save_project

        project = load_template("lenet5")
        project.training = {**project.training, "epochs": 200}  # still training when the picture is taken
        path = self.work / "lenet5" / "lenet5.dlstudio"
        path.parent.mkdir(parents=True)
        save_project(project, path)
        window = self.open_window()
        if not window.open_file(path):
            print("screenshots: skipped training.png and inspect.png: the lenet5 copy did not open",
                  file=sys.stderr)
            return
        self.wait(0.5)
        if not self.trigger("Training", "Train"):
            return
        training = window.training
        epochs: list[object] = []
        hooked = []

        def hook() -> bool:  # count finished epochs on the worker's signal once it exists
            worker = getattr(training, "worker", None)
            if worker is not None and not hooked and hasattr(worker, "epoch_finished"):
                worker.epoch_finished.connect(epochs.append)
                hooked.append(worker)
            return bool(hooked) or not training.is_running()

        self.wait_until(hook, 30, "training to start")
        if hooked:
            self.wait_until(lambda: len(epochs) >= TRAIN_EPOCHS_SHOWN or not training.is_running(),
                            TRAIN_TIMEOUT_S, f"{TRAIN_EPOCHS_SHOWN} epochs")
        else:
            self.wait(10)
        self.wait(0.5)  # curves and the batch progress repaint
        if not training.is_running():
            print("screenshots: training is not running any more; training.png shows the end", file=sys.stderr)
        self.save("training.png")
        if self.trigger("Training", "Stop") or training.is_running():
            self.wait_until(lambda: not training.is_running(), 30, "training to stop")
        self.inspect()

    def inspect(self) -> None:
        import numpy as np
        from PIL import Image
        from sklearn.datasets import load_digits

        window = self.window
        digits = load_digits()
        folder = self.work / "digits"
        folder.mkdir()
        paths = []
        for index in range(6):
            pixels = (digits.images[index] / 16.0 * 255).astype(np.uint8)
            image = Image.fromarray(pixels, mode="L").resize((28, 28), Image.Resampling.NEAREST)
            paths.append(folder / f"digit-{digits.target[index]}-{index}.png")
            image.save(paths[-1])
        toggle = self.action("View", "Inspect")
        if toggle is not None and toggle.isCheckable() and not toggle.isChecked():
            toggle.trigger()
        for dock in window.findChildren(type(window.inspect_dock)) if hasattr(window, "inspect_dock") else []:
            if _plain(dock.windowTitle()) == "Inspect":
                dock.show()
                dock.raise_()
        self.wait(0.5)
        inspect = getattr(window, "inspect", None)
        if inspect is None or not hasattr(inspect, "classify_files"):
            print("screenshots: skipped inspect.png: the window has no inspect.classify_files", file=sys.stderr)
            return
        inspect.classify_files([str(p) for p in paths])
        self.wait(6)  # the model loads and the cards fill in on workers
        self.save("inspect.png")


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("out", nargs="?", default="docs", help="folder for the PNGs (default: docs/)")
    args = parser.parse_args(argv)
    if not os.environ.get("DISPLAY"):
        print('screenshots: no X display; run under xvfb-run -s "-screen 0 1600x1000x24"', file=sys.stderr)
        return 2
    os.environ.setdefault("QT_QPA_PLATFORM", "xcb")
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)

    from PySide6.QtCore import QSettings
    from PySide6.QtWidgets import QApplication

    from dlstudio.gui.settings import apply_identity

    app = QApplication.instance() or QApplication([sys.argv[0]])
    with tempfile.TemporaryDirectory(prefix="dlstudio-screenshots-") as temporary:
        work = Path(temporary)
        QSettings.setDefaultFormat(QSettings.Format.IniFormat)
        QSettings.setPath(QSettings.Format.IniFormat, QSettings.Scope.UserScope, str(work / "settings"))
        apply_identity("dlstudio-screenshots", "dlstudio-screenshots")
        shooter = Shooter(app, out, work)
        try:
            shooter.first_launch()
            shooter.welcome()
            shooter.training_and_inspect()
        finally:
            if shooter.window is not None:
                shooter.close_window()
    print(f"screenshots: {len(shooter.saved)} pictures in {out}")
    return 0


if __name__ == "__main__":
    sys.exit(main())

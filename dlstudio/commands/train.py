"""``dlstudio train``: train a project headless, with a progress line on stderr and a run folder."""

from __future__ import annotations

import argparse
import json
import os
import signal
import sys
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

from dlstudio.commands.common import CommandError, load, one_line
from dlstudio.core.text import printable

_JSON_HELP = (
    'print one JSON object at the end: {"run_dir", "epochs", "train_loss", "val_loss", "val_accuracy", '
    '"test_accuracy", "samples_per_second", "seconds", "status"}; status is completed, early_stopped, '
    "stopped or failed; a value is null when it does not apply (no validation split, a reconstruction task)"
)
# Exit statuses besides 0 (done) and 2 (refused before training, printed by the CLI).
EXIT_FAILED = 1
EXIT_REFUSED = 2  # also: a checkpoint could not be written (disk full); the run stops, the last checkpoint stays
EXIT_INTERRUPTED = 130


def add_parser(subparsers: argparse._SubParsersAction) -> None:
    parser = subparsers.add_parser(
        "train", help="train a project's model headless and write a run folder",
        description="Train a project's model on its data settings without the window. Progress goes to "
                    "stderr; the run folder (NAME.runs/<timestamp>/ beside the project) receives the "
                    "settings, metrics.csv, class names and the last and best checkpoints, and the project "
                    "file records it. Ctrl+C (or SIGTERM) stops after the current batch and leaves a resumable "
                    "checkpoint. "
                    "Exits with 2 before training when a setting, the graph or the data does not fit.")
    parser.add_argument("file", metavar="FILE", help="a .dlstudio project file")
    parser.add_argument("--epochs", type=int, metavar="N", help="number of epochs (with --resume: the total)")
    parser.add_argument("--device", choices=("auto", "cpu", "cuda", "mps"),
                        help="where to train (default: the project's)")
    parser.add_argument("--resume", metavar="RUN_DIR", help="continue this run from its last checkpoint")
    parser.add_argument("--weights-from", metavar="RUN_DIR",
                        help="start from the weights of an earlier run (its best checkpoint, else its last) instead "
                             "of the project's starting weights: layers of the same name and shape load, the rest "
                             "are listed")
    parser.add_argument("--offline", action="store_true",
                        help="never download torchvision's pretrained weights (refuse with where to put the file)")
    parser.add_argument("--json", action="store_true", help=_JSON_HELP)
    parser.set_defaults(run=run)


class DownloadProgress:
    """Prints a download's progress on one line of ``stream`` (about every 5%), then ends the line."""

    def __init__(self, stream: Any) -> None:
        self.stream = stream
        self._shown = -1

    def __call__(self, done: int, total: int) -> None:
        percent = done * 100 // total if total else -1
        if total and percent // 5 == self._shown // 5 and done < total:
            return
        self._shown = percent
        size = f"{done / 1e6:.1f} of {total / 1e6:.1f} MB" if total else f"{done / 1e6:.1f} MB"
        end = "\n" if total and done >= total else ""
        print(f"\rdownloading pretrained weights: {size}", end=end, file=self.stream, flush=True)


@contextmanager
def _ctrl_c_stops(control: Any) -> Iterator[None]:
    """The first Ctrl+C (or SIGTERM, e.g. from ``kill`` or a job scheduler) asks for a clean stop after the
    current batch, which leaves a resumable checkpoint; a second one aborts."""
    if threading.current_thread() is not threading.main_thread():
        yield
        return

    def on_signal(signum: int, frame: Any) -> None:
        if control.stop_requested:
            raise KeyboardInterrupt
        again = "Ctrl+C" if signum == signal.SIGINT else "another signal"
        print(f"\nstopping after this batch ({again} again to abort)", file=sys.stderr)
        control.stop()

    handled = [signal.SIGINT] + ([signal.SIGTERM] if hasattr(signal, "SIGTERM") else [])
    previous = {signum: signal.signal(signum, on_signal) for signum in handled}
    try:
        yield
    finally:
        for signum, handler in previous.items():
            signal.signal(signum, handler)


def run(args: argparse.Namespace) -> int:
    from dlstudio.core.training import ProgressBar
    from dlstudio.core.training.session import start_session

    project = load(args.file)
    project_path = Path(args.file)
    if project_path.is_symlink():  # runs go beside the real file, which records them (relative to itself)
        project_path = Path(os.path.realpath(project_path))
    weights = project.weights
    if args.weights_from is not None:
        if args.resume is not None:
            raise CommandError("--weights-from starts a new run; --resume continues one with its own weights")
        from dlstudio.core.project.pretrained import WeightsSource

        weights = WeightsSource("run", path=os.path.abspath(args.weights_from))
    # Everything that can be refused is checked before the first batch: settings, graph, weights, data.
    session = start_session(project.graph, dict(project.data), dict(project.training), project_path,
                            epochs=args.epochs, device=args.device, resume=args.resume, weights=weights,
                            frozen=tuple(project.frozen), allow_download=not args.offline,
                            progress=DownloadProgress(sys.stderr))
    if session.weights_summary and not session.is_resumed:
        print(printable(session.weights_summary), file=sys.stderr)
    skipped = session.data.skipped
    if skipped:
        print(f"skipped {len(skipped)} unreadable file(s), e.g. {printable(skipped[0].path)}: "
              f"{printable(skipped[0].reason)}",
              file=sys.stderr)
    try:
        # Re-read, merged and saved under the project's lock: edits saved meanwhile (the window, another
        # train) are kept. The project loaded above is not written back.
        session.record_in_file()
        trainer = session.trainer([ProgressBar(sys.stderr)])
    except BaseException:
        session.close()
        raise
    with _ctrl_c_stops(trainer.control):
        result = trainer.fit()  # a resumed session's trainer already stands at its checkpoint
    summary = session.finish(result)
    last = result.last
    if args.json:
        print(json.dumps(summary))
    else:
        accuracy = f", val accuracy {last.val_accuracy:.2%}" if last and last.val_accuracy is not None else ""
        tested = f", test accuracy {result.test_accuracy:.2%}" if result.test_accuracy is not None else ""
        print(f"{result.status} after {result.epochs_completed} epoch(s){accuracy}{tested}; "
              f"run folder {printable(session.run_dir)}")
    if result.status == "failed":
        print(f"dlstudio: error: {printable(one_line(result.message))}", file=sys.stderr)
        # A checkpoint that could not be written (a full disk) is a refusal of the system, not of the model.
        return EXIT_REFUSED if trainer.write_failure is not None else EXIT_FAILED
    return EXIT_INTERRUPTED if result.status == "stopped" else 0

"""``dlstudio train``: train a project headless, with a progress line on stderr and a run folder.

Started by ``torchrun --nproc_per_node=N -m dlstudio train FILE``, each of the N processes trains its share
of every epoch in DistributedDataParallel (see :mod:`dlstudio.core.training.distributed`); rank 0 alone
writes the run folder and the project file and prints, and a failure on any rank ends all of them.
"""

from __future__ import annotations

import argparse
import json
import os
import re
import sys
from pathlib import Path
from typing import Any

from dlstudio.commands.common import CommandError, ctrl_c_stops, load, one_line
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

# For tests only (not documented to users): under torchrun, the rank named here fails after its first epoch,
# and every rank writes its final weights' SHA-256 into the folder named by DLSTUDIO_DDP_DUMP (rankR.sha256).
FAIL_RANK_VARIABLE = "DLSTUDIO_DDP_FAIL_RANK"
# Also for tests: "R:E:B" makes rank R (only) ask for a stop after batch B of epoch E, as Ctrl+C would.
STOP_VARIABLE = "DLSTUDIO_DDP_STOP"
DUMP_VARIABLE = "DLSTUDIO_DDP_DUMP"


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


def run(args: argparse.Namespace) -> int:
    from dlstudio.core.training.distributed import from_environment

    project = load(args.file)
    # Under torchrun: join the other processes (gloo on the CPU, NCCL on CUDA) before anything is prepared.
    distributed = from_environment(args.device or _recorded_device(args.resume)
                                   or str(project.training.get("device", "auto")))
    if distributed is None:
        return _train(args, project, None)
    finished = False
    try:
        code = _train(args, project, distributed)
        finished = True
        return code
    except BaseException as error:
        return _distributed_failure(distributed, error)
    finally:
        distributed.close(finished)


def _recorded_device(run_dir: str | None) -> str | None:
    """The device setting a run to resume trained with (its settings decide where it trains), if readable."""
    if run_dir is None:
        return None
    from dlstudio.core.errors import DlstudioError
    from dlstudio.core.training.runs import read_run_settings

    try:
        device = read_run_settings(Path(run_dir))["training"]["device"]
    except (OSError, ValueError, KeyError, TypeError, DlstudioError):
        return None  # the session refuses a damaged run with its own message
    return device if isinstance(device, str) else None


def _distributed_failure(distributed: Any, error: BaseException) -> int:
    """How a process under torchrun ends on an error: the rank's own line on stderr and a non-zero status
    (torchrun then ends the other processes, which may already have stopped on the broken connection)."""
    from dlstudio.core.errors import DlstudioError
    from dlstudio.core.training.distributed import PeerFailed

    if isinstance(error, PeerFailed):
        return EXIT_REFUSED  # rank 0 says why
    if isinstance(error, KeyboardInterrupt):
        return EXIT_INTERRUPTED
    if isinstance(error, DlstudioError):
        message = error.message
        status = EXIT_REFUSED
    elif _is_collective_failure(error):
        # The gloo/NCCL message of a broken connection ("Connection closed by peer ... GLHF!"), made plain.
        message = "stopped: another process failed or ended (its own line says why)"
        status = EXIT_FAILED
    else:
        message = one_line(str(error))[:300] or "it failed without a message"
        status = EXIT_FAILED
    prefix = "" if re.match(r"rank \d+: ", message) else f"rank {distributed.rank}: "  # rank 0 may name another
    print(f"dlstudio: error: {printable(prefix + one_line(message))}", file=sys.stderr)
    return status


def _is_collective_failure(error: BaseException) -> bool:
    """Whether ``error`` came from torch.distributed (a peer that went away, a collective that timed out)."""
    import torch.distributed

    if isinstance(error, torch.distributed.DistError):
        return True
    # A collective inside backward (DistributedDataParallel's gradient averaging) fails as a plain RuntimeError.
    text = str(error)
    return isinstance(error, RuntimeError) and any(mark in text for mark in ("gloo", "NCCL", "closed by peer"))


def _failing_after_first_epoch() -> Any:
    """The test hook of FAIL_RANK_VARIABLE: a callback that makes this rank fail once its first epoch is done."""
    from dlstudio.core.training import Callback

    class FailAfterFirstEpoch(Callback):
        def on_epoch_end(self, trainer: Any, metrics: Any) -> None:
            raise RuntimeError(f"failing on purpose after epoch {metrics.epoch} ({FAIL_RANK_VARIABLE})")

    return FailAfterFirstEpoch()


def _stopping_at(where: str) -> Any:
    """The test hook of STOP_VARIABLE: a callback that asks this rank's trainer to stop at epoch E, batch B."""
    from dlstudio.core.training import Callback

    epoch, batch = (int(part) for part in where.split(":"))

    class StopAt(Callback):
        def on_batch_end(self, trainer: Any, end: Any) -> None:
            if end.epoch == epoch and end.batch == batch:
                trainer.control.stop()

    return StopAt()


def _dump_weights(folder: str, rank: int, model: Any) -> None:
    """The test hook of DUMP_VARIABLE: the SHA-256 of this rank's final weights (every tensor, in key order)."""
    import hashlib

    digest = hashlib.sha256()
    for key, value in model.state_dict().items():
        digest.update(key.encode())
        digest.update(value.detach().cpu().contiguous().numpy().tobytes())
    Path(folder, f"rank{rank}.sha256").write_text(digest.hexdigest() + "\n")


def _train(args: argparse.Namespace, project: Any, distributed: Any) -> int:
    from dlstudio.core.training import ProgressBar
    from dlstudio.core.training.session import start_session

    main = distributed is None or distributed.is_main
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
                            progress=DownloadProgress(sys.stderr) if main else None, distributed=distributed)
    if session.weights_summary and not session.is_resumed and main:
        print(printable(session.weights_summary), file=sys.stderr)
    skipped = session.data.skipped
    if skipped and main:
        print(f"skipped {len(skipped)} unreadable file(s), e.g. {printable(skipped[0].path)}: "
              f"{printable(skipped[0].reason)}",
              file=sys.stderr)
    try:
        # Re-read, merged and saved under the project's lock: edits saved meanwhile (the window, another
        # train) are kept. The project loaded above is not written back.
        session.record_in_file()
        callbacks: list[Any] = [ProgressBar(sys.stderr)] if main else []
        if distributed is not None and os.environ.get(FAIL_RANK_VARIABLE) == str(distributed.rank):
            callbacks.append(_failing_after_first_epoch())
        rank, _, where = os.environ.get(STOP_VARIABLE, "").partition(":")
        if distributed is not None and rank == str(distributed.rank):
            callbacks.append(_stopping_at(where))
        trainer = session.trainer(callbacks)
    except BaseException:
        session.close()
        raise
    with ctrl_c_stops(trainer.control, "stopping after this batch" if main else None):
        result = trainer.fit()  # a resumed session's trainer already stands at its checkpoint
    summary = session.finish(result)
    if distributed is not None and os.environ.get(DUMP_VARIABLE):
        _dump_weights(os.environ[DUMP_VARIABLE], distributed.rank, trainer.model)
    if not main:  # rank 0 reports the run
        return _exit_status(result, trainer)
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
    return _exit_status(result, trainer)


def _exit_status(result: Any, trainer: Any) -> int:
    if result.status == "failed":
        # A checkpoint that could not be written (a full disk) is a refusal of the system, not of the model.
        return EXIT_REFUSED if trainer.write_failure is not None else EXIT_FAILED
    return EXIT_INTERRUPTED if result.status == "stopped" else 0

"""``dlstudio train``: train a project headless, with a progress line on stderr and a run folder."""

from __future__ import annotations

import argparse
import json
import signal
import sys
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import datetime
from pathlib import Path
from typing import Any

from dlstudio import __version__
from dlstudio.commands.common import CommandError, load, one_line

_JSON_HELP = (
    'print one JSON object at the end: {"run_dir", "epochs", "train_loss", "val_loss", "val_accuracy", '
    '"test_accuracy", "samples_per_second", "seconds", "status"}; status is completed, early_stopped, '
    "stopped or failed; a value is null when it does not apply (no validation split, a reconstruction task)"
)
# Exit statuses besides 0 (done) and 2 (refused before training, printed by the CLI).
EXIT_FAILED = 1
EXIT_INTERRUPTED = 130


def add_parser(subparsers: argparse._SubParsersAction) -> None:
    parser = subparsers.add_parser(
        "train", help="train a project's model headless and write a run folder",
        description="Train a project's model on its data settings without the window. Progress goes to "
                    "stderr; the run folder (NAME.runs/<timestamp>/ beside the project) receives the "
                    "settings, metrics.csv, class names and the last and best checkpoints, and the project "
                    "file records it. Ctrl+C stops after the current batch and leaves a resumable checkpoint. "
                    "Exits with 2 before training when a setting, the graph or the data does not fit.")
    parser.add_argument("file", metavar="FILE", help="a .dlstudio project file")
    parser.add_argument("--epochs", type=int, metavar="N", help="number of epochs (with --resume: the total)")
    parser.add_argument("--device", choices=("auto", "cpu", "cuda", "mps"),
                        help="where to train (default: the project's)")
    parser.add_argument("--resume", metavar="RUN_DIR", help="continue this run from its last checkpoint")
    parser.add_argument("--json", action="store_true", help=_JSON_HELP)
    parser.set_defaults(run=run)


@contextmanager
def _ctrl_c_stops(control: Any) -> Iterator[None]:
    """The first Ctrl+C asks for a clean stop after the current batch; a second one aborts."""
    if threading.current_thread() is not threading.main_thread():
        yield
        return

    def on_interrupt(signum: int, frame: Any) -> None:
        if control.stop_requested:
            raise KeyboardInterrupt
        print("\nstopping after this batch (Ctrl+C again to abort)", file=sys.stderr)
        control.stop()

    previous = signal.signal(signal.SIGINT, on_interrupt)
    try:
        yield
    finally:
        signal.signal(signal.SIGINT, previous)


def _run_settings(args: argparse.Namespace, project: Any) -> tuple[Any, dict[str, Any], dict[str, Any], Path | None]:
    """Graph, data settings, training settings and the run folder to resume (None for a new run)."""
    from dlstudio.core.graph import Graph
    from dlstudio.core.training import LAST, read_run_settings

    if args.resume is None:
        return project.graph, dict(project.data), dict(project.training), None
    run_dir = Path(args.resume)
    if not (run_dir / LAST).is_file():
        raise CommandError(f"{run_dir} has no checkpoint to resume ({LAST} is missing)")
    # A resumed run keeps the settings it started with, even if the project was edited since.
    settings = read_run_settings(run_dir)
    return Graph.from_dict(settings["graph"]), settings["data"], settings["training"], run_dir


def run(args: argparse.Namespace) -> int:
    import torch

    from dlstudio.core.compiler import compile_graph
    from dlstudio.core.data import DataRequirements, prepare_data
    from dlstudio.core.project import save_project
    from dlstudio.core.training import (
        MetricsCsv, ProgressBar, TrainConfig, Trainer, create_run_dir, record_run, resolve_device, write_run_files,
    )

    project = load(args.file)
    project_path = Path(args.file)
    graph, data_settings, training, resume_dir = _run_settings(args, project)
    overrides = {key: value for key, value in (("epochs", args.epochs), ("device", args.device)) if value is not None}
    config = TrainConfig.from_settings(training, **overrides)
    resolve_device(config.device)
    # Everything that can be refused is checked before the first batch: settings, graph, data.
    torch.manual_seed(config.seed)
    model = compile_graph(graph)
    data = prepare_data(data_settings, DataRequirements.from_model(model), base_dir=project_path.parent)
    if data.skipped:
        print(f"skipped {len(data.skipped)} unreadable file(s), e.g. {data.skipped[0].path}: "
              f"{data.skipped[0].reason}", file=sys.stderr)
    run_dir = resume_dir or create_run_dir(project_path)
    if resume_dir is None:
        write_run_files(run_dir, {
            "dlstudio_version": __version__, "project": project_path.name,
            "started": datetime.now().isoformat(timespec="seconds"), "graph": graph.to_dict(),
            "data": data_settings, "training": config.to_dict(), "data_summary": data.summary(),
        }, data.class_names)
        record_run(project, run_dir)
        save_project(project, project_path)
    trainer = Trainer(model, data, config, callbacks=[ProgressBar(sys.stderr), MetricsCsv(run_dir)], run_dir=run_dir)
    with _ctrl_c_stops(trainer.control):
        result = trainer.fit(resume=resume_dir)
    last = result.last
    summary = {
        "run_dir": str(run_dir), "epochs": result.epochs_completed,
        "train_loss": last.train_loss if last else None, "val_loss": last.val_loss if last else None,
        "val_accuracy": last.val_accuracy if last else None, "test_accuracy": result.test_accuracy,
        "samples_per_second": round(result.samples_per_second, 1), "seconds": round(result.seconds, 3),
        "status": result.status,
    }
    if args.json:
        print(json.dumps(summary))
    else:
        accuracy = f", val accuracy {last.val_accuracy:.2%}" if last and last.val_accuracy is not None else ""
        tested = f", test accuracy {result.test_accuracy:.2%}" if result.test_accuracy is not None else ""
        print(f"{result.status} after {result.epochs_completed} epoch(s){accuracy}{tested}; run folder {run_dir}")
    if result.status == "failed":
        print(f"dlstudio: error: {one_line(result.message)}", file=sys.stderr)
        return EXIT_FAILED
    return EXIT_INTERRUPTED if result.status == "stopped" else 0

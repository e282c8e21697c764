"""``dlstudio sweep``: many runs over ranges of settings and node parameters, searched and pruned by Optuna."""

from __future__ import annotations

import argparse
import json
import os
import sys
from pathlib import Path
from typing import Any

from dlstudio.commands.common import ctrl_c_stops, load
from dlstudio.core.text import printable

EXIT_INTERRUPTED = 130

_DESCRIPTION = (
    "Train the project many times with values drawn from ranges, and keep the search in an Optuna study "
    "(NAME.sweep.db beside the project). Each trial is a normal run in NAME.runs/, recorded in the project "
    "file, with the sweep name and trial number in its settings.json. A trial is judged by its best "
    "validation accuracy; with pruning (the default) Optuna's median pruner stops a trial whose accuracy "
    "after an epoch is below the median of earlier trials at that epoch, and a trial whose loss turns "
    "non-finite counts as pruned. Running the command again with the same --name continues the study: "
    "--trials is the total, so only the missing trials run. Ctrl+C stops the running trial after its "
    "batch; finished trials stay in the study.")
_PARAM_HELP = (
    "what to vary, repeatable: training.SETTING or NODE.PARAMETER (a node by its name), then "
    "log:LOW:HIGH, float:LOW:HIGH, int:LOW:HIGH or choice:A,B,... "
    "(e.g. training.learning_rate=log:1e-4:1e-1, conv1.out_channels=int:4:32, training.optimizer=choice:adam,sgd)")


def add_parser(subparsers: argparse._SubParsersAction) -> None:
    from dlstudio.core.sweep.study import SAMPLERS

    parser = subparsers.add_parser("sweep", help="search settings and node parameters over many runs (Optuna)",
                                   description=_DESCRIPTION)
    parser.add_argument("file", metavar="FILE", help="a .dlstudio project file")
    parser.add_argument("--param", action="append", default=[], metavar="TARGET=RANGE", help=_PARAM_HELP)
    parser.add_argument("--trials", type=int, default=20, metavar="N",
                        help="trials the study should hold when done, counting earlier ones (default 20)")
    parser.add_argument("--sampler", choices=SAMPLERS, default="tpe",
                        help="how values are chosen: Optuna's TPE (default), random, or a grid "
                             "(ranges at 5 points)")
    parser.add_argument("--timeout", type=float, metavar="SECONDS",
                        help="start no new trial after this many seconds (the running one finishes)")
    parser.add_argument("--parallel", type=int, default=1, metavar="K",
                        help="run K trials at once in separate processes, each with its share of the CPU threads")
    parser.add_argument("--epochs", type=int, metavar="N", help="epochs per trial (default: the project's)")
    parser.add_argument("--name", default="sweep", help="the study's name in the study file (default: sweep)")
    parser.add_argument("--no-pruning", dest="pruning", action="store_false", help="let every trial finish")
    parser.add_argument("--device", choices=("auto", "cpu", "cuda", "mps"),
                        help="where to train (default: the project's)")
    parser.add_argument("--json", action="store_true",
                        help='print one JSON object at the end: {"study", "name", "target", "ran", "stopped", '
                             '"counts", "trials": [{"number", "state", "value", "params", "epochs", "pruned_at", '
                             '"run_dir", "message"}]}')
    parser.set_defaults(run=run)


def _params_text(params: dict[str, Any]) -> str:
    return ", ".join(f"{name}={_value(value)}" for name, value in params.items())


def _value(value: Any) -> str:
    if isinstance(value, float):
        return f"{value:.4g}"
    return str(value)


def _metric_text(value: float | None, metric: str) -> str:
    if value is None:
        return "-"
    return f"{value:.2%}" if metric == "val_accuracy" else f"{value:.4f}"


def run(args: argparse.Namespace) -> int:
    from dlstudio.core.sweep.runner import SweepControl, SweepSettings, TrialEvent, run_sweep
    from dlstudio.core.sweep.space import parse_params
    from dlstudio.core.sweep.study import StudySpec, open_study, study_path, trial_rows

    project = load(args.file)
    project_path = Path(args.file)
    if project_path.is_symlink():  # runs and the study go beside the real file
        project_path = Path(os.path.realpath(project_path))
    params = parse_params(args.param, project.graph)
    metric = "val_accuracy"
    spec = StudySpec(study_path(project_path), args.name, tuple(params), args.sampler, metric, args.pruning)
    settings = SweepSettings(project_path, spec, args.trials, args.epochs, args.timeout, args.parallel, args.device)
    out = sys.stderr

    def on_event(event: TrialEvent) -> None:
        where = f"trial {event.number + 1}/{event.target}"
        if event.state == "running" and event.epoch == 0:
            print(f"{where}: {_params_text(event.params)}", file=out, flush=True)
        elif event.state == "running":
            print(f"  {where} epoch {event.epoch}/{event.epochs}: val accuracy "
                  f"{_metric_text(event.value, metric)}", file=out, flush=True)
        elif event.state == "complete":
            print(f"{where} complete: best val accuracy {_metric_text(event.value, metric)}", file=out, flush=True)
        elif event.state == "pruned":
            print(f"{where} pruned at epoch {event.pruned_at}: {printable(event.message)}", file=out, flush=True)
        elif event.run_dir is None:  # refused before it started: the values are not printed yet
            print(f"{where} {event.state}: {_params_text(event.params)}: {printable(event.message)}", file=out,
                  flush=True)
        else:
            print(f"{where} {event.state}: {printable(event.message)}", file=out, flush=True)

    control = SweepControl()
    with ctrl_c_stops(control, "stopping the sweep after this batch"):
        outcome = run_sweep(settings, project, on_event, control)
    if args.json:
        study = open_study(spec)
        print(json.dumps({"study": str(spec.path), "name": spec.name, "target": outcome.target, "ran": outcome.ran,
                          "stopped": outcome.stopped, "counts": outcome.counts, "trials": trial_rows(study)}))
    else:
        tally = outcome.counts
        print(f"{printable(spec.path)} ({spec.name}): {tally['done']}/{outcome.target} trials done "
              f"({tally['complete']} complete, {tally['pruned']} pruned, {tally['failed']} failed)"
              + ("; stopped" if outcome.stopped else "; time budget spent" if outcome.timed_out else ""))
        if outcome.best:
            print("best trials:")
            print(f"  {'trial':>5}  {'val acc':>8}  {'epochs':>6}  run / values")
            for row in outcome.best:
                print(f"  {row['number'] + 1:>5}  {_metric_text(row['value'], metric):>8}  "
                      f"{row['epochs'] if row['epochs'] is not None else '-':>6}  "
                      f"{row['run_dir'] or '-'}  {_params_text(row['params'])}")
    return EXIT_INTERRUPTED if outcome.stopped else 0

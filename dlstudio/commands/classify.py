"""``dlstudio classify``: top-k classes of image files and folders with a run's trained model."""

from __future__ import annotations

import argparse
import csv
import json
import math
import sys
from pathlib import Path
from typing import Any

from dlstudio.commands.common import check_writable
from dlstudio.core.text import printable

_JSON_HELP = ('print a JSON array instead: [{"file", "top": [{"label", "probability"}...]}...]; a file that '
              'could not be read has an empty "top" and an "error" with the reason')


def add_parser(subparsers: argparse._SubParsersAction) -> None:
    parser = subparsers.add_parser(
        "classify", help="classify images with a trained run's model",
        description="Classify image files and folders (walked recursively) with a run's model, preprocessed as "
                    "the run's validation data was. Give a run folder, or a project file to use its latest run. "
                    "Files that are not images are listed with the reason. Exits with 0 when at least one image "
                    "was classified, 2 when none was.")
    parser.add_argument("run_or_project", metavar="RUN_DIR_OR_PROJECT",
                        help="a run folder (NAME.runs/<timestamp>) or a .dlstudio project file (its latest run)")
    parser.add_argument("images", metavar="IMAGE_OR_FOLDER", nargs="+", help="image files or folders of images")
    parser.add_argument("--top", type=int, default=5, metavar="K", help="how many classes to show per image "
                                                                         "(default: 5)")
    parser.add_argument("--json", action="store_true", help=_JSON_HELP)
    parser.add_argument("--csv", metavar="OUT", help="also write the predictions to this CSV file")
    parser.add_argument("--force", action="store_true", help="overwrite the --csv file if it exists")
    parser.add_argument("--checkpoint", choices=("best", "last"), default="best",
                        help="which of the run's checkpoints to use (default: best)")
    parser.add_argument("--weights", metavar="FILE.safetensors",
                        help="use these weights (a safetensors file from 'dlstudio export --format safetensors') "
                             "instead of the run's checkpoint; the run still gives the graph and preprocessing")
    parser.add_argument("--device", choices=("auto", "cpu", "cuda", "mps"), default="auto",
                        help="where to run the model (default: auto)")
    parser.set_defaults(run=run)


def run(args: argparse.Namespace) -> int:
    from dlstudio.commands.common import CommandError
    from dlstudio.core.inspect import load_trained

    if args.top < 1:
        raise CommandError(f"--top must be at least 1; got {args.top}")
    if args.csv:
        check_writable(Path(args.csv), args.force)
    trained = load_trained(args.run_or_project, which=args.checkpoint, device=args.device)
    if args.weights:
        from dlstudio.core.export.safetensors_weights import load_weights_into

        load_weights_into(trained.model, trained.graph, args.weights)
    if not trained.preprocessor.takes_images:
        raise CommandError(f"this run's model takes table rows of {list(trained.input_shape)} values, not images")
    results = []
    for result in trained.classify_paths(args.images, top_k=args.top):
        if result.ok and not all(math.isfinite(score.probability) for score in result.prediction.top):
            # NaN weights, or a zero standard deviation in the run's normalization: every answer would be nan%.
            raise CommandError(f"this run's model gives no valid probabilities (NaN or infinity for "
                               f"{printable(result.path)}): its weights or its normalization statistics are "
                               f"broken; retrain it or use the other checkpoint")
        results.append(result)
        if not args.json:
            print(_text_line(result), flush=True)
    if args.json:
        print(json.dumps([_json_item(result) for result in results]))
    if args.csv:
        _write_csv(Path(args.csv), results, min(args.top, len(trained.class_names)))
    succeeded = sum(result.ok for result in results)
    failed = len(results) - succeeded
    if succeeded == 0:
        print(f"dlstudio: error: none of the {len(results)} file(s) could be classified", file=sys.stderr)
        return 2
    if failed:
        print(f"classified {succeeded} image(s); {failed} file(s) could not be read", file=sys.stderr)
    return 0


def _text_line(result: Any) -> str:
    if not result.ok:
        return f"{printable(result.path)}: skipped: {printable(result.error)}"
    # Class names come from folder names and run files, paths from the file system: escaped, so that a
    # newline or an ANSI escape sequence in them cannot forge or recolour lines.
    top = ", ".join(f"{printable(score.label)} {score.probability:.1%}" for score in result.prediction.top)
    return f"{printable(result.path)}: {top}"


def _json_item(result: Any) -> dict[str, Any]:
    if not result.ok:
        return {"file": result.path, "top": [], "error": result.error}
    return {"file": result.path, "top": [{"label": score.label, "probability": round(score.probability, 6)}
                                         for score in result.prediction.top]}


def _write_csv(path: Path, results: list[Any], top_k: int) -> None:
    header = ["file"]
    for rank in range(1, top_k + 1):
        header += [f"label_{rank}", f"probability_{rank}"]
    header.append("error")
    import io

    from dlstudio.core.safe_io import write_text

    handle = io.StringIO(newline="")
    writer = csv.writer(handle)
    writer.writerow(header)
    for result in results:
        row: list[Any] = [result.path]
        scores = result.prediction.top if result.ok else ()
        for rank in range(top_k):
            row += [scores[rank].label, f"{scores[rank].probability:.6f}"] if rank < len(scores) else ["", ""]
        row.append(result.error or "")
        writer.writerow(row)
    write_text(path, handle.getvalue())  # a unique temporary beside it, no links followed, then a rename

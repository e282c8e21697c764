"""``dlstudio evaluate``: a run's model on a labelled image folder: accuracy, per-class metrics, mistakes."""

from __future__ import annotations

import argparse
import json
from typing import Any

from dlstudio.core.text import printable


def add_parser(subparsers: argparse._SubParsersAction) -> None:
    parser = subparsers.add_parser(
        "evaluate", help="measure a run's model on a labelled image folder",
        description="Classify every image of FOLDER (one subfolder per class, named after the model's classes) "
                    "with a run's model, prepared as its validation data was, and report accuracy, top-k "
                    "accuracy, per-class precision, recall, F1 and support, the confusion matrix and the "
                    "worst-classified files (computed with sklearn.metrics).")
    parser.add_argument("run_or_project", metavar="RUN_OR_PROJECT",
                        help="a run folder, or a .dlstudio project file (its latest run)")
    parser.add_argument("folder", metavar="FOLDER", help="a folder with one subfolder of images per class")
    parser.add_argument("--json", action="store_true", help="print one JSON object instead of tables")
    parser.add_argument("--top", type=int, default=5, metavar="K", help="k of the top-k accuracy (default: 5)")
    parser.add_argument("--worst", type=int, default=10, metavar="N",
                        help="how many worst-classified files to list (default: 10)")
    parser.add_argument("--checkpoint", choices=("best", "last"), default="best",
                        help="which of the run's checkpoints to use (default: best)")
    parser.add_argument("--weights", metavar="FILE.safetensors", help="use these weights instead of the run's "
                                                                      "checkpoint")
    parser.add_argument("--device", choices=("auto", "cpu", "cuda", "mps"), default="auto",
                        help="where to run the model (default: auto)")
    parser.set_defaults(run=run)


def run(args: argparse.Namespace) -> int:
    from dlstudio.commands.common import CommandError
    from dlstudio.core.inspect import load_trained
    from dlstudio.core.inspect.evaluate import evaluate_folder

    if args.top < 1 or args.worst < 0:
        raise CommandError("--top must be at least 1 and --worst at least 0")
    trained = load_trained(args.run_or_project, which=args.checkpoint, device=args.device)
    if args.weights:
        from dlstudio.core.export.safetensors_weights import load_weights_into

        load_weights_into(trained.model, trained.graph, args.weights)
    if trained.task != "classification" or not trained.preprocessor.takes_images:
        raise CommandError("evaluate needs a run whose model classifies images")
    evaluation = evaluate_folder(trained, args.folder, top_k=args.top)
    if args.json:
        print(json.dumps(evaluation.to_dict(args.worst)))
    else:
        for line in _text(evaluation, args.worst):
            print(printable(line))
    return 0


def _text(evaluation: Any, worst: int) -> list[str]:
    report = evaluation.report()
    k = min(evaluation.top_k, len(evaluation.class_names))
    lines = [f"{len(evaluation.files)} images in {evaluation.folder}"
             + (f" ({len(evaluation.skipped)} skipped)" if evaluation.skipped else ""),
             f"accuracy {evaluation.accuracy:.2%}   top-{k} accuracy {evaluation.top_k_accuracy:.2%}", ""]
    names = [evaluation.class_names[i] for i in evaluation.labels]
    width = max([len("weighted avg"), *(len(name) for name in names)])
    lines.append(f"{'class':<{width}}  precision  recall  f1-score  support")
    for name in [*names, "macro avg", "weighted avg"]:
        row = report[name]
        lines.append(f"{name:<{width}}  {row['precision']:9.3f}  {row['recall']:6.3f}  {row['f1-score']:8.3f}  "
                     f"{int(row['support']):7d}")
    lines += ["", "confusion matrix (rows: true class, columns: predicted class)"]
    cell = max(5, *(len(name) for name in names))
    lines.append(" " * (width + 2) + " ".join(f"{name:>{cell}}" for name in names))
    for name, counts in zip(names, evaluation.confusion()):
        lines.append(f"{name:<{width}}  " + " ".join(f"{count:>{cell}d}" for count in counts))
    mistakes = evaluation.worst(worst)
    if mistakes:
        lines += ["", "worst-classified files (the model was surest of these mistakes):"]
        lines += [f"  {m['file']}: {m['true']} taken for {m['predicted']} ({m['predicted_probability']:.1%}; "
                  f"{m['true']}: {m['true_probability']:.1%})" for m in mistakes]
    for file, reason in evaluation.skipped:
        lines.append(f"skipped {file}: {reason}")
    return lines

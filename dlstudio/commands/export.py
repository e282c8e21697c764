"""``dlstudio export``: write a project's model as code, TorchScript, ONNX, safetensors or a training script.

Every format but the training script carries a run's trained weights (the
project's latest run with a checkpoint, or ``--run``) and is verified when it
is written; a ``preprocess.json`` beside the file says how to prepare inputs.
"""

from __future__ import annotations

import argparse
import sys
from collections.abc import Callable
from pathlib import Path
from shlex import quote
from typing import Any

from dlstudio.commands.common import CommandError, check_writable, load
from dlstudio.core.errors import DlstudioError
from dlstudio.core.project.model import Project
from dlstudio.core.text import printable


def _write_python(project: Project, path: Path, args: argparse.Namespace) -> list[str]:
    from dlstudio.core.export.python_code import export_python, required_packages
    from dlstudio.core.safe_io import write_text

    code = export_python(project.graph, class_name=args.class_name, description=project.description)
    write_text(path, code)  # a unique temporary beside it, no links followed, then a rename
    lines = [f"wrote {path}: class {args.class_name} (needs {', '.join(required_packages(project.graph))}); "
             f"try it with: python {quote(path.name)}"]
    try:
        source = _source(project, args, required=False)
    except DlstudioError as error:  # the code is written; a damaged run only changes what is said about weights
        from dlstudio.core.export.source import from_project

        lines.append(f"the latest run cannot be read ({error.message}); preprocess.json describes the project")
        source = from_project(project)
    if source.trained and _changed_note(project, source):
        lines.append(f"the class is the project's network, changed after run {source.run_dir.name} was trained: "
                     f"that run's weights may not fit it (train again, or export the run's network as "
                     f"torchscript or onnx)")
    elif source.trained:
        weights = path.with_suffix(".safetensors")
        lines.append(f"the class is code only; to load the {source.weights_text()} into it, write them with: "
                     f"dlstudio export {quote(args.file)} --format safetensors -o {quote(str(weights))}"
                     f" (then load_state_dict)")
    else:
        lines.append("the class starts with random weights (the project has no trained run)")
    lines += _write_preprocess(source, path, args)
    return lines


def _write_torchscript(project: Project, path: Path, args: argparse.Namespace) -> list[str]:
    source = _source(project, args, required=True)
    done = _verified(source, "torchscript", path, args)
    return [f"wrote {path}: TorchScript (traced), {source.weights_text()}; load it with torch.jit.load",
            done.verification.text(), _preprocess_line(done.preprocess_path, done.preprocess_written),
            *_changed_note(project, source), *_starting_note(source)]


def _write_onnx(project: Project, path: Path, args: argparse.Namespace) -> list[str]:
    source = _source(project, args, required=True)
    done = _verified(source, "onnx", path, args)
    return [f"wrote {path}: ONNX opset {args.opset}, dynamic batch axis, {source.weights_text()}; checked by "
            f"onnx.checker", f"onnxruntime {done.verification.text()}",
            _preprocess_line(done.preprocess_path, done.preprocess_written), *_changed_note(project, source),
            *_starting_note(source)]


def _write_safetensors(project: Project, path: Path, args: argparse.Namespace) -> list[str]:
    source = _source(project, args, required=True)
    done = _verified(source, "safetensors", path, args)
    return [f"wrote {path}: {done.tensors} tensors, {source.weights_text()}; class names, normalization, "
            f"Input shape and the graph in its metadata", f"reloaded and {done.verification.text()}",
            _preprocess_line(done.preprocess_path, done.preprocess_written), *_changed_note(project, source),
            *_starting_note(source)]


def _starting_note(source: Any) -> list[str]:
    """What of the starting weights fitted, when an untrained project is exported with them."""
    return [source.starting_summary] if source.starting_summary else []


def _changed_note(project: Project, source: Any) -> list[str]:
    """``note: ...`` when the project's network was edited after the run whose weights are exported."""
    from dlstudio.core.export.source import changed_since_run

    note = changed_since_run(project.graph, source)
    return [f"note: {note}"] if note else []


def _verified(source: Any, format_name: str, path: Path, args: argparse.Namespace) -> Any:
    from dlstudio.core.export.verified import export_verified

    return export_verified(source, format_name, path, opset=args.opset, replace_preprocess=args.force)


def _write_script(project: Project, path: Path, args: argparse.Namespace) -> list[str]:
    from dlstudio.core.export.python_code import required_packages
    from dlstudio.core.export.source import from_graph
    from dlstudio.core.export.training_script import export_training_script
    from dlstudio.core.safe_io import write_text

    graph, data, training = project.graph, dict(project.data), dict(project.training)
    where = "the project's settings"
    run_dir = _chosen_run(args)
    if run_dir is not None:
        from dlstudio.core.training.runs import RunDataError, validated_run_settings

        try:
            _, graph, data, training = validated_run_settings(run_dir, for_resume=False)
        except RunDataError as error:
            raise CommandError(error.message) from None
        where = f"the settings of run {run_dir.name}"
    if data.get("source") == "folder" and data.get("path") and not Path(data["path"]).expanduser().is_absolute():
        # The script may run from anywhere: a folder relative to the project is written out in full.
        data["path"] = str((Path(args.file).resolve().parent / data["path"]).resolve())
    code = export_training_script(graph, data, training, description=project.description)
    write_text(path, code)
    source = from_graph(graph, data_settings=data, training_settings=training)
    source.data_dir = Path(args.file).resolve().parent
    needs = ", ".join(required_packages(graph, script=True))
    lines = [f"wrote {path}: a standalone training script with {where} (needs {needs}); "
             f"see its options with: python {quote(path.name)} --help"]
    if project.weights is not None or any(True for _ in project.frozen):
        lines.append("the script starts from random weights and trains every layer: the project's starting "
                     "weights and frozen nodes are not replayed")
    return [*lines, *_write_preprocess(source, path, args)]


# Format name -> writer(project, path, args) returning the lines to print. New formats go here.
EXPORTERS: dict[str, Callable[[Project, Path, argparse.Namespace], list[str]]] = {
    "python": _write_python,
    "torchscript": _write_torchscript,
    "onnx": _write_onnx,
    "safetensors": _write_safetensors,
    "script": _write_script,
}
# The file names each format usually has (a note, not a refusal, when the output's differs).
SUFFIXES = {"python": (".py",), "torchscript": (".pt", ".pth", ".ts"), "onnx": (".onnx",),
            "safetensors": (".safetensors",), "script": (".py",)}


def add_parser(subparsers: argparse._SubParsersAction) -> None:
    parser = subparsers.add_parser(
        "export", help="export the model (PyTorch code, TorchScript, ONNX, safetensors, a training script)",
        description="Export a project's model. python: one standalone file that imports torch (and "
                    "torchvision or onnx2torch when imported modules need them), with a class whose "
                    "state_dict keys are the node ids. torchscript, onnx, safetensors: the trained "
                    "weights of a run (--run, default: the project's latest run with a checkpoint; its best "
                    "checkpoint if kept, else its last), verified when written against the model on random "
                    "inputs and on validation samples (ONNX through onnxruntime, refused above a difference of "
                    "1e-4). script: a standalone training script with the project's data, split, augmentation, "
                    "optimizer, schedule and seed. A preprocess.json beside the file says how to prepare inputs.")
    parser.add_argument("file", metavar="FILE", help="a .dlstudio project file")
    parser.add_argument("--format", choices=tuple(EXPORTERS), default="python", help="what to write (default: python)")
    parser.add_argument("--run", dest="run_name", metavar="RUN",
                        help="the run folder (or its name in the project's runs folder) whose weights to export "
                             "(default: the latest trained run, else the weights the project starts from)")
    parser.add_argument("-o", "--output", metavar="OUT", required=True, help="the file to write")
    parser.add_argument("--class-name", default="Model", help="name of the generated class (default: Model)")
    parser.add_argument("--opset", type=int, default=17, metavar="N", help="ONNX opset version (default: 17)")
    parser.add_argument("--force", action="store_true", help="overwrite OUT (and a different preprocess.json "
                                                             "beside it) if they exist")
    parser.set_defaults(run=run)


def run(args: argparse.Namespace) -> int:
    path = Path(args.output)
    from dlstudio.core.export.preprocess_info import check_export_target

    check_export_target(path)  # a link or a missing folder: refused before anything is written (even with --force)
    check_writable(path, args.force)
    if not 7 <= args.opset <= 21:
        raise CommandError(f"--opset must be between 7 and 21; got {args.opset}")
    project = load(args.file)
    for line in EXPORTERS[args.format](project, path, args):
        print(printable(line))
    expected = SUFFIXES[args.format]
    if path.suffix.lower() not in expected:
        print(printable(f"note: {path.name} holds {args.format} but is named like another kind of file; "
                        f"{' or '.join(expected)} is usual"), file=sys.stderr)
    return 0


def _chosen_run(args: argparse.Namespace) -> Path | None:
    """The run folder --run names (a path, or a name inside the project's runs folder); None without --run."""
    if not args.run_name:
        return None
    from dlstudio.core.project.document import runs_folder

    candidates = [Path(args.run_name), runs_folder(Path(args.file)) / args.run_name]
    for candidate in candidates:
        if (candidate / "settings.json").is_file():
            return candidate
    raise CommandError(f"--run {args.run_name}: no run folder there (nor in {runs_folder(Path(args.file)).name})")


def _source(project: Project, args: argparse.Namespace, *, required: bool) -> Any:
    """The export's model: --run's, else the latest trained run's, else the project's starting weights (an
    import's, torchvision's); random weights only when not ``required``."""
    from dlstudio.core.export.source import from_project, from_run, from_starting_weights, latest_trained_run

    run_dir = _chosen_run(args) or latest_trained_run(args.file)
    if run_dir is not None:
        return from_run(run_dir)
    if required and project.weights is not None:
        return from_starting_weights(project)
    if required:
        raise CommandError(f"{Path(args.file).name} has no trained run to take weights from; train it first "
                           f"(dlstudio train {quote(args.file)}) or export --format python (random weights)")
    source = from_project(project)
    source.data_dir = Path(args.file).resolve().parent
    return source


def _write_preprocess(source: Any, export_path: Path, args: argparse.Namespace) -> list[str]:
    """preprocess.json beside the export; one that exists with other contents is kept unless --force."""
    from dlstudio.core.export.preprocess_info import write_preprocess

    return [_preprocess_line(*write_preprocess(source, export_path, replace=args.force))]


def _preprocess_line(path: Path, written: bool) -> str:
    if not written:
        return f"kept the existing {path} (it describes another export: another model or run; --force replaces it)"
    return f"wrote {path}: how to prepare inputs (channels, size, normalization, class names)"

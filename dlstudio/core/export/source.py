"""What an export is made of: the graph, the model with its weights, and how its inputs are prepared.

A trained export comes from a run folder (its graph, its best checkpoint when
one was kept, else the last, its class names and normalization); a project
without a run gives the project's graph with random weights, which only the
Python code export accepts from the command line.
"""

from __future__ import annotations

import hashlib
import json
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import torch

from dlstudio.core.compiler import GraphModule, compile_graph
from dlstudio.core.data.normalization import Normalization
from dlstudio.core.export.errors import ExportError
from dlstudio.core.graph import Graph

# The checkpoint files of a run, in the order an export prefers them.
_CHECKPOINT_PREFERENCE = (("best", "best.pt"), ("last", "last.pt"))


@dataclass
class ExportSource:
    """A model ready to export, in eval mode on the CPU, with what a person needs to feed it.

    ``run_dir`` and ``checkpoint`` are None for random weights. ``data_settings``
    and ``training_settings`` are the run's (or the project's) settings.
    """

    graph: Graph
    model: GraphModule
    class_names: list[str]
    normalization: Normalization | None
    data_settings: dict[str, Any] = field(default_factory=dict)
    training_settings: dict[str, Any] = field(default_factory=dict)
    run_dir: Path | None = None
    checkpoint: Path | None = None
    run_settings: dict[str, Any] = field(default_factory=dict, repr=False)
    # Where relative data paths are resolved (the project's folder); None: the current folder.
    data_dir: Path | None = None
    # The starting weights loaded when there is no run (an import's own, torchvision's, a file's), as the
    # Training panel names them, and what of them fitted; "" for random weights.
    starting_weights: str = ""
    starting_summary: str = ""
    # Prepared once per export: every verification compares on the same samples.
    _samples: dict[int, torch.Tensor | None] = field(default_factory=dict, init=False, repr=False, compare=False)

    @property
    def input_shape(self) -> tuple[int, ...]:
        return tuple(self.model.input_shapes[self.model.input_ids[0]])

    @property
    def trained(self) -> bool:
        return self.checkpoint is not None

    @property
    def task(self) -> str:
        return str(self.model.tasks[self.model.output_ids[0]].get("task", "classification"))

    def weights_text(self) -> str:
        """Where the weights come from, for the line the command prints."""
        if self.checkpoint is not None and self.run_dir is not None:
            return f"weights of run {self.run_dir.name} ({self.checkpoint.name})"
        if self.starting_weights:
            return f"starting weights from {self.starting_weights} (not trained here)"
        return "random weights (no trained run)"

    def validation_samples(self, count: int = 8) -> torch.Tensor | None:
        """Up to ``count`` samples of the run's validation split, preprocessed as in training; None without them.

        None without data settings, or when the data cannot be read now (a moved
        folder, a dataset not downloaded): the verification then says it used random inputs only.
        """
        if count not in self._samples:
            self._samples[count] = self._read_validation_samples(count)
        return self._samples[count]

    def _read_validation_samples(self, count: int) -> torch.Tensor | None:
        if not self.data_settings:
            return None
        from dlstudio.core.data import DataRequirements, prepare_data
        from dlstudio.core.errors import DlstudioError
        from dlstudio.core.training.pretrained import recorded_normalization

        try:  # normalized as the run was (a run from pretrained weights used the weights' statistics)
            prepared = prepare_data(self.data_settings, DataRequirements.from_model(self.model),
                                    base_dir=self.data_dir, allow_download=False,
                                    normalization=recorded_normalization(self.run_settings))
        except (DlstudioError, OSError):
            return None
        try:
            split = prepared.val if len(prepared.val) else prepared.test
            for x, _ in split.in_order(count):
                return x[:count].detach().float().contiguous()
            return None
        finally:
            for name in ("train", "val", "test"):
                getattr(prepared, name).close()


def graph_hash(graph: Graph) -> str:
    """A SHA-256 of the graph's canonical JSON: ties weights to the graph they were trained for."""
    text = json.dumps(graph.to_dict(), sort_keys=True, separators=(",", ":"))
    return hashlib.sha256(text.encode("utf-8")).hexdigest()


def changed_since_run(project_graph: Graph, source: ExportSource) -> str | None:
    """A sentence when the project's network differs from the run's (edited after training); else None.

    A trained export is the network the run trained, so a change made since on the canvas is not in it.
    """
    if source.run_dir is None or graph_hash(project_graph) == graph_hash(source.graph):
        return None
    return (f"the network was changed after run {source.run_dir.name} was trained: this export is the network "
            f"as that run trained it, without the changes (train again to export them)")


def from_graph(graph: Graph, *, seed: int = 0, class_names: list[str] | None = None,
               normalization: Normalization | None = None, data_settings: dict[str, Any] | None = None,
               training_settings: dict[str, Any] | None = None) -> ExportSource:
    """The graph compiled with random weights drawn from ``seed`` (as training would start)."""
    torch.manual_seed(seed)
    model = compile_graph(graph).eval()
    classes = class_names if class_names is not None else _default_class_names(model)
    return ExportSource(graph, model, classes, normalization, dict(data_settings or {}), dict(training_settings or {}))


def from_project(project: Any) -> ExportSource:
    """A project's graph with random weights, its settings and recorded normalization (no run needed)."""
    normalization = None
    if project.normalization is not None:
        normalization = Normalization(tuple(project.normalization.mean), tuple(project.normalization.std))
    source = from_graph(project.graph, seed=int(project.training.get("seed", 0)), normalization=normalization,
                        data_settings=dict(project.data), training_settings=dict(project.training))
    source.data_dir = project.path.parent if project.path is not None else None
    return source


def from_starting_weights(project: Any) -> ExportSource:
    """A project not trained here, with the weights it starts from (an imported ONNX file's own, torchvision's
    pretrained ones, a weights file or an earlier run): an imported network exported as it came.

    Normalized as those weights expect (ImageNet's statistics for torchvision's). ExportError (one line) when
    the project names no starting weights or they cannot be read now (not downloaded: where the file goes).
    """
    from dlstudio.core.errors import DlstudioError
    from dlstudio.core.training.pretrained import load_weights, weights_normalization

    if project.weights is None:
        raise ExportError("the network starts from random weights and has no trained run to export")
    source = from_project(project)
    base_dir = project.path.parent if project.path is not None else None
    try:
        loaded = load_weights(source.model, project.graph, project.weights, base_dir=base_dir)
        normalization = weights_normalization(project.weights, base_dir)
    except DlstudioError as error:
        raise ExportError(error.message) from None
    source.model.eval()
    if normalization is not None:
        source.normalization = normalization
    source.starting_weights = project.weights.describe()
    source.starting_summary = loaded.summary
    return source


def latest_trained_run(project_path: Path | str) -> Path | None:
    """The project's most recent run folder that holds a checkpoint; None when no run has one."""
    from dlstudio.core.project import load_project

    project_path = Path(project_path)
    project = load_project(project_path)
    for entry in reversed(project.runs):
        run_dir = project_path.parent / entry
        if any((run_dir / name).is_file() for _, name in _CHECKPOINT_PREFERENCE):
            return run_dir
    return None


def from_run(run_dir: Path | str) -> ExportSource:
    """A run's model with its best checkpoint when one was kept, else its last one."""
    from dlstudio.core.errors import DlstudioError
    from dlstudio.core.inspect import load_trained

    run_dir = Path(run_dir)
    available = [which for which, name in _CHECKPOINT_PREFERENCE if (run_dir / name).is_file()]
    if not available:
        raise ExportError(f"run {run_dir.name} has no checkpoint to export (best.pt and last.pt are missing)")
    try:
        trained = load_trained(run_dir, which=available[0], device="cpu")
    except DlstudioError as error:
        raise ExportError(error.message) from None
    settings = trained.settings
    model = trained.model.cpu().eval()
    return ExportSource(trained.graph, model, list(trained.class_names), trained.normalization,
                        dict(settings.get("data") or {}), dict(settings.get("training") or {}), run_dir,
                        trained.checkpoint, settings, data_dir=run_dir.parent.parent)


def _default_class_names(model: GraphModule) -> list[str]:
    task = model.tasks[model.output_ids[0]] if model.output_ids else {}
    classes = task.get("classes") if task.get("task", "classification") == "classification" else None
    return [str(i) for i in range(int(classes))] if isinstance(classes, int) else []

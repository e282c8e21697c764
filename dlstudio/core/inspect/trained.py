"""A trained model from a run folder: the run's graph, its checkpoint weights, classes and preprocessing."""

from __future__ import annotations

import math
from collections.abc import Iterable, Iterator
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any

import torch

from dlstudio.core.compiler import GraphModule, compile_graph
from dlstudio.core.data.normalization import Normalization
from dlstudio.core.graph import Graph
from dlstudio.core.inspect.classify import ClassifiedFile, Prediction, classify_files, predictions, probabilities
from dlstudio.core.inspect.errors import InspectError
from dlstudio.core.inspect.input_recipe import PreparedImage, recipe_for_run
from dlstudio.core.inspect.preprocess import ImageLike, Preprocessor
from dlstudio.core.training.runs import model_size

CHECKPOINTS = {"best": "best.pt", "last": "last.pt"}
_CLASSIFICATION = "classification"


@dataclass
class TrainedModel:
    """A model ready for classification and inspection, on ``device``, in eval mode.

    ``graph`` is the run's graph (not the project's current one), so node ids
    match the weights. ``preprocessor`` prepares images as the run's
    validation data was prepared.
    """

    model: GraphModule
    graph: Graph
    class_names: list[str]
    preprocessor: Preprocessor
    task: str = _CLASSIFICATION
    run_dir: Path | None = None
    checkpoint: Path | None = None
    settings: dict[str, Any] = field(default_factory=dict, repr=False)
    _validation: Any = field(default=None, init=False, repr=False, compare=False)

    @property
    def device(self) -> torch.device:
        return next(iter(self.model.parameters()), torch.empty(0)).device

    @property
    def input_shape(self) -> tuple[int, ...]:
        return self.preprocessor.input_shape

    @property
    def normalization(self) -> Normalization | None:
        return self.preprocessor.normalization

    def preprocess(self, image: ImageLike) -> torch.Tensor:
        """One image (path, PIL image or array) as the model's input sample (no batch dimension, CPU)."""
        return self.preprocessor(image)

    def prepare(self, image: ImageLike) -> PreparedImage:
        """One image made to look like the training data, before normalization, with the steps taken."""
        return self.preprocessor.prepare(image)

    def classify(self, images: torch.Tensor | Iterable[ImageLike], top_k: int = 5) -> list[Prediction]:
        """Top-k predictions for a preprocessed batch (N, *input_shape) or for images to preprocess first
        (their predictions carry the steps that made them look like the training data)."""
        self._check_classifier()
        if isinstance(images, torch.Tensor):
            batch = images if images.ndim == len(self.input_shape) + 1 else images.unsqueeze(0)
            return predictions(probabilities(self.model, batch), self.class_names, top_k)
        prepared = [self.prepare(image) for image in images]
        batch = self.preprocessor.normalize(torch.stack([p.raw for p in prepared]))
        found = predictions(probabilities(self.model, batch), self.class_names, top_k)
        return [replace(prediction, steps=p.steps) for prediction, p in zip(found, prepared)]

    def classify_paths(self, paths: Iterable[Path | str], top_k: int = 5,
                       batch_size: int = 64) -> Iterator[ClassifiedFile]:
        """Classify files and folders (walked recursively); unreadable files come back with a reason."""
        self._check_classifier()
        return classify_files(self.model, self.preprocessor, self.class_names, paths, top_k, batch_size)

    def prepare_data(self, allow_download: bool = False) -> Any:
        """The run's data again, split and normalized exactly as in training (same settings, same seed).

        For the mistakes gallery and for checking a run; needs the run folder
        (relative data paths are resolved beside the project).
        """
        from dlstudio.core.data import DataRequirements, prepare_data
        from dlstudio.core.training.pretrained import recorded_normalization

        if self.run_dir is None or "data" not in self.settings:
            raise InspectError("this model was not loaded from a run folder, so its data settings are unknown")
        project_dir = self.run_dir.parent.parent
        # A run that started from pretrained weights was normalized as those weights expect (ImageNet's).
        return prepare_data(self.settings["data"], DataRequirements.from_model(self.model), base_dir=project_dir,
                            allow_download=allow_download, normalization=recorded_normalization(self.settings))

    def validation_split(self) -> Any:
        """The run's validation split, prepared once for this model and then kept: the mistakes gallery, the
        gradient histograms and the sample images all look at it (one at a time, on the session's worker)."""
        if self._validation is None:
            self._validation = self.prepare_data().val
        return self._validation

    def _check_classifier(self) -> None:
        if self.task != _CLASSIFICATION:
            raise InspectError(f"this model was trained for {self.task}, not classification; it has no classes")


def _misfit(model: GraphModule, weights: Any, error: Exception) -> str:
    """Which layers' weights are missing, unexpected or of another size, named as the person named them."""
    if not isinstance(weights, dict):
        return "the checkpoint holds no model weights"
    expected = model.state_dict()
    layers = {key.split(".", 1)[0] for key in set(expected) ^ set(weights)}
    layers |= {key.split(".", 1)[0] for key, value in weights.items()
               if key in expected and getattr(value, "shape", None) != expected[key].shape}
    known = sorted(model.node_name(node_id) for node_id in layers if node_id in model.node_names)
    if known:
        return f"the weights of {', '.join(known)} differ"
    if layers:
        return "it holds weights of layers the graph does not have"
    return "they were saved from another model"


def find_run_dir(path: Path | str) -> Path:
    """A run folder itself, or the latest run recorded in a project file."""
    path = Path(path)
    if path.is_dir():
        if not (path / "settings.json").is_file():
            raise InspectError(f"{str(path)!r} is not a run folder (it has no settings.json)")
        return path
    if not path.exists():
        raise InspectError(f"{str(path)!r} does not exist")
    if not path.is_file():  # a device, a pipe, a socket: refused before anything reads it
        raise InspectError(f"{str(path)!r} is neither a run folder nor a project file")
    from dlstudio.core.project import load_project

    project = load_project(path)
    if not project.runs:
        raise InspectError(f"the project {path.name!r} has no runs yet; train it first")
    run_dir = path.parent / project.runs[-1]
    if not (run_dir / "settings.json").is_file():
        raise InspectError(f"the latest run of {path.name!r} ({project.runs[-1]!r}) is missing or has no settings")
    return run_dir


def load_trained(run_dir_or_project: Path | str, which: str = "best", device: str = "auto") -> TrainedModel:
    """Load a run's model with its ``which`` checkpoint ("best" or "last"), ready on ``device``.

    The graph comes from the run's settings.json; weights load with
    ``weights_only=True``. InspectError (or CheckpointError) with a one-line reason otherwise.
    """
    from dlstudio.core.training import load_checkpoint, resolve_device
    from dlstudio.core.training.runs import RunDataError, validated_class_names, validated_run_settings

    if which not in CHECKPOINTS:
        raise InspectError(f"unknown checkpoint {which!r}; choose {' or '.join(CHECKPOINTS)}")
    run_dir = find_run_dir(run_dir_or_project)
    # settings.json checked like a project file: graph, data settings, model size limits.
    try:
        settings, graph, data_settings, _ = validated_run_settings(run_dir, for_resume=False)
    except RunDataError as error:
        raise InspectError(error.message) from None
    target = resolve_device(device)
    checkpoint = run_dir / CHECKPOINTS[which]
    _check_weights_fit(graph, checkpoint)
    model = compile_graph(graph)
    state = load_checkpoint(checkpoint, map_location="cpu")
    weights = state.get("model")
    if not (isinstance(weights, dict) and all(isinstance(key, str) and isinstance(value, torch.Tensor)
                                              for key, value in weights.items())):
        raise InspectError(f"the checkpoint {str(checkpoint)!r} is damaged: its model weights are not all tensors")
    try:
        model.load_state_dict(weights)
    except (RuntimeError, KeyError, TypeError, ValueError) as error:
        # torch's text names state_dict keys (node ids): say which layers in the person's words instead.
        raise InspectError(f"the weights in {str(checkpoint)!r} do not fit the run's graph: "
                           f"{_misfit(model, weights, error)}") from None
    model.to(target).eval()
    meta = state.get("meta") or {}
    summary = settings.get("data_summary") or {}
    if not isinstance(meta, dict) or not isinstance(summary, dict):
        raise InspectError(f"run {run_dir.name}: its checkpoint or settings hold no readable details of the data")
    what = f"run {run_dir.name}"
    input_shape = tuple(model.input_shapes[model.input_ids[0]])
    normalization = _normalization(meta.get("normalization", summary.get("normalization")), input_shape, what)
    # How the training images were made, replayed on a person's pictures (a folder's path resolved beside
    # the project, as prepare_data does).
    recipe = recipe_for_run(data_settings, base_dir=run_dir.parent.parent)
    preprocessor = Preprocessor(input_shape, str(data_settings.get("source", "digits")), normalization, recipe)
    task = str(model.tasks[model.output_ids[0]].get("task", _CLASSIFICATION)) if model.output_ids else _CLASSIFICATION
    try:
        class_names = validated_class_names(meta.get("class_names") or summary.get("class_names") or [], what)
    except RunDataError as error:
        raise InspectError(error.message) from None
    if task == _CLASSIFICATION and class_names:
        outputs = _output_size(model)
        if outputs is not None and outputs != len(class_names):
            raise InspectError(f"{what}: {len(class_names)} class names for a model with {outputs} outputs")
    return TrainedModel(model, graph, class_names, preprocessor, task, run_dir, checkpoint, settings)


def _check_weights_fit(graph: Graph, checkpoint: Path) -> None:
    """Refuse, before the model is built, a graph far larger than the checkpoint could hold weights for.

    A checkpoint stores every weight as float32, so it is at least 4 bytes per
    parameter: a graph needing more (a damaged or hand-edited settings.json) would
    otherwise allocate its whole size first.
    """
    try:
        size = checkpoint.stat().st_size
    except OSError:
        return  # load_checkpoint says why it cannot be read
    parameters, _ = model_size(graph)
    if parameters * 4 > size:
        raise InspectError(f"the weights in {str(checkpoint)!r} do not fit the run's graph: the graph needs "
                           f"{parameters:,} weights, the file holds at most {size // 4:,}")


def _output_size(model: GraphModule) -> int | None:
    with_classes = [task.get("classes") for task in model.tasks.values() if isinstance(task, dict)]
    sizes = [size for size in with_classes if isinstance(size, int)]
    return sizes[0] if len(sizes) == 1 else None


def _normalization(value: Any, input_shape: tuple[int, ...], what: str) -> Normalization | None:
    """The run's normalization statistics, checked: lists of finite numbers, one per channel (or one), std > 0."""
    if value is None:
        return None
    if not isinstance(value, dict):
        raise InspectError(f"{what}: its normalization statistics are not a table")
    channels = input_shape[0] if input_shape else 1
    lists = [value.get("mean"), value.get("std")]
    for name, numbers in zip(("mean", "std"), lists):
        if not (isinstance(numbers, list) and 0 < len(numbers) <= max(1, channels)
                and len(numbers) in (1, channels)
                and all(isinstance(v, (int, float)) and not isinstance(v, bool) and math.isfinite(v)
                        for v in numbers)):
            raise InspectError(f"{what}: its normalization {name} is not a list of finite numbers, one per "
                               f"channel of the input")
    if any(v <= 0 for v in lists[1]):
        raise InspectError(f"{what}: its normalization std holds zero or a negative number")
    return Normalization.from_dict(value)

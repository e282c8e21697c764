"""What a sweep varies: training settings and named node parameters over ranges (no torch, no Qt).

A parameter is written ``TARGET=KIND:...``, as on the command line:

* ``training.learning_rate=log:1e-4:1e-1``: a training setting, sampled on a log scale;
* ``training.weight_decay=float:0:0.5``: uniformly between two numbers;
* ``conv1.out_channels=int:4:32``: a parameter of the node *named* ``conv1``, a whole number;
* ``training.optimizer=choice:adam,sgd``: one of the values listed.

Each range is checked against the setting's or the layer parameter's own limits when it is
parsed, so a sweep never starts trials that the project would refuse; errors are one line that
names the parameter as it was written.
"""

from __future__ import annotations

import math
from collections.abc import Iterable
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from dlstudio.core.errors import DlstudioError, ParamError
from dlstudio.core.layers.spec import BOOL, CHOICE, FLOAT, INT, PADDING, SIZE, STR, ParamSpec
from dlstudio.core.text import number_text, quote

if TYPE_CHECKING:
    import optuna

    from dlstudio.core.graph import Graph

TRAINING = "training"
KINDS = ("log", "float", "int", "choice")
# How many values a grid takes from a range (a range of whole numbers with fewer values takes each of them).
GRID_POINTS = 5
# The layer parameter kinds a sweep can vary, and the range kinds each accepts.
_RANGE_KINDS = {INT: ("int", "log", "choice"), FLOAT: ("float", "log", "choice"), SIZE: ("int", "choice"),
                PADDING: ("int", "choice"), CHOICE: ("choice",), BOOL: ("choice",), STR: ("choice",)}


class SweepError(DlstudioError):
    """A sweep was refused (a parameter, a range, the study file); the message is one line."""


@dataclass(frozen=True)
class SweepParam:
    """One varied value: where it goes (a training setting, or a node's parameter) and its range.

    ``target`` is the name as written (``training.learning_rate``, ``conv1.out_channels``);
    ``node_id`` is the node's id for a node parameter (None for a training setting);
    ``setting`` the name of the setting or parameter; ``low``/``high`` bound a range,
    ``choices`` list the values of a ``choice``.
    """

    target: str
    kind: str
    setting: str
    node_id: str | None = None
    low: float | None = None
    high: float | None = None
    choices: tuple[Any, ...] = ()

    @property
    def whole(self) -> bool:
        """Whether the values are whole numbers (an int range, or a log range of a whole-number parameter)."""
        return self.kind == "int" or isinstance(self.low, int) and not isinstance(self.low, bool) and self.kind == "log"

    @property
    def text(self) -> str:
        """The parameter as it would be written on the command line."""
        if self.kind == "choice":
            return f"{self.target}=choice:{','.join(_value_text(value) for value in self.choices)}"
        return f"{self.target}={self.kind}:{_value_text(self.low)}:{_value_text(self.high)}"

    def suggest(self, trial: optuna.trial.BaseTrial) -> Any:
        """Let Optuna's trial pick this parameter's value."""
        if self.kind == "choice":
            return trial.suggest_categorical(self.target, list(self.choices))
        if self.kind == "int" or self.whole:
            return trial.suggest_int(self.target, int(self.low), int(self.high),  # type: ignore[arg-type]
                                     log=self.kind == "log")
        return trial.suggest_float(self.target, float(self.low), float(self.high),  # type: ignore[arg-type]
                                   log=self.kind == "log")

    def grid_values(self) -> list[Any]:
        """The values a grid search tries: the choices, or GRID_POINTS spread over the range (ends included)."""
        if self.kind == "choice":
            return list(self.choices)
        low, high = float(self.low), float(self.high)  # type: ignore[arg-type]
        if self.kind == "int":
            low_int, high_int = int(low), int(high)
            if high_int - low_int < GRID_POINTS:
                return list(range(low_int, high_int + 1))
            return sorted({round(low_int + (high_int - low_int) * i / (GRID_POINTS - 1)) for i in range(GRID_POINTS)})
        if self.kind == "log":
            step = (math.log(high) - math.log(low)) / (GRID_POINTS - 1)
            values = [math.exp(math.log(low) + step * i) for i in range(GRID_POINTS)]
            values[0], values[-1] = low, high  # exactly the ends, not what exp(log(x)) rounds to
            return sorted({round(value) for value in values}) if self.whole else values
        return [low + (high - low) * i / (GRID_POINTS - 1) for i in range(GRID_POINTS)]


def _value_text(value: Any) -> str:
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, float):
        return number_text(value) if not value.is_integer() or abs(value) >= 1e6 else repr(value)
    return str(value)


def parse_params(texts: Iterable[str], graph: Graph) -> list[SweepParam]:
    """Parse and check every ``TARGET=KIND:...``; SweepError naming the first one that does not fit."""
    params = [parse_param(text, graph) for text in texts]
    seen: set[str] = set()
    for param in params:
        if param.target in seen:
            raise SweepError(f"{param.target} is given twice")
        seen.add(param.target)
    if not params:
        raise SweepError("nothing to sweep: give at least one parameter, e.g. training.learning_rate=log:1e-4:1e-1")
    return params


def parse_param(text: str, graph: Graph) -> SweepParam:
    """One ``TARGET=KIND:...`` checked against the training settings or the graph's node of that name."""
    target, sep, range_text = text.partition("=")
    target = target.strip()
    if not sep or not target:
        raise SweepError(f"{quote(text)}: expected TARGET=KIND:..., e.g. training.learning_rate=log:1e-4:1e-1")
    owner, dot, setting = target.rpartition(".")
    if not dot or not owner or not setting:
        raise SweepError(f"{target}: expected training.SETTING or NODE.PARAMETER (a node by its name)")
    spec, node_id = _target_spec(target, owner, setting, graph)
    kind, colon, rest = range_text.strip().partition(":")
    if kind not in KINDS or not colon:
        raise SweepError(f"{target}: expected a range log:LOW:HIGH, float:LOW:HIGH, int:LOW:HIGH or "
                         f"choice:A,B,...; got {quote(range_text)}")
    allowed = _RANGE_KINDS.get(spec.kind, ())
    if kind not in allowed:
        raise SweepError(f"{target} cannot take a {kind} range (use {' or '.join(allowed) or 'another parameter'})"
                         if allowed else f"{target} cannot be swept")
    if kind == "choice":
        values = [item.strip() for item in rest.split(",")]
        if not rest.strip() or any(not item for item in values):
            raise SweepError(f"{target}: expected choice:A,B,... with no empty value")
        choices = tuple(_checked(target, spec, _typed(target, spec, item)) for item in values)
        if len(set(map(repr, choices))) != len(choices):
            raise SweepError(f"{target}: a choice is listed twice")
        return SweepParam(target, kind, setting, node_id, choices=choices)
    bounds = rest.split(":")
    if len(bounds) != 2:
        raise SweepError(f"{target}: expected {kind}:LOW:HIGH; got {quote(range_text)}")
    low, high = (_number(target, bound, whole=kind == "int") for bound in bounds)
    if not low < high:
        raise SweepError(f"{target}: the low end ({_value_text(low)}) must be below the high end ({_value_text(high)})")
    if kind == "log" and low <= 0:
        raise SweepError(f"{target}: a log range must start above 0, got {_value_text(low)}")
    if spec.kind == INT and kind == "log":  # whole numbers on a log scale (channels 4..256)
        if not (float(low).is_integer() and float(high).is_integer()):
            raise SweepError(f"{target}: a whole-number parameter needs whole-number ends")
        low, high = int(low), int(high)
    for bound in (low, high):
        # A FLOAT parameter gets the bound as a float; an INT/SIZE one as the whole number it is.
        _checked(target, spec, float(bound) if spec.kind == FLOAT else bound)
    return SweepParam(target, kind, setting, node_id, low=low, high=high)


# Training settings that say how or where a run computes (or fix its randomness), not what it learns.
_NOT_SWEPT = ("device", "precision", "channels_last", "compile", "sync_batchnorm", "seed")


def _target_spec(target: str, owner: str, setting: str, graph: Graph) -> tuple[ParamSpec, str | None]:
    from dlstudio.core.project.settings import TRAINING_SETTINGS

    if owner == TRAINING:
        for spec in TRAINING_SETTINGS:
            if spec.name == setting:
                if setting in _NOT_SWEPT:
                    break  # how or where a run computes, not what it learns: not a thing to search
                return spec, None
        names = ", ".join(spec.name for spec in TRAINING_SETTINGS
                          if spec.name not in _NOT_SWEPT)
        raise SweepError(f"{target}: no training setting {quote(setting)} to sweep (settings: {names})")
    node = graph.node_named(owner)
    if node is None:
        raise SweepError(f"{target}: the network has no node named {quote(owner)}")
    layer = node.spec
    if not layer.has_param(setting):
        names = ", ".join(spec.name for spec in layer.params) or "none"
        raise SweepError(f"{target}: {owner} ({layer.display_name}) has no parameter {quote(setting)} "
                         f"(its parameters: {names})")
    param = layer.param(setting)
    if param.recorded:
        raise SweepError(f"{target}: {owner}'s {param.display_name} was recorded at import; it is not a setting "
                         "to sweep")
    return param, node.id


def _typed(target: str, spec: ParamSpec, text: str) -> Any:
    """A choice written on the command line as the parameter's kind of value."""
    if spec.kind in (INT, SIZE) or (spec.kind == PADDING and text not in spec.choices):
        return _number(target, text, whole=True)
    if spec.kind == FLOAT:
        return float(_number(target, text, whole=False))
    if spec.kind == BOOL:
        if text.lower() not in ("true", "false"):
            raise SweepError(f"{target}: expected true or false, got {quote(text)}")
        return text.lower() == "true"
    return text


def _number(target: str, text: str, *, whole: bool) -> Any:
    text = text.strip()
    try:
        value = int(text) if whole else float(text)
    except ValueError:
        what = "a whole number" if whole else "a number"
        raise SweepError(f"{target}: expected {what}, got {quote(text)}") from None
    if not whole and not math.isfinite(value):
        raise SweepError(f"{target}: expected a finite number, got {quote(text)}")
    return value


def _checked(target: str, spec: ParamSpec, value: Any) -> Any:
    """``value`` as the setting or parameter takes it, or SweepError with the reason, naming ``target``."""
    try:
        return spec.validate(value)
    except ParamError as error:
        reason = error.message
        prefix = f"{spec.display_name}: "
        if reason.startswith(prefix):
            reason = reason[len(prefix):]
        raise SweepError(f"{target}: {reason}") from None


def apply_values(params: list[SweepParam], values: dict[str, Any], graph: Graph,
                 training: dict[str, Any]) -> tuple[Graph, dict[str, Any]]:
    """A copy of ``graph`` and ``training`` with a trial's ``values`` (keyed by target) set; the originals stay."""
    graph = graph.copy()
    training = dict(training)
    for param in params:
        value = values[param.target]
        if param.node_id is None:
            training[param.setting] = value
            continue
        try:
            graph.set_param(param.node_id, param.setting, value)
        except ParamError as error:
            raise SweepError(f"{param.target}: {error.message}") from None
    return graph, training


# -- what a form offers (the window's Sweep dialog) --------------------------------------------------------------

# Training settings worth searching, in the order a form lists them.
SWEPT_SETTINGS = ("learning_rate", "batch_size", "optimizer", "weight_decay", "momentum", "epochs", "schedule",
                  "early_stopping_patience", "pretrained_lr_multiplier")


def sweepable_targets(graph: Graph) -> list[str]:
    """Every ``training.SETTING`` and ``NODE.PARAMETER`` a sweep can vary, settings first, nodes in flow order."""
    targets = [f"{TRAINING}.{name}" for name in SWEPT_SETTINGS]
    for node_id in graph.topological_order():
        node = graph.node(node_id)
        targets += [f"{node.name}.{param.name}" for param in node.spec.params  # auto: inferred; recorded: facts
                    if param.kind in _RANGE_KINDS and param.kind != STR and not param.auto and not param.recorded]
    return targets


def target_label(target: str, graph: Graph) -> str:
    """How a person reads ``target``: "Learning rate" for ``training.learning_rate``, "conv1: out channels" for a
    node's parameter (the command line's ``NODE.PARAMETER`` is for typing, not for reading)."""
    owner, _, setting = target.rpartition(".")
    spec, _ = _target_spec(target, owner, setting, graph)
    if owner == TRAINING:
        return spec.display_name[:1].upper() + spec.display_name[1:]
    return f"{owner}: {spec.display_name}"


def range_kinds(target: str, graph: Graph) -> tuple[str, ...]:
    """The range kinds ``target`` accepts (int, log, float, choice); SweepError if it is not sweepable."""
    owner, _, setting = target.rpartition(".")
    spec, _ = _target_spec(target, owner, setting, graph)
    return _RANGE_KINDS.get(spec.kind, ())


def default_range(target: str, graph: Graph, current: dict[str, Any] | None = None) -> tuple[str, str, str]:
    """A sensible first range for ``target`` as (kind, low, high or choices) texts, around its current value.

    ``current`` holds the project's training settings (the schema's defaults when absent).
    """
    owner, _, setting = target.rpartition(".")
    spec, node_id = _target_spec(target, owner, setting, graph)
    if target == f"{TRAINING}.learning_rate":
        return "log", "1e-4", "1e-1"
    if target == f"{TRAINING}.batch_size":
        return "choice", "", "32,64,128"
    value = (current or {}).get(setting, spec.default) if node_id is None else graph.node(node_id).params.get(setting)
    kinds = _RANGE_KINDS[spec.kind]
    if kinds[0] == "choice" or spec.kind == BOOL:
        choices = spec.choices if spec.kind == CHOICE else ("true", "false") if spec.kind == BOOL else (str(value),)
        return "choice", "", ",".join(choices[:4])
    if spec.kind == FLOAT:
        number = float(value) if isinstance(value, (int, float)) and value else 0.0
        if number > 0:
            low, high = number / 10, number * 10
            if spec.max is not None:
                high = min(high, spec.max)
            return "log", _value_text(low), _value_text(high)
        return "float", _value_text(float(spec.min or 0.0)), _value_text(min(spec.max or 1.0, 0.5))
    number = value if isinstance(value, int) and not isinstance(value, bool) else 4
    low = max(int(spec.min) if spec.min is not None else 1, number // 2 or 1)
    high = max(low + 1, number * 2)
    if spec.max is not None:
        high = min(high, int(spec.max))
    return "int", str(low), str(high)


def first_conv_channels(graph: Graph) -> str | None:
    """``NAME.out_channels`` of the first convolution in flow order (a dialog's default row), or None."""
    for node_id in graph.topological_order():
        node = graph.node(node_id)
        if node.type.startswith("Conv") and node.spec.has_param("out_channels"):
            return f"{node.name}.out_channels"
    return None

"""Compare runs: the settings each run started with as flat, comparable values, and two runs side by side.

The run history reads every run once in the background (:func:`read_runs_for_comparison`):
its summary (``summarize_run``), its settings flattened to ``{key: value}`` with a
label per key, its network (nodes by id, edges), its per-epoch metrics and a few
figures derived from them (final validation accuracy, time, samples/s). Everything
else here works on those rows in memory, so the window never reads files to sort,
filter, compare or apply.

Setting keys: ``training.<name>`` and ``data.<name>`` (labelled as the settings
forms label them), ``weights`` (where the starting weights came from), ``frozen``
(the frozen layers, by name), ``layers`` (how many nodes the network has) and
``node:<id>.<param>`` (labelled ``<node name>.<param>``, e.g. "conv1.out_channels").
Nodes are matched across runs by id, the name a person sees is the one they had in
the newest run that has them. No Qt, and no torch until a run folder is read.
"""

from __future__ import annotations

import hashlib
import json
import math
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Iterable

from dlstudio.core.project.settings import DATA_SETTINGS, TRAINING_SETTINGS

# The order the table shows setting columns in: what people change most first.
_TRAINING_ORDER = ("learning_rate", "batch_size", "optimizer", "schedule", "epochs", "weight_decay", "momentum",
                   "pretrained_lr_multiplier", "early_stopping_patience", "seed", "device", "precision",
                   "channels_last", "compile")
_TRAINING_SPECS = {spec.name: spec for spec in TRAINING_SETTINGS}
# Labels that would read as another column of the runs table ("Epochs" there counts the epochs finished).
_LABELS = {"training.epochs": "Planned epochs"}
_DATA_SPECS = {spec.name: spec for spec in DATA_SETTINGS}
WEIGHTS_KEY = "weights"
FROZEN_KEY = "frozen"
LAYERS_KEY = "layers"
NODE_PREFIX = "node:"
RANDOM_WEIGHTS = "random"
NO_FROZEN = "none"


# ---- reading (on a worker thread) ---------------------------------------------------------------------------

def read_runs_for_comparison(run_dirs: Iterable[Path | str]) -> list[dict[str, Any]]:
    """:func:`read_run_for_comparison` of each run folder, in the given order."""
    return [read_run_for_comparison(run_dir) for run_dir in run_dirs]


def read_run_for_comparison(run_dir: Path | str) -> dict[str, Any]:
    """One run's row of the runs table: ``summarize_run``'s keys, and

    ``settings`` ({key: value}, empty when the settings cannot be read), ``labels``
    ({key: label}), ``nodes`` ({id: {"name", "type", "params"}}), ``edges`` (sorted
    tuples), ``network_id`` (the same for runs of the same network), ``curves`` (metrics.csv rows), ``final_val_accuracy``, ``seconds``
    (the epochs' time together) and ``samples_per_second`` (mean over the epochs;
    None when the run did not record it). Never raises for a damaged folder: what
    cannot be read is left out, the summary's status says why.
    """
    from dlstudio.core.errors import DlstudioError
    from dlstudio.core.training.runs import read_metrics, read_run_settings, summarize_run

    row = summarize_run(run_dir)
    row.update(settings={}, labels={}, nodes={}, edges=[], curves=[], final_val_accuracy=None, seconds=None,
               samples_per_second=None)
    if row["status"] in ("damaged", "missing"):
        return row
    try:
        settings = read_run_settings(Path(run_dir))
    except (OSError, ValueError, DlstudioError):
        return row
    if isinstance(settings, dict):
        row.update(flatten_settings(settings))
    try:
        row["curves"] = read_metrics(Path(run_dir))
    except (OSError, ValueError, TypeError, DlstudioError):
        row["curves"] = []
    row.update(curve_figures(row["curves"]))
    return row


def flatten_settings(settings: dict[str, Any]) -> dict[str, Any]:
    """``settings``, ``labels``, ``nodes`` and ``edges`` of a run from its settings.json (see the module's doc)."""
    flat: dict[str, Any] = {}
    labels: dict[str, str] = {}
    training = settings.get("training") if isinstance(settings.get("training"), dict) else {}
    data = settings.get("data") if isinstance(settings.get("data"), dict) else {}
    for name in _TRAINING_ORDER:  # a run older than a setting ran with its default
        spec = _TRAINING_SPECS[name]
        flat[f"training.{name}"] = training.get(name, spec.default)
        labels[f"training.{name}"] = _LABELS.get(f"training.{name}", spec.display_name)
    for name, spec in _DATA_SPECS.items():  # the same for data settings (a project file fills them in alike)
        flat[f"data.{name}"] = data.get(name, spec.default)
        labels[f"data.{name}"] = spec.display_name
    nodes, edges = _graph_of(settings.get("graph"))
    flat[WEIGHTS_KEY] = _weights_text(settings.get("weights"))
    labels[WEIGHTS_KEY] = "Starting weights"
    frozen = settings.get("frozen") if isinstance(settings.get("frozen"), list) else []
    names = sorted(str(nodes.get(node_id, {}).get("name", node_id)) for node_id in frozen)
    flat[FROZEN_KEY] = ", ".join(names) if names else NO_FROZEN
    labels[FROZEN_KEY] = "Frozen layers"
    if nodes:
        flat[LAYERS_KEY] = len(nodes)
        labels[LAYERS_KEY] = "Layers"
    for node_id, node in nodes.items():
        for param, value in node["params"].items():
            key = f"{NODE_PREFIX}{node_id}.{param}"
            flat[key] = value
            labels[key] = f"{node['name']}.{param}"
    network_id = hashlib.sha1(json.dumps([nodes, edges], sort_keys=True, default=str).encode()).hexdigest()
    return {"settings": flat, "labels": labels, "nodes": nodes, "edges": edges, "network_id": network_id}


def curve_figures(rows: list[dict[str, Any]]) -> dict[str, Any]:
    """Final validation accuracy, total epoch time and mean samples/s of a run's metrics rows (None if absent)."""
    def values(key: str) -> list[float]:
        return [float(row[key]) for row in rows if _finite(row.get(key))]

    accuracies, seconds, speeds = values("val_accuracy"), values("seconds"), values("samples_per_second")
    return {"final_val_accuracy": accuracies[-1] if accuracies else None,
            "seconds": sum(seconds) if seconds else None,
            "samples_per_second": sum(speeds) / len(speeds) if speeds else None}


def _graph_of(graph: Any) -> tuple[dict[str, dict[str, Any]], list[tuple[str, str, str, str]]]:
    nodes: dict[str, dict[str, Any]] = {}
    edges: list[tuple[str, str, str, str]] = []
    if not isinstance(graph, dict):
        return nodes, edges
    for node in graph.get("nodes") or []:
        if isinstance(node, dict) and isinstance(node.get("id"), str):
            params = node.get("params") if isinstance(node.get("params"), dict) else {}
            nodes[node["id"]] = {"name": str(node.get("name") or node["id"]), "type": str(node.get("type", "")),
                                 "params": dict(params)}
    for edge in graph.get("edges") or []:
        if isinstance(edge, dict):
            edges.append(tuple(str(edge.get(key, "")) for key in ("src", "src_port", "dst", "dst_port")))
    return nodes, sorted(edges)  # type: ignore[arg-type]


def _weights_text(weights: Any) -> str:
    """Where a run's starting weights came from, as a person reads it: "torchvision resnet18 (DEFAULT)", "random"."""
    if not isinstance(weights, dict) or not isinstance(weights.get("source"), dict):
        return RANDOM_WEIGHTS
    source = weights["source"]
    kind = source.get("source")
    if kind == "torchvision":
        return f"torchvision {source.get('model', '')} ({source.get('weights', '')})"
    if kind == "run":
        return f"run {Path(str(source.get('path', ''))).name}"
    return f"{kind} {Path(str(source.get('path', ''))).name}"


def _finite(value: Any) -> bool:
    return isinstance(value, (int, float)) and not isinstance(value, bool) and math.isfinite(value)


# ---- the table -------------------------------------------------------------------------------------------------

@dataclass(frozen=True)
class TableColumns:
    """The setting columns of a runs table: every training and data setting, weights, frozen layers and the
    layer count, and the layer parameters that differ (a network has hundreds that never do)."""

    keys: tuple[str, ...]  # in the table's order: training, node parameters, data, weights, frozen, layers
    labels: dict[str, str]
    differing: frozenset[str]  # keys whose values are not the same in every run with settings
    numeric: frozenset[str]  # keys whose values are all numbers (they sort as numbers)


def table_columns(rows: list[dict[str, Any]]) -> TableColumns:
    """The setting columns for these rows. One pass over the values, so that a refresh of a long history
    with big networks (200 runs of 1,400 settings: ~0.1 s) does not hold up the window."""
    with_settings = [row for row in rows if row.get("settings")]
    readable = [row["settings"] for row in with_settings]
    # Runs of one network share its layer parameters (and their keys): those are compared once per network.
    first_of_network: dict[Any, dict[str, Any]] = {}
    last_of_network: dict[Any, dict[str, Any]] = {}
    for row in with_settings:
        network = row.get("network_id") or id(row)
        first_of_network.setdefault(network, row)
        last_of_network[network] = row
    networks = [row["settings"] for row in first_of_network.values()]
    seen: dict[str, None] = {}
    for settings in networks:
        seen.update(dict.fromkeys(settings))
    differing = {key for key in seen if _differs(key, networks if key.startswith(NODE_PREFIX) else readable)}
    keys = [key for key in _ordered(list(seen)) if not key.startswith(NODE_PREFIX) or key in differing]
    numeric = {key for key in keys if all(_is_number(settings[key]) for settings in readable if key in settings)}
    return TableColumns(tuple(keys), setting_labels(list(last_of_network.values())), frozenset(differing),
                        frozenset(numeric))


def setting_keys(rows: list[dict[str, Any]]) -> list[str]:
    """Every setting key of the rows in the table's order: training, node parameters, data, weights, frozen,
    layers."""
    seen: dict[str, None] = {}
    for row in rows:
        seen.update(dict.fromkeys(row.get("settings", {})))
    return _ordered(list(seen))


def differing_keys(rows: list[dict[str, Any]]) -> list[str]:
    """The setting keys whose values are not the same in every row that has settings (a run without a
    node has no value for its parameters, which differs from any value); in :func:`setting_keys` order."""
    columns = table_columns(rows)
    return [key for key in columns.keys if key in columns.differing]


def setting_labels(rows: list[dict[str, Any]]) -> dict[str, str]:
    """The label of every key; a node's name from the last row that has it (rows come oldest first)."""
    labels: dict[str, str] = {}
    for row in rows:
        labels.update(row.get("labels", {}))
    return labels


def is_numeric(rows: list[dict[str, Any]], key: str) -> bool:
    """Whether every value of ``key`` in the rows (those present) is a number, so it sorts as one."""
    values = [row["settings"][key] for row in rows if key in row.get("settings", {})]
    return bool(values) and all(_is_number(value) for value in values)


_RANK = {"training": 0, "data": 2, WEIGHTS_KEY: 3, FROZEN_KEY: 4, LAYERS_KEY: 5}


def _ordered(keys: list[str]) -> list[str]:
    position = {key: index for index, key in enumerate(keys)}
    return sorted(keys, key=lambda key: (_RANK.get(key.split(".")[0], 1 if key.startswith(NODE_PREFIX) else 6),
                                         position[key]))


def _differs(key: str, readable: list[dict[str, Any]]) -> bool:
    if len(readable) < 2:
        return False
    first = readable[0].get(key, _ABSENT)
    for settings in readable[1:]:
        value = settings.get(key, _ABSENT)
        # == alone takes True for 1 and 1 for 1.0; a flag and a number are not the same setting value.
        if value is not first and (value != first or isinstance(value, bool) != isinstance(first, bool)):
            return True
    return False


def _is_number(value: Any) -> bool:
    return isinstance(value, (int, float)) and not isinstance(value, bool)


def format_value(value: Any) -> str:
    """A setting's value as the table shows it: 0.001, 1e-05, adam, on/off, (2, 2), "—" when the run has none."""
    if value is _ABSENT or value is None:
        return "—"
    if isinstance(value, bool):
        return "on" if value else "off"
    if isinstance(value, float):
        return f"{value:.4g}"
    if isinstance(value, (list, tuple)):
        return "(" + ", ".join(format_value(item) for item in value) + ")"
    return str(value)


class _Absent:
    def __repr__(self) -> str:
        return "absent"


_ABSENT: Any = _Absent()


def _comparable(value: Any) -> Any:
    """A hashable form of a JSON value (lists become tuples)."""
    if isinstance(value, list):
        return tuple(_comparable(item) for item in value)
    if isinstance(value, dict):
        return tuple(sorted((key, _comparable(item)) for key, item in value.items()))
    return value


# ---- two runs side by side -------------------------------------------------------------------------------------

@dataclass(frozen=True)
class SettingDiff:
    key: str
    label: str
    a: str  # as format_value shows it
    b: str
    same: bool


@dataclass(frozen=True)
class NodeChange:
    name: str  # in run B (the name in run A when it was renamed is in ``renamed_from``)
    type: str
    params: tuple[tuple[str, str, str], ...]  # (param, value in A, value in B), formatted
    renamed_from: str = ""


@dataclass(frozen=True)
class GraphDiff:
    added: tuple[str, ...] = ()  # "conv3 (Conv2d)": in B, not in A
    removed: tuple[str, ...] = ()  # in A, not in B
    changed: tuple[NodeChange, ...] = ()
    rewired: bool = False  # the connections differ (beyond those of added and removed nodes)

    @property
    def same(self) -> bool:
        return not (self.added or self.removed or self.changed or self.rewired)


@dataclass(frozen=True)
class RunComparison:
    a: str  # run names
    b: str
    settings: tuple[SettingDiff, ...] = field(default=())  # training, data, weights, frozen (no node parameters)
    graph: GraphDiff = field(default_factory=GraphDiff)

    @property
    def differing(self) -> tuple[SettingDiff, ...]:
        return tuple(diff for diff in self.settings if not diff.same)


def compare_runs(a: dict[str, Any], b: dict[str, Any]) -> RunComparison:
    """Run ``a`` against run ``b`` (rows of :func:`read_run_for_comparison`): settings and network differences."""
    rows = [a, b]
    labels = setting_labels(rows)
    diffs = []
    for key in setting_keys(rows):
        if key.startswith(NODE_PREFIX) or key == LAYERS_KEY:
            continue  # the network is compared node by node below
        value_a, value_b = a["settings"].get(key, _ABSENT), b["settings"].get(key, _ABSENT)
        diffs.append(SettingDiff(key, labels.get(key, key), format_value(value_a), format_value(value_b),
                                 _comparable(value_a) == _comparable(value_b)))
    return RunComparison(str(a.get("name", "")), str(b.get("name", "")), tuple(diffs), graph_diff(a, b))


def graph_diff(a: dict[str, Any], b: dict[str, Any]) -> GraphDiff:
    """Nodes added to ``b``, removed from ``a``, and changed (parameters old → new, renamed), matched by id."""
    nodes_a, nodes_b = a.get("nodes", {}), b.get("nodes", {})
    added = tuple(_node_title(nodes_b[node_id]) for node_id in nodes_b if node_id not in nodes_a)
    removed = tuple(_node_title(nodes_a[node_id]) for node_id in nodes_a if node_id not in nodes_b)
    changed = []
    for node_id, node_b in nodes_b.items():
        node_a = nodes_a.get(node_id)
        if node_a is None:
            continue
        names = sorted(set(node_a["params"]) | set(node_b["params"]))
        params = tuple((name, format_value(node_a["params"].get(name, _ABSENT)),
                        format_value(node_b["params"].get(name, _ABSENT))) for name in names
                       if _comparable(node_a["params"].get(name, _ABSENT)) !=
                       _comparable(node_b["params"].get(name, _ABSENT)))
        renamed = node_a["name"] if node_a["name"] != node_b["name"] else ""
        if params or renamed or node_a["type"] != node_b["type"]:
            changed.append(NodeChange(node_b["name"], node_b["type"], params, renamed))
    kept = set(nodes_a) & set(nodes_b)
    edges_a = {edge for edge in map(tuple, a.get("edges", [])) if edge[0] in kept and edge[2] in kept}
    edges_b = {edge for edge in map(tuple, b.get("edges", [])) if edge[0] in kept and edge[2] in kept}
    return GraphDiff(added, removed, tuple(changed), edges_a != edges_b)


def _node_title(node: dict[str, Any]) -> str:
    return f"{node['name']} ({node['type']})"


# ---- applying a run's settings ---------------------------------------------------------------------------------

@dataclass(frozen=True)
class SettingsToApply:
    """What "apply this run's settings" changes in a project, and what it leaves and why."""

    training: dict[str, Any]  # training settings that differ from the project's
    params: tuple[tuple[str, str, Any], ...]  # (node id, param, value) that differ from the project's network
    network_note: str  # why the network's parameters were left as they are ("" when they were compared)

    @property
    def empty(self) -> bool:
        return not self.training and not self.params


def settings_to_apply(row: dict[str, Any], training: dict[str, Any],
                      graph_doc: dict[str, Any] | None) -> SettingsToApply:
    """The training settings (and, when the project's network has the same layers and connections as the run's,
    the layer parameters) that make the project train as ``row``'s run did.

    ``training`` is the project's training settings, ``graph_doc`` its graph's
    ``to_dict()``. Settings of the run that the schema no longer knows are left out.
    """
    settings = row.get("settings", {})
    changes = {}
    for name in _TRAINING_ORDER:
        key = f"training.{name}"
        if key in settings and _comparable(settings[key]) != _comparable(training.get(name, _ABSENT)):
            changes[name] = settings[key]
    nodes, edges = _graph_of(graph_doc)
    run_nodes, run_edges = row.get("nodes", {}), [tuple(edge) for edge in row.get("edges", [])]
    same_shape = (bool(run_nodes) and set(nodes) == set(run_nodes)
                  and all(nodes[node_id]["type"] == run_nodes[node_id]["type"] for node_id in nodes)
                  and sorted(edges) == sorted(run_edges))
    params = []
    note = ""
    if same_shape:
        for node_id, node in run_nodes.items():
            for param, value in node["params"].items():
                if param in nodes[node_id]["params"] and \
                        _comparable(nodes[node_id]["params"][param]) != _comparable(value):
                    params.append((node_id, param, value))
    elif run_nodes:
        note = "the network has other layers than the run's, so its layer parameters were left as they are"
    return SettingsToApply(changes, tuple(params), note)

"""Properties of the project file: saving is a fixed point, and no damage gets past the loader unannounced."""

from __future__ import annotations

import copy
import json
import unicodedata
from pathlib import Path
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from dlstudio.core.errors import ProjectError
from dlstudio.core.graph import Graph
from dlstudio.core.layers import all_specs
from dlstudio.core.layers.spec import BOOL, CHOICE, FLOAT, INT, STR, ParamSpec
from dlstudio.core.layout import Layout
from dlstudio.core.project import (
    DATA_SETTINGS, TRAINING_SETTINGS, Project, load_project, load_template, project_from_json, project_to_json,
    save_project,
)

FIXTURE_V1 = Path(__file__).parent / "fixtures" / "project_v1.dlstudio"
LAYER_TYPES = [spec.type_id for spec in all_specs()]
SOURCE = "damaged.dlstudio"


@pytest.fixture(scope="module")
def folder(tmp_path_factory) -> Path:
    # Module-scoped: hypothesis runs many examples per test call, and reuses one folder for them.
    return tmp_path_factory.mktemp("projects")


# -- random valid projects -------------------------------------------------------

def setting_value(spec: ParamSpec) -> st.SearchStrategy[Any]:
    if spec.kind == CHOICE:
        return st.sampled_from(spec.choices)
    if spec.kind == INT:
        return st.integers(int(spec.min), int(spec.max))
    if spec.kind == FLOAT:
        return st.floats(spec.min, spec.max, allow_nan=False)
    if spec.kind == BOOL:
        return st.booleans()
    if spec.kind == STR:
        return st.text(max_size=20)
    raise AssertionError(f"no strategy for settings kind {spec.kind!r}")


@st.composite
def settings_values(draw, schema: tuple[ParamSpec, ...]) -> dict[str, Any]:
    """Some of the settings (the file fills the rest), each a valid value."""
    chosen = draw(st.lists(st.sampled_from(schema), unique_by=lambda spec: spec.name, max_size=len(schema)))
    values = {spec.name: draw(setting_value(spec)) for spec in chosen}
    if values.get("val_fraction", 0.15) + values.get("test_fraction", 0.15) >= 1:
        values["test_fraction"] = 0.0
        values["val_fraction"] = min(values.get("val_fraction", 0.15), 0.9)
    return values


names = st.text(min_size=1, max_size=20).filter(
    lambda name: name.strip() and not any(unicodedata.category(ch) in ("Cc", "Zl", "Zp") for ch in name))
coordinates = st.floats(-1e6, 1e6, allow_nan=False)


@st.composite
def projects(draw) -> Project:
    """A project built by random valid edits through the Graph API."""
    graph = Graph()
    for type_id in draw(st.lists(st.sampled_from(LAYER_TYPES), max_size=8)):
        graph.add_node(type_id)
    ids = list(graph.nodes)
    if ids:
        for _ in range(draw(st.integers(0, 12))):
            src, dst = graph.node(draw(st.sampled_from(ids))), graph.node(draw(st.sampled_from(ids)))
            if not src.output_ports or not dst.input_ports:
                continue
            ports = (src.id, draw(st.sampled_from(src.output_ports)), dst.id, draw(st.sampled_from(dst.input_ports)))
            if graph.can_connect(*ports)[0]:
                graph.connect(*ports)
        for node_id in draw(st.lists(st.sampled_from(ids), unique=True)):
            name = draw(names)
            other = graph.node_named(name)
            if other is None or other.id == node_id:  # two layers may not share a name
                graph.rename(node_id, name)
    layout = Layout()
    for node_id in draw(st.lists(st.sampled_from(ids), unique=True)) if ids else []:
        layout.move(node_id, draw(coordinates), draw(coordinates))
    return Project(graph=graph, layout=layout, data=draw(settings_values(DATA_SETTINGS)),
                   training=draw(settings_values(TRAINING_SETTINGS)), description=draw(st.text(max_size=40)),
                   runs=draw(st.lists(st.text(max_size=20), max_size=3)))


@settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(project=projects())
def test_save_load_save_is_byte_identical(folder, project):
    path = folder / "random.dlstudio"
    save_project(project, path)
    first = path.read_bytes()
    loaded = load_project(path)
    assert loaded.graph.to_dict() == project.graph.to_dict()
    save_project(loaded, path)
    assert path.read_bytes() == first


# -- damaged files -----------------------------------------------------------------

BASES = [FIXTURE_V1.read_text(encoding="utf-8"), project_to_json(load_template("resnet-mini"))]


def check_outcome(load) -> None:
    """Either the damaged file is refused with one line saying so, or it is a valid project in full."""
    try:
        project = load()
    except ProjectError as error:
        message = str(error)
        assert "\n" not in message and "\r" not in message, message
        assert message.startswith(f"{SOURCE}: "), message
        # Refused by an explicit check, not by the loader's last-resort net (which keeps the cause).
        assert error.__cause__ is None, repr(error.__cause__)
        return
    text = project_to_json(project)
    assert project_to_json(project_from_json(text)) == text


byte_edit = st.one_of(
    st.tuples(st.just("truncate"), st.floats(0, 1)),
    st.tuples(st.just("flip"), st.floats(0, 1, exclude_max=True), st.integers(1, 255)),
    st.tuples(st.just("insert"), st.floats(0, 1), st.binary(min_size=1, max_size=4)),
    st.tuples(st.just("delete"), st.floats(0, 1, exclude_max=True), st.integers(1, 8)),
)


def apply_byte_edit(raw: bytearray, edit: tuple) -> None:
    at = int(edit[1] * len(raw))
    if edit[0] == "truncate":
        del raw[at:]
    elif edit[0] == "flip" and raw:
        raw[at] ^= edit[2]
    elif edit[0] == "insert":
        raw[at:at] = edit[2]
    elif edit[0] == "delete":
        del raw[at:at + edit[2]]


@settings(max_examples=500, deadline=None)
@given(base=st.sampled_from(BASES), edits=st.lists(byte_edit, min_size=1, max_size=3))
def test_byte_corruptions_are_refused_or_load_in_full(folder, base, edits):
    raw = bytearray(base.encode("utf-8"))
    for edit in edits:
        apply_byte_edit(raw, edit)
    path = folder / SOURCE
    path.write_bytes(bytes(raw))
    check_outcome(lambda: load_project(path))


# Integers beyond 64 bits are rare in st.integers(); name a few, since float(10**400) overflows.
huge_integers = st.sampled_from([2**63, -(2**63) - 1, 10**400])
json_values = st.recursive(
    st.none() | st.booleans() | st.integers() | huge_integers | st.floats() | st.text(max_size=8),
    lambda children: st.lists(children, max_size=3) | st.dictionaries(st.text(max_size=6), children, max_size=3),
    max_leaves=6,
)


def json_kind(value: Any) -> str:
    return "bool" if isinstance(value, bool) else "number" if isinstance(value, (int, float)) else type(value).__name__


def locations(tree: Any, here: tuple = ()) -> list[tuple]:
    """The path of every value in a JSON tree (not the root)."""
    found = []
    children = tree.items() if isinstance(tree, dict) else enumerate(tree) if isinstance(tree, list) else ()
    for key, child in children:
        found.append((*here, key))
        found.extend(locations(child, (*here, key)))
    return found


def parent_of(doc: Any, path: tuple) -> Any:
    for key in path[:-1]:
        doc = doc[key]
    return doc


@st.composite
def structural_damage(draw, doc: dict) -> dict:
    doc = copy.deepcopy(doc)
    kind = draw(st.sampled_from(["delete key", "replace value", "duplicate node", "swap edge ends"]))
    if kind == "delete key":
        keyed = [path for path in locations(doc) if isinstance(parent_of(doc, path), dict)]
        path = draw(st.sampled_from(keyed))
        del parent_of(doc, path)[path[-1]]
    elif kind == "replace value":
        path = draw(st.sampled_from(locations(doc)))
        parent = parent_of(doc, path)
        old = parent[path[-1]]
        parent[path[-1]] = draw(json_values.filter(lambda new: json_kind(new) != json_kind(old)))
    elif kind == "duplicate node":
        nodes = doc["graph"]["nodes"]
        nodes.insert(draw(st.integers(0, len(nodes))), copy.deepcopy(draw(st.sampled_from(nodes))))
    else:
        edge = draw(st.sampled_from(doc["graph"]["edges"]))
        pairs = [("src", "dst"), ("src_port", "dst_port")] if draw(st.booleans()) else [("src", "dst")]
        for a, b in pairs:
            if a in edge and b in edge:  # an earlier round may have deleted one
                edge[a], edge[b] = edge[b], edge[a]
    return doc


@settings(max_examples=600, deadline=None)
@given(data=st.data(), base=st.sampled_from(BASES), rounds=st.integers(1, 3))
def test_structural_corruptions_are_refused_or_load_in_full(data, base, rounds):
    doc = json.loads(base)
    for _ in range(rounds):
        if not isinstance(doc, dict) or "graph" not in doc or not isinstance(doc["graph"], dict) \
                or not doc["graph"].get("nodes") or not doc["graph"].get("edges") \
                or not isinstance(doc["graph"]["nodes"], list) or not isinstance(doc["graph"]["edges"], list) \
                or not all(isinstance(edge, dict) for edge in doc["graph"]["edges"]):
            break  # damaged beyond what the structural edits can address; load what we have
        doc = data.draw(structural_damage(doc))
    check_outcome(lambda: project_from_json(json.dumps(doc), source=SOURCE))

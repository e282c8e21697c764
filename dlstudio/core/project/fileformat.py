"""The ``*.dlstudio`` file: JSON text <-> :class:`Project` (no Qt, no torch).

Loading is parse -> migrate -> validate -> build, and all or nothing: any
damage is refused with a :class:`ProjectError` whose one-line message starts
with the file name and says where ("lenet.dlstudio: graph.nodes[3].params.
kernel_size: must be at least 1, got 0"). Structure is checked explicitly,
field by field; the graph's own checks (ports, cycles, parameter ranges) run
as the graph is rebuilt through its public API. Saving writes the same bytes
for the same project (save -> load -> save is byte-identical) and replaces the
old file atomically.
"""

from __future__ import annotations

import json
import os
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path, PurePath
from typing import Any

from dlstudio.core.errors import GraphError, ParamError, ProjectError
from dlstudio.core.graph import Graph, check_node_id
from dlstudio.core.layers import get_spec
from dlstudio.core.layout import Layout
from dlstudio.core.project import migrations
from dlstudio.core.project.jsontypes import describe, is_number
from dlstudio.core.project.migrations import FORMAT
from dlstudio.core.project.model import Project
from dlstudio.core.project.normalization import NormalizationStats
from dlstudio.core.project.pretrained import WeightsSource
from dlstudio.core.project.settings import DATA_SETTINGS, TRAINING_SETTINGS, validate_settings
from dlstudio.core.safe_io import FileLock, LockHeld, ReadError, WriteError, read_limited, write_file

_TOP_KEYS = ("format", "format_version", "description", "graph", "layout", "data", "training", "runs",
             "normalization", "blocks", "frozen", "weights")
_GRAPH_KEYS = ("nodes", "edges")
_NODE_KEYS = ("id", "type", "name", "params")
_EDGE_KEYS = ("src", "src_port", "dst", "dst_port")

# No valid project holds a number beyond these; refusing them early also keeps
# float conversions of huge integers (OverflowError) out of the validators.
_MAX_INT = 2**63 - 1
_MAX_COORDINATE = 1e9

# Limits checked before anything is parsed or walked, so that no file can exhaust memory or time.
# A 20,000-node project is ~10 MB and ~600,000 JSON values; these leave room for more.
MAX_FILE_BYTES = 64 * 1024 * 1024
MAX_JSON_VALUES = 2_000_000
MAX_NODES = 20_000
MAX_EDGES = 4 * MAX_NODES
MAX_RUNS = 100_000
MAX_DEPTH = 32  # a project nests 5 levels deep (graph.nodes[i].params.shape[j])
# How long a save waits for another process saving the same project (a save takes milliseconds).
LOCK_WAIT_SECONDS = 15.0


# -- writing -----------------------------------------------------------------

def project_to_doc(project: Project) -> dict[str, Any]:
    """The JSON document of ``project``: settings validated and filled, layout limited to existing nodes.

    Raises ProjectError if the project holds something a file may not (so that
    a saved file always loads again).
    """
    if not isinstance(project.description, str):
        raise ProjectError(f"description: expected text, got {describe(project.description)}")
    layout = {}
    for node_id, (x, y) in project.layout.to_dict().items():
        if node_id not in project.graph:
            continue  # a position left behind by a deleted node
        if not (_is_coordinate(x) and _is_coordinate(y)):
            raise ProjectError(f"layout.{node_id}: position ({x}, {y}) is not a finite number within "
                               f"±{_MAX_COORDINATE:g}")
        layout[node_id] = [x, y]
    runs = []
    for index, run in enumerate(project.runs):
        if isinstance(run, PurePath):
            run = run.as_posix()
        if not isinstance(run, str):
            raise ProjectError(f"runs[{index}]: expected a folder name, got {describe(run)}")
        runs.append(run)
    normalization = project.normalization
    if normalization is not None and not isinstance(normalization, NormalizationStats):
        raise ProjectError(f"normalization: expected statistics, got {describe(normalization)}")
    if normalization is not None:
        normalization = NormalizationStats.from_doc(normalization.to_doc())  # as a load checks it: it loads again
    weights = project.weights
    if weights is not None and not isinstance(weights, WeightsSource):
        raise ProjectError(f"weights: expected a weights source, got {describe(weights)}")
    if weights is not None:
        weights = WeightsSource.from_doc(weights.to_doc())  # as a load checks it: it loads again
    return {
        "format": FORMAT,
        "format_version": migrations.FORMAT_VERSION,
        "description": project.description,
        "graph": project.graph.to_dict(),
        "layout": layout,
        "data": validate_settings(DATA_SETTINGS, project.data, "data"),
        "training": validate_settings(TRAINING_SETTINGS, project.training, "training"),
        "runs": runs,
        "normalization": None if normalization is None else normalization.to_doc(),
        # Blocks and frozen nodes follow the graph's removals, so they name only nodes of it.
        "blocks": project.blocks.to_doc(),
        "frozen": project.frozen.to_doc(),
        "weights": None if weights is None else weights.to_doc(),
    }


def project_to_json(project: Project) -> str:
    """The file text of ``project``: deterministic, so equal projects give equal bytes."""
    return json.dumps(project_to_doc(project), indent=2, ensure_ascii=False, allow_nan=False) + "\n"


def save_project(project: Project, path: str | os.PathLike[str]) -> None:
    """Write ``project`` to ``path`` atomically and set ``project.path``.

    Through the guarded writer (:mod:`dlstudio.core.safe_io`): the text goes to
    a new temporary file in the same folder, is flushed to disk, and then
    replaces the file in one step; on any failure the old file keeps its bytes
    and no temporary file is left. A symbolic link is saved through to the file
    it points to (the link stays); a read-only file is refused, not replaced.
    The write holds the project's lock (see :func:`update_project_file`).
    Raises ProjectError (one line, starting with the file name).
    """
    path = Path(path)
    data = _encode(project, path)
    with project_lock(path):
        _write(path, data)
    project.path = path


def update_project_file(path: str | os.PathLike[str], change: Callable[[Project], Any]) -> Project:
    """Read the project file again, apply ``change`` to it and save it, all under the project's lock.

    For writers that add to a project others may be editing (a run recorded by
    ``dlstudio train`` or the window): what was saved meanwhile is kept. Returns
    the project as saved (its ``path`` is ``path``). Raises ProjectError.
    """
    path = Path(path)
    with project_lock(path):
        project = load_project(path)
        change(project)
        _write(path, _encode(project, path))
    project.path = path
    return project


@contextmanager
def project_lock(path: str | os.PathLike[str]) -> Iterator[None]:
    """Hold the advisory lock of a project file (a lock file beside the file a link points to).

    Every save and every :func:`update_project_file` takes it, so a read-change-write
    of one process never interleaves with another's save. ProjectError when another
    process holds it longer than LOCK_WAIT_SECONDS.
    """
    path = Path(path)
    target = Path(os.path.realpath(path))
    lock = FileLock(target.with_name(f".{target.name}.lock"))
    try:
        lock.acquire(LOCK_WAIT_SECONDS)
    except LockHeld as error:
        holder = f"process {error.pid}" if error.pid is not None else "another process"
        raise ProjectError(f"{path.name}: cannot save: {holder} is saving it; try again") from None
    except WriteError as error:
        raise ProjectError(_one_line(f"{path.name}: cannot save: {error.reason}")) from None
    try:
        yield
    finally:
        lock.release()


def _encode(project: Project, path: Path) -> bytes:
    try:
        return project_to_json(project).encode("utf-8")
    except ProjectError as error:
        raise ProjectError(_one_line(f"{path.name}: cannot save: {error.message}")) from None
    except UnicodeEncodeError:
        raise ProjectError(f"{path.name}: cannot save: some text holds characters that are not valid "
                           "Unicode") from None
    except ValueError:  # allow_nan=False: the validators keep NaN out; a file must load again, so refuse it
        raise ProjectError(f"{path.name}: cannot save: a number is not finite (NaN or infinity)") from None


def _write(path: Path, data: bytes) -> None:
    try:
        write_file(path, data, follow_link=True, refuse_read_only=True)
    except WriteError as error:
        raise ProjectError(_one_line(f"{path.name}: cannot save: {error.reason}")) from None


# -- reading -----------------------------------------------------------------

# What a binary file opened as a project most likely is, by its first bytes (a renamed picture or model).
_BINARY_KINDS = ((b"\x89PNG\r\n\x1a\n", "a PNG image"), (b"\xff\xd8\xff", "a JPEG image"), (b"GIF8", "a GIF image"),
                 (b"%PDF", "a PDF document"), (b"PK\x03\x04", "a ZIP archive (a PyTorch .pt or .pth file is one)"),
                 (b"\x80\x02", "a pickle (an old PyTorch file)"))


def _binary_kind(raw: bytes) -> str:
    for magic, kind in _BINARY_KINDS:
        if raw.startswith(magic):
            return kind
    if len(raw) > 8 and raw[8:9] == b"{" and int.from_bytes(raw[:8], "little") < len(raw):
        return "a safetensors weights file"
    return ""


def load_project(path: str | os.PathLike[str]) -> Project:
    """Read a project file; sets ``project.path``. Raises ProjectError starting with the file name."""
    path = Path(path)
    try:
        # A regular file within MAX_FILE_BYTES: a device, a pipe or a huge file is refused before reading.
        raw = read_limited(path, MAX_FILE_BYTES, "project file")
    except ReadError as error:
        raise ProjectError(f"{path.name}: cannot be opened: {error.reason}") from None
    except OSError as error:
        raise ProjectError(f"{path.name}: cannot be opened: {_os_reason(error)}") from None
    # Every JSON value but the first follows a comma or opens a list/object: a cheap bound on the work ahead.
    if raw.count(b",") + raw.count(b"[") + raw.count(b"{") > MAX_JSON_VALUES:
        raise ProjectError(f"{path.name}: too large for a project (more than {MAX_JSON_VALUES:,} values)")
    try:
        text = raw.decode("utf-8-sig")  # tolerate a byte-order mark some editors add
    except UnicodeDecodeError as error:
        kind = _binary_kind(raw)
        if kind:
            raise ProjectError(f"{path.name}: not a project but {kind} (a project file is JSON text)") from None
        raise ProjectError(f"{path.name}: not a text file (invalid UTF-8 at byte {error.start})") from None
    project = project_from_json(text, source=path.name)
    project.path = path
    return project


def project_from_json(text: str, source: str = "") -> Project:
    """Build a project from file text. Only ProjectError escapes, its message prefixed with ``source``."""
    prefix = f"{source}: " if source else ""
    try:
        return project_from_doc(_parse(text))
    except ProjectError as error:
        raise ProjectError(_one_line(prefix + error.message)) from error.__cause__
    except Exception as error:  # noqa: BLE001 - the boundary's promise; validation above should make this unreachable
        raise ProjectError(_one_line(f"{prefix}cannot be read: unexpected {type(error).__name__}: {error}")) \
            from error


def project_from_doc(doc: Any) -> Project:
    """Migrate, validate and build a parsed document (see :func:`project_from_json`)."""
    if not isinstance(doc, dict):
        raise ProjectError(f"not a dlstudio project (expected a JSON object, got {describe(doc)})")
    if "format" not in doc:
        raise ProjectError("not a dlstudio project (no 'format' field)")
    if doc["format"] != FORMAT:
        raise ProjectError(f"not a dlstudio project (format {_quote(doc['format'])}, expected {FORMAT!r})")
    doc = migrations.migrate(doc)
    _check_keys(doc, _TOP_KEYS, "")
    description = doc.get("description", "")
    if not isinstance(description, str):
        raise ProjectError(f"description: expected text, got {describe(description)}")
    if "graph" not in doc:
        raise ProjectError("graph: missing")
    graph = _build_graph(doc["graph"])
    layout = _build_layout(doc.get("layout", {}), graph)
    data = validate_settings(DATA_SETTINGS, doc.get("data", {}), "data")
    training = validate_settings(TRAINING_SETTINGS, doc.get("training", {}), "training")
    runs = _build_runs(doc.get("runs", []))
    normalization = doc.get("normalization")
    if normalization is not None:
        normalization = NormalizationStats.from_doc(normalization)
    weights = doc.get("weights")
    if weights is not None:
        weights = WeightsSource.from_doc(weights)
    project = Project(graph=graph, layout=layout, data=data, training=training, runs=runs,
                      normalization=normalization, weights=weights, description=description)
    project.blocks.load_doc(doc.get("blocks", []))
    project.frozen.load_doc(doc.get("frozen", []))
    return project


def _parse(text: Any) -> Any:
    if not isinstance(text, str):
        raise ProjectError(f"expected the file's text, got {type(text).__name__}")
    if len(text) > MAX_FILE_BYTES:
        raise ProjectError(f"too large for a project (more than {MAX_FILE_BYTES // (1024 * 1024)} MB)")
    try:
        doc = json.loads(text, object_pairs_hook=_object_without_duplicates, parse_constant=_refuse_constant)
    except json.JSONDecodeError as error:
        raise ProjectError(f"not valid JSON ({error.msg}: line {error.lineno}, column {error.colno})") from None
    except RecursionError:
        raise ProjectError("not valid JSON (nested too deeply)") from None
    except ValueError:  # the only other one json raises: an integer literal of thousands of digits
        raise ProjectError("not valid JSON (a number is too long)") from None
    _check_values(doc)
    return doc


def _object_without_duplicates(pairs: list[tuple[str, Any]]) -> dict[str, Any]:
    result: dict[str, Any] = {}
    for key, value in pairs:
        if key in result:
            raise ProjectError(f"not valid: the key {_quote(key)} appears twice in one object")
        result[key] = value
    return result


def _refuse_constant(name: str) -> Any:
    raise ProjectError(f"not valid JSON ({name} is not a number JSON allows)")


def _check_values(doc: Any) -> None:
    """Refuse text that could not be written back (lone surrogates), integers beyond 64 bits, deep nesting."""
    stack: list[tuple[Any, str, int]] = [(doc, "", 0)]
    count = 0
    while stack:
        value, where, depth = stack.pop()
        count += 1
        if count > MAX_JSON_VALUES:
            raise ProjectError(f"too large for a project (more than {MAX_JSON_VALUES:,} values)")
        if isinstance(value, (dict, list)) and depth >= MAX_DEPTH:
            raise ProjectError(f"{_cut(where) or 'the file'}: nested too deeply (more than {MAX_DEPTH} levels)")
        if isinstance(value, dict):
            for key, item in value.items():
                if not _is_valid_text(key):
                    raise ProjectError(f"{_cut(where) or 'the file'}: a key holds an invalid character")
                stack.append((item, f"{where}.{key}" if where else key, depth + 1))
        elif isinstance(value, list):
            stack.extend((item, f"{where}[{index}]", depth + 1) for index, item in enumerate(value))
        elif isinstance(value, str):
            if not _is_valid_text(value):
                raise ProjectError(f"{_cut(where) or 'the file'}: the text holds an invalid character")
        elif isinstance(value, int) and not isinstance(value, bool) and abs(value) > _MAX_INT:
            raise ProjectError(f"{_cut(where) or 'the file'}: the number is too large")


def _cut(where: str, limit: int = 120) -> str:
    # A path into the file made of keys from the file: keep a message readable whatever the keys are.
    return where if len(where) <= limit else where[: limit - 3] + "..."


def _is_valid_text(text: str) -> bool:
    # JSON escapes can spell lone UTF-16 surrogates, which no file can hold as UTF-8.
    try:
        text.encode("utf-8")
    except UnicodeEncodeError:
        return False
    return True


def graph_from_doc(value: Any, where: str = "graph") -> Graph:
    """A graph from its JSON (``Graph.to_dict`` form), checked as a project's: ProjectError naming the field.

    For graphs read from elsewhere than a project file (a run's settings.json).
    """
    try:
        _check_values(value)
        return _build_graph(value, where)
    except ProjectError:
        raise
    except Exception as error:  # noqa: BLE001 - the checks above should make this unreachable
        raise ProjectError(f"{where}: cannot be read ({_one_line(str(error)) or 'damaged'})") from None


def _build_graph(value: Any, name: str = "graph") -> Graph:
    graph_doc = _object(value, name)
    _check_keys(graph_doc, _GRAPH_KEYS, name)
    nodes = _list(_required(graph_doc, "nodes", name), f"{name}.nodes")
    edges = _list(_required(graph_doc, "edges", name), f"{name}.edges")
    if len(nodes) > MAX_NODES:
        raise ProjectError(f"{name}.nodes: {len(nodes):,} nodes, more than the {MAX_NODES:,} a project may hold")
    if len(edges) > MAX_EDGES:
        raise ProjectError(f"{name}.edges: {len(edges):,} connections, more than the {MAX_EDGES:,} a project may "
                           "hold")
    graph = Graph()
    for index, item in enumerate(nodes):
        _add_node(graph, item, f"{name}.nodes[{index}]")
    for index, item in enumerate(edges):
        _add_edge(graph, item, f"{name}.edges[{index}]")
    return graph


def _add_node(graph: Graph, value: Any, where: str) -> None:
    item = _object(value, where)
    _check_keys(item, _NODE_KEYS, where)
    node_id, type_id, name = (_text(item, key, where) for key in ("id", "type", "name"))
    params = _object(_required(item, "params", where), f"{where}.params")
    try:
        spec = get_spec(type_id)
    except GraphError as error:
        raise ProjectError(f"{where}.type: {error.message}") from None
    try:
        check_node_id(node_id)
    except GraphError as error:
        raise ProjectError(f"{where}.id: {error.message}") from None
    if node_id in graph:
        raise ProjectError(f"{where}.id: a node with id {node_id!r} already exists")
    try:
        graph.add_node(type_id, params, name=name, node_id=node_id)
    except ParamError as error:
        reason = error.message
        if error.param is not None and spec.has_param(error.param):
            reason = reason.removeprefix(f"{spec.param(error.param).display_name}: ")
        raise ProjectError(f"{where}.params.{error.param}: {reason}") from None
    except GraphError as error:  # type, id and params are checked above: what is left is the name
        raise ProjectError(f"{where}.name: {error.message}") from None


def _add_edge(graph: Graph, value: Any, where: str) -> None:
    item = _object(value, where)
    _check_keys(item, _EDGE_KEYS, where)
    src, src_port, dst, dst_port = (_text(item, key, where) for key in _EDGE_KEYS)
    for key, node_id in (("src", src), ("dst", dst)):
        if node_id not in graph:
            raise ProjectError(f"{where}.{key}: no node {_quote(node_id)} in the graph")
    source, target = graph.node(src), graph.node(dst)
    if src_port not in source.output_ports:
        raise ProjectError(f"{where}.src_port: {source.name} has no output {_quote(src_port)}")
    if dst_port not in target.input_ports:
        raise ProjectError(f"{where}.dst_port: {target.name} has no input {_quote(dst_port)}")
    try:
        graph.connect(src, src_port, dst, dst_port)
    except GraphError as error:  # the port is taken, or the edge closes a cycle
        raise ProjectError(f"{where}: {error.message}") from None


def _build_layout(value: Any, graph: Graph) -> Layout:
    layout_doc = _object(value, "layout")
    if len(layout_doc) > MAX_NODES:
        raise ProjectError(f"layout: {len(layout_doc):,} positions, more than the {MAX_NODES:,} nodes a project may "
                           "hold")
    positions: dict[str, tuple[float, float]] = {}
    for node_id, point in layout_doc.items():
        if node_id not in graph:
            raise ProjectError(f"layout: a position for {_quote(node_id)}, which is not a node of the graph")
        if not (isinstance(point, list) and len(point) == 2 and all(_is_coordinate(v) for v in point)):
            raise ProjectError(f"layout.{node_id}: expected [x, y], two finite numbers within "
                               f"±{_MAX_COORDINATE:g}; got {_quote(point)}")
        positions[node_id] = (float(point[0]), float(point[1]))
    return Layout(positions)


def _build_runs(value: Any) -> list[str]:
    runs = _list(value, "runs")
    if len(runs) > MAX_RUNS:
        raise ProjectError(f"runs: {len(runs):,} runs, more than the {MAX_RUNS:,} a project may list")
    for index, run in enumerate(runs):
        if not isinstance(run, str):
            raise ProjectError(f"runs[{index}]: expected a folder name, got {describe(run)}")
    return list(runs)


# -- small checks --------------------------------------------------------------

def _object(value: Any, where: str) -> dict[str, Any]:
    if not isinstance(value, dict):
        raise ProjectError(f"{where}: expected an object, got {describe(value)}")
    return value


def _list(value: Any, where: str) -> list[Any]:
    if not isinstance(value, list):
        raise ProjectError(f"{where}: expected a list, got {describe(value)}")
    return value


def _required(doc: dict[str, Any], key: str, where: str) -> Any:
    if key not in doc:
        raise ProjectError(f"{where}.{key}: missing")
    return doc[key]


def _text(doc: dict[str, Any], key: str, where: str) -> str:
    value = _required(doc, key, where)
    if not isinstance(value, str):
        raise ProjectError(f"{where}.{key}: expected text, got {describe(value)}")
    return value


def _check_keys(doc: dict[str, Any], allowed: tuple[str, ...], where: str) -> None:
    for key in doc:
        if key not in allowed:
            raise ProjectError(f"{where + ': ' if where else ''}unknown field {_quote(key)}")


def _is_coordinate(value: Any) -> bool:
    return is_number(value) and abs(value) <= _MAX_COORDINATE  # NaN fails the comparison, inf the bound


def _quote(value: Any, limit: int = 60) -> str:
    """``repr`` of a value from the file, cut short so that a message stays one readable line."""
    text = repr(value)
    return text if len(text) <= limit else text[: limit - 3] + "..."


def _one_line(message: str) -> str:
    # Node names and quoted values may hold line breaks; a message never does.
    return " ".join(message.splitlines())


def _os_reason(error: OSError) -> str:
    return error.strerror or str(error) or type(error).__name__

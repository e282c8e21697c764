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
import secrets
from contextlib import suppress
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
from dlstudio.core.project.settings import DATA_SETTINGS, TRAINING_SETTINGS, validate_settings

_TOP_KEYS = ("format", "format_version", "description", "graph", "layout", "data", "training", "runs",
             "normalization")
_GRAPH_KEYS = ("nodes", "edges")
_NODE_KEYS = ("id", "type", "name", "params")
_EDGE_KEYS = ("src", "src_port", "dst", "dst_port")

# No valid project holds a number beyond these; refusing them early also keeps
# float conversions of huge integers (OverflowError) out of the validators.
_MAX_INT = 2**63 - 1
_MAX_COORDINATE = 1e9


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
    }


def project_to_json(project: Project) -> str:
    """The file text of ``project``: deterministic, so equal projects give equal bytes."""
    return json.dumps(project_to_doc(project), indent=2, ensure_ascii=False, allow_nan=False) + "\n"


def save_project(project: Project, path: str | os.PathLike[str]) -> None:
    """Write ``project`` to ``path`` atomically and set ``project.path``.

    The text goes to a temporary file in the same folder, is flushed to disk,
    and then replaces ``path`` in one step: on any failure the old file keeps
    its bytes and no temporary file is left. Raises ProjectError (one line,
    starting with the file name) if the project cannot be written.
    """
    path = Path(path)
    try:
        data = project_to_json(project).encode("utf-8")
    except ProjectError as error:
        raise ProjectError(_one_line(f"{path.name}: cannot save: {error.message}")) from None
    except UnicodeEncodeError:
        raise ProjectError(f"{path.name}: cannot save: some text holds characters that are not valid "
                           "Unicode") from None
    _write_atomically(path, data)
    project.path = path


def _write_atomically(path: Path, data: bytes) -> None:
    temporary = path.parent / f".{path.name}.{secrets.token_hex(4)}.tmp"
    try:
        # O_EXCL: never clobber a file we did not create; mode 0o666 lets the umask decide as for any new file.
        handle = os.open(temporary, os.O_WRONLY | os.O_CREAT | os.O_EXCL | getattr(os, "O_BINARY", 0), 0o666)
    except OSError as error:
        raise ProjectError(f"{path.name}: cannot save: {_os_reason(error)}") from None
    try:
        with os.fdopen(handle, "wb") as stream:
            stream.write(data)
            stream.flush()
            os.fsync(stream.fileno())
        with suppress(OSError):
            os.chmod(temporary, os.stat(path).st_mode & 0o7777)  # keep the permissions of the file we replace
        os.replace(temporary, path)
    except BaseException as error:
        with suppress(OSError):
            os.unlink(temporary)
        if isinstance(error, OSError):
            raise ProjectError(f"{path.name}: cannot save: {_os_reason(error)}") from error
        raise
    _sync_folder(path.parent)


def _sync_folder(folder: Path) -> None:
    # Makes the rename itself durable on POSIX; folders cannot be opened this way on Windows.
    with suppress(OSError, AttributeError):
        handle = os.open(folder, os.O_RDONLY)
        try:
            os.fsync(handle)
        finally:
            os.close(handle)


# -- reading -----------------------------------------------------------------

def load_project(path: str | os.PathLike[str]) -> Project:
    """Read a project file; sets ``project.path``. Raises ProjectError starting with the file name."""
    path = Path(path)
    try:
        raw = path.read_bytes()
    except OSError as error:
        raise ProjectError(f"{path.name}: cannot be opened: {_os_reason(error)}") from None
    try:
        text = raw.decode("utf-8-sig")  # tolerate a byte-order mark some editors add
    except UnicodeDecodeError as error:
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
    return Project(graph=graph, layout=layout, data=data, training=training, runs=runs,
                   normalization=normalization, description=description)


def _parse(text: Any) -> Any:
    if not isinstance(text, str):
        raise ProjectError(f"expected the file's text, got {type(text).__name__}")
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
    """Refuse text that could not be written back (lone surrogates) and integers beyond 64 bits."""
    stack: list[tuple[Any, str]] = [(doc, "")]
    while stack:
        value, where = stack.pop()
        if isinstance(value, dict):
            for key, item in value.items():
                if not _is_valid_text(key):
                    raise ProjectError(f"{where or 'the file'}: a key holds an invalid character")
                stack.append((item, f"{where}.{key}" if where else key))
        elif isinstance(value, list):
            stack.extend((item, f"{where}[{index}]") for index, item in enumerate(value))
        elif isinstance(value, str):
            if not _is_valid_text(value):
                raise ProjectError(f"{where or 'the file'}: the text holds an invalid character")
        elif isinstance(value, int) and not isinstance(value, bool) and abs(value) > _MAX_INT:
            raise ProjectError(f"{where or 'the file'}: the number is too large")


def _is_valid_text(text: str) -> bool:
    # JSON escapes can spell lone UTF-16 surrogates, which no file can hold as UTF-8.
    try:
        text.encode("utf-8")
    except UnicodeEncodeError:
        return False
    return True


def _build_graph(value: Any) -> Graph:
    graph_doc = _object(value, "graph")
    _check_keys(graph_doc, _GRAPH_KEYS, "graph")
    nodes = _list(_required(graph_doc, "nodes", "graph"), "graph.nodes")
    edges = _list(_required(graph_doc, "edges", "graph"), "graph.edges")
    graph = Graph()
    for index, item in enumerate(nodes):
        _add_node(graph, item, f"graph.nodes[{index}]")
    for index, item in enumerate(edges):
        _add_edge(graph, item, f"graph.edges[{index}]")
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

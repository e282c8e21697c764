"""Graph -> a standalone, readable PyTorch module (source text).

The generated file imports only ``torch`` (and what a layer's code says it needs: torchvision for a
module kept opaque by an import; for operations kept from an ONNX file, the functions that rebuild them,
written into the file, and numpy, onnx and onnx2torch). Submodules are attributes named by
node id (dlstudio's stable keys), so the exported model's ``state_dict`` loads
into the compiled :class:`GraphModule` and back with ``strict=True`` and gives
the same outputs. Everything else a person reads is in the names they gave
the nodes (design.md §12): comments, the docstring, the forward arguments and
variables (a name that is not a usable identifier falls back to the id). Each layer spec says how it
is written (:class:`~dlstudio.core.layers.spec.LayerCode`); this module only
lays the pieces out in topological order.
"""

from __future__ import annotations

import keyword
import re

from dlstudio import __version__
from dlstudio.core.compiler import check_compilable
from dlstudio.core.export.errors import ExportError
from dlstudio.core.graph import Graph, Node
from dlstudio.core.layers.spec import format_shape
from dlstudio.core.shapes import NodeInfo
from dlstudio.core.text import escape_char, is_unsafe

_INDENT = "    "
_SMOKE_BATCH = 2
# Forward variables may not shadow what the forward body uses; the smoke check's names live in another scope.
_TAKEN = frozenset({"self", "torch", "nn"})


SCRIPT_PACKAGES = ("torch", "torchvision", "numpy", "PIL", "scikit-learn")
"""What a training script needs whatever its layers (data reading, digits, transforms)."""


def required_packages(graph: Graph, *, script: bool = False) -> list[str]:
    """The packages the exported model file (or, ``script``, the training script) needs to run: torch and
    what its layers' code says (torchvision for imported torchvision modules, onnx and onnx2torch for kept
    ONNX operations)."""
    needed = list(SCRIPT_PACKAGES if script else ("torch",))
    for node in graph:
        code = node.spec.code
        needed += list(code.packages) if code is not None else []
    return list(dict.fromkeys(needed))


def class_name_for(project_name: str) -> str:
    """A Python class name from a project's name: "my digits" and "my-digits" give MyDigits, "Shallow MLP"
    ShallowMLP; Model when nothing usable is left (a name in another script, or starting with a digit)."""
    words = re.split(r"[^0-9A-Za-z]+", project_name)
    name = "".join(word[:1].upper() + word[1:] for word in words)
    if not name.isidentifier() or keyword.iskeyword(name) or name in ("torch", "nn"):
        return "Model"
    return name


def export_python(graph: Graph, class_name: str = "Model", description: str = "") -> str:
    """Python source of a module defining ``class_name``, equivalent to ``compile_graph(graph)``.

    Raises the :class:`~dlstudio.core.errors.CompileError` of ``check_compilable``
    if the graph has errors, and :class:`ExportError` for a bad class name or a
    layer type that has no code template.
    """
    if not class_name.isidentifier() or keyword.iskeyword(class_name) or class_name in ("torch", "nn"):
        raise ExportError(f"class name {class_name!r} is not a valid Python class name")
    infos = check_compilable(graph)
    order = graph.topological_order()
    nodes = [graph.node(node_id) for node_id in order]
    inputs = [node for node in nodes if node.spec.role == "input"]
    outputs = [node for node in nodes if node.spec.role == "output"]
    layers = [node for node in nodes if node.spec.role == "layer"]
    for node in layers:
        if node.spec.code is None:
            raise ExportError(f"{_clean_text(node.name)}: layer type {node.type} cannot be exported to Python "
                              f"code yet")
    variables = _variable_names(nodes)

    # Layers that need more than torch say which import lines (e.g. torchvision for imported modules).
    extra = list(dict.fromkeys(line for node in layers for line in node.spec.code.imports))  # type: ignore[union-attr]
    # ... and some the functions that make their modules, written into the file so that it needs no dlstudio.
    definitions = dict.fromkeys(text for node in layers
                                for text in node.spec.code.definitions)  # type: ignore[union-attr]
    lines = [*_module_docstring(graph, inputs, outputs, infos, description), "",
             "import torch", "from torch import nn", *extra, "", ""]
    for text in definitions:
        lines += [*text.rstrip().splitlines(), "", ""]
    lines.append(f"class {class_name}(nn.Module):")
    summary = description.strip().splitlines()[0] if description.strip() else "The network drawn in dlstudio."
    lines.append(_INDENT + _docstring_line(summary))
    lines.append("")
    lines += _init_method(layers, infos)
    lines.append("")
    lines += _forward_method(graph, nodes, inputs, outputs, infos, variables)
    lines += ["", ""]
    lines += _smoke_check(class_name, inputs, outputs, infos)
    return "\n".join(lines) + "\n"


def _module_docstring(graph: Graph, inputs: list[Node], outputs: list[Node], infos: dict[str, NodeInfo],
                      description: str) -> list[str]:
    params = sum(info.params for info in infos.values())
    macs = sum(info.macs for info in infos.values())
    body = [f"A PyTorch model exported by dlstudio {__version__}."]
    if description:
        body += ["", *(_clean_text(line) for line in description.strip().splitlines())]
    body += [""]
    body += [f"Input {_clean_text(node.name)}: {format_shape(infos[node.id].output_shape)}" for node in inputs]
    body += [f"Output {_clean_text(node.name)}: {format_shape(infos[node.id].output_shape)} ({node.params['task']})"
             for node in outputs]
    body += [f"Parameters: {params:,}; multiply-accumulates per sample: {macs:,}.", "",
             "Each layer's attribute keeps the key dlstudio stores its weights under (its name in the",
             "drawing is the comment beside it), so a trained run's weights load here with strict=True:",
             "export them as safetensors (File > Export Model, or dlstudio export --format safetensors) and",
             "    from safetensors.torch import load_file",
             "    model.load_state_dict(load_file(\"model.safetensors\"))",
             "or take them from a run folder's checkpoint:",
             "    model.load_state_dict(torch.load(\"best.pt\", weights_only=True)[\"model\"])",
             "Run this file to build the model and push a random batch through it."]
    return ['"""' + body[0], *body[1:], '"""']


def _init_method(layers: list[Node], infos: dict[str, NodeInfo]) -> list[str]:
    body = [f"{_INDENT * 2}super().__init__()"]
    for node in layers:
        make_module = node.spec.code.module  # type: ignore[union-attr]
        if make_module is None:
            continue  # an inline operation: no submodule, nothing in the state_dict
        expression = make_module(node.params, list(infos[node.id].input_shapes))
        body.append(f"{_INDENT * 2}self.{node.id} = {expression}{_name_comment(node)}")
    return [f"{_INDENT}def __init__(self) -> None:", *body]


def _variable_names(nodes: list[Node]) -> dict[str, str]:
    """Node id -> its forward variable (or argument): the person's name where it makes an identifier, else the id.

    Names are free text: spaces and dashes become ``_`` ("block1 conv1" -> ``block1_conv1``); a name that still
    is no plain identifier, or that two nodes share, gives way to the (unique) id, and a clash that leaves
    gets a numbered suffix.
    """
    wanted = {node.id: _identifier(node.name) for node in nodes}
    counts: dict[str, int] = {}
    for name in wanted.values():
        if name is not None:
            counts[name] = counts.get(name, 0) + 1
    names: dict[str, str] = {node_id: name for node_id, name in wanted.items()
                             if name is not None and counts[name] == 1}
    used = set(names.values())
    for node in nodes:
        if node.id in names:
            continue
        candidate, number = node.id, 1
        while candidate in used or candidate in _TAKEN:
            number += 1
            candidate = f"{node.id}_{number}"
        names[node.id] = candidate
        used.add(candidate)
    return names


def _identifier(name: str) -> str | None:
    candidate = re.sub(r"[\s\-.]+", "_", name.strip())
    if not re.fullmatch(r"[A-Za-z_][A-Za-z0-9_]{0,79}", candidate) or keyword.iskeyword(candidate) \
            or candidate in _TAKEN or candidate.startswith("__"):
        return None
    return candidate


def _forward_method(graph: Graph, nodes: list[Node], inputs: list[Node], outputs: list[Node],
                    infos: dict[str, NodeInfo], variables: dict[str, str]) -> list[str]:
    arguments = ", ".join(f"{variables[node.id]}: torch.Tensor" for node in inputs)
    body = [f"{_INDENT * 2}# {_clean_text(node.name)}: {format_shape(infos[node.id].output_shape)}" for node in inputs]
    for node in nodes:
        if node.spec.role != "layer":
            continue
        sources = [variables[edge.src] for edge in graph.input_edges(node.id)]
        code = node.spec.code
        if code.inline is not None:  # type: ignore[union-attr]
            expression = code.inline(sources, node.params, list(infos[node.id].input_shapes))  # type: ignore[union-attr]
        else:
            expression = f"self.{node.id}({', '.join(sources)})"
        shape = format_shape(infos[node.id].output_shape)
        body.append(f"{_INDENT * 2}{variables[node.id]} = {expression}  # {_comment(node, variables)}{shape}")
    results = [variables[graph.input_edges(node.id)[0].src] for node in outputs]
    body.append(f"{_INDENT * 2}return {', '.join(results)}")
    returns = "torch.Tensor" if len(results) == 1 else f"tuple[{', '.join(['torch.Tensor'] * len(results))}]"
    return [f"{_INDENT}def forward(self, {arguments}) -> {returns}:", *body]


def _smoke_check(class_name: str, inputs: list[Node], outputs: list[Node], infos: dict[str, NodeInfo]) -> list[str]:
    """A ``__main__`` block: build the model, run a random batch, print the output shape(s).

    Its module-level names are fixed (model, batch, result), never node ids, so no id can clash with them.
    """
    def random_batch(node: Node) -> str:
        dims = ", ".join(str(d) for d in (_SMOKE_BATCH, *infos[node.id].output_shape))  # type: ignore[misc]
        return f"torch.randn({dims})"

    lines = ['if __name__ == "__main__":', f"{_INDENT}model = {class_name}().eval()"]
    if len(inputs) == 1:
        lines.append(f"{_INDENT}batch = {random_batch(inputs[0])}  # {_clean_text(inputs[0].name)}")
        call = "model(batch)"
    else:
        lines.append(f"{_INDENT}batch = (")
        lines += [f"{_INDENT * 2}{random_batch(node)},  # {_clean_text(node.name)}" for node in inputs]
        lines.append(f"{_INDENT})")
        call = "model(*batch)"
    lines.append(f"{_INDENT}with torch.no_grad():")
    lines.append(f"{_INDENT * 2}result = {call}")
    if len(outputs) == 1:
        lines.append(f'{_INDENT}print("output shape:", tuple(result.shape))')
    else:
        lines += [f"{_INDENT}print({_string_literal(_clean_text(node.name) + ' shape:')}, "
                  f"tuple(result[{index}].shape))" for index, node in enumerate(outputs)]
    return lines


def _name_comment(node: Node) -> str:
    """The user's label as a trailing comment, when it says more than the attribute's name."""
    name = _clean_text(node.name)
    return f"  # {name}" if name and name != node.id else ""


def _comment(node: Node, variables: dict[str, str]) -> str:
    """The user's label at the start of a forward comment, when the variable's name does not say it already."""
    name = _clean_text(node.name)
    return f"{name}: " if name and name != variables[node.id] else ""


def _string_literal(text: str) -> str:
    # repr() is valid Python for any str; _clean_text already kept it on one line.
    return repr(text)


def _clean_text(text: str) -> str:
    # Labels and descriptions are free text: keep them on one line and unable to close a docstring.
    # What is left that Python source may not hold (NUL, other control characters, lone surrogates) or
    # that shows code in another order than it runs (bidi overrides) is written as its escape, which a
    # docstring or a comment shows as such (e.g. \x00).
    text = re.sub(r"\s+", " ", text).replace("\\", "\\\\").replace('"""', "'''").strip()
    return "".join("\\" + escape_char(ch) if is_unsafe(ch) else ch for ch in text)


def _docstring_line(text: str) -> str:
    text = _clean_text(text)
    if text.endswith('"'):
        text += " "
    return f'"""{text}"""'

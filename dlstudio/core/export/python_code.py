"""Graph -> a standalone, readable PyTorch module (source text).

The generated file imports only ``torch``. Submodules are attributes named by
node id and forward variables are named by node id too, so the exported
model's ``state_dict`` loads into the compiled :class:`GraphModule` and back
with ``strict=True`` and gives the same outputs. Each layer spec says how it
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

_INDENT = "    "
_SMOKE_BATCH = 2


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
            raise ExportError(f"{node.id}: layer type {node.type} cannot be exported to Python code yet")

    lines = [*_module_docstring(graph, inputs, outputs, infos, description), "",
             "import torch", "from torch import nn", "", ""]
    lines.append(f"class {class_name}(nn.Module):")
    summary = description.strip().splitlines()[0] if description.strip() else "The network drawn in dlstudio."
    lines.append(_INDENT + _docstring_line(summary))
    lines.append("")
    lines += _init_method(layers, infos)
    lines.append("")
    lines += _forward_method(graph, nodes, inputs, outputs, infos)
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
    body += [f"Input {node.id}: {format_shape(infos[node.id].output_shape)}" for node in inputs]
    body += [f"Output {node.id}: {format_shape(infos[node.id].output_shape)} ({node.params['task']})"
             for node in outputs]
    body += [f"Parameters: {params:,}; multiply-accumulates per sample: {macs:,}.", "",
             "Attribute names are the node ids of the drawn graph, so a state_dict saved by dlstudio",
             "loads here with strict=True. Run this file to build the model and push a random batch through it."]
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


def _forward_method(graph: Graph, nodes: list[Node], inputs: list[Node], outputs: list[Node],
                    infos: dict[str, NodeInfo]) -> list[str]:
    arguments = ", ".join(f"{node.id}: torch.Tensor" for node in inputs)
    body = [f"{_INDENT * 2}# {node.id}: {format_shape(infos[node.id].output_shape)}" for node in inputs]
    for node in nodes:
        if node.spec.role != "layer":
            continue
        sources = [edge.src for edge in graph.input_edges(node.id)]
        code = node.spec.code
        if code.inline is not None:  # type: ignore[union-attr]
            expression = code.inline(sources, node.params, list(infos[node.id].input_shapes))  # type: ignore[union-attr]
        else:
            expression = f"self.{node.id}({', '.join(sources)})"
        shape = format_shape(infos[node.id].output_shape)
        body.append(f"{_INDENT * 2}{node.id} = {expression}  # {shape}")
    results = [graph.input_edges(node.id)[0].src for node in outputs]
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
        lines.append(f"{_INDENT}batch = {random_batch(inputs[0])}  # {inputs[0].id}")
        call = "model(batch)"
    else:
        lines.append(f"{_INDENT}batch = (")
        lines += [f"{_INDENT * 2}{random_batch(node)},  # {node.id}" for node in inputs]
        lines.append(f"{_INDENT})")
        call = "model(*batch)"
    lines.append(f"{_INDENT}with torch.no_grad():")
    lines.append(f"{_INDENT * 2}result = {call}")
    if len(outputs) == 1:
        lines.append(f'{_INDENT}print("output shape:", tuple(result.shape))')
    else:
        lines += [f'{_INDENT}print("{node.id} shape:", tuple(result[{index}].shape))'
                  for index, node in enumerate(outputs)]
    return lines


def _name_comment(node: Node) -> str:
    """The user's label as a trailing comment, when it says more than the id."""
    name = _clean_text(node.name)
    return f"  # {name}" if name and name != node.id else ""


def _clean_text(text: str) -> str:
    # Labels and descriptions are free text: keep them on one line and unable to close a docstring.
    return re.sub(r"\s+", " ", text).replace("\\", "\\\\").replace('"""', "'''").strip()


def _docstring_line(text: str) -> str:
    text = _clean_text(text)
    if text.endswith('"'):
        text += " "
    return f'"""{text}"""'

"""A traced ``torch.fx`` graph -> a dlstudio :class:`Graph` of registered layer types (torch).

Every fx node is mapped on its own: a call of a module by the module's exact class (a subclass may
compute something else), a function or tensor method by what it is. A module's weights keep their
``state_dict`` layout, so the source keys map one to one onto ``node_id.<name>`` of the compiled graph.
What has no layer type is collected as :class:`Unmapped` (with the reason); nodes downstream of it are
skipped without being listed again, unless they cannot be mapped either.
"""

from __future__ import annotations

import keyword
import math
import operator
import re
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import torch
import torch.nn.functional as F
from torch import fx, nn

from dlstudio.core.errors import DlstudioError
from dlstudio.core.graph import RESERVED_IDS, Graph, unique_name
from dlstudio.core.importer.opaque_macs import counted_macs
from dlstudio.core.importer.result import Unmapped

Value = tuple[str, str]  # (node id, output port) of a tensor in the dlstudio graph
_NAME_LIMIT = 80
_ID_LIMIT = 60
_MAX_INPUTS = 8  # Concat, Add and Multiply take at most this many inputs


class _Unmappable(Exception):
    """Raised by a mapper: the operation has no layer type (the message says why)."""


@dataclass(frozen=True)
class _Missing:
    """The value of an fx node that was not mapped (or depends on one that was not)."""


@dataclass(frozen=True)
class _Chunk:
    """The tuple ``x.chunk(n, dim)`` returns: each item becomes a Slice node when it is taken."""

    source: Value
    dim: int
    bounds: tuple[tuple[int, int], ...]
    name: str


@dataclass(frozen=True)
class _Parameter:
    """A parameter the forward reads directly (``get_attr``), e.g. ConvNeXt's layer scale."""

    target: str
    shape: tuple[int, ...]


MISSING = _Missing()


def _size(value: Any) -> int | list[int]:
    """A kernel size, stride, ... as a spec parameter: one number when all sides are equal."""
    if isinstance(value, (tuple, list)):
        values = [int(v) for v in value]
        return values[0] if len(set(values)) == 1 else values
    return int(value)


class Converter:
    """Maps the nodes of a traced module (``gm``, shapes recorded by ShapeProp) into a new Graph."""

    def __init__(self, gm: fx.GraphModule, input_shape: tuple[int, ...], num_classes: int,
                 leaf_functions: dict[Callable[..., Any], Callable[..., Any]] | None = None,
                 leaf_modules: dict[type, Callable[..., Any]] | None = None,
                 opaque_source: tuple[str, int] | None = None, opaque_reasons: dict[str, str] | None = None,
                 ) -> None:
        self.gm = gm
        self.input_shape = input_shape
        self.num_classes = num_classes
        self.graph = Graph()
        self.key_map: dict[str, str] = {}
        self.unmapped: list[Unmapped] = []
        # Module path -> the functions and tensor methods in its forward that have no layer type.
        self.unmapped_scopes: dict[str, list[str]] = {}
        self.values: dict[fx.Node, Any] = {}
        self.source_names: dict[str, str] = {}  # graph node id -> the fx node it came from (for messages)
        # Graph node id -> the module path it was made in (``layer1.0.conv1``, ``layer1.0`` for its add; '' at the
        # top): what groups an import into blocks by the source's module hierarchy.
        self.node_paths: dict[str, str] = {}
        self._path = ""
        self._functions = {**_FUNCTIONS, **(leaf_functions or {})}
        self._modules = {**_MODULES, **(leaf_modules or {})}
        # (torchvision model name, num_classes) when the source is a torchvision model: a submodule that has no
        # layer type then becomes one opaque TorchvisionModule node (issue 12) instead of being refused.
        self.opaque_source = opaque_source
        self.opaque_reasons = dict(opaque_reasons or {})  # module path -> why it is opaque (kept whole by the tracer)
        # Module path -> why it cannot be kept whole (it takes several inputs or gives several outputs): the
        # import keeps the module around it whole instead.
        self.unkeepable: dict[str, str] = {}
        # Weights computed from a constant of the source (ONNX's x - mean -> a bias of -mean): compiled key ->
        # (source key, "same" | "negative" | "reciprocal" | "ones"); see ImportResult.derived.
        self.derived: dict[str, tuple[str, str]] = {}
        self.constant_nodes: list[str] = []  # nodes whose weights are such constants (frozen, not counted)

    # -- building blocks ---------------------------------------------------

    def add(self, type_id: str, params: dict[str, Any], name: str, inputs: list[Any],
            weights: dict[str, str] | None = None) -> Any:
        """Add a node fed by ``inputs`` (values); MISSING, adding nothing, when an input is missing."""
        if any(not isinstance(value, tuple) for value in inputs):
            return MISSING
        name = unique_name(name[:_NAME_LIMIT], self.graph.names())
        node_id = self._new_id(name)
        try:
            node = self.graph.add_node(type_id, params, name=name, node_id=node_id)
        except DlstudioError as error:
            raise _Unmappable(f"{type_id}: {error.message}") from None
        for (src, src_port), port in zip(inputs, node.input_ports):
            self.graph.connect(src, src_port, node_id, port)
        for local, source_key in (weights or {}).items():
            self.key_map[f"{node_id}.{local}"] = source_key
        self.node_paths[node_id] = self._path
        return (node_id, "out")

    def _new_id(self, name: str) -> str:
        base = re.sub(r"[^A-Za-z0-9_]", "_", name)
        base = re.sub(r"_+", "_", base).strip("_") or "node"
        if not base[0].isalpha():
            base = "n" + base
        base = base[:_ID_LIMIT]
        candidate, number = base, 2
        while candidate in self.graph or keyword.iskeyword(candidate) or candidate in RESERVED_IDS:
            candidate = f"{base}_{number}"
            number += 1
        return candidate

    def value(self, arg: Any) -> Any:
        """The dlstudio value of an fx argument that must be a tensor."""
        if not isinstance(arg, fx.Node):
            raise _Unmappable(f"expected a tensor, got the constant {arg!r}")
        value = self.values.get(arg, MISSING)
        if isinstance(value, (_Chunk, _Parameter)):
            raise _Unmappable(f"uses {arg.name} in a way no layer type expresses")
        return value

    @staticmethod
    def shape(arg: Any) -> tuple[int, ...]:
        """The traced shape of an fx node's tensor, with the batch dimension."""
        meta = arg.meta.get("tensor_meta") if isinstance(arg, fx.Node) else None
        if meta is None or not hasattr(meta, "shape"):
            raise _Unmappable("its input's shape is unknown")
        return tuple(meta.shape)

    def scope(self, node: fx.Node) -> str:
        """The module path a function call sits in (``layer1.0``), '' at the top."""
        stack = node.meta.get("nn_module_stack") or {}
        if not stack:
            return ""
        path = list(stack.values())[-1][0]
        return str(path)

    def function_name(self, node: fx.Node, word: str | None = None) -> str:
        word = word or re.sub(r"_\d+$", "", node.name)
        scope = self.scope(node)
        return f"{scope}.{word}" if scope else word

    # -- the walk ----------------------------------------------------------

    def run(self) -> None:
        for node in self.gm.graph.nodes:
            self._path = str(node.target) if node.op == "call_module" else self.scope(node)
            try:
                self.values[node] = self._map(node)
            except _Unmappable as reason:
                self.values[node] = MISSING
                if node.op in ("call_function", "call_method"):  # "" is the model's own forward
                    self.unmapped_scopes.setdefault(self.scope(node), []).append(self._operation(node))
                self.unmapped.append(Unmapped(self._display(node), self._operation(node), str(reason)))

    def _display(self, node: fx.Node) -> str:
        if node.op == "call_module":
            return str(node.target)
        return self.function_name(node)

    def _operation(self, node: fx.Node) -> str:
        if node.op == "call_module":
            return type(self.gm.get_submodule(str(node.target))).__name__
        if node.op == "call_function":
            return getattr(node.target, "__name__", str(node.target))
        if node.op == "call_method":
            return f".{node.target}()"
        return node.op

    def _map(self, node: fx.Node) -> Any:
        if node.op == "placeholder":
            if any(n.op == "placeholder" for n in self.values):
                raise _Unmappable("the model takes more than one input")
            return self.add("Input", {"shape": list(self.input_shape)}, "input", [])
        if node.op == "output":
            (result,) = node.args
            if not isinstance(result, fx.Node):
                raise _Unmappable("the model returns several values (a classifier returns one tensor of scores)")
            return self.add("Output", {"task": "classification", "classes": self.num_classes}, "output",
                            [self.value(result)])
        if node.op == "get_attr":
            attr = self.gm
            for part in str(node.target).split("."):
                attr = getattr(attr, part)
            if not isinstance(attr, torch.Tensor):
                raise _Unmappable("reads an attribute that is not a tensor")
            return _Parameter(str(node.target), tuple(attr.shape))
        if node.op == "call_module":
            module = self.gm.get_submodule(str(node.target))
            path = str(node.target)
            mapper = None if path in self.opaque_reasons else self._modules.get(type(module))
            if mapper is None:
                reason = self.opaque_reasons.get(path) or f"no layer type for the module {type(module).__qualname__}"
                if self.opaque_source is None:
                    raise _Unmappable(reason)
                return self._opaque(node, module, reason)
            count = len(self.graph)
            try:
                return mapper(self, node, module)
            except _Unmappable as error:
                if self.opaque_source is None or len(self.graph) != count:
                    raise
                return self._opaque(node, module, f"{type(module).__qualname__} {error}")
        if node.op == "call_function":
            if node.target is operator.getitem:
                return self._getitem(node)
            mapper = self._functions.get(node.target)  # type: ignore[arg-type]
            if mapper is None:
                raise _Unmappable(f"no layer type for the function {self._operation(node)}")
            return mapper(self, node, *node.args, **node.kwargs)
        if node.op == "call_method":
            mapper = _METHODS.get(str(node.target))
            if mapper is None:
                raise _Unmappable(f"no layer type for the tensor method .{node.target}()")
            return mapper(self, node, *node.args, **node.kwargs)
        raise _Unmappable(f"unknown fx operation {node.op}")

    def _opaque(self, node: fx.Node, module: nn.Module, reason: str) -> Any:
        """One TorchvisionModule node holding the whole submodule (its weights keep their own keys)."""
        assert self.opaque_source is not None
        out = node.meta.get("tensor_meta")
        if len(node.args) != 1 or node.kwargs or not isinstance(node.args[0], fx.Node):
            why = "it takes more than one input, which an opaque module node does not"
        elif not hasattr(out, "shape"):
            why = "it gives more than one tensor, which an opaque module node does not"
        else:
            why = ""
        if why:
            self.unkeepable[str(node.target)] = why
            raise _Unmappable(f"{reason}; {why}")
        model, classes = self.opaque_source
        sentence = reason[:1].upper() + reason[1:]
        input_shape = [int(d) for d in self.shape(node.args[0])[1:]]
        params = {"model": model, "num_classes": classes, "path": str(node.target), "input_shape": input_shape,
                  "output_shape": [int(d) for d in out.shape[1:]],
                  "param_count": sum(p.numel() for p in module.parameters()),
                  "macs": counted_macs(module, input_shape),
                  "reason": sentence if sentence.endswith(".") else sentence + "."}
        return self.add("TorchvisionModule", params, str(node.target), [self.value(node.args[0])],
                        _state_keys(node, module))

    def _getitem(self, node: fx.Node) -> Any:
        source, index = node.args
        chunk = self.values.get(source) if isinstance(source, fx.Node) else None
        if not isinstance(chunk, _Chunk) or not isinstance(index, int):
            raise _Unmappable("indexes a tensor (only the parts of a chunk() map, to Slice nodes)")
        start, end = chunk.bounds[index]
        return self.add("Slice", {"dim": chunk.dim, "start": start, "end": end}, f"{chunk.name}{index}",
                        [chunk.source])


# -- modules -------------------------------------------------------------------


def _state_keys(node: fx.Node, module: nn.Module) -> dict[str, str]:
    return {key: f"{node.target}.{key}" for key in module.state_dict()}


def _module(type_id: str, params: Callable[[nn.Module], dict[str, Any]] | None = None,
            check: Callable[[nn.Module], str | None] | None = None) -> Callable[..., Any]:
    """A mapper of a module to one node of ``type_id`` with the same weights."""

    def mapper(conv: Converter, node: fx.Node, module: nn.Module) -> Any:
        reason = check(module) if check else None
        if reason:
            raise _Unmappable(reason)
        if len(node.args) != 1 or node.kwargs:
            raise _Unmappable("is called with more than one input")
        values = params(module) if params else {}
        return conv.add(type_id, values, str(node.target), [conv.value(node.args[0])], _state_keys(node, module))

    return mapper


def _conv_params(m: Any) -> dict[str, Any]:
    return {"in_channels": m.in_channels, "out_channels": m.out_channels, "kernel_size": _size(m.kernel_size),
            "stride": _size(m.stride), "padding": m.padding if isinstance(m.padding, str) else _size(m.padding),
            "dilation": _size(m.dilation), "groups": m.groups, "bias": m.bias is not None}


def _conv_check(m: Any) -> str | None:
    return None if m.padding_mode == "zeros" else f"padding mode {m.padding_mode!r} (only zeros has a layer type)"


def _bn_params(m: Any) -> dict[str, Any]:
    return {"num_features": m.num_features, "eps": m.eps, "momentum": m.momentum, "affine": m.affine}


def _bn_check(m: Any) -> str | None:
    if not m.track_running_stats:
        return "normalizes with batch statistics only (track_running_stats=False)"
    if m.momentum is None:
        return "keeps a cumulative running average (momentum=None)"
    return None


def _max_pool_params(m: Any) -> dict[str, Any]:
    return {"kernel_size": _size(m.kernel_size), "stride": _size(m.stride) if m.stride is not None else None,
            "padding": _size(m.padding), "dilation": _size(m.dilation), "ceil_mode": bool(m.ceil_mode)}


def _avg_pool_params(m: Any) -> dict[str, Any]:
    return {"kernel_size": _size(m.kernel_size), "stride": _size(m.stride) if m.stride is not None else None,
            "padding": _size(m.padding), "ceil_mode": bool(m.ceil_mode),
            "count_include_pad": bool(m.count_include_pad)}


def _adaptive_check(m: Any) -> str | None:
    size = m.output_size
    if getattr(m, "return_indices", False):
        return "returns indices"
    if isinstance(size, (tuple, list)) and any(s is None for s in size):
        return "keeps one input size (output_size with None)"
    return None


def _flatten_check(m: Any) -> str | None:
    if m.start_dim != 1 or m.end_dim != -1:
        return f"flattens dimensions {m.start_dim} to {m.end_dim} (the Flatten layer flattens all after the batch)"
    return None


def _layer_norm(conv: Converter, node: fx.Node, module: Any) -> Any:
    (arg,) = node.args
    shape = conv.shape(arg)[1:]
    normalized = tuple(module.normalized_shape)
    if len(normalized) == 1 and normalized[0] == shape[-1]:
        over = "last"
    elif normalized == shape:
        over = "all"
    else:
        raise _Unmappable(f"normalizes over {normalized}, neither the last dimension nor all of {shape}")
    if module.elementwise_affine and module.bias is None:
        raise _Unmappable("has a learned scale but no learned shift (bias=False)")
    return conv.add("LayerNorm", {"over": over, "eps": module.eps, "elementwise_affine": module.elementwise_affine},
                    str(node.target), [conv.value(arg)], _state_keys(node, module))


def _linear(conv: Converter, node: fx.Node, module: Any) -> Any:
    (arg,) = node.args
    shape = conv.shape(arg)
    params = {"in_features": module.in_features, "out_features": module.out_features,
              "bias": module.bias is not None}
    if len(shape) == 2:
        return conv.add("Linear", params, str(node.target), [conv.value(arg)], _state_keys(node, module))
    if len(shape) != 4:
        raise _Unmappable(f"applies to a {len(shape)}-D tensor (the Linear layer takes (N, features))")
    # A Linear on the last dimension of (N, H, W, C) (channels last, as in ConvNeXt) is a 1x1 Conv2d on
    # (N, C, H, W): the same weights, reshaped to (out, in, 1, 1), between two Permutes.
    name = str(node.target)
    first = _permute(conv, conv.value(arg), [3, 1, 2], f"{name}.to_channels_first", arg)
    out = conv.add("Conv2d", {"in_channels": module.in_features, "out_channels": module.out_features,
                              "kernel_size": 1, "bias": module.bias is not None}, name, [first],
                   _state_keys(node, module))
    return _permute(conv, out, [2, 3, 1], f"{name}.to_channels_last")


def _permute(conv: Converter, value: Any, dims: list[int], name: str, source: Any = None) -> Any:
    """A Permute node, or nothing where it undoes the Permute that made ``value``.

    ``source`` is the fx node ``value`` comes from: only a value nothing else reads (one fx user, no
    edge out yet) may lose its Permute.
    """
    sole = source is None or (isinstance(source, fx.Node) and len(source.users) == 1)
    if isinstance(value, tuple) and sole:
        node = conv.graph.node(value[0])
        if (node.type == "Permute" and not conv.graph.output_edges(node.id)
                and [node.params["dims"][d - 1] for d in dims] == list(range(1, len(dims) + 1))):
            (edge,) = conv.graph.input_edges(node.id)
            conv.graph.remove_node(node.id)
            return (edge.src, edge.src_port)
    return conv.add("Permute", {"dims": dims}, name, [value])


def _layer_norm_2d(conv: Converter, node: fx.Node, module: Any) -> Any:
    """torchvision's LayerNorm2d: a LayerNorm over the channels of (N, C, H, W), done channels last."""
    (arg,) = node.args
    name = str(node.target)
    last = _permute(conv, conv.value(arg), [2, 3, 1], f"{name}.to_channels_last", arg)
    normed = conv.add("LayerNorm", {"over": "last", "eps": module.eps,
                                    "elementwise_affine": module.elementwise_affine},
                      name, [last], _state_keys(node, module))
    return _permute(conv, normed, [3, 1, 2], f"{name}.to_channels_first")


def _stochastic_depth(conv: Converter, node: fx.Node, module: Any) -> Any:
    (arg,) = node.args
    return conv.add("StochasticDepth", {"p": module.p, "mode": module.mode}, str(node.target), [conv.value(arg)])


def _zero_pad(m: Any) -> dict[str, Any]:
    left, right, top, bottom = m.padding
    return {"left": left, "right": right, "top": top, "bottom": bottom}


def _prelu(m: Any) -> dict[str, Any]:
    return {"num_parameters": m.num_parameters, "init": 0.25}


_MODULES: dict[type, Callable[..., Any]] = {
    nn.Conv2d: _module("Conv2d", _conv_params, _conv_check),
    nn.Conv1d: _module("Conv1d", _conv_params, _conv_check),
    nn.BatchNorm2d: _module("BatchNorm2d", _bn_params, _bn_check),
    nn.BatchNorm1d: _module("BatchNorm1d", _bn_params, _bn_check),
    nn.GroupNorm: _module("GroupNorm", lambda m: {"num_groups": m.num_groups, "eps": m.eps, "affine": m.affine}),
    nn.LayerNorm: _layer_norm,
    nn.Linear: _linear,
    nn.ReLU: _module("ReLU"),
    nn.ReLU6: _module("ReLU6"),
    nn.Hardswish: _module("Hardswish"),
    nn.Hardsigmoid: _module("Hardsigmoid"),
    nn.SiLU: _module("SiLU"),
    nn.Mish: _module("Mish"),
    nn.Sigmoid: _module("Sigmoid"),
    nn.Tanh: _module("Tanh"),
    nn.GELU: _module("GELU", lambda m: {"approximate": m.approximate}),
    nn.LeakyReLU: _module("LeakyReLU", lambda m: {"negative_slope": m.negative_slope}),
    nn.ELU: _module("ELU", lambda m: {"alpha": m.alpha}),
    nn.PReLU: _module("PReLU", _prelu),
    nn.Softmax: _module("Softmax", lambda m: {"dim": m.dim}, lambda m: "has no dim" if m.dim is None else None),
    nn.MaxPool2d: _module("MaxPool2d", _max_pool_params,
                          lambda m: "returns indices" if m.return_indices else None),
    nn.AvgPool2d: _module("AvgPool2d", _avg_pool_params,
                          lambda m: None if m.divisor_override is None else "has a divisor_override"),
    nn.AdaptiveAvgPool2d: _module("AdaptiveAvgPool2d", lambda m: {"output_size": _size(m.output_size)},
                                  _adaptive_check),
    nn.AdaptiveMaxPool2d: _module("AdaptiveMaxPool2d", lambda m: {"output_size": _size(m.output_size)},
                                  _adaptive_check),
    nn.Dropout: _module("Dropout", lambda m: {"p": m.p}),
    nn.Dropout2d: _module("Dropout2d", lambda m: {"p": m.p}),
    nn.Flatten: _module("Flatten", check=_flatten_check),
    nn.Identity: _module("Identity"),
    nn.ChannelShuffle: _module("ChannelShuffle", lambda m: {"groups": m.groups}),
    nn.ZeroPad2d: _module("ZeroPad2d", _zero_pad),
}


def torchvision_modules() -> dict[type, Callable[..., Any]]:
    """Mappers of torchvision's own leaf modules (imported here: torchvision loads only for an import)."""
    from torchvision.models.convnext import LayerNorm2d
    from torchvision.ops import StochasticDepth

    return {StochasticDepth: _stochastic_depth, LayerNorm2d: _layer_norm_2d}


# -- functions and tensor methods -------------------------------------------------


def _rank_dim(conv: Converter, arg: Any, dim: int) -> int:
    rank = len(conv.shape(arg))
    if not -rank <= dim < rank:
        raise _Unmappable(f"dimension {dim} is out of range")
    dim %= rank
    if dim == 0:
        raise _Unmappable("works along the batch dimension")
    return dim


def _merge(type_id: str, word: str) -> Callable[..., Any]:
    def mapper(conv: Converter, node: fx.Node, a: Any, b: Any, **kwargs: Any) -> Any:
        if kwargs.get("alpha", 1) != 1:
            raise _Unmappable("scales its second input (alpha)")
        if set(kwargs) - {"alpha"}:
            raise _Unmappable(f"is called with {', '.join(sorted(kwargs))}")
        params = [x for x in (a, b) if isinstance(x, fx.Node) and isinstance(conv.values.get(x), _Parameter)]
        if type_id == "Multiply" and params:
            return _scale(conv, node, a if params[0] is b else b, conv.values[params[0]])
        if not (isinstance(a, fx.Node) and isinstance(b, fx.Node)):
            raise _Unmappable(f"{'adds' if type_id == 'Add' else 'multiplies by'} a constant")
        return conv.add(type_id, {"inputs": 2}, conv.function_name(node, word), [conv.value(a), conv.value(b)])

    return mapper


def _scale(conv: Converter, node: fx.Node, arg: Any, param: _Parameter) -> Any:
    """A learned per-channel scale of shape (C, 1, 1) times (N, C, H, W): a depthwise 1x1 Conv2d without bias."""
    shape = conv.shape(arg)
    channels = shape[1] if len(shape) == 4 else -1
    if param.shape not in ((channels, 1, 1), (1, channels, 1, 1)):
        raise _Unmappable(f"multiplies by the parameter {param.target} of shape {param.shape}")
    return conv.add("Conv2d", {"in_channels": channels, "out_channels": channels, "kernel_size": 1,
                               "groups": channels, "bias": False}, param.target, [conv.value(arg)],
                    {"weight": param.target})


def _cat(conv: Converter, node: fx.Node, tensors: Any, dim: int = 0) -> Any:
    if not isinstance(tensors, (list, tuple)) or not tensors:
        raise _Unmappable("concatenates something other than a list of tensors")
    dim = _rank_dim(conv, tensors[0], dim)
    values = [conv.value(t) for t in tensors]
    name = conv.function_name(node, "cat")
    if len(values) == 1:
        return values[0]
    # More inputs than one Concat takes: a chain of Concats (joining along one dim is associative).
    result = conv.add("Concat", {"inputs": min(len(values), _MAX_INPUTS), "dim": dim}, name, values[:_MAX_INPUTS])
    rest = values[_MAX_INPUTS:]
    while rest:
        take, rest = rest[:_MAX_INPUTS - 1], rest[_MAX_INPUTS - 1:]
        result = conv.add("Concat", {"inputs": 1 + len(take), "dim": dim}, name, [result, *take])
    return result


def _flatten(conv: Converter, node: fx.Node, x: Any, start_dim: int = 0, end_dim: int = -1) -> Any:
    rank = len(conv.shape(x))
    if start_dim % rank != 1 or end_dim % rank != rank - 1:
        raise _Unmappable(f"flattens dimensions {start_dim} to {end_dim} (the Flatten layer flattens all after "
                          "the batch)")
    return conv.add("Flatten", {}, conv.function_name(node, "flatten"), [conv.value(x)])


def _activation(type_id: str, params: Callable[..., dict[str, Any]] | None = None) -> Callable[..., Any]:
    def mapper(conv: Converter, node: fx.Node, x: Any, *args: Any, **kwargs: Any) -> Any:
        values = params(*args, **kwargs) if params else {}
        return conv.add(type_id, values, conv.function_name(node, type_id.lower()), [conv.value(x)])

    return mapper


def _plain(inplace: bool = False) -> dict[str, Any]:
    return {}


def _gelu(approximate: str = "none") -> dict[str, Any]:
    return {"approximate": approximate}


def _adaptive(type_id: str) -> Callable[..., Any]:
    def mapper(conv: Converter, node: fx.Node, x: Any, output_size: Any, *rest: Any, **kwargs: Any) -> Any:
        if rest or kwargs.get("return_indices"):
            raise _Unmappable("returns indices")
        if isinstance(output_size, (tuple, list)) and any(s is None for s in output_size):
            raise _Unmappable("keeps one input size (output_size with None)")
        return conv.add(type_id, {"output_size": _size(output_size)},
                        conv.function_name(node, "pool"), [conv.value(x)])

    return mapper


def _dropout(conv: Converter, node: fx.Node, x: Any, p: float = 0.5, *args: Any, **kwargs: Any) -> Any:
    return conv.add("Dropout", {"p": p}, conv.function_name(node, "dropout"), [conv.value(x)])


def _mean(conv: Converter, node: fx.Node, x: Any, dim: Any = None, keepdim: bool = False, **kwargs: Any) -> Any:
    rank = len(conv.shape(x))
    dims = [dim] if isinstance(dim, int) else list(dim or ())
    if kwargs or sorted(d % rank for d in dims) != list(range(2, rank)):
        raise _Unmappable(f"averages over dimensions {dims} (the Mean layer averages over all spatial ones)")
    return conv.add("Mean", {"keepdim": bool(keepdim)}, conv.function_name(node, "mean"), [conv.value(x)])


def _permute_call(conv: Converter, node: fx.Node, x: Any, *dims: Any) -> Any:
    order = list(dims[0]) if len(dims) == 1 and isinstance(dims[0], (list, tuple)) else list(dims)
    rank = len(conv.shape(x))
    order = [d % rank for d in order]
    if not order or order[0] != 0:
        raise _Unmappable(f"moves the batch dimension (dims {order})")
    return _permute(conv, conv.value(x), order[1:], conv.function_name(node, "permute"), x)


def _chunk(conv: Converter, node: fx.Node, x: Any, chunks: int, dim: int = 0) -> Any:
    dim = _rank_dim(conv, x, dim)
    size = conv.shape(x)[dim]
    step = math.ceil(size / chunks)
    bounds = tuple((start, min(start + step, size)) for start in range(0, size, step))
    return _Chunk(conv.value(x), dim, bounds, conv.function_name(node, "part"))


def _channel_shuffle(conv: Converter, node: fx.Node, x: Any, groups: int) -> Any:
    return conv.add("ChannelShuffle", {"groups": groups}, conv.function_name(node, "channel_shuffle"),
                    [conv.value(x)])


def _max_pool(conv: Converter, node: fx.Node, x: Any, kernel_size: Any, stride: Any = None, padding: Any = 0,
              dilation: Any = 1, ceil_mode: bool = False, return_indices: bool = False) -> Any:
    if return_indices:
        raise _Unmappable("returns indices")
    params = {"kernel_size": _size(kernel_size), "stride": _size(stride) if stride else None,
              "padding": _size(padding), "dilation": _size(dilation), "ceil_mode": bool(ceil_mode)}
    return conv.add("MaxPool2d", params, conv.function_name(node, "maxpool"), [conv.value(x)])


def _avg_pool(conv: Converter, node: fx.Node, x: Any, kernel_size: Any, stride: Any = None, padding: Any = 0,
              ceil_mode: bool = False, count_include_pad: bool = True, divisor_override: Any = None) -> Any:
    if divisor_override is not None:
        raise _Unmappable("has a divisor_override")
    params = {"kernel_size": _size(kernel_size), "stride": _size(stride) if stride else None,
              "padding": _size(padding), "ceil_mode": bool(ceil_mode), "count_include_pad": bool(count_include_pad)}
    return conv.add("AvgPool2d", params, conv.function_name(node, "avgpool"), [conv.value(x)])


def _getattr(conv: Converter, node: fx.Node, x: Any, attr: str, *args: Any) -> Any:
    raise _Unmappable(f"reads the tensor's .{attr} while running (sizes computed in the forward have no layer type)")


def _passthrough(conv: Converter, node: fx.Node, x: Any, *args: Any, **kwargs: Any) -> Any:
    return conv.value(x)


_FUNCTIONS: dict[Any, Callable[..., Any]] = {
    operator.add: _merge("Add", "add"), torch.add: _merge("Add", "add"),
    operator.mul: _merge("Multiply", "mul"), torch.mul: _merge("Multiply", "mul"),
    torch.cat: _cat, torch.concat: _cat,
    torch.flatten: _flatten,
    F.relu: _activation("ReLU", _plain), torch.relu: _activation("ReLU"),
    F.relu6: _activation("ReLU6", _plain), F.hardswish: _activation("Hardswish", _plain),
    F.hardsigmoid: _activation("Hardsigmoid", _plain), F.silu: _activation("SiLU", _plain),
    F.mish: _activation("Mish", _plain), F.gelu: _activation("GELU", _gelu),
    torch.sigmoid: _activation("Sigmoid"), F.sigmoid: _activation("Sigmoid"), torch.tanh: _activation("Tanh"),
    F.adaptive_avg_pool2d: _adaptive("AdaptiveAvgPool2d"), F.adaptive_max_pool2d: _adaptive("AdaptiveMaxPool2d"),
    F.dropout: _dropout,
    torch.mean: _mean, torch.permute: _permute_call, torch.chunk: _chunk,
    F.max_pool2d: _max_pool, F.avg_pool2d: _avg_pool, getattr: _getattr,
}

_METHODS: dict[str, Callable[..., Any]] = {
    "add": _merge("Add", "add"), "mul": _merge("Multiply", "mul"),
    "flatten": _flatten, "mean": _mean, "permute": _permute_call, "chunk": _chunk,
    "relu": _activation("ReLU"), "sigmoid": _activation("Sigmoid"), "tanh": _activation("Tanh"),
    "contiguous": _passthrough,
    "size": lambda conv, node, *args, **kwargs: _getattr(conv, node, None, "size()"),
}


def channel_shuffle_mapper() -> Callable[..., Any]:
    return _channel_shuffle


# -- onnx2torch's own modules (ONNX import) ---------------------------------------


def _onnx_binary(conv: Converter, node: fx.Node, module: Any) -> Any:
    """onnx2torch's Add/Sub/Mul/Div: Add and Mul of two tensors map, and any of the four by a constant.

    ``x - mean``, ``x / std`` (a normalization preamble), ``x * scale`` and ``x + shift`` with a constant per
    channel (or one for all) are a depthwise 1x1 Conv2d on (N, C, H, W): see :func:`_onnx_by_constant`.
    """
    from onnx2torch.node_converters import binary_math_operations

    # onnx2torch's own table (ONNX type -> function), read backwards: its Div is a function of its own.
    operations = {function: name for name, function in binary_math_operations._TORCH_FUNCTION_FROM_ONNX_TYPE.items()}
    operation = operations.get(module.math_op_function)
    if operation is None:
        raise _Unmappable(f"no layer type for {getattr(module.math_op_function, '__name__', 'this operation')}")
    if module.broadcast == 1 and module.axis is not None:
        raise _Unmappable("uses the old ONNX broadcast along an axis")
    a, b = node.args
    constants = [x for x in (a, b) if isinstance(x, fx.Node) and isinstance(conv.values.get(x), _Parameter)]
    if constants:
        if constants[0] is a and operation in ("Sub", "Div"):
            raise _Unmappable(f"{'subtracts' if operation == 'Sub' else 'divides'} a tensor from a constant "
                              "(only a tensor minus or divided by a constant has a layer type)")
        tensor = b if constants[0] is a else a
        return _onnx_by_constant(conv, node, operation, tensor, conv.values[constants[0]])
    if operation in ("Sub", "Div"):
        raise _Unmappable(f"no layer type for the ONNX operation {operation} of two tensors (only by a constant)")
    type_id = "Add" if operation == "Add" else "Multiply"
    return conv.add(type_id, {"inputs": 2}, str(node.target), [conv.value(a), conv.value(b)])


def _onnx_by_constant(conv: Converter, node: fx.Node, operation: str, tensor: Any, constant: _Parameter) -> Any:
    """``x (op) c`` for a constant ``c`` per channel of (N, C, H, W), or one for all: a depthwise 1x1 Conv2d.

    Its weight and bias are computed from the constant when the weights are loaded (``Converter.derived``:
    1/c for a division, -c as the bias of a subtraction), and the node is frozen so that training keeps it
    the constant it is.
    """
    shape = conv.shape(tensor)
    channels = shape[1] if len(shape) == 4 else -1
    count = math.prod(constant.shape)
    per_channel = constant.shape in ((channels, 1, 1), (1, channels, 1, 1)) or count == 1
    if len(shape) != 4 or not per_channel:
        word = {"Add": "adds", "Sub": "subtracts", "Mul": "multiplies by", "Div": "divides by"}[operation]
        raise _Unmappable(f"{word} a constant of shape {constant.shape} (only a constant per channel of "
                          "(N, C, H, W), or one for all, has a layer type)")
    key = constant.target
    weight = {"Add": "ones", "Sub": "ones", "Mul": "same", "Div": "reciprocal"}[operation]
    bias = {"Add": "same", "Sub": "negative"}.get(operation)
    result = conv.add("Conv2d", {"in_channels": channels, "out_channels": channels, "kernel_size": 1,
                                 "groups": channels, "bias": bias is not None}, str(node.target), [conv.value(tensor)])
    if result is MISSING:  # its input was not mapped
        return result
    node_id = result[0]
    conv.derived[f"{node_id}.weight"] = (key, weight)
    if bias is not None:
        conv.derived[f"{node_id}.bias"] = (key, bias)
    conv.constant_nodes.append(node_id)
    return result


def _onnx_hard_sigmoid(conv: Converter, node: fx.Node, module: Any) -> Any:
    (arg,) = node.args
    if not (math.isclose(module.alpha, 1 / 6, rel_tol=1e-6) and math.isclose(module.beta, 0.5)):
        raise _Unmappable(f"has alpha {module.alpha} and beta {module.beta} (the Hardsigmoid layer is "
                          "x / 6 + 0.5, clipped to [0, 1])")
    return conv.add("Hardsigmoid", {}, str(node.target), [conv.value(arg)])


def _onnx_transpose(conv: Converter, node: fx.Node, module: Any) -> Any:
    (arg,) = node.args
    rank = len(conv.shape(arg))
    order = list(module.perm) if module.perm is not None else list(range(rank))[::-1]
    if not order or order[0] != 0:
        raise _Unmappable(f"moves the batch dimension (perm {order})")
    return _permute(conv, conv.value(arg), order[1:], str(node.target), arg)


def _onnx_global_average_pool(conv: Converter, node: fx.Node, module: Any) -> Any:
    (arg,) = node.args
    if len(conv.shape(arg)) != 4:
        raise _Unmappable(f"averages a {len(conv.shape(arg))}-D tensor (only (N, C, H, W) has a layer type)")
    return conv.add("AdaptiveAvgPool2d", {"output_size": 1}, str(node.target), [conv.value(arg)])


def _onnx_constant(conv: Converter, node: fx.Node, module: Any) -> Any:
    """A constant tensor: only an operation that reads its value (Reshape's target shape) uses it."""
    return _Parameter(str(node.target), tuple(torch.as_tensor(module.value).shape))


def _constant_values(conv: Converter, arg: Any) -> list[int]:
    """The values of an ONNX constant (a Constant node or an initializer) given as an fx argument."""
    if isinstance(arg, fx.Node) and arg.op == "call_module":
        value = getattr(conv.gm.get_submodule(str(arg.target)), "value", None)
    elif isinstance(arg, fx.Node) and arg.op == "get_attr":
        value = conv.gm
        for part in str(arg.target).split("."):
            value = getattr(value, part)
    else:
        value = None
    if not isinstance(value, torch.Tensor) or value.dim() != 1 or value.is_floating_point():
        raise _Unmappable("its target shape is computed while running (only a constant shape has a layer type)")
    return [int(v) for v in value.tolist()]


def _onnx_reshape(conv: Converter, node: fx.Node, module: Any) -> Any:
    """ONNX Reshape to a constant shape that keeps the batch (first entry 0 or -1): Flatten or Reshape."""
    x, shape_arg = node.args
    target = _constant_values(conv, shape_arg)
    sample = math.prod(conv.shape(x)[1:])
    keeps_batch = bool(target) and (target[0] == 0 or (target[0] == -1 and all(d > 0 for d in target[1:])
                                                       and math.prod(target[1:]) == sample))
    if not keeps_batch:
        raise _Unmappable(f"reshapes to {target}, which does not keep the batch dimension")
    out = conv.shape(node)[1:]
    if len(out) == 1 and len(conv.shape(x)) > 2:
        return conv.add("Flatten", {}, str(node.target), [conv.value(x)])
    return conv.add("Reshape", {"shape": [int(d) for d in out]}, str(node.target), [conv.value(x)])


def _onnx_concat(conv: Converter, node: fx.Node, module: Any) -> Any:
    return _cat(conv, node, list(node.args), module.axis)


def _onnx_refused(reason: str) -> Callable[..., Any]:
    def mapper(conv: Converter, node: fx.Node, module: Any) -> Any:
        raise _Unmappable(reason)

    return mapper


def onnx2torch_modules() -> dict[type, Callable[..., Any]]:
    """Mappers of onnx2torch's own modules (imported here: onnx2torch loads only for an ONNX import).

    Most ONNX operations become plain torch modules (Conv -> nn.Conv2d, Gemm with a constant weight ->
    nn.Linear with transB already applied, BatchNormalization with constant statistics -> nn.BatchNorm2d,
    MaxPool/AveragePool, Relu/Sigmoid/Softmax, Flatten with axis 1), which the tables above map; these are
    the ones onnx2torch keeps as its own.
    """
    from onnx2torch.node_converters.activations import OnnxHardSigmoid
    from onnx2torch.node_converters.batch_norm import OnnxBatchNorm
    from onnx2torch.node_converters.binary_math_operations import OnnxBinaryMathOperation
    from onnx2torch.node_converters.concat import OnnxConcat
    from onnx2torch.node_converters.constant import OnnxConstant
    from onnx2torch.node_converters.flatten import OnnxFlatten
    from onnx2torch.node_converters.gemm import OnnxGemm
    from onnx2torch.node_converters.global_average_pool import (
        OnnxGlobalAveragePool, OnnxGlobalAveragePoolWithKnownInputShape,
    )
    from onnx2torch.node_converters.reshape import OnnxReshape
    from onnx2torch.node_converters.transpose import OnnxTranspose

    return {
        OnnxBinaryMathOperation: _onnx_binary,
        OnnxGlobalAveragePool: _onnx_global_average_pool,
        OnnxGlobalAveragePoolWithKnownInputShape: _onnx_global_average_pool,
        OnnxConstant: _onnx_constant,
        OnnxReshape: _onnx_reshape,
        OnnxConcat: _onnx_concat,
        OnnxHardSigmoid: _onnx_hard_sigmoid,
        OnnxTranspose: _onnx_transpose,
        OnnxFlatten: _onnx_refused("flattens from an axis other than 1 (the Flatten layer flattens all after "
                                   "the batch)"),
        OnnxGemm: _onnx_refused("multiplies by a weight that is not a constant, or transposes its input "
                                "(Gemm with transA)"),
        OnnxBatchNorm: _onnx_refused("normalizes with statistics that are not constants"),
    }

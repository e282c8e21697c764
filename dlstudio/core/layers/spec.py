"""Declarative layer specs: the one description of a layer type that the
palette, the inspector, shape inference, the compiler and the code exporter
all read. No torch at import time: ``build`` functions import it lazily.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any

from dlstudio.core.errors import ParamError
from dlstudio.core.text import escape_char, is_unsafe, number_text, quote

Shape = tuple[int, ...]
"""A tensor shape without the batch dimension, e.g. ``(1, 28, 28)``."""


def format_shape(shape: Sequence[int] | None) -> str:
    """``(1, 28, 28)`` -> ``"(N, 1, 28, 28)"``; ``None`` -> ``"?"``."""
    if shape is None:
        return "?"
    return "(" + ", ".join(["N", *(str(d) for d in shape)]) + ")"


def numel(shape: Sequence[int]) -> int:
    return math.prod(shape)


# Parameter kinds. JSON-native values only, so a project file holds them as is.
INT = "int"  # int, optionally None meaning "auto: inferred from the input"
FLOAT = "float"
BOOL = "bool"
CHOICE = "choice"  # one of ``choices`` (strings)
INTS = "ints"  # a list of ints (a shape)
SIZE = "size"  # an int, or a pair [h, w] (kernel sizes, strides)
PADDING = "padding"  # an int, a pair, or one of ``choices`` ("same", "valid")
STR = "str"  # free text (paths, column names)


@dataclass(frozen=True)
class ParamSpec:
    """One typed parameter of a layer, with its default, range and help."""

    name: str
    kind: str
    default: Any
    help: str = ""
    min: float | None = None
    max: float | None = None
    choices: tuple[str, ...] = ()
    auto: bool = False  # None is allowed and means "inferred from the input"
    min_len: int = 1
    max_len: int = 4
    allow_minus_one: bool = False  # INTS: one -1 may stand for "the rest" (Reshape)
    label: str = ""
    # An imported module's facts (its source, the shapes it was traced with, why it is opaque): recorded at
    # import, shown but not edited, since changing them would not change the module. ``hidden``: not shown
    # at all (a machine-readable record, such as an ONNX node's operations as JSON).
    recorded: bool = False
    hidden: bool = False

    @property
    def display_name(self) -> str:
        return self.label or self.name.replace("_", " ")

    def validate(self, value: Any) -> Any:
        """Return ``value`` normalized to its JSON form, or raise ParamError with the reason."""
        if value is None:
            if self.auto:
                return None
            raise self._error("a value is required")
        kind = self.kind
        if kind == INT:
            return self._check_int(value)
        if kind == FLOAT:
            if isinstance(value, bool) or not isinstance(value, (int, float)):
                raise self._error(f"expected a number, got {quote(value)}")
            try:
                value = float(value)
            except OverflowError:  # an int too large for a float, e.g. 10**400
                raise self._error("the number is out of range") from None
            if not math.isfinite(value):
                raise self._error(f"expected a finite number, got {quote(value)}")
            self._check_range(value)
            return value
        if kind == BOOL:
            if not isinstance(value, bool):
                raise self._error(f"expected true or false, got {quote(value)}")
            return value
        if kind == CHOICE:
            if value not in self.choices:
                raise self._error(f"expected one of {', '.join(self.choices)}; got {quote(value)}")
            return value
        if kind == INTS:
            return self._check_ints(value)
        if kind == STR:
            if not isinstance(value, str):
                raise self._error(f"expected text, got {quote(value)}")
            return value
        if kind == SIZE:
            return self._check_size(value)
        if kind == PADDING:
            if isinstance(value, str):
                if value not in self.choices:
                    raise self._error(f"expected a number or one of {', '.join(self.choices)}; got {quote(value)}")
                return value
            return self._check_size(value)
        raise AssertionError(f"unknown parameter kind {kind!r}")  # a bug in a spec, not user input

    def _check_int(self, value: Any) -> int:
        if isinstance(value, bool) or not isinstance(value, int):
            raise self._error(f"expected a whole number, got {quote(value)}")
        self._check_range(value)
        return value

    def _check_range(self, value: float) -> None:
        if self.min is not None and value < self.min:
            raise self._error(f"must be at least {_fmt(self.min)}, got {_fmt(value)}")
        if self.max is not None and value > self.max:
            raise self._error(f"must be at most {_fmt(self.max)}, got {_fmt(value)}")

    def _check_ints(self, value: Any) -> list[int]:
        if not isinstance(value, (list, tuple)):
            raise self._error(f"expected a list of whole numbers, got {quote(value)}")
        if not self.min_len <= len(value) <= self.max_len:
            raise self._error(f"expected {self.min_len} to {self.max_len} numbers, got {len(value)}")
        items = []
        for item in value:
            if isinstance(item, bool) or not isinstance(item, int):
                raise self._error(f"expected whole numbers, got {quote(item)}")
            if item == -1 and self.allow_minus_one:
                items.append(item)
                continue
            self._check_range(item)
            items.append(item)
        if items.count(-1) > 1:
            raise self._error("at most one dimension may be -1")
        return items

    def _check_size(self, value: Any) -> int | list[int]:
        if isinstance(value, (list, tuple)):
            if len(value) != 2:
                raise self._error(f"expected a number or a pair of numbers, got {quote(list(value))}")
            return [self._check_int(v) for v in value]
        return self._check_int(value)

    def _error(self, reason: str) -> ParamError:
        return ParamError(f"{self.display_name}: {reason}", param=self.name)


def _fmt(number: float) -> str:
    # number_text: a 309-digit value (10**308 as a learning rate) is "1e+308", a 400-digit int is said by its size
    return number_text(number)


@dataclass(frozen=True)
class Inferred:
    """What ``infer`` returns: one shape per output port, parameter count, MACs per sample."""

    outputs: tuple[Shape, ...]
    params: int = 0
    macs: int = 0


InferFn = Callable[[list[Shape], dict[str, Any]], Inferred]
BuildFn = Callable[[dict[str, Any], list[Shape]], Any]  # returns an nn.Module


@dataclass(frozen=True)
class LayerCode:
    """How the Python code exporter writes a layer; exactly one of the two is set.

    ``module(params, in_shapes)`` returns the constructor expression of the
    module ``build`` makes, e.g. ``nn.Conv2d(1, 6, kernel_size=5, padding=2)``.
    ``inline(input_names, params, in_shapes)`` returns a forward expression
    for a parameter-free operation, e.g. ``conv2 + input1``: it adds no
    submodule, so the exported ``state_dict`` stays the compiled model's.
    """

    module: Callable[[dict[str, Any], list[Shape]], str] | None = None
    inline: Callable[[list[str], dict[str, Any], list[Shape]], str] | None = None
    # Import lines the exported file needs besides torch (each with a comment saying why), e.g.
    # "import torchvision  # ...": written once however many nodes ask for them.
    imports: tuple[str, ...] = ()
    # Top-level functions the ``module`` expression calls (their source text), written after the imports
    # and once however many nodes ask for them, so the exported file needs no dlstudio.
    definitions: tuple[str, ...] = ()
    # Packages besides torch that running the code needs (what to install), e.g. ("torchvision",).
    packages: tuple[str, ...] = ()


def code_literal(value: Any) -> str:
    """Python source for a parameter value: lists become tuples, strings get double quotes."""
    if isinstance(value, str):
        text = value.replace("\\", "\\\\").replace('"', '\\"')
        # Line breaks, NUL and other control characters (and bidi overrides) as escapes: valid, visible source.
        return '"' + "".join(escape_char(ch) if is_unsafe(ch) else ch for ch in text) + '"'
    if isinstance(value, (list, tuple)):
        items = [code_literal(item) for item in value]
        return "(" + items[0] + ",)" if len(items) == 1 else "(" + ", ".join(items) + ")"
    return repr(value)


def code_size(value: int | Sequence[int], dims: int) -> int | tuple[int, ...]:
    """A kernel size, stride, ... as PyTorch code writes it: one number when all sides are equal."""
    if not isinstance(value, (list, tuple)):
        return value
    values = tuple(value[:dims]) if dims == 1 else tuple(value)
    return values[0] if len(set(values)) == 1 else values


def code_call(callee: str, *args: Any, defaults: dict[str, Any] | None = None, **kwargs: Any) -> str:
    """``callee(args..., name=value...)`` as source, leaving out keywords equal to PyTorch's ``defaults``."""
    defaults = defaults or {}
    parts = [code_literal(arg) for arg in args]
    for name, value in kwargs.items():
        if name in defaults and _same_value(value, defaults[name]):
            continue
        parts.append(f"{name}={code_literal(value)}")
    return f"{callee}({', '.join(parts)})"


def _same_value(value: Any, default: Any) -> bool:
    # True == 1 in Python, but bias=1 is not how anyone writes bias=True: compare types too.
    return value == default and type(value) is type(default)


@dataclass(frozen=True)
class LayerSpec:
    """A layer type, registered once. See design.md §3."""

    type_id: str
    display_name: str
    category: str
    help: str
    params: tuple[ParamSpec, ...]
    infer: InferFn
    build: BuildFn
    inputs: tuple[str, ...] = ("in",)
    outputs: tuple[str, ...] = ("out",)
    # Merge layers take their input count from this parameter: ports in1..inN.
    variadic_param: str | None = None
    key_params: tuple[str, ...] = ()
    aliases: tuple[str, ...] = ()
    # The stem of generated node ids ("conv" -> conv1, conv2, ...).
    id_stem: str = "node"
    # "input" and "output" mark where the compiled model's forward starts and ends.
    role: str = "layer"
    # How exported Python code writes this layer (None for Input/Output, which make no module).
    code: LayerCode | None = None
    # Offered in the palette. False for a type only an import makes (a module of another model, traced as is).
    in_palette: bool = True

    def param(self, name: str) -> ParamSpec:
        for spec in self.params:
            if spec.name == name:
                return spec
        raise KeyError(name)

    def has_param(self, name: str) -> bool:
        return any(spec.name == name for spec in self.params)

    def default_params(self) -> dict[str, Any]:
        return {spec.name: _copy_value(spec.default) for spec in self.params}

    def validate_params(self, params: dict[str, Any]) -> dict[str, Any]:
        """Fill defaults and validate every value; unknown names are refused."""
        unknown = set(params) - {spec.name for spec in self.params}
        if unknown:
            name = sorted(unknown)[0]
            raise ParamError(f"{self.display_name} has no parameter {quote(name)}", param=name)
        result = {}
        for spec in self.params:
            value = params.get(spec.name, _copy_value(spec.default))
            result[spec.name] = spec.validate(value)
        return result

    def input_ports(self, params: dict[str, Any]) -> tuple[str, ...]:
        if self.variadic_param is None:
            return self.inputs
        count = params.get(self.variadic_param, self.param(self.variadic_param).default)
        return tuple(f"in{i}" for i in range(1, count + 1))

    def output_ports(self, params: dict[str, Any]) -> tuple[str, ...]:
        return self.outputs


def _copy_value(value: Any) -> Any:
    return list(value) if isinstance(value, (list, tuple)) else value

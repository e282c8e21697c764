"""Import a person's own ``nn.Module`` class, named ``package.module:Class`` or ``path/to/file.py:Class``."""

from __future__ import annotations

import importlib
import importlib.util
import re
import sys
from pathlib import Path
from typing import Any

from dlstudio.core.importer.result import ImportResult, ModelImportError
from dlstudio.core.importer.torchvision_models import convert_module

_MAX_DIM = 100_000  # the Input layer's limit on one dimension


def import_module_class(spec: str, *, args: list[Any] | None = None, kwargs: dict[str, Any] | None = None,
                        input_shape: tuple[int, ...]) -> ImportResult:
    """Import the ``nn.Module`` class ``spec`` as a project (graph and layout), built with its weights.

    ``spec`` is ``package.module:Class`` (imported from ``sys.path``) or ``path/to/file.py:Class`` (the file
    is loaded as a module; its folder is on ``sys.path`` while it loads, as when it is run). Importing runs
    that code, and building the class runs its constructor: this imports the person's own code, as they
    asked; never pass a spec that came from somewhere else. The class is built as ``Class(*args, **kwargs)``
    and traced with torch.fx on one sample of ``input_shape`` (without the batch: ``(3, 32, 32)``), which
    the Input node takes; a user module says nothing about its input, so it must be given.

    The model must give one (N, C) tensor of class scores, which becomes a classification Output of C
    classes; anything else is refused with one line saying what it gives (reconstruction and other tasks
    come later). Raises ModelImportError (one line naming the first operation that has no layer type;
    ``error.result.unmapped`` lists them all) when the model cannot be mapped completely.
    ``result.source`` is the built module (eval mode), whose weights ``result.load_into`` copies.
    """
    shape = _input_shape(input_shape)
    cls = load_module_class(spec)
    name = cls.__name__
    model = _build(cls, name, args, kwargs)
    result = convert_module(name, model, shape, None, leaf_modules=_torchvision_leaves(),
                            description=f"{name} from {spec}, imported with the weights it was built with",
                            data_source=_data_source(shape))
    result.refuse_unmapped()
    return result


def load_module_class(spec: str) -> type:
    """The ``nn.Module`` subclass ``spec`` names (``module:Class`` or ``file.py:Class``); runs that code."""
    from torch import nn

    where, colon, attr = spec.strip().rpartition(":")
    if not colon or not where or not re.fullmatch(r"[A-Za-z_]\w*(\.[A-Za-z_]\w*)*", attr):
        raise ModelImportError(f"{spec!r} is not a module class: give package.module:Class or path/to/file.py:Class")
    module = _load_file(Path(where)) if where.endswith(".py") else _load_module(where)
    value: Any = module
    for part in attr.split("."):
        if not hasattr(value, part):
            classes = sorted(key for key, item in vars(module).items() if isinstance(item, type)
                             and issubclass(item, nn.Module) and item.__module__ == module.__name__)
            known = f" (it defines {', '.join(classes)})" if classes else " (it defines no nn.Module class)"
            raise ModelImportError(f"{where} has no {attr}{known}")
        value = getattr(value, part)
    if not (isinstance(value, type) and issubclass(value, nn.Module)):
        raise ModelImportError(f"{where}:{attr} is not an nn.Module class")
    return value


def _load_module(name: str) -> Any:
    if not re.fullmatch(r"[A-Za-z_]\w*(\.[A-Za-z_]\w*)*", name):
        raise ModelImportError(f"{name!r} is neither a module name (package.module) nor a .py file")
    try:
        return importlib.import_module(name)
    except ModuleNotFoundError as error:
        raise ModelImportError(f"cannot import {name}: {_one_line(error)} (is it on the Python path?)") from None
    except Exception as error:  # noqa: BLE001 - importing runs the person's code, which may raise anything
        raise ModelImportError(f"importing {name} failed: {_one_line(error)}") from None


def _load_file(path: Path) -> Any:
    if not path.is_file():
        raise ModelImportError(f"{path}: no such file")
    name = "dlstudio_user_" + re.sub(r"\W", "_", path.stem)
    spec = importlib.util.spec_from_file_location(name, path)
    if spec is None or spec.loader is None:
        raise ModelImportError(f"{path} cannot be loaded as a Python module")
    module = importlib.util.module_from_spec(spec)
    # Registered before it runs, as an import does (dataclasses and pickling look a class's module up).
    sys.modules[name] = module
    folder = str(path.resolve().parent)
    sys.path.insert(0, folder)  # its sibling modules import, as when the file is run
    try:
        spec.loader.exec_module(module)
    except Exception as error:  # noqa: BLE001 - the file is the person's code, which may raise anything
        sys.modules.pop(name, None)
        raise ModelImportError(f"loading {path} failed: {_one_line(error)}") from None
    finally:
        if folder in sys.path:
            sys.path.remove(folder)
    return module


def _build(cls: type, name: str, args: list[Any] | None, kwargs: dict[str, Any] | None) -> Any:
    if args is not None and not isinstance(args, (list, tuple)):
        raise ModelImportError(f"the constructor arguments of {name} must be a list, got {type(args).__name__}")
    if kwargs is not None and not isinstance(kwargs, dict):
        raise ModelImportError(f"the constructor keyword arguments of {name} must be an object, "
                               f"got {type(kwargs).__name__}")
    try:
        model = cls(*(args or ()), **(kwargs or {}))
    except Exception as error:  # noqa: BLE001 - the constructor is the person's code
        raise ModelImportError(f"building {name} failed: {_one_line(error)}") from None
    return model.eval()


def _input_shape(shape: Any) -> tuple[int, ...]:
    values = tuple(shape) if isinstance(shape, (tuple, list)) else ()
    if not 1 <= len(values) <= 3 or not all(isinstance(v, int) and not isinstance(v, bool) and 1 <= v <= _MAX_DIM
                                            for v in values):
        raise ModelImportError(f"the input shape must be 1 to 3 sizes of 1 to {_MAX_DIM:,} without the batch "
                               f"(C,H,W, C,L or features), got {shape!r}")
    return values


def _data_source(shape: tuple[int, ...]) -> str:
    """Images from a folder for (C, H, W), a CSV table for features, else the settings' default."""
    return {3: "folder", 1: "csv"}.get(len(shape), "digits")


def _torchvision_leaves() -> dict[type, Any]:
    """torchvision's own layers (StochasticDepth, LayerNorm2d) map too when torchvision is installed."""
    try:
        from dlstudio.core.importer.fx_convert import torchvision_modules

        return torchvision_modules()
    except ImportError:
        return {}


def _one_line(error: BaseException) -> str:
    return " ".join(str(error).split()) or type(error).__name__

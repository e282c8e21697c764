"""Import existing networks as editable graphs (no Qt; torch and torchvision are imported inside functions).

:func:`import_torchvision` builds a torchvision classification architecture by name (random weights,
nothing downloaded), traces it with ``torch.fx`` and maps every traced operation to a node of a registered
layer type. The :class:`ImportResult` carries the project (graph and layout) and the map from the
compiled graph's ``state_dict`` keys to the source model's, so the source weights load into the compiled
graph. :func:`import_module_class` does the same for a person's own ``nn.Module`` class
(``package.module:Class`` or ``file.py:Class``, built with their constructor arguments and weights), and
:func:`import_onnx` an ONNX file (opset 13 or newer, through onnx2torch, with its weights). What
cannot be mapped is listed in ``ImportResult.unmapped`` and refuses the import, except that
``import_torchvision(..., opaque=True)`` never refuses a torchvision classifier (issue 12): a submodule that
has no layer type is kept whole as one opaque "Module (torchvision)" node with its weights; one that cannot
be (it takes several inputs) gives way to the smallest module around it that can; and operations in the
model's own forward (vit_b_16) make the whole model one such node.

Every import arrives grouped into collapsed blocks by the source's module hierarchy (resnet's ``layer1.0``,
densenet's ``features.denseblock1``) and laid out collapsed: see :mod:`dlstudio.core.importer.grouping`.
"""

from __future__ import annotations

from dlstudio.core.importer.onnx_models import MAX_ONNX_BYTES, import_onnx
from dlstudio.core.importer.result import ImportResult, ModelImportError, Unmapped
from dlstudio.core.importer.torchvision_models import (
    INPUT_SHAPE, classification_models, import_torchvision, trace_torchvision,
)
from dlstudio.core.importer.user_modules import import_module_class, load_module_class

__all__ = ["INPUT_SHAPE", "MAX_ONNX_BYTES", "ImportResult", "ModelImportError", "Unmapped", "classification_models",
           "import_module_class", "import_onnx", "import_torchvision", "load_module_class", "trace_torchvision"]

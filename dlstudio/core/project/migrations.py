"""Format versions of the project file and the steps that upgrade old files.

``MIGRATIONS[n]`` turns a version-``n`` document (the parsed JSON) into a
version ``n + 1`` one; :func:`migrate` applies the steps in order. A step only
rewrites content: :func:`migrate` stamps the new version number itself.
Every released version keeps a frozen fixture under ``tests/core/fixtures``.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from dlstudio.core.errors import ProjectError
from dlstudio.core.project.jsontypes import describe

FORMAT = "dlstudio-project"
FORMAT_VERSION = 3
"""The version this dlstudio writes, and the newest it reads.

1: description, graph, layout, data, training, runs.
2: adds ``normalization`` (the training split's statistics, or null). A new
   version although the field is optional: a version-1 reader refuses unknown
   fields, and "written by a newer dlstudio" is the message it should give.
3: adds ``blocks`` (named groups of nodes), ``frozen`` (node ids training leaves alone) and
   ``weights`` (where the starting weights come from, or null).
"""


def _add_normalization(doc: dict[str, Any]) -> dict[str, Any]:
    """1 -> 2: no statistics recorded yet (the next run records them)."""
    doc["normalization"] = None
    return doc


def _add_blocks_frozen_weights(doc: dict[str, Any]) -> dict[str, Any]:
    """2 -> 3: no blocks, nothing frozen, random starting weights (what a version-2 project trained with)."""
    doc["blocks"] = []
    doc["frozen"] = []
    doc["weights"] = None
    return doc


MIGRATIONS: dict[int, Callable[[dict[str, Any]], dict[str, Any]]] = {1: _add_normalization,
                                                                     2: _add_blocks_frozen_weights}
"""Version ``n`` -> the function that upgrades a version-``n`` document to ``n + 1``."""


def document_version(doc: dict[str, Any]) -> int:
    """The document's ``format_version``, checked to be one this dlstudio can read."""
    if "format_version" not in doc:
        raise ProjectError("format_version: missing")
    version = doc["format_version"]
    if isinstance(version, bool) or not isinstance(version, int):
        raise ProjectError(f"format_version: expected a whole number, got {describe(version)}")
    if version < 1:
        raise ProjectError(f"format_version: must be at least 1, got {version}")
    if version > FORMAT_VERSION:
        raise ProjectError(f"was written by a newer dlstudio (format {version}; this version reads up to "
                           f"{FORMAT_VERSION})")
    return version


def migrate(doc: dict[str, Any]) -> dict[str, Any]:
    """Upgrade a parsed project document to :data:`FORMAT_VERSION`, one registered step at a time."""
    version = document_version(doc)
    while version < FORMAT_VERSION:
        step = MIGRATIONS.get(version)
        if step is None:
            raise ProjectError(f"format {version} cannot be upgraded: no migration to format {version + 1}")
        try:
            doc = step(doc)
        except (KeyError, IndexError, TypeError, ValueError, AttributeError) as error:
            # Steps are written for well-formed documents of their version; old files are not
            # validated against old schemas, so a damaged one can only fail here.
            raise ProjectError(f"format {version} could not be upgraded to format {version + 1}: the file is "
                               f"damaged ({type(error).__name__}: {error})") from error
        if not isinstance(doc, dict):
            raise ProjectError(f"format {version} could not be upgraded: the migration gave {describe(doc)}")
        version += 1
        doc["format_version"] = version
    return doc

"""Errors of the exporters."""

from __future__ import annotations

from dlstudio.core.errors import DlstudioError


class ExportError(DlstudioError):
    """An export was refused for a reason other than graph errors (those raise CompileError)."""

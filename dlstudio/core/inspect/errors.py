"""The inspect layer's typed error."""

from __future__ import annotations

from dlstudio.core.errors import DlstudioError


class InspectError(DlstudioError):
    """A trained model could not be loaded, or a view cannot be computed for it. One line saying why."""

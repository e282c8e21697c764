"""The data layer's typed error."""

from __future__ import annotations

from dlstudio.core.errors import DlstudioError


class DataError(DlstudioError):
    """Data could not be loaded or does not fit the model. The message is one line saying why."""

"""The application's identity for QSettings, kept in one place so tests can redirect it."""

from __future__ import annotations

from PySide6.QtCore import QCoreApplication

ORGANIZATION = "dlstudio"
APPLICATION = "dlstudio"
MAX_RECENT_FILES = 8


def apply_identity(organization: str = ORGANIZATION, application: str = APPLICATION) -> None:
    """Name the organization and application; every ``QSettings()`` then reads that store."""
    QCoreApplication.setOrganizationName(organization)
    QCoreApplication.setApplicationName(application)

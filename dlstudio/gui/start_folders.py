"""Where a file dialog opens: the folder last used for that kind of file, else one of the person's own.

Qt opens a dialog given no folder in the process's working directory, which for a program started from a
launcher is wherever the launcher was; a person expects the folder they used last time (remembered per
kind across launches, in QSettings) or, the first time, their Documents or Pictures folder.
"""

from __future__ import annotations

from pathlib import Path

from PySide6.QtCore import QSettings

# The kinds of file a dialog asks for; each remembers its own folder.
PROJECTS = "projects"  # *.dlstudio files
IMAGES = "images"  # pictures to classify, folders to train on or evaluate
MODELS = "models"  # files to import or start from: ONNX, Python modules, weights, run folders
EXPORTS = "exports"  # what dlstudio writes for use elsewhere: code, CSV, PNG

_KEY = "folders/{}"


def start_folder(kind: str, near: Path | None = None) -> str:
    """The folder a dialog for ``kind`` opens in.

    ``near`` (the open project's folder, say) wins when given and present; then the folder last used
    for this kind; then the person's Pictures folder for images and Documents for the rest; then home.
    """
    candidates = [near, _remembered(kind), _personal_folder(kind), Path.home()]
    for folder in candidates:
        if folder is not None and folder.is_dir():
            return str(folder)
    return ""


def start_path(kind: str, file_name: str, near: Path | None = None) -> str:
    """A file dialog's starting selection: ``file_name`` in :func:`start_folder`."""
    folder = start_folder(kind, near)
    return str(Path(folder) / file_name) if folder else file_name


def remember(kind: str, chosen: str | Path | list[str]) -> None:
    """Note where the person went: the folder of a chosen file, or a chosen folder. '' (cancelled) is ignored."""
    if isinstance(chosen, list):
        chosen = chosen[0] if chosen else ""
    if not chosen:
        return
    path = Path(chosen)
    folder = path if path.is_dir() else path.parent
    if folder.is_dir():
        QSettings().setValue(_KEY.format(kind), str(folder.resolve()))


def _remembered(kind: str) -> Path | None:
    value = QSettings().value(_KEY.format(kind))
    return Path(value) if isinstance(value, str) and value else None


def _personal_folder(kind: str) -> Path | None:
    import platformdirs

    try:
        folder = platformdirs.user_pictures_dir() if kind == IMAGES else platformdirs.user_documents_dir()
    except (OSError, RuntimeError):  # no such folder is known on this system
        return None
    return Path(folder)

"""Example projects shipped with dlstudio (``resources/templates/*.dlstudio``), and the first-launch project.

The files are ordinary project files, read through the package resources so
that they work from a wheel as from a checkout. ``tools/make_templates.py``
writes them through the Graph API, so they are valid by construction.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from importlib.resources import files
from importlib.resources.abc import Traversable

from dlstudio.core.errors import ProjectError
from dlstudio.core.project.fileformat import project_from_json
from dlstudio.core.project.model import Project

SUFFIX = ".dlstudio"
DEFAULT_TEMPLATE = "lenet5"

# Menu titles and order; a template file not listed here still shows, after these, titled by its name.
_TITLES = {
    "mlp": "Shallow MLP",
    "deep-mlp": "Deep MLP",
    "lenet5": "LeNet-5",
    "vgg-mini": "VGG-style CNN",
    "resnet-mini": "ResNet-style CNN",
    "autoencoder": "Convolutional autoencoder",
    "finetune-mobilenet": "Fine-tune a pretrained network",
}


@dataclass(frozen=True)
class TemplateInfo:
    """A template as a menu shows it: ``name`` (file stem, for :func:`load_template`), title, description."""

    name: str
    title: str
    description: str


def _folder() -> Traversable:
    # resources/ is installed as the package dlstudio.resources (wheel and editable installs alike).
    return files("dlstudio.resources") / "templates"


def _template_files() -> dict[str, Traversable]:
    found = {entry.name[: -len(SUFFIX)]: entry for entry in _folder().iterdir()
             if entry.name.endswith(SUFFIX) and entry.is_file()}
    order = list(_TITLES)
    return dict(sorted(found.items(), key=lambda item: (order.index(item[0]) if item[0] in order else len(order),
                                                        item[0])))


def list_templates() -> list[TemplateInfo]:
    """The shipped templates, simplest first."""
    infos = []
    for name, entry in _template_files().items():
        try:
            description = json.loads(entry.read_text(encoding="utf-8")).get("description", "")
        except (ValueError, AttributeError):
            description = ""  # load_template will say what is wrong with it
        infos.append(TemplateInfo(name, _title(name), description if isinstance(description, str) else ""))
    return infos


def load_template(name: str) -> Project:
    """A new, unsaved project (``path`` None) from the template ``name``; ProjectError if there is none."""
    entry = _template_files().get(name)
    if entry is None:
        available = ", ".join(_template_files()) or "none"
        raise ProjectError(f"no template {name!r} (available: {available})")
    project = project_from_json(entry.read_text(encoding="utf-8"), source=f"{name}{SUFFIX}")
    project.untitled_name = _title(name)  # "Shallow MLP" until saved: the window title, Save's proposal
    return project


def _title(name: str) -> str:
    return _TITLES.get(name, name.replace("-", " ").capitalize())


def default_project() -> Project:
    """What the app opens on first launch: LeNet-5 on the bundled digits, ready to train offline."""
    return load_template(DEFAULT_TEMPLATE)

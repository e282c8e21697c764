"""Project files: the versioned JSON format, its migrations, settings schemas and templates (no Qt, no torch).

Note for tests: the format version and the migration table are read from
:mod:`dlstudio.core.project.migrations` at call time, so patch them there.
"""

from __future__ import annotations

from dlstudio.core.project.document import ProjectDocument, copy_runs, runs_folder
from dlstudio.core.project.fileformat import (
    load_project, project_from_doc, project_from_json, project_to_doc, project_to_json, save_project,
)
from dlstudio.core.project.migrations import FORMAT, FORMAT_VERSION, MIGRATIONS, migrate
from dlstudio.core.project.model import Project
from dlstudio.core.project.normalization import NormalizationStats, input_shape, statistics_basis
from dlstudio.core.project.settings import (
    DATA_SETTINGS, TRAINING_SETTINGS, default_data_settings, default_training_settings, validate_settings,
)
from dlstudio.core.project.templates import TemplateInfo, default_project, list_templates, load_template

__all__ = [
    "DATA_SETTINGS", "FORMAT", "FORMAT_VERSION", "MIGRATIONS", "TRAINING_SETTINGS", "NormalizationStats", "Project",
    "ProjectDocument",
    "TemplateInfo", "default_data_settings", "default_project", "default_training_settings", "input_shape",
    "copy_runs", "list_templates", "load_project", "load_template", "migrate", "project_from_doc", "project_from_json",
    "project_to_doc", "project_to_json", "runs_folder", "save_project", "statistics_basis", "validate_settings",
]

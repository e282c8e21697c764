"""Fixtures of the hostile tests (see hostile_runs.py): tiny projects and runs made by the tests, real processes."""

from __future__ import annotations

from hostile_runs import cli_run, dlstudio_process, run_copy, tiny_project, trained_run  # noqa: F401 - fixtures

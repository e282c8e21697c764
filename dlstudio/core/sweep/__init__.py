"""Sweeps: many training runs over ranges of settings and node parameters, searched and pruned by Optuna.

``space`` parses and checks what is varied (no torch), ``study`` keeps the Optuna study in
``NAME.sweep.db`` beside the project, ``runner`` runs the trials as normal runs (torch).
"""

from __future__ import annotations

from dlstudio.core.sweep.space import KINDS, SweepError, SweepParam, parse_param, parse_params
from dlstudio.core.sweep.study import METRICS, SAMPLERS, StudySpec, study_path

__all__ = ["KINDS", "METRICS", "SAMPLERS", "StudySpec", "SweepError", "SweepParam", "parse_param", "parse_params",
           "study_path"]

"""The in-memory project: graph, layout, data and training settings, runs, normalization (no Qt, no torch)."""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

from dlstudio.core.events import Event
from dlstudio.core.graph import Graph
from dlstudio.core.layout import Layout
from dlstudio.core.project.blocks import Blocks, FrozenNodes

if TYPE_CHECKING:
    from dlstudio.core.project.normalization import NormalizationStats
    from dlstudio.core.project.pretrained import WeightsSource

SECTIONS = ("data", "training")


@dataclass
class Project:
    """Everything a ``*.dlstudio`` file holds.

    ``data`` and ``training`` are plain dicts validated against the settings
    schemas in :mod:`dlstudio.core.project.settings`; ``runs`` lists run
    folders relative to the project file. ``normalization`` holds the
    per-channel statistics of the training split, recorded with the run that
    computed them (None before the first normalized run). ``path`` is where it
    was loaded from or last saved to (not stored in the file).

    ``untitled_name`` is the name while there is no file (the template's title, the imported model's name),
    what the window title shows and Save proposes; not stored in the file, whose own name wins once saved.

    ``blocks`` (named groups of nodes the canvas collapses) and ``frozen`` (nodes training leaves alone)
    follow the graph; ``weights`` names where the starting weights come from (None: random).
    """

    graph: Graph = field(default_factory=Graph)
    layout: Layout = field(default_factory=Layout)
    data: dict[str, Any] = field(default_factory=dict)
    training: dict[str, Any] = field(default_factory=dict)
    runs: list[str] = field(default_factory=list)
    description: str = ""
    normalization: NormalizationStats | None = None
    weights: WeightsSource | None = None
    path: Path | None = None
    untitled_name: str = field(default="untitled", repr=False, compare=False)
    blocks: Blocks = field(init=False, repr=False, compare=False)
    frozen: FrozenNodes = field(init=False, repr=False, compare=False)
    # Emitted as (section, key, value) after set_setting; panels and undo commands listen.
    settings_changed: Event = field(default_factory=lambda: Event("settings_changed"), repr=False, compare=False)
    # Emitted as (old, new) after set_weights.
    weights_changed: Event = field(default_factory=lambda: Event("weights_changed"), repr=False, compare=False)

    def __post_init__(self) -> None:
        self.blocks = Blocks(self.graph)
        self.frozen = FrozenNodes(self.graph)

    @property
    def name(self) -> str:
        return self.path.stem if self.path is not None else self.untitled_name

    def set_weights(self, source: WeightsSource | None) -> None:
        """Name where the starting weights come from (None: random initialization)."""
        old, self.weights = self.weights, source
        if old != source or (old is not None and source is not None and old.key_map != source.key_map):
            self.weights_changed.emit(old, source)

    def set_setting(self, section: str, key: str, value: Any) -> Any:
        """Validate and store one data or training setting; returns the stored value.

        Raises ProjectError naming the setting when the value is refused
        (out of range, unknown key, or fractions that leave nothing to train on).
        """
        from dlstudio.core.project.settings import DATA_SETTINGS, TRAINING_SETTINGS, validate_settings

        if section not in SECTIONS:
            raise ValueError(f"unknown settings section {section!r}")
        values = self.data if section == "data" else self.training
        schema = DATA_SETTINGS if section == "data" else TRAINING_SETTINGS
        checked = validate_settings(schema, {**values, key: value}, section)
        values[key] = checked[key]
        self.settings_changed.emit(section, key, checked[key])
        return checked[key]

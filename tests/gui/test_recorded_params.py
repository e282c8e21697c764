"""An imported module's recorded facts (source, traced shapes, why it is opaque) are shown, not edited."""

from __future__ import annotations

from PySide6.QtWidgets import QLabel, QLineEdit

from dlstudio.core.importer import import_torchvision
from dlstudio.core.sweep.space import SweepError, parse_param, sweepable_targets


def test_an_opaque_modules_facts_are_labels_and_not_sweepable(make_window):
    import pytest

    result = import_torchvision("vit_b_16", num_classes=10, opaque=True)  # its own forward: one opaque node
    window = make_window(result.project)
    graph = window.project.graph
    (node,) = [node for node in graph if node.type == "TorchvisionModule"]
    window.scene.select_nodes([node.id])
    inspector = window.inspector
    assert inspector.node_id == node.id
    for name in ("model", "path", "input_shape", "param_count", "reason"):
        shown = inspector.editors[name]
        assert isinstance(shown, QLabel) and not isinstance(shown, QLineEdit), name
    assert inspector.editors["param_count"].text() == f"{node.params['param_count']:,}"
    assert inspector.editors["model"].text() == "vit_b_16"
    assert f"MACs</td><td>&nbsp;{node.params['macs']:,} (" in inspector.shapes.text()  # counted at import
    assert "macs" not in inspector.editors  # shown in the MACs row, not as a recorded fact of its own
    graph.set_param(node.id, "macs", 0)  # as a project saved before MACs were counted
    assert "MACs</td><td>&nbsp;not counted (opaque module)" in inspector.shapes.text()
    assert not any(target.startswith(f"{node.name}.") for target in sweepable_targets(graph))
    with pytest.raises(SweepError, match="recorded at import"):
        parse_param(f"{node.name}.num_classes=int:2:20", graph)

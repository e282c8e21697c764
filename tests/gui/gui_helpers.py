"""Small projects and event helpers shared by the GUI tests."""

from __future__ import annotations

import gc
from collections.abc import Iterator
from contextlib import contextmanager

from PySide6.QtCore import QPoint, Qt
from PySide6.QtTest import QTest

from dlstudio.core.graph import Graph
from dlstudio.core.layout import Layout
from dlstudio.core.project import Project


def chain_project(*layers: tuple[str, dict], spacing: float = 320.0) -> Project:
    """Nodes in a row, each connected to the next through its first ports, well apart."""
    graph = Graph()
    layout = Layout()
    previous = None
    for index, (type_id, params) in enumerate(layers):
        node = graph.add_node(type_id, params)
        layout.move(node.id, index * spacing, 0.0)
        if previous is not None:
            graph.connect(previous.id, previous.output_ports[0], node.id, node.input_ports[0])
        previous = node
    return Project(graph=graph, layout=layout)


def train_recorded_run(project: Project, path, epochs: int):
    """Save ``project`` at ``path`` and train it as ``dlstudio train`` does (the run recorded in the file).

    Seeded, on the CPU, contiguous layout; the project's own training settings win over these defaults.
    Returns the run folder.
    """
    import torch

    from dlstudio.core.project import save_project
    from dlstudio.core.training.session import start_session

    save_project(project, path)
    torch.manual_seed(0)
    training = {"batch_size": 64, "learning_rate": 0.01, "device": "cpu", "channels_last": "off", **project.training}
    session = start_session(project.graph, project.data, training, path, epochs=epochs)
    session.record_in_file()
    session.finish(session.trainer().fit())
    return session.run_dir


def port_point(window, node_id: str, port: str, side: str) -> QPoint:
    item = window.scene.node_items[node_id].port(port, side)
    return window.view.mapFromScene(item.scenePos())


def drag(viewport, start: QPoint, end: QPoint, steps: int = 6) -> None:
    """A left-button drag with real mouse events on the view's viewport."""
    QTest.mousePress(viewport, Qt.MouseButton.LeftButton, Qt.KeyboardModifier.NoModifier, start)
    for i in range(1, steps + 1):
        point = start + (end - start) * (i / steps)
        QTest.mouseMove(viewport, point)
    QTest.mouseRelease(viewport, Qt.MouseButton.LeftButton, Qt.KeyboardModifier.NoModifier, end)


@contextmanager
def session_heap_set_aside() -> Iterator[None]:
    """Leave the test session's own objects out of the garbage collector while responsiveness is timed.

    After a thousand tests the heap holds ~600,000 objects, and one full collection of them took 0.32 s
    here (more on a slower machine): a pause the window, with its own small heap, never has. Frozen
    (gc.freeze), they are not scanned; what the code under test allocates still is.
    """
    gc.collect()
    gc.freeze()
    try:
        yield
    finally:
        gc.unfreeze()

"""Small projects and event helpers shared by the GUI tests."""

from __future__ import annotations

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

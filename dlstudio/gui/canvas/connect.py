"""The port-to-port drag gesture: a live edge follows the cursor, targets say if they accept it."""

from __future__ import annotations

from PySide6.QtCore import QPointF, QRectF, Qt
from PySide6.QtGui import QColor, QPen
from PySide6.QtWidgets import QGraphicsPathItem, QGraphicsScene

from dlstudio.core.graph import Graph
from dlstudio.gui.canvas.items import INPUT, OUTPUT, PortItem, bezier_path
from dlstudio.gui.theme import CanvasColors

Connection = tuple[str, str, str, str]  # src, src_port, dst, dst_port


class ConnectGesture:
    """One drag from a port. Start on an output (or an input), release on a port of the other side.

    Highlights every port that would accept the edge when the drag starts,
    and the port under the cursor green or red; :attr:`reason` says why a
    target refuses.
    """

    def __init__(self, scene: QGraphicsScene, graph: Graph, origin: PortItem, ports: list[PortItem],
                 colors: CanvasColors) -> None:
        self.scene = scene
        self.graph = graph
        self.origin = origin
        self.target: PortItem | None = None
        self.reason = ""
        self._ports = [p for p in ports if p.side != origin.side]
        self._wire = QGraphicsPathItem()
        pen = QPen(QColor(colors.selection), 2, Qt.PenStyle.DashLine)
        self._wire.setPen(pen)
        self._wire.setZValue(5)
        scene.addItem(self._wire)
        for port in self._ports:
            if self.check(port)[0]:
                port.set_highlight("valid")
        self.move(origin.scenePos())

    def connection(self, port: PortItem) -> Connection:
        if self.origin.side == OUTPUT:
            return self.origin.node_id, self.origin.name, port.node_id, port.name
        return port.node_id, port.name, self.origin.node_id, self.origin.name

    def check(self, port: PortItem) -> tuple[bool, str]:
        if port.side == self.origin.side:
            side = "outputs" if port.side == OUTPUT else "inputs"
            return False, f"cannot connect two {side}"
        return self.graph.can_connect(*self.connection(port))

    def port_at(self, pos: QPointF) -> PortItem | None:
        area = QRectF(pos.x() - 8, pos.y() - 8, 16, 16)
        for item in self.scene.items(area):
            if isinstance(item, PortItem) and item is not self.origin:
                return item
        return None

    def move(self, pos: QPointF) -> None:
        """Follow the cursor; returns nothing, sets :attr:`target` and :attr:`reason`."""
        port = self.port_at(pos)
        if self.target is not None and self.target is not port:
            ok = self.check(self.target)[0]
            self.target.set_highlight("valid" if ok else None)
        self.target = port
        self.reason = ""
        end = pos
        if port is not None:
            ok, self.reason = self.check(port)
            port.set_highlight("target" if ok else "invalid")
            end = port.scenePos()
        start = self.origin.scenePos()
        self._wire.setPath(bezier_path(start, end) if self.origin.side == OUTPUT else bezier_path(end, start))

    def finish(self, pos: QPointF) -> tuple[Connection | None, str]:
        """End the drag: the connection to make, or None and the reason (empty if released on nothing)."""
        self.move(pos)
        result: Connection | None = None
        reason = ""
        if self.target is not None:
            ok, reason = self.check(self.target)
            if ok:
                result = self.connection(self.target)
        self.cancel()
        return result, reason

    def cancel(self) -> None:
        for port in self._ports:
            port.set_highlight(None)
        if self.target is not None:
            self.target.set_highlight(None)
        self.scene.removeItem(self._wire)


__all__ = ["INPUT", "OUTPUT", "ConnectGesture", "Connection"]

"""Graphics items of the canvas: a node with its ports, an edge with its shape label.

Items only draw what they are told (a node's :class:`NodeInfo`, an edge's
label); they never change the model. Nodes cache their drawing in device
coordinates because they are many and change rarely; edges are recomputed
only when one of their two nodes moves.
"""

from __future__ import annotations

from typing import Any

from PySide6.QtCore import QPointF, QRectF, Qt
from PySide6.QtGui import QBrush, QColor, QFont, QFontMetricsF, QPainter, QPainterPath, QPainterPathStroker, QPen
from PySide6.QtWidgets import QGraphicsItem, QGraphicsObject, QStyleOptionGraphicsItem, QWidget

from dlstudio.core.graph import Edge, Node
from dlstudio.core.layers.spec import format_shape
from dlstudio.core.shapes import NodeInfo
from dlstudio.gui.theme import CanvasColors, category_color

NODE_WIDTH = 196.0
HEADER_HEIGHT = 24.0
LINE_HEIGHT = 16.0
PORT_RADIUS = 6.0
PORT_SPACING = 20.0
CORNER = 7.0
BODY_LINES = 3
# The title is set in pixels (not points) so that its size on screen is known: TITLE_PX at 100%, and when
# the view is zoomed out it grows in scene units to stay at least MIN_SCREEN_TITLE_PX on screen. The name
# is what a person reads first on a fitted network. Beyond what the header strip holds, the node is drawn
# as a chip in its category colour with just its name, large (the small body text would be unreadable at
# that zoom anyway), up to MAX_TITLE_PX.
TITLE_PX = 13
MIN_SCREEN_TITLE_PX = 11.5
HEADER_TITLE_PX = HEADER_HEIGHT - 2
MAX_TITLE_PX = 40

INPUT = "in"
OUTPUT = "out"
# The lock badge of frozen nodes: an indigo no layer category uses, with white on it readable in both themes.
FROZEN_COLOR = "#3949ab"


def format_count(value: int) -> str:
    """``1234567`` -> ``"1.23M"``: compact counts for the small space of a node."""
    for limit, suffix in ((1e9, "G"), (1e6, "M"), (1e3, "k")):
        if value >= limit:
            return f"{value / limit:.3g}{suffix}"
    return str(value)


def format_param_value(value: Any) -> str:
    if value is None:
        return "auto"
    if isinstance(value, bool):
        return "yes" if value else "no"
    if isinstance(value, (list, tuple)):
        return "×".join(str(v) for v in value)
    if isinstance(value, float):
        return f"{value:g}"
    return str(value)


def key_param_text(node: Node) -> str:
    """The spec's key parameters, compactly: ``"out 6 · kernel 5 · stride 1"``."""
    parts = []
    for name in node.spec.key_params:
        parts.append(f"{name.split('_')[0]} {format_param_value(node.params.get(name))}")
    return " · ".join(parts)


class PortItem(QGraphicsItem):
    """A small circle on a node's side: inputs on the left, outputs on the right."""

    def __init__(self, node_item: NodeItem, name: str, side: str) -> None:
        super().__init__(node_item)
        self.node_item = node_item
        self.name = name
        self.side = side
        self.highlight: str | None = None  # None, "valid", "invalid" or "target" (under the cursor)
        self.setAcceptHoverEvents(True)
        self.setCursor(Qt.CursorShape.CrossCursor)
        self.setZValue(2)

    @property
    def node_id(self) -> str:
        return self.node_item.node_id

    def boundingRect(self) -> QRectF:
        r = PORT_RADIUS + 4
        return QRectF(-r, -r, 2 * r, 2 * r)

    def shape(self) -> QPainterPath:
        # A generous hit area: ports are small targets.
        path = QPainterPath()
        path.addEllipse(self.boundingRect())
        return path

    def set_highlight(self, highlight: str | None) -> None:
        if highlight != self.highlight:
            self.highlight = highlight
            self.update()

    def paint(self, painter: QPainter, option: QStyleOptionGraphicsItem, widget: QWidget | None = None) -> None:
        colors = self.node_item.colors
        painter.setRenderHint(QPainter.RenderHint.Antialiasing)
        fill = QColor(colors.port_fill)
        border = QColor(colors.port_border)
        radius = PORT_RADIUS
        if self.highlight == "valid":
            border = QColor(colors.valid)
        elif self.highlight == "target":
            fill, border, radius = QColor(colors.valid), QColor(colors.valid), PORT_RADIUS + 2
        elif self.highlight == "invalid":
            fill, border, radius = QColor(colors.error), QColor(colors.error), PORT_RADIUS + 2
        elif self.node_item.port_connected(self):
            fill = QColor(colors.edge)
        painter.setPen(QPen(border, 2 if self.highlight else 1.5))
        painter.setBrush(fill)
        painter.drawEllipse(QPointF(0, 0), radius, radius)


class ErrorBadge(QGraphicsItem):
    """The red "!" in a failing node's corner; its tooltip is the error message."""

    SIZE = 18.0

    def __init__(self, node_item: NodeItem) -> None:
        super().__init__(node_item)
        self.node_item = node_item
        self.setZValue(3)

    def boundingRect(self) -> QRectF:
        return QRectF(-self.SIZE / 2, -self.SIZE / 2, self.SIZE, self.SIZE)

    def paint(self, painter: QPainter, option: QStyleOptionGraphicsItem, widget: QWidget | None = None) -> None:
        painter.setRenderHint(QPainter.RenderHint.Antialiasing)
        painter.setPen(QPen(QColor("white"), 1.5))
        painter.setBrush(QColor(self.node_item.colors.error))
        painter.drawEllipse(self.boundingRect())
        font = QFont(painter.font())
        font.setBold(True)
        font.setPointSizeF(9)
        painter.setFont(font)
        painter.drawText(self.boundingRect(), Qt.AlignmentFlag.AlignCenter, "!")


class LockBadge(QGraphicsItem):
    """A small padlock by a frozen node's top-left corner: its weights are not trained.

    ``state`` is "all" (a frozen node, or a block whose members are all frozen) or "some" (a block
    with some frozen members: the lock is drawn hollow).
    """

    SIZE = 18.0

    def __init__(self, node_item: QGraphicsItem) -> None:
        super().__init__(node_item)
        self.node_item = node_item
        self.state = "all"
        self.setZValue(3)
        self.setVisible(False)

    def set_state(self, state: str) -> None:
        """"none" hides the badge; "all" or "some" shows it."""
        self.setVisible(state != "none")
        self.setToolTip({"all": "Frozen: weights are not trained",
                         "some": "Some layers are frozen: their weights are not trained"}.get(state, ""))
        if state != self.state:
            self.state = state
            self.update()

    def boundingRect(self) -> QRectF:
        return QRectF(-self.SIZE / 2, -self.SIZE / 2, self.SIZE, self.SIZE)

    def paint(self, painter: QPainter, option: QStyleOptionGraphicsItem, widget: QWidget | None = None) -> None:
        painter.setRenderHint(QPainter.RenderHint.Antialiasing)
        painter.setPen(QPen(QColor("white"), 1.5))
        painter.setBrush(QColor(FROZEN_COLOR))
        painter.drawEllipse(self.boundingRect())
        # The padlock: a shackle (an arch) over a body; hollow body for a partly frozen block.
        painter.setPen(QPen(QColor("white"), 1.6))
        painter.setBrush(Qt.BrushStyle.NoBrush)
        painter.drawArc(QRectF(-3.2, -6.0, 6.4, 7.0), 0, 180 * 16)
        painter.drawLine(QPointF(-3.2, -2.5), QPointF(-3.2, -0.8))
        painter.drawLine(QPointF(3.2, -2.5), QPointF(3.2, -0.8))
        body = QRectF(-4.6, -0.8, 9.2, 6.4)
        if self.state == "all":
            painter.setBrush(QColor("white"))
        painter.drawRoundedRect(body, 1.2, 1.2)


class PortedItem(QGraphicsObject):
    """An item with ports that edges attach to (a node, or a collapsed block): ``inputs``, ``outputs``
    (port name -> PortItem), ``edges`` and ``colors`` are set by the subclass."""

    colors: CanvasColors
    inputs: dict[str, PortItem]
    outputs: dict[str, PortItem]
    edges: list[EdgeItem]

    def set_colors(self, colors: CanvasColors) -> None:
        self.colors = colors
        self.update()
        for port in [*self.inputs.values(), *self.outputs.values()]:
            port.update()

    def itemChange(self, change: QGraphicsItem.GraphicsItemChange, value: Any) -> Any:
        if change == QGraphicsItem.GraphicsItemChange.ItemPositionHasChanged:
            for edge in self.edges:
                edge.update_path()
            follow = getattr(self.scene(), "node_item_moved", None)
            if follow is not None:
                follow(self)
        return super().itemChange(change, value)


class NodeItem(PortedItem):
    """One layer on the canvas: header with the user's name, type and key parameters, output shape, counts."""

    def __init__(self, node: Node, colors: CanvasColors) -> None:
        super().__init__()
        self.node = node
        self.colors = colors
        self.info: NodeInfo | None = None
        self.edges: list[EdgeItem] = []
        self.inputs: dict[str, PortItem] = {}
        self.outputs: dict[str, PortItem] = {}
        self._height = 0.0
        self.flipped = False  # drawn right to left (inputs on the right): a node in a backwards row
        self.setFlags(QGraphicsItem.GraphicsItemFlag.ItemIsMovable
                      | QGraphicsItem.GraphicsItemFlag.ItemIsSelectable
                      | QGraphicsItem.GraphicsItemFlag.ItemSendsGeometryChanges)
        self.setCacheMode(QGraphicsItem.CacheMode.DeviceCoordinateCache)
        self.setZValue(1)
        self.badge = ErrorBadge(self)
        self.badge.setVisible(False)
        self.lock = LockBadge(self)
        self.lock.setPos(0, 0)  # on the corner, clear of the title
        self.rebuild_ports()

    @property
    def node_id(self) -> str:
        return self.node.id

    @property
    def frozen(self) -> bool:
        return self.lock.isVisibleTo(self)

    def set_frozen(self, frozen: bool) -> None:
        self.lock.set_state("all" if frozen else "none")

    # -- geometry ----------------------------------------------------------

    def _body_offset(self) -> float:
        # Named input ports (merges) get their labels drawn inside; the text moves right to make room.
        return 30.0 if len(self.inputs) > 1 else 0.0

    def rebuild_ports(self) -> None:
        """Create port items for the node's current ports (merges change their input count)."""
        self.prepareGeometryChange()
        for port in [*self.inputs.values(), *self.outputs.values()]:
            port.setParentItem(None)
            if port.scene() is not None:
                port.scene().removeItem(port)
        self.inputs = {name: PortItem(self, name, INPUT) for name in self.node.input_ports}
        self.outputs = {name: PortItem(self, name, OUTPUT) for name in self.node.output_ports}
        ports = max(len(self.inputs), len(self.outputs), 1)
        self._height = max(HEADER_HEIGHT + 10 + BODY_LINES * LINE_HEIGHT, HEADER_HEIGHT + 8 + ports * PORT_SPACING)
        self._place_ports()

    def _place_ports(self) -> None:
        left, right = (NODE_WIDTH, 0.0) if self.flipped else (0.0, NODE_WIDTH)
        for column, x in ((self.inputs, left), (self.outputs, right)):
            top = HEADER_HEIGHT + (self._height - HEADER_HEIGHT - len(column) * PORT_SPACING) / 2
            for i, port in enumerate(column.values()):
                port.setPos(x, top + (i + 0.5) * PORT_SPACING)
        self.badge.setPos(NODE_WIDTH - 2, 2)
        self.update()

    def set_flipped(self, flipped: bool) -> bool:
        """Put the inputs on the right and the outputs on the left (or back); True if it changed."""
        if flipped == self.flipped:
            return False
        self.flipped = flipped
        self._place_ports()
        for edge in self.edges:
            edge.update_path()
        return True

    def boundingRect(self) -> QRectF:
        return QRectF(-2, -2, NODE_WIDTH + 4, self._height + 4)

    @staticmethod
    def title_pixel_size(zoom: float) -> int:
        """The title's font size in scene pixels at ``zoom``: at least MIN_SCREEN_TITLE_PX on screen where it fits."""
        if zoom <= 0:
            return TITLE_PX
        return int(min(MAX_TITLE_PX, max(TITLE_PX, -(-MIN_SCREEN_TITLE_PX // zoom))))

    @staticmethod
    def title_font(base: QFont, zoom: float) -> QFont:
        font = QFont(base)
        font.setBold(True)
        font.setPixelSize(NodeItem.title_pixel_size(zoom))
        return font

    def size(self) -> tuple[float, float]:
        return NODE_WIDTH, self._height

    def port(self, name: str, side: str) -> PortItem:
        return (self.inputs if side == INPUT else self.outputs)[name]

    def port_connected(self, port: PortItem) -> bool:
        for edge in self.edges:
            if edge.source is port or edge.target is port:
                return True
        return False

    # -- state -------------------------------------------------------------

    def set_info(self, info: NodeInfo | None) -> None:
        self.info = info
        error = info.error if info is not None else None
        self.badge.setVisible(error is not None)
        self.badge.setToolTip(error.message if error is not None else "")
        self.setToolTip(error.message if error is not None else key_param_text(self.node) or self.node.type)
        self.update()

    # -- drawing -----------------------------------------------------------

    def paint(self, painter: QPainter, option: QStyleOptionGraphicsItem, widget: QWidget | None = None) -> None:
        colors = self.colors
        painter.setRenderHint(QPainter.RenderHint.Antialiasing)
        painter.setRenderHint(QPainter.RenderHint.TextAntialiasing)
        rect = QRectF(0, 0, NODE_WIDTH, self._height)
        error = self.info is not None and self.info.error is not None
        if self.isSelected():
            border = QPen(QColor(colors.selection), 2.5)
        elif error:
            border = QPen(QColor(colors.error), 2.2)
        else:
            border = QPen(QColor(colors.node_border), 1)
        outline = QPainterPath()
        outline.addRoundedRect(rect, CORNER, CORNER)
        zoom = QStyleOptionGraphicsItem.levelOfDetailFromTransform(painter.worldTransform())
        title_font = self.title_font(QFont(painter.font()), zoom)
        if title_font.pixelSize() > HEADER_TITLE_PX:
            self._paint_chip(painter, outline, border, title_font)
            return
        painter.fillPath(outline, QColor(colors.node_fill))

        # Header strip in the category colour, clipped to the rounded outline.
        header = QPainterPath()
        header.addRect(QRectF(0, 0, NODE_WIDTH, HEADER_HEIGHT))
        painter.fillPath(outline.intersected(header), category_color(self.node.spec.category))
        painter.setPen(border)
        painter.setBrush(Qt.BrushStyle.NoBrush)
        painter.drawPath(outline)

        base = QFont(painter.font())
        painter.setFont(title_font)
        painter.setPen(QColor("white"))
        title_rect = QRectF(10, 0, NODE_WIDTH - 32, HEADER_HEIGHT)
        title = QFontMetricsF(title_font).elidedText(self.node.name, Qt.TextElideMode.ElideRight, title_rect.width())
        painter.drawText(title_rect, Qt.AlignmentFlag.AlignVCenter | Qt.AlignmentFlag.AlignLeft, title)

        small = QFont(base)
        small.setPointSizeF(8)
        metrics = QFontMetricsF(small)
        painter.setFont(small)
        left = 10 + (0.0 if self.flipped else self._body_offset())  # merge port labels sit by the inputs
        width = NODE_WIDTH - 20 - self._body_offset()
        lines: list[tuple[str, str]] = []
        subtitle = self.node.spec.display_name
        keys = key_param_text(self.node)
        lines.append((f"{subtitle} · {keys}" if keys else subtitle, colors.node_subtext))
        info = self.info
        if info is None or info.blocked:
            lines.append(("→ ?", colors.node_subtext))
            lines.append(("", colors.node_subtext))
        elif info.error is not None:
            lines.append((info.error.message, colors.error))  # elided here; whole in the badge's tooltip
            lines.append(("", colors.node_subtext))
        else:
            shape = info.output_shape
            lines.append((f"→ {format_shape(shape)}", colors.node_text))
            counts = f"{format_count(info.params)} params"
            if info.macs:
                counts += f" · {format_count(info.macs)} MACs"
            lines.append((counts, colors.node_subtext))
        y = HEADER_HEIGHT + 5
        for text, color in lines:
            painter.setPen(QColor(color))
            text = metrics.elidedText(text, Qt.TextElideMode.ElideRight, width)
            painter.drawText(QRectF(left, y, width, LINE_HEIGHT), Qt.AlignmentFlag.AlignVCenter, text)
            y += LINE_HEIGHT

        self._paint_port_names(painter)

    def _paint_chip(self, painter: QPainter, outline: QPainterPath, border: QPen, font: QFont) -> None:
        """Zoomed far out: the node in its category colour with its name, large enough to read."""
        painter.fillPath(outline, category_color(self.node.spec.category))
        painter.setPen(border)
        painter.setBrush(Qt.BrushStyle.NoBrush)
        painter.drawPath(outline)
        painter.setFont(font)
        painter.setPen(QColor("white"))
        box = QRectF(8, 2, NODE_WIDTH - 16, self._height - 4)
        flags = Qt.AlignmentFlag.AlignCenter | Qt.TextFlag.TextWordWrap
        metrics = QFontMetricsF(font)
        wrapped = metrics.boundingRect(box, flags, self.node.name)
        if wrapped.height() <= box.height() and wrapped.width() <= box.width():
            painter.drawText(box, flags, self.node.name)
        else:
            text = metrics.elidedText(self.node.name, Qt.TextElideMode.ElideRight, box.width())
            painter.drawText(box, Qt.AlignmentFlag.AlignCenter, text)

    def _paint_port_names(self, painter: QPainter) -> None:
        if len(self.inputs) > 1:
            painter.setPen(QColor(self.colors.node_subtext))
            for name, port in self.inputs.items():
                if self.flipped:
                    box = QRectF(NODE_WIDTH - PORT_RADIUS - 33, port.pos().y() - LINE_HEIGHT / 2, 30, LINE_HEIGHT)
                    align = Qt.AlignmentFlag.AlignVCenter | Qt.AlignmentFlag.AlignRight
                else:
                    box = QRectF(PORT_RADIUS + 3, port.pos().y() - LINE_HEIGHT / 2, 30, LINE_HEIGHT)
                    align = Qt.AlignmentFlag.AlignVCenter | Qt.AlignmentFlag.AlignLeft
                painter.drawText(box, align, name)


class EdgeItem(QGraphicsItem):
    """A cubic Bézier from an output port to an input port, labelled with the tensor shape it carries."""

    def __init__(self, edge: Edge, source: PortItem, target: PortItem, colors: CanvasColors) -> None:
        super().__init__()
        self.edge = edge
        self.source = source
        self.target = target
        self.colors = colors
        self.label = ""
        self._path = QPainterPath()
        self._label_rect = QRectF()
        self._bounds = QRectF()
        self.setFlags(QGraphicsItem.GraphicsItemFlag.ItemIsSelectable)
        self.setZValue(0)
        source.node_item.edges.append(self)
        target.node_item.edges.append(self)
        self.update_path()

    def detach(self) -> None:
        for node_item in (self.source.node_item, self.target.node_item):
            if self in node_item.edges:
                node_item.edges.remove(self)
        self.source.update()
        self.target.update()

    def reattach(self, source: PortItem, target: PortItem) -> None:
        """Draw the edge between other ports (a collapsed block's, or its nodes' again once expanded)."""
        if source is self.source and target is self.target:
            return
        self.detach()
        self.source, self.target = source, target
        for node_item in (source.node_item, target.node_item):
            if self not in node_item.edges:
                node_item.edges.append(self)
        source.update()
        target.update()
        self.update_path()

    def set_label(self, text: str) -> None:
        if text != self.label:
            self.label = text
            self.update_path()

    def set_colors(self, colors: CanvasColors) -> None:
        self.colors = colors
        self.update()

    def update_path(self) -> None:
        self.prepareGeometryChange()
        self._path = bezier_path(self.source.scenePos(), self.target.scenePos(),
                                 -1.0 if self.source.node_item.flipped else 1.0,
                                 -1.0 if self.target.node_item.flipped else 1.0)
        middle = self._path.pointAtPercent(0.5)
        font = QFont()
        font.setPointSizeF(7.5)
        metrics = QFontMetricsF(font)
        width = metrics.horizontalAdvance(self.label) + 10
        height = metrics.height() + 4
        self._label_rect = QRectF(middle.x() - width / 2, middle.y() - height / 2, width, height)
        bounds = self._path.boundingRect().adjusted(-4, -4, 4, 4)
        self._bounds = bounds.united(self._label_rect) if self.label else bounds

    def boundingRect(self) -> QRectF:
        return self._bounds

    def shape(self) -> QPainterPath:
        stroker = QPainterPathStroker()
        stroker.setWidth(10)
        path = stroker.createStroke(self._path)
        if self.label:
            path.addRect(self._label_rect)
        return path

    def path(self) -> QPainterPath:
        return QPainterPath(self._path)

    def label_rect(self) -> QRectF:
        return QRectF(self._label_rect)

    def paint(self, painter: QPainter, option: QStyleOptionGraphicsItem, widget: QWidget | None = None) -> None:
        painter.setRenderHint(QPainter.RenderHint.Antialiasing)
        color = QColor(self.colors.selection if self.isSelected() else self.colors.edge)
        painter.setPen(QPen(color, 2.5 if self.isSelected() else 1.8))
        painter.setBrush(Qt.BrushStyle.NoBrush)
        painter.drawPath(self._path)
        if not self.label:
            return
        painter.setPen(QPen(color, 1))
        painter.setBrush(QBrush(QColor(self.colors.edge_label_fill)))
        painter.drawRoundedRect(self._label_rect, 4, 4)
        font = QFont(painter.font())
        font.setPointSizeF(7.5)
        painter.setFont(font)
        painter.setPen(QColor(self.colors.edge_label_text))
        painter.drawText(self._label_rect, Qt.AlignmentFlag.AlignCenter, self.label)


_BACKWARD_GAP = 40.0  # a target less than this far ahead of its source is reached by going round
_LOOP = 36.0  # how far a backward wire runs out of its port before it turns


def bezier_path(start: QPointF, end: QPointF, start_dir: float = 1.0, end_dir: float = 1.0) -> QPainterPath:
    """An S curve leaving ``start`` along ``start_dir`` (+1 right, -1 left) and entering ``end`` along
    ``end_dir``; backwards edges loop out so they stay readable, and an edge leaving and entering on
    the same side (a snake layout's turn between rows) is a U on that side."""
    path = QPainterPath(start)
    if start_dir == end_dir and (end.x() - start.x()) * start_dir < _BACKWARD_GAP and abs(end.y() - start.y()) > 1:
        # Backwards (the target behind its source): out of the source, across the gap between the two nodes'
        # rows, and into the target from its own side, so the wire goes round the nodes, not through them.
        out, into, middle = start.x() + start_dir * _LOOP, end.x() - end_dir * _LOOP, (start.y() + end.y()) / 2
        path.cubicTo(QPointF(out, start.y()), QPointF(out, start.y()), QPointF(out, (start.y() + middle) / 2))
        path.cubicTo(QPointF(out, middle), QPointF(out, middle), QPointF((out + into) / 2, middle))
        path.cubicTo(QPointF(into, middle), QPointF(into, middle), QPointF(into, (middle + end.y()) / 2))
        path.cubicTo(QPointF(into, end.y()), QPointF(into, end.y()), end)
        return path
    reach = max(abs(end.x() - start.x()) * 0.5, 40.0)
    if start_dir != end_dir:
        reach = max(40.0, abs(end.y() - start.y()) * 0.35)
    path.cubicTo(QPointF(start.x() + start_dir * reach, start.y()), QPointF(end.x() - end_dir * reach, end.y()), end)
    return path

"""Graphics items of blocks: a collapsed block drawn as one node, and the frame behind an expanded one.

Like the node items, they only draw what the scene tells them (:class:`BlockSummary`) and turn
gestures into the scene's signals (expand, collapse); they never change the model.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from PySide6.QtCore import QPointF, QRectF, Qt
from PySide6.QtGui import QColor, QFont, QFontMetricsF, QPainter, QPainterPath, QPen
from PySide6.QtWidgets import (QGraphicsItem, QGraphicsObject, QGraphicsSceneMouseEvent, QStyleOptionGraphicsItem,
                               QWidget)

from dlstudio.core.graph import Edge, Graph
from dlstudio.core.layers.spec import Shape, format_shape
from dlstudio.core.project.blocks import Block, FrozenNodes
from dlstudio.core.shapes import ShapeInference
from dlstudio.gui.canvas.items import (CORNER, HEADER_HEIGHT, HEADER_TITLE_PX, INPUT, LINE_HEIGHT, NODE_WIDTH,
                                       OUTPUT, PORT_SPACING, ErrorBadge, LockBadge, NodeItem, PortedItem, PortItem,
                                       format_count)
from dlstudio.gui.theme import CanvasColors

# A block's header: a slate no layer category uses, so a block never reads as one layer; white on it reads
# in both themes. The card behind it (the "stack") says that there is more inside.
BLOCK_HEADER = "#455a64"
STACK_OFFSET = 5.0
BLOCK_LINES = 4
FRAME_MARGIN = 14.0
FRAME_LABEL_HEIGHT = 22.0
FRAME_LINK = 28.0  # half the width of the band joining two connected nodes of an expanded block
BLOCK_GLYPH = "\u25a3"  # ▣, a square within a square


@dataclass
class BlockSummary:
    """What a collapsed block shows: its size, its boundary shapes, its totals, its members' errors."""

    name: str
    layers: int
    input_shapes: list[Shape | None] = field(default_factory=list)
    output_shapes: list[Shape | None] = field(default_factory=list)
    params: int = 0
    macs: int = 0
    errors: list[str] = field(default_factory=list)  # "conv1: expects (N, C, H, W) ..." per failing member
    blocked: bool = False  # an input of the block has an error upstream
    frozen: str = "none"  # "none", "some" or "all" of the members


def frozen_state(block: Block, frozen: FrozenNodes) -> str:
    """"none", "some" or "all": how many of the block's nodes training leaves alone."""
    count = sum(1 for n in block.nodes if n in frozen)
    return "none" if count == 0 else "all" if count == len(block.nodes) else "some"


def summarize_block(block: Block, boundary: tuple[list[Edge], list[Edge]], graph: Graph,
                    inference: ShapeInference, frozen: FrozenNodes) -> BlockSummary:
    """What a block shows, from the shape engine's infos: the shapes on the edges crossing its
    ``boundary`` (one per distinct connection), its nodes' summed parameters and MACs, their errors."""
    entering, leaving = boundary
    summary = BlockSummary(block.name, len(block.nodes), frozen=frozen_state(block, frozen))
    for src, port in dict.fromkeys((e.src, e.src_port) for e in entering):
        summary.input_shapes.append(inference.info(src).output_shapes.get(port))
    for src, port in dict.fromkeys((e.src, e.src_port) for e in leaving):
        summary.output_shapes.append(inference.info(src).output_shapes.get(port))
    for node_id in block.nodes:
        info = inference.info(node_id)
        summary.params += info.params
        summary.macs += info.macs
        if info.error is not None:
            summary.errors.append(f"{graph.node(node_id).name}: {info.error.message}")
        summary.blocked = summary.blocked or info.blocked
    return summary


def shapes_text(shapes: list[Shape | None]) -> str:
    return ", ".join(format_shape(s) if s is not None else "?" for s in shapes) or "—"


class BlockItem(PortedItem):
    """A collapsed block: one node-like card, stacked, with the block's name, size, shapes and totals.

    It has ports like a node (one per distinct connection across its boundary) so that the scene can
    attach the edges crossing the boundary to it; they start no connection (the scene checks).
    """

    def __init__(self, block_id: str, colors: CanvasColors) -> None:
        super().__init__()
        self.block_id = block_id
        self.colors = colors
        self.summary = BlockSummary("", 0)
        self.edges: list[Any] = []
        self.inputs: dict[str, PortItem] = {}
        self.outputs: dict[str, PortItem] = {}
        self.flipped = False
        self._height = HEADER_HEIGHT + 10 + BLOCK_LINES * LINE_HEIGHT
        self.setFlags(QGraphicsItem.GraphicsItemFlag.ItemIsMovable
                      | QGraphicsItem.GraphicsItemFlag.ItemIsSelectable
                      | QGraphicsItem.GraphicsItemFlag.ItemSendsGeometryChanges)
        self.setCacheMode(QGraphicsItem.CacheMode.DeviceCoordinateCache)
        self.setZValue(1)
        self.badge = ErrorBadge(self)
        self.badge.setVisible(False)
        self.badge.setPos(NODE_WIDTH - 2, 2)
        self.lock = LockBadge(self)
        self.lock.setPos(2, 2)

    @property
    def node_id(self) -> str:  # what ports and edges ask their item for
        return self.block_id

    @property
    def frozen_state(self) -> str:
        return self.lock.state if self.lock.isVisibleTo(self) else "none"

    @property
    def has_error(self) -> bool:
        return self.badge.isVisibleTo(self)

    def size(self) -> tuple[float, float]:
        return NODE_WIDTH, self._height

    def boundingRect(self) -> QRectF:
        return QRectF(-2, -2, NODE_WIDTH + STACK_OFFSET + 4, self._height + STACK_OFFSET + 4)

    def shape(self) -> QPainterPath:
        path = QPainterPath()
        path.addRoundedRect(QRectF(0, 0, NODE_WIDTH + STACK_OFFSET, self._height + STACK_OFFSET), CORNER, CORNER)
        return path

    # -- ports -------------------------------------------------------------

    def set_ports(self, inputs: list[str], outputs: list[str]) -> bool:
        """Make one port per key (a distinct connection across the boundary); True if they changed."""
        if list(self.inputs) == inputs and list(self.outputs) == outputs:
            return False
        self.prepareGeometryChange()
        for port in [*self.inputs.values(), *self.outputs.values()]:
            port.setParentItem(None)
            if port.scene() is not None:
                port.scene().removeItem(port)
        self.inputs = {key: self._port(key, INPUT) for key in inputs}
        self.outputs = {key: self._port(key, OUTPUT) for key in outputs}
        ports = max(len(inputs), len(outputs), 1)
        self._height = max(HEADER_HEIGHT + 10 + BLOCK_LINES * LINE_HEIGHT, HEADER_HEIGHT + 8 + ports * PORT_SPACING)
        self._place_ports()
        return True

    def _place_ports(self) -> None:
        left, right = (NODE_WIDTH, 0.0) if self.flipped else (0.0, NODE_WIDTH)
        for column, x in ((self.inputs, left), (self.outputs, right)):
            top = HEADER_HEIGHT + (self._height - HEADER_HEIGHT - len(column) * PORT_SPACING) / 2
            for i, port in enumerate(column.values()):
                port.setPos(x, top + (i + 0.5) * PORT_SPACING)
        self.update()

    def set_flipped(self, flipped: bool) -> bool:
        """Inputs on the right, outputs on the left (a block in a backwards row), or back; True if it changed."""
        if flipped == self.flipped:
            return False
        self.flipped = flipped
        self._place_ports()
        for edge in self.edges:
            edge.update_path()
        return True

    def _port(self, key: str, side: str) -> PortItem:
        port = PortItem(self, key, side)  # type: ignore[arg-type]  # a port asks only what a node also has
        port.setCursor(Qt.CursorShape.ArrowCursor)  # a block's port is not where a connection starts
        return port

    def port(self, key: str, side: str) -> PortItem:
        return (self.inputs if side == INPUT else self.outputs)[key]

    def port_connected(self, port: PortItem) -> bool:
        return any(edge.source is port or edge.target is port for edge in self.edges)

    # -- state -------------------------------------------------------------

    def set_summary(self, summary: BlockSummary) -> None:
        self.summary = summary
        self.badge.setVisible(bool(summary.errors))
        self.badge.setToolTip("\n".join(summary.errors))
        self.lock.set_state(summary.frozen)
        tip = [f"Block {summary.name}: {summary.layers} layers", f"in {shapes_text(summary.input_shapes)}",
               f"out {shapes_text(summary.output_shapes)}", "Double-click to show its layers"]
        self.setToolTip("\n".join(summary.errors) if summary.errors else "\n".join(tip))
        self.update()

    def mouseDoubleClickEvent(self, event: QGraphicsSceneMouseEvent) -> None:
        request = getattr(self.scene(), "block_collapse_requested", None)
        if request is not None:
            request.emit(self.block_id, False)
        event.accept()

    # -- drawing -----------------------------------------------------------

    def paint(self, painter: QPainter, option: QStyleOptionGraphicsItem, widget: QWidget | None = None) -> None:
        colors, summary = self.colors, self.summary
        painter.setRenderHint(QPainter.RenderHint.Antialiasing)
        painter.setRenderHint(QPainter.RenderHint.TextAntialiasing)
        if self.isSelected():
            border = QPen(QColor(colors.selection), 2.5)
        elif summary.errors:
            border = QPen(QColor(colors.error), 2.2)
        else:
            border = QPen(QColor(colors.node_border), 1.2)
        # The stack: a second card peeking out below and to the right.
        behind = QPainterPath()
        behind.addRoundedRect(QRectF(STACK_OFFSET, STACK_OFFSET, NODE_WIDTH, self._height), CORNER, CORNER)
        painter.fillPath(behind, QColor(colors.node_fill))
        painter.setPen(QPen(QColor(colors.node_border), 1.2))
        painter.drawPath(behind)

        outline = QPainterPath()
        outline.addRoundedRect(QRectF(0, 0, NODE_WIDTH, self._height), CORNER, CORNER)
        zoom = QStyleOptionGraphicsItem.levelOfDetailFromTransform(painter.worldTransform())
        title_font = NodeItem.title_font(QFont(painter.font()), zoom)
        title = f"{BLOCK_GLYPH} {summary.name}"
        if title_font.pixelSize() > HEADER_TITLE_PX:  # zoomed far out: the name, large, on the block colour
            painter.fillPath(outline, QColor(BLOCK_HEADER))
            painter.setPen(border)
            painter.drawPath(outline)
            painter.setFont(title_font)
            painter.setPen(QColor("white"))
            box = QRectF(8, 2, NODE_WIDTH - 16, self._height - 4)
            text = QFontMetricsF(title_font).elidedText(title, Qt.TextElideMode.ElideRight, box.width())
            painter.drawText(box, Qt.AlignmentFlag.AlignCenter, text)
            return
        painter.fillPath(outline, QColor(colors.node_fill))
        header = QPainterPath()
        header.addRect(QRectF(0, 0, NODE_WIDTH, HEADER_HEIGHT))
        painter.fillPath(outline.intersected(header), QColor(BLOCK_HEADER))
        painter.setPen(border)
        painter.setBrush(Qt.BrushStyle.NoBrush)
        painter.drawPath(outline)

        base = QFont(painter.font())
        painter.setFont(title_font)
        painter.setPen(QColor("white"))
        left = 22.0 if self.lock.isVisibleTo(self) else 10.0  # the lock badge sits on the header's left
        title_rect = QRectF(left, 0, NODE_WIDTH - left - 22, HEADER_HEIGHT)
        text = QFontMetricsF(title_font).elidedText(title, Qt.TextElideMode.ElideRight, title_rect.width())
        painter.drawText(title_rect, Qt.AlignmentFlag.AlignVCenter | Qt.AlignmentFlag.AlignLeft, text)

        small = QFont(base)
        small.setPointSizeF(8)
        metrics = QFontMetricsF(small)
        painter.setFont(small)
        width = NODE_WIDTH - 20
        layers = f"Block · {summary.layers} layer{'s' if summary.layers != 1 else ''}"
        lines: list[tuple[str, str]] = [(layers, colors.node_subtext),
                                        (f"in {shapes_text(summary.input_shapes)}", colors.node_subtext)]
        if summary.errors:
            lines.append((summary.errors[0], colors.error))  # elided here; all of them in the badge's tooltip
            lines.append(("", colors.node_subtext))
        elif summary.blocked:
            lines.append(("→ ?", colors.node_subtext))
            lines.append(("", colors.node_subtext))
        else:
            lines.append((f"→ {shapes_text(summary.output_shapes)}", colors.node_text))
            counts = f"{format_count(summary.params)} params"
            if summary.macs:
                counts += f" · {format_count(summary.macs)} MACs"
            lines.append((counts, colors.node_subtext))
        y = HEADER_HEIGHT + 5
        for line, color in lines:
            painter.setPen(QColor(color))
            line = metrics.elidedText(line, Qt.TextElideMode.ElideRight, width)
            painter.drawText(QRectF(10, y, width, LINE_HEIGHT), Qt.AlignmentFlag.AlignVCenter, line)
            y += LINE_HEIGHT


class BlockFrame(QGraphicsObject):
    """The light rounded frame behind an expanded block's nodes, labelled with its name.

    It follows the nodes (each surrounded, joined along their connections) rather than their bounding
    rectangle, so that a layer of another block that sits among them in a snake layout stays outside.
    Only the label takes the mouse (a click selects the block, its button or a double-click collapses
    it); the rest of the frame lets clicks and rubber bands through to the canvas.
    """

    def __init__(self, block_id: str, colors: CanvasColors) -> None:
        super().__init__()
        self.block_id = block_id
        self.colors = colors
        self.name = ""
        self.frozen = "none"
        self._rect = QRectF()
        self._path = QPainterPath()
        self._anchor = QPointF()  # the label's top-left: above the block's first node
        self.setFlags(QGraphicsItem.GraphicsItemFlag.ItemIsSelectable)
        self.setZValue(-1)
        self.setToolTip("Click to select the block; double-click or ⊟ to collapse it")

    def set_frame(self, members: list[QRectF], links: list[tuple[int, int]], name: str,
                  frozen: str = "none") -> None:
        """Surround the ``members`` (the nodes' scene rectangles, the block's first node first), joined along
        ``links`` (pairs of indices: the block's inner edges), and show ``name`` above the first."""
        path = QPainterPath()
        path.setFillRule(Qt.FillRule.WindingFill)
        for rect in members:
            path.addRoundedRect(rect.adjusted(-FRAME_MARGIN, -FRAME_MARGIN, FRAME_MARGIN, FRAME_MARGIN), 10, 10)
        for a, b in links:
            path.addRect(_link_band(members[a], members[b]))
        anchor = QPointF()
        if members:
            first = members[0]
            anchor = QPointF(first.left() - FRAME_MARGIN, first.top() - FRAME_MARGIN - FRAME_LABEL_HEIGHT)
            path.addRoundedRect(QRectF(anchor, QPointF(first.right() + FRAME_MARGIN, first.top())), 10, 10)
        path = path.simplified()
        if path != self._path or anchor != self._anchor:
            self.prepareGeometryChange()
            self._path, self._anchor = path, anchor
            self._rect = path.boundingRect()
        self.name, self.frozen = name, frozen
        self.update()

    def frame_rect(self) -> QRectF:
        return QRectF(self._rect)

    def label_rect(self) -> QRectF:
        font = self._label_font()
        lock = {"all": " · frozen", "some": " · partly frozen"}.get(self.frozen, "")
        width = QFontMetricsF(font).horizontalAdvance(f"{BLOCK_GLYPH} {self.name}{lock}") + 40
        return QRectF(self._anchor.x(), self._anchor.y(), min(width, max(self._rect.width(), 80.0)),
                      FRAME_LABEL_HEIGHT)

    def collapse_button_rect(self) -> QRectF:
        label = self.label_rect()
        return QRectF(label.right() - 22, label.top() + 3, 16, 16)

    def _label_font(self) -> QFont:
        font = QFont()
        font.setBold(True)
        font.setPixelSize(12)
        return font

    def boundingRect(self) -> QRectF:
        return self._rect.adjusted(-2, -2, 2, 2)

    def shape(self) -> QPainterPath:
        path = QPainterPath()
        path.addRect(self.label_rect())
        return path

    def set_colors(self, colors: CanvasColors) -> None:
        self.colors = colors
        self.update()

    def mousePressEvent(self, event: QGraphicsSceneMouseEvent) -> None:
        if event.button() == Qt.MouseButton.LeftButton and self.collapse_button_rect().contains(event.pos()):
            self._request_collapse()
            event.accept()
            return
        super().mousePressEvent(event)

    def mouseDoubleClickEvent(self, event: QGraphicsSceneMouseEvent) -> None:
        self._request_collapse()
        event.accept()

    def _request_collapse(self) -> None:
        request = getattr(self.scene(), "block_collapse_requested", None)
        if request is not None:
            request.emit(self.block_id, True)

    def paint(self, painter: QPainter, option: QStyleOptionGraphicsItem, widget: QWidget | None = None) -> None:
        colors = self.colors
        painter.setRenderHint(QPainter.RenderHint.Antialiasing)
        accent = QColor(colors.selection if self.isSelected() else BLOCK_HEADER)
        # The node text colour, faint: a tint that shows on the light and on the dark canvas alike.
        fill = QColor(colors.node_subtext)
        fill.setAlpha(24)
        outline = accent if self.isSelected() else QColor(colors.node_subtext)
        painter.setPen(QPen(outline, 2.0 if self.isSelected() else 1.2, Qt.PenStyle.DashLine))
        painter.setBrush(fill)
        painter.drawPath(self._path)
        label = self.label_rect()
        tab = QPainterPath()
        tab.addRoundedRect(label, 8, 8)
        painter.fillPath(tab, accent)
        painter.setFont(self._label_font())
        painter.setPen(QColor("white"))
        lock = {"all": " · frozen", "some": " · partly frozen"}.get(self.frozen, "")
        text_rect = label.adjusted(8, 0, -26, 0)
        text = QFontMetricsF(painter.font()).elidedText(f"{BLOCK_GLYPH} {self.name}{lock}",
                                                        Qt.TextElideMode.ElideRight, text_rect.width())
        painter.drawText(text_rect, Qt.AlignmentFlag.AlignVCenter | Qt.AlignmentFlag.AlignLeft, text)
        button = self.collapse_button_rect()
        painter.setPen(QPen(QColor("white"), 1.4))
        painter.setBrush(Qt.BrushStyle.NoBrush)
        painter.drawRoundedRect(button.adjusted(2, 2, -2, -2), 2, 2)
        middle = button.center()
        painter.drawLine(QPointF(middle.x() - 3.5, middle.y()), QPointF(middle.x() + 3.5, middle.y()))


def _link_band(a: QRectF, b: QRectF) -> QRectF:
    """The band joining two connected nodes of an expanded block: as tall (or wide) as the two share
    across the flow, so that neighbours in a row or a column make one solid frame."""
    start, end = a.center(), b.center()
    if abs(end.x() - start.x()) >= abs(end.y() - start.y()):  # side by side: join along x
        top, bottom = max(a.top(), b.top()), min(a.bottom(), b.bottom())
        if bottom - top < 2 * FRAME_LINK:
            top, bottom = (start.y() + end.y()) / 2 - FRAME_LINK, (start.y() + end.y()) / 2 + FRAME_LINK
        return QRectF(QPointF(min(start.x(), end.x()), top - FRAME_MARGIN),
                      QPointF(max(start.x(), end.x()), bottom + FRAME_MARGIN))
    left, right = max(a.left(), b.left()), min(a.right(), b.right())
    if right - left < 2 * FRAME_LINK:
        left, right = (start.x() + end.x()) / 2 - FRAME_LINK, (start.x() + end.x()) / 2 + FRAME_LINK
    return QRectF(QPointF(left - FRAME_MARGIN, min(start.y(), end.y())),
                  QPointF(right + FRAME_MARGIN, max(start.y(), end.y())))

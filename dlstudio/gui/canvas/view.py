"""The canvas view: zoom around the cursor, pan (middle or space drag), rubber band, dotted grid, drops.

A layer dropped from the palette becomes a signal with the scene position;
the main window turns it into an undo command.
"""

from __future__ import annotations

import math

from PySide6.QtCore import QPointF, QRectF, Qt, Signal
from PySide6.QtGui import (QColor, QDragEnterEvent, QDragMoveEvent, QDropEvent, QKeyEvent, QMouseEvent, QPainter,
                           QPen, QResizeEvent, QWheelEvent)
from PySide6.QtWidgets import QGraphicsView, QWidget

from dlstudio.gui.theme import CanvasColors, LIGHT_CANVAS

LAYER_MIME_TYPE = "application/x-dlstudio-layer"
SAVED_BLOCK_MIME_TYPE = "application/x-dlstudio-saved-block"  # carries the saved block's file path
GRID = 24.0
MIN_SCALE, MAX_SCALE = 0.15, 3.0
FIT_MARGIN = 40.0  # scene px of room around the network when fitted


class GraphView(QGraphicsView):
    """A QGraphicsView tuned for a node editor of a few hundred items."""

    layer_dropped = Signal(str, QPointF)  # type id, scene position
    saved_block_dropped = Signal(str, QPointF)  # the saved block's file, scene position

    def __init__(self, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.colors: CanvasColors = LIGHT_CANVAS
        self._pan_origin: QPointF | None = None
        self._space_held = False
        self.locked_message = ""  # shown as a banner over a dimmed canvas while the graph is read-only
        # Until the person zooms or pans, the view keeps the whole network in sight: it fits again
        # whenever the viewport changes size (docks settling after the window opens, the window resized).
        self.auto_fit = True
        self.setRenderHint(QPainter.RenderHint.Antialiasing)
        self.setRenderHint(QPainter.RenderHint.TextAntialiasing)
        # Smart updates repaint only what changed; the background (grid) is cached and scrolled.
        self.setViewportUpdateMode(QGraphicsView.ViewportUpdateMode.SmartViewportUpdate)
        self.setCacheMode(QGraphicsView.CacheModeFlag.CacheBackground)
        self.setOptimizationFlag(QGraphicsView.OptimizationFlag.DontSavePainterState, True)
        self.setTransformationAnchor(QGraphicsView.ViewportAnchor.AnchorUnderMouse)
        self.setResizeAnchor(QGraphicsView.ViewportAnchor.AnchorViewCenter)
        self.setDragMode(QGraphicsView.DragMode.RubberBandDrag)
        self.setAcceptDrops(True)
        self.setFocusPolicy(Qt.FocusPolicy.StrongFocus)

    def set_colors(self, colors: CanvasColors) -> None:
        self.colors = colors
        self.resetCachedContent()
        self.viewport().update()

    def set_locked_message(self, message: str) -> None:
        """Show ``message`` over a dimmed canvas and refuse drops; an empty message unlocks."""
        self.locked_message = message
        self.viewport().update()

    # -- zoom --------------------------------------------------------------

    def zoom_level(self) -> float:
        return self.transform().m11()

    def zoom_by(self, factor: float) -> None:
        """Zoom around the anchor by ``factor``, within [MIN_SCALE, MAX_SCALE]; the person now steers the view."""
        self.auto_fit = False
        current = self.zoom_level()
        if not (math.isfinite(current) and current > 0):  # a broken transform: start again from 100%
            self.resetTransform()
            current = 1.0
        if isinstance(factor, bool) or not isinstance(factor, (int, float)) or not (
                math.isfinite(factor) and factor > 0):
            return
        target = min(MAX_SCALE, max(MIN_SCALE, current * factor))
        factor = target / current
        if not math.isclose(factor, 1.0):
            self.scale(factor, factor)

    def fit_all(self, max_scale: float = 1.0) -> None:
        """Show every item, never magnified beyond ``max_scale`` (100% unless told otherwise).

        Safe as a slot of ``QAction.triggered``, whose ``checked`` argument (a bool) must not
        become the scale: a bool, or a value that is not a positive number, means the default.
        Resumes fitting on every resize of the viewport, until the next zoom or pan.
        """
        if isinstance(max_scale, bool) or not isinstance(max_scale, (int, float)) or not (
                math.isfinite(max_scale) and max_scale > 0):
            max_scale = 1.0
        max_scale = max(float(max_scale), MIN_SCALE)
        self.auto_fit = True
        scene = self.scene()
        if scene is None:
            return
        content = getattr(scene, "content_rect", None)  # collapsed blocks hide nodes that take no room
        bounds = content() if content is not None else scene.itemsBoundingRect()
        if bounds.isEmpty():
            # An empty canvas: a scene rect of the viewport's size around the origin (the view keeps the
            # rect it was given for the previous network, which would otherwise show scroll bars).
            size = self.viewport().size()
            self.setSceneRect(QRectF(-size.width() / 2, -size.height() / 2, size.width(), size.height()))
            self.resetTransform()
            self.centerOn(0, 0)
            return
        bounds = bounds.adjusted(-FIT_MARGIN, -FIT_MARGIN, FIT_MARGIN, FIT_MARGIN)
        self.setSceneRect(bounds)  # no scroll bars for empty space; pan_by grows it when needed
        self.fitInView(bounds, Qt.AspectRatioMode.KeepAspectRatio)
        zoom = self.zoom_level()
        if not (math.isfinite(zoom) and zoom > 0) or zoom > max_scale:
            self.resetTransform()
            self.scale(max_scale, max_scale)
            self.centerOn(bounds.center())
        elif zoom < MIN_SCALE:
            self.resetTransform()
            self.scale(MIN_SCALE, MIN_SCALE)
            self.centerOn(bounds.center())

    def resizeEvent(self, event: QResizeEvent) -> None:
        super().resizeEvent(event)
        if self.auto_fit and self.scene() is not None:
            self.fit_all()

    def wheelEvent(self, event: QWheelEvent) -> None:
        steps = event.angleDelta().y() / 120.0
        if steps:
            self.zoom_by(1.15 ** steps)
        event.accept()

    def center_scene_pos(self) -> QPointF:
        return self.mapToScene(self.viewport().rect().center())

    # -- pan ---------------------------------------------------------------

    def keyPressEvent(self, event: QKeyEvent) -> None:
        if event.key() == Qt.Key.Key_Space and not event.isAutoRepeat():
            self._space_held = True
            self.viewport().setCursor(Qt.CursorShape.OpenHandCursor)
            event.accept()
            return
        super().keyPressEvent(event)

    def keyReleaseEvent(self, event: QKeyEvent) -> None:
        if event.key() == Qt.Key.Key_Space and not event.isAutoRepeat():
            self._space_held = False
            self.viewport().unsetCursor()
            event.accept()
            return
        super().keyReleaseEvent(event)

    def mousePressEvent(self, event: QMouseEvent) -> None:
        if event.button() == Qt.MouseButton.MiddleButton or (
                event.button() == Qt.MouseButton.LeftButton and self._space_held):
            self._pan_origin = event.position()
            self.viewport().setCursor(Qt.CursorShape.ClosedHandCursor)
            event.accept()
            return
        super().mousePressEvent(event)

    def mouseMoveEvent(self, event: QMouseEvent) -> None:
        if self._pan_origin is not None:
            delta = event.position() - self._pan_origin
            self._pan_origin = event.position()
            self.pan_by(-delta.x(), -delta.y())
            event.accept()
            return
        super().mouseMoveEvent(event)

    def mouseReleaseEvent(self, event: QMouseEvent) -> None:
        if self._pan_origin is not None:
            self._pan_origin = None
            if self._space_held:
                self.viewport().setCursor(Qt.CursorShape.OpenHandCursor)
            else:
                self.viewport().unsetCursor()
            event.accept()
            return
        super().mouseReleaseEvent(event)

    def pan_by(self, dx: float, dy: float) -> None:
        """Scroll by a distance in viewport pixels, growing the scene rect so panning is never stuck."""
        self.auto_fit = False
        visible = self.mapToScene(self.viewport().rect()).boundingRect()
        scale = self.zoom_level()
        moved = visible.translated(dx / scale, dy / scale)
        if not self.sceneRect().contains(moved):
            self.setSceneRect(self.sceneRect().united(moved))
        self.horizontalScrollBar().setValue(self.horizontalScrollBar().value() + round(dx))
        self.verticalScrollBar().setValue(self.verticalScrollBar().value() + round(dy))

    def reveal(self, rect: QRectF, margin: float = 40.0) -> None:
        """Scroll (never zoom) so that ``rect`` (scene coordinates) is on screen, growing the scene rect when it
        lies outside it: nodes a fix inserted or a paste placed beyond the fitted view come into sight."""
        if rect.isEmpty():
            return
        wanted = rect.adjusted(-margin, -margin, margin, margin)
        if not self.sceneRect().contains(wanted):
            self.setSceneRect(self.sceneRect().united(wanted))
        visible = self.mapToScene(self.viewport().rect()).boundingRect()
        if not visible.contains(rect):
            self.auto_fit = False
            self.ensureVisible(rect, int(margin), int(margin))

    # -- drops from the palette ------------------------------------------------

    def dragEnterEvent(self, event: QDragEnterEvent) -> None:
        if self.locked_message:
            event.ignore()
            return
        if event.mimeData().hasFormat(LAYER_MIME_TYPE) or event.mimeData().hasFormat(SAVED_BLOCK_MIME_TYPE):
            event.acceptProposedAction()
        else:
            super().dragEnterEvent(event)

    def dragMoveEvent(self, event: QDragMoveEvent) -> None:
        if event.mimeData().hasFormat(LAYER_MIME_TYPE) or event.mimeData().hasFormat(SAVED_BLOCK_MIME_TYPE):
            event.acceptProposedAction()
        else:
            super().dragMoveEvent(event)

    def dropEvent(self, event: QDropEvent) -> None:
        if self.locked_message:
            event.ignore()
            return
        if event.mimeData().hasFormat(SAVED_BLOCK_MIME_TYPE):
            path = bytes(event.mimeData().data(SAVED_BLOCK_MIME_TYPE).data()).decode("utf-8")
            event.acceptProposedAction()
            self.saved_block_dropped.emit(path, self.mapToScene(event.position().toPoint()))
            return
        if not event.mimeData().hasFormat(LAYER_MIME_TYPE):
            super().dropEvent(event)
            return
        type_id = bytes(event.mimeData().data(LAYER_MIME_TYPE).data()).decode("utf-8")
        event.acceptProposedAction()
        self.layer_dropped.emit(type_id, self.mapToScene(event.position().toPoint()))

    # -- background ------------------------------------------------------------

    def drawBackground(self, painter: QPainter, rect: QRectF) -> None:
        painter.fillRect(rect, QColor(self.colors.background))
        step = GRID
        zoom = self.zoom_level()
        if not (math.isfinite(zoom) and zoom > 0):
            return  # nothing sensible to draw on (and the loop below would never end)
        while step * zoom < 12:  # keep dots apart when zoomed out
            step *= 2
        left = math.floor(rect.left() / step) * step
        top = math.floor(rect.top() / step) * step
        points = []
        y = top
        while y < rect.bottom():
            x = left
            while x < rect.right():
                points.append(QPointF(x, y))
                x += step
            y += step
        pen = QPen(QColor(self.colors.grid), 2.0)
        pen.setCosmetic(True)  # dots stay two pixels wide at any zoom
        painter.setPen(pen)
        painter.drawPoints(points)

    def drawForeground(self, painter: QPainter, rect: QRectF) -> None:
        if not self.locked_message:
            return
        # Drawn in viewport pixels, so the banner stays put and readable at any zoom or scroll.
        painter.save()
        painter.resetTransform()
        area = QRectF(self.viewport().rect())
        veil = QColor(self.colors.background)
        veil.setAlpha(110)
        painter.fillRect(area, veil)
        font = painter.font()
        font.setBold(True)
        painter.setFont(font)
        metrics = painter.fontMetrics()
        width = metrics.horizontalAdvance(self.locked_message) + 32
        banner = QRectF(area.center().x() - width / 2, 10, width, metrics.height() + 14)
        painter.setRenderHint(QPainter.RenderHint.Antialiasing)
        painter.setPen(Qt.PenStyle.NoPen)
        painter.setBrush(QColor(self.colors.selection))
        painter.drawRoundedRect(banner, 6, 6)
        painter.setPen(QColor("#ffffff"))  # white on the accent colour reads in both themes
        painter.drawText(banner, Qt.AlignmentFlag.AlignCenter, self.locked_message)
        painter.restore()

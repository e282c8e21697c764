"""The drawing pad of the Classify view: draw with the mouse, and the model's answer follows the pen.

The canvas keeps its own picture at a fixed resolution (:data:`CANVAS_PIXELS`
a side) and shows it scaled to the widget, so a stroke means the same to the
model whatever the window's size. It is drawn in the training data's
polarity (white on black for the digits and MNIST), so that what the person
draws is what the model saw, not something inverted behind their back.

While a stroke is drawn the picture is classified at most every
:data:`THROTTLE_MS` milliseconds, on the session's worker thread (one
computation in flight; a change meanwhile is classified when it comes back),
and once more when the pen is lifted. Beside the canvas: the exact model
input, what the recipe did to the drawing ("cropped to the digit, reduced to
8×8…"), the top class in large type and the top-k bars.
"""

from __future__ import annotations

from typing import Any

import numpy as np
from PySide6.QtCore import QPointF, QRectF, QSize, Qt, QTimer, Signal, Slot
from PySide6.QtGui import (
    QColor, QFontMetrics, QImage, QKeySequence, QPainter, QPainterPath, QPalette, QPen, QShortcut,
)
from PySide6.QtWidgets import QHBoxLayout, QLabel, QPushButton, QSizePolicy, QSlider, QVBoxLayout, QWidget

from dlstudio.gui.inspect.classify_view import DEFAULT_TOP_K, ProbabilityBars, top_classes
from dlstudio.gui.inspect.model_session import ModelSession
from dlstudio.gui.inspect.thumbnails import qimage_to_array, raw_to_qimage, scaled_pixmap
from dlstudio.gui.worker import BackgroundTask, TaskContext

CANVAS_PIXELS = 280         # the picture's own size: ten times MNIST's, so strokes stay smooth
DEFAULT_PEN = 22            # in picture pixels: a marker's stroke on a 28×28 digit is about 2 pixels
PEN_RANGE = (6, 48)
THROTTLE_MS = 100
MODEL_PICTURE = 96
HINT = "Draw a digit with the mouse. Delete clears."


def _classify_drawing(context: TaskContext, trained: Any, pixels: np.ndarray) -> dict[str, Any]:
    """The drawing through the run's recipe and the model: model input, all class probabilities, the steps."""
    from dlstudio.core.inspect.input_recipe import describe

    prepared = trained.prepare(pixels)
    x = trained.preprocessor.normalize(prepared.raw).unsqueeze(0)
    found = {"raw": prepared.raw.numpy(), "steps": prepared.steps, "description": describe(prepared.steps)}
    if trained.task == "reconstruction":  # an autoencoder answers with a picture: what it makes of the drawing
        import torch

        with torch.no_grad():
            output = trained.model(x.to(trained.device)).float().cpu()
        error = float(torch.mean((output - x.cpu()) ** 2))
        picture = trained.preprocessor.denormalize(output).clamp(0.0, 1.0)[0]
        return {**found, "probabilities": None, "reconstruction": picture.numpy(), "error": error}
    [prediction] = trained.classify(x, top_k=max(1, len(trained.class_names)))
    return {**found, "probabilities": prediction.probabilities}


class DrawingCanvas(QWidget):
    """A square the person draws on with round strokes; ``changed`` while drawing, ``stroke_finished`` after."""

    changed = Signal()
    stroke_finished = Signal()

    def __init__(self, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.setObjectName("DrawingCanvas")
        self.pen_width = DEFAULT_PEN
        self.ink = QColor("white")
        self.paper = QColor("black")
        self.picture = QImage(CANVAS_PIXELS, CANVAS_PIXELS, QImage.Format.Format_Grayscale8)
        self.picture.fill(self.paper)
        self.empty = True
        self._last: QPointF | None = None
        self.setSizePolicy(QSizePolicy.Policy.Expanding, QSizePolicy.Policy.Expanding)
        self.setMinimumSize(140, 140)
        self.setCursor(Qt.CursorShape.CrossCursor)
        self.setFocusPolicy(Qt.FocusPolicy.StrongFocus)  # so that Delete reaches the pad after drawing
        self.setToolTip(HINT)

    @property
    def light_on_dark(self) -> bool:
        return self.paper == QColor("black")

    def set_light_on_dark(self, light_on_dark: bool) -> None:
        """Draw white on black (the digits, MNIST) or black on white, as the training data looks; clears."""
        self.ink, self.paper = (QColor("white"), QColor("black")) if light_on_dark else (QColor("black"),
                                                                                         QColor("white"))
        self.clear()

    def clear(self) -> None:
        self.picture.fill(self.paper)
        self.empty = True
        self._last = None
        self.update()
        self.changed.emit()

    def pixels(self) -> np.ndarray:
        """The drawing as (H, W) uint8 grey pixels."""
        return qimage_to_array(self.picture)

    # -- geometry: the picture is shown as the largest centred square -------------------------

    def _square(self) -> QRectF:
        side = min(self.width(), self.height())
        return QRectF((self.width() - side) / 2, (self.height() - side) / 2, side, side)

    def _to_picture(self, point: QPointF) -> QPointF:
        square = self._square()
        scale = CANVAS_PIXELS / max(1.0, square.width())
        return QPointF((point.x() - square.left()) * scale, (point.y() - square.top()) * scale)

    def sizeHint(self) -> QSize:
        return QSize(320, 320)

    # -- drawing ----------------------------------------------------------------------------

    def _stroke_to(self, point: QPointF) -> None:
        painter = QPainter(self.picture)
        painter.setRenderHint(QPainter.RenderHint.Antialiasing)
        pen = QPen(self.ink, self.pen_width, Qt.PenStyle.SolidLine, Qt.PenCapStyle.RoundCap,
                   Qt.PenJoinStyle.RoundJoin)
        painter.setPen(pen)
        if self._last is None:
            painter.drawPoint(point)  # a click leaves a dot, as a pen does
        else:
            path = QPainterPath(self._last)
            path.lineTo(point)
            painter.drawPath(path)
        painter.end()
        self._last = point
        self.empty = False
        self.update()
        self.changed.emit()

    def mousePressEvent(self, event: Any) -> None:
        if event.button() == Qt.MouseButton.LeftButton:
            self._last = None
            self._stroke_to(self._to_picture(event.position()))
            event.accept()
            return
        super().mousePressEvent(event)

    def mouseMoveEvent(self, event: Any) -> None:
        if event.buttons() & Qt.MouseButton.LeftButton and self._last is not None:
            self._stroke_to(self._to_picture(event.position()))
            event.accept()
            return
        super().mouseMoveEvent(event)

    def mouseReleaseEvent(self, event: Any) -> None:
        if event.button() == Qt.MouseButton.LeftButton and self._last is not None:
            self._stroke_to(self._to_picture(event.position()))
            self._last = None
            self.stroke_finished.emit()
            event.accept()
            return
        super().mouseReleaseEvent(event)

    def paintEvent(self, event: Any) -> None:
        painter = QPainter(self)
        painter.setRenderHint(QPainter.RenderHint.SmoothPixmapTransform)
        painter.setRenderHint(QPainter.RenderHint.Antialiasing)
        square = self._square()
        clip = QPainterPath()
        clip.addRoundedRect(square, 10, 10)
        painter.setClipPath(clip)
        painter.drawImage(square, self.picture)
        painter.setClipping(False)
        painter.setPen(QPen(self.palette().color(QPalette.ColorRole.Mid), 1.0))
        painter.setBrush(Qt.BrushStyle.NoBrush)
        painter.drawRoundedRect(square.adjusted(0.5, 0.5, -0.5, -0.5), 10, 10)
        if self.empty:
            hint = QColor(self.ink)
            hint.setAlpha(110)
            painter.setPen(hint)
            painter.drawText(square, Qt.AlignmentFlag.AlignCenter, "Draw here")
        painter.end()


class DrawingPad(QWidget):
    """The canvas with its pen width and Clear, and the model's live answer beside it."""

    predicted = Signal(object)  # the worker's result: {"raw", "probabilities", "steps", "description"}

    def __init__(self, session: ModelSession, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.session = session
        self.class_names: list[str] = []
        self.top_k = DEFAULT_TOP_K
        self.probabilities: np.ndarray | None = None
        self._task: BackgroundTask | None = None
        self._stale = False  # the drawing changed while its previous version was being classified
        self.setObjectName("DrawingPad")

        self.canvas = DrawingCanvas()
        self.canvas.changed.connect(self._on_canvas_changed)
        self.canvas.stroke_finished.connect(self._classify_now)
        self.pen_slider = QSlider(Qt.Orientation.Horizontal)
        self.pen_slider.setRange(*PEN_RANGE)
        self.pen_slider.setValue(DEFAULT_PEN)
        self.pen_slider.setToolTip("Pen width")
        self.pen_slider.valueChanged.connect(self._on_pen_changed)
        self.pen_slider.setFixedWidth(64)  # narrow: the Inspect dock beside Runs fits a 700-pixel window
        self.clear_button = QPushButton("Clear")
        self.clear_button.setToolTip("Clear the drawing (Delete)")
        self.clear_button.clicked.connect(self.clear)
        for key in (QKeySequence(Qt.Key.Key_Delete), QKeySequence(Qt.Key.Key_Backspace)):
            shortcut = QShortcut(key, self)
            shortcut.setContext(Qt.ShortcutContext.WidgetWithChildrenShortcut)
            shortcut.activated.connect(self.clear)
        controls = QVBoxLayout()  # beside the canvas: the dock is often short, rarely narrow
        controls.setSpacing(4)
        controls.addWidget(QLabel("Pen"))
        controls.addWidget(self.pen_slider)
        controls.addStretch(1)
        controls.addWidget(self.clear_button)
        self.drawing = QWidget()  # the canvas and its controls, kept about as wide as the canvas is tall
        drawing = QHBoxLayout(self.drawing)
        drawing.setContentsMargins(0, 0, 0, 0)
        drawing.setSpacing(8)
        drawing.addWidget(self.canvas, 1)
        drawing.addLayout(controls)

        # What the model saw, then its answer, what was done to the drawing and the top-k bars.
        self.model_image = QLabel()
        self.model_image.setObjectName("DrawingModelInput")
        self.model_image.setFixedSize(MODEL_PICTURE, MODEL_PICTURE)
        self.model_image.setAlignment(Qt.AlignmentFlag.AlignCenter)
        self.model_caption = QLabel("model input")
        self.model_caption.setAlignment(Qt.AlignmentFlag.AlignCenter)
        self.steps = QLabel()
        self.steps.setWordWrap(True)
        for quiet in (self.model_caption, self.steps):
            quiet.setForegroundRole(QPalette.ColorRole.PlaceholderText)
            small = quiet.font()
            small.setPointSizeF(small.pointSizeF() * 0.85)
            quiet.setFont(small)
        seen = QVBoxLayout()
        seen.setSpacing(2)
        seen.addWidget(self.model_image, 0, Qt.AlignmentFlag.AlignHCenter)
        seen.addWidget(self.model_caption)
        seen.addStretch(1)

        self.answer = QLabel("–")
        self.answer.setObjectName("DrawingAnswer")
        answer_font = self.answer.font()
        answer_font.setPointSizeF(answer_font.pointSizeF() * 2.6)
        answer_font.setBold(True)
        self.answer.setFont(answer_font)
        self.answer.setMinimumWidth(QFontMetrics(answer_font).horizontalAdvance("00"))
        self.confidence = QLabel("Draw to see what the model thinks")
        self.confidence.setWordWrap(True)
        self.confidence.setForegroundRole(QPalette.ColorRole.PlaceholderText)
        self.reconstruction_image = QLabel()  # an autoencoder's output, in the answer's place
        self.reconstruction_image.setObjectName("DrawingReconstruction")
        self.reconstruction_image.setFixedSize(MODEL_PICTURE, MODEL_PICTURE)
        self.reconstruction_image.hide()
        headline = QHBoxLayout()
        headline.setSpacing(10)
        headline.addWidget(self.answer, 0, Qt.AlignmentFlag.AlignVCenter)
        headline.addWidget(self.reconstruction_image, 0, Qt.AlignmentFlag.AlignVCenter)
        headline.addWidget(self.confidence, 1, Qt.AlignmentFlag.AlignVCenter)
        self.bars = ProbabilityBars()
        self.bars.hide()
        answer = QVBoxLayout()
        answer.setSpacing(6)
        answer.addLayout(headline)
        answer.addWidget(self.steps)
        answer.addWidget(self.bars)
        answer.addStretch(1)

        layout = QHBoxLayout(self)
        layout.setContentsMargins(4, 8, 4, 4)
        layout.setSpacing(18)
        layout.addWidget(self.drawing, 3)
        layout.addLayout(seen, 0)
        layout.addLayout(answer, 3)

        self._throttle = QTimer(self)
        self._throttle.setSingleShot(True)
        self._throttle.setInterval(THROTTLE_MS)
        self._throttle.timeout.connect(self._classify_now)
        self._show_nothing()

    def resizeEvent(self, event: Any) -> None:
        super().resizeEvent(event)
        # The canvas is a square: a column wider than the pad is tall would only hold empty space.
        controls = max(self.clear_button.sizeHint().width(), self.pen_slider.minimumSizeHint().width()) + 8
        margins = self.layout().contentsMargins()
        side = self.height() - margins.top() - margins.bottom()
        self.drawing.setMaximumWidth(max(self.canvas.minimumWidth(), side) + controls)

    # -- public ---------------------------------------------------------------------------------

    def set_model(self, class_names: list[str], light_on_dark: bool, takes_images: bool = True) -> None:
        """A model was loaded: draw in its training data's polarity, and answer with its classes.

        A model of table rows cannot read a drawing: the pad says so and takes no strokes.
        """
        self.class_names = list(class_names)
        self._task = None
        self.drawing.setEnabled(takes_images)
        if takes_images and light_on_dark == self.canvas.light_on_dark and not self.canvas.empty:
            self._classify_now()  # the same paper (a newer run of the project): the drawing stays, asked again
            return
        self.canvas.set_light_on_dark(light_on_dark)  # clears, and shows the empty answer
        if not takes_images:
            self.confidence.setText("This model reads table rows, not pictures: there is nothing to draw for it.")

    def set_top_k(self, top_k: int) -> None:
        self.top_k = top_k
        if self.probabilities is not None:
            self._show_bars()

    def clear(self) -> None:
        """Empty the canvas and the answer."""
        self.canvas.clear()

    @Slot(int)
    def _on_pen_changed(self, width: int) -> None:
        self.canvas.pen_width = width  # the next strokes; what is drawn stays

    # -- classification ---------------------------------------------------------------------------

    @Slot()
    def _on_canvas_changed(self) -> None:
        if self.canvas.empty:
            self._throttle.stop()
            self._stale = False
            self._show_nothing()
            return
        if not self._throttle.isActive():
            self._throttle.start()  # at most one classification per interval while the pen moves

    @Slot()
    def _classify_now(self) -> None:
        self._throttle.stop()
        if self.canvas.empty or not self.session.is_loaded:
            return
        if self._task is not None:
            self._stale = True  # classified again when the current one comes back
            return
        self._stale = False
        task = self.session.submit(_classify_drawing, self.canvas.pixels())
        task.finished.connect(self._on_task_finished)
        task.failed.connect(self._on_task_failed)
        task.done.connect(self._on_task_done)
        self._task = task

    @Slot(object)
    def _on_task_finished(self, result: dict[str, Any]) -> None:
        if self.sender() is not self._task or self.canvas.empty:
            return
        picture = raw_to_qimage(result["raw"])
        self.model_image.setPixmap(scaled_pixmap(picture, MODEL_PICTURE))
        self.model_caption.setText(f"model input {picture.width()}×{picture.height()}")
        self.steps.setText(result["description"])
        if result.get("reconstruction") is not None:
            self._show_reconstruction(result["reconstruction"], float(result["error"]))
        else:
            self.probabilities = np.asarray(result["probabilities"])
            self.reconstruction_image.hide()
            self.answer.show()
            self._show_bars()
        self.predicted.emit(result)

    def _show_reconstruction(self, raw: np.ndarray, error: float) -> None:
        """An autoencoder's answer: its output as a picture beside the input, and how far it is from it."""
        self.probabilities = None
        self.bars.hide()
        self.answer.hide()
        self.reconstruction_image.setPixmap(scaled_pixmap(raw_to_qimage(raw), MODEL_PICTURE))
        self.reconstruction_image.show()
        self.confidence.setText(f"What the network rebuilds from it (mean squared error {error:.4f})")

    @Slot(str)
    def _on_task_failed(self, message: str) -> None:
        if self.sender() is self._task:
            self.confidence.setText(f"Could not classify the drawing: {message}")

    @Slot()
    def _on_task_done(self) -> None:
        if self.sender() is self._task:
            self._task = None
            if self._stale:
                self._classify_now()

    def _show_bars(self) -> None:
        assert self.probabilities is not None
        rows = top_classes(self.probabilities, self.class_names, self.top_k)
        self.bars.set_rows(rows)
        self.bars.show()
        label, probability = rows[0]
        self.answer.setText(label)
        self.confidence.setText(f"{probability:.1%} sure")

    def _show_nothing(self) -> None:
        if not self.drawing.isEnabled():
            return  # keeps saying why there is nothing to draw
        self.probabilities = None
        self.bars.set_rows([])
        self.bars.hide()
        self.reconstruction_image.clear()
        self.reconstruction_image.hide()
        self.answer.show()
        self.answer.setText("–")
        self.confidence.setText("Draw to see what the model thinks")
        self.steps.setText("")
        self.model_image.clear()
        self.model_caption.setText("model input")

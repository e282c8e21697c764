"""The start page: templates with a picture of each network, recent projects, and ways to begin.

A plain widget: the window can show it over the canvas (a page of a
QStackedWidget) or in a dialog. It only says what the person chose, through
its signals; opening things is the window's business.

Thumbnails are the real canvas (GraphScene) drawing each template, wrapped
into rows the way Auto-layout wraps a long chain. They are drawn after the page
is shown, one per event-loop turn (about 15-35 ms each), and kept per theme
and size, so the page opens at once and reopens without drawing again.
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

from PySide6.QtCore import QEvent, QPoint, QRect, QRectF, QSize, Qt, QTimer, Signal
from PySide6.QtGui import (QColor, QFont, QFontMetrics, QIcon, QKeyEvent, QPainter, QPainterPath, QPalette, QPaintEvent,
                           QPen, QPixmap, QResizeEvent, QShowEvent, QTextLayout)
from PySide6.QtWidgets import (QAbstractButton, QFrame, QGridLayout, QHBoxLayout, QLabel, QScrollArea, QSizePolicy,
                               QToolButton, QVBoxLayout, QWidget)

from dlstudio.core.errors import DlstudioError
from dlstudio.core.project import TemplateInfo, list_templates, load_template
from dlstudio.gui import icons
from dlstudio.gui.theme import DARK, HINT, LIGHT, canvas_colors, is_dark, set_tone, tone_color

CARD_SIZE = QSize(248, 226)
THUMBNAIL_SIZE = QSize(224, 124)
CARD_SPACING = 16
SIDEBAR_WIDTH = 260
PAGE_MARGIN = 40
MAX_RECENT = 8
# Space between layers when a template is wrapped for its picture (room for the shape labels on edges).
_THUMBNAIL_LAYER_GAP = 110.0

_thumbnails: dict[tuple[str, str, int, int, float], QPixmap] = {}


def palette_theme(palette: QPalette) -> str:
    """'dark' when the palette's window colour is dark, else 'light'."""
    return DARK if is_dark(palette) else LIGHT


def render_thumbnail(name: str, theme: str, size: QSize = THUMBNAIL_SIZE, ratio: float = 1.0) -> QPixmap:
    """A picture of the template ``name`` drawn by the canvas in ``theme``'s colours (cached).

    ``size`` is in device-independent pixels; ``ratio`` is the screen's device pixel
    ratio. Raises DlstudioError when the template cannot be loaded.
    """
    key = (name, theme, size.width(), size.height(), ratio)
    cached = _thumbnails.get(key)
    if cached is not None:
        return cached
    from dlstudio.core.autolayout import layered_layout
    from dlstudio.core.shapes import ShapeInference
    from dlstudio.gui.canvas.scene import GraphScene

    project = load_template(name)
    graph = project.graph
    colors = canvas_colors(theme)
    inference = ShapeInference(graph)
    scene = GraphScene(graph, project.layout, inference, colors)
    try:
        # The template's own layout is one long row; wrapped to the picture's shape it shows the whole network.
        positions = layered_layout(graph.topological_order(), [(e.src, e.dst) for e in graph.edges],
                                   sizes=scene.node_sizes(), viewport=(size.width(), size.height()),
                                   layer_gap=_THUMBNAIL_LAYER_GAP)
        with scene.batched():
            for node_id, (x, y) in positions.items():
                project.layout.move(node_id, x, y)
        source = scene.itemsBoundingRect()
        margin = max(source.width(), source.height()) * 0.03
        source.adjust(-margin, -margin, margin, margin)
        pixmap = QPixmap(round(size.width() * ratio), round(size.height() * ratio))
        pixmap.fill(QColor(colors.background))
        painter = QPainter(pixmap)
        painter.setRenderHints(QPainter.RenderHint.Antialiasing | QPainter.RenderHint.TextAntialiasing
                               | QPainter.RenderHint.SmoothPixmapTransform)
        scene.render(painter, QRectF(pixmap.rect()), source, Qt.AspectRatioMode.KeepAspectRatio)
        painter.end()
    finally:
        scene.detach()
        inference.close()
        scene.clear()
    pixmap.setDevicePixelRatio(ratio)
    _thumbnails[key] = pixmap
    return pixmap


def _mix(a: QColor, b: QColor, t: float) -> QColor:
    return QColor.fromRgbF(a.redF() + (b.redF() - a.redF()) * t, a.greenF() + (b.greenF() - a.greenF()) * t,
                           a.blueF() + (b.blueF() - a.blueF()) * t)


def _secondary_text(palette: QPalette) -> QColor:
    """Quieter than the text, readable on both themes (the house hint tone)."""
    return tone_color(palette, HINT)


def _card_fill(palette: QPalette) -> QColor:
    """A card stands out from the window: white on the light theme, a lighter grey on the dark one."""
    window = palette.color(QPalette.ColorRole.Window)
    base = palette.color(QPalette.ColorRole.Base)
    if base.lightness() >= window.lightness():
        return base
    return _mix(window, QColor("#ffffff"), 0.05)


def _wrapped_lines(text: str, font: QFont, width: int, max_lines: int) -> list[str]:
    """``text`` broken into at most ``max_lines`` lines of ``width``, the last elided."""
    layout = QTextLayout(text, font)
    layout.beginLayout()
    lines: list[str] = []
    while len(lines) < max_lines:
        line = layout.createLine()
        if not line.isValid():
            break
        line.setLineWidth(width)
        lines.append(text[line.textStart(): line.textStart() + line.textLength()].strip())
        if len(lines) == max_lines and line.textStart() + line.textLength() < len(text):
            rest = text[line.textStart():]
            lines[-1] = QFontMetrics(font).elidedText(rest, Qt.TextElideMode.ElideRight, width)
    layout.endLayout()
    return lines


class _Tile(QAbstractButton):
    """A flat, focusable, clickable tile: Enter, Return and Space press it; the page moves focus with arrows."""

    arrow_pressed = Signal(int, int)  # dx, dy

    def __init__(self, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.setFocusPolicy(Qt.FocusPolicy.StrongFocus)
        self.setAttribute(Qt.WidgetAttribute.WA_Hover)
        self.setCursor(Qt.CursorShape.PointingHandCursor)

    def keyPressEvent(self, event: QKeyEvent) -> None:
        key = event.key()
        if key in (Qt.Key.Key_Return, Qt.Key.Key_Enter) and not event.isAutoRepeat():
            self.animateClick()
            return
        steps = {Qt.Key.Key_Left: (-1, 0), Qt.Key.Key_Right: (1, 0), Qt.Key.Key_Up: (0, -1),
                 Qt.Key.Key_Down: (0, 1)}
        if key in steps:
            self.arrow_pressed.emit(*steps[key])
            return
        super().keyPressEvent(event)

    def _frame_pen(self) -> QPen:
        palette = self.palette()
        if self.hasFocus():
            return QPen(palette.color(QPalette.ColorRole.Highlight), 2.0)
        if self.underMouse() and self.isEnabled():
            return QPen(_mix(palette.color(QPalette.ColorRole.Highlight), _card_fill(palette), 0.35), 1.5)
        return QPen(_mix(palette.color(QPalette.ColorRole.WindowText), _card_fill(palette), 0.82), 1.0)


class TemplateCard(_Tile):
    """A template: its picture, title and description. Clicking it chooses the template."""

    def __init__(self, info: TemplateInfo, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.info = info
        self.name = info.name
        self.thumbnail: QPixmap | None = None
        self.failed = False
        self.setObjectName(f"template_card_{info.name}")
        self.setText(info.title)
        self.setToolTip(f"<b>{info.title}</b><br>{info.description}" if info.description else info.title)
        self.setAccessibleName(f"Template: {info.title}")
        self.setAccessibleDescription(info.description)
        self.setFixedSize(CARD_SIZE)

    def set_thumbnail(self, pixmap: QPixmap | None, failed: bool = False) -> None:
        self.thumbnail = pixmap
        self.failed = failed
        self.update()

    def paintEvent(self, event: QPaintEvent) -> None:
        palette = self.palette()
        painter = QPainter(self)
        painter.setRenderHint(QPainter.RenderHint.Antialiasing)
        frame = QRectF(self.rect()).adjusted(1, 1, -1, -1)
        path = QPainterPath()
        path.addRoundedRect(frame, 8, 8)
        painter.fillPath(path, _card_fill(palette))
        pad = (CARD_SIZE.width() - THUMBNAIL_SIZE.width()) // 2
        picture = QRect(pad, pad, THUMBNAIL_SIZE.width(), THUMBNAIL_SIZE.height())
        clip = QPainterPath()
        clip.addRoundedRect(QRectF(picture), 5, 5)
        painter.save()
        painter.setClipPath(clip)
        painter.fillRect(picture, QColor(canvas_colors(palette_theme(palette)).background))
        if self.thumbnail is not None:
            painter.drawPixmap(picture.topLeft(), self.thumbnail)
        else:
            painter.setPen(_secondary_text(palette))
            painter.drawText(picture, Qt.AlignmentFlag.AlignCenter,
                             "No preview" if self.failed else "Drawing the network…")
        painter.restore()
        painter.setPen(QPen(_mix(palette.color(QPalette.ColorRole.WindowText), _card_fill(palette), 0.88), 1.0))
        painter.drawRoundedRect(QRectF(picture).adjusted(0.5, 0.5, -0.5, -0.5), 5, 5)

        text_width = CARD_SIZE.width() - 2 * pad
        title_font = QFont(self.font())
        title_font.setBold(True)
        title_font.setPointSizeF(self.font().pointSizeF() * 1.1)
        title_metrics = QFontMetrics(title_font)
        y = picture.bottom() + 12
        painter.setFont(title_font)
        painter.setPen(palette.color(QPalette.ColorRole.WindowText))
        painter.drawText(QRect(pad, y, text_width, title_metrics.height()), Qt.AlignmentFlag.AlignLeft,
                         title_metrics.elidedText(self.info.title, Qt.TextElideMode.ElideRight, text_width))
        y += title_metrics.height() + 4
        body_font = QFont(self.font())
        body_metrics = QFontMetrics(body_font)
        painter.setFont(body_font)
        painter.setPen(_secondary_text(palette))
        for line in _wrapped_lines(self.info.description, body_font, text_width, 3):
            painter.drawText(QRect(pad, y, text_width, body_metrics.height()), Qt.AlignmentFlag.AlignLeft, line)
            y += body_metrics.lineSpacing()

        painter.setPen(self._frame_pen())
        painter.setBrush(Qt.BrushStyle.NoBrush)
        painter.drawPath(path)
        painter.end()


class RecentItem(_Tile):
    """A recent project: file name over its folder; greyed (and not clickable) when the file is gone."""

    def __init__(self, path: str, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.path = path
        location = Path(path)
        self.file_name = location.name
        self.folder = str(location.parent)
        self.missing = not location.is_file()
        self.setObjectName("recent_item")
        self.setText(self.file_name)
        self.setAccessibleName(f"Recent project: {self.file_name}")
        self.setToolTip(f"{path}\n(this file is no longer there)" if self.missing else path)
        self.setEnabled(not self.missing)
        self.setSizePolicy(QSizePolicy.Policy.Expanding, QSizePolicy.Policy.Fixed)
        metrics = self.fontMetrics()
        self.setFixedHeight(2 * metrics.height() + 16)

    def sizeHint(self) -> QSize:
        return QSize(SIDEBAR_WIDTH, self.height())

    def paintEvent(self, event: QPaintEvent) -> None:
        palette = self.palette()
        painter = QPainter(self)
        painter.setRenderHint(QPainter.RenderHint.Antialiasing)
        frame = QRectF(self.rect()).adjusted(1, 1, -1, -1)
        if self.hasFocus() or (self.underMouse() and self.isEnabled()):
            path = QPainterPath()
            path.addRoundedRect(frame, 6, 6)
            painter.fillPath(path, _card_fill(palette))
            painter.setPen(self._frame_pen())
            painter.drawPath(path)
        metrics = self.fontMetrics()
        icon_size = 20
        left = 6 + icon_size + 10
        width = self.width() - left - 10
        mode = QIcon.Mode.Normal if self.isEnabled() else QIcon.Mode.Disabled
        icons.icon("open").paint(painter, QRect(6, (self.height() - icon_size) // 2, icon_size, icon_size),
                                 Qt.AlignmentFlag.AlignCenter, mode)
        name_font = QFont(self.font())
        name_font.setBold(True)
        painter.setFont(name_font)
        text = palette.color(QPalette.ColorRole.WindowText)
        painter.setPen(text if self.isEnabled() else _secondary_text(palette))
        name = self.file_name
        painter.drawText(QRect(left, 8, width, metrics.height()), Qt.AlignmentFlag.AlignLeft,
                         QFontMetrics(name_font).elidedText(name, Qt.TextElideMode.ElideRight, width))
        painter.setFont(self.font())
        quiet = _secondary_text(palette)
        if not self.isEnabled():
            quiet = _mix(quiet, palette.color(QPalette.ColorRole.Window), 0.4)
        painter.setPen(quiet)
        where = f"Not found in {self.folder}" if self.missing else self.folder
        painter.drawText(QRect(left, 8 + metrics.height(), width, metrics.height()), Qt.AlignmentFlag.AlignLeft,
                         metrics.elidedText(where, Qt.TextElideMode.ElideMiddle, width))
        painter.end()


class _CardGrid(QWidget):
    """Template cards in as many columns as fit; reflowed when the width changes."""

    def __init__(self, cards: list[TemplateCard], parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.cards = cards
        self.columns = 0
        self._grid = QGridLayout(self)
        self._grid.setContentsMargins(0, 0, 0, 0)
        self._grid.setSpacing(CARD_SPACING)
        self._grid.setAlignment(Qt.AlignmentFlag.AlignLeft | Qt.AlignmentFlag.AlignTop)
        self.setSizePolicy(QSizePolicy.Policy.Expanding, QSizePolicy.Policy.Fixed)
        self.setMinimumWidth(CARD_SIZE.width())
        self._reflow(3)

    def _columns_for(self, width: int) -> int:
        return max(1, min(len(self.cards), (width + CARD_SPACING) // (CARD_SIZE.width() + CARD_SPACING)))

    def _reflow(self, columns: int) -> None:
        if columns == self.columns:
            return
        self.columns = columns
        for card in self.cards:
            self._grid.removeWidget(card)
        for index, card in enumerate(self.cards):
            self._grid.addWidget(card, index // columns, index % columns)
        rows = -(-len(self.cards) // columns)
        self.setFixedHeight(max(0, rows * CARD_SIZE.height() + (rows - 1) * CARD_SPACING))

    def resizeEvent(self, event: QResizeEvent) -> None:
        super().resizeEvent(event)
        self._reflow(self._columns_for(event.size().width()))

    def neighbour(self, card: TemplateCard, dx: int, dy: int) -> TemplateCard | None:
        index = self.cards.index(card) + dx + dy * max(1, self.columns)
        return self.cards[index] if 0 <= index < len(self.cards) else None


def _section(heading: str, widgets: list[QWidget], *, under_heading: QWidget | None = None, gap: int = 4,
             width: int | None = None) -> QWidget:
    """A heading, optionally a line under it, then ``widgets`` in a column (the page's Start, Recent, Templates)."""
    layout = QVBoxLayout()
    layout.setContentsMargins(0, 0, 0, 0)
    layout.setSpacing(6)
    layout.addWidget(_heading(heading))
    if under_heading is not None:
        layout.addWidget(under_heading)
    layout.addSpacing(gap)
    for widget in widgets:
        layout.addWidget(widget)
    layout.addStretch(1)
    section = QWidget()
    section.setLayout(layout)
    if width is not None:
        section.setFixedWidth(width)
    return section


def _heading(text: str, scale: float = 1.25) -> QLabel:
    label = QLabel(text)
    font = QFont(label.font())
    font.setPointSizeF(label.font().pointSizeF() * scale)
    font.setBold(True)
    label.setFont(font)
    label.setAccessibleName(text)
    return label


class WelcomePage(QWidget):
    """Ways to begin: a template (with a picture of its network), a recent project, a file, an image folder."""

    template_chosen = Signal(str)  # the template's name, for load_template()
    recent_chosen = Signal(str)  # the project file's path
    new_requested = Signal()  # an empty network
    open_requested = Signal()  # choose a project file
    image_folder_requested = Signal()  # choose a folder of images to train on

    def __init__(self, recent_files: Sequence[str] = (), parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.setObjectName("welcome_page")
        self._theme = palette_theme(self.palette())
        self._pending: list[TemplateCard] = []
        self._render_timer = QTimer(self)
        self._render_timer.setSingleShot(True)
        self._render_timer.setInterval(0)
        self._render_timer.timeout.connect(self._render_next)

        self.cards = [TemplateCard(info) for info in list_templates()]
        for card in self.cards:
            card.clicked.connect(lambda checked=False, name=card.name: self.template_chosen.emit(name))
            card.arrow_pressed.connect(lambda dx, dy, card=card: self._on_card_arrow_pressed(card, dx, dy))
        self.grid = _CardGrid(self.cards)

        title = _heading("dlstudio", 2.2)
        subtitle = QLabel("Draw a neural network, train it, and look inside it.")
        subtitle.setObjectName("welcome_subtitle")

        self.new_button = self._command("new", "New empty network", "Start with a blank canvas",
                                        self.new_requested)
        self.open_button = self._command("open", "Open a project…", "Open a .dlstudio project file",
                                         self.open_requested)
        self.image_folder_button = self._command(
            "image_folder", "Open an image folder to train on…",
            "Choose a folder with one subfolder of pictures per class; a network is set up to learn them",
            self.image_folder_requested)

        self.recent_box = QWidget()
        self.recent_box.setObjectName("recent_projects")
        self._recent_layout = QVBoxLayout(self.recent_box)
        self._recent_layout.setContentsMargins(0, 0, 0, 0)
        self._recent_layout.setSpacing(2)
        self.recent_items: list[RecentItem] = []
        self.no_recent_label = QLabel("Projects you open or save appear here.")
        self.no_recent_label.setWordWrap(True)

        self.start_section = _section("Start", [self.new_button, self.open_button, self.image_folder_button],
                                      width=SIDEBAR_WIDTH)
        self.recent_section = _section("Recent projects", [self.recent_box, self.no_recent_label],
                                       width=SIDEBAR_WIDTH)
        hint = QLabel("Most train on the bundled handwritten digits at once; the fine-tuning one learns from a "
                      "folder of your own pictures. Click one to open it.")
        hint.setObjectName("welcome_hint")
        hint.setWordWrap(True)
        self.templates_section = _section("Start from a template", [self.grid], under_heading=hint, gap=8)

        # Wide: Start and Recent in a column beside the templates. Narrow (the canvas between docks):
        # Start and Recent side by side above them, so the cards keep two columns.
        self._sections = QGridLayout()
        self._sections.setHorizontalSpacing(32)
        self._sections.setVerticalSpacing(24)
        self.wide: bool | None = None
        self._arrange(wide=True)

        content = QWidget()
        content.setObjectName("welcome_content")
        body = QVBoxLayout(content)
        body.setContentsMargins(PAGE_MARGIN, 32, PAGE_MARGIN, 32)
        body.setSpacing(4)
        body.addWidget(title)
        body.addWidget(subtitle)
        body.addSpacing(28)
        body.addLayout(self._sections, 1)
        content.setMaximumWidth(2 * PAGE_MARGIN + SIDEBAR_WIDTH + 32 + 4 * CARD_SIZE.width() + 3 * CARD_SPACING)

        centre = QWidget()
        centring = QHBoxLayout(centre)
        centring.setContentsMargins(0, 0, 0, 0)
        centring.addStretch(0)
        centring.addWidget(content, 1)  # grows to its maximum width first, then the margins share the rest
        centring.addStretch(0)
        self.scroll = QScrollArea()
        self.scroll.setWidgetResizable(True)
        self.scroll.setFrameShape(QFrame.Shape.NoFrame)
        self.scroll.setWidget(centre)
        outer = QVBoxLayout(self)
        outer.setContentsMargins(0, 0, 0, 0)
        outer.addWidget(self.scroll)
        for label in (subtitle, hint, self.no_recent_label):
            set_tone(label, HINT)  # follows theme switches by itself
        self.set_recent_files(recent_files)

    def show_templates(self) -> None:
        """Scroll the template cards' heading to the top, the first card focused (File › New from Template).

        Done again once the page is laid out: shown just now, its sections may not have their places yet.
        """
        self._scroll_to_templates()
        QTimer.singleShot(0, self._scroll_to_templates)

    def _scroll_to_templates(self) -> None:
        top = self.templates_section.mapTo(self.scroll.widget(), QPoint(0, 0)).y()
        self.scroll.verticalScrollBar().setValue(max(0, top - 8))
        if self.cards:
            self.cards[0].setFocus(Qt.FocusReason.OtherFocusReason)

    def _command(self, icon_name: str, text: str, tip: str, signal: Signal) -> QToolButton:
        button = QToolButton()
        button.setObjectName(f"welcome_{icon_name}")
        button.setText(text)
        button.setToolTip(tip)
        button.setProperty("dlstudio_icon", icon_name)
        button.setIcon(icons.icon(icon_name))
        button.setIconSize(QSize(20, 20))
        button.setToolButtonStyle(Qt.ToolButtonStyle.ToolButtonTextBesideIcon)
        button.setAutoRaise(True)
        button.setFocusPolicy(Qt.FocusPolicy.StrongFocus)
        button.setSizePolicy(QSizePolicy.Policy.Expanding, QSizePolicy.Policy.Fixed)
        button.setMinimumHeight(34)
        button.setCursor(Qt.CursorShape.PointingHandCursor)
        button.clicked.connect(lambda checked=False: signal.emit())
        return button

    def _arrange(self, wide: bool) -> None:
        if wide == self.wide:
            return
        self.wide = wide
        for section in (self.start_section, self.recent_section, self.templates_section):
            self._sections.removeWidget(section)
        top = Qt.AlignmentFlag.AlignTop
        if wide:
            self._sections.addWidget(self.start_section, 0, 0, top)
            self._sections.addWidget(self.recent_section, 1, 0, top)
            self._sections.addWidget(self.templates_section, 0, 1, 3, 1)
            self._sections.setRowStretch(2, 1)
            self._sections.setColumnStretch(1, 1)
        else:
            self._sections.addWidget(self.start_section, 0, 0, top)
            self._sections.addWidget(self.recent_section, 0, 1, top | Qt.AlignmentFlag.AlignLeft)
            self._sections.addWidget(self.templates_section, 1, 0, 1, 2)
            self._sections.setRowStretch(2, 0)
            self._sections.setColumnStretch(1, 1)

    def resizeEvent(self, event: QResizeEvent) -> None:
        super().resizeEvent(event)
        side_by_side = 2 * PAGE_MARGIN + SIDEBAR_WIDTH + 32 + 2 * CARD_SIZE.width() + CARD_SPACING
        self._arrange(wide=event.size().width() >= side_by_side)

    # -- recent projects -------------------------------------------------------------

    def set_recent_files(self, paths: Sequence[str]) -> None:
        """Show these project files (newest first; at most MAX_RECENT); a file that is gone is greyed."""
        for item in self.recent_items:
            self._recent_layout.removeWidget(item)
            item.deleteLater()
        self.recent_items = []
        for path in list(dict.fromkeys(str(p) for p in paths))[:MAX_RECENT]:
            item = RecentItem(path)
            item.clicked.connect(lambda checked=False, p=path: self.recent_chosen.emit(p))
            item.arrow_pressed.connect(lambda dx, dy, item=item: self._on_recent_arrow_pressed(item, dy))
            self._recent_layout.addWidget(item)
            self.recent_items.append(item)
        self.recent_box.setVisible(bool(self.recent_items))
        self.no_recent_label.setVisible(not self.recent_items)
        self._update_tab_order()

    def _update_tab_order(self) -> None:
        # Tab follows the reading order: the Start commands, the recent projects, then the templates.
        chain: list[QWidget] = [self.new_button, self.open_button, self.image_folder_button,
                                *self.recent_items, *self.cards]
        for first, second in zip(chain, chain[1:]):
            QWidget.setTabOrder(first, second)

    # -- thumbnails -------------------------------------------------------------

    def thumbnails_done(self) -> bool:
        return all(card.thumbnail is not None or card.failed for card in self.cards)

    def ensure_thumbnails(self) -> None:
        """Draw every thumbnail not drawn yet, now."""
        self._render_timer.stop()
        self._queue_all()
        while self._pending:
            self._render_one(self._pending.pop(0))

    def _queue_all(self) -> None:
        self._pending = [card for card in self.cards if card.thumbnail is None and not card.failed]

    def _render_next(self) -> None:
        if self._pending:
            self._render_one(self._pending.pop(0))
        if self._pending:
            self._render_timer.start()

    def _render_one(self, card: TemplateCard) -> None:
        try:
            pixmap = render_thumbnail(card.name, self._theme, THUMBNAIL_SIZE, self.devicePixelRatioF())
        except DlstudioError:
            card.set_thumbnail(None, failed=True)
        else:
            card.set_thumbnail(pixmap)

    def showEvent(self, event: QShowEvent) -> None:
        super().showEvent(event)
        if not self.thumbnails_done():
            self._queue_all()
            self._render_timer.start()  # after this paint: the page is on screen before any network is drawn

    def changeEvent(self, event: QEvent) -> None:
        super().changeEvent(event)
        if event.type() == QEvent.Type.PaletteChange:
            theme = palette_theme(self.palette())
            for button in (self.new_button, self.open_button, self.image_folder_button):
                button.setIcon(icons.icon(button.property("dlstudio_icon")))
            if theme != self._theme:
                self._theme = theme
                for card in self.cards:
                    card.set_thumbnail(None)
                if self.isVisible():
                    self._queue_all()
                    self._render_timer.start()

    # -- keyboard -----------------------------------------------------------------

    def _on_card_arrow_pressed(self, card: TemplateCard, dx: int, dy: int) -> None:
        target = self.grid.neighbour(card, dx, dy)
        if target is not None:
            target.setFocus(Qt.FocusReason.TabFocusReason)
            self.scroll.ensureWidgetVisible(target)

    def _on_recent_arrow_pressed(self, item: RecentItem, dy: int) -> None:
        enabled = [i for i in self.recent_items if i.isEnabled()]
        if item in enabled:
            index = enabled.index(item) + dy
            if 0 <= index < len(enabled):
                enabled[index].setFocus(Qt.FocusReason.TabFocusReason)

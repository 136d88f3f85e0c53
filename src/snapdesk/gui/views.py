"""The document grid and the drop overlay."""

from __future__ import annotations

from PySide6.QtCore import QRect, QSize, Qt, QTimer
from PySide6.QtGui import QColor, QFont, QPainter, QPen, QRegion
from PySide6.QtWidgets import QAbstractItemView, QListView, QWidget

from .delegates import DocumentDelegate
from .models import RowRole, StatusRole
from .queries import RUNNING


class DocumentGrid(QListView):
    """Tiles in a grid of fixed cells. Only the visible running tiles are animated."""

    SPACING = 8
    TICK_MS = 60

    def __init__(self, delegate: DocumentDelegate, parent=None):
        super().__init__(parent)
        self.delegate = delegate
        self.setItemDelegate(delegate)
        self.setViewMode(QListView.ViewMode.IconMode)
        self.setUniformItemSizes(True)
        self.setMovement(QListView.Movement.Static)
        self.setResizeMode(QListView.ResizeMode.Adjust)
        self.setFlow(QListView.Flow.LeftToRight)
        self.setWrapping(True)
        tile = delegate.TILE
        self.setGridSize(QSize(tile.width() + self.SPACING, tile.height() + self.SPACING))
        self.setSelectionMode(QAbstractItemView.SelectionMode.ExtendedSelection)
        self.setVerticalScrollMode(QAbstractItemView.ScrollMode.ScrollPerPixel)
        self.verticalScrollBar().setSingleStep(24)
        self.setMouseTracking(True)
        self.setEditTriggers(QAbstractItemView.EditTrigger.NoEditTriggers)
        self.setDragEnabled(False)
        self.setContextMenuPolicy(Qt.ContextMenuPolicy.CustomContextMenu)
        self.setFrameShape(QListView.Shape.NoFrame)
        self._ticker = QTimer(self)
        self._ticker.setInterval(self.TICK_MS)
        self._ticker.timeout.connect(self._tick)
        self._ticker.start()
        # The ticker stops when nothing on screen runs (an idle window wakes nobody); these restart it.
        self.verticalScrollBar().valueChanged.connect(self.wake)
        #: How many tiles the last tick repainted (for tests and profiling).
        self.animated = 0
        #: Said in the middle of the grid when the filters leave nothing to show.
        self.empty_text = ""

    def setModel(self, model) -> None:
        super().setModel(model)
        if model is not None:
            for signal in (model.dataChanged, model.rowsInserted, model.modelReset, model.layoutChanged):
                signal.connect(self.wake)
        self.wake()

    def dataChanged(self, top_left, bottom_right, roles=()) -> None:  # noqa: N802 - Qt's name
        """Qt's handling, one row at a time, for the changed rows that can be on screen.

        For a range of rows Qt repaints the bounding box of all of them (whole lines of tiles), and
        a batch of events changes rows all over a large session: tiles on screen were painted again,
        several times a second, for changes nobody could see. One row at a time, Qt repaints that
        tile (and tells accessibility tools); rows off screen need nothing."""
        if top_left == bottom_right:
            super().dataChanged(top_left, bottom_right, roles)
            return
        model = self.model()
        if model is None or not self.isVisible():
            return
        shown = self.visible_rows()
        for row in range(max(top_left.row(), shown.start), min(bottom_right.row() + 1, shown.stop)):
            index = model.index(row, 0)
            super().dataChanged(index, index, roles)

    def wake(self, *_) -> None:
        if not self._ticker.isActive():
            self._ticker.start()

    def paintEvent(self, event) -> None:
        self.delegate.dirty = event.region()
        try:
            super().paintEvent(event)
        finally:
            self.delegate.dirty = None
        model = self.model()
        if model is not None and model.rowCount() == 0 and self.empty_text:
            p = QPainter(self.viewport())
            color = QColor(self.palette().text().color())
            color.setAlpha(140)
            p.setPen(color)
            p.drawText(self.viewport().rect().adjusted(20, 40, -20, -20),
                       Qt.AlignmentFlag.AlignHCenter | Qt.AlignmentFlag.AlignTop | Qt.TextFlag.TextWordWrap,
                       self.empty_text)

    def mouseMoveEvent(self, event) -> None:
        """A pointing hand over a failed tile's Retry button, which is painted, not a widget."""
        super().mouseMoveEvent(event)
        pos = event.position().toPoint()
        index = self.indexAt(pos)
        row = index.data(RowRole) if index.isValid() else None
        over = row is not None and self.delegate.offers_retry(row) and \
            self.delegate.retry_rect(self.visualRect(index)).contains(pos)
        if over:
            self.viewport().setCursor(Qt.CursorShape.PointingHandCursor)
        else:
            self.viewport().unsetCursor()

    def showEvent(self, event) -> None:
        super().showEvent(event)
        self.wake()

    def resizeEvent(self, event) -> None:
        self._fit_columns()
        super().resizeEvent(event)

    def _fit_columns(self) -> None:
        """Cells share the width evenly, so there is no wide empty strip on the right."""
        tile = self.delegate.TILE
        # As if the scroll bar were there: the layout then never flips between two column counts.
        width = self.width() - 2 * self.frameWidth() - self.verticalScrollBar().sizeHint().width() - 4
        cols = max(1, width // (tile.width() + self.SPACING))
        cell = QSize(max(tile.width() + self.SPACING, width // cols), tile.height() + self.SPACING)
        if cell != self.gridSize():
            self.setGridSize(cell)

    def visible_rows(self) -> range:
        """The rows of the model that can be on screen now (from the fixed grid)."""
        model = self.model()
        if model is None or not model.rowCount():
            return range(0)
        grid = self.gridSize()
        cols = max(1, self.viewport().width() // grid.width())
        first_line = max(0, self.verticalOffset() // grid.height())
        lines = self.viewport().height() // grid.height() + 2
        return range(first_line * cols, min(model.rowCount(), (first_line + lines) * cols))

    def _tick(self) -> None:
        model = self.model()
        self.animated = 0
        if model is None or not self.isVisible():
            self._ticker.stop()  # showEvent starts it again
            return
        self.delegate.phase = (self.delegate.phase + 24) % 360
        region = QRegion()
        viewport = self.viewport().rect()
        for r in self.visible_rows():
            index = model.index(r, 0)
            # A running tile with a figure shows a progress ring, which moves only when the figure
            # changes (and its row with it); only a spinner turns.
            if index.data(StatusRole) == RUNNING and not index.data(RowRole).progress:
                rect = self.visualRect(index)
                if rect.intersects(viewport):
                    region += QRegion(self.delegate.badge_rect(rect).toAlignedRect().adjusted(-1, -1, 1, 1))
                    self.animated += 1
        if self.animated:
            self.viewport().update(region)
        else:
            self._ticker.stop()


class DropOverlay(QWidget):
    """Covers the window while files are dragged over it: where they will go."""

    def __init__(self, parent: QWidget):
        super().__init__(parent)
        self.setAttribute(Qt.WidgetAttribute.WA_TransparentForMouseEvents)
        self.hide()

    def show_over(self, widget: QWidget) -> None:
        self.setGeometry(widget.rect())
        self.raise_()
        self.show()

    def paintEvent(self, event) -> None:
        p = QPainter(self)
        p.setRenderHint(QPainter.RenderHint.Antialiasing)
        accent = self.palette().highlight().color()
        veil = QColor(self.palette().window().color())
        veil.setAlpha(215)
        p.fillRect(self.rect(), veil)
        frame = QRect(self.rect()).adjusted(16, 16, -16, -16)
        pen = QPen(accent, 3, Qt.PenStyle.DashLine)
        p.setPen(pen)
        fill = QColor(accent)
        fill.setAlpha(25)
        p.setBrush(fill)
        p.drawRoundedRect(frame, 16, 16)
        font = QFont(self.font())
        font.setPointSizeF(font.pointSizeF() * 1.8)
        font.setWeight(QFont.Weight.DemiBold)
        p.setFont(font)
        p.setPen(accent)
        p.drawText(frame, Qt.AlignmentFlag.AlignCenter, "Drop files or folders to add them\nas a new session")

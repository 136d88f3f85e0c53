"""Delegates that paint documents and sessions: placeholder, thumbnail, progress and status.

Nothing here loads or waits: images come from the ImageCache (None until loaded), rows from
the model. The spinner of a running item turns with ``phase``, which the grid advances for
the visible running items only.
"""

from __future__ import annotations

import datetime
import os
from collections.abc import Callable

from PySide6.QtCore import (
    QEvent,
    QModelIndex,
    QPoint,
    QPointF,
    QRect,
    QRectF,
    QSize,
    QSizeF,
    Qt,
    Signal,
)
from PySide6.QtGui import (
    QColor,
    QFont,
    QFontMetrics,
    QMouseEvent,
    QPainter,
    QPainterPath,
    QPen,
    QPixmap,
    QRegion,
)
from PySide6.QtWidgets import QStyle, QStyledItemDelegate, QStyleOptionViewItem

from .models import DUPLICATES, STATUS_TEXT, RowRole, finished_percent
from .queries import CANCELLED, COMPLETE, FAILED_DOC, QUEUED, RUNNING, DocRow, SessionRow

GREEN = QColor("#2e9d57")
RED = QColor("#d64541")
BLUE = QColor("#2d7ff9")
GREY = QColor("#8a8f98")
STATUS_COLOR = {COMPLETE: GREEN, FAILED_DOC: RED, RUNNING: BLUE, QUEUED: GREY, CANCELLED: GREY}


def draw_ring(p: QPainter, rect: QRectF, fraction: float | None, color: QColor, track: QColor,
              width: float = 3.0, phase: float = 0.0) -> None:
    """A progress ring (``fraction`` 0-1), or a turning spinner arc when ``fraction`` is None."""
    r = rect.adjusted(width / 2, width / 2, -width / 2, -width / 2)
    p.setBrush(Qt.BrushStyle.NoBrush)
    p.setPen(QPen(track, width))
    p.drawEllipse(r)
    pen = QPen(color, width)
    pen.setCapStyle(Qt.PenCapStyle.RoundCap)
    p.setPen(pen)
    if fraction is None:
        p.drawArc(r, int((90 - phase) * 16), -100 * 16)
    elif fraction > 0:
        p.drawArc(r, 90 * 16, int(-360 * 16 * min(fraction, 1.0)))


def _badge(p: QPainter, center: QPointF, radius: float, color: QColor, glyph: str) -> None:
    p.setPen(QPen(QColor(255, 255, 255, 230), 1.5))
    p.setBrush(color)
    p.drawEllipse(center, radius, radius)
    pen = QPen(QColor("white"), 2.0)
    pen.setCapStyle(Qt.PenCapStyle.RoundCap)
    p.setPen(pen)
    x, y, s = center.x(), center.y(), radius * 0.45
    if glyph == "check":
        path = QPainterPath(QPointF(x - s, y))
        path.lineTo(x - s * 0.2, y + s * 0.8)
        path.lineTo(x + s * 1.1, y - s * 0.7)
        p.setBrush(Qt.BrushStyle.NoBrush)
        p.drawPath(path)
    elif glyph == "bang":
        p.drawLine(QPointF(x, y - s * 1.1), QPointF(x, y + s * 0.3))
        p.drawPoint(QPointF(x, y + s * 1.1))
    elif glyph == "clock":
        p.drawLine(QPointF(x, y), QPointF(x, y - s))
        p.drawLine(QPointF(x, y), QPointF(x + s * 0.8, y))


class DocumentDelegate(QStyledItemDelegate):
    """A tile: the image (thumbnail, else blurhash, else a plain placeholder), name, status, Retry."""

    TILE = QSize(176, 188)
    IMAGE = QRect(8, 8, 160, 120)
    PAD = 8
    #: A failed tile's Retry button was clicked: the document id.
    retryClicked = Signal(int)

    def __init__(self, images=None, parent=None):
        super().__init__(parent)
        self.images = images
        self.phase = 0.0
        self._badges: dict[tuple, QPixmap] = {}  # (badge or frame, device pixel ratio) -> its picture
        #: The region being repainted, while the grid paints (``DocumentGrid.paintEvent``): a tile of
        #: which only the badge is dirty is painted in part.
        self.dirty: QRegion | None = None

    def sizeHint(self, option, index) -> QSize:
        return QSize(self.TILE)

    # -- geometry ----------------------------------------------------------------------
    def image_rect(self, rect: QRect) -> QRect:
        return self.IMAGE.translated(rect.topLeft())

    def retry_rect(self, rect: QRect) -> QRect:
        return QRect(rect.right() - self.PAD - 54, rect.top() + 156, 54, 22)

    def badge_rect(self, rect: QRect) -> QRectF:
        img = self.image_rect(rect)
        return QRectF(img.right() - 27, img.top() + 5, 22, 22)

    # -- painting ----------------------------------------------------------------------
    def paint(self, p: QPainter, option: QStyleOptionViewItem, index: QModelIndex) -> None:
        row: DocRow | None = index.data(RowRole)
        if row is None:
            return
        rect = option.rect
        if self.dirty is not None and not self.dirty.intersects(rect):
            # The list view paints every tile within the bounding box of what changed; whatever is
            # painted outside the changed region would be clipped away.
            return
        palette = option.palette
        selected = bool(option.state & QStyle.StateFlag.State_Selected)
        hovered = bool(option.state & QStyle.StateFlag.State_MouseOver)
        p.save()
        p.setRenderHint(QPainter.RenderHint.Antialiasing)
        p.setRenderHint(QPainter.RenderHint.SmoothPixmapTransform)
        if self.dirty is not None and not selected and self.badge_rect(rect).toAlignedRect().adjusted(-1, -1, 1, 1) \
                .contains(self.dirty.intersected(rect).boundingRect()):
            # Only the badge is being repainted (a running tile's spinner turning): what lies under it.
            self._paint_image(p, rect, row, palette)
            self._paint_badge(p, rect, row, palette)
            p.restore()
            return

        if selected:
            fill = QColor(palette.highlight().color())
            fill.setAlpha(40)
            frame = (palette.highlight().color(), 2, fill)
        else:
            frame = (palette.mid().color() if hovered else palette.midlight().color(), 1, palette.base().color())
        p.drawPixmap(rect.topLeft(), self._frame_picture(rect.size(), p.device().devicePixelRatioF(), *frame))

        self._paint_image(p, rect, row, palette)
        self._paint_badge(p, rect, row, palette)

        # name
        text_color = palette.text().color()
        font = QFont(option.font)
        font.setWeight(QFont.Weight.DemiBold)
        p.setFont(font)
        p.setPen(text_color)
        name_rect = QRect(rect.left() + self.PAD, rect.top() + 134, rect.width() - 2 * self.PAD, 18)
        p.drawText(name_rect, Qt.AlignmentFlag.AlignLeft | Qt.AlignmentFlag.AlignVCenter,
                   QFontMetrics(font).elidedText(row.name, Qt.TextElideMode.ElideMiddle, name_rect.width()))

        # status line
        p.setFont(option.font)
        status_rect = QRect(rect.left() + self.PAD, rect.top() + 156, rect.width() - 2 * self.PAD, 22)
        if self.offers_retry(row):
            status_rect.setRight(self.retry_rect(rect).left() - 4)
            self._paint_retry(p, self.retry_rect(rect), palette)
        if row.status == COMPLETE and row.title:  # the summary's title reads as text, not as a status
            muted = QColor(palette.text().color())
            muted.setAlpha(190)
            p.setPen(muted)
        else:
            p.setPen(STATUS_COLOR.get(row.status, GREY))
        p.drawText(status_rect, Qt.AlignmentFlag.AlignLeft | Qt.AlignmentFlag.AlignVCenter,
                   QFontMetrics(option.font).elidedText(self.duplicate_text(row, index.model()) or self.status_text(row),
                                                        Qt.TextElideMode.ElideRight, status_rect.width()))
        p.restore()

    @staticmethod
    def duplicate_text(row: DocRow, model) -> str | None:
        """Under the Duplicates filter, which of its group a picture is: "Original · 1200×900", "Copy · 400×300"."""
        if getattr(model, "filter", None) != DUPLICATES:
            return None
        original = model.original_of(row.id)
        if original is None:
            return None
        size = f" · {row.width}×{row.height}" if row.width and row.height else ""
        return ("Original" if original == row.id else "Copy") + size

    @staticmethod
    def duration_text(seconds: float) -> str:
        """A video's length as a player shows it: 0:07, 3:25, 1:02:09."""
        total = max(0, round(seconds))
        hours, rest = divmod(total, 3600)
        return f"{hours}:{rest // 60:02d}:{rest % 60:02d}" if hours else f"{rest // 60}:{rest % 60:02d}"

    def _paint_duration(self, p: QPainter, area: QRect, seconds: float) -> None:
        """The length of a video in the thumbnail's corner, light on dark, as video players show it."""
        text = self.duration_text(seconds)
        f = QFont(p.font())
        f.setWeight(QFont.Weight.DemiBold)
        p.setFont(f)
        metrics = QFontMetrics(f)
        box = QRect(0, 0, metrics.horizontalAdvance(text) + 10, metrics.height() + 2)
        box.moveBottomRight(area.bottomRight() - QPoint(5, 5))
        p.setPen(Qt.PenStyle.NoPen)
        p.setBrush(QColor(0, 0, 0, 170))
        p.drawRoundedRect(QRectF(box), 4, 4)
        p.setPen(QColor("white"))
        p.drawText(box, Qt.AlignmentFlag.AlignCenter, text)

    @staticmethod
    def offers_retry(row: DocRow) -> bool:
        """A failed tile has a Retry button unless no retry can cure it (then it says so instead)."""
        return row.status == FAILED_DOC and bool(row.retry_job_ids)

    @staticmethod
    def status_text(row: DocRow) -> str:
        if row.permanent:
            return "Failed · permanent"
        if row.status == RUNNING:
            return f"Running {row.progress}%" if row.progress else "Running…"
        if row.status == QUEUED and row.jobs_done:
            return f"Queued · {row.jobs_done} of {row.jobs_total} done"
        if row.status == COMPLETE and row.title:
            return row.title
        if row.status == COMPLETE and row.width and row.height:
            return f"Done · {row.width}×{row.height}"
        return STATUS_TEXT.get(row.status, row.status)

    def _paint_image(self, p: QPainter, rect: QRect, row: DocRow, palette) -> None:
        area = self.image_rect(rect)
        clip = QPainterPath()
        clip.addRoundedRect(QRectF(area), 6, 6)
        p.save()
        p.setClipPath(clip)
        p.fillRect(area, palette.alternateBase().color().darker(104))
        pixmap = None
        if self.images is not None:
            # 150 px wide thumbnails fill the 160 px tile; on a high-density screen the 300 px ones do.
            size = "md" if p.device() is not None and p.device().devicePixelRatioF() > 1.2 else "sm"
            pixmap = self.images.get(size, row.id, row.thumbs.get(size) or row.thumbs.get("sm"))
            if pixmap is None and row.blurhash:
                pixmap = self.images.get("blur", row.id, row.blurhash)
                if pixmap is not None:  # the blurhash fills the image's own shape
                    target = self._fit(area, row.width or 4, row.height or 3)
                    p.drawPixmap(target, pixmap)
                    pixmap = None
                    p.restore()
                    return
        if pixmap is not None:
            p.drawPixmap(self._fit(area, pixmap.width(), pixmap.height()), pixmap)
            if row.duration is not None:
                self._paint_duration(p, area, row.duration)
        else:
            ext = os.path.splitext(row.path)[1].lstrip(".").upper() or "?"
            f = QFont(p.font())
            f.setPointSizeF(max(f.pointSizeF(), 9) * 1.3)
            f.setWeight(QFont.Weight.Bold)
            p.setFont(f)
            p.setPen(palette.mid().color())
            p.drawText(area, Qt.AlignmentFlag.AlignCenter, ext)
        p.restore()

    @staticmethod
    def _fit(area: QRect, w: int, h: int) -> QRect:
        size = QSize(max(w, 1), max(h, 1)).scaled(area.size(), Qt.AspectRatioMode.KeepAspectRatio)
        return QRect(area.left() + (area.width() - size.width()) // 2,
                     area.top() + (area.height() - size.height()) // 2, size.width(), size.height())

    def _paint_badge(self, p: QPainter, rect: QRect, row: DocRow, palette) -> None:
        """The status badge in the image's corner, copied from a picture drawn once per look: drawn
        afresh, its antialiased circles were the dearest part of a tile (the spinner of each running
        tile on screen is repainted 16 times a second)."""
        if row.status == RUNNING:
            key: tuple = ("progress", row.progress) if row.progress else ("spinner", round(self.phase) % 360)
        elif row.status in (QUEUED, COMPLETE, FAILED_DOC):
            key = (row.status,)
        else:
            return
        b = self.badge_rect(rect)
        p.drawPixmap(b.topLeft(), self._badge_picture(key, b.size(), p.device().devicePixelRatioF()))

    def _frame_picture(self, size: QSize, ratio: float, line: QColor, width: int, fill: QColor) -> QPixmap:
        """The tile's rounded frame, drawn once per look and size (as the badges)."""
        def draw(q: QPainter, area: QRectF) -> None:
            q.setPen(QPen(line, width))
            q.setBrush(fill)
            q.drawRoundedRect(area.adjusted(1, 1, -1, -1), 8, 8)
        key = ("frame", size.width(), size.height(), line.rgba(), width, fill.rgba())
        return self._picture(key, QSizeF(size), ratio, draw)

    def _badge_picture(self, key: tuple, size: QSizeF, ratio: float) -> QPixmap:
        def draw(q: QPainter, b: QRectF) -> None:
            if key[0] == "progress" or key[0] == "spinner":
                q.setPen(Qt.PenStyle.NoPen)
                q.setBrush(QColor(255, 255, 255, 220))
                q.drawEllipse(b)
                fraction = key[1] / 100 if key[0] == "progress" else None
                draw_ring(q, b.adjusted(3, 3, -3, -3), fraction, BLUE, QColor(0, 0, 0, 40), 2.5,
                          key[1] if key[0] == "spinner" else 0.0)
            else:
                color, glyph = {QUEUED: (GREY, "clock"), COMPLETE: (GREEN, "check"), FAILED_DOC: (RED, "bang")}[key[0]]
                _badge(q, b.center(), 9, color, glyph)
        return self._picture(key, size, ratio, draw)

    def _picture(self, key: tuple, size: QSizeF, ratio: float,
                 draw: Callable[[QPainter, QRectF], None]) -> QPixmap:
        """What ``draw`` paints on a transparent ``size`` at the screen's pixel ratio, painted the
        first time ``key`` is asked for and copied after that."""
        picture = self._badges.get((key, ratio))
        if picture is None:
            picture = QPixmap((size * ratio).toSize())
            picture.setDevicePixelRatio(ratio)
            picture.fill(Qt.GlobalColor.transparent)
            q = QPainter(picture)
            q.setRenderHint(QPainter.RenderHint.Antialiasing)
            draw(q, QRectF(QPointF(0, 0), size))
            q.end()
            self._badges[(key, ratio)] = picture
        return picture

    @staticmethod
    def _paint_retry(p: QPainter, r: QRect, palette) -> None:
        p.setPen(QPen(RED, 1))
        p.setBrush(palette.button())
        p.drawRoundedRect(QRectF(r).adjusted(0.5, 0.5, -0.5, -0.5), 11, 11)
        p.setPen(RED)
        p.drawText(r, Qt.AlignmentFlag.AlignCenter, "Retry")

    # -- the Retry button ------------------------------------------------------------
    def editorEvent(self, event: QEvent, model, option: QStyleOptionViewItem, index: QModelIndex) -> bool:
        if event.type() == QEvent.Type.MouseButtonRelease and isinstance(event, QMouseEvent) \
                and event.button() == Qt.MouseButton.LeftButton:
            row: DocRow | None = index.data(RowRole)
            if row is not None and self.offers_retry(row) \
                    and self.retry_rect(option.rect).contains(event.position().toPoint()):
                self.retryClicked.emit(row.id)
                return True
        return super().editorEvent(event, model, option, index)


class SessionDelegate(QStyledItemDelegate):
    """A session: a progress ring, its name, counts and time, and a red badge with the failures."""

    HEIGHT = 58

    def sizeHint(self, option, index) -> QSize:
        return QSize(220, self.HEIGHT)

    def paint(self, p: QPainter, option: QStyleOptionViewItem, index: QModelIndex) -> None:
        row: SessionRow | None = index.data(RowRole)
        if row is None:
            return
        rect = option.rect
        palette = option.palette
        selected = bool(option.state & QStyle.StateFlag.State_Selected)
        p.save()
        p.setRenderHint(QPainter.RenderHint.Antialiasing)
        if selected:
            p.fillRect(rect, palette.highlight())
        elif option.state & QStyle.StateFlag.State_MouseOver:
            p.fillRect(rect, palette.alternateBase())
        fg = palette.highlightedText().color() if selected else palette.text().color()
        dim = QColor(fg)
        dim.setAlpha(170)

        ring = QRectF(rect.left() + 12, rect.top() + (rect.height() - 30) / 2, 30, 30)
        track = QColor(dim.red(), dim.green(), dim.blue(), 60)
        self._paint_ring(p, ring, row, track, selected)
        center = ring.center()
        if row.total and row.finished == row.total and not row.scanning:  # finished: a mark instead of "100"
            _badge(p, center, 7, RED if row.failed else GREEN, "bang" if row.failed else "check")
        else:  # the share finished, as a percentage, sized to fit inside the ring
            text = self.ring_text(row)
            pct_font = QFont(option.font)
            pct_font.setPointSizeF(max(pct_font.pointSizeF() * 0.7, 6))
            inside = ring.width() - 9
            while pct_font.pointSizeF() > 5 and QFontMetrics(pct_font).horizontalAdvance(text) > inside:
                pct_font.setPointSizeF(pct_font.pointSizeF() - 0.5)
            p.setFont(pct_font)
            p.setPen(fg)
            p.drawText(ring, Qt.AlignmentFlag.AlignCenter, text)

        left = int(ring.right()) + 10
        badge_w = 0
        if row.failed:
            badge_font = QFont(option.font)
            badge_font.setWeight(QFont.Weight.Bold)
            badge_font.setPointSizeF(max(badge_font.pointSizeF() * 0.85, 6))
            text = str(row.failed)
            badge_w = QFontMetrics(badge_font).horizontalAdvance(text) + 14
            badge = QRectF(rect.right() - 10 - badge_w, rect.top() + (rect.height() - 18) / 2, badge_w, 18)
            p.setPen(Qt.PenStyle.NoPen)
            p.setBrush(RED)
            p.drawRoundedRect(badge, 9, 9)
            p.setPen(QColor("white"))
            p.setFont(badge_font)
            p.drawText(badge, Qt.AlignmentFlag.AlignCenter, text)
        width = rect.right() - left - 10 - (badge_w + 8 if badge_w else 0)

        name_font = QFont(option.font)
        name_font.setWeight(QFont.Weight.DemiBold)
        p.setFont(name_font)
        p.setPen(fg)
        p.drawText(QRect(left, rect.top() + 9, width, 20), Qt.AlignmentFlag.AlignLeft | Qt.AlignmentFlag.AlignVCenter,
                   QFontMetrics(name_font).elidedText(row.name, Qt.TextElideMode.ElideMiddle, width))
        p.setFont(option.font)
        p.setPen(dim)
        p.drawText(QRect(left, rect.top() + 30, width, 18), Qt.AlignmentFlag.AlignLeft | Qt.AlignmentFlag.AlignVCenter,
                   QFontMetrics(option.font).elidedText(self.subtitle(row), Qt.TextElideMode.ElideRight, width))
        p.restore()

    @staticmethod
    def ring_text(row: SessionRow) -> str:
        """Inside the ring of a session with work left: the share of its documents finished."""
        return f"{finished_percent(row)}%"

    @staticmethod
    def _paint_ring(p: QPainter, ring: QRectF, row: SessionRow, track: QColor, selected: bool) -> None:
        """The share done in green, then the share failed in red, on a faint track."""
        width = 3.5
        r = ring.adjusted(width / 2, width / 2, -width / 2, -width / 2)
        p.setBrush(Qt.BrushStyle.NoBrush)
        p.setPen(QPen(track, width))
        p.drawEllipse(r)
        if not row.total:
            return
        start = 90 * 16
        for count, color in ((row.complete + row.cancelled, GREEN), (row.failed, RED)):
            span = int(-360 * 16 * count / row.total)
            if span:
                pen = QPen(QColor("white") if selected and color is GREEN else color, width)
                pen.setCapStyle(Qt.PenCapStyle.FlatCap)
                p.setPen(pen)
                p.drawArc(r, start, span)
                start += span

    @staticmethod
    def subtitle(row: SessionRow) -> str:
        when = datetime.datetime.fromtimestamp(row.created_at)
        today = datetime.date.today()
        stamp = when.strftime("%H:%M") if when.date() == today else when.strftime("%d %b %H:%M")
        if row.scanning:
            return f"scanning… {row.total} found · {stamp}"
        return f"{row.complete}/{row.total} done · {stamp}"

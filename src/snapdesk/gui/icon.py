"""SnapDesk's icon: from resources/, or drawn."""

from __future__ import annotations

from pathlib import Path

from PySide6.QtCore import QRectF, Qt
from PySide6.QtGui import QColor, QIcon, QPainter, QPixmap


def app_icon() -> QIcon:
    """SnapDesk's icon (resources/snapdesk.svg or .png), or the same drawn: four tiles, one of them done."""
    resources = Path(__file__).resolve().parent.parent / "resources"
    for name in ("snapdesk.svg", "snapdesk.png"):
        if (resources / name).is_file():
            icon = QIcon(str(resources / name))
            if not icon.isNull():
                return icon
    icon = QIcon()
    for size in (16, 32, 64, 128):
        pixmap = QPixmap(size, size)
        pixmap.fill(Qt.GlobalColor.transparent)
        p = QPainter(pixmap)
        p.setRenderHint(QPainter.RenderHint.Antialiasing)
        p.setPen(Qt.PenStyle.NoPen)
        p.setBrush(QColor("#2d7ff9"))
        p.drawRoundedRect(QRectF(0, 0, size, size), size * 0.22, size * 0.22)
        gap, tile = size * 0.12, size * 0.32
        for i, color in enumerate(("#ffffff", "#ffffff", "#ffffff", "#7ee2a0")):
            x, y = gap * 1.5 + (i % 2) * (tile + gap), gap * 1.5 + (i // 2) * (tile + gap)
            p.setBrush(QColor(color))
            p.drawRoundedRect(QRectF(x, y, tile, tile), size * 0.06, size * 0.06)
        p.end()
        icon.addPixmap(pixmap)
    return icon

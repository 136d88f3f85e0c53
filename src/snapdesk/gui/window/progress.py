"""How far the sessions with work have got: the taskbar's progress over all of them, and a notice
when one has no work left (in the status bar, and in the tray when the window is not in front)."""

from __future__ import annotations

from PySide6.QtWidgets import QSystemTrayIcon

from ...config import APP_NAME
from ..queries import SessionRow
from .base import Window


class SessionProgress:
    """Follows the sessions' rows as they change; says when a running one ends."""

    def __init__(self, window: Window):
        self._window = window
        self._status: dict[int, str] = {}
        self._tray: QSystemTrayIcon | None = None

    def clear(self) -> None:
        self._status.clear()

    def sessions_changed(self, ids: set[int]) -> None:
        for session_id in ids:
            row = self._window.sessions.row_by_id(session_id)
            if row is None:
                continue
            previous = self._status.get(session_id)
            self._status[session_id] = row.status
            if previous == "running" and row.status != "running":
                self._finished(row)
        self.update()

    def running(self) -> tuple[int, int]:
        """(documents finished, documents in all) over the sessions that still have work."""
        sessions = self._window.sessions
        running = [row for row in (sessions.row(r) for r in range(sessions.rowCount())) if row.status == "running"]
        return sum(row.finished for row in running), sum(row.total for row in running)

    def update(self) -> None:
        self._window.taskbar.show(*self.running())  # the window's: a test hands it another bus

    def _finished(self, row: SessionRow) -> None:
        """A session has no work left: say so in the status bar and, when the window is not in front, the tray."""
        message = f"{row.name}: done, {row.complete} of {row.total} documents" + (
            f", {row.failed} failed" if row.failed else "")
        self._window.statusBar().showMessage(message, 15000)
        if not self._window.isActiveWindow() and QSystemTrayIcon.isSystemTrayAvailable():
            if self._tray is None:
                self._tray = QSystemTrayIcon(self._window.windowIcon(), self._window)
                self._tray.setToolTip(APP_NAME)
            self._tray.show()
            icon = QSystemTrayIcon.MessageIcon.Warning if row.failed else QSystemTrayIcon.MessageIcon.Information
            self._tray.showMessage(APP_NAME, message, icon, 8000)

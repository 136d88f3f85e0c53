"""The Duplicates filter's documents: asked of the owner for the session shown, again as it changes.

The groups come from ``Library.duplicates`` (``engine/duplicates.py``), a read-only query run on
the owner thread (``operations.duplicates``); the answer lands on the GUI thread and goes to the grid's
``DocumentFilterModel.set_duplicates``. While a session's documents change (thumbnails complete,
each bringing its picture's likeness) it is asked again at most every ``DELAY_MS``, one question
at a time.
"""

from __future__ import annotations

import logging
from typing import Any

from PySide6.QtCore import QObject, QTimer, Signal

from . import operations
from .models import DocumentFilterModel

log = logging.getLogger("snapdesk.gui.duplicates")


class DuplicatesFinder(QObject):
    """Keeps ``filtered``'s duplicates those of the session shown."""

    DELAY_MS = 2000
    #: New groups arrived for the session shown: (session id, how many documents they hold).
    found = Signal(int, int)

    def __init__(self, owner: Any, filtered: DocumentFilterModel, parent: QObject | None = None):
        super().__init__(parent)
        self.owner = owner
        self.filtered = filtered
        self.session_id: int | None = None
        self._asking = False
        self._again = False
        self._timer = QTimer(self)
        self._timer.setSingleShot(True)
        self._timer.setInterval(self.DELAY_MS)
        self._timer.timeout.connect(self.ask)

    def show_session(self, session_id: int | None) -> None:
        """Another session is shown: its groups replace the last one's, asked for now."""
        self.session_id = session_id
        self.filtered.set_duplicates([])
        self._timer.stop()
        self.ask()

    def documents_changed(self) -> None:
        """The shown session's documents changed: ask again soon (once, however many changes)."""
        if self.session_id is not None and not self._timer.isActive():
            self._timer.start()

    def ask(self) -> None:
        if self.session_id is None:
            return
        if self._asking:  # one question at a time; the answer to this one is asked after it
            self._again = True
            return
        self._asking, self._again = True, False
        session_id = self.session_id
        (operations.duplicates(self.owner, session_id).success(lambda groups: self._answered(session_id, groups))
         .failure(self._failed).run())

    def _answered(self, session_id: int, groups: list[list[int]]) -> None:
        self._asking = False
        if session_id == self.session_id:
            self.filtered.set_duplicates(groups)
            self.found.emit(session_id, sum(len(g) for g in groups))
        if self._again:
            self.ask()

    def _failed(self, error: Exception) -> None:
        self._asking = False  # the filter keeps what it had; the next change asks again
        log.warning("could not find the duplicates of session %s: %s", self.session_id, error)
        if self._again:
            self.ask()

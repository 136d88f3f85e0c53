"""Above the grid: the shown session's name and numbers, the files its import skipped, the filter
buttons with their counts, the search field (names at once, the text index a moment later, by
meaning with the toggle), Retry Failed, the other sessions where the search text is found, and
the results of a search by meaning.

The header reads the window's models (``sessions``, ``filtered``) and its owner when it needs
them: the window owns those, and hands the owner over again when it reopens the library.
"""

from __future__ import annotations

import datetime
import html

from PySide6.QtCore import QEvent, QObject, QSize, Qt, QTimer
from PySide6.QtGui import QResizeEvent
from PySide6.QtWidgets import QHBoxLayout, QLabel, QLineEdit, QPushButton, QVBoxLayout, QWidget

from .. import operations
from ..filter_bar import FilterBar
from ..meaning_view import MeaningControls
from ..models import DUPLICATES
from ..queries import SessionRow
from ..skipped_view import SkippedLine
from .base import Window

#: What the grid says when the filters leave nothing of the session.
EMPTY_TEXT = {"all": "", "queued": "Nothing is waiting for a worker in this session.",
              "running": "No document of this session is being processed right now.",
              "failed": "Nothing failed in this session.", "done": "Nothing is done yet.",
              "duplicates": "No two documents of this session are the same picture."}


class SessionHeader(QWidget):
    """The session's title, numbers, filters and search, over the grid."""

    #: The text index is asked this long after the last keystroke.
    SEARCH_DELAY_MS = 250
    #: While a search runs, its counts follow the documents' changes at most this often.
    COUNTS_DELAY_MS = 150

    def __init__(self, window: Window):
        super().__init__()
        self._window = window
        layout = QVBoxLayout(self)
        layout.setContentsMargins(0, 0, 0, 0)
        layout.setSpacing(8)
        self.session_title = QLabel()
        self.session_title.setObjectName("sessionTitle")
        self.session_info = QLabel()
        self.session_info.setObjectName("sessionInfo")
        layout.addWidget(self.session_title)
        layout.addWidget(self.session_info)
        self.skipped_line = SkippedLine()  # "12 files skipped — Show"
        layout.addWidget(self.skipped_line)

        # The filters, then the search field, its Meaning toggle and Retry Failed: on one row when the
        # header is wide enough, the search's on a row of its own below the filters when it is not
        # (``resizeEvent``), so that a session fits a 1024 px window beside the sessions and details.
        self._bar = QHBoxLayout()
        self.filter_bar = FilterBar()
        self.filter_buttons = self.filter_bar.buttons
        self._bar.addWidget(self.filter_bar)
        self._bar.addStretch(1)  # what the search field leaves
        self.search = QLineEdit()
        self.search.setPlaceholderText("Search (Ctrl+F)")
        self.search.setToolTip("Search the names and text of the documents (Ctrl+F)")
        self.search.setAccessibleName("Search names and text")
        self.search.installEventFilter(self)  # Escape clears it and goes back to the grid
        self.search.setClearButtonEnabled(True)
        # At least 120 px; it takes the room a wider window gives, up to 260 px.
        self.search.setMinimumWidth(120)
        self.search.setMaximumWidth(260)
        self.search.textChanged.connect(self._search_changed)
        self._search_timer = QTimer(self)
        self._search_timer.setSingleShot(True)
        self._search_timer.setInterval(self.SEARCH_DELAY_MS)
        self._search_timer.timeout.connect(self._full_text_search)
        self.meaning = MeaningControls(window.owner, self.search, self)  # search by meaning, Find Similar
        self.meaning.toggle.toggled.connect(lambda _: self.search.text().strip() and self._search_timer.start())
        self.retry_failed_button = QPushButton("Retry Failed")
        self.retry_failed_button.setToolTip("Queue every failed job of this session again")
        #: The search field, its Meaning toggle and Retry Failed: beside the filters, or on the row below.
        self._search_widgets = (self.search, self.meaning.toggle, self.retry_failed_button)
        for w in self._search_widgets:
            self._bar.addWidget(w, 4 if w is self.search else 0)
        layout.addLayout(self._bar)
        self._below = QHBoxLayout()  # the search's row of its own, flush left; empty while it is beside the filters
        self._below.addStretch(1)
        layout.addLayout(self._below)
        self._search_below = False  # the search's row under the filters' (narrow) or beside them (wide)
        self._filters_width = 0  # the filters' width when last fitted
        # The header's least width is the narrow one's, not that of everything on one row.
        layout.setSizeConstraint(QVBoxLayout.SizeConstraint.SetNoConstraint)

        self.other_matches = QLabel()
        self.other_matches.setObjectName("otherMatches")
        self.other_matches.setTextFormat(Qt.TextFormat.RichText)
        self.other_matches.setTextInteractionFlags(Qt.TextInteractionFlag.LinksAccessibleByMouse
                                                   | Qt.TextInteractionFlag.LinksAccessibleByKeyboard)
        self.other_matches.linkActivated.connect(self._other_match_clicked)
        self.other_matches.hide()
        layout.addWidget(self.other_matches)
        layout.addWidget(self.meaning.panel)

        self._counts_timer = QTimer(self)  # while a search runs, its counts follow the documents' changes
        self._counts_timer.setSingleShot(True)
        self._counts_timer.setInterval(self.COUNTS_DELAY_MS)
        self._counts_timer.timeout.connect(self.update_counts)

    # -- fitting its width ---------------------------------------------------------------
    def minimumSizeHint(self) -> QSize:
        layout = self.layout()
        assert layout is not None
        margins = layout.contentsMargins()
        width = max(self.filter_bar.sizeHint().width(), self._search_row_width(),
                    self.session_info.minimumSizeHint().width()) + margins.left() + margins.right()
        return QSize(width, layout.minimumSize().height())

    def _search_row_width(self) -> int:
        """The least width of the search field, its toggle and Retry Failed on one row."""
        widths = [self.search.minimumWidth(), self.meaning.toggle.minimumSizeHint().width(),
                  self.retry_failed_button.minimumSizeHint().width()]
        return sum(widths) + self._bar.spacing() * (len(widths) - 1)

    def resizeEvent(self, event: QResizeEvent) -> None:
        super().resizeEvent(event)
        self._fit_rows(event.size().width())

    def _fit_rows(self, width: int) -> None:
        """The search beside the filters if both fit in ``width`` whole, else on the row below."""
        filters = self.filter_bar.sizeHint().width()
        if filters != self._filters_width:  # the least width follows the filters' labels
            self._filters_width = filters
            self.updateGeometry()
        below = width < filters + self._bar.spacing() + self._search_row_width()
        if below != self._search_below:
            self._search_below = below
            source, target = (self._bar, self._below) if below else (self._below, self._bar)
            for i, w in enumerate(self._search_widgets):
                source.removeWidget(w)
                if below:
                    target.insertWidget(i, w, 4 if w is self.search else 0)  # before the stretch
                else:
                    target.addWidget(w, 4 if w is self.search else 0)

    # -- the session ---------------------------------------------------------------------
    def _row(self) -> SessionRow | None:
        session_id = self._window.current_session
        return self._window.sessions.row_by_id(session_id) if session_id is not None else None

    def show_session(self, row: SessionRow | None) -> None:
        """Show a session's name and numbers (None: no session, only the Add buttons of the empty page)."""
        has = row is not None
        for w in (self.session_title, self.session_info, self.retry_failed_button, self.search,
                  self.meaning.toggle, *self.filter_buttons.values()):
            w.setVisible(has)
        self.skipped_line.show_for(self._window.owner, row.id if row else None, row.name if row else "",
                                   bool(row and row.scanning))
        if row is None:
            return
        when = datetime.datetime.fromtimestamp(row.created_at).strftime("%d %b %Y, %H:%M")
        self.session_title.setText(row.name)
        state = "scanning for files" if row.scanning else {
            "running": "running", "complete": "done", "failed": "done, with failures"}[row.status]
        self.session_info.setText(f"{row.total} document{'s' if row.total != 1 else ''} · added {when} · {state}")
        self.update_counts()
        # Only failures a retry may cure: a permanent one would fail the same way again.
        self.retry_failed_button.setEnabled(row.retryable > 0)
        self.retry_failed_button.setToolTip(
            "Queue every failed job of this session again that a retry may cure" if row.retryable else
            "Nothing here to retry: no retry will cure these failures" if row.failed else "Nothing failed")

    def session_changed(self) -> None:
        """Another session is shown: the search's hits are asked again, in it."""
        self._window.filtered.set_matches(())
        if self.search.text().strip():
            self._search_timer.start()  # the same search, in this session

    def documents_changed(self) -> None:
        if self._window.filtered.searching:
            self._counts_timer.start()

    def update_counts(self) -> None:
        """The filter buttons' counts: the session's, or with a search those of the documents it finds."""
        self._counts_timer.stop()
        row = self._row()
        if row is None:
            return
        filtered = self._window.filtered
        if filtered.searching:
            self.filter_bar.set_counts({**filtered.counts(), DUPLICATES: filtered.duplicate_count()},
                                       self.search.text().strip())
        else:
            self.filter_bar.set_counts({"all": row.total, "queued": row.queued, "running": row.running,
                                        "failed": row.failed, "done": row.complete,
                                        DUPLICATES: filtered.duplicate_count()})
        self._fit_rows(self.width())  # the labels' numbers may have grown

    def update_empty_text(self) -> None:
        """What the grid says when the filters leave nothing: why, rather than a blank."""
        text = self.search.text().strip()
        grid = self._window.grid
        grid.empty_text = (f"No document here matches “{text}”." if text
                           else EMPTY_TEXT.get(self._window.filtered.filter, ""))
        grid.viewport().update()

    # -- searching -----------------------------------------------------------------------
    def focus_search(self) -> None:
        self.search.setFocus(Qt.FocusReason.ShortcutFocusReason)
        self.search.selectAll()

    def eventFilter(self, obj: QObject, event: QEvent) -> bool:
        if obj is self.search and event.type() == QEvent.Type.KeyPress and event.key() == Qt.Key.Key_Escape:
            self.search.clear()
            self._window.grid.setFocus(Qt.FocusReason.ShortcutFocusReason)
            return True
        return super().eventFilter(obj, event)

    def _search_changed(self, text: str) -> None:
        # File names at once; the text index a moment later. The selected document stays selected
        # (and its details shown) when the search shows it.
        self._window.search_changing(lambda: self._window.filtered.set_search(text))
        if not text.strip():
            self._window.search_settled()
        self.update_empty_text()
        self.update_counts()
        self.other_matches.hide()
        if text.strip():
            self._search_timer.start()
        else:
            self._search_timer.stop()

    def _full_text_search(self) -> None:
        text = self.search.text()
        if not text.strip():
            return
        session = self._window.current_session

        def found(by_session: dict[int, set[int]]) -> None:
            if text != self.search.text() or session != self._window.current_session:
                return  # a newer search, or another session, asks again
            self._window.search_changing(lambda: self._window.filtered.set_matches(
                by_session.get(session, set()) if session is not None else set()))
            self._window.search_settled()
            self.update_counts()
            self._show_other_matches({s: len(ids) for s, ids in by_session.items() if s != session})
        if self.meaning.toggle.isChecked():
            self.meaning.search(text, found)
        else:
            operations.search(self._window.owner, text).success(found).run()

    def _show_other_matches(self, counts: dict[int, int]) -> None:
        """Under the search box: the other sessions where the search text is found, as links to them."""
        links = []
        for session_id, n in sorted(counts.items(), key=lambda item: -item[0]):
            row = self._window.sessions.row_by_id(session_id)
            if row is not None:
                links.append(f"<a href='session:{session_id}'>{html.escape(row.name)}</a> ({n})")
        self.other_matches.setText("Also found in " + ", ".join(links) if links else "")
        self.other_matches.setVisible(bool(links))

    def _other_match_clicked(self, link: str) -> None:
        if link.startswith("session:"):
            self._window.select_session(int(link.split(":", 1)[1]))  # the search stays, and runs in that session
            self._search_timer.start()

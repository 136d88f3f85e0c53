"""Item models: ids plus a row cache and an id -> row dict, updated in coalesced batches.

Rows arrive from the owner thread many times a second while a session runs. They are
collected in a dict keyed by id; a 100 ms timer applies them at once and emits one
``dataChanged`` per contiguous range of rows, so 500 events a second cost the views a
handful of repaints.
"""

from __future__ import annotations

import datetime
from collections import Counter
from collections.abc import Iterable

from PySide6.QtCore import (
    QAbstractListModel,
    QModelIndex,
    QSortFilterProxyModel,
    Qt,
    QTimer,
    Signal,
)

from .queries import CANCELLED, COMPLETE, FAILED_DOC, QUEUED, RUNNING, DocRow, SessionRow

IdRole = Qt.ItemDataRole.UserRole + 1
RowRole = Qt.ItemDataRole.UserRole + 2
StatusRole = Qt.ItemDataRole.UserRole + 3
ProgressRole = Qt.ItemDataRole.UserRole + 4

STATUS_TEXT = {QUEUED: "Queued", RUNNING: "Running", COMPLETE: "Done", FAILED_DOC: "Failed",
               CANCELLED: "Cancelled"}

#: Filters of the document grid: name -> statuses shown. "running" is what a worker has in hand
#: now; what waits for a worker is "queued".
FILTERS = {
    "all": None,
    "queued": frozenset({QUEUED}),
    "running": frozenset({RUNNING}),
    "failed": frozenset({FAILED_DOC}),
    "done": frozenset({COMPLETE}),
}
#: The grid's orders: name -> the key a row sorts by (None: as imported). A document not yet
#: dated (its thumbnail is not done) goes after those that are.
SORTS = {
    "added": None,
    "taken": lambda row: (row.taken_at is None, row.taken_at or 0.0, row.id),
    "name": lambda row: (row.name.casefold(), row.id),
}
#: The filter of the pictures that are the same picture as another of the session (resized, re-encoded,
#: slightly cropped: engine/duplicates.py), each group together, its original first. Not a status: its
#: documents come from the owner (``DocumentFilterModel.set_duplicates``, gui/duplicates.py).
DUPLICATES = "duplicates"
DUPLICATES_LABEL = "Duplicates"
#: The filters' names on their buttons, in order.
FILTER_LABELS = {"all": "All", "queued": "Queued", "running": "Running", "failed": "Failed", "done": "Done",
                 DUPLICATES: DUPLICATES_LABEL}


def document_spoken(row: DocRow) -> str:
    """What a screen reader says of a tile: "IMG_4100.jpg, done, 4000 by 3000"."""
    parts = [row.name]
    if row.status == COMPLETE:
        parts.append("done")
        if row.width and row.height:
            parts.append(f"{row.width} by {row.height}")
        if row.title:
            parts.append(row.title)
    elif row.status == RUNNING:
        parts.append(f"running, {row.progress}%" if row.progress else "running")
    elif row.status == QUEUED:
        parts.append("queued" + (f", {row.jobs_done} of {row.jobs_total} jobs done" if row.jobs_done else ""))
    elif row.status == FAILED_DOC:
        parts.append("failed for good, no retry will cure it" if row.permanent else "failed, can be retried")
    else:
        parts.append(STATUS_TEXT.get(row.status, row.status).lower())
    return ", ".join(parts)


def finished_percent(row: SessionRow) -> int:
    """The share of a session's documents that finished (done, failed or cancelled): its ring."""
    return int(100 * row.finished / row.total) if row.total else 0


def session_spoken(row: SessionRow) -> str:
    """What a screen reader says of a session: its name, the share done (the ring), the counts."""
    if row.scanning:
        return f"{row.name}, scanning for files, {row.total} found, {row.finished} finished"
    if row.total and row.finished == row.total:
        state = "done"
    else:
        state = f"{finished_percent(row)}% finished"
    text = f"{row.name}, {state}, {row.complete} of {row.total} document{'s' if row.total != 1 else ''} done"
    if row.running or row.queued:
        text += f", {row.running} running, {row.queued} queued"
    if row.failed:
        text += f", {row.failed} failed"
    return text


def _ranges(rows: Iterable[int]) -> list[tuple[int, int]]:
    """Sorted row numbers as (first, last) contiguous ranges."""
    out: list[list[int]] = []
    for r in sorted(set(rows)):
        if out and r == out[-1][1] + 1:
            out[-1][1] = r
        else:
            out.append([r, r])
    return [(a, b) for a, b in out]


class _CoalescingListModel(QAbstractListModel):
    """A flat list of rows with an ``id`` each, changed in batches every ``INTERVAL_MS``."""

    INTERVAL_MS = 40  # a change is on screen at most this long after it arrived from the owner thread
    #: Ids whose rows changed in the last batch applied.
    rowsUpdated = Signal(object)

    def _row_at(self, index: QModelIndex):
        """The cached row an index points at, or None for an index outside the model."""
        if not index.isValid() or not 0 <= index.row() < len(self._ids) or index.column() != 0:
            return None
        return self._rows[self._ids[index.row()]]

    def __init__(self, parent=None):
        super().__init__(parent)
        self._ids: list[int] = []
        self._rows: dict[int, object] = {}
        self._index: dict[int, int] = {}
        self._pending: dict[int, object] = {}
        self._repaint: set[int] = set()
        self._timer = QTimer(self)
        self._timer.setSingleShot(True)
        self._timer.setInterval(self.INTERVAL_MS)
        self._timer.timeout.connect(self.flush)

    # -- reading -----------------------------------------------------------------------
    def rowCount(self, parent: QModelIndex | None = None) -> int:
        return 0 if parent is not None and parent.isValid() else len(self._ids)

    def row(self, r: int):
        return self._rows[self._ids[r]]

    def row_by_id(self, row_id: int):
        return self._rows.get(row_id)

    def index_of(self, row_id: int) -> QModelIndex:
        r = self._index.get(row_id)
        return QModelIndex() if r is None else self.index(r, 0)

    def ids(self) -> list[int]:
        return list(self._ids)

    def data(self, index: QModelIndex, role: int = Qt.ItemDataRole.DisplayRole):
        """The roles every row has (its name, id, the row itself, its status); ``_data`` the others."""
        row = self._row_at(index)
        if row is None:
            return None
        if role == Qt.ItemDataRole.DisplayRole:
            return row.name
        if role == IdRole:
            return row.id
        if role == RowRole:
            return row
        if role == StatusRole:
            return row.status
        return self._data(row, role)

    def _data(self, row, role: int):
        return None

    def flags(self, index: QModelIndex):
        if not index.isValid():
            return Qt.ItemFlag.NoItemFlags
        return Qt.ItemFlag.ItemIsEnabled | Qt.ItemFlag.ItemIsSelectable | Qt.ItemFlag.ItemNeverHasChildren

    # -- changing ----------------------------------------------------------------------
    def reset(self, rows: list) -> None:
        self.beginResetModel()
        self._ids = [row.id for row in rows]
        self._rows = {row.id: row for row in rows}
        self._index = {row_id: i for i, row_id in enumerate(self._ids)}
        self._pending.clear()
        self._repaint.clear()
        self.endResetModel()

    def _accepts(self, row) -> bool:
        return True

    def update(self, rows: Iterable) -> None:
        """Queue changed or new rows; they are applied by the next batch."""
        for row in rows:
            if self._accepts(row):
                self._pending[row.id] = row
        self._schedule()

    def repaint(self, row_id: int) -> None:
        """Queue a repaint of a row whose data did not change (an image arrived)."""
        if row_id in self._index:
            self._repaint.add(row_id)
            self._schedule()

    def _schedule(self) -> None:
        if (self._pending or self._repaint) and not self._timer.isActive():
            self._timer.start()

    def flush(self) -> None:
        """Apply what is queued now: one dataChanged per contiguous range, inserts at their place."""
        self._timer.stop()
        pending, self._pending = self._pending, {}
        repaint, self._repaint = self._repaint, set()
        changed, new = [], []
        for row_id, row in pending.items():
            if row_id in self._index:
                self._rows[row_id] = row
                changed.append(self._index[row_id])
            else:
                new.append(row)
        changed += [self._index[i] for i in repaint if i in self._index]
        for first, last in _ranges(changed):
            self.dataChanged.emit(self.index(first, 0), self.index(last, 0))
        if new:
            self._insert(new)
        if pending:
            self.rowsUpdated.emit(set(pending))

    def _insert(self, rows: list) -> None:
        new = sorted(rows, key=self._sort_key)
        at = len(self._ids)
        self.beginInsertRows(QModelIndex(), at, at + len(new) - 1)
        for row in new:
            self._index[row.id] = len(self._ids)
            self._ids.append(row.id)
            self._rows[row.id] = row
        self.endInsertRows()

    def _sort_key(self, row):
        return row.id

    def remove(self, row_id: int) -> None:
        r = self._index.get(row_id)
        if r is None:
            return
        self.beginRemoveRows(QModelIndex(), r, r)
        del self._ids[r]
        del self._rows[row_id]
        self._pending.pop(row_id, None)
        self._index = {i: n for n, i in enumerate(self._ids)}
        self.endRemoveRows()


class DocumentModel(_CoalescingListModel):
    """The documents of one session, in import order."""

    def __init__(self, images=None, parent=None):
        super().__init__(parent)
        self.session_id: int | None = None
        self.images = images
        if images is not None:
            images.imageReady.connect(self.repaint)

    def load(self, session_id: int | None, rows: list[DocRow]) -> None:
        self.session_id = session_id
        if self.images is not None:
            self.images.clear_wanted()
        self.reset([r for r in rows if r.session_id == session_id])

    def _accepts(self, row: DocRow) -> bool:
        return row.session_id == self.session_id

    def _data(self, row: DocRow, role: int):
        if role in (Qt.ItemDataRole.ToolTipRole, Qt.ItemDataRole.AccessibleDescriptionRole):
            text = f"{row.path}\n{STATUS_TEXT.get(row.status, row.status)}"
            text = f"{text}: {row.error}" if row.error else text
            if row.permanent and row.advice:  # the file is not at fault: what to do instead
                text += f"\n{row.advice[:1].upper()}{row.advice[1:]}."
            elif row.permanent:
                text += "\nNo retry will cure this (fix or replace the file, and Retry comes back)."
            elif row.status == FAILED_DOC:
                text += "\nRetry (Ctrl+R) queues it again."
            return text
        if role == Qt.ItemDataRole.AccessibleTextRole:
            return document_spoken(row)
        if role == ProgressRole:
            return row.progress
        return None


class DocumentFilterModel(QSortFilterProxyModel):
    """The grid's filters: by status (all, running, failed, done), the duplicates, and by a name search;
    and its order (``SORTS``: as imported, by date taken, by name; the duplicates by group, original first)."""

    def __init__(self, parent=None):
        super().__init__(parent)
        self._statuses = None
        self._text = ""
        self._matches: frozenset = frozenset()
        #: The duplicates: document id -> (its group's place, its place in the group: 0 the original).
        self._groups: dict[int, tuple[int, int]] = {}
        self.filter = "all"
        self.order = "added"
        self._key = None
        self.setDynamicSortFilter(True)

    def set_sort(self, name: str) -> None:
        """Order the grid: "added" (as imported), "taken" (date taken, oldest first) or "name"."""
        if name not in SORTS:
            raise ValueError(f"unknown order {name!r}")
        self.order, self._key = name, SORTS[name]
        self.invalidate()
        self.sort(-1 if self._key is None and self.filter != DUPLICATES else 0)

    def lessThan(self, left: QModelIndex, right: QModelIndex) -> bool:
        model = self.sourceModel()
        if self.filter == DUPLICATES:
            far = (len(self._groups), 0)
            return (self._groups.get(model.row(left.row()).id, far) <
                    self._groups.get(model.row(right.row()).id, far))
        if self._key is None:
            return left.row() < right.row()
        return self._key(model.row(left.row())) < self._key(model.row(right.row()))

    def set_filter(self, name: str) -> None:
        if name not in FILTERS and name != DUPLICATES:
            raise ValueError(f"unknown filter {name!r}")
        was = self.filter
        self.beginFilterChange()
        self.filter, self._statuses = name, FILTERS.get(name)
        self.endFilterChange(QSortFilterProxyModel.Direction.Rows)
        if DUPLICATES in (was, name) and was != name:  # the duplicates by group; the others as chosen
            self.invalidate()
            self.sort(0 if name == DUPLICATES or self._key is not None else -1)

    def set_duplicates(self, groups: Iterable[Iterable[int]]) -> None:
        """The session's groups of duplicates, as document ids, each with its original first."""
        places = {doc_id: (g, i) for g, ids in enumerate(groups) for i, doc_id in enumerate(ids)}
        if places == self._groups:
            return
        self.beginFilterChange()
        self._groups = places
        self.endFilterChange(QSortFilterProxyModel.Direction.Rows)
        if self.filter == DUPLICATES:
            self.invalidate()
            self.sort(0)

    def duplicate_count(self) -> int:
        """How many documents the Duplicates filter shows (with the search as it is)."""
        model = self.sourceModel()
        rows = (model.row_by_id(doc_id) for doc_id in self._groups)
        return sum(1 for row in rows if row is not None and self._found(row))

    def original_of(self, doc_id: int) -> int | None:
        """The original of a duplicate (itself for an original); None for a document in no group."""
        place = self._groups.get(doc_id)
        if place is None:
            return None
        return next(i for i, (g, n) in self._groups.items() if g == place[0] and n == 0)

    def set_search(self, text: str) -> None:
        """Show documents whose file name contains ``text`` (and those ``set_matches`` adds)."""
        self.beginFilterChange()
        self._text = text.strip().casefold()
        self._matches = frozenset()
        self.endFilterChange(QSortFilterProxyModel.Direction.Rows)

    def set_matches(self, doc_ids) -> None:
        """Documents the full-text search found for the current search text (OCR text, summaries)."""
        self.beginFilterChange()
        self._matches = frozenset(doc_ids)
        self.endFilterChange(QSortFilterProxyModel.Direction.Rows)

    @property
    def searching(self) -> bool:
        return bool(self._text)

    def _found(self, row: DocRow) -> bool:
        return not self._text or self._text in row.name.casefold() or row.id in self._matches

    def filterAcceptsRow(self, source_row: int, source_parent: QModelIndex) -> bool:
        if source_parent.isValid():
            return False
        row = self.sourceModel().row(source_row)
        if self._statuses is not None and row.status not in self._statuses:
            return False
        if self.filter == DUPLICATES and row.id not in self._groups:
            return False
        return self._found(row)

    def counts(self) -> dict[str, int]:
        """How many documents each filter would show with the search as it is (every one without a search)."""
        model = self.sourceModel()
        by_status = Counter(row.status for row in (model.row(r) for r in range(model.rowCount())) if self._found(row))
        return {name: by_status.total() if statuses is None else sum(by_status[s] for s in statuses)
                for name, statuses in FILTERS.items()}


class SessionModel(_CoalescingListModel):
    """Upload sessions, newest first."""

    def _insert(self, rows: list) -> None:
        # New sessions are newer than the ones shown: they go on top, newest first.
        new = sorted(rows, key=lambda r: -r.id)
        older = [r for r in new if self._ids and r.id < self._ids[0]]
        if older:  # a first full load arriving after a new session: rebuild in order
            self.reset(sorted([*self._rows.values(), *new], key=lambda r: -r.id))
            return
        self.beginInsertRows(QModelIndex(), 0, len(new) - 1)
        self._ids[0:0] = [r.id for r in new]
        for row in new:
            self._rows[row.id] = row
        self._index = {i: n for n, i in enumerate(self._ids)}
        self.endInsertRows()

    def _data(self, row: SessionRow, role: int):
        if role in (Qt.ItemDataRole.ToolTipRole, Qt.ItemDataRole.AccessibleDescriptionRole):
            when = datetime.datetime.fromtimestamp(row.created_at).strftime("%Y-%m-%d %H:%M")
            return (f"{row.name}\nadded {when}\n{row.total} documents: {row.complete} done, "
                    f"{row.running} running, {row.queued} queued, {row.failed} failed")
        if role == Qt.ItemDataRole.AccessibleTextRole:
            return session_spoken(row)
        if role == ProgressRole:
            return int(100 * row.finished / row.total) if row.total else 100
        return None

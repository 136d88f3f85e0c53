"""The owner thread: the one place in the app that talks to the Library.

The window never touches the DB, the queues, Redis or a worker. It hands an operation (a
function of the Library, made by ``operations.py``: one per action of a person) to
:class:`LibraryOwner` and gets the result back on the GUI thread through a queued signal. Between
operations the thread applies workers' events with a short ``pump`` and every two seconds runs
``Library.housekeeping`` (leases, dispatch, local workers), then reads the status bar's numbers.
Whatever changed reaches the window as rows (``queries.py``). An import's scan reads and hashes files
on a thread of its own (``submit``) and hands the owner thread its batches to add.
"""

from __future__ import annotations

import logging
import queue
import sys
import threading
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

from PySide6.QtCore import QObject, Signal

from ..config import Settings
from ..engine import events as ev
from ..engine.importer import found_batches
from ..engine.library import Library
from ..engine.retrying import TRANSIENT_ERRORS
from ..store.db import Job, JobEvent, UploadSession
from . import queries

log = logging.getLogger("snapdesk.gui.owner")

class TrackingLibrary(Library):
    """A Library that remembers which documents and sessions the events it applies touch."""

    def __init__(self, *args, **kwargs):
        super().__init__(*args, **kwargs)
        self.touched_docs: set[int] = set()
        self.touched_sessions: set[int] = set()

    def applied(self, events) -> None:
        for event in events:
            if getattr(event, "document_id", None) is not None:
                self.touched_docs.add(event.document_id)
                self.touched_sessions.add(event.session_id)

    def touch_jobs(self, job_ids) -> None:
        for doc_id, session_id in Job.select(Job.document, Job.session).where(Job.id.in_(list(job_ids))).tuples():
            self.touched_docs.add(doc_id)
            self.touched_sessions.add(session_id)


#: Work for the owner thread: a function of its library (``operations.py`` makes them).
Operation = Callable[[TrackingLibrary], Any]


class LibraryOwner(QObject):
    """Runs the process's Library on one background thread; results come back as signals."""

    #: {"transport": str} once the library is open.
    ready = Signal(dict)
    #: The library cannot be opened (a message for a person).
    failed = Signal(str)
    #: Sessions added or whose counts changed.
    sessionsChanged = Signal(list)
    #: DocRows that changed.
    documentsChanged = Signal(list)
    #: A session was removed (its id).
    sessionRemoved = Signal(int)
    #: {"transport", "workers", "queues", "throughput" (jobs/min), "error", "disconnected"} every two seconds.
    statusChanged = Signal(dict)
    #: An operation without an error callback failed (a message for a person).
    operationFailed = Signal(str)
    #: (callback, result or exception, failed): an operation ended; delivered on the GUI thread.
    _finished = Signal(object, object, bool)

    #: How long one pump waits for events; the longest an operation waits to start.
    BLOCK_MS = 50
    HOUSEKEEPING_S = 2.0
    #: The longest the thread runs operations back to back before it applies events and reports changes.
    OPS_SLICE_S = 0.1
    #: Sessions' counts are recomputed at most this often while events stream in.
    SESSION_REFRESH_S = 0.5

    def __init__(self, settings: Settings, parent: QObject | None = None):
        super().__init__(parent)
        self.settings = settings
        self._ops: queue.Queue = queue.Queue()
        #: Sessions removed or cancelled while their scan runs: it stops adding to them.
        self._stopped_scans: set[int] = set()
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, name="snapdesk-owner", daemon=True)
        self._finished.connect(self._deliver)

    # -- from the GUI thread -----------------------------------------------------------
    #: How long a thread holds the GIL while another waits for it (Python's default is 5 ms). The
    #: owner thread is busy in Python while events pour in; a shorter turn hands the GIL back to
    #: the GUI thread sooner.
    SWITCH_INTERVAL_S = 0.001

    def start(self) -> None:
        sys.setswitchinterval(min(sys.getswitchinterval(), self.SWITCH_INTERVAL_S))
        self._thread.start()

    def call(self, op: Operation, on_done: Callable[[Any], None] | None = None,
             on_error: Callable[[Exception], None] | None = None) -> None:
        """Run ``op(library)`` on the owner thread; ``on_done(result)`` or ``on_error(exc)`` on the GUI thread."""
        self._ops.put((op, on_done, on_error))

    def stop(self, timeout: float = 5.0) -> bool:
        """Stop the thread after what it is doing; True when it ended within ``timeout``."""
        self._stop.set()
        if self._thread.is_alive():
            self._thread.join(timeout)
        if self._thread.is_alive():
            log.warning("the owner thread is still busy after %.0f s; leaving it behind", timeout)
            return False
        return True

    def is_running(self) -> bool:
        return self._thread.is_alive()

    def _deliver(self, callback, value, failed: bool) -> None:
        if callback is not None:
            callback(value)
        elif failed:
            self.operationFailed.emit(str(value))

    # -- the owner's own operations ----------------------------------------------------
    def submit(self, paths: list[str], on_started=None, on_done=None, on_error=None) -> None:
        """Add files and folders as a new session. ``on_started(session id)`` comes at once, with the
        session empty; a scan thread reads and hashes the files and hands them over in batches, which
        arrive as ``documentsChanged`` while the owner goes on applying events; ``on_done`` gets what
        the scan left out when it ends."""
        def start(lib: TrackingLibrary):
            session = lib.begin_session(paths)
            self.sessionsChanged.emit(queries.session_rows([session.id]))
            threading.Thread(target=self._scan, args=(lib.scanner(), session.id, paths, on_done, on_error),
                             name=f"snapdesk-scan-{session.id}", daemon=True).start()
            return session.id
        self.call(start, on_started, on_error)

    def _scan(self, scanner, session_id: int, paths: list[str], on_done, on_error) -> None:
        """On the scan thread: only files are read here; every write is an operation of the owner."""
        state = {"priority": None}

        # At most two batches handed over and not yet added: the next is hashed while the owner adds
        # one, and what a person asks for meanwhile (cancel, open a document) waits for one batch at most.
        room = threading.Semaphore(2)

        def add(batch):
            def op(lib: TrackingLibrary):
                try:
                    session = UploadSession.get_or_none(UploadSession.id == session_id)
                    if session is None or session_id in self._stopped_scans:
                        return
                    if state["priority"] is None:
                        state["priority"] = lib.drop_priority(batch)
                    lib.touched_docs.update(lib.add_documents(session, batch, priority=state["priority"]))
                    lib.touched_sessions.add(session_id)
                finally:
                    room.release()
            return op

        def end(lib: TrackingLibrary):
            session = UploadSession.get_or_none(UploadSession.id == session_id)
            if session is not None:
                lib.end_scan(session, scanner)
                lib.touched_sessions.add(session_id)
            self._stopped_scans.discard(session_id)
            return {"session_id": session_id, "skipped": dict(scanner.skipped), "problems": list(scanner.problems)}

        try:
            for batch in found_batches(scanner, paths, first=self.settings.small_drop + 1):
                while not room.acquire(timeout=0.2):
                    if self._stop.is_set():
                        break
                if self._stop.is_set() or session_id in self._stopped_scans:
                    break
                self.call(add(batch))
        except Exception as exc:  # the scan itself broke: what it found so far stays
            log.exception("scanning %s", paths)
            scanner.skip(Path(paths[0]), "unreadable", f"the scan stopped: {exc}")
        self.call(end, on_done, on_error)

    def stop_scan(self, session_id: int) -> None:
        """The session's scan adds nothing more (it is being removed or cancelled); batches it
        already handed over are dropped. Called on the GUI thread, before the operation runs."""
        self._stopped_scans.add(session_id)

    # -- the thread --------------------------------------------------------------------
    def _run(self) -> None:
        try:
            lib = TrackingLibrary(self.settings)
        except Exception as exc:  # a data folder that cannot be used, a bad Redis URL or secret
            log.exception("cannot open the library")
            self.failed.emit(str(exc))
            return
        try:
            self.ready.emit({"transport": lib.transport.describe()})
            self.sessionsChanged.emit(queries.session_rows())
            self._loop(lib)
        finally:
            self._drop_unrun_operations()
            try:
                lib.close(stop_local_workers=True)
            except Exception:
                log.exception("closing the library")

    def _loop(self, lib: TrackingLibrary) -> None:
        next_housekeeping = 0.0
        next_sessions = 0.0
        pending_sessions: set[int] = set()
        while not self._stop.is_set():
            ran = self._run_ops(lib)
            try:
                lib.pump(block_ms=0 if ran else self.BLOCK_MS)
            except TRANSIENT_ERRORS as exc:  # Redis gone: the status bar says so; the log keeps the events
                log.warning("cannot read events: %s", exc)
                self._stop.wait(1)
            except Exception:
                log.exception("applying events")
                self._stop.wait(1)
            now = time.monotonic()
            if now >= next_housekeeping:
                self._housekeeping(lib)
                next_housekeeping = time.monotonic() + self.HOUSEKEEPING_S
            pending_sessions |= lib.touched_sessions
            lib.touched_sessions = set()
            try:
                if lib.touched_docs:
                    docs, lib.touched_docs = lib.touched_docs, set()
                    self.documentsChanged.emit(queries.document_rows(doc_ids=docs))
                if pending_sessions and now >= next_sessions:
                    self.sessionsChanged.emit(queries.session_rows(pending_sessions))
                    pending_sessions = set()
                    next_sessions = now + self.SESSION_REFRESH_S
            except Exception:
                log.exception("reading changed rows")
        if pending_sessions:
            self.sessionsChanged.emit(queries.session_rows(pending_sessions))

    def _run_ops(self, lib: TrackingLibrary) -> bool:
        """Run queued operations for up to OPS_SLICE_S, then return, so that what they changed
        reaches the window and events keep being applied while a long import queues batch after batch."""
        ran = False
        until = time.monotonic() + self.OPS_SLICE_S
        while not self._stop.is_set() and time.monotonic() < until:
            try:
                op, on_done, on_error = self._ops.get_nowait()
            except queue.Empty:
                return ran
            ran = True
            try:
                result = op(lib)
            except Exception as exc:
                log.exception("operation %r failed", op)
                self._finished.emit(on_error, exc, True)
            else:
                self._finished.emit(on_done, result, False)
        return ran

    def _drop_unrun_operations(self) -> None:
        """The library closed: operations still waiting are dropped, and none of their callbacks runs."""
        while True:
            try:
                self._ops.get_nowait()
            except queue.Empty:
                return

    def _housekeeping(self, lib: TrackingLibrary) -> None:
        status: dict = {"transport": lib.transport.describe(), "error": None}
        try:
            started = lib.clock()
            lib.housekeeping()
            given_up = JobEvent.select(JobEvent.job).where(JobEvent.type.in_((ev.OwnerEvent.LEASE_EXPIRED, ev.OwnerEvent.TASK_LOST)),
                                                           JobEvent.at >= started)
            lib.touch_jobs([job_id for (job_id,) in given_up.tuples()])
            status["workers"] = lib.transport.workers()
            status["queues"] = lib.transport.queue_counts()
            status["throughput"] = queries.throughput()
        except TRANSIENT_ERRORS as exc:
            log.warning("housekeeping: %s", exc)
            status["error"] = str(exc)
            status["disconnected"] = True
        except Exception as exc:
            log.exception("housekeeping")
            status["error"] = str(exc)
        self.statusChanged.emit(status)

"""What a person asks of the library, one function per action (as Anki's ``aqt.operations``).

Every view runs its work off the GUI thread this one way::

    operations.retry(owner, job_ids).success(say_how_many).failure(say_why).run()

An :class:`Op` guarantees:

- its work runs on the owner thread (``gui/owner.py``), the one writer of the library, after the
  operations asked for before it; it never touches a widget;
- at most one of its callbacks is called, on the GUI thread: ``success(result)`` when the work
  returned, ``failure(exception)`` when it raised (neither when the library closes first). Without a
  failure callback, the failure is said in the window's status bar ("Could not retry: ..."), through
  ``LibraryOwner.operationFailed``; a success callback is never handed an exception;
- with a ``parent`` widget, neither callback is called once that widget is gone (a dialog closed
  while its question was on the way);
- an answer that is not a fault (``expected``: search by meaning without an embeddings model) goes
  to the failure callback without a traceback in the log.

Work that must not queue behind the library, or hold it up, because it waits on the network (the
Settings dialog's Test buttons) is a :class:`Task`: the same callbacks, run on a thread of its own.
It never touches the library. Two things stay outside on purpose: the scan of an import reads and
hashes files on a thread of the owner's (``LibraryOwner.submit``), so that events go on being applied
meanwhile, and thumbnails are decoded in ``images.ImageCache``'s pool, newest request first.
"""

from __future__ import annotations

import json
import logging
import threading
from collections.abc import Callable, Iterable
from pathlib import Path
from typing import Any, Generic, TypeVar

import shiboken6
from PySide6.QtCore import QObject, Signal

from ..config import Settings, write_settings_file
from ..engine import meaning
from ..engine.retrying import TRANSIENT_ERRORS
from ..store.db import UploadSession
from . import queries
from .owner import LibraryOwner, TrackingLibrary

log = logging.getLogger("snapdesk.gui.operations")

T = TypeVar("T")
A = TypeVar("A", bound="_Action[Any]")
Failure = Callable[[Exception], None]


class _Expected:
    """An expected failure, carried back as a result so that the owner does not log it as a fault."""

    def __init__(self, error: Exception):
        self.error = error


class _Action(Generic[T]):
    """What every way of running an action shares: its callbacks, and how they are called."""

    def __init__(self, what: str, parent: QObject | None):
        #: What it does, for a failure without a callback: "Could not <what>: <why>".
        self.what = what
        self.parent = parent
        self._success: Callable[[T], None] | None = None
        self._failure: Failure | None = None

    def success(self: A, callback: Callable[[Any], None]) -> A:
        self._success = callback
        return self

    def failure(self: A, callback: Failure) -> A:
        self._failure = callback
        return self

    def run(self) -> None:
        raise NotImplementedError

    # -- on the GUI thread -------------------------------------------------------------
    def _alive(self) -> bool:
        return self.parent is None or shiboken6.isValid(self.parent)

    def _succeeded(self, result: Any) -> None:
        if isinstance(result, _Expected):
            self._failed(result.error)
        elif self._alive() and self._success is not None:
            self._success(result)

    def _failed(self, error: Exception) -> None:
        if not self._alive():
            return
        if self._failure is not None:
            self._failure(error)
        else:
            self._unheard(f"Could not {self.what}: {error}")

    def _unheard(self, message: str) -> None:
        log.warning("%s", message)


class Op(_Action[T]):
    """One action of a person on the library: ``.success(...)``, ``.failure(...)``, then ``.run()``."""

    def __init__(self, owner: LibraryOwner, work: Callable[[TrackingLibrary], T], what: str,
                 parent: QObject | None = None, expected: tuple[type[Exception], ...] = ()):
        super().__init__(what, parent)
        self.owner = owner
        self.work = work
        self.expected = expected

    def run(self) -> None:
        self.owner.call(self._work, self._succeeded, self._failed)

    def _work(self, lib: TrackingLibrary) -> Any:  # on the owner thread
        try:
            return self.work(lib)
        except self.expected as exc:
            return _Expected(exc)

    def _unheard(self, message: str) -> None:
        self.owner.operationFailed.emit(message)  # the window's status bar


class _Relay(QObject):
    """Made on the GUI thread: what a Task's thread emits is delivered there."""

    done = Signal(object, bool)


class Task(_Action[T]):
    """Work that touches neither the library nor a widget and may wait long (the network): on a
    thread of its own, so that it never holds up the owner thread. The same callbacks as an Op;
    a failure without a callback is only logged."""

    #: Tasks under way: each keeps its relay alive until its answer is delivered.
    _running: set[Task[Any]] = set()

    def __init__(self, work: Callable[[], T], what: str, parent: QObject | None = None):
        super().__init__(what, parent)
        self.work = work
        self._relay = _Relay()
        self._relay.done.connect(self._deliver)

    def run(self) -> None:
        Task._running.add(self)
        threading.Thread(target=self._thread, name=f"snapdesk-task-{self.what}", daemon=True).start()

    def _thread(self) -> None:
        try:
            result = self.work()
        except Exception as exc:  # whatever went wrong is the answer to give
            self._relay.done.emit(exc, False)
        else:
            self._relay.done.emit(result, True)

    def _deliver(self, value: Any, ok: bool) -> None:
        Task._running.discard(self)
        if ok:
            self._succeeded(value)
        else:
            self._failed(value)


# -- getting documents in ------------------------------------------------------------------

class _Import(_Action[dict[str, Any]]):
    def __init__(self, owner: LibraryOwner, paths: list[str], started: Callable[[int], None] | None):
        super().__init__("add the files", None)
        self.owner = owner
        self.paths = paths
        self.started = started

    def run(self) -> None:
        self.owner.submit(self.paths, on_started=self.started, on_done=self._succeeded, on_error=self._failed)

    def _unheard(self, message: str) -> None:
        self.owner.operationFailed.emit(message)


def add_paths(owner: LibraryOwner, paths: list[str],
              started: Callable[[int], None] | None = None) -> _Action[dict[str, Any]]:
    """Add files and folders as a new session. ``started(session id)`` comes at once, with the
    session empty; its documents arrive as the scan finds them; success gets what the scan left
    out: {"session_id", "skipped": {reason: count}, "problems"}."""
    return _Import(owner, paths, started)


# -- reading --------------------------------------------------------------------------------

def load_session(owner: LibraryOwner, session_id: int) -> Op[list[queries.DocRow]]:
    """Every document row of a session."""
    return Op(owner, lambda lib: queries.document_rows(session_id=session_id), "read the session")


def refresh_rows(owner: LibraryOwner, doc_ids: Iterable[int]) -> Op[None]:
    """Read these documents' rows again (what the disk says of their files may have changed);
    they arrive as ``documentsChanged``."""
    ids = list(doc_ids)
    return Op(owner, lambda lib: owner.documentsChanged.emit(queries.document_rows(doc_ids=ids)), "read the documents")


def document_details(owner: LibraryOwner, doc_id: int) -> Op[dict[str, Any] | None]:
    """A document for the details panel (None when it is gone). Opening it moves its waiting jobs
    ahead of batch work."""
    def work(lib: TrackingLibrary) -> dict[str, Any] | None:
        try:
            lib.prioritise([doc_id])
        except TRANSIENT_ERRORS as exc:  # the details still show; the jobs keep their place
            log.warning("could not move the jobs of document %s ahead: %s", doc_id, exc)
        return queries.document_details(doc_id)
    return Op(owner, work, "read the document")


def skipped_files(owner: LibraryOwner, session_id: int, parent: QObject | None = None) -> Op[dict[str, Any]]:
    """The files a session's import left out (``queries.read_skipped``)."""

    return Op(owner, lambda lib: queries.read_skipped(session_id), "read the skipped files", parent)


def search(owner: LibraryOwner, text: str) -> Op[dict[int, set[int]]]:
    """{session id: ids of its documents whose text, summary or name match}, over every session."""
    def work(lib: TrackingLibrary) -> dict[int, set[int]]:
        found: dict[int, set[int]] = {}
        for hit in lib.search(text, limit=5000):
            found.setdefault(hit["session_id"], set()).add(hit["document_id"])
        return found
    return Op(owner, work, "search")


def search_meaning(owner: LibraryOwner, text: str, limit: int) -> Op[list[dict[str, Any]]]:
    """The words' hits first, then the nearest in meaning; fails with ``MeaningError`` (a reason to
    show, such as no embeddings model) without a fault logged."""
    return Op(owner, lambda lib: meaning.search(lib, text, limit=limit), "search by meaning",
              expected=(meaning.MeaningError,))


def similar(owner: LibraryOwner, doc_id: int, limit: int) -> Op[list[dict[str, Any]]]:
    """The documents most like this one, as ``search_meaning``."""
    return Op(owner, lambda lib: meaning.similar(lib, doc_id, limit=limit), "find similar documents",
              expected=(meaning.MeaningError,))


def duplicates(owner: LibraryOwner, session_id: int) -> Op[list[list[int]]]:
    """A session's groups of duplicates as document ids, each group's original first (``Library.duplicates``)."""
    return Op(owner, lambda lib: [[p.document_id for p in group.pictures] for group in lib.duplicates(session_id)],
              "find the duplicates")


JobStatistics = tuple[dict[str, Any], list[dict[str, Any]], list[str]]


def job_statistics(owner: LibraryOwner, parent: QObject | None = None) -> Op[JobStatistics]:
    """For the Jobs view: (statistics, failed jobs with whether a retry may cure each, paused queues)."""
    def work(lib: TrackingLibrary) -> JobStatistics:
        failed = lib.failed_jobs(limit=500)
        documents = queries.document_files({f["document_id"] for f in failed if f["error_kind"] == "permanent"})
        for f in failed:  # asks the disk whether a permanent failure's file changed since
            f["retry_cures"] = queries.retry_cures("failed", f["error_kind"], documents.get(f["document_id"], {}))
        return lib.statistics(), failed, sorted(lib.paused_queues())
    return Op(owner, work, "read the statistics", parent)


# -- the person's actions on jobs and sessions ------------------------------------------------

def retry(owner: LibraryOwner, job_ids: Iterable[int], parent: QObject | None = None) -> Op[int]:
    """Queue these failed jobs again, ahead of batch work; success gets how many went."""
    ids = list(job_ids)

    def work(lib: TrackingLibrary) -> int:
        retried = lib.retry(job_ids=ids) if ids else []
        lib.touch_jobs([job.id for job in retried])
        return len(retried)
    return Op(owner, work, "retry", parent)


def retry_failed(owner: LibraryOwner, session_id: int | None = None, parent: QObject | None = None) -> Op[int]:
    """Every failed job of the session (None: of every session) that a retry may cure; a permanent
    failure is left as it is, unless its file changed since."""
    def work(lib: TrackingLibrary) -> int:
        ids = queries.retryable_failed_job_ids(session_id=session_id)
        retried = lib.retry(job_ids=ids) if ids else []
        lib.touch_jobs([job.id for job in retried])
        return len(retried)
    return Op(owner, work, "retry", parent)


def reprocess(owner: LibraryOwner, doc_ids: Iterable[int]) -> Op[int]:
    """Run every finished job of these documents again, not reusing earlier results."""
    ids = list(doc_ids)

    def work(lib: TrackingLibrary) -> int:
        jobs = lib.reprocess(ids)
        lib.touch_jobs([job.id for job in jobs])
        return len(jobs)
    return Op(owner, work, "process again")


def cancel(owner: LibraryOwner, job_ids: Iterable[int]) -> Op[int]:
    """Cancel these unfinished jobs; success gets how many."""
    ids = list(job_ids)

    def work(lib: TrackingLibrary) -> int:
        cancelled = lib.cancel(job_ids=ids)
        lib.touch_jobs(cancelled)
        return len(cancelled)
    return Op(owner, work, "cancel")


def cancel_session(owner: LibraryOwner, session_id: int) -> Op[int]:
    """Cancel every unfinished job of a session, and what its scan has yet to add."""
    owner.stop_scan(session_id)  # now: batches the scan already handed over are dropped

    def work(lib: TrackingLibrary) -> int:
        cancelled = lib.cancel(session_id=session_id)
        lib.touch_jobs(cancelled)
        return len(cancelled)
    return Op(owner, work, "cancel")


def discard(owner: LibraryOwner, job_ids: Iterable[int], parent: QObject | None = None) -> Op[None]:
    """Take failed jobs off the failed list; their error is kept."""
    ids = list(job_ids)
    return Op(owner, lambda lib: lib.touch_jobs(lib.discard(ids)), "discard", parent)


def set_paused(owner: LibraryOwner, queue: str, paused: bool, parent: QObject | None = None) -> Op[None]:
    """Pause or resume a queue for every worker (of the farm, in Redis mode)."""
    return Op(owner, lambda lib: lib.pause(queue) if paused else lib.resume(queue),
              f"{'pause' if paused else 'resume'} the {queue} queue", parent)


def remove_session(owner: LibraryOwner, session_id: int) -> Op[bool]:
    """Forget a session and the result files no other session shares (the originals stay); the
    window learns it from ``sessionRemoved``."""
    owner.stop_scan(session_id)  # now: batches the scan already handed over are dropped

    def work(lib: TrackingLibrary) -> bool:
        removed = lib.remove_session(session_id)
        lib.touched_sessions.discard(session_id)
        if removed:
            owner.sessionRemoved.emit(session_id)
        return removed
    return Op(owner, work, "remove the session")


def export_session(owner: LibraryOwner, session_id: int, path: str, fmt: str) -> Op[str]:
    """Write a session's report as JSON or CSV; success gets the path."""
    def work(lib: TrackingLibrary) -> str:
        session = UploadSession.get_or_none(UploadSession.id == session_id)
        if session is None:
            raise ValueError("the session is no longer in the library")
        report = lib.report(session)
        text = json.dumps(report, indent=2) + "\n" if fmt == "json" else queries.report_csv(report)
        Path(path).write_text(text, encoding="utf-8")
        return path
    return Op(owner, work, "export")


def save_settings(owner: LibraryOwner, values: dict[str, object], reload: Callable[[], Settings],
                  parent: QObject | None = None) -> Op[Settings]:
    """Write the settings file and read the settings again (on the owner thread: the disk);
    success gets the settings now in effect."""

    def work(lib: TrackingLibrary) -> Settings:
        write_settings_file(values)
        return reload()
    return Op(owner, work, "save the settings", parent)


def check_settings(which: str, check: Callable[..., str], *args: Any, parent: QObject | None = None) -> Task[str]:
    """A Settings Test button's check (Redis, an LLM or embeddings endpoint) as entered: a Task, as
    it may wait on the network for seconds; success gets what it found."""
    return Task(lambda: check(*args), f"test {which}", parent)

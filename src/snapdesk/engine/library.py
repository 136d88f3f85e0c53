"""The library: the owner of a library DB, and the only process that writes it.

It imports what a person drops (an upload session), hands jobs to the transport's queues,
and applies the events workers send back. Only the owner makes attempts: a job's first, a retry
a worker asked for, one that replaces an attempt whose worker went silent or whose task was lost.
Every task, mark and event names one attempt of one job of this library (ids are never reused),
so a stale one can only be ignored.

Applying is idempotent: an event seen twice, for a finished job, or from a superseded attempt
changes nothing. An event that is forged, malformed or does not match its job is set aside
(``held_event``) and the owner goes on; one whose result files cannot be written yet is deferred
and applied again later. Time is the owner's: leases run on its clock, from when it applied an
event, and are judged only once it has applied everything that was waiting. The GUI and the CLI
are both just owners of a Library.

Why one file of about a thousand lines: ``Library`` is the one writer, and every change it makes to
a job (import, dispatch, leases, a person's actions, upkeep) is here, section by section, so that
"who can change this job, and how" has one answer to read. What does not write lives elsewhere:
what an event does (``projection.py``), the numbers (``stats.py``), search by meaning
(``meaning.py``), duplicates (``duplicates.py``), the queues (``transport/``).
"""

from __future__ import annotations

import datetime
import hashlib
import logging
import re
import time
import uuid
from collections import Counter
from pathlib import Path
from typing import Any, Callable, Iterable

import peewee

from ..config import Settings
from ..processors.similarity import Grouping
from ..store.db import (CANCELLED, COMPLETE, DEFERRED, DocStatus, FAILED, JOB_STATES, PENDING, RUNNING, QUEUED, SET_ASIDE,
                        TERMINAL, UNFINISHED, Artifact, Document, HeldEvent, Job, JobEvent, LiveClip, Meta,
                        SkippedFile, UploadSession, db, open_db, tuples)
from . import events as ev
from .importer import FoundFile, Scanner, found_batches, read_ahead
from . import duplicates, meaning
from .duplicates import Group as DuplicateGroup
from .jobs import JOB_TYPES, SUMMARY_TEXT_LIMIT, JobType, dependents_of, job_types_for
from .projection import SEARCHED_JOB_TYPES, Projection, ResultNotStored, reindex_documents, unindex_documents
from . import stats
from .local_workers import LocalWorkers, try_lock
from .retrying import REFUSED_FOR_GOOD, TRANSIENT_ERRORS, Backoff, describe as describe_error, wait_out
from .attempt import PAYLOAD_VERSION
from .trash import TRASH, Trash
from .transport import EVERY_LANE, PRIORITY_BATCH, PRIORITY_INTERACTIVE, Transport, make_transport

log = logging.getLogger("snapdesk.library")

class LibraryError(Exception):
    """The library cannot be used as asked; the message says why and what to do."""


class Library:
    EVENT_BATCH = 500
    #: The sessions (or the whole library) whose duplicates found so far are kept (``duplicates``).
    KEPT_GROUPINGS = 4

    def __init__(self, settings: Settings, transport: Transport | None = None, local_workers: LocalWorkers | None = None,
                 read_only: bool = False, clock: Callable[[], float] = time.time):
        """Open the library as its one writer (the owner). While another process owns it (the window,
        or a command that waits), this raises LibraryError, unless ``read_only``: then it only reads
        the DB, and that other owner applies the events."""
        self.settings = settings
        #: The owner's clock: leases, ages and retry times are measured on it, never on a worker's.
        self.clock = clock
        self.data_dir = Path(settings.data_dir)
        try:
            self.data_dir.mkdir(parents=True, exist_ok=True)
            self._owner_lock = try_lock(self.data_dir / "owner.lock")
            if self._owner_lock is None and not read_only:
                raise LibraryError(f"another SnapDesk (the window, or a command still running) is using the library in "
                                   f"{self.data_dir}; use it from there, or close it first")
            self.read_only = self._owner_lock is None
            self.database = open_db(self.data_dir / "library.db")
        except (OSError, peewee.OperationalError) as exc:
            lock = getattr(self, "_owner_lock", None)
            if lock is not None:
                lock.close()
            raise LibraryError(f"cannot use the data folder {self.data_dir}: {getattr(exc, 'strerror', None) or exc}. "
                               "Choose a folder you can write to (SNAPDESK_DATA_DIR or --data-dir).") from None
        if not self.read_only:  # a scan the last run did not finish (it quit or crashed) is over, and says so
            for cut_short in UploadSession.select().where(UploadSession.scanning == True):  # noqa: E712
                cut_short.skipped = {**(cut_short.skipped or {}), "interrupted": 1}
                cut_short.scanning = False
                cut_short.save()
        owner = Meta.get_value("owner")
        if owner is None:
            owner = uuid.uuid4().hex
            Meta.set_value("owner", owner)
        self.owner: str = owner
        try:
            self.transport = transport or make_transport(settings)
        except Exception:  # a bad Redis URL or a missing secret: leave nothing open behind
            self.database.close()
            if self._owner_lock is not None:
                self._owner_lock.close()
            raise
        self.artifacts_dir = self.data_dir / "artifacts"
        self.projection = Projection(self.artifacts_dir, settings.lease_seconds)
        #: Result folders no document needs any more, deleted in the background (``trash``).
        self.trash = Trash(self.artifacts_dir / TRASH)
        if not self.read_only:
            self.trash.recover()
        if local_workers is None and settings.wants_local_workers:
            local_workers = LocalWorkers(settings, idle_exit=settings.worker_idle_exit)
        self.local_workers = local_workers
        self._unblocked = False  # set while applying events when a job others wait for completes
        #: Whether the last read of the event log found all there was: only then are leases judged.
        self.caught_up = False
        self._unacked: list[str] = []  # applied, but not yet deleted from the log (it was unreachable)
        self._unreleased: list[str] = []  # document copies to delete from Redis, likewise
        self._groupings: dict[int | None, Grouping[str]] = {}

    def close(self, stop_local_workers: bool = False) -> None:
        """Close the library. The window stops the local worker it started (which drains by itself);
        the command line leaves it to finish the work and exit when idle."""
        if stop_local_workers and self.local_workers:
            self.local_workers.stop(timeout=None)
        if self._unacked or self._unreleased:  # a batch applied while more waited
            try:
                self._finish_batch()
            except TRANSIENT_ERRORS as exc:  # applied again by the next owner, which changes nothing
                log.warning("could not delete applied events from the log: %s", describe_error(exc))
        self.trash.wait()  # the result files of removed sessions: gone when the library is closed
        self.transport.close()
        self.database.close()
        if self._owner_lock is not None:
            self._owner_lock.close()
            self._owner_lock = None

    def __enter__(self) -> Library:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    # -- import ------------------------------------------------------------------------
    def submit(self, paths: Iterable[str | Path], reprocess: bool = False, name: str | None = None,
               priority: int | None = None) -> tuple[UploadSession, Scanner]:
        """Import files and folders as one upload session and queue their jobs, batch by batch as the
        scan finds them (the first jobs run while a big folder is still being hashed).

        Without a ``priority``, a small drop (``SNAPDESK_SMALL_DROP`` documents or fewer) is work a
        person waits for and goes ahead of batch work; a bigger one is batch."""
        listed = [str(p) for p in paths]
        session = self.begin_session(listed, name)
        scanner = self.scanner()
        for batch in read_ahead(found_batches(scanner, listed, first=self.settings.small_drop + 1)):
            if priority is None:
                priority = self.drop_priority(batch)
            self.add_documents(session, batch, reprocess=reprocess, priority=priority)
        self.end_scan(session, scanner)
        return session, scanner

    def scanner(self) -> Scanner:
        return Scanner(max_bytes=self.settings.max_file_mb * 2**20)

    def drop_priority(self, first_batch: list[tuple[FoundFile, str]]) -> int:
        """The lane of a drop, from its first batch (which holds more than a small drop unless the scan
        ended within it)."""
        return PRIORITY_INTERACTIVE if len(first_batch) <= self.settings.small_drop else PRIORITY_BATCH

    def begin_session(self, paths: list[str], name: str | None = None) -> UploadSession:
        """A new, empty upload session whose scan has begun."""
        return UploadSession.create(name=name or _session_name(paths), paths=paths, skipped={}, scanning=True)

    def add_documents(self, session: UploadSession, found: list[tuple[FoundFile, str]], reprocess: bool = False,
                      priority: int = PRIORITY_BATCH) -> list[int]:
        """Add scanned files (with their content hashes) to a session and queue their jobs; their ids."""
        earlier = {} if reprocess else self._earlier_results([sha for _, sha in found],
                                                             sorted(self.settings.enabled_job_types))
        ids: list[int] = []
        new_jobs: list[tuple[Any, ...]] = []
        now = time.time()  # created_at, as the models' default gives it
        with db.atomic():
            # Plain SQL, as the rows the models would write: building the statements through the ORM
            # cost more than the rest of an import of small files.
            rows = [(session.id, str(f.path), f.size, sha, f.kind, f.mtime, False, now, "complete") for f, sha in found]
            for i in range(0, len(rows), 100):  # SQLite takes at most 999 variables a statement
                chunk = rows[i:i + 100]
                # RETURNING's order is SQLite's choice; ids are given in the order rows are inserted.
                ids += sorted(doc_id for (doc_id,) in db.execute_sql(
                    "INSERT INTO document (session_id, path, size, sha256, kind, mtime, blob_in_flight, created_at, "
                    f"status) VALUES {', '.join(['(?, ?, ?, ?, ?, ?, ?, ?, ?)'] * len(chunk))} RETURNING id",
                    [value for row in chunk for value in row]).fetchall())
            clips = [{"document": doc_id, "path": str(f.clip.path), "size": f.clip.size, "mtime": f.clip.mtime,
                      "duration": f.clip.duration} for doc_id, (f, _) in zip(ids, found) if f.clip]
            for i in range(0, len(clips), 100):  # a Live Photo's clip, with its still's document
                LiveClip.insert_many(clips[i:i + 100]).execute()
            for doc_id, (f, sha) in zip(ids, found):
                doc = None
                for job_type in job_types_for(f.kind, self.settings.enabled_job_types):
                    if (sha, job_type.name) in earlier:
                        doc = doc or Document.get_by_id(doc_id)
                        self._reuse(doc, job_type.name, earlier[sha, job_type.name], priority)
                    else:
                        new_jobs.append((doc_id, session.id, job_type.name, PENDING, 1, self.settings.retry_attempts,
                                         priority, 0, now))
            if new_jobs:
                db.connection().executemany(
                    "INSERT INTO job (document_id, session_id, type, state, attempt, max_attempts, priority, progress, "
                    "created_at) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?)", new_jobs)
        try:
            self.dispatch()
        except TRANSIENT_ERRORS as exc:  # the jobs wait in the library; the next dispatch queues them
            log.warning("could not queue the jobs yet: %s", describe_error(exc))
        self.ensure_workers()
        return ids

    def end_scan(self, session: UploadSession, scanner: Scanner) -> None:
        """The scan is over: keep what it left out, counted by reason and named (as many as it named)."""
        rows = [{"session": session.id, "path": path, "reason": reason, "detail": detail}
                for path, reason, detail in scanner.skipped_paths]
        with db.atomic():
            session.skipped = dict(scanner.skipped)
            session.scanning = False
            session.save()
            for i in range(0, len(rows), 200):  # SQLite takes at most 999 variables a statement
                SkippedFile.insert_many(rows[i:i + 200]).execute()

    def _earlier_results(self, shas: list[str], job_types: list[str]) -> dict[tuple[str, str], Job]:
        """The latest completed job of each type for each content hash: results a new document with
        the same content reuses."""
        found: dict[tuple[str, str], Job] = {}
        for i in range(0, len(shas), 500):
            query = (Job.select(Job, Document).join(Document)
                     .where(Document.sha256.in_(shas[i:i + 500]), Job.type.in_(job_types), Job.state == COMPLETE)
                     .order_by(Job.finished_at.desc()))
            for job in query:
                found.setdefault((job.document.sha256, job.type), job)
        return found

    def _reuse(self, doc: Document, job_type: str, earlier: Job, priority: int) -> Job:
        """A job that is complete at once with the result of the same content processed earlier."""
        now = self.clock()
        job = Job.create(document=doc, session=doc.session, type=job_type, state=COMPLETE, priority=priority,
                         max_attempts=earlier.max_attempts, attempt=earlier.attempt, progress=100, result=earlier.result,
                         reused_from=earlier.id, worker=earlier.worker, duration_ms=earlier.duration_ms,
                         queued_at=now, started_at=now, finished_at=now)
        for art in earlier.artifacts:
            Artifact.create(document=doc, job=job, name=art.name, path=art.path, size=art.size,
                            width=art.width, height=art.height)
        earlier_doc = earlier.document
        if earlier_doc.width and not doc.width:
            doc.width, doc.height = earlier_doc.width, earlier_doc.height
            doc.save()
        if job_type == "thumbnail" and doc.taken_at is None:  # when it was taken, as projection.py sets it
            doc.taken_at = ((earlier.result or {}).get("metadata") or {}).get("taken_at") or doc.mtime
            doc.save()
        if job_type in SEARCHED_JOB_TYPES:
            reindex_documents([doc.id])
        return job

    # -- handing jobs to the queues ----------------------------------------------------
    def dispatch(self) -> int:
        """Queue pending jobs whose inputs are ready; in Redis mode, within the in-flight window of
        document bytes, putting back a document's copy that the server lost or let expire. A job
        that works from another's result (a summary from the OCR text) waits for it.

        Jobs are marked queued before their tasks are sent: should the owner die in between, the
        lost-task check queues them again as a new attempt; the other order could run one attempt twice."""
        if self.read_only:
            return 0
        # A job that works from another's result is looked at once that one has ended, not before:
        # thousands of summaries waiting for their OCR cost one query, not one each.
        earlier = Job.alias()
        waiting_types = [t for t in JOB_TYPES.values() if t.after]
        ready = Job.type.not_in([t.name for t in waiting_types])
        for t in waiting_types:  # one after several (embed): once one has ended and none is unfinished
            ready |= (Job.type == t.name) & peewee.fn.EXISTS(
                earlier.select(earlier.id).where(earlier.document == Job.document, earlier.type.in_(t.inputs),
                                                 earlier.state.in_(TERMINAL)))
            if len(t.inputs) > 1:
                ready &= (Job.type != t.name) | ~peewee.fn.EXISTS(
                    earlier.select(earlier.id).where(earlier.document == Job.document, earlier.type.in_(t.inputs),
                                                     earlier.state.not_in(TERMINAL)))
        pending = list(Job.select(Job, Document).join(Document)
                       .where(Job.state == PENDING, ready).order_by(Job.priority.desc(), Job.id))
        if not pending:
            return 0
        uses_blobs = self.transport.uses_blobs
        window = self.settings.blob_window_mb * 2**20
        in_flight = (Document.select(peewee.fn.COALESCE(peewee.fn.SUM(Document.size), 0))
                     .where(Document.blob_in_flight == True).scalar()) if uses_blobs else 0  # noqa: E712
        lost_copies = self.transport.missing_blobs(self.owner, sorted(
            {job.document.sha256 for job in pending if job.document.blob_in_flight})) if uses_blobs else set()
        now = self.clock()
        sends: list[tuple[Job, ev.JobPayload]] = []
        uploads: dict[str, list[Document]] = {}  # copies to put into Redis, by content hash
        for job in pending:
            doc = job.document
            job_type = JOB_TYPES[job.type]
            extra: ev.JobInputs = {}
            if job_type.after:
                inputs_ready, extra = self._input_of(job, job_type)
                if not inputs_ready:
                    continue
            if job_type.needs_source and uses_blobs and doc.sha256 not in uploads:
                if doc.blob_in_flight and doc.sha256 in lost_copies:  # the server lost it, or it expired
                    uploads[doc.sha256] = [doc]
                    log.info("putting the copy of %s back into Redis: it was gone", doc.path)
                elif not doc.blob_in_flight:
                    if in_flight and in_flight + doc.size > window:
                        break  # the rest waits until finished documents free room
                    uploads[doc.sha256] = [doc]
                    in_flight += doc.size
            elif doc.sha256 in uploads and not doc.blob_in_flight:
                uploads[doc.sha256].append(doc)
            sends.append((job, {**self._payload(job, doc), **extra}))
        if not sends:
            return 0
        blobs = self._read_blobs(uploads)
        with db.atomic():
            for i in range(0, len(sends), 500):
                Job.update(state=QUEUED, queued_at=now).where(
                    Job.id.in_([job.id for job, _ in sends[i:i + 500]]), Job.state == PENDING).execute()
        later = [(job, payload) for job, payload in sends if job.not_before and job.not_before > now]
        at_once = [(job, payload) for job, payload in sends if not (job.not_before and job.not_before > now)]
        if blobs and not at_once:
            self.transport.put_blobs(self.owner, blobs)
        for n in range(0, len(at_once), self.SEND_BATCH):
            # The copies go with the first chunk, in the same round trip, ahead of its tasks.
            self._send(at_once[n:n + self.SEND_BATCH], at_once[n + self.SEND_BATCH:],
                       lambda chunk: self.transport.enqueue_many(
                           [(JOB_TYPES[job.type].queue, payload, job.priority) for job, payload in chunk],
                           blobs=blobs if n == 0 else None, owner=self.owner))
        for n, (job, payload) in enumerate(later):
            delay = job.not_before - now if job.not_before else 0.0  # (``later`` holds the jobs with one)
            self._send([(job, payload)], later[n + 1:], lambda chunk: self.transport.enqueue(
                JOB_TYPES[job.type].queue, payload, priority=job.priority, delay=delay))
        return len(sends)

    #: Tasks sent to the queues in one round trip.
    SEND_BATCH = 500

    def _send(self, chunk: list[tuple[Job, ev.JobPayload]], rest: list[tuple[Job, ev.JobPayload]],
              send: Callable[[list[tuple[Job, ev.JobPayload]]], None]) -> None:
        """Send a chunk of queued jobs' tasks. Should that fail, the chunk goes back to pending as new
        attempts (any of its tasks may have reached the server all the same: a timeout, so a copy
        that did arrive is stale), and the jobs not yet sent go back as they were."""
        try:
            send(chunk)
        except TRANSIENT_ERRORS:
            sent, unsent = [j.id for j, _ in chunk], [j.id for j, _ in rest]
            with db.atomic():
                for ids, new_attempt in ((sent, True), (unsent, False)):
                    for i in range(0, len(ids), 500):
                        query = (Job.update(state=PENDING, attempt=Job.attempt + 1, max_attempts=Job.max_attempts + 1)
                                 if new_attempt else Job.update(state=PENDING))
                        query.where(Job.id.in_(ids[i:i + 500]), Job.state == QUEUED).execute()
            raise

    def _read_blobs(self, uploads: dict[str, list[Document]]) -> dict[str, bytes]:
        """The documents' copies to put into Redis for remote workers (they go with the tasks), their
        documents marked in flight. A file that is gone or changed since import is left out: the
        worker reports that. Should the send fail, the next dispatch finds the copies missing and
        puts them back."""
        blobs: dict[str, bytes] = {}
        for sha, docs in uploads.items():
            try:
                data = Path(docs[0].path).read_bytes()
            except OSError:
                continue
            if hashlib.sha256(data).hexdigest() == sha:
                blobs[sha] = data
        if not blobs:
            return blobs
        ids = [doc.id for sha in blobs for doc in uploads[sha]]
        for i in range(0, len(ids), 500):
            Document.update(blob_in_flight=True).where(Document.id.in_(ids[i:i + 500])).execute()
        for sha in blobs:
            for doc in uploads[sha]:
                doc.blob_in_flight = True
        return blobs

    def prioritise(self, doc_ids: Iterable[int]) -> list[int]:
        """What a person opened goes to the front of the line: the documents' batch jobs still
        waiting move to the interactive lane. One already on a queue is queued again there, and the
        copy left behind is dropped by the worker that takes it; one waiting for a retry keeps its
        wait. Returns the ids of the jobs moved."""
        if self.read_only:
            return []
        now = self.clock()
        waiting = (Job.select(Job, Document).join(Document)
                   .where(Job.document.in_(list(doc_ids)), Job.state.in_([PENDING, QUEUED]),
                          Job.priority < PRIORITY_INTERACTIVE,
                          Job.not_before.is_null() | (Job.not_before <= now)))
        moved: list[int] = []
        for job in waiting:
            if job.state == QUEUED:
                job_type = JOB_TYPES[job.type]
                ready, extra = self._input_of(job, job_type) if job_type.after else (True, ev.JobInputs())
                if not ready:
                    continue
                left_behind = job.priority
                job.priority = PRIORITY_INTERACTIVE
                self.transport.enqueue(job_type.queue, {**self._payload(job, job.document), **extra},
                                       priority=PRIORITY_INTERACTIVE)
            Job.update(priority=PRIORITY_INTERACTIVE).where(Job.id == job.id).execute()
            if job.state == QUEUED:  # last: should this fail, the old copy only runs as well, idly
                self.transport.supersede(self.owner, job.id, job.attempt, left_behind)
            moved.append(job.id)
        return moved

    def _input_of(self, job: Job, job_type: JobType) -> tuple[bool, ev.JobInputs]:
        """Whether the job this one comes after has completed, and what it hands on. A job whose
        input will never come, or is empty, ends here with the reason."""
        if job_type.name in meaning.INPUTS:  # describe and embed: engine/meaning.py
            return meaning.input_of(self, job, job_type)
        earlier = Job.get_or_none(Job.document == job.document_id, Job.type == job_type.after)
        if earlier is None or earlier.state != COMPLETE:
            if earlier is not None and earlier.state in (FAILED, CANCELLED):
                self.skip(job, f"skipped: the {earlier.type} job {earlier.state}")
            return False, {}
        text = (earlier.result or {}).get("text") or ""
        if not text.strip():
            now = self.clock()
            Job.update(state=COMPLETE, progress=100, finished_at=now, queued_at=now, started_at=now, duration_ms=0,
                       result={"skipped": True, "reason": f"no text was found in the document by {earlier.type}"}
                       ).where(Job.id == job.id).execute()
            JobEvent.create(job=job, type=ev.OwnerEvent.SKIPPED, attempt=job.attempt, at=now, error="no text found")
            return False, {}
        return True, {"text": text[:SUMMARY_TEXT_LIMIT]}

    def skip(self, job: Job, reason: str) -> None:
        """A pending job will not run: it ends cancelled, its timeline saying why."""
        now = self.clock()
        Job.update(state=CANCELLED, finished_at=now, error=reason, error_kind="permanent").where(
            Job.id == job.id, Job.state == PENDING).execute()
        JobEvent.create(job=job, type=ev.OwnerEvent.SKIPPED, attempt=job.attempt, at=now, error=reason)

    def _settle_dependents(self, document_id: int, job_type: str, state: str) -> None:
        """A job ended without a result: the jobs waiting for it end too, saying why."""
        for dependent in dependents_of(job_type):
            if not dependent.required or dependent.inputs[0] != job_type:
                self._unblocked = True  # it may still run from its other inputs: dispatch looks again
                continue
            waiting = Job.get_or_none(Job.document == document_id, Job.type == dependent.name, Job.state == PENDING)
            if waiting is not None:
                self.skip(waiting, f"skipped: the {job_type} job {state}")

    def _release_blobs(self) -> list[str]:
        """The documents none of whose jobs still need their Redis copies are marked so; the content
        hashes whose copies may go (no other document in flight shares them)."""
        if not self.transport.uses_blobs:
            return []
        unfinished = Job.select(Job.document).where(Job.state.in_(UNFINISHED))
        done = list(tuples(Document.select(Document.id, Document.sha256).where(
            Document.blob_in_flight == True, Document.id.not_in(unfinished))))  # noqa: E712
        if not done:
            return []
        shas = sorted({sha for _, sha in done})
        still_needed: set[str] = set()  # the same content, in flight for another document whose jobs are not done
        for i in range(0, len(shas), 500):
            still_needed.update(sha for (sha,) in tuples(Document.select(Document.sha256).where(
                Document.blob_in_flight == True, Document.sha256.in_(shas[i:i + 500]),  # noqa: E712
                Document.id.in_(unfinished))))
        ids = sorted(doc_id for doc_id, _ in done)
        for i in range(0, len(ids), 500):
            Document.update(blob_in_flight=False).where(Document.id.in_(ids[i:i + 500])).execute()
        return [sha for sha in shas if sha not in still_needed]

    def _payload(self, job: Job, doc: Document) -> ev.JobPayload:
        """The task of a job's current attempt (a job that comes after others adds what ``_input_of``
        hands on, which may set its own limits)."""
        payload: ev.JobPayload = {
            "v": PAYLOAD_VERSION, "owner": self.owner, "job_id": job.id, "job_type": job.type,
            "document_id": doc.id, "session_id": job.session_id, "attempt": job.attempt,
            "max_attempts": job.max_attempts, "backoff_ms": self.settings.retry_backoff_ms,
            "priority": job.priority, "path": doc.path, "sha256": doc.sha256, "size": doc.size, "kind": doc.kind,
            "limits": {"max_pixels": self.settings.max_pixels, "rate_per_minute": self.settings.llm_rate_per_minute},
        }
        extra_formats = list(self.settings.variant_format_list[1:])  # SNAPDESK_VARIANT_FORMATS: AVIF besides WebP
        if job.type == "thumbnail" and extra_formats:
            payload["variant_formats"] = extra_formats
        return payload

    def ensure_workers(self) -> None:
        """Start a local worker when there is work and none runs (embedded mode, or when asked for)."""
        if self.read_only:
            return None
        if self.local_workers and Job.select().where(Job.state.in_(UNFINISHED)).exists():
            self.local_workers.ensure()

    # -- applying events ---------------------------------------------------------------
    def pump(self, block_ms: int = 0) -> int:
        """Apply the next batch of events (waiting up to ``block_ms`` for one); returns how many.

        The batch is applied in one transaction (see ``projection``): an event that cannot be
        opened or applied is held with its reason, and the rest of the batch goes on. The log
        entries are deleted once the batch is committed: at once when the log is caught up, or
        else in the same round trip as the next batch's read, which follows straight away.
        (Applying an event again, should the owner stop in between, changes nothing.)"""
        if self.read_only:
            return 0  # the owner applies them
        entries = self.transport.finish_and_read(self.owner, self._unacked, self._unreleased,
                                                 block_ms=block_ms, count=self.EVENT_BATCH)
        self._unacked, self._unreleased = [], []
        self.caught_up = len(entries) < self.EVENT_BATCH
        if not entries:
            return 0
        self._unblocked = False
        now = self.clock()
        key = self.transport.library_key(self.owner)
        with db.atomic():
            events = []
            for entry in entries:
                try:
                    events.append(ev.open_sealed(key, self.owner, entry.data))
                except ev.BadEvent as exc:
                    self._hold(SET_ASIDE, str(exc), exc.body, None)
            self._apply_events(events, now, hold=True)
            released = self._release_blobs()
        # The log entries, and the copies of documents now done (kept for the next read should this
        # fail: the transport is down).
        self._unacked, self._unreleased = [entry.id for entry in entries], released
        if self.caught_up:
            self._finish_batch()
        if released or self._unblocked:
            self.dispatch()
        return len(entries)

    def _finish_batch(self) -> None:
        self.transport.finish_batch(self.owner, self._unacked, self._unreleased)
        self._unacked, self._unreleased = [], []

    def catch_up(self) -> int:
        """Apply everything waiting in the event log."""
        total = 0
        while True:
            n = self.pump()
            total += n
            if n < self.EVENT_BATCH:
                return total

    def apply(self, event: ev.Event, now: float | None = None) -> None:
        """Apply one checked event (see ``projection.transition`` for what each kind does). Raises
        BadEvent for one that does not match its job, ResultNotStored when its files cannot be written."""
        self._apply_events([event], self.clock() if now is None else now, hold=False)

    def _apply_events(self, events: list[ev.Event], now: float, hold: bool) -> None:
        outcome = self.projection.apply(events, now)
        for event, exc in outcome.problems:
            if not hold:
                raise exc
            if isinstance(exc, ev.BadEvent):
                self._hold(SET_ASIDE, str(exc), exc.body or ev.plain(event), event)
            elif isinstance(exc, ResultNotStored):
                self._hold(DEFERRED, str(exc), ev.plain(event), event)
            else:  # a bug: the event is kept to look at, and the library goes on
                log.error("applying an event failed", exc_info=exc)
                self._hold(SET_ASIDE, f"unexpected error while applying it: {type(exc).__name__}: {exc}",
                           ev.plain(event), event)
        for _, doc_id, job_type, state in outcome.ended_without_result:
            self._settle_dependents(doc_id, job_type, state)
        self._unblocked = self._unblocked or outcome.unblocked
        self.applied(outcome.applied)

    def applied(self, events: list[ev.Event]) -> None:
        """Called with each batch of events applied; the window's owner learns what changed here."""

    def _hold(self, kind: str, reason: str, body: str | None, event: ev.Event | None) -> None:
        job_id = getattr(event, "job_id", None)
        log.warning("event %s%s: %s", "deferred" if kind == DEFERRED else "set aside",
                    f" (job {job_id})" if job_id else "", reason)
        HeldEvent.create(kind=kind, reason=reason, received_at=self.clock(), job_id=job_id,
                         body=body if body is not None else "(sealed: it could not be opened)")

    def apply_deferred(self) -> int:
        """Apply again the events whose result files could not be written; returns how many went in."""
        applied = 0
        for held in HeldEvent.select().where(HeldEvent.kind == DEFERRED).order_by(HeldEvent.id):
            try:
                with db.atomic():
                    self.apply(ev.parse_trusted(held.body))
                    held.delete_instance()
                applied += 1
            except ResultNotStored as exc:
                HeldEvent.update(reason=str(exc)).where(HeldEvent.id == held.id).execute()
                break  # the disk is still full: the rest waits too
            except ev.BadEvent as exc:
                HeldEvent.update(kind=SET_ASIDE, reason=str(exc)).where(HeldEvent.id == held.id).execute()
        if applied:
            self.dispatch()
        return applied

    # -- leases ------------------------------------------------------------------------
    def _replace_attempt(self, job: Job, event_type: ev.OwnerEvent, message: str, now: float, counts: bool = True) -> None:
        """The job's current attempt is given up on (its worker went silent, its task was lost): a
        new attempt takes its place, or the job fails when it has had all its attempts. Copies of
        the old attempt still queued anywhere are dropped by the worker that takes them, and one
        still running stops at its next checkpoint; its events change nothing. An attempt that
        never ran (``counts=False``) does not use up one of the job's attempts."""
        if counts and job.attempt >= job.max_attempts:
            Job.update(state=FAILED, error=f"{message} (gave up after {job.attempt} attempts)",
                       error_kind="retryable", finished_at=now, lease_expires_at=None).where(Job.id == job.id).execute()
            job.state = FAILED
            self._settle_dependents(job.document_id, job.type, FAILED)
        else:
            Job.update(state=PENDING, attempt=job.attempt + 1, progress=0, worker=None, lease_expires_at=None,
                       max_attempts=job.max_attempts + (0 if counts else 1), not_before=None, error=message,
                       error_kind="retryable").where(Job.id == job.id).execute()
        JobEvent.create(job=job, type=event_type, attempt=job.attempt, at=now, worker=job.worker, error=message)
        self.transport.supersede(self.owner, job.id, job.attempt, EVERY_LANE)

    def check_leases(self) -> int:
        """Give up on attempts whose worker stopped renewing its lease (killed, machine gone). Judged
        only once every waiting event is applied, so a backlog never makes a lease look expired."""
        if self.read_only or not self.caught_up:
            return 0
        now = self.clock()
        deferred = HeldEvent.select(HeldEvent.job_id).where(HeldEvent.kind == DEFERRED, HeldEvent.job_id.is_null(False))
        lost = list(Job.select().where(Job.state == RUNNING, Job.lease_expires_at < now, Job.id.not_in(deferred)))
        for job in lost:
            self._replace_attempt(job, ev.OwnerEvent.LEASE_EXPIRED, f"the worker running it ({job.worker}) stopped responding", now)
        if lost:
            self.dispatch()
        return len(lost)

    def check_lost_tasks(self, grace: float | None = None) -> int:
        """Queue again (as a new attempt) jobs whose task vanished before any worker reported it (a
        worker killed the moment it took the task, a delayed retry lost in an outage, a Redis that
        lost its data): the job is still ``queued``, its queue holds nothing at all, and it has been
        quiet for ``grace`` seconds. The queues are counted first and the log is read after, so a
        task a worker took just before the count has its ``started`` event applied by then."""
        if self.read_only or not self.caught_up:
            return 0
        grace = 2 * self.settings.lease_seconds if grace is None else grace
        counts = self.transport.queue_counts()
        self.catch_up()
        now = self.clock()
        empty = [name for name, t in JOB_TYPES.items()
                 if not counts[t.queue]["waiting"] and not counts[t.queue]["delayed"] and not counts[t.queue]["paused"]]
        lost = list(Job.select().where(Job.state == QUEUED, Job.type.in_(empty),
                                       peewee.fn.MAX(Job.queued_at, peewee.fn.COALESCE(Job.not_before, 0)) < now - grace))
        for job in lost:
            self._replace_attempt(job, ev.OwnerEvent.TASK_LOST, "its task was lost before it ran; queued again", now, counts=False)
        if lost:
            self.dispatch()
        return len(lost)

    # -- user actions ------------------------------------------------------------------
    def retry(self, job_ids: Iterable[int] = (), failed: bool = False, session_id: int | None = None,
              force: bool = False, held_back: list[int] | None = None) -> list[Job]:
        """Queue failed (or cancelled) jobs again, ahead of batch work, with a fresh set of attempts.

        A job that failed for good (a damaged file, not an image) runs again only when its file
        changed since (then the new content is processed), or with ``force``; the ids of those
        left alone are added to ``held_back``."""
        query = Job.select(Job, Document).join(Document)
        if failed:
            query = query.where(Job.state == FAILED)
            if session_id is not None:
                query = query.where(Job.session == session_id)
        else:
            query = query.where(Job.id.in_(list(job_ids)))
        retried = []
        with db.atomic():
            for job in query:
                if job.state not in (FAILED, CANCELLED):
                    continue
                if (job.state == FAILED and job.error_kind == "permanent" and not force
                        and not self._take_new_content(job.document)):
                    if held_back is not None:
                        held_back.append(job.id)
                    continue
                self._run_again(job, ev.OwnerEvent.RETRY)
                retried.append(job)
                retried += self._rerun_dependents(job)
        self.transport.uncancel_jobs(self.owner, [job.id for job in retried])
        self.dispatch()
        self.ensure_workers()
        return retried


    def _take_new_content(self, doc: Document) -> bool:
        """Whether the document's file holds other content than when it was added; if so, the
        document now stands for the new content (its hash, size and time)."""
        path = Path(doc.path)
        try:
            stat = path.stat()
            if stat.st_size == doc.size and stat.st_mtime == doc.mtime:
                return False
            sha = hashlib.sha256(path.read_bytes()).hexdigest()
        except OSError:
            return False  # gone or unreadable: a retry would fail the same way
        if sha == doc.sha256:
            return False
        Document.update(sha256=sha, size=stat.st_size, mtime=stat.st_mtime, blob_in_flight=False).where(
            Document.id == doc.id).execute()
        return True

    def _run_again(self, job: Job, why: ev.OwnerEvent) -> None:
        """Back to pending as a new attempt, with a fresh set of attempts, ahead of batch work."""
        attempt = job.attempt + 1
        Job.update(state=PENDING, attempt=attempt, max_attempts=attempt + self.settings.retry_attempts - 1,
                   priority=PRIORITY_INTERACTIVE, progress=0, error=None, error_kind=None, error_advice=None, worker=None,
                   finished_at=None, not_before=None, reused_from=None, result=None).where(Job.id == job.id).execute()
        JobEvent.create(job=job, type=why, attempt=attempt, at=self.clock())

    def reprocess(self, document_ids: Iterable[int]) -> list[Job]:
        """Run every finished job of these documents again from scratch (not reusing earlier results),
        ahead of batch work. Unfinished jobs are left to finish."""
        jobs = list(Job.select().where(Job.document.in_(list(document_ids)), Job.state.in_(TERMINAL)))
        with db.atomic():
            for job in jobs:
                self._run_again(job, ev.OwnerEvent.REPROCESS)
        self.transport.uncancel_jobs(self.owner, [job.id for job in jobs])
        self.dispatch()
        self.ensure_workers()
        return jobs

    def _rerun_dependents(self, job: Job) -> list[Job]:
        """Jobs that work from this job's result run again after it (retrying OCR re-runs the summary)."""
        again = []
        for dependent in dependents_of(job.type):
            later = Job.get_or_none(Job.document == job.document_id, Job.type == dependent.name)
            if later is None or later.state in UNFINISHED:
                continue
            self._run_again(later, ev.OwnerEvent.RETRY)
            again.append(later)
        return again

    def cancel(self, job_ids: Iterable[int] = (), session_id: int | None = None) -> list[int]:
        """Cancel unfinished jobs: a queued one never starts, a running one stops at its next checkpoint.

        Queued and pending jobs end ``cancelled`` at once; running ones when their worker stops them
        (or ``complete``, if they finish first). Returns the ids of the jobs cancelled."""
        query = Job.select().where(Job.state.in_(UNFINISHED))
        query = query.where(Job.session == session_id) if session_id is not None else query.where(
            Job.id.in_(list(job_ids)))
        jobs = list(query)
        if not jobs:
            return []
        # The mark first: a worker that dequeues one of these from now on drops it.
        self.transport.cancel_jobs(self.owner, [job.id for job in jobs])
        now = self.clock()
        with db.atomic():
            for job in jobs:
                if job.state != RUNNING:
                    Job.update(state=CANCELLED, finished_at=now, lease_expires_at=None).where(
                        Job.id == job.id, Job.state.in_((PENDING, QUEUED))).execute()
                    job.state = CANCELLED
                    self._settle_dependents(job.document_id, job.type, CANCELLED)
                JobEvent.create(job=job, type=ev.OwnerEvent.CANCEL, attempt=job.attempt, at=now)
        return [job.id for job in jobs]

    def discard(self, job_ids: Iterable[int] = (), failed: bool = False, session_id: int | None = None) -> list[int]:
        """Take failed jobs off the failed list for good (they end ``cancelled``, their error kept)."""
        query = Job.select(Job.id).where(Job.state == FAILED)
        if failed:
            if session_id is not None:
                query = query.where(Job.session == session_id)
        else:
            query = query.where(Job.id.in_(list(job_ids)))
        ids = [job.id for job in query]
        now = self.clock()
        with db.atomic():
            Job.update(state=CANCELLED).where(Job.id.in_(ids)).execute()
            for job_id in ids:
                JobEvent.create(job=job_id, type=ev.OwnerEvent.DISCARD, attempt=0, at=now)
        return ids

    def remove_session(self, session_id: int) -> bool:
        """Forget a session: cancel its unfinished jobs, delete its rows, and the result files that no
        other session's documents share (their folders leave at once; the files are deleted in the
        background, and ``close`` waits for that)."""
        session = self.session(session_id)
        if session is None:
            return False
        self.cancel(session_id=session_id)
        shas: set[str] = {sha for (sha,) in tuples(Document.select(Document.sha256).where(Document.session == session))}
        in_flight = [doc.sha256 for doc in Document.select().where(Document.session == session,
                                                                  Document.blob_in_flight == True)]  # noqa: E712
        doc_ids: list[int] = [d for (d,) in tuples(Document.select(Document.id).where(Document.session == session))]
        with db.atomic():
            unindex_documents(doc_ids)
            session.delete_instance(recursive=True)
            meaning.forget_unused()  # the vectors of content no document has any more
            duplicates.forget_unused()  # and their likenesses
        still_used = {sha for (sha,) in tuples(Document.select(Document.sha256).where(Document.sha256.in_(list(shas))))}
        unused = sorted(shas - still_used)
        self.trash.discard(self.artifacts_dir / sha[:2] / sha for sha in unused)
        for sha in unused:
            if sha in in_flight:
                self.transport.delete_blob(self.owner, sha)
        return True

    def pause(self, queue: str) -> None:
        """Pause a queue for every worker (they finish what they run); it stays paused across restarts."""
        self.transport.set_paused(queue, True)

    def resume(self, queue: str) -> None:
        self.transport.set_paused(queue, False)

    def paused_queues(self) -> set[str]:
        return self.transport.paused_queues()

    # -- upkeep ------------------------------------------------------------------------
    def trim_expired(self, now: float | None = None) -> dict[str, int]:
        """Trim what is past its retention: finished jobs' timelines here, cancel marks and stale
        workers in the transport. Results and artifacts stay as long as their session does."""
        now = self.clock() if now is None else now
        cutoff = now - self.settings.retention_seconds
        old_jobs = Job.select(Job.id).where(Job.state.in_(TERMINAL), Job.finished_at < cutoff)
        timeline = JobEvent.delete().where(JobEvent.job.in_(old_jobs)).execute()
        held = HeldEvent.delete().where(HeldEvent.kind == SET_ASIDE, HeldEvent.received_at < cutoff).execute()
        trimmed = {"timeline_events": timeline, "set_aside_events": held,
                   **self.transport.trim_expired(self.settings.retention_seconds, now)}
        Meta.set_value("maintenance_at", now)
        return trimmed

    def trim_expired_if_due(self, every: float = 3600) -> dict[str, int] | None:
        """Run ``trim_expired`` when it last ran more than ``every`` seconds ago."""
        if self.read_only:
            return None
        if self.clock() - float(Meta.get_value("maintenance_at", 0)) < every:
            return None
        return self.trim_expired()

    # -- search ------------------------------------------------------------------------
    def duplicates(self, session_id: int | None = None) -> list[DuplicateGroup]:
        """The library's (or a session's) pictures that are the same picture, in groups with the
        largest original first (``engine/duplicates.py``). Only reads: fine on a read-only library.
        What was found is kept for the sessions last asked about, and only new pictures compared."""
        found = duplicates.groups(session_id, self._groupings)
        while len(self._groupings) > self.KEPT_GROUPINGS:
            del self._groupings[next(iter(self._groupings))]  # the session asked about longest ago
        return found

    def search(self, query: str, limit: int = 50, session_id: int | None = None) -> list[dict[str, Any]]:
        """Documents matching every word of ``query`` (the last one as a prefix), best first, each
        with a snippet around the match. Words are matched in file names, titles, summaries and text."""
        words = re.findall(r"\w+", meaning.index_words(query), re.UNICODE)  # "square format": one word
        if not words:
            return []
        match = " ".join(f'"{w}"' for w in words[:-1]) + f' "{words[-1]}"*'
        sql = ("SELECT s.rowid, bm25(search_index, 8.0, 6.0, 3.0, 1.0) AS rank, "
               "snippet(search_index, -1, '[', ']', '…', 12) FROM search_index s "
               "JOIN document d ON d.id = s.rowid WHERE search_index MATCH ?"
               + (" AND d.session_id = ?" if session_id is not None else "") + " ORDER BY rank LIMIT ?")
        params = (match, session_id, limit) if session_id is not None else (match, limit)
        rows = db.execute_sql(sql, params).fetchall()
        docs = {d.id: d for d in Document.select().where(Document.id.in_([r[0] for r in rows]))}
        titles = {j.document_id: (j.result or {}).get("title") for j in Job.select(Job.document, Job.result).where(
            Job.document.in_(list(docs)), Job.type == "summary", Job.state == COMPLETE)}
        return [{"document_id": doc_id, "session_id": docs[doc_id].session_id, "path": docs[doc_id].path,
                 "title": titles.get(doc_id), "snippet": meaning.shown_words(" ".join(snippet.split())), "rank": round(rank, 3)}
                for doc_id, rank, snippet in rows if doc_id in docs]

    # -- reading -----------------------------------------------------------------------
    def latest_session(self) -> UploadSession | None:
        latest: UploadSession | None = UploadSession.select().order_by(UploadSession.id.desc()).first()
        return latest

    def session_summaries(self) -> list[dict[str, Any]]:
        """Every session, newest first: id, name, state, when it was made, and its documents by status."""
        out = []
        for session in UploadSession.select().order_by(UploadSession.id.desc()):
            counts = self.document_counts(session)
            out.append({"id": session.id, "name": session.name, "created_at": _iso(session.created_at),
                        "status": session_status(counts, session.scanning),
                        "documents": {"total": counts["total"], **{s.value: counts.get(s, 0) for s in DocStatus}}})
        return out

    def session(self, session_id: int) -> UploadSession | None:
        return UploadSession.get_or_none(UploadSession.id == session_id)

    def document_counts(self, session: UploadSession) -> Counter[str]:
        """Documents of a session by status (see ``document_status``), and their total: kept as the
        library changes (migration 0008), so this is one indexed read at any size."""
        counts = Counter(dict(db.execute_sql("SELECT status, n FROM session_count WHERE session_id = ? AND n > 0",
                                             (session.id,)).fetchall()))
        counts["total"] = sum(counts.values())
        return counts

    def failed_jobs(self, session_id: int | None = None, limit: int | None = None) -> list[dict[str, Any]]:
        return stats.failed_jobs(session_id, limit)

    def statistics(self, window: float = 3600.0) -> dict[str, Any]:
        return stats.statistics(self.transport, window)

    def health(self, max_lag: float = 300.0) -> dict[str, Any]:
        # Local workers start with the work, so on the embedded queue no worker is fine when idle.
        return stats.health(self.transport, max_lag, need_workers=self.local_workers is None, now=self.clock())

    def held_events(self, limit: int | None = 20) -> dict[str, Any]:
        """The events not applied: how many are set aside and deferred, the newest's age, and the latest."""
        return stats.held_events(limit, now=self.clock())

    def connect(self, timeout: float = 10.0) -> None:
        """Make sure the transport answers, waiting up to ``timeout`` seconds for it; a LibraryError
        saying what to check when it never did (a wrong URL, a server that is not running)."""
        try:
            wait_out(self.transport.ping, f"reach {self.transport.describe()}", log,
                     deadline=time.monotonic() + timeout)
        except REFUSED_FOR_GOOD as exc:
            raise LibraryError(f"{self.transport.describe()} refused the connection: {exc}. Check the user and "
                               "password in the URL (REDIS_URL, --redis, or Settings).") from None
        except TRANSIENT_ERRORS as exc:
            raise LibraryError(f"cannot reach {self.transport.describe()} ({describe_error(exc)}). Check that the "
                               "server runs and the URL is right (REDIS_URL, --redis, or Settings), and that this "
                               "machine can reach it.") from None

    def has_unfinished(self, session: UploadSession) -> bool:
        return Job.select().where(Job.session == session, Job.state.in_(UNFINISHED)).exists()

    def unfinished(self, session: UploadSession | None = None) -> int:
        query = Job.select().where(Job.state.in_(UNFINISHED))
        if session is not None:
            query = query.where(Job.session == session)
        return query.count()

    def housekeeping(self) -> None:
        """What an owner does every few seconds, and any command that opens the library as its owner
        does once: apply what waits in the log, give up on silent or lost attempts (only once caught
        up), apply deferred events, queue what is ready (putting back lost document copies), start
        local workers, trim what is past its retention. Raises TRANSIENT_ERRORS while the transport
        is unavailable."""
        if self.read_only:
            return
        if not self.caught_up:
            self.catch_up()
        self.apply_deferred()
        self.check_leases()
        self.check_lost_tasks()
        self.dispatch()
        self.ensure_workers()
        self.trim_expired_if_due()

    #: How long a queue with work may go without a live worker before ``wait`` says so.
    UNSERVED_GRACE = 10.0

    def unserved_queues(self) -> list[str]:
        """The queues with work waiting that no live worker serves."""
        return stats.unserved_queues(self.transport.queue_counts(), stats.workers(self.transport))

    def wait(self, session: UploadSession, on_progress: Callable[[Counter[str]], None] | None = None,
             timeout: float | None = None, on_connection: Callable[[bool, str], None] | None = None,
             on_warning: Callable[[str], None] | None = None) -> bool:
        """Apply events until every job of the session has ended; False on timeout.

        While the transport is unavailable it retries with backoff, telling ``on_connection(False,
        why)`` once, and ``on_connection(True, ...)`` when it is back; nothing is lost meanwhile.
        A queue whose work no live worker serves for ``UNSERVED_GRACE`` seconds is told to
        ``on_warning`` once; the wait goes on."""
        deadline = None if timeout is None else time.monotonic() + timeout
        next_housekeeping = 0.0
        backoff = Backoff(first=0.5, cap=5.0)
        unserved_since: dict[str, float] = {}
        warned: set[str] = set()
        while True:
            try:
                self.pump(block_ms=250)
                now = time.monotonic()
                if self.caught_up and now >= next_housekeeping:
                    self.housekeeping()
                    next_housekeeping = now + 2
                    if on_warning:
                        unserved = self.unserved_queues()
                        unserved_since = {q: unserved_since.get(q, now) for q in unserved}
                        due = [q for q, since in unserved_since.items()
                               if now - since >= self.UNSERVED_GRACE and q not in warned]
                        if due:
                            warned.update(due)
                            on_warning(stats.unserved_message(due))
            except TRANSIENT_ERRORS as exc:
                if backoff.failures == 0:
                    why = describe_error(exc)
                    log.warning("waiting for %s: %s", self.transport.describe(), why)
                    if on_connection:
                        on_connection(False, f"cannot reach {self.transport.describe()} ({why}); retrying")
                time.sleep(backoff.failed())
                now = time.monotonic()
            else:
                if backoff.succeeded():
                    log.info("%s is reachable again", self.transport.describe())
                    if on_connection:
                        on_connection(True, f"connected to {self.transport.describe()} again")
            if on_progress:
                on_progress(self.document_counts(session))
            if not self.has_unfinished(session):
                return True
            if deadline is not None and now > deadline:
                return False

    def report(self, session: UploadSession) -> dict[str, Any]:
        """A session as JSON: what ``snapdesk status --json`` prints (documented in the README)."""
        docs = list(Document.select().where(Document.session == session).order_by(Document.id))
        jobs_by_doc: dict[int, list[Job]] = {}
        for job in Job.select().where(Job.session == session).order_by(Job.id):
            jobs_by_doc.setdefault(job.document_id, []).append(job)
        job_counts = Counter(job.state for jobs in jobs_by_doc.values() for job in jobs)
        clips = {clip.document_id: clip for clip in LiveClip.select().join(Document).where(Document.session == session)}
        documents = []
        for doc in docs:
            jobs = jobs_by_doc.get(doc.id, [])
            thumbnail = next((j for j in jobs if j.type == "thumbnail" and j.state == COMPLETE), None)
            documents.append({
                "id": doc.id, "path": doc.path, "size": doc.size, "sha256": doc.sha256, "kind": doc.kind,
                "width": doc.width, "height": doc.height, "status": document_status([j.state for j in jobs]),
                "taken_at": _iso(doc.taken_at),
                "metadata": ((thumbnail.result or {}).get("metadata") or {}) if thumbnail else {},
                "jobs": {job.type: job_report(job) for job in jobs},
                **({"live_photo": live_clip_report(clips[doc.id])} if doc.id in clips else {}),
            })
        doc_counts = self.document_counts(session)
        return {
            "session": {"id": session.id, "name": session.name, "created_at": _iso(session.created_at),
                        "paths": session.paths, "status": session_status(doc_counts, session.scanning),
                        "scanning": session.scanning},
            "counts": {
                "documents": {"total": doc_counts["total"],
                              **{s.value: doc_counts.get(s, 0) for s in DocStatus}},
                "jobs": {state: job_counts.get(state, 0) for state in JOB_STATES},
                "skipped": session.skipped,
            },
            "transport": self.transport.describe(),
            "documents": documents,
            "skipped_files": [{"path": path, "reason": reason, "detail": detail} for path, reason, detail in tuples(
                SkippedFile.select(SkippedFile.path, SkippedFile.reason, SkippedFile.detail)
                .where(SkippedFile.session == session).order_by(SkippedFile.id))],
        }


def live_clip_report(clip: LiveClip) -> dict[str, Any]:
    """A Live Photo's clip as ``status --json`` and the details panel give it: path, size, length in seconds."""
    return {"clip": clip.path, "size": clip.size, "duration": clip.duration}


def job_report(job: Job) -> dict[str, Any]:
    return {
        "id": job.id, "state": job.state, "attempts": job.attempt, "max_attempts": job.max_attempts,
        "progress": job.progress, "priority": job.priority, "worker": job.worker, "duration_ms": job.duration_ms,
        "queued_at": _iso(job.queued_at), "started_at": _iso(job.started_at), "finished_at": _iso(job.finished_at),
        "error": job.error, "error_kind": job.error_kind, "advice": job.error_advice,
        "reused": job.reused_from is not None,
        "result": job.result,
    }


def document_status(states: list[str]) -> DocStatus:
    """One word for a document from its jobs' states (the DB's triggers say the same: migrations/0012)."""
    if not states:
        return DocStatus.COMPLETE
    if FAILED in states:
        return DocStatus.FAILED
    if RUNNING in states:
        return DocStatus.RUNNING
    if PENDING in states or QUEUED in states:
        return DocStatus.QUEUED
    if all(s == CANCELLED for s in states):
        return DocStatus.CANCELLED
    return DocStatus.COMPLETE


def session_status(doc_counts: Counter[str], scanning: bool = False) -> DocStatus:
    """One word for a session: running while it is scanned or any document waits or runs, else
    failed when any failed, else complete."""
    if scanning or doc_counts.get(DocStatus.QUEUED) or doc_counts.get(DocStatus.RUNNING):
        return DocStatus.RUNNING
    return DocStatus.FAILED if doc_counts.get(DocStatus.FAILED) else DocStatus.COMPLETE


def _iso(ts: float | None) -> str | None:
    if ts is None:
        return None
    return datetime.datetime.fromtimestamp(ts, datetime.timezone.utc).isoformat(timespec="milliseconds")


def _session_name(paths: list[str]) -> str:
    first = Path(paths[0]).name if paths else "session"
    return first if len(paths) == 1 else f"{first} and {len(paths) - 1} more"

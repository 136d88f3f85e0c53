"""What the window shows, read from the library DB as plain immutable rows.

These functions run on the owner thread only (the DB connection is per thread); the rows
they return are frozen dataclasses that cross to the GUI thread in signals. No Qt here.
"""

from __future__ import annotations

import csv
import hashlib
import io
import os
import stat
import time
from collections import Counter
from collections.abc import Iterable
from dataclasses import dataclass, field
from typing import Any

from peewee import fn

from ..engine.library import document_status, job_report, live_clip_report
from ..engine.stats import worked_since
from ..store.db import COMPLETE as JOB_COMPLETE
from ..store.db import (
    FAILED,
    DocStatus,
    JobState,
    TERMINAL,
    UNFINISHED,
    Document,
    Job,
    JobEvent,
    LiveClip,
    SkippedFile,
    UploadSession,
    db,
    tuples,
)

#: Document statuses, as ``document_status`` names them.
QUEUED, RUNNING, COMPLETE, FAILED_DOC, CANCELLED = (DocStatus.QUEUED, DocStatus.RUNNING, DocStatus.COMPLETE,
                                                  DocStatus.FAILED, DocStatus.CANCELLED)

_CHUNK = 500  # SQLite allows at most 999 variables in one query


@dataclass(frozen=True, slots=True)
class DocRow:
    id: int
    session_id: int
    path: str
    size: int
    width: int | None
    height: int | None
    status: str
    #: 0-100 while running and known, else None.
    progress: int | None
    blurhash: str | None = None
    #: A video's length in seconds, once its thumbnail job is done.
    duration: float | None = None
    #: Thumbnail paths by size name ("sm", "md", "lg") once the thumbnail job is done.
    thumbs: dict = field(default_factory=dict, compare=False, hash=False)
    #: The first error of a failed job, for the tile and its tooltip.
    error: str | None = None
    #: What to do about that failure, when the usual "fix or replace the file" would mislead.
    advice: str | None = None
    #: The summary's title, once there is one.
    title: str | None = None
    failed_job_ids: tuple[int, ...] = ()
    jobs_done: int = 0
    jobs_total: int = 0
    #: Jobs not finished yet (pending, queued or running): what Cancel stops.
    unfinished_job_ids: tuple[int, ...] = ()
    #: The failed jobs a Retry may cure: not those that failed for good (``error_kind`` "permanent"),
    #: unless the file changed after they failed. What the tile's Retry and Ctrl+R queue again.
    retry_job_ids: tuple[int, ...] = ()
    #: When the picture was taken (its metadata, else the file's time), once its thumbnail is done.
    taken_at: float | None = None

    @property
    def name(self) -> str:
        return os.path.basename(self.path)

    @property
    def permanent(self) -> bool:
        """Failed, and no retry will cure it: nothing to offer but the reason."""
        return self.status == FAILED_DOC and not self.retry_job_ids


@dataclass(frozen=True, slots=True)
class SessionRow:
    id: int
    name: str
    created_at: float
    total: int = 0
    queued: int = 0
    running: int = 0
    complete: int = 0
    failed: int = 0
    cancelled: int = 0
    #: Its folders are still being scanned: more documents are on their way.
    scanning: bool = False
    #: Documents with a failed job that a retry may cure (not a permanent failure).
    retryable: int = 0

    @property
    def finished(self) -> int:
        return self.complete + self.failed + self.cancelled

    @property
    def status(self) -> str:
        if self.scanning or self.queued or self.running:
            return "running"
        return "failed" if self.failed else "complete"


def _chunks(ids: list[int]) -> Iterable[list[int]]:
    for i in range(0, len(ids), _CHUNK):
        yield ids[i:i + _CHUNK]


#: (path, size, mtime) -> the content hash of a file read once: a changed file is hashed once, not
#: each time its row is read.
_hashes: dict[tuple[str, int, float], str] = {}


def file_changed(path: str, size: int, mtime: float, sha256: str) -> bool:
    """Whether the document's file now holds other content than when it was added, as the engine's
    retry judges it (``Library.retry`` processes the new content of a file that failed for good).
    Owner thread only: it asks the disk, and reads a file whose size or time changed."""
    try:
        st = os.stat(path)
        if not stat.S_ISREG(st.st_mode):
            return False
        if st.st_size == size and st.st_mtime == mtime:
            return False
        key = (path, st.st_size, st.st_mtime)
        if key not in _hashes:
            if len(_hashes) > 1000:
                _hashes.clear()
            digest = hashlib.sha256()
            with open(path, "rb") as fh:
                for block in iter(lambda: fh.read(1 << 20), b""):
                    digest.update(block)
            _hashes[key] = digest.hexdigest()
    except OSError:
        return False  # gone or unreadable: a retry would fail the same way
    return _hashes[key] != sha256


def retry_cures(state: str, error_kind: str | None, doc: dict) -> bool:
    """Whether a Retry of a job in this state may end otherwise: a failed or cancelled job, unless it
    ended for good (a permanent error, or skipped because its input failed) and its document's file
    (``doc``: path, size, mtime, sha256) has not changed since it was added."""
    if state not in (FAILED, JobState.CANCELLED):
        return False
    if error_kind != "permanent":
        return True
    return state == FAILED and file_changed(doc["path"], doc["size"], doc["mtime"], doc["sha256"])


def _doc_row(doc: dict, jobs: list[dict]) -> DocRow:
    states = [j["state"] for j in jobs]
    status = document_status(states)
    progress = None
    if status == RUNNING or (status == QUEUED and len(jobs) > 1):
        # The share of the document's work done: finished jobs count whole, a running one by its progress.
        done = sum(100 if j["state"] in TERMINAL else j["progress"] if j["state"] == RUNNING else 0 for j in jobs)
        progress = int(done / len(jobs)) or None
    blurhash, thumbs, title, error, advice, failed, curable = None, {}, None, None, None, [], []
    duration = None
    unfinished = tuple(j["id"] for j in jobs if j["state"] in UNFINISHED)
    for job in jobs:
        if job["type"] == "thumbnail" and job["state"] == JOB_COMPLETE:
            blurhash = job["blurhash"]
            duration = job["duration"]
            thumbs = {size: job[size] for size in ("sm", "md", "lg") if job[size]}
        elif job["type"] == "summary" and job["state"] == JOB_COMPLETE:
            title = job["title"]
        if job["state"] == FAILED:
            failed.append(job["id"])
            if error is None:
                error, advice = job["error"], job.get("error_advice")
            if retry_cures(FAILED, job.get("error_kind"), doc):
                curable.append(job["id"])
    return DocRow(id=doc["id"], session_id=doc["session"], path=doc["path"], size=doc["size"],
                  width=doc["width"], height=doc["height"], status=status, progress=progress, blurhash=blurhash, duration=duration,
                  thumbs=thumbs, title=title, error=error, advice=advice, failed_job_ids=tuple(failed),
                  unfinished_job_ids=unfinished, retry_job_ids=tuple(curable),
                  jobs_done=sum(s in TERMINAL for s in states), jobs_total=len(jobs), taken_at=doc.get("taken_at"))


def _json(path: str, alias: str):
    """One field of a job's result, read by SQLite: an OCR result with all its lines is never loaded."""
    return fn.json_extract(Job.result, path).alias(alias)


_JOB_FIELDS = (Job.id, Job.document, Job.type, Job.state, Job.progress, Job.error, Job.error_kind, Job.error_advice,
               _json("$.blurhash", "blurhash"), _json("$.video.duration", "duration"),
               _json("$.thumbnails.sm.path", "sm"),
               _json("$.thumbnails.md.path", "md"), _json("$.thumbnails.lg.path", "lg"), _json("$.title", "title"))
_DOC_FIELDS = (Document.id, Document.session, Document.path, Document.size, Document.width, Document.height,
               Document.mtime, Document.sha256, Document.taken_at)


def document_files(doc_ids: Iterable[int]) -> dict[int, dict]:
    """What ``retry_cures`` needs of each document: its file's path, size, time and content hash."""
    found = {}
    for chunk in _chunks(sorted(set(doc_ids))):
        for doc in (Document.select(Document.id, Document.path, Document.size, Document.mtime, Document.sha256)
                    .where(Document.id.in_(chunk)).dicts()):
            found[doc["id"]] = doc
    return found


#: The rows of given documents, read many times a second while events pour in: plain SQL, the
#: same columns as ``_DOC_FIELDS`` and ``_JOB_FIELDS`` under the same names.
_DOCS_BY_ID = ("SELECT id, session_id AS session, path, size, width, height, mtime, sha256, taken_at "
               "FROM document WHERE id IN ({}) ORDER BY id")
_JOBS_BY_DOC = ("SELECT id, document_id AS document, type, state, progress, error, error_kind, error_advice, "
                "json_extract(result, '$.blurhash') AS blurhash, json_extract(result, '$.video.duration') AS duration, "
                "json_extract(result, '$.thumbnails.sm.path') AS sm, "
                "json_extract(result, '$.thumbnails.md.path') AS md, json_extract(result, '$.thumbnails.lg.path') AS lg, "
                "json_extract(result, '$.title') AS title FROM job WHERE document_id IN ({}) ORDER BY id")


def _rows(sql: str, ids: list[int]) -> list[dict]:
    cursor = db.execute_sql(sql.format(", ".join("?" * len(ids))), ids)
    names = [d[0] for d in cursor.description]
    return [dict(zip(names, row)) for row in cursor.fetchall()]


def document_rows(session_id: int | None = None, doc_ids: Iterable[int] = ()) -> list[DocRow]:
    """The rows of a session's documents (in import order), or of the given documents."""
    if session_id is not None:
        docs = list(Document.select(*_DOC_FIELDS).where(Document.session == session_id)
                    .order_by(Document.id).dicts())
        jobs = list(Job.select(*_JOB_FIELDS).where(Job.session == session_id).order_by(Job.id).dicts())
    else:  # what changed, many times a second while events pour in: the SQL is built once
        ids = sorted(set(doc_ids))
        docs, jobs = [], []
        for chunk in _chunks(ids):
            docs.extend(_rows(_DOCS_BY_ID, chunk))
            jobs.extend(_rows(_JOBS_BY_DOC, chunk))
    by_doc: dict[int, list[dict]] = {}
    for job in jobs:
        by_doc.setdefault(job["document"], []).append(job)
    return [_doc_row(doc, by_doc.get(doc["id"], [])) for doc in docs]


def session_rows(session_ids: Iterable[int] | None = None) -> list[SessionRow]:
    """Sessions with their documents counted by status; every session when ``session_ids`` is None.

    The library keeps these counts as it changes (``session_count``, migration 0008), so a session
    of 100,000 documents costs what one of ten does."""
    where, params = "", []
    if session_ids is not None:
        ids = sorted(set(session_ids))
        if not ids:
            return []
        where = f"IN ({', '.join('?' * len(ids))})"
        params = ids
    counts: dict[int, Counter] = {}
    for session_id, status, n in db.execute_sql(
            f"SELECT session_id, status, n FROM session_count {'WHERE session_id ' + where if where else ''}",
            params).fetchall():
        counts.setdefault(session_id, Counter())[status] += n
    retryable = dict(db.execute_sql(
        "SELECT session_id, COUNT(DISTINCT document_id) FROM job WHERE state = 'failed' "
        f"AND COALESCE(error_kind, '') != 'permanent' {'AND session_id ' + where if where else ''} "
        "GROUP BY session_id", params).fetchall())
    query = UploadSession.select(UploadSession.id, UploadSession.name, UploadSession.created_at,
                                 UploadSession.scanning)
    if session_ids is not None:
        query = query.where(UploadSession.id.in_(params))
    result = []
    for sid, name, created_at, scanning in query.order_by(UploadSession.id.desc()).tuples():
        c = counts.get(sid, Counter())
        result.append(SessionRow(id=sid, name=name, created_at=created_at, total=sum(c.values()),
                                 queued=c["queued"], running=c["running"], complete=c["complete"],
                                 failed=c["failed"], cancelled=c["cancelled"], scanning=bool(scanning),
                                 retryable=retryable.get(sid, 0)))
    return result


def throughput(window_s: float = 60.0) -> float:
    """Jobs per minute that ended (done or failed) over the last ``window_s`` seconds; results reused
    from the same content processed earlier are not work done."""
    ended = Job.select().where(worked_since(time.time() - window_s)).count()
    return ended * 60.0 / window_s


def document_details(doc_id: int) -> dict | None:
    """One document for the details panel: its fields, and each job with its timeline."""
    doc = Document.get_or_none(Document.id == doc_id)
    if doc is None:
        return None
    jobs = []
    doc_fields = {"path": doc.path, "size": doc.size, "mtime": doc.mtime, "sha256": doc.sha256}
    for job in Job.select().where(Job.document == doc_id).order_by(Job.id):
        timeline = [{"type": e.type, "attempt": e.attempt, "at": e.at, "worker": e.worker,
                     "duration_ms": e.duration_ms, "error": e.error}
                    for e in JobEvent.select().where(JobEvent.job == job.id).order_by(JobEvent.id)]
        jobs.append({**job_report(job), "type": job.type, "timeline": timeline,
                     "retry_cures": retry_cures(job.state, job.error_kind, doc_fields)})
    clip = LiveClip.get_or_none(LiveClip.document == doc_id)  # a Live Photo's
    return {"id": doc.id, "session_id": doc.session_id, "path": doc.path, "size": doc.size, "kind": doc.kind,
            "sha256": doc.sha256, "width": doc.width, "height": doc.height,
            "status": document_status([j["state"] for j in jobs]), "jobs": jobs,
            "live_photo": live_clip_report(clip) if clip else None}


def retryable_failed_job_ids(session_id: int | None = None, job_ids: Iterable[int] | None = None) -> list[int]:
    """The failed jobs (of a session, or among ``job_ids``, or all) that a retry may cure."""
    query = Job.select(Job.id, Job.state, Job.error_kind, Document.path, Document.size, Document.mtime,
                       Document.sha256).join(Document).where(Job.state == FAILED)
    if session_id is not None:
        query = query.where(Job.session == session_id)
    found = []
    for chunk in ([None] if job_ids is None else _chunks(sorted(set(job_ids)))):
        q = query if chunk is None else query.where(Job.id.in_(chunk))
        found += [job_id for job_id, state, kind, path, size, mtime, sha256 in q.tuples()
                  if retry_cures(state, kind, {"path": path, "size": size, "mtime": mtime, "sha256": sha256})]
    return found


CSV_FIELDS = ("id", "path", "size", "width", "height", "status")
CSV_JOB_FIELDS = ("state", "attempts", "duration_ms", "worker", "error")


def report_csv(report: dict) -> str:
    """A session report (``Library.report``) as CSV: one line per document, columns per job type."""
    job_types = sorted({t for doc in report["documents"] for t in doc["jobs"]})
    out = io.StringIO()
    writer = csv.writer(out, lineterminator="\n")
    writer.writerow([*CSV_FIELDS, *(f"{t}_{f}" for t in job_types for f in CSV_JOB_FIELDS)])
    for doc in report["documents"]:
        line = [doc.get(f) for f in CSV_FIELDS]
        for t in job_types:
            job = doc["jobs"].get(t) or {}
            line += [job.get(f) for f in CSV_JOB_FIELDS]
        writer.writerow(["" if v is None else v for v in line])
    return out.getvalue()


def read_skipped(session_id: int) -> dict[str, Any]:
    """A session's skipped files, for the owner thread: their count and each named one (path, reason, detail)."""
    session = UploadSession.get_or_none(UploadSession.id == session_id)
    counts = (session.skipped or {}) if session is not None else {}
    files = list(tuples(SkippedFile.select(SkippedFile.path, SkippedFile.reason, SkippedFile.detail)
                        .where(SkippedFile.session == session_id).order_by(SkippedFile.id)))
    return {"session_id": session_id, "total": sum(counts.values()), "files": files}

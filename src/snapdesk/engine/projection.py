"""Applying workers' events to the library, a batch at a time. Only the owner runs this.

:func:`transition` is the one place that says what each kind of event does to its job: the job's
columns it changes, or None when it changes nothing (an event of a superseded attempt, or for a
job that has ended). :class:`Projection` applies a batch with set-based SQL, so its cost grows
with the number of batches, not of events:

1. heartbeats renew their jobs' leases in one statement;
2. the jobs the other events name are read in one query, and each event is checked against its
   job and its transition computed in memory, in the order the events came;
3. the changes are written with one statement per kind: job rows, timeline rows, artifacts,
   document sizes, pictures' likenesses, the search index of the documents whose text changed;
4. progress is coalesced, one update per job with its latest figure; progress an attempt
   reported before a later event of the same batch (its start, its end) is moot and dropped.

An event that does not match its job (or carries a result that is not its job type's) is a
:class:`~.events.BadEvent`; one whose result files cannot be written, :class:`ResultNotStored`.
Either is reported back with the event, and the batch goes on without it: nothing is written until
every event of the batch has been computed, so an event that fails leaves nothing behind. A
database error aborts the batch; the owner applies it again later, which changes nothing twice.
"""

from __future__ import annotations

import base64
import binascii
import contextlib
import json
import os
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, BinaryIO, Iterable

from ..processors.similarity import Likeness
from ..store.db import CANCELLED, COMPLETE, FAILED, PENDING, RUNNING, QUEUED, TERMINAL, db
from . import events as ev
from .events import EventType
from . import duplicates, meaning
from .jobs import JOB_TYPES, ResultError, dependents_of

#: The job types whose results the search index holds (OCR text; title and summary; description; the
#: thumbnail's metadata: camera, place names and year taken).
SEARCHED_JOB_TYPES = ("ocr", "summary", "describe", "thumbnail")

#: The job columns an event may change, in the order the batch's UPDATE writes them.
COLUMNS = ("state", "attempt", "progress", "started_at", "finished_at", "worker", "lease_expires_at",
           "not_before", "error", "error_kind", "error_advice", "duration_ms", "result")

#: Where a worker's progress counts: the job is on a queue or running.
LIVE = (QUEUED, RUNNING)


class ResultNotStored(Exception):
    """A completion's result files could not be written (a full disk): the event is deferred."""


def transition(job: dict[str, Any], event: ev.AnyJobEvent, now: float, lease: float) -> dict[str, Any] | None:
    """What ``event`` does to ``job`` (its row): the columns it changes, or None for nothing.

    Only the owner makes attempts: a worker's ``job:retrying`` asks for one, and the job goes back
    to pending with the attempt raised and a time before which it may not run."""
    if event.attempt < job["attempt"] or job["state"] in TERMINAL:
        return None
    worker = event.worker.name
    match event.type:
        case EventType.STARTED:
            return {"state": RUNNING, "started_at": now, "worker": worker, "progress": 0, "lease_expires_at": lease}
        case EventType.PROGRESS:
            return {"state": RUNNING, "worker": worker, "lease_expires_at": lease,
                    "progress": max(job["progress"], event.progress)} if job["state"] in LIVE else None
        case EventType.QUEUED:  # a draining worker put it back on its queue
            return {"state": QUEUED, "progress": 0, "worker": None, "lease_expires_at": None}
        case EventType.RETRYING:
            return {"state": PENDING, "attempt": job["attempt"] + 1, "progress": 0, "worker": None,
                    "lease_expires_at": None, "error": event.error, "error_kind": event.error_kind.value,
                    "error_advice": event.advice, "not_before": now + event.delay_ms / 1000}
        case EventType.COMPLETE:  # the result, with where its files went, is added by the caller
            return {"state": COMPLETE, "progress": 100, "finished_at": now, "duration_ms": event.duration_ms,
                    "worker": worker, "error": None, "error_kind": None, "error_advice": None, "lease_expires_at": None}
        case EventType.FAILED:
            return {"state": FAILED, "finished_at": now, "duration_ms": event.duration_ms, "lease_expires_at": None,
                    "error": event.error, "error_kind": event.error_kind.value, "error_advice": event.advice,
                    "worker": worker}
        case EventType.CANCELLED:
            return {"state": CANCELLED, "finished_at": now, "lease_expires_at": None}
    raise ValueError(f"no transition for {event.type}")


@dataclass
class Outcome:
    """What a batch did: the events applied (changing something or not), the ones that could not
    be, each with its reason, and whether a job that waits for another may now be ready."""

    applied: list[ev.Event] = field(default_factory=list)
    problems: list[tuple[ev.Event, Exception]] = field(default_factory=list)
    unblocked: bool = False
    #: Jobs that ended without a result (failed, cancelled): the jobs waiting for them end too.
    ended_without_result: list[tuple[int, int, str, str]] = field(default_factory=list)


class Projection:
    """Applies checked events to the library DB. ``artifacts_dir`` is where result files go,
    ``lease_seconds`` how long a worker's lease runs from when the owner hears of its job."""

    def __init__(self, artifacts_dir: Path, lease_seconds: float):
        self.artifacts_dir = artifacts_dir
        self.lease_seconds = lease_seconds

    def apply(self, events: Iterable[ev.Event], now: float) -> Outcome:
        """Apply a batch (inside the caller's transaction); see the module's docstring."""
        out = Outcome()
        lease = now + self.lease_seconds
        events = list(events)
        beats = [e for e in events if isinstance(e, ev.Heartbeat)]
        job_events = [e for e in events if not isinstance(e, ev.Heartbeat)]
        if beats:
            _executemany("UPDATE job SET lease_expires_at = ? WHERE id = ? AND attempt = ? AND state IN (?, ?)",
                         [(lease, job_id, attempt, *LIVE) for beat in beats for job_id, attempt in beat.jobs])
            out.applied.extend(beats)
        if not job_events:
            return out

        jobs = _load_jobs({e.job_id for e in job_events})
        changed: dict[int, dict[str, Any]] = {}
        timeline: list[tuple[int, str, int, float, str, int | None, str | None]] = []
        artifacts: list[tuple[int, int, str, str, int, int | None, int | None]] = []
        sizes: dict[int, tuple[int, int]] = {}
        taken: dict[int, float | None] = {}
        likenesses: dict[str, Likeness] = {}
        reindex: set[int] = set()
        # Progress an attempt reported before a later event of the same job in this batch is moot.
        last_other = {e.job_id: i for i, e in enumerate(job_events) if e.type != EventType.PROGRESS}
        for i, event in enumerate(job_events):
            if event.type == EventType.PROGRESS and last_other.get(event.job_id, -1) > i:
                out.applied.append(event)
                continue
            job = jobs.get(event.job_id)
            try:
                if job is None:
                    out.applied.append(event)  # its session was removed (ids are never reused)
                    continue
                _check_matches(job, event)
                files = _check_result(job, event) if event.type == EventType.COMPLETE else {}
                changes = transition(job, event, now, lease)
                if changes is not None and event.type == EventType.COMPLETE:
                    paths = self._store_files(job, files)
                    result = JOB_TYPES[job["type"]].attach_files(event.result, paths)
                    result = meaning.on_complete(job["type"], job["sha256"], result)  # an embed's vector: its table
                    result = duplicates.on_complete(job["type"], job["sha256"], result, likenesses)  # its table
                    changes["result"] = json.dumps(result, sort_keys=True)  # as the model's JSONField writes it
                    artifacts += [(job["document_id"], job["id"], name, paths[name], len(data),
                                   *_size_of(event.result, name)) for name, data in files.items()]
                    if event.result.get("width") and event.result.get("height"):
                        sizes[job["document_id"]] = (event.result["width"], event.result["height"])
                    if job["type"] == "thumbnail":
                        taken[job["document_id"]] = (event.result.get("metadata") or {}).get("taken_at")
            except (ev.BadEvent, ResultNotStored) as exc:
                out.problems.append((event, exc))
                continue
            except Exception as exc:  # a bug: the event is kept to look at, and the batch goes on
                out.problems.append((event, exc))
                continue
            out.applied.append(event)
            if changes is None:
                continue
            job.update(changes)
            changed[job["id"]] = job
            if event.type == EventType.PROGRESS:
                continue
            timeline.append((job["id"], event.type.value, event.attempt, now, event.worker.name,
                             event.duration_ms, event.error))
            if event.type == EventType.RETRYING:
                out.unblocked = True
            elif event.type == EventType.COMPLETE:
                out.unblocked = out.unblocked or bool(dependents_of(job["type"]))
                if job["type"] in SEARCHED_JOB_TYPES:
                    reindex.add(job["document_id"])
            elif event.type in (EventType.FAILED, EventType.CANCELLED):
                out.ended_without_result.append((job["id"], job["document_id"], job["type"], job["state"]))

        _executemany(f"UPDATE job SET {', '.join(f'{c} = ?' for c in COLUMNS)} WHERE id = ?",
                     [(*(job[c] for c in COLUMNS), job["id"]) for job in changed.values()])
        _executemany("INSERT INTO job_event (job_id, type, attempt, at, worker, duration_ms, error) "
                     "VALUES (?, ?, ?, ?, ?, ?, ?)", timeline)
        _executemany("INSERT OR REPLACE INTO artifact (document_id, job_id, name, path, size, width, height) "
                     "VALUES (?, ?, ?, ?, ?, ?, ?)", artifacts)
        _executemany("UPDATE document SET width = ?, height = ? WHERE id = ?",
                     [(w, h, doc_id) for doc_id, (w, h) in sizes.items()])
        _executemany("UPDATE document SET taken_at = COALESCE(?, mtime) WHERE id = ?",  # else the file's time
                     [(at, doc_id) for doc_id, at in taken.items()])
        duplicates.store(likenesses)
        reindex_documents(reindex)
        return out

    def _store_files(self, job: dict[str, Any], files: dict[str, bytes]) -> dict[str, str]:
        """Write a completion's files into the library, named by content hash; where they went.

        A reader never sees half a file: a new file is written in its place before any row names
        it (the rows are written after the files), and one that is there already (the same
        content added twice, an event applied again after a crash cut a write short) is written
        beside it and renamed over it. Plain ``os`` calls, and the folder made only when a file
        cannot be opened without it: thousands of files a minute go through here, and on some
        disks each create and rename costs a tenth of a millisecond."""
        folder = os.path.join(self.artifacts_dir, job["sha256"][:2], job["sha256"], job["type"])
        paths = {}
        try:
            for name, data in files.items():
                path = os.path.join(folder, name)  # a bare file name (the schema allows no other): never a path
                _write(path, data)
                paths[name] = path
        except OSError as exc:
            raise ResultNotStored(f"cannot write its result files into {folder}: {exc.strerror or exc}") from None
        return paths


def _write(path: str, data: bytes) -> None:
    """Write a new file in its place; replace one that is there by a rename (see ``_store_files``)."""
    try:
        out = _open_new(path)
    except FileExistsError:
        with open(path + ".tmp", "wb") as tmp:
            tmp.write(data)
        os.replace(path + ".tmp", path)
        return
    try:
        with out:
            out.write(data)
    except OSError:  # a disk that filled up: no half file left where a file belongs
        with contextlib.suppress(OSError):
            os.unlink(path)
        raise


def _open_new(path: str) -> BinaryIO:
    try:
        return open(path, "xb")
    except FileNotFoundError:  # the first file of a folder
        os.makedirs(os.path.dirname(path), exist_ok=True)
        return open(path, "xb")


def reindex_documents(doc_ids: Iterable[int]) -> None:
    """(Re)write the documents' rows in the full-text index from their OCR and summary results."""
    doc_ids = sorted(set(doc_ids))
    for i in range(0, len(doc_ids), 500):
        chunk = doc_ids[i:i + 500]
        marks = ", ".join("?" * len(chunk))
        names = dict(db.execute_sql(f"SELECT id, path FROM document WHERE id IN ({marks})", chunk).fetchall())
        results: dict[int, dict[str, dict[str, Any]]] = {doc_id: {} for doc_id in names}
        for doc_id, job_type, result in db.execute_sql(
                f"SELECT document_id, type, result FROM job WHERE document_id IN ({marks}) AND state = ? "
                f"AND type IN ({', '.join('?' * len(SEARCHED_JOB_TYPES))})",
                (*chunk, COMPLETE, *SEARCHED_JOB_TYPES)).fetchall():
            results[doc_id][job_type] = json.loads(result) if result else {}
        rows = []
        for doc_id, path in names.items():
            summary, ocr = results[doc_id].get("summary", {}), results[doc_id].get("ocr", {})
            described = meaning.searchable_text(results[doc_id].get("describe"))  # a picture's description, tags
            taken = _metadata_words(results[doc_id].get("thumbnail", {}).get("metadata") or {})  # camera, place, year
            rows.append((doc_id, Path(path).name, summary.get("title") or "",
                         " ".join(filter(None, (summary.get("summary"), described, taken))), ocr.get("text") or ""))
        _executemany("DELETE FROM search_index WHERE rowid = ?", [(doc_id,) for doc_id in chunk])
        _executemany("INSERT INTO search_index (rowid, name, title, summary, text) VALUES (?, ?, ?, ?, ?)", rows)


def _metadata_words(metadata: dict[str, Any]) -> str:
    """What search finds a photo by from its metadata: the camera's make and model, the lens, the place's names
    (those the file carries), the year taken."""
    place: dict[str, Any] = metadata["place"] if isinstance(metadata.get("place"), dict) else {}
    words = [str(metadata.get(key) or "") for key in ("make", "model", "lens")]
    words += [str(place.get(key) or "") for key in ("location", "city", "state", "country")]
    taken = str(metadata.get("taken") or "")
    return " ".join(filter(None, (*words, taken[:4] if taken[:4].isdigit() else "")))


def unindex_documents(doc_ids: Iterable[int]) -> None:
    _executemany("DELETE FROM search_index WHERE rowid = ?", [(doc_id,) for doc_id in doc_ids])


# -- helpers -----------------------------------------------------------------------------
_JOB_COLUMNS = ("id", "document_id", "session_id", "type", *COLUMNS)


def _load_jobs(ids: set[int]) -> dict[int, dict[str, Any]]:
    """The jobs with these ids, as rows (with their document's content hash), in one query a chunk."""
    ids_list, jobs = sorted(ids), {}
    for i in range(0, len(ids_list), 900):
        chunk = ids_list[i:i + 900]
        cursor = db.execute_sql(f"SELECT {', '.join('j.' + c for c in _JOB_COLUMNS)}, d.sha256 FROM job j "
                                f"JOIN document d ON d.id = j.document_id WHERE j.id IN ({', '.join('?' * len(chunk))})",
                                chunk)
        for row in cursor.fetchall():
            job = dict(zip((*_JOB_COLUMNS, "sha256"), row))
            jobs[job["id"]] = job
    return jobs


def _check_matches(job: dict[str, Any], event: ev.AnyJobEvent) -> None:
    if (job["document_id"], job["session_id"], job["type"]) != (event.document_id, event.session_id, event.job_type):
        raise ev.BadEvent(f"it names job {job['id']} as the {event.job_type} job of document {event.document_id}, "
                          f"but that job is the {job['type']} job of document {job['document_id']}")
    if event.attempt > job["attempt"]:
        raise ev.BadEvent(f"it names attempt {event.attempt} of job {job['id']}, which has had only {job['attempt']}")


def _check_result(job: dict[str, Any], event: ev.JobComplete) -> dict[str, bytes]:
    """A completion's files, decoded, once its result is seen to be its job type's."""
    try:
        JOB_TYPES[job["type"]].check_result(event.result, set(event.files))
        return {name: base64.b64decode(encoded, validate=True) for name, encoded in event.files.items()}
    except ResultError as exc:
        raise ev.BadEvent(f"its {job['type']} result is not valid: {exc}") from None
    except (binascii.Error, ValueError):
        raise ev.BadEvent("its files are not valid base64") from None


def _size_of(result: dict[str, Any], name: str) -> tuple[int | None, int | None]:
    info = (result.get("thumbnails") or {}).get(Path(name).stem, {})
    return info.get("width"), info.get("height")


def _executemany(sql: str, rows: list[tuple[Any, ...]]) -> None:
    if rows:
        db.connection().executemany(sql, rows)

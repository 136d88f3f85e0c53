"""The library DB: peewee models on SQLite (WAL). Only the owner process opens it.

The schema is created and changed by the numbered scripts in ``migrations/``; the models
below mirror it (a test checks that they agree).
"""

from __future__ import annotations

import json
import time
from enum import Enum
from pathlib import Path
from typing import Any, Iterator, TypeVar, overload

import peewee
from playhouse.migrations import Runner

MIGRATIONS_DIR = Path(__file__).parent / "migrations"

db = peewee.DatabaseProxy()

class _Word(str, Enum):
    """A word of the library's vocabulary: stored, printed and compared as its plain string."""

    def __str__(self) -> str:
        return str(self.value)

    def __format__(self, spec: str) -> str:
        return format(str(self.value), spec)


class JobState(_Word):
    """A job's state, one word each, the same in the DB, the session JSON and the window: "pending"
    until the owner hands it to a queue, "queued", "running" once a worker took it, then
    "complete", "failed" or "cancelled"."""

    PENDING = "pending"
    QUEUED = "queued"
    RUNNING = "running"
    COMPLETE = "complete"
    FAILED = "failed"
    CANCELLED = "cancelled"


class DocStatus(_Word):
    """A document's status, one word from its jobs' states (``document.status``, kept by triggers;
    ``engine.library.document_status`` in Python): any failed, else any running, else any waiting
    (pending or queued: "queued"), else all cancelled, else complete."""

    QUEUED = "queued"
    RUNNING = "running"
    COMPLETE = "complete"
    FAILED = "failed"
    CANCELLED = "cancelled"


PENDING, QUEUED, RUNNING, COMPLETE, FAILED, CANCELLED = JobState
TERMINAL = (COMPLETE, FAILED, CANCELLED)
UNFINISHED = (PENDING, QUEUED, RUNNING)
JOB_STATES = tuple(JobState)


class JSONField(peewee.TextField):
    """A JSON value in a TEXT column; typed ``Any`` (a job's result is checked by its job type's schema)."""

    def db_value(self, value: Any) -> str | None:
        return None if value is None else json.dumps(value, sort_keys=True)

    def python_value(self, value: str | None) -> Any:
        return None if value is None else json.loads(value)


class BaseModel(peewee.Model):
    class Meta:
        database = db
        legacy_table_names = False


_D = TypeVar("_D")


class Meta(BaseModel):
    key = peewee.TextField(primary_key=True)
    value = peewee.TextField()

    @overload
    @classmethod
    def get_value(cls, key: str) -> str | None: ...
    @overload
    @classmethod
    def get_value(cls, key: str, default: _D) -> str | _D: ...
    @classmethod
    def get_value(cls, key: str, default: object = None) -> object:
        row = cls.get_or_none(cls.key == key)
        return default if row is None else row.value

    @classmethod
    def set_value(cls, key: str, value: object) -> None:
        cls.insert(key=key, value=str(value)).on_conflict_replace().execute()


class UploadSession(BaseModel):
    id = peewee.AutoField()
    name = peewee.TextField()
    created_at = peewee.FloatField(default=time.time)
    paths = JSONField()
    #: Files left out at import, counted by reason: {"hidden": 2, "unsupported": 1, ...}
    skipped = JSONField()
    #: True while its folders are still being scanned (documents keep arriving).
    scanning = peewee.BooleanField(default=False)


class Document(BaseModel):
    id = peewee.AutoField()
    session = peewee.ForeignKeyField(UploadSession, backref="documents", on_delete="CASCADE")
    session_id: int
    path = peewee.TextField()
    size = peewee.IntegerField()
    sha256 = peewee.TextField(index=True)
    kind = peewee.TextField()
    mtime = peewee.FloatField()
    width = peewee.IntegerField(null=True)
    height = peewee.IntegerField(null=True)
    #: When the picture was taken (its metadata, else the file's mtime), set when its thumbnail completes.
    taken_at = peewee.FloatField(null=True)
    #: Redis mode: the owner has put this document's bytes into Redis for remote workers.
    blob_in_flight = peewee.BooleanField(default=False)
    created_at = peewee.FloatField(default=time.time)
    #: One word from its jobs' states, kept by triggers (migration 0008): read here, never set.
    status = peewee.TextField(default="complete")

    class Meta:
        only_save_dirty = True  # a save() writes what was changed, never a stale status


class SkippedFile(BaseModel):
    """A file a session's scan left out, with its reason and a sentence about it (migration 0009)."""

    id = peewee.AutoField()
    session = peewee.ForeignKeyField(UploadSession, backref="skipped_files", on_delete="CASCADE")
    session_id: int
    path = peewee.TextField()
    reason = peewee.TextField()
    detail = peewee.TextField()


class LiveClip(BaseModel):
    """A Live Photo's clip, recorded with its still's document (migration 0011)."""

    document = peewee.ForeignKeyField(Document, primary_key=True, backref="live_clips", on_delete="CASCADE")
    document_id: int
    path = peewee.TextField()
    size = peewee.IntegerField()
    mtime = peewee.FloatField()
    #: Its length in seconds, from its movie header (None when that could not be read).
    duration = peewee.FloatField(null=True)


class Job(BaseModel):
    id = peewee.AutoField()
    document = peewee.ForeignKeyField(Document, backref="jobs", on_delete="CASCADE")
    document_id: int
    session = peewee.ForeignKeyField(UploadSession, backref="jobs", on_delete="CASCADE")
    session_id: int
    type = peewee.TextField()
    state = peewee.TextField(index=True)
    attempt = peewee.IntegerField(default=1)
    max_attempts = peewee.IntegerField()
    priority = peewee.IntegerField(default=0)
    progress = peewee.IntegerField(default=0)
    created_at = peewee.FloatField(default=time.time)
    queued_at = peewee.FloatField(null=True)
    not_before = peewee.FloatField(null=True)
    started_at = peewee.FloatField(null=True)
    finished_at = peewee.FloatField(null=True, index=True)
    lease_expires_at = peewee.FloatField(null=True)
    duration_ms = peewee.IntegerField(null=True)
    worker = peewee.TextField(null=True)
    error = peewee.TextField(null=True)
    error_kind = peewee.TextField(null=True)
    #: What to do about a failure when its kind's usual word would mislead (``JobError.advice``).
    error_advice = peewee.TextField(null=True)
    result = JSONField(null=True)
    #: The job whose result this one reuses (same content, already processed).
    reused_from = peewee.IntegerField(null=True)
    artifacts: peewee.ModelSelect[Artifact]  # the backref peewee adds (see Artifact.job)

    class Meta:
        indexes = ((("document", "type"), True),)


class JobEvent(BaseModel):
    """A job's timeline: every applied event but progress, for the details panel and status."""

    id = peewee.AutoField()
    job = peewee.ForeignKeyField(Job, backref="events", on_delete="CASCADE")
    job_id: int
    type = peewee.TextField()
    attempt = peewee.IntegerField()
    at = peewee.FloatField()
    worker = peewee.TextField(null=True)
    duration_ms = peewee.IntegerField(null=True)
    error = peewee.TextField(null=True)


class Artifact(BaseModel):
    id = peewee.AutoField()
    document = peewee.ForeignKeyField(Document, backref="artifacts", on_delete="CASCADE")
    document_id: int
    job = peewee.ForeignKeyField(Job, backref="artifacts", on_delete="CASCADE")
    job_id: int
    name = peewee.TextField()
    path = peewee.TextField()
    size = peewee.IntegerField()
    width = peewee.IntegerField(null=True)
    height = peewee.IntegerField(null=True)

    class Meta:
        indexes = ((("job", "name"), True),)


class HeldEvent(BaseModel):
    """An event the owner did not apply: ``set_aside`` for good (forged, malformed, not matching its
    job), or ``deferred`` (its result files could not be written yet; applied again later)."""

    id = peewee.AutoField()
    kind = peewee.TextField(index=True)
    reason = peewee.TextField()
    #: On the owner's clock.
    received_at = peewee.FloatField()
    job_id = peewee.IntegerField(null=True)
    body = peewee.TextField()


SET_ASIDE, DEFERRED = "set_aside", "deferred"


class Embedding(BaseModel):
    """A document content's vector for search by meaning, quantised (see migrations/0006)."""

    id = peewee.AutoField()
    sha256 = peewee.TextField(unique=True)
    model = peewee.TextField()
    dim = peewee.IntegerField()
    scale = peewee.FloatField()
    vector = peewee.BlobField()
    created_at = peewee.FloatField(default=time.time)


class Likeness(BaseModel):
    """A picture's perceptual hash and grey signature, by content hash (see migrations/0010)."""

    sha256 = peewee.TextField(primary_key=True)
    phash = peewee.IntegerField()
    signature = peewee.BlobField()


def tuples(query: peewee.BaseQuery) -> Iterator[tuple[Any, ...]]:
    """``query``'s rows as tuples: ``iter(query.tuples())``, typed as such (peewee's stubs give
    ``.tuples()`` the type of the query itself, whose rows would be models)."""
    return iter(query.tuples())


MODELS = [Meta, UploadSession, Document, SkippedFile, LiveClip, Job, JobEvent, Artifact, HeldEvent, Embedding, Likeness]


def open_db(path: Path) -> peewee.SqliteDatabase:
    """Open (creating and migrating as needed) the library DB at ``path`` and bind the models."""
    database = peewee.SqliteDatabase(
        str(path),
        pragmas={"journal_mode": "wal", "synchronous": "normal", "foreign_keys": 1, "busy_timeout": 10_000},
    )
    database.connect()
    db.initialize(database)
    Runner(database, directory=str(MIGRATIONS_DIR)).up()
    return database

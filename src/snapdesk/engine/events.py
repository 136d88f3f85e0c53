"""The event schema, the same on both transports. Events are the only way back from workers.

An event travels sealed: its JSON body encrypted and authenticated (AES-256-GCM, the owner's id
as associated data) with the library's own key, derived from the library's secret (embedded) or
the farm's (Redis) and the owner's id. The owner opens it (:func:`open_sealed`): one that was not
sealed with its key, text that is not JSON, or a body that does not fit the schema of its type
raises :class:`BadEvent` with the reason, and the owner sets it aside.

    type          job:queued | job:started | job:progress | job:retrying | job:complete |
                  job:failed | job:cancelled | worker:heartbeat
    job_id, job_type, document_id, session_id, owner, attempt, max_attempts
    progress      0-100
    worker        {"id", "host", "pid"}
    ts            seconds since the epoch, on the worker's clock: shown, never used to judge time
    duration_ms, error, error_kind ("retryable" | "permanent"), result   where they apply
    files         job:complete only: {name: base64 bytes} of the outputs the owner stores
    delay_ms      job:retrying only: how long the next attempt should wait (the owner queues it)
    jobs          worker:heartbeat only: [[job_id, attempt], ...] the worker is running for this owner

A task's payload (what the owner sends, what the worker reads) is typed here too: :class:`JobPayload`,
and :class:`WorkerInfo` for the ``worker`` of every event. Events are built by workers as plain dicts
(:func:`job_event`, :func:`heartbeat`) and checked by the pydantic models below where they enter.
"""

from __future__ import annotations

import hashlib
import hmac
import os
import socket
import time
import uuid
from enum import Enum
from typing import Annotated, Any, Literal, TypedDict, Union

from cryptography.exceptions import InvalidTag
from cryptography.hazmat.primitives.ciphers.aead import AESGCM
from pydantic import BaseModel, ConfigDict, Field, TypeAdapter, ValidationError


class EventType(str, Enum):
    QUEUED = "job:queued"
    STARTED = "job:started"
    PROGRESS = "job:progress"
    RETRYING = "job:retrying"
    COMPLETE = "job:complete"
    FAILED = "job:failed"
    CANCELLED = "job:cancelled"
    HEARTBEAT = "worker:heartbeat"

    def __str__(self) -> str:
        return self.value


class OwnerEvent(str, Enum):
    """What the owner itself writes in a job's timeline (``job_event``), beside the workers' events."""

    LEASE_EXPIRED = "lease:expired"  # the worker running it stopped responding: the job runs again
    TASK_LOST = "task:lost"  # its task was gone from the queue before it ran: queued again
    RETRY = "retry"  # a person asked for another attempt
    REPROCESS = "reprocess"  # a person asked for the document to be processed again
    CANCEL = "cancel"
    DISCARD = "discard"
    SKIPPED = "skipped"  # it will not run: what it comes after ended without a result, or left nothing

    def __str__(self) -> str:
        return self.value


class ErrorKind(str, Enum):
    RETRYABLE = "retryable"
    PERMANENT = "permanent"

    def __str__(self) -> str:
        return self.value


#: The payload fields every job event repeats, so an event can be applied on its own.
JOB_FIELDS: tuple[Literal["job_id", "job_type", "document_id", "session_id", "owner", "attempt", "max_attempts"],
                  ...] = ("job_id", "job_type", "document_id", "session_id", "owner", "attempt", "max_attempts")

_Id = Annotated[int, Field(ge=1)]
_Text = Annotated[str, Field(max_length=10_000)]


class WorkerInfo(TypedDict):
    """Who emits an event (see :func:`worker_identity`); checked as :class:`Worker` by the owner."""

    id: str
    host: str
    pid: int


class Limits(TypedDict, total=False):
    """The bounds a job runs within, as the owner sets them."""

    max_pixels: int
    #: Jobs per minute for a rate-limited job type, shared by every worker (0 or absent: none).
    rate_per_minute: int
    #: Pages of a PDF (absent: the worker's SNAPDESK_MAX_PAGES).
    max_pages: int


class _TaskFields(TypedDict):
    v: int
    owner: str
    job_id: int
    job_type: str
    document_id: int
    session_id: int
    attempt: int
    max_attempts: int
    backoff_ms: int
    priority: int
    path: str
    sha256: str
    size: int
    kind: str
    limits: Limits


class JobInputs(TypedDict, total=False):
    """What a job that comes after others gets from their results (see ``Library._input_of``)."""

    text: str
    image: str  # base64: a describe job's picture (its thumbnail)
    width: int | None
    height: int | None
    exif: dict[str, Any]
    embed_model: str
    limits: Limits


class JobPayload(_TaskFields, total=False):
    """A task: one attempt of one job of one library (``Library._payload`` builds it, the worker's
    ``attempt.run_job`` reads it). Every key of ``_TaskFields`` is there; those of ``JobInputs`` where
    they apply (the same keys, repeated: a TypedDict cannot make ``limits`` required and optional)."""

    text: str
    image: str
    width: int | None
    height: int | None
    exif: dict[str, Any]
    embed_model: str
    #: A thumbnail job's formats besides WebP's ("avif"), from the owner's SNAPDESK_VARIANT_FORMATS.
    variant_formats: list[str]


class Worker(BaseModel):
    model_config = ConfigDict(frozen=True)
    id: Annotated[str, Field(max_length=200)]
    host: Annotated[str, Field(max_length=200)]
    pid: int

    @property
    def name(self) -> str:
        return f"{self.host}:{self.pid}"


class _Event(BaseModel):
    model_config = ConfigDict(frozen=True, extra="ignore")  # fields a newer worker adds are ignored
    owner: Annotated[str, Field(max_length=64)]
    worker: Worker
    ts: float


class _JobFields(_Event):
    """What every event about one attempt of one job carries."""

    job_id: _Id
    job_type: Annotated[str, Field(max_length=40)]
    document_id: _Id
    session_id: _Id
    attempt: _Id
    max_attempts: _Id
    progress: Annotated[int, Field(ge=0, le=100)] = 0
    duration_ms: Annotated[int, Field(ge=0)] | None = None
    error: _Text | None = None


class JobEvent(_JobFields):
    """What a worker says about one attempt of one job: it was queued again, started, progressed, or
    was cancelled. (Its siblings below end an attempt; each kind is one class, so that ``type``
    tells them apart, for pydantic and for the type checker alike.)"""

    type: Literal[EventType.QUEUED, EventType.STARTED, EventType.PROGRESS, EventType.CANCELLED]


class JobEnded(_JobFields):
    """An attempt that failed (for good, or to be tried again after ``delay_ms``)."""

    type: Literal[EventType.RETRYING, EventType.FAILED]
    error: _Text
    error_kind: ErrorKind
    #: What to do about it, when "fix or replace the file" (a permanent failure's usual word) would mislead.
    advice: _Text | None = None
    delay_ms: Annotated[int, Field(ge=0, le=7 * 86400 * 1000)] = 0


class JobComplete(_JobFields):
    """An attempt's result, and the files the owner stores (bare names, base64 bytes)."""

    type: Literal[EventType.COMPLETE]
    result: dict[str, Any]
    files: dict[Annotated[str, Field(pattern=r"^[A-Za-z0-9_][A-Za-z0-9_.-]{0,99}$")], str] = {}


class Heartbeat(_Event):
    """A worker renews its leases on the jobs it runs for this owner."""

    type: Literal[EventType.HEARTBEAT]
    jobs: list[tuple[_Id, _Id]] = Field(max_length=10_000)


#: An event about one attempt of one job (every kind but a heartbeat).
AnyJobEvent = Union[JobComplete, JobEnded, JobEvent]
Event = Union[JobComplete, JobEnded, JobEvent, Heartbeat]
_EVENT = TypeAdapter(Annotated[Event, Field(discriminator="type")])


class BadEvent(ValueError):
    """An event that cannot be applied: forged, unreadable, or not of the schema of its type.
    ``body`` is its text, when it could be opened."""

    def __init__(self, reason: str, body: str | None = None):
        super().__init__(reason)
        self.body = body


def library_key(secret: str, owner: str) -> bytes:
    """The key of one library's events and document copies, from the secret and the library's id."""
    return hmac.new(secret.encode(), b"snapdesk-library:" + owner.encode(), hashlib.sha256).digest()


def seal(key: bytes, event: dict[str, Any]) -> bytes:
    """The sealed form of an event for its owner's log (nonce and AES-GCM ciphertext)."""
    nonce = os.urandom(12)
    return nonce + AESGCM(key).encrypt(nonce, _json(event), event["owner"].encode())


def open_sealed(key: bytes, owner: str, sealed: bytes | str) -> Event:
    """The event, checked: sealed for this owner with this key, and of its type's schema."""
    sealed = sealed.encode() if isinstance(sealed, str) else bytes(sealed)
    try:
        body = AESGCM(key).decrypt(sealed[:12], sealed[12:], owner.encode())
    except (InvalidTag, ValueError):
        raise BadEvent("it was not sealed with this library's key (not sent by a worker holding the secret)") from None
    try:
        event = _EVENT.validate_json(body)
    except ValidationError as exc:
        first = exc.errors()[0]
        where = ".".join(str(p) for p in first.get("loc", ())) or "the event"
        raise BadEvent(f"not a valid event: {where}: {first.get('msg')} ({exc.error_count()} problem"
                       f"{'s' if exc.error_count() != 1 else ''})", body.decode("utf-8", "replace")) from None
    if event.owner != owner:
        raise BadEvent(f"it is addressed to another library ({event.owner})")
    return event


def plain(event: Event) -> str:
    """An event as JSON, to keep in the library (a deferred one) or show (a set-aside one)."""
    return event.model_dump_json()


def parse_trusted(body: bytes | str) -> Event:
    """An event the owner checked before and kept in its own DB (a deferred one): schema only."""
    try:
        return _EVENT.validate_json(body)
    except ValidationError as exc:
        raise BadEvent(f"not a valid event: {exc.errors()[0].get('msg')}") from None


def worker_identity() -> WorkerInfo:
    """Who is emitting: a worker id that is unique across machines and restarts."""
    host = socket.gethostname()
    pid = os.getpid()
    return {"id": f"{host}:{pid}:{uuid.uuid4().hex[:6]}", "host": host, "pid": pid}


def job_event(type_: EventType, payload: JobPayload, worker: WorkerInfo, **fields: Any) -> dict[str, Any]:
    event: dict[str, Any] = {"type": type_.value, **{k: payload[k] for k in JOB_FIELDS}, "worker": worker,
                             "ts": time.time()}
    event.setdefault("progress", 0)
    event.update(fields)
    return event


def heartbeat(owner: str, worker: WorkerInfo, jobs: list[list[int]]) -> dict[str, Any]:
    return {"type": EventType.HEARTBEAT.value, "owner": owner, "worker": worker, "ts": time.time(), "jobs": jobs}


def _json(data: Any) -> bytes:
    import json

    return json.dumps(data, separators=(",", ":")).encode()

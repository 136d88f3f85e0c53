"""Two transports behind one interface: task queues, the event log, the worker registry, blobs.

| | embedded (default) | redis |
|---|---|---|
| task queues | SqliteHuey in ``queue.db`` in the data dir, one Huey per queue | PriorityRedisHuey, one per queue |
| event log | an append-only table in ``events.db`` | a Redis Stream per owner |
| document bytes | the worker reads the original file | the original when readable and unchanged, else a blob in Redis |

Storage knows nothing of what tasks do: the worker hands its task functions to the transport
(``make_transport(settings, run_job=..., trim=...)``); an owner only queues them by name.

Everything that decides what a worker or an owner does is sealed or signed with keys derived
from the library's secret or the farm's: task messages (JSON, never pickle, AES-256-GCM), each
library's events and document copies (AES-256-GCM with that library's own key), and the cancel
and supersede marks (a mark's name carries its HMAC, so only a holder of the secret can set one).
The event log holds exactly the events not yet applied: the owner deletes what it applied, and
always reads from the start, so a log that was recreated (or a server clock that went back) can
never hide an event behind a stale cursor.

The modules: ``base`` (the interface), ``embedded``, ``redis``, ``memory`` (in-process, for the
unit tests), ``signing`` (sealed task messages).
"""

from __future__ import annotations

from typing import Callable

from ...config import Settings
from .. import events as ev
from .base import (
    EVERY_LANE,
    MAINTENANCE_TASK_NAME,
    PRIORITY_BATCH,
    PRIORITY_INTERACTIVE,
    STALE_WORKER_SECONDS,
    TASK_NAME,
    LiveWorker,
    QueueCounts,
    RawEvent,
    RunningJob,
    Send,
    Transport,
    WorkerStatus,
)
from .embedded import EmbeddedTransport
from .redis import RedisTransport
from .signing import SignatureError, SignedSerializer, library_secret

__all__ = ["EVERY_LANE", "MAINTENANCE_TASK_NAME", "PRIORITY_BATCH", "PRIORITY_INTERACTIVE", "STALE_WORKER_SECONDS",
           "TASK_NAME", "EmbeddedTransport", "LiveWorker", "QueueCounts", "RawEvent", "RedisTransport", "RunningJob",
           "Send", "SignatureError", "SignedSerializer", "Transport", "WorkerStatus", "library_secret", "make_transport"]


def make_transport(settings: Settings, run_job: Callable[[ev.JobPayload], None] | None = None,
                   trim: Callable[[], None] | None = None) -> Transport:
    """The transport the settings ask for. A worker passes its task functions; an owner only queues."""
    if settings.redis_url:
        return RedisTransport(settings, run_job=run_job, trim=trim)
    return EmbeddedTransport(settings, run_job=run_job, trim=trim)

"""The event schema, the same on both transports. Events are the only way back from workers.

An event is a flat JSON object:

    type          job:queued | job:started | job:progress | job:retrying | job:complete |
                  job:failed | job:cancelled | worker:heartbeat
    job_id, job_type, document_id, session_id, owner, attempt, max_attempts
    progress      0-100
    worker        {"id", "host", "pid"}
    ts            seconds since the epoch (the worker's clock)
    duration_ms, error, error_kind ("retryable" | "permanent"), result   where they apply
    files         job:complete only: {name: base64 bytes} of the outputs the owner stores
    delay_ms      job:retrying only: when the next attempt may start
    jobs          worker:heartbeat only: [[job_id, attempt], ...] the worker is running for this owner
"""

from __future__ import annotations

import json
import os
import socket
import time
import uuid

JOB_QUEUED = "job:queued"
JOB_STARTED = "job:started"
JOB_PROGRESS = "job:progress"
JOB_RETRYING = "job:retrying"
JOB_COMPLETE = "job:complete"
JOB_FAILED = "job:failed"
JOB_CANCELLED = "job:cancelled"
WORKER_HEARTBEAT = "worker:heartbeat"

EVENT_TYPES = (JOB_QUEUED, JOB_STARTED, JOB_PROGRESS, JOB_RETRYING, JOB_COMPLETE, JOB_FAILED,
               JOB_CANCELLED, WORKER_HEARTBEAT)

#: The payload fields every job event repeats, so an event can be applied on its own.
JOB_FIELDS = ("job_id", "job_type", "document_id", "session_id", "owner", "attempt", "max_attempts")


def worker_identity() -> dict:
    """Who is emitting: a worker id that is unique across machines and restarts."""
    host = socket.gethostname()
    pid = os.getpid()
    return {"id": f"{host}:{pid}:{uuid.uuid4().hex[:6]}", "host": host, "pid": pid}


def job_event(type_: str, payload: dict, worker: dict, **fields) -> dict:
    event = {"type": type_, **{k: payload[k] for k in JOB_FIELDS}, "worker": worker, "ts": time.time()}
    event.setdefault("progress", 0)
    event.update(fields)
    return event


def encode(event: dict) -> str:
    return json.dumps(event, separators=(",", ":"))


def decode(text: str | bytes) -> dict:
    return json.loads(text)

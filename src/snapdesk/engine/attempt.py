"""The task body: runs one attempt of a job inside a worker process (fetch the document, run
its processor) and says how it went in events.

Only the owner makes attempts. A retryable failure with attempts left is reported as
``job:retrying`` with the backoff to wait (exponential with jitter, or the server's Retry-After);
the owner queues the next attempt. Anything else ends the job as failed. Every outcome is an event.

A job the owner cancelled, or an attempt it replaced, never starts, and a running one stops at
its next checkpoint (each progress report is one). A job past its time limit (the worker's
``SNAPDESK_JOB_TIMEOUT_<TYPE>``) stops at its next checkpoint too, and fails for good: the same
input would take as long again, so no retry is made (a person can still retry it, or raise the
limit). A job busy where it reports nothing (inside a C decoder) cannot be stopped from its
thread: the pixel and page limits bound how long one page's decode takes, and the limit is
enforced at the checkpoint that follows. A decoder hung for good would hold its thread (and keep
its lease renewed); recycling cannot free it, since a recycling worker waits for its jobs, but
SIGTERM does, past --drain-timeout, putting the job back on its queue. A job dequeued just as
its queue was paused goes back untouched. While the transport is unavailable (down, or refusing
writes) the worker waits: nothing it dequeued is dropped.
"""

from __future__ import annotations

import base64
import hashlib
import json
import logging
import os
import random
import threading
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any, Callable, Protocol

from ..processors.errors import JobError, PermanentError, RetryableError
from . import events as ev
from .jobs import JOB_TYPES
from .retrying import TRANSIENT_ERRORS, describe as describe_error, wait_out

if TYPE_CHECKING:
    from ..config import Settings
    from .jobs import JobType
    from .transport import Transport

log = logging.getLogger("snapdesk.worker")

#: 2: tasks are JSON, and the owner makes retries (a version-1 worker would queue its own).
PAYLOAD_VERSION = 2
PROGRESS_INTERVAL = 0.5  # seconds between progress events, milestones aside
CANCEL_CHECK_INTERVAL = 0.5  # seconds between looks at the cancel marks while a job runs


class TimedOut(PermanentError):
    """The job ran past its job type's time limit; it stops at its next checkpoint and fails."""


class Cancelled(Exception):
    """The owner cancelled the running job; it stops here and ends as cancelled."""


class Superseded(Exception):
    """The owner replaced this attempt with a newer one; it stops here, and says nothing more."""


class WorkerObserver(Protocol):
    """Who hears how each job taken from a queue ended (the worker's metrics and recycling)."""

    def job_ended(self, job_type: str, outcome: str, seconds: float | None) -> None: ...

    def job_requeued(self, job_type: str, reason: str) -> None: ...

    def rate_wait(self, queue: str, seconds: float) -> None: ...


@dataclass
class WorkerContext:
    transport: Transport
    worker: ev.WorkerInfo
    #: (owner, job_id) -> payload of every job running in this process, for lease heartbeats.
    running: dict[tuple[str, int], ev.JobPayload] = field(default_factory=dict)
    lock: threading.Lock = field(default_factory=threading.Lock)
    #: Test hook (SNAPDESK_TEST_FAULTS): by job type, the faults to inject (see ``_inject_faults``).
    faults: dict[str, dict[str, Any]] = field(default_factory=dict)
    #: The paused queues as last read; the worker's main loop refreshes it.
    paused: frozenset[str] = frozenset()
    #: How long cancel marks are kept (the periodic maintenance trims older ones).
    retention_seconds: float = 30 * 86400
    #: The worker's own settings: the LLM endpoint, model and key for summaries.
    settings: Settings | None = None
    #: The clock that stamps events (shown by the owner, never used by it to judge time).
    clock: Callable[[], float] = time.time
    #: Told how each job taken from a queue ended, for the worker's metrics and recycling (None: nobody):
    #: ``job_ended(job_type, outcome, seconds)`` (seconds None when it never ran),
    #: ``job_requeued(job_type, reason)`` and ``rate_wait(queue, seconds)``.
    observer: WorkerObserver | None = None

    def running_by_owner(self) -> dict[str, list[list[int]]]:
        with self.lock:
            by_owner: dict[str, list[list[int]]] = {}
            for (owner, job_id), payload in self.running.items():
                by_owner.setdefault(owner, []).append([job_id, payload["attempt"]])
            return by_owner


_context: WorkerContext | None = None


def install(context: WorkerContext) -> None:
    """Make this process a worker: jobs dequeued from now on run with this context."""
    global _context
    context.faults = json.loads(os.environ.get("SNAPDESK_TEST_FAULTS") or "{}")
    skew = float(os.environ.get("SNAPDESK_TEST_CLOCK_SKEW") or 0)  # test hook: a worker whose clock is off
    if skew:
        context.clock = lambda: time.time() + skew
    _context = context


def backoff_seconds(backoff_ms: int, attempt: int) -> float:
    """Exponential backoff from ``backoff_ms`` for the attempt that just failed, with +-20 % jitter."""
    return backoff_ms * 2.0 ** (attempt - 1) * random.uniform(0.8, 1.2) / 1000


def run_job(payload: ev.JobPayload) -> None:
    """The task every queue runs. Never raises: every outcome becomes an event."""
    ctx = _context
    if ctx is None:
        raise RuntimeError("jobs run only inside snapdesk-worker")
    job_type = JOB_TYPES.get(payload["job_type"])
    emit = _Emitter(ctx, payload)
    try:
        if not _may_start(ctx, job_type, payload, emit):
            return
    except TRANSIENT_ERRORS as exc:  # cannot tell yet: back on the queue, to be looked at again
        log.warning("job %s %s goes back on its queue: %s", payload["job_id"], payload["job_type"],
                    describe_error(exc))
        assert job_type is not None  # _may_start asks the transport nothing for an unknown job type
        _requeue(ctx, job_type.queue, payload)
        _tell(ctx, "job_requeued", payload["job_type"], "unavailable")
        return
    key = (payload["owner"], payload["job_id"])
    with ctx.lock:
        ctx.running[key] = payload
    started = time.monotonic()
    _set_time_limit(ctx, payload, emit, started)
    outcome = "interrupted"
    try:
        emit(ev.EventType.STARTED)
        if payload.get("v") != PAYLOAD_VERSION or job_type is None:
            raise PermanentError(f"this worker cannot run {payload['job_type']!r} jobs of payload version "
                                 f"{payload.get('v')}: upgrade snapdesk-worker to the app's version")
        source = fetch_source(ctx.transport, payload) if job_type.needs_source else None
        _inject_faults(ctx.faults, payload, emit.checkpoint)
        emit.checkpoint(force=True)
        result, files = job_type.run(source, payload, emit.progress, ctx.settings)
        duration = _ms(started)
        emit(ev.EventType.COMPLETE, progress=100, duration_ms=duration, result=result,
             files={name: base64.b64encode(data).decode("ascii") for name, data in files.items()})
        _log_outcome(payload, "complete", duration)
        outcome = "complete"
    except Cancelled:
        duration = _ms(started)
        emit(ev.EventType.CANCELLED, duration_ms=duration, error="cancelled while it ran")
        _log_outcome(payload, "cancelled", duration)
        outcome = "cancelled"
    except Superseded:
        _log_outcome(payload, "superseded by a newer attempt", _ms(started))
        outcome = "superseded"
    except JobError as exc:
        outcome = _failed(payload, emit, exc.kind, str(exc), started, getattr(exc, "retry_after", None),
                          exc.advice)
    except Exception as exc:  # a bug or an unforeseen condition: log it whole, retry it
        log.exception("job %s %s raised", payload["job_id"], payload["job_type"])
        outcome = _failed(payload, emit, "retryable", f"unexpected error: {type(exc).__name__}: {exc}", started)
    finally:
        with ctx.lock:
            ctx.running.pop(key, None)
        _tell(ctx, "job_ended", payload["job_type"], outcome, time.monotonic() - started)


def _set_time_limit(ctx: WorkerContext, payload: ev.JobPayload, emit: _Emitter, started: float) -> None:
    """The job's deadline, from the worker's settings: its job type's time limit, if it has one."""
    timeout_of = getattr(ctx.settings, "timeout_of", None)
    limit = timeout_of(payload["job_type"]) if timeout_of else 0
    if limit:
        own = hasattr(ctx.settings, f"job_timeout_{payload['job_type']}")
        emit.deadline, emit.limit = started + limit, limit
        emit.limit_setting = f"SNAPDESK_JOB_TIMEOUT_{payload['job_type'].upper()}" if own else "SNAPDESK_JOB_TIMEOUT"


def _may_start(ctx: WorkerContext, job_type: JobType | None, payload: ev.JobPayload, emit: _Emitter) -> bool:
    """Whether the job runs now: not when its queue was just paused or it was cancelled (it ends
    here), nor when the rate limit is used up (it waits its turn, without using an attempt)."""
    if job_type is None:
        return True  # run_job reports it
    paused_now, cancelled, superseded = ctx.transport.start_checks(payload["owner"], payload["job_id"],
                                                                   payload["attempt"], payload.get("priority", 0))
    ctx.paused = paused = frozenset(paused_now)
    if job_type.queue in paused:  # dequeued just as the queue was paused: back it goes, untouched
        _requeue(ctx, job_type.queue, payload)
        _tell(ctx, "job_requeued", payload["job_type"], "paused")
        return False
    if superseded:
        log.info("job %s %s: dropped a copy left behind (attempt %s was moved ahead, or replaced)",
                 payload["job_id"], payload["job_type"], payload["attempt"])
        _tell(ctx, "job_ended", payload["job_type"], "superseded", None)
        return False
    if cancelled:
        emit(ev.EventType.CANCELLED, error="cancelled before it started")
        _log_outcome(payload, "cancelled", 0)
        _tell(ctx, "job_ended", payload["job_type"], "cancelled", None)
        return False
    per_minute = payload.get("limits", {}).get("rate_per_minute") if job_type.rate_limited else None
    if per_minute:
        wait = ctx.transport.acquire_rate(job_type.queue, per_minute)
        if wait > 0:
            _requeue(ctx, job_type.queue, payload, delay=wait)
            _tell(ctx, "rate_wait", job_type.queue, wait)
            return False
    return True


def _tell(ctx: WorkerContext, what: str, *args: object) -> None:
    """Tell the worker's observer (its metrics, its recycling count) how a job went; never breaks a job."""
    if ctx.observer is not None:
        try:
            getattr(ctx.observer, what)(*args)
        except Exception:
            log.exception("the worker's %s hook failed", what)


def _requeue(ctx: WorkerContext, queue: str, payload: ev.JobPayload, delay: float | None = None) -> None:
    """Put a task (back) on its queue; while the transport is unavailable, keep trying: it must not be lost."""
    wait_out(lambda: ctx.transport.enqueue(queue, payload, priority=payload.get("priority", 0), delay=delay),
             f"put job {payload['job_id']} back on the {queue} queue", log)


def trim_transport() -> None:
    """The periodic maintenance task (every worker's scheduler queues it): trims the transport."""
    ctx = _context
    if ctx is None:
        raise RuntimeError("maintenance runs only inside snapdesk-worker")
    trimmed = ctx.transport.trim_expired(ctx.retention_seconds)
    log.info("maintenance: trimmed %s", ", ".join(f"{n} {what}" for what, n in trimmed.items()))


def _log_outcome(payload: ev.JobPayload, outcome: str, duration: int) -> None:
    log.info("job %s %s %s in %d ms", payload["job_id"], payload["job_type"], outcome, duration,
             extra={"job_id": payload["job_id"], "job_type": payload["job_type"], "duration_ms": duration,
                    "outcome": outcome})


def _failed(payload: ev.JobPayload, emit: _Emitter, kind: str, message: str, started: float,
            retry_after: float | None = None, advice: str | None = None) -> str:
    duration = _ms(started)
    attempt, max_attempts = payload["attempt"], payload["max_attempts"]
    if kind == "retryable" and attempt < max_attempts:
        # The backoff, or longer when the other side said how long to wait (Retry-After).
        delay = max(backoff_seconds(payload["backoff_ms"], attempt), retry_after or 0)
        emit(ev.EventType.RETRYING, error=message, error_kind=kind, duration_ms=duration, delay_ms=int(delay * 1000))
        outcome = f"to be retried in {delay:.1f} s"
        ended = "retrying"
    else:
        if kind == "retryable":
            message = f"{message} (gave up after {attempt} attempts)"
        emit(ev.EventType.FAILED, error=message, error_kind=kind, duration_ms=duration,
             **({"advice": advice} if advice else {}))
        outcome = ended = "failed"
    log.warning("job %s %s %s after %d ms: %s", payload["job_id"], payload["job_type"], outcome, duration, message,
                extra={"job_id": payload["job_id"], "job_type": payload["job_type"], "duration_ms": duration,
                       "outcome": outcome.split()[0], "error": message})
    return ended


class _Emitter:
    def __init__(self, ctx: WorkerContext, payload: ev.JobPayload):
        self.ctx, self.payload = ctx, payload
        self.deadline: float | None = None  # time.monotonic() past which the job stops (its time limit)
        self.limit, self.limit_setting = 0.0, ""
        self._last_progress = 0.0
        self._last_cancel_check = time.monotonic()

    def __call__(self, type_: ev.EventType, **fields: Any) -> None:
        event = ev.job_event(type_, self.payload, self.ctx.worker, **fields)
        event["ts"] = self.ctx.clock()
        self.ctx.transport.emit(self.payload["owner"], event)

    def checkpoint(self, force: bool = False) -> None:
        """Raise Cancelled when the owner has cancelled this job, Superseded when it replaced this
        attempt (looked up at most every 0.5 s), and TimedOut once the job is past its time limit."""
        now = time.monotonic()
        if self.deadline is not None and now > self.deadline:
            job_type = self.payload["job_type"]
            raise TimedOut(f"stopped after {self.limit:g} s, the time limit of a {job_type} job "
                           f"({self.limit_setting} on the worker); the document may be "
                           "too long or too large to process in that time")
        if force or now - self._last_cancel_check >= CANCEL_CHECK_INTERVAL:
            self._last_cancel_check = now
            p = self.payload
            try:
                cancelled, superseded = self.ctx.transport.job_marks(p["owner"], p["job_id"], p["attempt"],
                                                                     p.get("priority", 0))
            except TRANSIENT_ERRORS:
                return  # cannot tell now: the job goes on, and the next checkpoint looks again
            if superseded:
                raise Superseded()
            if cancelled:
                raise Cancelled()

    def progress(self, percent: int) -> None:
        """Report progress, at most every PROGRESS_INTERVAL seconds but for the milestones. A checkpoint."""
        self.checkpoint()
        now = time.monotonic()
        if now - self._last_progress >= PROGRESS_INTERVAL or percent in (25, 50, 75):
            self._last_progress = now
            self(ev.EventType.PROGRESS, progress=int(percent))


def fetch_source(transport: Transport, payload: ev.JobPayload) -> bytes:
    """The document's bytes: the original file when it is readable here and unchanged, else its blob."""
    path, sha256 = payload["path"], payload["sha256"]
    problem: JobError
    try:
        data = Path(path).read_bytes()
    except FileNotFoundError:
        problem = PermanentError("the file is gone: it was moved or deleted after it was added")
    except PermissionError:
        problem = PermanentError("cannot read the file: permission denied")
    except IsADirectoryError:
        problem = PermanentError("the path is now a folder, not a file")
    except OSError as exc:
        problem = RetryableError(f"cannot read the file: {exc.strerror or exc}")
    else:
        if hashlib.sha256(data).hexdigest() == sha256:
            return data
        problem = PermanentError("the file changed after it was added; add it again to process the new version")
    if transport.uses_blobs:
        blob = transport.get_blob(payload["owner"], sha256)
        if blob is not None and hashlib.sha256(blob).hexdigest() == sha256:
            return blob
    raise problem


def _inject_faults(faults: dict[str, dict[str, Any]], payload: ev.JobPayload, checkpoint: Callable[[], None]) -> None:
    """Test hook (SNAPDESK_TEST_FAULTS): slow down or fail chosen jobs to exercise retries and drains.

    ``{"thumbnail": {"match": "flaky", "sleep": 2, "fail_attempts": 1}}`` makes thumbnail jobs of
    documents whose path contains "flaky" take 2 s more and fail their first attempt.
    """
    rule = faults.get(payload["job_type"])
    if not rule or rule.get("match", "") not in payload["path"]:
        return
    until = time.monotonic() + float(rule.get("sleep", 0))
    while time.monotonic() < until:  # a slow job that still stops at checkpoints
        time.sleep(min(0.1, max(0.0, until - time.monotonic())))
        checkpoint()
    if payload["attempt"] <= int(rule.get("fail_attempts", 0)):
        raise RetryableError(f"injected transient fault on attempt {payload['attempt']}")


def _ms(started: float) -> int:
    return int((time.monotonic() - started) * 1000)

"""What the Jobs view, `snapdesk jobs` and `snapdesk health` show: queue statistics, workers, health.

Counts by state, durations and failures come from the library DB (this library's jobs);
waiting and delayed tasks, pauses and workers come from the transport (the whole farm).
"""

from __future__ import annotations

import time
from collections import Counter
from typing import Any, Iterable

import peewee

from ..config import QUEUES
from ..store.db import (COMPLETE, DEFERRED, FAILED, JOB_STATES, PENDING, QUEUED, SET_ASIDE, Document, HeldEvent, Job,
                        tuples)
from .jobs import JOB_TYPES
from .transport import QueueCounts, Transport

#: A worker whose last heartbeat is older than this is not counted as alive.
WORKER_ALIVE_SECONDS = 30.0


def _queue_of(job_type: str) -> str | None:
    job = JOB_TYPES.get(job_type)
    return job.queue if job else None


def _p95(values: list[int]) -> int | None:
    if not values:
        return None
    values = sorted(values)
    return values[min(len(values) - 1, int(round(0.95 * (len(values) - 1))))]


def _mean(values: Iterable[int]) -> int | None:
    values = list(values)
    return int(sum(values) / len(values)) if values else None


def failed_jobs(session_id: int | None = None, limit: int | None = None) -> list[dict[str, Any]]:
    """The failed jobs, newest first, with their error, attempts and input."""
    query = (Job.select(Job, Document).join(Document).where(Job.state == FAILED)
             .order_by(Job.finished_at.desc(), Job.id.desc()))
    if session_id is not None:
        query = query.where(Job.session == session_id)
    if limit:
        query = query.limit(limit)
    return [{"id": job.id, "type": job.type, "queue": _queue_of(job.type), "session_id": job.session_id,
             "document_id": job.document_id, "path": job.document.path, "sha256": job.document.sha256,
             "attempts": job.attempt, "max_attempts": job.max_attempts, "error": job.error,
             "error_kind": job.error_kind, "advice": job.error_advice, "worker": job.worker,
             "finished_at": job.finished_at}
            for job in query]


def held_events(limit: int | None = 20, now: float | None = None) -> dict[str, Any]:
    """Events the owner did not apply: counted by kind, the newest's age, and the latest with their reasons."""
    now = time.time() if now is None else now
    counts: Counter[str] = Counter(dict(tuples(HeldEvent.select(HeldEvent.kind, peewee.fn.COUNT(HeldEvent.id))
                                               .group_by(HeldEvent.kind))))
    newest: dict[str, float] = {kind: at for kind, at in tuples(
        HeldEvent.select(HeldEvent.kind, peewee.fn.MAX(HeldEvent.received_at)).group_by(HeldEvent.kind))}
    oldest: dict[str, float] = {kind: at for kind, at in tuples(
        HeldEvent.select(HeldEvent.kind, peewee.fn.MIN(HeldEvent.received_at)).group_by(HeldEvent.kind))}
    query = HeldEvent.select().order_by(HeldEvent.id.desc())
    latest = [{"id": h.id, "kind": h.kind, "reason": h.reason, "job_id": h.job_id,
               "age_seconds": round(now - h.received_at, 1), "event": h.body[:2000]}
              for h in (query.limit(limit) if limit else query)]
    return {kind: {"count": counts.get(kind, 0),
                   "newest_age_seconds": round(now - newest[kind], 1) if kind in newest else None,
                   "oldest_age_seconds": round(now - oldest[kind], 1) if kind in oldest else None}
            for kind in (SET_ASIDE, DEFERRED)} | {"latest": latest}


def worked_since(since: float) -> peewee.Expression:
    """Jobs a worker ended, done or failed, since then: neither results reused from the same content
    processed earlier nor jobs the owner ended without running them (a summary of a photo without
    text). The unary plus on the state keeps SQLite from reading them through the state index (nearly
    every job of a library is complete) where the time range, through ``finished_at``'s index, is
    what narrows them: 25 ms against 0.1 at 100,000 jobs."""
    return ((Job.finished_at >= since) & peewee.SQL("+state IN (?, ?)", [COMPLETE, FAILED])
            & Job.reused_from.is_null() & Job.worker.is_null(False))


def statistics(transport: Transport, window: float = 3600.0, now: float | None = None) -> dict[str, Any]:
    """Per queue: counts by state, waiting/delayed/paused, and over the last ``window`` seconds the
    throughput per minute, mean and p95 duration, mean wait, failure rate, the slowest jobs and the
    errors grouped by message. Plus the live workers."""
    now = time.time() if now is None else now
    since = now - window
    queue_counts = transport.queue_counts()
    queues: dict[str, dict[str, Any]] = {}
    counts: dict[str, Counter[str]] = {}  # by job type, by state: one pass over the jobs, not one a queue
    for job_type, state, n in tuples(Job.select(Job.type, Job.state, peewee.fn.COUNT(Job.id)).group_by(Job.type, Job.state)):
        counts.setdefault(job_type, Counter())[state] = n
    for queue in QUEUES:
        types = [name for name, t in JOB_TYPES.items() if t.queue == queue]
        by_state: Counter[str] = sum((counts.get(t, Counter()) for t in types), Counter())
        recent = list(Job.select(Job.id, Job.state, Job.duration_ms, Job.queued_at, Job.started_at, Job.worker,
                                 Job.document).where(Job.type.in_(types), worked_since(since)))
        done = [j for j in recent if j.state == COMPLETE]
        failed = [j for j in recent if j.state == FAILED]
        durations = [j.duration_ms for j in done if j.duration_ms is not None]
        waits = [int((j.started_at - j.queued_at) * 1000) for j in recent
                 if j.started_at and j.queued_at and j.started_at >= j.queued_at]
        slowest = sorted((j for j in done if j.duration_ms is not None), key=lambda j: -(j.duration_ms or 0))[:5]
        paths: dict[int, str] = dict(tuples(Document.select(Document.id, Document.path).where(
            Document.id.in_([j.document_id for j in slowest])))) if slowest else {}
        errors: Counter[str] = Counter(error for (error,) in tuples(
            Job.select(Job.error).where(Job.type.in_(types), Job.state == FAILED))) if types else Counter()
        queues[queue] = {
            "states": {state: by_state.get(state, 0) for state in JOB_STATES},
            **queue_counts[queue],
            "finished_in_window": len(recent),
            "throughput_per_min": round(len(done) / (window / 60), 2),
            "mean_ms": _mean(durations),
            "p95_ms": _p95(durations),
            "mean_wait_ms": _mean(waits),
            "failure_rate": round(len(failed) / len(recent), 3) if recent else None,
            "slowest": [{"id": j.id, "path": paths.get(j.document_id), "duration_ms": j.duration_ms,
                         "worker": j.worker} for j in slowest],
            "errors": [{"error": error, "count": n} for error, n in errors.most_common(10)],
        }
    held = held_events(limit=0, now=now)
    return {"window_seconds": window, "transport": transport.describe(), "queues": queues,
            "workers": workers(transport, now), "held_events": {k: held[k] for k in (SET_ASIDE, DEFERRED)}}


def workers(transport: Transport, now: float | None = None) -> list[dict[str, Any]]:
    """The workers that sent a heartbeat lately: host, pid, queues, concurrency, current jobs."""
    now = time.time() if now is None else now
    return [{"id": w["id"], "host": w["host"], "pid": w["pid"], "queues": w.get("queues", []),
             "concurrency": w.get("concurrency", {}), "running": w.get("running", []),
             "paused": w.get("paused", []), "version": w.get("version"),
             "last_heartbeat": w["last_heartbeat"], "seconds_since_heartbeat": round(max(0.0, w["age"]), 1)}
            for w in transport.workers(max_age=WORKER_ALIVE_SECONDS)]


def unserved_queues(counts: dict[str, QueueCounts], live: list[dict[str, Any]]) -> list[str]:
    """The queues with work waiting that no live worker serves (and that are not paused)."""
    served = {q for w in live for q in w["queues"] if q not in w.get("paused", [])}
    return sorted(q for q, c in counts.items() if c["waiting"] and not c["paused"] and q not in served)


def unserved_message(unserved: list[str]) -> str:
    return (f"no live worker serves the {', '.join(unserved)} queue{'s' if len(unserved) > 1 else ''}: its jobs "
            f"wait until one does (snapdesk-worker --queues {','.join(unserved)})")


def health(transport: Transport, max_lag: float = 300.0, need_workers: bool = True,
           now: float | None = None) -> dict[str, Any]:
    """Is the transport reachable, is some worker alive to serve each queue with work, and does no
    job wait longer than ``max_lag`` seconds? ``ok`` is False when any check fails."""
    now = time.time() if now is None else now
    checks: list[dict[str, Any]] = []

    def check(name: str, ok: object, detail: str) -> None:
        checks.append({"name": name, "ok": bool(ok), "detail": detail})

    try:
        transport.ping()
        counts = transport.queue_counts()
        live = workers(transport, now)
    except Exception as exc:  # whatever the cause, a probe reports it rather than crash
        check("transport", False, f"cannot reach {transport.describe()}: {exc}")
        return {"ok": False, "transport": transport.describe(), "checks": checks}
    check("transport", True, f"{transport.describe()} answers")

    waiting = {q: c["waiting"] for q, c in counts.items() if c["waiting"] and not c["paused"]}
    if live:
        check("workers", True, f"{len(live)} alive: " + ", ".join(f"{w['host']}:{w['pid']}" for w in live))
    elif need_workers or waiting:
        check("workers", False, "no worker has sent a heartbeat in the last "
              f"{WORKER_ALIVE_SECONDS:.0f} s" + (f" while {sum(waiting.values())} jobs wait" if waiting else ""))
    else:
        check("workers", True, "none running, and no work waiting (local workers start with the work)")
    unserved = unserved_queues(counts, live)
    if unserved:
        check("queues", False, "jobs wait on " + ", ".join(f"{q} ({waiting[q]})" for q in unserved)
              + " and no live worker serves " + ("it" if len(unserved) == 1 else "them"))
    else:
        paused = sorted(q for q, c in counts.items() if c["paused"])
        check("queues", True, "every queue with work has a worker" + (f"; paused: {', '.join(paused)}" if paused else ""))

    paused_types = [name for name, t in JOB_TYPES.items() if t.queue in counts and counts[t.queue]["paused"]]
    oldest = (Job.select(peewee.fn.MIN(Job.queued_at))
              .where(Job.state == QUEUED, Job.type.not_in(paused_types),  # a paused queue is meant to wait
                     (Job.not_before.is_null()) | (Job.not_before <= now)).scalar())
    lag = 0.0 if oldest is None else max(0.0, now - oldest)
    check("lag", lag <= max_lag, f"the oldest waiting job has waited {lag:.0f} s (limit {max_lag:.0f} s)")

    # Jobs the owner has not handed to a queue though nothing holds them back (no input to wait for,
    # no retry time ahead): the owner was stopped, or the transport was down when they were made.
    independent = [name for name, t in JOB_TYPES.items() if not t.after]
    since = peewee.fn.MIN(peewee.fn.COALESCE(Job.not_before, Job.created_at))
    ((n_pending, first_pending),) = tuples(Job.select(peewee.fn.COUNT(Job.id), since).where(
        Job.state == PENDING, Job.type.in_(independent), Job.not_before.is_null() | (Job.not_before <= now)))
    pending_age = 0.0 if first_pending is None else max(0.0, now - first_pending)
    check("pending", not n_pending or pending_age <= max_lag,
          f"{n_pending} job{'s' if n_pending != 1 else ''} ready but not yet on a queue"
          + (f", the oldest for {pending_age:.0f} s" if n_pending else ""))

    held = held_events(limit=0, now=now)
    recent = held[SET_ASIDE]["newest_age_seconds"]
    check("events", recent is None or recent > max_lag,
          f"{held[SET_ASIDE]['count']} event{'s' if held[SET_ASIDE]['count'] != 1 else ''} set aside"
          + (f" (the newest {recent:.0f} s ago; see snapdesk jobs --held)" if recent is not None else "")
          + f"; {held[DEFERRED]['count']} deferred")
    deferred = held[DEFERRED]["oldest_age_seconds"]
    if deferred is not None and deferred > max_lag:
        check("results", False, f"results wait {deferred:.0f} s to be written: is the disk full?")
    return {"ok": all(c["ok"] for c in checks), "transport": transport.describe(), "checks": checks}

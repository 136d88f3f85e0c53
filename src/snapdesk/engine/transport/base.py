"""What both transports share: the interface an owner and a worker use, its constants and
the shapes of what it returns. Subclasses (``embedded.py``, ``redis.py``) fill in storage.
"""

from __future__ import annotations

import hashlib
import hmac
import json
import logging
import threading
from typing import Any, Callable, NamedTuple, TypedDict

from huey import crontab

from ...config import QUEUES, Settings
from .. import events as ev
from ..retrying import wait_out
from .signing import SignedSerializer

log = logging.getLogger("snapdesk.transport")

#: Priority lanes: what a person asked for just now goes ahead of batch work.
PRIORITY_BATCH = 0
PRIORITY_INTERACTIVE = 10

TASK_NAME = "run_job"
MAINTENANCE_TASK_NAME = "maintenance"
#: How often each worker's scheduler queues the transport's maintenance (a Huey periodic task).
MAINTENANCE_SCHEDULE = crontab(minute="*/15")
#: Registry entries of workers silent for longer than this are removed.
STALE_WORKER_SECONDS = 24 * 3600
#: A supersede mark for every lane of an attempt (the attempt itself was replaced by a newer one).
EVERY_LANE = -1


class QueueCounts(TypedDict):
    waiting: int
    delayed: int
    paused: bool


class RawEvent(NamedTuple):
    """An entry of an owner's event log, as stored (sealed): opened and checked by ``events.open_sealed``."""

    id: str
    data: bytes


class RunningJob(TypedDict):
    owner: str
    job_id: int
    job_type: str


class WorkerStatus(ev.WorkerInfo, total=False):
    """What a worker registers with each heartbeat (``snapdesk-worker``'s ``Worker.info``): its
    identity, and the rest where it says it (an older worker may leave some out)."""

    queues: list[str]
    concurrency: dict[str, int]
    running: list[RunningJob]
    version: str
    started_at: float
    paused: list[str]


class LiveWorker(WorkerStatus):
    """A registered worker as ``Transport.workers`` returns it: with its last heartbeat, on the
    transport's clock, and how long ago that was."""

    last_heartbeat: float
    age: float


#: A task to send: (queue, payload, priority).
Send = tuple[str, ev.JobPayload, int]


def _not_in_this_process(*args: object, **kwargs: object) -> None:
    raise RuntimeError("jobs run only inside snapdesk-worker")


def _task(func: Callable[..., None]) -> Callable[..., None]:
    """``func`` under the one name its task has in every process: Huey knows a task by its
    function's module and name, and an owner queues what only a worker defines."""
    def task(*args: Any, **kwargs: Any) -> None:
        return func(*args, **kwargs)
    task.__module__ = "snapdesk"
    return task


class NoRevoke:
    """Mixed into the Huey of each of SnapDesk's queues. SnapDesk cancels work with its own marks
    (``cancel``) and never revokes a Huey task, so Huey's look for a revoke flag before each task (a
    read of the queue's store) and its clearing of the flag after it (a write: an exclusive
    transaction on SQLite, a ``DEL`` on Redis) are skipped: two round trips a job."""

    def is_revoked(self, task: Any, timestamp: Any = None, peek: bool = True) -> bool:
        return False

    def delete(self, key: str) -> bool:
        if key.startswith("r:"):  # a task's revoke flag (Huey's ``Task.revoke_id``), never set here
            return False
        return bool(super().delete(key))  # type: ignore[misc]  # (a mixin: Huey's is next in line)


class Transport:
    """What the owner and the workers share. Subclasses fill in storage."""

    name = "base"

    def __init__(self, settings: Settings, secret: str, run_job: Callable[[ev.JobPayload], None] | None = None,
                 trim: Callable[[], None] | None = None):
        self.settings = settings
        self.serializer = SignedSerializer(secret)
        self._secret = secret
        self._library_keys: dict[str, bytes] = {}
        self._mark_key = hashlib.sha256(b"snapdesk-mark:" + secret.encode()).digest()
        self._tasks = {TASK_NAME: _task(run_job or _not_in_this_process),
                       MAINTENANCE_TASK_NAME: _task(trim or _not_in_this_process)}
        # Huey ships no types: a Huey, its tasks and their wrappers are Any here.
        self._hueys: dict[str, tuple[Any, Any]] = {}
        self._maintenance: dict[str, Any] = {}
        self._lock = threading.Lock()

    # -- task queues -------------------------------------------------------------------
    def _make_huey(self, queue: str) -> Any:
        raise NotImplementedError

    def huey(self, queue: str) -> Any:
        return self._queue(queue)[0]

    def _queue(self, queue: str) -> tuple[Any, Any]:
        """The Huey of a queue and its task wrapper, made on first use."""
        if queue not in QUEUES:
            raise ValueError(f"unknown queue {queue!r}; the queues are {', '.join(QUEUES)}")
        with self._lock:
            if queue not in self._hueys:
                huey = self._make_huey(queue)
                maintain = self._tasks[MAINTENANCE_TASK_NAME]
                self._maintenance[queue] = huey.periodic_task(MAINTENANCE_SCHEDULE, name=MAINTENANCE_TASK_NAME)(maintain)
                self._hueys[queue] = (huey, huey.task(name=TASK_NAME)(self._tasks[TASK_NAME]))
            return self._hueys[queue]

    def enqueue_trim(self, queue: str) -> None:
        """Queue the transport's maintenance now (workers also queue it every 15 minutes)."""
        huey, _ = self._queue(queue)
        huey.enqueue(self._maintenance[queue].s())

    def enqueue(self, queue: str, payload: ev.JobPayload, priority: int = PRIORITY_BATCH,
                delay: float | None = None) -> None:
        """Put a job on its queue, to run now or after ``delay`` seconds."""
        huey, task = self._queue(queue)
        if delay and delay > 0:
            task.schedule(args=(payload,), delay=delay, priority=priority)
        else:
            huey.enqueue(task.s(payload, priority=priority))

    def enqueue_many(self, sends: list[Send], blobs: dict[str, bytes] | None = None, owner: str = "") -> None:
        """Put jobs on their queues to run now, ``(queue, payload, priority)`` each, in as few round
        trips as the storage allows (one transaction, one pipeline), after the document copies they
        need (``blobs``, of ``owner``'s library; Redis only). Should it fail, any of them may have
        been queued, or none."""
        if blobs:
            self.put_blobs(owner, blobs)
        for queue, payload, priority in sends:
            self.enqueue(queue, payload, priority=priority)

    def _messages(self, sends: list[Send]) -> dict[str, list[tuple[bytes, int]]]:
        """The serialized task messages of ``sends``, by queue, as ``huey.enqueue`` would make them."""
        by_queue: dict[str, list[tuple[bytes, int]]] = {}
        for queue, payload, priority in sends:
            huey, task = self._queue(queue)
            by_queue.setdefault(queue, []).append((huey.serialize_task(task.s(payload, priority=priority)), priority))
        return by_queue

    def queue_counts(self) -> dict[str, QueueCounts]:
        """Per queue: jobs waiting now, jobs waiting for a later time (retries), and whether it is paused."""
        paused = self.paused_queues()
        return {q: {"waiting": self.huey(q).pending_count(), "delayed": self.huey(q).scheduled_count(),
                    "paused": q in paused} for q in QUEUES}

    # -- control: shared by every worker, kept across restarts ------------------------
    def set_paused(self, queue: str, paused: bool) -> None:
        """Pause a queue (workers finish what they run and take nothing new from it) or resume it.
        A pause is farm-wide: every desktop's jobs on that queue wait."""
        raise NotImplementedError

    def paused_queues(self) -> set[str]:
        raise NotImplementedError

    def _mark(self, owner: str, *parts: int) -> str:
        """A mark's name: the numbers it is about and their HMAC, so that only a holder of the
        secret can make one that a worker obeys."""
        name = ":".join(str(int(p)) for p in parts)
        return f"{name}:{hmac.new(self._mark_key, f'{owner}:{name}'.encode(), hashlib.sha256).hexdigest()[:32]}"

    def _add_marks(self, owner: str, kind: str, names: list[str]) -> None:
        raise NotImplementedError

    def _remove_marks(self, owner: str, kind: str, names: list[str]) -> None:
        raise NotImplementedError

    def _have_marks(self, owner: str, wanted: list[tuple[str, str]]) -> list[bool]:
        raise NotImplementedError

    def cancel_jobs(self, owner: str, job_ids: list[int]) -> None:
        """Mark jobs cancelled: a worker that dequeues one drops it, one that runs it stops at a checkpoint."""
        if job_ids:
            self._add_marks(owner, "cancelled", [self._mark(owner, j) for j in job_ids])

    def uncancel_jobs(self, owner: str, job_ids: list[int]) -> None:
        if job_ids:
            self._remove_marks(owner, "cancelled", [self._mark(owner, j) for j in job_ids])

    def supersede(self, owner: str, job_id: int, attempt: int, priority: int = EVERY_LANE) -> None:
        """This attempt of the job is superseded, in one lane (it was queued again in a higher one,
        because a person opened its document) or in every lane (a newer attempt replaced it). A
        worker that takes a superseded copy drops it; one that runs it stops at its next checkpoint."""
        self._add_marks(owner, "superseded", [self._mark(owner, job_id, attempt, priority)])

    def job_marks(self, owner: str, job_id: int, attempt: int, priority: int) -> tuple[bool, bool]:
        """(cancelled, superseded) for a copy of a job's attempt queued at ``priority``: one look."""
        cancelled, lane, every = self._have_marks(owner, self._wanted_marks(owner, job_id, attempt, priority))
        return cancelled, lane or every

    def _wanted_marks(self, owner: str, job_id: int, attempt: int, priority: int) -> list[tuple[str, str]]:
        return [("cancelled", self._mark(owner, job_id)), ("superseded", self._mark(owner, job_id, attempt, priority)),
                ("superseded", self._mark(owner, job_id, attempt, EVERY_LANE))]

    def start_checks(self, owner: str, job_id: int, attempt: int, priority: int) -> tuple[set[str], bool, bool]:
        """What a worker looks at before it starts a job: (the paused queues, cancelled, superseded)."""
        return self.paused_queues(), *self.job_marks(owner, job_id, attempt, priority)

    def is_cancelled(self, owner: str, job_id: int) -> bool:
        return self._have_marks(owner, [("cancelled", self._mark(owner, job_id))])[0]

    def ping(self) -> None:
        """Raise when the transport cannot be used (server down, folder unreadable)."""
        raise NotImplementedError

    def acquire_rate(self, name: str, per_minute: int) -> float:
        """Take a slot of a rate limit shared by every worker of the farm (every desktop's jobs):
        0 when taken, else seconds to wait."""
        raise NotImplementedError

    def trim_expired(self, retention_seconds: float, now: float | None = None) -> dict[str, int]:
        """Trim what nobody needs any more: marks older than the retention, stale worker entries.

        Events are never trimmed here: each stays until its owner has applied it. Returns counts."""
        raise NotImplementedError

    def library_key(self, owner: str) -> bytes:
        """The key that seals one library's events and document copies (see ``events.library_key``)."""
        key = self._library_keys.get(owner)
        if key is None:
            key = self._library_keys[owner] = ev.library_key(self._secret, owner)
        return key

    # -- events ------------------------------------------------------------------------
    def emit(self, owner: str, event: dict[str, Any], retry: bool = True) -> None:
        """Append a sealed event to the owner's log. With ``retry`` (job events), wait while the
        transport cannot take it; without (heartbeats, which the next one replaces), raise."""
        data = ev.seal(self.library_key(owner), event)
        if retry:
            wait_out(lambda: self.append_event(owner, data), "send an event", log)
        else:
            self.append_event(owner, data)

    def append_event(self, owner: str, data: bytes) -> None:
        """Append an entry to the log as it is (``emit`` seals events first)."""
        raise NotImplementedError

    def read_events(self, owner: str, block_ms: int = 0, count: int = 500) -> list[RawEvent]:
        """The oldest ``count`` entries of the owner's log (waiting up to ``block_ms`` for one). The
        log holds only what the owner has not applied yet, so it is always read from its start."""
        raise NotImplementedError

    def ack_events(self, owner: str, ids: list[str]) -> None:
        """Delete applied (or set aside) entries from the log."""
        raise NotImplementedError

    def finish_batch(self, owner: str, ids: list[str], release_blobs: list[str]) -> None:
        """After a batch is applied: delete its entries from the log, and the document copies no job
        needs any more, in one round trip where the storage allows."""
        self.ack_events(owner, ids)
        self.delete_blobs(owner, release_blobs)

    def finish_and_read(self, owner: str, ids: list[str], release_blobs: list[str], block_ms: int = 0,
                        count: int = 500) -> list[RawEvent]:
        """``finish_batch``, then ``read_events``: in one round trip where the storage allows."""
        self.finish_batch(owner, ids, release_blobs)
        return self.read_events(owner, block_ms, count)

    # -- workers -----------------------------------------------------------------------
    def heartbeat(self, info: WorkerStatus) -> None:
        raise NotImplementedError

    def remove_worker(self, worker_id: str) -> None:
        raise NotImplementedError

    def workers(self, max_age: float = 30.0) -> list[LiveWorker]:
        raise NotImplementedError

    # -- document bytes ----------------------------------------------------------------
    def put_blob(self, owner: str, sha256: str, data: bytes) -> None:
        raise NotImplementedError

    def put_blobs(self, owner: str, blobs: dict[str, bytes]) -> None:
        """Put many documents' copies at once ({sha256: bytes})."""
        for sha256, data in blobs.items():
            self.put_blob(owner, sha256, data)

    def delete_blobs(self, owner: str, shas: list[str]) -> None:
        for sha256 in shas:
            self.delete_blob(owner, sha256)

    def get_blob(self, owner: str, sha256: str) -> bytes | None:
        return None

    def delete_blob(self, owner: str, sha256: str) -> None:
        pass

    def missing_blobs(self, owner: str, shas: list[str]) -> set[str]:
        """Those of ``shas`` whose copy is not in the transport (expired, or the server lost it)."""
        return set()

    @property
    def uses_blobs(self) -> bool:
        return False

    def close(self) -> None:
        for huey, _ in self._hueys.values():
            huey.storage.close()

    def describe(self) -> str:
        return self.name


def live_worker(body: str | bytes, seen: float, now: float) -> LiveWorker:
    """A registry entry as ``workers`` returns it: what the worker registered, and when, on our clock."""
    registered: WorkerStatus = json.loads(body)
    return {**registered, "last_heartbeat": seen, "age": now - seen}

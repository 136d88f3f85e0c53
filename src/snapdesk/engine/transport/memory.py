"""An in-process transport for the fast tests: queues, the event log, marks, blobs and the worker
registry, all in memory, and a worker that runs in the caller's own thread.

The queues are Huey's ``MemoryHuey``, one per queue like the other transports (``_make_huey``),
with the same signed serializer: a task travels as the same sealed JSON message as on SQLite or
Redis, so a payload that could not cross a real queue cannot cross this one either. Everything
else is a few dicts behind one lock; ``read_events`` waits on a condition, so an owner thread
that blocks on the log wakes when a worker thread appends.

``run_next(queue)`` is Huey's ``execute_next`` from its own test suite, done as a worker does:
it skips paused queues, moves retries that are due from the schedule back to their queue (as the
consumer's scheduler does), takes the next task by priority and runs it through Huey with the
real ``attempt.run_job`` and a real ``attempt.WorkerContext`` installed, here, in this thread.
Nothing is mocked below the transport: the attempt, the processors and the owner's ``Library`` are
the ones that run in production. Time can be moved forward for due retries (``now=``) and
for the registry, marks and rate limit (``clock=``).

    transport = MemoryTransport(settings)            # settings.local_workers must be "no"
    library = Library(settings, transport=transport)
    library.submit([photo])
    transport.run_next()                             # the thumbnail job runs here
    library.pump()                                   # and the owner applies what it said

``uses_blobs=True`` makes the owner hand document bytes over as blobs, as in Redis mode.
"""

from __future__ import annotations

import datetime
import secrets
import threading
import time
from collections import OrderedDict
from typing import Any, Callable

from huey import MemoryHuey
from huey import signals as huey_signals

from ...config import QUEUES, ConfigError, Settings
from .. import events as ev
from .. import attempt
from .base import STALE_WORKER_SECONDS, LiveWorker, NoRevoke, RawEvent, Transport, WorkerStatus


class QueueHuey(NoRevoke, MemoryHuey):  # type: ignore[misc]  # Huey ships no types
    """Huey in memory, without Huey's revoke checks, as the other transports' (see ``NoRevoke``)."""


class MemoryTransport(Transport):
    """Everything in this process's memory; ``run_next`` is the worker. Thread-safe."""

    name = "memory"

    def __init__(self, settings: Settings, secret: str | None = None, uses_blobs: bool = False,
                 clock: Callable[[], float] = time.time, worker_clock: Callable[[], float] = time.time):
        if settings.wants_local_workers:  # a Library would start snapdesk-worker on the SQLite queue instead
            raise ConfigError("the memory transport's worker is run_next in this process: make its settings "
                              "with local_workers=\"no\"")
        super().__init__(settings, secret or settings.secret or secrets.token_hex(32),
                         run_job=attempt.run_job, trim=attempt.trim_transport)
        self._uses_blobs = uses_blobs
        #: The clock of the registry, the marks' ages and the rate limit (a Redis server's, in Redis mode).
        self.clock = clock
        self._cond = threading.Condition(threading.RLock())
        self._events: dict[str, OrderedDict[str, bytes]] = {}
        self._next_event = 0
        self._marks: dict[tuple[str, str], dict[str, float]] = {}
        self._paused: set[str] = set()
        self._workers: dict[str, tuple[float, WorkerStatus]] = {}
        self._rates: dict[str, list[float]] = {}
        self._blobs: dict[tuple[str, str], bytes] = {}
        self._task_errors = threading.local()  # what a task raised, in the thread that ran it
        #: Called as ``observer(owner, raw_event)`` after each append, outside the lock: a test's way
        #: to act at a given moment of a running job (cancel it once it started, say).
        self.observers: list[Callable[[str, RawEvent], None]] = []
        #: The worker that ``run_next`` is: its identity in events, its settings for summaries.
        self.context = attempt.WorkerContext(transport=self, worker=ev.worker_identity(), settings=settings,
                                            retention_seconds=settings.retention_seconds, clock=worker_clock)

    # -- task queues -------------------------------------------------------------------
    def _make_huey(self, queue: str) -> Any:
        huey = QueueHuey(name=queue, results=False, serializer=self.serializer)
        # Huey logs what a task raised and goes on; run_next raises it in the test instead.
        huey.signal(huey_signals.SIGNAL_ERROR)(lambda signal, task, exc=None: setattr(self._task_errors, "exc", exc))
        return huey

    def run_next(self, queue: str | None = None, now: float | None = None) -> bool:
        """Run the next task of ``queue`` (of any queue, in the order of ``QUEUES``, when None) in this
        thread, as a worker would; True when a task was taken (it ran, or the attempt dropped or
        requeued it), False when none was due. Paused queues are skipped. ``now`` (seconds since
        the epoch, default the present) decides which delayed tasks are due: a test moves it forward
        instead of waiting out a retry's backoff. Whatever the task raised is raised here."""
        stamp = _huey_time(time.time() if now is None else now)
        paused = self.paused_queues()
        for name in ([queue] if queue else QUEUES):
            if name in paused:
                continue
            huey = self.huey(name)
            for task in huey.read_schedule(stamp):  # due retries back on their queue, as the scheduler does
                huey.enqueue(task)
            while True:
                task = huey.dequeue()
                if task is None:
                    break
                if not huey.ready_to_run(task, stamp):
                    huey.add_schedule(task)  # not due yet: it waits on the schedule
                    continue
                attempt.install(self.context)
                self._task_errors.exc = None
                huey.execute(task, stamp)
                if self._task_errors.exc is not None:
                    raise self._task_errors.exc
                return True
        return False

    def run_all(self, queue: str | None = None, now: float | None = None, limit: int = 10_000) -> int:
        """``run_next`` until nothing is due; how many tasks were taken."""
        for ran in range(limit):
            if not self.run_next(queue, now):
                return ran
        raise RuntimeError(f"still tasks to run after {limit}: a job that queues itself again forever?")

    def queued_payloads(self, queue: str) -> list[ev.JobPayload]:
        """The payloads waiting on a queue (due now or delayed), highest priority first."""
        huey = self.huey(queue)
        return [task.args[0] for task in huey.pending() + huey.scheduled() if task.args]

    # -- control -----------------------------------------------------------------------
    def set_paused(self, queue: str, paused: bool) -> None:
        self._queue(queue)  # checks the name
        with self._cond:
            (self._paused.add if paused else self._paused.discard)(queue)

    def paused_queues(self) -> set[str]:
        with self._cond:
            return set(self._paused)

    def _add_marks(self, owner: str, kind: str, names: list[str]) -> None:
        now = self.clock()
        with self._cond:
            self._marks.setdefault((owner, kind), {}).update({name: now for name in names})

    def _remove_marks(self, owner: str, kind: str, names: list[str]) -> None:
        with self._cond:
            marks = self._marks.get((owner, kind), {})
            for name in names:
                marks.pop(name, None)

    def _have_marks(self, owner: str, wanted: list[tuple[str, str]]) -> list[bool]:
        with self._cond:
            return [name in self._marks.get((owner, kind), {}) for kind, name in wanted]

    def ping(self) -> None:
        pass

    def acquire_rate(self, name: str, per_minute: int) -> float:
        now = self.clock()
        with self._cond:
            taken = [at for at in self._rates.get(name, []) if at > now - 60]
            if len(taken) < per_minute:
                self._rates[name] = [*taken, now]
                return 0.0
            self._rates[name] = taken
            return max(0.01, min(taken) + 60 - now)

    def trim_expired(self, retention_seconds: float, now: float | None = None) -> dict[str, int]:
        now = self.clock() if now is None else now
        with self._cond:
            marks = 0
            for names in self._marks.values():
                old = [name for name, at in names.items() if at < now - retention_seconds]
                for name in old:
                    del names[name]
                marks += len(old)
            stale = [w for w, (seen, _) in self._workers.items() if seen < now - STALE_WORKER_SECONDS]
            for worker_id in stale:
                del self._workers[worker_id]
        return {"cancel_marks": marks, "workers": len(stale)}

    # -- events ------------------------------------------------------------------------
    def append_event(self, owner: str, data: bytes) -> None:
        with self._cond:
            self._next_event += 1
            raw = RawEvent(str(self._next_event), bytes(data))
            self._events.setdefault(owner, OrderedDict())[raw.id] = raw.data
            self._cond.notify_all()
        for observer in list(self.observers):
            observer(owner, raw)

    def read_events(self, owner: str, block_ms: int = 0, count: int = 500) -> list[RawEvent]:
        with self._cond:
            self._cond.wait_for(lambda: self._events.get(owner), timeout=block_ms / 1000)
            log: dict[str, bytes] = self._events.get(owner) or {}
            return [RawEvent(i, data) for i, data in list(log.items())[:count]]

    def ack_events(self, owner: str, ids: list[str]) -> None:
        with self._cond:
            log: dict[str, bytes] = self._events.get(owner, {})
            for i in ids:
                log.pop(i, None)

    # -- workers -----------------------------------------------------------------------
    def heartbeat(self, info: WorkerStatus) -> None:
        with self._cond:
            self._workers[info["id"]] = (self.clock(), info.copy())

    def remove_worker(self, worker_id: str) -> None:
        with self._cond:
            self._workers.pop(worker_id, None)

    def workers(self, max_age: float = 30.0) -> list[LiveWorker]:
        now = self.clock()
        with self._cond:
            live = sorted(((w, seen, info) for w, (seen, info) in self._workers.items() if seen >= now - max_age),
                          key=lambda entry: entry[0])
        return [{**info, "last_heartbeat": seen, "age": now - seen} for _, seen, info in live]

    # -- document bytes ----------------------------------------------------------------
    @property
    def uses_blobs(self) -> bool:
        return self._uses_blobs

    def put_blob(self, owner: str, sha256: str, data: bytes) -> None:
        if not self._uses_blobs:
            raise NotImplementedError("this memory transport reads documents from their files (uses_blobs=False)")
        with self._cond:
            self._blobs[owner, sha256] = bytes(data)

    def get_blob(self, owner: str, sha256: str) -> bytes | None:
        with self._cond:
            return self._blobs.get((owner, sha256))

    def delete_blob(self, owner: str, sha256: str) -> None:
        with self._cond:
            self._blobs.pop((owner, sha256), None)

    def missing_blobs(self, owner: str, shas: list[str]) -> set[str]:
        if not self._uses_blobs:
            return set()
        with self._cond:
            return {sha for sha in shas if (owner, sha) not in self._blobs}

    def describe(self) -> str:
        return "memory (in this process)"


def _huey_time(seconds: float) -> datetime.datetime:
    """A time as Huey keeps its etas: naive UTC."""
    return datetime.datetime.fromtimestamp(seconds, datetime.timezone.utc).replace(tzinfo=None)

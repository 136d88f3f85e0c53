"""Two transports behind one interface: task queues, the event log, the worker registry, blobs.

| | embedded (default) | redis |
|---|---|---|
| task queues | SqliteHuey in ``queue.db`` in the data dir, one Huey per queue | PriorityRedisHuey, one per queue |
| event log | an append-only table in ``events.db`` | a Redis Stream per owner |
| document bytes | the worker reads the original file | the original when readable and unchanged, else a blob in Redis |

Storage knows nothing of what tasks do: the worker hands its task functions to the transport
(``make_transport(settings, run_job=..., maintain=...)``); an owner only queues them by name.

Everything that decides what a worker or an owner does is sealed or signed with keys derived
from the library's secret or the farm's: task messages (JSON, never pickle, AES-256-GCM), each
library's events and document copies (AES-256-GCM with that library's own key), and the cancel
and supersede marks (a mark's name carries its HMAC, so only a holder of the secret can set one).
The event log holds exactly the events not yet applied: the owner deletes what it applied, and
always reads from the start, so a log that was recreated (or a server clock that went back) can
never hide an event behind a stale cursor.
"""

from __future__ import annotations

import datetime
import hashlib
import hmac
import json
import logging
import os
import secrets
import sqlite3
import struct
import threading
import time
from pathlib import Path
from typing import Any, Callable, NamedTuple, TypedDict

import redis
from cryptography.exceptions import InvalidTag
from cryptography.hazmat.primitives.ciphers.aead import AESGCM
from huey import PriorityRedisHuey, SqliteHuey, crontab
from huey.registry import Message
from huey.serializer import Serializer

from ..config import QUEUES, ConfigError, Settings, redact_url
from . import events as ev
from .retrying import parser_for, wait_out

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


class SignatureError(ValueError):
    """A task message was unsigned or its signature did not match: it is dropped, never run."""


class SignedSerializer(Serializer):  # type: ignore[misc]  # huey ships no types: Serializer is Any
    """Task messages as JSON, sealed (AES-256-GCM: encrypted and authenticated) with a key derived
    from the secret; nothing of a message is read before it is seen to be genuine.

    JSON, not pickle: a holder of the secret can ask a worker to run a job, never to run code."""

    _FIELDS = Message._fields
    _AD = b"snapdesk-task"

    def __init__(self, secret: str):
        super().__init__()
        if not secret:
            raise ConfigError("a secret is needed to sign tasks")
        self._aead = AESGCM(hashlib.sha256(b"snapdesk-task:" + secret.encode()).digest())

    def _serialize(self, data: Message) -> bytes:
        if not isinstance(data, Message) or data.on_complete or data.on_error or data.chord_config:
            raise TypeError("only plain task messages travel on SnapDesk's queues")
        fields = data._asdict()
        for name in ("eta", "expires_resolved"):
            if isinstance(fields[name], datetime.datetime):
                fields[name] = {"datetime": fields[name].isoformat()}
        fields["args"] = list(fields["args"] or ())
        nonce = os.urandom(12)
        return nonce + self._aead.encrypt(nonce, json.dumps(fields, separators=(",", ":")).encode(), self._AD)

    def _deserialize(self, data: bytes) -> Message:
        data = bytes(data)
        try:
            body = self._aead.decrypt(data[:12], data[12:], self._AD)
        except (InvalidTag, ValueError):
            raise SignatureError("rejected a task with a missing or forged signature") from None
        try:
            fields = json.loads(body)
            for name in ("eta", "expires_resolved"):
                if isinstance(fields.get(name), dict):
                    fields[name] = datetime.datetime.fromisoformat(fields[name]["datetime"])
            fields["args"] = tuple(fields.get("args") or ())
            return Message(**{k: v for k, v in fields.items() if k in self._FIELDS})
        except (ValueError, TypeError, KeyError) as exc:
            raise SignatureError(f"rejected a signed task that is not a task message ({exc})") from None


def library_secret(data_dir: Path) -> str:
    """The embedded library's own signing secret, made on first use and kept in the data dir."""
    path = data_dir / "secret"
    try:
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    except FileExistsError:
        for _ in range(50):  # another process may be writing it this very moment
            value = path.read_text().strip()
            if value:
                return value
            time.sleep(0.01)
        raise ConfigError(f"the library secret {path} is empty; delete it and start again")
    value = secrets.token_hex(32)
    with os.fdopen(fd, "w") as fh:
        fh.write(value)
    return value


def _not_in_this_process(*args: object, **kwargs: object) -> None:
    raise RuntimeError("jobs run only inside snapdesk-worker")


def _task(func: Callable[..., None]) -> Callable[..., None]:
    """``func`` under the one name its task has in every process: Huey knows a task by its
    function's module and name, and an owner queues what only a worker defines."""
    def task(*args: Any, **kwargs: Any) -> None:
        return func(*args, **kwargs)
    task.__module__ = "snapdesk"
    return task


class Transport:
    """What the owner and the workers share. Subclasses fill in storage."""

    name = "base"

    def __init__(self, settings: Settings, secret: str, run_job: Callable[[ev.JobPayload], None] | None = None,
                 maintain: Callable[[], None] | None = None):
        self.settings = settings
        self.serializer = SignedSerializer(secret)
        self._secret = secret
        self._library_keys: dict[str, bytes] = {}
        self._mark_key = hashlib.sha256(b"snapdesk-mark:" + secret.encode()).digest()
        self._tasks = {TASK_NAME: _task(run_job or _not_in_this_process),
                       MAINTENANCE_TASK_NAME: _task(maintain or _not_in_this_process)}
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

    def enqueue_maintenance(self, queue: str) -> None:
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

    def maintenance(self, retention_seconds: float, now: float | None = None) -> dict[str, int]:
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


class EmbeddedTransport(Transport):
    """No server: queues and the event log are SQLite files in the data dir."""

    name = "embedded"
    #: How often an idle reader looks for new events or tasks (seconds).
    poll_interval = 0.01

    def __init__(self, settings: Settings, secret: str | None = None, **tasks: Any):
        self.data_dir = Path(settings.data_dir)
        self.data_dir.mkdir(parents=True, exist_ok=True)
        super().__init__(settings, secret or library_secret(self.data_dir), **tasks)
        self._local = threading.local()
        with self._db() as conn:
            conn.execute("CREATE TABLE IF NOT EXISTS event (id INTEGER PRIMARY KEY AUTOINCREMENT, "
                         "owner TEXT NOT NULL, body BLOB NOT NULL)")
            conn.execute("CREATE INDEX IF NOT EXISTS event_owner_id ON event (owner, id)")
            conn.execute("CREATE TABLE IF NOT EXISTS worker (id TEXT PRIMARY KEY, seen REAL NOT NULL, "
                         "body TEXT NOT NULL)")
            conn.execute("CREATE TABLE IF NOT EXISTS paused (queue TEXT PRIMARY KEY)")
            conn.execute("CREATE TABLE IF NOT EXISTS rate (name TEXT NOT NULL, at REAL NOT NULL)")
            conn.execute("CREATE TABLE IF NOT EXISTS mark (owner TEXT NOT NULL, kind TEXT NOT NULL, "
                         "name TEXT NOT NULL, at REAL NOT NULL, PRIMARY KEY (owner, kind, name))")

    def _make_huey(self, queue: str) -> Any:
        return SqliteHuey(name=queue, filename=str(self.data_dir / "queue.db"), results=False,
                          serializer=self.serializer, timeout=30)

    def _db(self) -> sqlite3.Connection:
        conn = getattr(self._local, "conn", None)
        if conn is None:
            conn = sqlite3.connect(self.data_dir / "events.db", timeout=30, isolation_level=None,
                                   check_same_thread=False)
            conn.execute("PRAGMA journal_mode=wal")
            conn.execute("PRAGMA synchronous=normal")
            self._local.conn = conn
        return conn

    def append_event(self, owner: str, data: bytes) -> None:
        self._db().execute("INSERT INTO event (owner, body) VALUES (?, ?)", (owner, sqlite3.Binary(data)))

    def read_events(self, owner: str, block_ms: int = 0, count: int = 500) -> list[RawEvent]:
        deadline = time.monotonic() + block_ms / 1000
        while True:
            rows = self._db().execute("SELECT id, body FROM event WHERE owner = ? ORDER BY id LIMIT ?",
                                      (owner, count)).fetchall()
            if rows or time.monotonic() >= deadline:
                return [RawEvent(str(i), body.encode() if isinstance(body, str) else bytes(body)) for i, body in rows]
            time.sleep(self.poll_interval)

    def ack_events(self, owner: str, ids: list[str]) -> None:
        if ids:
            self._db().executemany("DELETE FROM event WHERE owner = ? AND id = ?", [(owner, int(i)) for i in ids])

    def heartbeat(self, info: WorkerStatus) -> None:
        self._db().execute("INSERT OR REPLACE INTO worker (id, seen, body) VALUES (?, ?, ?)",
                           (info["id"], time.time(), json.dumps(info)))

    def remove_worker(self, worker_id: str) -> None:
        self._db().execute("DELETE FROM worker WHERE id = ?", (worker_id,))

    def workers(self, max_age: float = 30.0) -> list[LiveWorker]:
        now = time.time()
        rows = self._db().execute("SELECT seen, body FROM worker WHERE seen >= ? ORDER BY id", (now - max_age,))
        return [_live_worker(body, seen, now) for seen, body in rows]

    def set_paused(self, queue: str, paused: bool) -> None:
        self._queue(queue)  # checks the name
        if paused:
            self._db().execute("INSERT OR IGNORE INTO paused (queue) VALUES (?)", (queue,))
        else:
            self._db().execute("DELETE FROM paused WHERE queue = ?", (queue,))

    def paused_queues(self) -> set[str]:
        return {q for (q,) in self._db().execute("SELECT queue FROM paused")}

    def _add_marks(self, owner: str, kind: str, names: list[str]) -> None:
        now = time.time()
        self._db().executemany("INSERT OR REPLACE INTO mark (owner, kind, name, at) VALUES (?, ?, ?, ?)",
                               [(owner, kind, name, now) for name in names])

    def _remove_marks(self, owner: str, kind: str, names: list[str]) -> None:
        self._db().executemany("DELETE FROM mark WHERE owner = ? AND kind = ? AND name = ?",
                               [(owner, kind, name) for name in names])

    def _have_marks(self, owner: str, wanted: list[tuple[str, str]]) -> list[bool]:
        found = {(kind, name) for kind, name in self._db().execute(
            "SELECT kind, name FROM mark WHERE owner = ? AND name IN (%s)" % ",".join("?" * len(wanted)),
            (owner, *[name for _, name in wanted]))}
        return [w in found for w in wanted]

    def ping(self) -> None:
        self._db().execute("SELECT 1 FROM event LIMIT 1").fetchall()
        for queue in QUEUES:
            self.huey(queue).pending_count()

    def acquire_rate(self, name: str, per_minute: int) -> float:
        conn = self._db()
        now = time.time()
        conn.execute("BEGIN IMMEDIATE")  # one worker at a time counts and takes
        try:
            conn.execute("DELETE FROM rate WHERE name = ? AND at <= ?", (name, now - 60))
            count, oldest = conn.execute("SELECT COUNT(*), MIN(at) FROM rate WHERE name = ?", (name,)).fetchone()
            if count < per_minute:
                conn.execute("INSERT INTO rate (name, at) VALUES (?, ?)", (name, now))
                wait = 0.0
            else:
                wait = max(0.01, oldest + 60 - now)
            conn.execute("COMMIT")
        except BaseException:
            conn.execute("ROLLBACK")
            raise
        return wait

    def maintenance(self, retention_seconds: float, now: float | None = None) -> dict[str, int]:
        now = time.time() if now is None else now
        conn = self._db()
        marks = conn.execute("DELETE FROM mark WHERE at < ?", (now - retention_seconds,)).rowcount
        workers = conn.execute("DELETE FROM worker WHERE seen < ?", (now - STALE_WORKER_SECONDS,)).rowcount
        return {"cancel_marks": marks, "workers": workers}

    def enqueue_many(self, sends: list[Send], blobs: dict[str, bytes] | None = None, owner: str = "") -> None:
        # Huey's SqliteStorage.enqueue, one transaction a queue instead of one a task. (No blobs:
        # workers read the documents' files.)
        for queue, messages in self._messages(sends).items():
            storage = self.huey(queue).storage
            with storage.db(commit=True) as cursor:
                cursor.executemany("INSERT INTO task (queue, data, priority) VALUES (?, ?, ?)",
                                   [(storage.name, storage.to_blob(data), priority) for data, priority in messages])

    def put_blob(self, owner: str, sha256: str, data: bytes) -> None:
        raise NotImplementedError("the embedded transport reads documents from their files")

    def close(self) -> None:
        super().close()
        conn = getattr(self._local, "conn", None)
        if conn is not None:
            conn.close()
            self._local.conn = None


class RedisTransport(Transport):
    """A shared Redis: PriorityRedisHuey queues, one event stream per owner, blobs for remote workers.

    redis-py types every reply as ``bytes | str`` (``str`` only with ``decode_responses``, which this
    client never sets): where a reply's type matters it is annotated as bytes, with a type: ignore."""

    name = "redis"
    PREFIX = "snapdesk"
    BLOB_TTL = 7 * 24 * 3600  # a blob outlives any job that needs it; the owner deletes it before that

    def __init__(self, settings: Settings, secret: str | None = None, **tasks: Any):
        secret = secret or settings.secret
        if not secret:
            raise ConfigError("Redis mode needs the farm's shared secret: set SNAPDESK_SECRET "
                              "(the same value for the app and on every worker)")
        super().__init__(settings, secret, **tasks)
        protocol = (redis.connection.parse_url(settings.redis_url).get("protocol")  # type: ignore[no-untyped-call]
                    if "://" in settings.redis_url else None)  # (redis-py leaves parse_url unannotated)
        # redis-py defaults to a 5 s socket timeout; blocking reads here wait at most 5 s. The parser
        # names the error replies that mean "not now" (MISCONF, BUSY), so they are waited out.
        self.pool = redis.ConnectionPool.from_url(settings.redis_url, socket_timeout=30, socket_connect_timeout=10,
                                                  health_check_interval=15,
                                                  parser_class=parser_for(protocol))
        self.redis = redis.Redis(connection_pool=self.pool)

    def _make_huey(self, queue: str) -> Any:
        return PriorityRedisHuey(name=f"{self.PREFIX}_{queue}", connection_pool=self.pool, results=False,
                                 serializer=self.serializer, blocking=True, read_timeout=1)

    def _key(self, *parts: str) -> str:
        return ":".join((self.PREFIX, *parts))

    def append_event(self, owner: str, data: bytes) -> None:
        self.redis.xadd(self._key("events", owner), {"e": data})

    def read_events(self, owner: str, block_ms: int = 0, count: int = 500) -> list[RawEvent]:
        reply = self.redis.xread({self._key("events", owner): "0-0"}, count=count, block=block_ms or None)
        if not reply:
            return []
        # RESP2 replies [[stream, entries]]; RESP3 (protocol=3 in the URL) {stream: [entries]}. (redis-py
        # types the reply as a union of both shapes, with bytes | str inside: it is read as Any.)
        shaped: Any = reply
        entries = shaped[0][1] if isinstance(shaped, list) else next(iter(shaped.values()))[0]
        return [RawEvent(entry_id.decode(), fields.get(b"e", b"")) for entry_id, fields in entries]

    def ack_events(self, owner: str, ids: list[str]) -> None:
        if ids:
            self.redis.xdel(self._key("events", owner), *ids)

    def finish_batch(self, owner: str, ids: list[str], release_blobs: list[str]) -> None:
        pipe = self.redis.pipeline(transaction=False)
        if ids:
            pipe.xdel(self._key("events", owner), *ids)
        if release_blobs:
            pipe.delete(*(self._key("blob", owner, sha) for sha in release_blobs))
        pipe.execute()

    def _server_time(self) -> float:
        """The Redis server's clock: workers' registry entries are stamped and judged on it, so a
        worker whose own clock is off is neither dead nor immortal."""
        seconds, micros = self.redis.time()
        return seconds + micros / 1e6

    def heartbeat(self, info: WorkerStatus) -> None:
        now = self._server_time()
        pipe = self.redis.pipeline()
        pipe.hset(self._key("workers"), info["id"], json.dumps(info))
        pipe.zadd(self._key("workers", "seen"), {info["id"]: now})
        pipe.execute()

    def remove_worker(self, worker_id: str) -> None:
        pipe = self.redis.pipeline()
        pipe.hdel(self._key("workers"), worker_id)
        pipe.zrem(self._key("workers", "seen"), worker_id)
        pipe.execute()

    def workers(self, max_age: float = 30.0) -> list[LiveWorker]:
        now = self._server_time()
        live: list[tuple[bytes, float]] = self.redis.zrangebyscore(  # type: ignore[assignment]  # see the class doc
            self._key("workers", "seen"), now - max_age, "+inf", withscores=True)
        if not live:
            return []
        bodies = self.redis.hmget(self._key("workers"), [w for w, _ in live])
        return [_live_worker(body, seen, now) for (_, seen), body in zip(live, bodies) if body]

    @property
    def uses_blobs(self) -> bool:
        return True

    def enqueue_many(self, sends: list[Send], blobs: dict[str, bytes] | None = None, owner: str = "") -> None:
        # Huey's RedisPriorityQueue.enqueue (a sorted set scored by -priority, each member prefixed
        # with its time in microseconds to keep the order within a priority), in one pipeline, after
        # the document copies the tasks need.
        pipe = self.redis.pipeline(transaction=False)
        self._put_blobs(pipe, owner, blobs or {})
        for queue, messages in self._messages(sends).items():
            key = self.huey(queue).storage.queue_key
            for n, (data, priority) in enumerate(messages):
                prefix = struct.pack(">Q", int(time.time() * 1e6) + n)
                pipe.zadd(key, {prefix + data: -priority})
        pipe.execute()

    def put_blob(self, owner: str, sha256: str, data: bytes) -> None:
        self.put_blobs(owner, {sha256: data})

    def put_blobs(self, owner: str, blobs: dict[str, bytes]) -> None:
        pipe = self.redis.pipeline(transaction=False)
        self._put_blobs(pipe, owner, blobs)
        pipe.execute()

    def _put_blobs(self, pipe: Any, owner: str, blobs: dict[str, bytes]) -> None:
        """Documents' copies, sealed with their library's key: only a holder of the secret can read them."""
        aead = AESGCM(self.library_key(owner)) if blobs else None
        for sha256, data in blobs.items():
            nonce = os.urandom(12)
            assert aead is not None
            pipe.set(self._key("blob", owner, sha256), nonce + aead.encrypt(nonce, data, f"blob:{sha256}".encode()),
                     ex=self.BLOB_TTL)

    def get_blob(self, owner: str, sha256: str) -> bytes | None:
        key = self._key("blob", owner, sha256)
        sealed: bytes | None = self.redis.get(key)  # type: ignore[assignment]  # see the class doc
        if sealed is None:
            return None
        try:
            return AESGCM(self.library_key(owner)).decrypt(sealed[:12], sealed[12:], f"blob:{sha256}".encode())
        except (InvalidTag, ValueError):
            log.warning("the copy of %s in Redis was not sealed with this library's key; ignored", sha256[:12])
            return None

    def delete_blob(self, owner: str, sha256: str) -> None:
        self.redis.delete(self._key("blob", owner, sha256))

    def delete_blobs(self, owner: str, shas: list[str]) -> None:
        if shas:
            self.redis.delete(*(self._key("blob", owner, sha) for sha in shas))

    def missing_blobs(self, owner: str, shas: list[str]) -> set[str]:
        if not shas:
            return set()
        pipe = self.redis.pipeline(transaction=False)
        for sha in shas:
            pipe.exists(self._key("blob", owner, sha))
        return {sha for sha, there in zip(shas, pipe.execute()) if not there}

    def set_paused(self, queue: str, paused: bool) -> None:
        self._queue(queue)  # checks the name
        (self.redis.sadd if paused else self.redis.srem)(self._key("paused"), queue)

    def paused_queues(self) -> set[str]:
        paused: set[bytes] = self.redis.smembers(self._key("paused"))  # type: ignore[assignment]  # see the class doc
        return {q.decode() for q in paused}

    def _add_marks(self, owner: str, kind: str, names: list[str]) -> None:
        now = time.time()
        self.redis.zadd(self._key(kind, owner), {name: now for name in names})

    def _remove_marks(self, owner: str, kind: str, names: list[str]) -> None:
        self.redis.zrem(self._key(kind, owner), *names)

    def _have_marks(self, owner: str, wanted: list[tuple[str, str]]) -> list[bool]:
        pipe = self.redis.pipeline(transaction=False)
        for kind, name in wanted:
            pipe.zscore(self._key(kind, owner), name)
        return [score is not None for score in pipe.execute()]

    def start_checks(self, owner: str, job_id: int, attempt: int, priority: int) -> tuple[set[str], bool, bool]:
        pipe = self.redis.pipeline(transaction=False)  # one round trip
        pipe.smembers(self._key("paused"))
        for kind, name in self._wanted_marks(owner, job_id, attempt, priority):
            pipe.zscore(self._key(kind, owner), name)
        paused, cancelled, lane, every = pipe.execute()
        return {q.decode() for q in paused}, cancelled is not None, lane is not None or every is not None

    def ping(self) -> None:
        self.redis.ping()

    # A sliding window of the last minute's slots, on the server's clock (workers' clocks may differ).
    _RATE_SCRIPT = """
    local t = redis.call('TIME')
    local now = tonumber(t[1]) + tonumber(t[2]) / 1000000
    redis.call('ZREMRANGEBYSCORE', KEYS[1], 0, now - 60)
    if redis.call('ZCARD', KEYS[1]) < tonumber(ARGV[1]) then
        redis.call('ZADD', KEYS[1], now, ARGV[2])
        redis.call('EXPIRE', KEYS[1], 120)
        return '0'
    end
    local oldest = redis.call('ZRANGE', KEYS[1], 0, 0, 'WITHSCORES')
    return tostring(tonumber(oldest[2]) + 60 - now)
    """

    def acquire_rate(self, name: str, per_minute: int) -> float:
        wait = float(self.redis.eval(self._RATE_SCRIPT, 1, self._key("rate", name), per_minute, secrets.token_hex(8)))
        return max(0.01, wait) if wait > 0 else 0.0

    def maintenance(self, retention_seconds: float, now: float | None = None) -> dict[str, int]:
        now = time.time() if now is None else now
        marks = 0
        for kind in ("cancelled", "superseded"):
            for key in self.redis.scan_iter(match=self._key(kind, "*"), count=100):
                marks += self.redis.zremrangebyscore(key, 0, now - retention_seconds)
        seen: list[bytes] = self.redis.zrangebyscore(  # type: ignore[assignment]  # see the class doc
            self._key("workers", "seen"), 0, now - STALE_WORKER_SECONDS)
        stale = [w.decode() for w in seen]
        for worker_id in stale:
            self.remove_worker(worker_id)
        return {"cancel_marks": marks, "workers": len(stale)}

    def close(self) -> None:
        super().close()
        self.pool.disconnect()

    def describe(self) -> str:
        return f"redis {redact_url(self.settings.redis_url)}"


def _live_worker(body: str | bytes, seen: float, now: float) -> LiveWorker:
    """A registry entry as ``workers`` returns it: what the worker registered, and when, on our clock."""
    registered: WorkerStatus = json.loads(body)
    return {**registered, "last_heartbeat": seen, "age": now - seen}


def make_transport(settings: Settings, run_job: Callable[[ev.JobPayload], None] | None = None,
                   maintain: Callable[[], None] | None = None) -> Transport:
    """The transport the settings ask for. A worker passes its task functions; an owner only queues."""
    if settings.redis_url:
        return RedisTransport(settings, run_job=run_job, maintain=maintain)
    return EmbeddedTransport(settings, run_job=run_job, maintain=maintain)

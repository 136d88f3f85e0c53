"""Two transports behind one interface: task queues, the event log, the worker registry, blobs.

| | embedded (default) | redis |
|---|---|---|
| task queues | SqliteHuey in ``queue.db`` in the data dir, one Huey per queue | PriorityRedisHuey, one per queue |
| event log | an append-only table in ``events.db``, read after a cursor | a Redis Stream per owner |
| document bytes | the worker reads the original file | the original when readable and unchanged, else a blob in Redis |

Task payloads are pickled by Huey and signed (HMAC-SHA256) with the library's secret or the
farm's; a worker checks the signature before it unpickles anything.
"""

from __future__ import annotations

import hashlib
import hmac
import json
import logging
import os
import secrets
import sqlite3
import threading
import time
from pathlib import Path

import redis
from huey import PriorityRedisHuey, SqliteHuey, crontab
from huey.serializer import Serializer

from ..config import QUEUES, ConfigError, Settings, redact_url
from . import events as ev

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


#: What a transport raises when its server or files cannot be reached for now: try again later.
CONNECTION_ERRORS = (redis.ConnectionError, redis.TimeoutError, sqlite3.OperationalError)


class Backoff:
    """Waits that double from ``first`` up to ``cap`` seconds while something keeps failing."""

    def __init__(self, first: float = 0.2, cap: float = 5.0):
        self.first, self.cap = first, cap
        self.failures = 0

    def failed(self) -> float:
        """Count a failure; returns how long to wait before the next try."""
        self.failures += 1
        return min(self.cap, self.first * 2 ** (self.failures - 1))

    def succeeded(self) -> bool:
        """Count a success; True when it ends a run of failures (a reconnection)."""
        was_failing, self.failures = self.failures > 0, 0
        return was_failing


class SignatureError(ValueError):
    """A task payload was unsigned or its signature did not match: it is dropped, never run."""


class SignedSerializer(Serializer):
    """Pickle, then sign with HMAC-SHA256; verify before unpickling."""

    def __init__(self, secret: str):
        super().__init__()
        if not secret:
            raise ConfigError("a secret is needed to sign tasks")
        self._key = hashlib.sha256(b"snapdesk-task:" + secret.encode()).digest()

    def _serialize(self, data):
        body = super()._serialize(data)
        return hmac.new(self._key, body, hashlib.sha256).digest() + body

    def _deserialize(self, data):
        mac, body = bytes(data[:32]), bytes(data[32:])
        if len(data) < 32 or not hmac.compare_digest(mac, hmac.new(self._key, body, hashlib.sha256).digest()):
            raise SignatureError("rejected a task with a missing or forged signature")
        return super()._deserialize(body)


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


class Transport:
    """What the owner and the workers share. Subclasses fill in storage."""

    name = "base"

    def __init__(self, settings: Settings, secret: str):
        self.settings = settings
        self.serializer = SignedSerializer(secret)
        self._hueys = {}
        self._maintenance = {}
        self._lock = threading.Lock()

    # -- task queues -------------------------------------------------------------------
    def _make_huey(self, queue: str):
        raise NotImplementedError

    def huey(self, queue: str):
        return self._queue(queue)[0]

    def _queue(self, queue: str):
        """The Huey of a queue and its task wrapper, made on first use."""
        if queue not in QUEUES:
            raise ValueError(f"unknown queue {queue!r}; the queues are {', '.join(QUEUES)}")
        with self._lock:
            if queue not in self._hueys:
                from .runner import maintain, run_job  # the one task every queue runs, and the cleanup

                huey = self._make_huey(queue)
                self._maintenance[queue] = huey.periodic_task(MAINTENANCE_SCHEDULE, name=MAINTENANCE_TASK_NAME)(maintain)
                self._hueys[queue] = (huey, huey.task(name=TASK_NAME)(run_job))
            return self._hueys[queue]

    def enqueue_maintenance(self, queue: str) -> None:
        """Queue the transport's maintenance now (workers also queue it every 15 minutes)."""
        huey, _ = self._queue(queue)
        huey.enqueue(self._maintenance[queue].s())

    def enqueue(self, queue: str, payload: dict, priority: int = PRIORITY_BATCH, delay: float | None = None) -> None:
        """Put a job on its queue, to run now or after ``delay`` seconds."""
        huey, task = self._queue(queue)
        if delay:
            task.schedule(args=(payload,), delay=delay, priority=priority)
        else:
            huey.enqueue(task.s(payload, priority=priority))

    def queue_counts(self) -> dict:
        """Per queue: jobs waiting now, jobs waiting for a later time (retries), and whether it is paused."""
        paused = self.paused_queues()
        return {q: {"waiting": self.huey(q).pending_count(), "delayed": self.huey(q).scheduled_count(),
                    "paused": q in paused} for q in QUEUES}

    # -- control: shared by every worker, kept across restarts ------------------------
    def set_paused(self, queue: str, paused: bool) -> None:
        """Pause a queue (workers finish what they run and take nothing new from it) or resume it."""
        raise NotImplementedError

    def paused_queues(self) -> set[str]:
        raise NotImplementedError

    def cancel_jobs(self, owner: str, job_ids: list[int]) -> None:
        """Mark jobs cancelled: a worker that dequeues one drops it, one that runs it stops at a checkpoint."""
        raise NotImplementedError

    def uncancel_jobs(self, owner: str, job_ids: list[int]) -> None:
        raise NotImplementedError

    def is_cancelled(self, owner: str, job_id: int) -> bool:
        raise NotImplementedError

    def supersede(self, owner: str, job_id: int, attempt: int, priority: int) -> None:
        """The copy of a job's attempt queued at ``priority`` is superseded: it was queued again in a
        higher lane (a person opened its document). A worker that takes the old copy drops it."""
        raise NotImplementedError

    def is_superseded(self, owner: str, job_id: int, attempt: int, priority: int) -> bool:
        raise NotImplementedError

    def ping(self) -> None:
        """Raise when the transport cannot be used (server down, folder unreadable)."""
        raise NotImplementedError

    def acquire_rate(self, name: str, per_minute: int) -> float:
        """Take a slot of a rate limit shared by every worker: 0 when taken, else seconds to wait."""
        raise NotImplementedError

    def maintenance(self, retention_seconds: float, now: float | None = None) -> dict:
        """Trim what nobody needs any more: cancel marks older than the retention, stale worker entries.

        Events are never trimmed here: each stays until its owner has applied it. Returns counts."""
        raise NotImplementedError

    # -- events ------------------------------------------------------------------------
    def emit(self, owner: str, event: dict, retry: bool = True) -> None:
        """Append an event to the owner's log. With ``retry`` (job events), keep trying while the
        transport is unreachable; without (heartbeats, which the next one replaces), raise."""
        raise NotImplementedError

    def read_events(self, owner: str, after: str, block_ms: int = 0, count: int = 500) -> list[tuple[str, dict]]:
        raise NotImplementedError

    def ack_events(self, owner: str, ids: list[str]) -> None:
        raise NotImplementedError

    @property
    def initial_cursor(self) -> str:
        raise NotImplementedError

    # -- workers -----------------------------------------------------------------------
    def heartbeat(self, info: dict) -> None:
        raise NotImplementedError

    def remove_worker(self, worker_id: str) -> None:
        raise NotImplementedError

    def workers(self, max_age: float = 30.0) -> list[dict]:
        raise NotImplementedError

    # -- document bytes ----------------------------------------------------------------
    def put_blob(self, owner: str, sha256: str, data: bytes) -> None:
        raise NotImplementedError

    def get_blob(self, owner: str, sha256: str) -> bytes | None:
        return None

    def delete_blob(self, owner: str, sha256: str) -> None:
        pass

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

    def __init__(self, settings: Settings, secret: str | None = None):
        self.data_dir = Path(settings.data_dir)
        self.data_dir.mkdir(parents=True, exist_ok=True)
        super().__init__(settings, secret or library_secret(self.data_dir))
        self._local = threading.local()
        with self._db() as conn:
            conn.execute("CREATE TABLE IF NOT EXISTS event (id INTEGER PRIMARY KEY AUTOINCREMENT, "
                         "owner TEXT NOT NULL, body TEXT NOT NULL)")
            conn.execute("CREATE INDEX IF NOT EXISTS event_owner_id ON event (owner, id)")
            conn.execute("CREATE TABLE IF NOT EXISTS worker (id TEXT PRIMARY KEY, seen REAL NOT NULL, "
                         "body TEXT NOT NULL)")
            conn.execute("CREATE TABLE IF NOT EXISTS paused (queue TEXT PRIMARY KEY)")
            conn.execute("CREATE TABLE IF NOT EXISTS rate (name TEXT NOT NULL, at REAL NOT NULL)")
            conn.execute("CREATE TABLE IF NOT EXISTS cancelled (owner TEXT NOT NULL, job_id INTEGER NOT NULL, "
                         "at REAL NOT NULL, PRIMARY KEY (owner, job_id))")
            conn.execute("CREATE TABLE IF NOT EXISTS superseded (owner TEXT NOT NULL, job_id INTEGER NOT NULL, "
                         "attempt INTEGER NOT NULL, priority INTEGER NOT NULL, at REAL NOT NULL, "
                         "PRIMARY KEY (owner, job_id, attempt, priority))")

    def _make_huey(self, queue):
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

    @property
    def initial_cursor(self) -> str:
        return "0"

    def emit(self, owner, event, retry=True):
        self._db().execute("INSERT INTO event (owner, body) VALUES (?, ?)", (owner, ev.encode(event)))

    def read_events(self, owner, after, block_ms=0, count=500):
        deadline = time.monotonic() + block_ms / 1000
        while True:
            rows = self._db().execute("SELECT id, body FROM event WHERE owner = ? AND id > ? ORDER BY id LIMIT ?",
                                      (owner, int(after), count)).fetchall()
            if rows or time.monotonic() >= deadline:
                return [(str(i), ev.decode(body)) for i, body in rows]
            time.sleep(self.poll_interval)

    def ack_events(self, owner, ids):
        if ids:
            self._db().execute("DELETE FROM event WHERE owner = ? AND id <= ?", (owner, max(int(i) for i in ids)))

    def heartbeat(self, info):
        self._db().execute("INSERT OR REPLACE INTO worker (id, seen, body) VALUES (?, ?, ?)",
                           (info["id"], time.time(), json.dumps(info)))

    def remove_worker(self, worker_id):
        self._db().execute("DELETE FROM worker WHERE id = ?", (worker_id,))

    def workers(self, max_age=30.0):
        now = time.time()
        rows = self._db().execute("SELECT seen, body FROM worker WHERE seen >= ? ORDER BY id", (now - max_age,))
        return [{**json.loads(body), "last_heartbeat": seen} for seen, body in rows]

    def set_paused(self, queue, paused):
        self._queue(queue)  # checks the name
        if paused:
            self._db().execute("INSERT OR IGNORE INTO paused (queue) VALUES (?)", (queue,))
        else:
            self._db().execute("DELETE FROM paused WHERE queue = ?", (queue,))

    def paused_queues(self):
        return {q for (q,) in self._db().execute("SELECT queue FROM paused")}

    def cancel_jobs(self, owner, job_ids):
        now = time.time()
        self._db().executemany("INSERT OR REPLACE INTO cancelled (owner, job_id, at) VALUES (?, ?, ?)",
                               [(owner, int(j), now) for j in job_ids])

    def uncancel_jobs(self, owner, job_ids):
        self._db().executemany("DELETE FROM cancelled WHERE owner = ? AND job_id = ?",
                               [(owner, int(j)) for j in job_ids])

    def is_cancelled(self, owner, job_id):
        return self._db().execute("SELECT 1 FROM cancelled WHERE owner = ? AND job_id = ?",
                                  (owner, int(job_id))).fetchone() is not None

    def supersede(self, owner, job_id, attempt, priority):
        self._db().execute("INSERT OR REPLACE INTO superseded (owner, job_id, attempt, priority, at) "
                           "VALUES (?, ?, ?, ?, ?)", (owner, int(job_id), int(attempt), int(priority), time.time()))

    def is_superseded(self, owner, job_id, attempt, priority):
        return self._db().execute("SELECT 1 FROM superseded WHERE owner = ? AND job_id = ? AND attempt = ? "
                                  "AND priority = ?", (owner, int(job_id), int(attempt), int(priority))
                                  ).fetchone() is not None

    def ping(self):
        self._db().execute("SELECT 1 FROM event LIMIT 1").fetchall()
        for queue in QUEUES:
            self.huey(queue).pending_count()

    def acquire_rate(self, name, per_minute):
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

    def maintenance(self, retention_seconds, now=None):
        now = time.time() if now is None else now
        conn = self._db()
        cancel_marks = conn.execute("DELETE FROM cancelled WHERE at < ?", (now - retention_seconds,)).rowcount
        cancel_marks += conn.execute("DELETE FROM superseded WHERE at < ?", (now - retention_seconds,)).rowcount
        workers = conn.execute("DELETE FROM worker WHERE seen < ?", (now - STALE_WORKER_SECONDS,)).rowcount
        return {"cancel_marks": cancel_marks, "workers": workers}

    def put_blob(self, owner, sha256, data):
        raise NotImplementedError("the embedded transport reads documents from their files")

    def close(self):
        super().close()
        conn = getattr(self._local, "conn", None)
        if conn is not None:
            conn.close()
            self._local.conn = None


class RedisTransport(Transport):
    """A shared Redis: PriorityRedisHuey queues, one event stream per owner, blobs for remote workers."""

    name = "redis"
    PREFIX = "snapdesk"
    BLOB_TTL = 7 * 24 * 3600  # a blob outlives any job that needs it; the owner deletes it before that

    def __init__(self, settings: Settings, secret: str | None = None):
        secret = secret or settings.secret
        if not secret:
            raise ConfigError("Redis mode needs the farm's shared secret: set SNAPDESK_SECRET "
                              "(the same value for the app and on every worker)")
        super().__init__(settings, secret)
        # redis-py defaults to a 5 s socket timeout; blocking reads here wait at most 5 s.
        self.pool = redis.ConnectionPool.from_url(settings.redis_url, socket_timeout=30, socket_connect_timeout=10,
                                                  health_check_interval=15)
        self.redis = redis.Redis(connection_pool=self.pool)

    def _make_huey(self, queue):
        return PriorityRedisHuey(name=f"{self.PREFIX}_{queue}", connection_pool=self.pool, results=False,
                                 serializer=self.serializer, blocking=True, read_timeout=1)

    def _key(self, *parts) -> str:
        return ":".join((self.PREFIX, *parts))

    @property
    def initial_cursor(self) -> str:
        return "0-0"

    def emit(self, owner, event, retry=True):
        backoff = Backoff()
        while True:
            try:
                self.redis.xadd(self._key("events", owner), {"e": ev.encode(event)})
            except (redis.ConnectionError, redis.TimeoutError) as exc:
                if not retry:
                    raise
                if backoff.failures == 0:
                    log.warning("cannot reach Redis to send an event (%s); retrying until it is back", exc)
                time.sleep(backoff.failed())
                continue
            if backoff.succeeded():
                log.info("Redis is back; the event is sent")
            return

    def read_events(self, owner, after, block_ms=0, count=500):
        reply = self.redis.xread({self._key("events", owner): after}, count=count, block=block_ms or None)
        if not reply:
            return []
        _, entries = reply[0]
        return [(entry_id.decode(), ev.decode(fields[b"e"])) for entry_id, fields in entries]

    def ack_events(self, owner, ids):
        if ids:
            self.redis.xdel(self._key("events", owner), *ids)

    def heartbeat(self, info):
        now = time.time()
        pipe = self.redis.pipeline()
        pipe.hset(self._key("workers"), info["id"], json.dumps(info))
        pipe.zadd(self._key("workers", "seen"), {info["id"]: now})
        pipe.execute()

    def remove_worker(self, worker_id):
        pipe = self.redis.pipeline()
        pipe.hdel(self._key("workers"), worker_id)
        pipe.zrem(self._key("workers", "seen"), worker_id)
        pipe.execute()

    def workers(self, max_age=30.0):
        now = time.time()
        live = self.redis.zrangebyscore(self._key("workers", "seen"), now - max_age, "+inf", withscores=True)
        if not live:
            return []
        bodies = self.redis.hmget(self._key("workers"), [w for w, _ in live])
        return [{**json.loads(body), "last_heartbeat": seen} for (_, seen), body in zip(live, bodies) if body]

    @property
    def uses_blobs(self) -> bool:
        return True

    def put_blob(self, owner, sha256, data):
        self.redis.set(self._key("blob", owner, sha256), data, ex=self.BLOB_TTL)

    def get_blob(self, owner, sha256):
        return self.redis.get(self._key("blob", owner, sha256))

    def delete_blob(self, owner, sha256):
        self.redis.delete(self._key("blob", owner, sha256))

    def set_paused(self, queue, paused):
        self._queue(queue)  # checks the name
        (self.redis.sadd if paused else self.redis.srem)(self._key("paused"), queue)

    def paused_queues(self):
        return {q.decode() for q in self.redis.smembers(self._key("paused"))}

    def cancel_jobs(self, owner, job_ids):
        if job_ids:
            self.redis.zadd(self._key("cancelled", owner), {str(j): time.time() for j in job_ids})

    def uncancel_jobs(self, owner, job_ids):
        if job_ids:
            self.redis.zrem(self._key("cancelled", owner), *[str(j) for j in job_ids])

    def is_cancelled(self, owner, job_id):
        return self.redis.zscore(self._key("cancelled", owner), str(job_id)) is not None

    def supersede(self, owner, job_id, attempt, priority):
        self.redis.zadd(self._key("superseded", owner), {f"{int(job_id)}:{int(attempt)}:{int(priority)}": time.time()})

    def is_superseded(self, owner, job_id, attempt, priority):
        member = f"{int(job_id)}:{int(attempt)}:{int(priority)}"
        return self.redis.zscore(self._key("superseded", owner), member) is not None

    def ping(self):
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

    def acquire_rate(self, name, per_minute):
        wait = float(self.redis.eval(self._RATE_SCRIPT, 1, self._key("rate", name), per_minute, secrets.token_hex(8)))
        return max(0.01, wait) if wait > 0 else 0.0

    def maintenance(self, retention_seconds, now=None):
        now = time.time() if now is None else now
        cancel_marks = 0
        for kind in ("cancelled", "superseded"):
            for key in self.redis.scan_iter(match=self._key(kind, "*"), count=100):
                cancel_marks += self.redis.zremrangebyscore(key, 0, now - retention_seconds)
        stale = [w.decode() for w in self.redis.zrangebyscore(self._key("workers", "seen"), 0, now - STALE_WORKER_SECONDS)]
        for worker_id in stale:
            self.remove_worker(worker_id)
        return {"cancel_marks": cancel_marks, "workers": len(stale)}

    def close(self):
        super().close()
        self.pool.disconnect()

    def describe(self) -> str:
        return f"redis {redact_url(self.settings.redis_url)}"


def make_transport(settings: Settings) -> Transport:
    """The transport the settings ask for."""
    if settings.redis_url:
        return RedisTransport(settings)
    return EmbeddedTransport(settings)

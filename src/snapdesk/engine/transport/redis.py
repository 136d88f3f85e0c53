"""The farm's transport: a shared Redis with PriorityRedisHuey queues, an event stream per
owner, and blobs for workers that cannot read the original file.
"""

from __future__ import annotations

import json
import logging
import os
import secrets
import struct
import time
from typing import Any

import redis
from cryptography.exceptions import InvalidTag
from cryptography.hazmat.primitives.ciphers.aead import AESGCM
from huey import PriorityRedisHuey

from ...config import QUEUES, ConfigError, Settings, redact_url
from ..retrying import parser_for
from .base import (
    STALE_WORKER_SECONDS,
    LiveWorker,
    NoRevoke,
    QueueCounts,
    RawEvent,
    Send,
    Transport,
    WorkerStatus,
    live_worker,
)

log = logging.getLogger("snapdesk.transport")


class QueueHuey(NoRevoke, PriorityRedisHuey):  # type: ignore[misc]  # Huey ships no types
    """Huey on Redis, in priority order, without Huey's revoke checks (see ``NoRevoke``)."""


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
        return QueueHuey(name=f"{self.PREFIX}_{queue}", connection_pool=self.pool, results=False,
                         serializer=self.serializer, blocking=True, read_timeout=1)

    def _key(self, *parts: str) -> str:
        return ":".join((self.PREFIX, *parts))

    def append_event(self, owner: str, data: bytes) -> None:
        self.redis.xadd(self._key("events", owner), {"e": data})

    def read_events(self, owner: str, block_ms: int = 0, count: int = 500) -> list[RawEvent]:
        return self._entries(self.redis.xread({self._key("events", owner): "0-0"}, count=count, block=block_ms or None))

    def _entries(self, reply: Any) -> list[RawEvent]:
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
        self._finishing(owner, ids, release_blobs).execute()

    def finish_and_read(self, owner: str, ids: list[str], release_blobs: list[str], block_ms: int = 0,
                        count: int = 500) -> list[RawEvent]:
        pipe = self._finishing(owner, ids, release_blobs)
        pipe.xread({self._key("events", owner): "0-0"}, count=count, block=block_ms or None)
        return self._entries(pipe.execute()[-1])

    def _finishing(self, owner: str, ids: list[str], release_blobs: list[str]) -> Any:
        """A pipeline that deletes applied log entries and released document copies."""
        pipe = self.redis.pipeline(transaction=False)
        if ids:
            pipe.xdel(self._key("events", owner), *ids)
        if release_blobs:
            pipe.delete(*(self._key("blob", owner, sha) for sha in release_blobs))
        return pipe

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
        self._remove_workers([worker_id])

    def _remove_workers(self, worker_ids: list[str]) -> None:
        pipe = self.redis.pipeline()
        pipe.hdel(self._key("workers"), *worker_ids)
        pipe.zrem(self._key("workers", "seen"), *worker_ids)
        pipe.execute()

    def workers(self, max_age: float = 30.0) -> list[LiveWorker]:
        now = self._server_time()
        live: list[tuple[bytes, float]] = self.redis.zrangebyscore(  # type: ignore[assignment]  # see the class doc
            self._key("workers", "seen"), now - max_age, "+inf", withscores=True)
        if not live:
            return []
        bodies = self.redis.hmget(self._key("workers"), [w for w, _ in live])
        return [live_worker(body, seen, now) for (_, seen), body in zip(live, bodies) if body]

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

    def queue_counts(self) -> dict[str, QueueCounts]:
        pipe = self.redis.pipeline(transaction=False)  # one round trip, not two a queue
        pipe.smembers(self._key("paused"))
        for queue in QUEUES:
            storage = self.huey(queue).storage
            pipe.zcard(storage.queue_key)  # as PriorityRedisStorage.queue_size and schedule_size count
            pipe.zcard(storage.schedule_key)
        paused, *sizes = pipe.execute()
        names = {q.decode() for q in paused}
        return {queue: {"waiting": sizes[2 * i], "delayed": sizes[2 * i + 1], "paused": queue in names}
                for i, queue in enumerate(QUEUES)}

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

    def trim_expired(self, retention_seconds: float, now: float | None = None) -> dict[str, int]:
        # A round trip per thousand keys scanned and two more, however many owners' marks and stale
        # workers there are: an owner far from a busy farm's Redis waits for each one.
        now = time.time() if now is None else now
        keys = [key for kind in ("cancelled", "superseded")
                for key in self.redis.scan_iter(match=self._key(kind, "*"), count=1000)]
        pipe = self.redis.pipeline(transaction=False)
        for key in keys:
            pipe.zremrangebyscore(key, 0, now - retention_seconds)
        pipe.zrangebyscore(self._key("workers", "seen"), 0, now - STALE_WORKER_SECONDS)
        *removed, seen = pipe.execute()
        stale = [w.decode() for w in seen]
        if stale:
            self._remove_workers(stale)
        return {"cancel_marks": sum(removed), "workers": len(stale)}

    def close(self) -> None:
        super().close()
        self.pool.disconnect()

    def describe(self) -> str:
        return f"redis {redact_url(self.settings.redis_url)}"

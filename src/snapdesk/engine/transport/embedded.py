"""The default transport: no server; queues and the event log are SQLite files in the data dir."""

from __future__ import annotations

import json
import sqlite3
import threading
import time
from pathlib import Path
from typing import Any

from huey import SqliteHuey
from huey.storage import SqliteStorage

from ...config import QUEUES, Settings
from .base import (
    STALE_WORKER_SECONDS,
    LiveWorker,
    NoRevoke,
    RawEvent,
    Send,
    Transport,
    WorkerStatus,
    live_worker,
)
from .signing import library_secret


class QueueStorage(SqliteStorage):  # type: ignore[misc]  # Huey ships no types
    """Huey's SQLite queue, committing as the library and the event log do: in WAL mode with
    ``synchronous=NORMAL``, no disk flush per transaction (Huey offers a flush per transaction or none
    at all). A crash of a process loses nothing; a power cut may lose the last tasks queued, which the
    owner queues again once their queue is otherwise empty (``Library.check_lost_tasks``)."""

    def _create_connection(self) -> sqlite3.Connection:
        conn: sqlite3.Connection = super()._create_connection()
        conn.execute("PRAGMA synchronous=NORMAL")
        return conn


class QueueHuey(NoRevoke, SqliteHuey):  # type: ignore[misc]  # Huey ships no types
    """Huey on SQLite, without Huey's revoke checks (see ``NoRevoke``)."""


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
        return QueueHuey(name=queue, filename=str(self.data_dir / "queue.db"), results=False,
                         serializer=self.serializer, timeout=30, storage_class=QueueStorage)

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
        # One statement (one commit: the connection is in autocommit mode) for up to 500 entries;
        # executemany was a commit per entry.
        for n in range(0, len(ids), 500):
            chunk = [int(i) for i in ids[n:n + 500]]
            self._db().execute(f"DELETE FROM event WHERE owner = ? AND id IN ({', '.join('?' * len(chunk))})",
                               (owner, *chunk))

    def heartbeat(self, info: WorkerStatus) -> None:
        self._db().execute("INSERT OR REPLACE INTO worker (id, seen, body) VALUES (?, ?, ?)",
                           (info["id"], time.time(), json.dumps(info)))

    def remove_worker(self, worker_id: str) -> None:
        self._db().execute("DELETE FROM worker WHERE id = ?", (worker_id,))

    def workers(self, max_age: float = 30.0) -> list[LiveWorker]:
        now = time.time()
        rows = self._db().execute("SELECT seen, body FROM worker WHERE seen >= ? ORDER BY id", (now - max_age,))
        return [live_worker(body, seen, now) for seen, body in rows]

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

    def trim_expired(self, retention_seconds: float, now: float | None = None) -> dict[str, int]:
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

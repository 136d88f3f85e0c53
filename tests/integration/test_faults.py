"""The fault-injection test: every result on its own document, exactly once, whatever happens.

On each transport, real worker processes run a thousand documents whose results can be told
apart (each image has its own size) while: a worker is killed every few seconds, one worker's
clock is a minute behind, malformed and forged events and a forged task are injected, the owner
is away until two thousand events wait for it and the window's owner (the GUI's thread) starts on
that backlog, a session is removed and another added mid-run; and on Redis, the server is
restarted once with its data (AOF) and once with nothing kept, and refuses writes for 10 s.

At the end every document is complete, each job's result is its own document's (size and
content hash), no job's completion was applied twice, and every set-aside event is one the test
injected. SNAPDESK_FAULT_DOCS sets the number of documents (default 1000).
"""

import io
import json
import os
import random
import sqlite3
import threading
import time
from pathlib import Path

import pytest
import redis
from cryptography.hazmat.primitives.ciphers.aead import AESGCM
from PIL import Image

from snapdesk.config import load_settings
from snapdesk.engine import events as ev
from snapdesk.engine.library import Library
from snapdesk.engine.transport import make_transport
from snapdesk.store import db as store

from helpers import RedisServer, WorkerProcess, wait_for

DOCS = int(os.environ.get("SNAPDESK_FAULT_DOCS", "1000"))
BACKLOG = 2000
WORKER = {"id": "intruder:1:000000", "host": "intruder", "pid": 1}


def _photo(i: int) -> bytes:
    """Document i: a PNG of its own size, (40 + i % 400) x (30 + i // 400)."""
    buf = io.BytesIO()
    Image.new("RGB", _size(i), ((i * 37) % 256, (i * 11) % 256, 128)).save(buf, "PNG")
    return buf.getvalue()


def _size(i: int) -> tuple[int, int]:
    return 40 + i % 400, 30 + i // 400


class Farm:
    """Three worker processes, one with its clock a minute behind, and a killer that ends one at
    random every 2 to 4 seconds and starts a new one in its place."""

    def __init__(self, settings, logs: Path, seed: int):
        self.settings, self.logs = settings, logs
        self.rng = random.Random(seed)
        self.lock = threading.Lock()
        self.kills = 0
        self.workers = [self._start(slot) for slot in range(3)]
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._kill_now_and_then, daemon=True)

    def _start(self, slot: int) -> WorkerProcess:
        args = ["--concurrency", "2", "--data-dir", str(self.settings.data_dir)]
        if self.settings.redis_url:
            args += ["--redis", self.settings.redis_url]
        skew = {"SNAPDESK_TEST_CLOCK_SKEW": "-60"} if slot == 0 else {}
        return WorkerProcess(self.settings, *args, faults={"thumbnail": {"sleep": 0.05}},
                             log_path=self.logs / f"worker-{slot}-{self.kills}.log", **skew)

    def _kill_now_and_then(self):
        while not self._stop.wait(self.rng.uniform(2.0, 4.0)):
            slot = self.rng.randrange(3)
            with self.lock:
                self.workers[slot].kill()
                self.kills += 1
                self.workers[slot] = self._start(slot)

    def start_killing(self):
        self._thread.start()

    def stop(self):
        self._stop.set()
        if self._thread.is_alive():
            self._thread.join(10)
        with self.lock:
            for worker in self.workers:
                worker.stop()


class Intruder:
    """Writes into the owner's event log and queues as what it is: malformed, forged, or mismatched."""

    def __init__(self, settings, owner: str):
        self.transport = make_transport(settings)
        self.owner = owner
        self.injected = 0

    def _put(self, data: bytes):
        self.transport.append_event(self.owner, data)
        self.injected += 1

    def attack(self, job: store.Job, other: store.Job):
        key, owner = self.transport.library_key(self.owner), self.owner
        payload = {"job_id": job.id, "job_type": job.type, "document_id": job.document_id,
                   "session_id": job.session_id, "owner": owner, "attempt": 1, "max_attempts": 10}
        big = {"result": {"width": 12000, "height": 12000, "blurhash": "x", "thumbnails": {"sm": {"width": 1,
               "height": 1}}}, "files": {"sm.webp": "UklGRg=="}}
        nonce = os.urandom(12)
        self._put(nonce + AESGCM(key).encrypt(nonce, b"{not json", owner.encode()))  # malformed, sealed
        guessed = b"a guessed key, 32 bytes long...."
        self._put(ev.seal(guessed, ev.job_event(ev.EventType.COMPLETE, payload, WORKER, **big)))  # forged
        self._put(json.dumps(ev.job_event(ev.EventType.COMPLETE, payload, WORKER, **big)).encode())  # not sealed
        mismatched = {**payload, "document_id": other.document_id}  # sealed, but names another document
        self._put(ev.seal(key, ev.job_event(ev.EventType.COMPLETE, mismatched, WORKER, **big)))
        no_result = ev.job_event(ev.EventType.COMPLETE, payload, WORKER, result={"width": 5}, files={})
        self._put(ev.seal(key, no_result))  # sealed, but its result is not a thumbnail's
        # A forged task: a worker drops it unread.
        self.transport.huey("thumbnail").storage.enqueue(b"\0" * 32 + b"forged task", 0)

    def close(self):
        self.transport.close()


def _log_length(settings, owner: str) -> int:
    if settings.redis_url:
        with redis.Redis.from_url(settings.redis_url) as client:
            return client.xlen(f"snapdesk:events:{owner}")
    with sqlite3.connect(settings.data_dir / "events.db", timeout=30) as conn:
        return conn.execute("SELECT COUNT(*) FROM event WHERE owner = ?", (owner,)).fetchone()[0]


def _unfinished(settings, session_ids, states=("pending", "queued", "running")) -> int:
    """Read beside the owner (plain SQLite, the library's WAL allows it): jobs of these sessions not ended."""
    with sqlite3.connect(f"file:{settings.data_dir / 'library.db'}?mode=ro", uri=True, timeout=30) as conn:
        return conn.execute(f"SELECT COUNT(*) FROM job WHERE session_id IN ({','.join('?' * len(session_ids))}) "
                            f"AND state IN ({','.join('?' * len(states))})", [*session_ids, *states]).fetchone()[0]


def _wait(predicate, timeout, message):
    return wait_for(predicate, timeout=timeout, interval=0.2, message=message)


@pytest.mark.slow
@pytest.mark.timeout(900)
@pytest.mark.parametrize("transport_name", ["embedded", "redis"])
def test_every_result_lands_on_its_own_document_exactly_once_under_faults(transport_name, tmp_path, qapp):
    from snapdesk.gui import operations
    from snapdesk.gui.owner import LibraryOwner

    started = time.monotonic()
    server = None
    url = ""
    if transport_name == "redis":
        (tmp_path / "redis").mkdir()
        server = RedisServer(tmp_path / "redis")
        server.start()
        url = server.url
    settings = load_settings(env={}, data_dir=tmp_path / "data", redis_url=url, secret="farm-secret", local_workers="no",
                             job_types="thumbnail", lease_seconds=3.0, lease_renew_seconds=1.0, retry_backoff_ms=100,
                             retry_attempts=10, small_drop=0)
    folders = {name: tmp_path / name for name in ("main", "removed", "added")}
    for name, folder in folders.items():
        folder.mkdir()
    first = {"main": 0, "removed": DOCS, "added": DOCS + 100}
    counts = {"main": DOCS, "removed": 100, "added": 300}
    for name, folder in folders.items():
        for i in range(first[name], first[name] + counts[name]):
            (folder / f"doc-{i:05d}.png").write_bytes(_photo(i))
    faults = {"worker kills": 0, "events injected": 0, "forged tasks": 0, "redis restarts": 0,
              "seconds refusing writes": 0}
    farm = Farm(settings, tmp_path, seed=len(transport_name))
    owner = None
    try:
        # The owner imports, queues, and is gone: the workers' events wait for it.
        with Library(settings) as library:
            main, _ = library.submit([folders["main"]])
            removed, _ = library.submit([folders["removed"]])
            owner_id = library.owner
            jobs = list(store.Job.select().where(store.Job.session == main.id).order_by(store.Job.id).limit(2))
        intruder = Intruder(settings, owner_id)
        intruder.attack(*jobs)
        faults["forged tasks"] += 1
        farm.start_killing()
        if server:
            _wait(lambda: _log_length(settings, owner_id) >= BACKLOG // 2, 300, "half the backlog")
            server.restart(keep=True)
            faults["redis restarts"] += 1
        _wait(lambda: _log_length(settings, owner_id) >= BACKLOG, 300, f"{BACKLOG} events waiting")

        # The window opens on the backlog.
        owner = LibraryOwner(settings)
        owner.start()
        _wait(lambda: _log_length(settings, owner_id) < 100, 300, "the window's owner to catch up")
        operations.remove_session(owner, removed.id).run()
        added_ids = []
        owner.submit([str(folders["added"])], on_started=added_ids.append)
        intruder.attack(*reversed(jobs))
        faults["forged tasks"] += 1
        if server:  # while the added session runs
            _wait(lambda: qapp.processEvents() or added_ids, 60, "the added session")
            with redis.Redis.from_url(url) as admin:
                admin.config_set("maxmemory-policy", "noeviction")
                admin.config_set("maxmemory", max(1, admin.info("memory")["used_memory"] // 2))
                time.sleep(10)  # the fault's length, not a wait for a result
                admin.config_set("maxmemory", 0)
            faults["seconds refusing writes"] = 10
            # The restart below loses the tasks on the queue and the work in flight.
            _wait(lambda: _unfinished(settings, added_ids, ("queued",)) >= 50, 60, "tasks on the queue")
            server.restart(keep=False)
            faults["redis restarts"] += 1
        sessions = [main.id, _wait(lambda: qapp.processEvents() or added_ids, 60, "the added session")[0]]
        _wait(lambda: _unfinished(settings, sessions) == 0, 600, "every job to end")
        faults["events injected"] = intruder.injected
        intruder.close()
    finally:
        if owner is not None:
            owner.stop(timeout=30)
        farm.stop()
        faults["worker kills"] = farm.kills

    with Library(settings) as library:
        library.catch_up()
        lost = misapplied = 0
        expected = {"main": main.id, "added": added_ids[0]}
        for name, session_id in expected.items():
            docs = list(store.Document.select().where(store.Document.session == session_id))
            assert len(docs) == counts[name]
            for doc in docs:
                [job] = list(doc.jobs)
                i = int(Path(doc.path).stem.split("-")[1])
                if job.state != "complete":
                    lost += 1
                    continue
                artifact_dirs = {Path(a.path).parent.parent.name for a in job.artifacts}
                if ((doc.width, doc.height) != _size(i) or (job.result["width"], job.result["height"]) != _size(i)
                        or artifact_dirs != {doc.sha256} or len(job.artifacts) != 3):
                    misapplied += 1
        completions = {}
        for event in store.JobEvent.select().where(store.JobEvent.type == "job:complete"):
            completions[event.job_id] = completions.get(event.job_id, 0) + 1
        applied_twice = [job_id for job_id, n in completions.items() if n > 1]
        held = library.held_events(limit=None)
        recovered = {kind: store.JobEvent.select().where(store.JobEvent.type == kind).count()
                     for kind in ("lease:expired", "task:lost")}
        assert not store.UploadSession.select().where(store.UploadSession.id == removed.id).exists()
        assert not store.Document.select().where(store.Document.session == removed.id).exists()
    minutes = (time.monotonic() - started) / 60
    print(f"\n{transport_name}: {counts['main'] + counts['added']} documents kept (and {counts['removed']} removed), "
          f"{faults}, {minutes:.1f} min; recovered {recovered}; lost {lost}, misapplied {misapplied}, "
          f"applied twice {len(applied_twice)}, set aside {held['set_aside']['count']}")
    assert lost == 0 and misapplied == 0 and applied_twice == []
    assert held["set_aside"]["count"] == faults["events injected"]  # every one set aside was ours
    assert held["deferred"]["count"] == 0
    assert faults["worker kills"] >= 3 and recovered["lease:expired"] > 0
    if server:
        assert recovered["task:lost"] > 0  # the restart with nothing kept lost tasks, and they were found
    if server:
        server.stop()

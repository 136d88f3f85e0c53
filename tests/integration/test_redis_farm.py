"""What only the Redis transport does: a farm of workers, document bytes through Redis, signed tasks."""

import time
from collections import Counter

import pytest
import redis

from snapdesk.config import load_settings
from snapdesk.engine.library import Library
from snapdesk.engine.transport import RedisTransport, SignedSerializer
from snapdesk.store import db as store

from helpers import wait_for, write_photos


@pytest.fixture
def settings(tmp_path, redis_url):
    return load_settings(env={}, data_dir=tmp_path / "data", redis_url=redis_url, secret="farm-secret-for-tests",
                         retry_backoff_ms=100, local_workers="no", lease_renew_seconds=1,
                         job_types="thumbnail")


def test_two_workers_share_the_queues(library, start_worker, tmp_path):
    write_photos(tmp_path / "in", 10)
    start_worker("--concurrency", "1", faults={"thumbnail": {"sleep": 0.2}})
    start_worker("--concurrency", "1", faults={"thumbnail": {"sleep": 0.2}})
    session, _ = library.submit([tmp_path / "in"])
    assert library.wait(session, timeout=60)
    report = library.report(session)
    assert report["counts"]["documents"]["complete"] == 10
    workers = Counter(d["jobs"]["thumbnail"]["worker"] for d in report["documents"])
    assert len(workers) == 2, workers
    assert min(workers.values()) >= 2, workers


def test_a_worker_that_cannot_read_the_file_uses_the_blob(library, start_worker, tmp_path):
    [photo] = write_photos(tmp_path / "in", 1)
    session, _ = library.submit([photo])
    photo.unlink()  # as if the worker ran on a machine that cannot see this folder
    start_worker()
    assert library.wait(session, timeout=30)
    job = library.report(session)["documents"][0]["jobs"]["thumbnail"]
    assert job["state"] == "complete", job
    # Once the document is done, its bytes leave Redis.
    assert not library.transport.redis.keys("snapdesk:blob:*")
    assert not store.Document.get().blob_in_flight


def test_document_bytes_in_redis_stay_within_the_window(settings, start_worker, tmp_path):
    photos = write_photos(tmp_path / "in", 8, width=2000, height=1500)
    window = 2**20
    settings = settings.replace(blob_window_mb=1)
    fits, in_flight = 0, 0
    for photo in sorted(photos):
        if in_flight and in_flight + photo.stat().st_size > window:
            break
        in_flight += photo.stat().st_size
        fits += 1
    assert 1 < fits < 8, "the window must hold some of the photos, not all"
    with Library(settings) as library:
        client = library.transport.redis

        def blob_bytes():  # the documents' own bytes: each copy is sealed with a 12-byte nonce and a 16-byte tag
            return sum(client.strlen(key) - 28 for key in client.keys("snapdesk:blob:*"))

        session, _ = library.submit([tmp_path / "in"])
        assert store.Job.select().where(store.Job.state == "queued").count() == fits
        assert blob_bytes() == in_flight
        sealed = client.get(client.keys("snapdesk:blob:*")[0])
        assert b"JFIF" not in sealed and b"Exif" not in sealed  # no reader without the secret sees a JPEG
        start_worker()
        peak = 0

        def progress(counts):
            nonlocal peak
            peak = max(peak, blob_bytes())

        assert library.wait(session, on_progress=progress, timeout=60)
        assert library.report(session)["counts"]["documents"]["complete"] == 8
        assert 0 < peak <= window
        assert blob_bytes() == 0


def test_a_forged_task_is_never_run(library, start_worker, tmp_path, redis_url):
    [photo] = write_photos(tmp_path / "in", 1)
    worker = start_worker()
    forger = RedisTransport(library.settings, secret="not-the-farm-secret")
    marker = tmp_path / "pwned"
    payload = {"v": 1, "owner": library.owner, "job_id": 1, "job_type": "thumbnail", "document_id": 1,
               "session_id": 1, "attempt": 1, "max_attempts": 1, "backoff_ms": 1, "priority": 0,
               "path": str(photo), "sha256": "0" * 64, "size": 1, "kind": "image", "limits": {"max_pixels": 1}}
    forger.enqueue("thumbnail", payload)
    # An unsigned pickle that would create a file if it were ever unpickled.
    evil = b"cos\nsystem\n(S'touch " + str(marker).encode() + b"'\ntR."
    redis.Redis.from_url(redis_url).zadd("huey.redis.snapdesk_thumbnail", {b"\0" * 8 + evil: 0})
    wait_for(lambda: "forged signature" in worker.log(), timeout=15, message="the worker to reject the forged task")
    time.sleep(0.5)
    assert not marker.exists()
    assert "Traceback" not in worker.log()  # one clear line per dropped task
    assert library.transport.read_events(library.owner) == []  # nothing ran, nothing reported
    forger.close()
    assert isinstance(library.transport.serializer, SignedSerializer)


def test_redis_mode_needs_the_farm_secret(tmp_path, redis_url):
    from snapdesk.config import ConfigError

    settings = load_settings(env={}, data_dir=tmp_path / "data", redis_url=redis_url, local_workers="no")
    with pytest.raises(ConfigError, match="SNAPDESK_SECRET"):
        Library(settings)


class RoundTrips:
    """Counts the requests this process sends to Redis (a pipeline is one): its round trips."""

    def __init__(self, monkeypatch):
        self.count = 0
        send = redis.connection.AbstractConnection.send_packed_command

        def counted(conn, command, *args, **kwargs):
            self.count += 1
            return send(conn, command, *args, **kwargs)

        monkeypatch.setattr(redis.connection.AbstractConnection, "send_packed_command", counted)

    def of(self, action) -> int:
        before = self.count
        action()
        return self.count - before


def test_the_owner_s_round_trips_grow_with_batches_not_with_events_or_queues(library, tmp_path, monkeypatch):
    """An owner far from Redis waits a round trip per request: catching up on a backlog takes one per
    batch (each batch's entries are deleted in the same pipeline as the next read), and counting the
    queues one, whatever their number."""
    from snapdesk.engine import events as ev

    write_photos(tmp_path / "in", 1)
    session, _ = library.submit([tmp_path / "in"])  # no worker: its job stays queued
    [job] = store.Job.select()
    payload = library._payload(job, job.document)
    worker = {"id": "test-host:1:abc", "host": "test-host", "pid": 1}
    library.transport.emit(library.owner, ev.job_event(ev.EventType.STARTED, payload, worker))
    for progress in range(1, 30):
        library.transport.emit(library.owner, ev.job_event(ev.EventType.PROGRESS, payload, worker, progress=progress))
    monkeypatch.setattr(library, "EVENT_BATCH", 10)
    library.transport.ping()  # a connection made and checked before counting
    trips = RoundTrips(monkeypatch)

    assert trips.of(library.catch_up) == 4  # three full batches, then the read that finds the log empty
    assert library.transport.redis.xlen(f"snapdesk:events:{library.owner}") == 0
    assert store.Job.get_by_id(job.id).progress == 29
    counts = {}
    assert trips.of(lambda: counts.update(library.transport.queue_counts())) == 1
    assert counts["thumbnail"] == {"waiting": 1, "delayed": 0, "paused": False}
    assert set(counts) == {"thumbnail", "ocr", "summary", "describe", "embed"}


def test_trimming_marks_and_stale_workers_takes_a_round_trip_per_thousand_keys(library, monkeypatch):
    """The owner trims Redis on its first housekeeping and hourly: a Redis holding thousands of
    keys (document copies in flight), the marks of many libraries and a dozen stale workers is
    trimmed in a round trip per thousand keys scanned, and two more."""
    from snapdesk.engine.transport.base import STALE_WORKER_SECONDS

    transport = library.transport
    transport.redis.mset({f"snapdesk:other:{i}": b"x" for i in range(2500)})
    for n in range(20):
        transport.cancel_jobs(f"owner-{n}", [1, 2])
        transport.supersede(f"owner-{n}", 3, 1, 0)
    for n in range(12):
        transport.heartbeat({"id": f"host:{n}:abc", "host": "host", "pid": n, "queues": ["thumbnail"]})
    transport.ping()  # a connection made and checked before counting
    trips = RoundTrips(monkeypatch)
    trimmed = {}

    later = time.time() + STALE_WORKER_SECONDS + 10
    assert trips.of(lambda: trimmed.update(transport.trim_expired(retention_seconds=3600, now=later))) <= 2 * 6 + 2
    assert trimmed == {"cancel_marks": 60, "workers": 12}
    assert transport.workers(max_age=10 * STALE_WORKER_SECONDS) == []
    assert not transport.is_cancelled("owner-0", 1) and not transport.redis.exists("snapdesk:cancelled:owner-0")


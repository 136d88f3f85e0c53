"""Every result lands on its own job, exactly once: one test for each way the event protocol
was found to lose, throw away or misapply a result (each failed on the protocol before it was
redesigned), on both transports where the finding concerns both."""

import base64
import io
import logging
import os
import pickle
import shutil
import subprocess
import time
from pathlib import Path

import pytest
import redis
from PIL import Image

from snapdesk.config import load_settings
from snapdesk.engine import events as ev
from snapdesk.engine.library import Library
from snapdesk.engine.retrying import RedisRefused, wait_out
from snapdesk.engine.transport import TASK_NAME
from snapdesk.store import db as store

from helpers import free_port, jpeg_bytes, redis_pings, snapdesk, wait_for, write_photos

WORKER = {"id": "test-worker:1:abcdef", "host": "test-worker", "pid": 1}


def _png(width, height) -> bytes:
    buf = io.BytesIO()
    Image.new("RGB", (width, height), (width % 256, height % 256, 90)).save(buf, "PNG")
    return buf.getvalue()


def _job(library, path) -> store.Job:
    return store.Job.select().join(store.Document).where(store.Document.path == str(path)).get()


def _event(job: store.Job, type_: ev.EventType, owner: str, **fields) -> dict:
    payload = {"job_id": job.id, "job_type": job.type, "document_id": job.document_id,
               "session_id": job.session_id, "owner": owner, "attempt": job.attempt, "max_attempts": job.max_attempts}
    return ev.job_event(type_, payload, WORKER, **fields)


def _thumbnail_result(width, height) -> dict:
    """What a thumbnail job sends when it is done: its result and its three files."""
    names = ("sm", "md", "lg")
    return {"result": {"width": width, "height": height, "blurhash": "LEHV6nWB2yk8pyo0adR*.7kCMdnj",
                       "thumbnails": {n: {"width": 10, "height": 10, "bytes": 4} for n in names}},
            "files": {f"{n}.webp": base64.b64encode(b"RIFF").decode() for n in names}}


def _send(library, event: dict, key: bytes | None = None) -> None:
    """Put an event into the library's log as a worker holding ``key`` (default: the real one) would."""
    library.transport.append_event(library.owner, ev.seal(key or library.transport.library_key(library.owner), event))


def _send_raw(library, body: bytes) -> None:
    """Text sealed with the library's key, as a worker holding the secret (with a bug) could send."""
    import os as _os
    from cryptography.hazmat.primitives.ciphers.aead import AESGCM
    nonce = _os.urandom(12)
    sealed = nonce + AESGCM(library.transport.library_key(library.owner)).encrypt(nonce, body, library.owner.encode())
    library.transport.append_event(library.owner, sealed)


def _queued_payloads(transport) -> list[dict]:
    """Every task waiting on any queue (now or later), as its payload."""
    payloads = []
    for queue in ("thumbnail", "ocr", "summary"):
        huey = transport.huey(queue)
        items = list(huey.storage.enqueued_items()) + list(huey.storage.scheduled_items())
        for raw in items:
            message = transport.serializer.deserialize(raw)
            if message.name.endswith(TASK_NAME):
                payloads.append(message.args[0])
    return payloads


# -- 1. ids are never reused --------------------------------------------------------------
def test_a_removed_jobs_id_is_never_handed_out_again_nor_its_late_result_applied(library, tmp_path):
    big = tmp_path / "big.png"
    big.write_bytes(_png(1200, 900))
    old_session, _ = library.submit([big])
    old = _job(library, big)
    library.cancel(job_ids=[old.id])
    library.remove_session(old_session.id)
    small = tmp_path / "small.png"
    small.write_bytes(_png(16, 16))
    library.submit([small])
    new = _job(library, small)
    assert new.id != old.id and new.document_id != old.document_id and new.session_id != old.session_id
    # The removed job's cancel mark and its late result change nothing for the new one.
    assert not library.transport.is_cancelled(library.owner, new.id)
    _send(library, _event(old, ev.EventType.COMPLETE, library.owner, duration_ms=5, **_thumbnail_result(12000, 12000)))
    library.catch_up()
    new = store.Job.get_by_id(new.id)
    assert new.state == "queued" and new.result is None
    assert store.Document.get_by_id(new.document_id).width is None


# -- 2. an owner that opens on a backlog keeps the finished work -----------------------------
def test_an_owner_opened_on_a_backlog_keeps_every_finished_result(settings, tmp_path):
    """The owner saw every job start, then closed; an hour later it opens on 600 completions, the
    last 100 of them beyond its first batch. Leases are judged only once it caught up."""
    folder = tmp_path / "in"
    folder.mkdir()
    for i in range(600):
        (folder / f"p{i:03d}.png").write_bytes(_png(20 + i, 10))
    with Library(settings) as library:
        library.submit([folder])
        owner = library.owner
        jobs = list(store.Job.select().order_by(store.Job.id))
        for job in jobs:
            _send(library, _event(job, ev.EventType.STARTED, owner))
        library.catch_up()  # the owner applied the starts, on its own clock
        for i, job in enumerate(jobs):
            _send(library, _event(job, ev.EventType.COMPLETE, owner, duration_ms=5, **_thumbnail_result(20 + i, 10)))
    with Library(settings, clock=lambda: time.time() + 3600) as library:  # the window opens an hour later
        assert library.pump() == library.EVENT_BATCH
        library.housekeeping()
        library.catch_up()
        jobs = list(store.Job.select(store.Job, store.Document).join(store.Document).order_by(store.Job.id))
        states = [j.state for j in jobs]
        assert states == ["complete"] * 600, {s: states.count(s) for s in set(states)}
        assert all(j.attempt == 1 for j in jobs)
        assert all(j.document.width == int(Path(j.document.path).stem[1:]) + 20 for j in jobs)
        assert not store.JobEvent.select().where(store.JobEvent.type == "lease:expired").exists()


# -- 3. one bad event is set aside; the library goes on -------------------------------------
def test_bad_events_are_set_aside_with_their_reason_and_the_good_ones_behind_them_apply(library, tmp_path):
    paths = [tmp_path / f"p{i}.png" for i in range(3)]
    for i, p in enumerate(paths):
        p.write_bytes(_png(30 + i, 30))
    library.submit(paths)
    a, b, c = (_job(library, p) for p in paths)
    owner = library.owner
    _send_raw(library, b"this is not JSON")
    no_attempt = _event(a, ev.EventType.COMPLETE, owner, **_thumbnail_result(30, 30))
    del no_attempt["attempt"]
    _send(library, no_attempt)
    _send(library, _event(a, ev.EventType.COMPLETE, owner, result={"nothing": "expected"}, files={}))
    _send(library, _event(a, ev.EventType.COMPLETE, owner, **_thumbnail_result(9999, 9999)), key=b"not the secret"*2 + b"1234")
    _send(library, _event(b, ev.EventType.COMPLETE, owner, **_thumbnail_result(31, 30)))
    library.catch_up()
    assert store.Job.get_by_id(b.id).state == "complete"  # the good event behind the bad ones
    assert store.Job.get_by_id(a.id).state == "queued"  # no bad event touched it
    held = library.held_events()
    assert held["set_aside"]["count"] == 4
    reasons = " | ".join(h["reason"] for h in held["latest"])
    assert "Invalid JSON" in reasons and "attempt" in reasons and "result is not valid" in reasons
    assert "not sealed with this library's key" in reasons
    assert library.transport.read_events(owner) == []  # the log moved on
    checks = {c["name"]: c for c in library.health()["checks"]}
    assert not checks["events"]["ok"] and "4 events set aside" in checks["events"]["detail"]

    # Result files that cannot be written (a full disk): the event waits, the lease does not expire it.
    blocker = library.artifacts_dir / c.document.sha256[:2]
    blocker.parent.mkdir(parents=True, exist_ok=True)
    blocker.write_text("a file where a folder must go")
    _send(library, _event(c, ev.EventType.STARTED, owner))
    _send(library, _event(c, ev.EventType.COMPLETE, owner, **_thumbnail_result(32, 30)))
    _send(library, _event(a, ev.EventType.COMPLETE, owner, **_thumbnail_result(30, 30)))
    library.catch_up()
    assert store.Job.get_by_id(a.id).state == "complete"  # behind the deferred one, still applied
    assert library.held_events()["deferred"]["count"] == 1
    later = library.clock() + 10 * library.settings.lease_seconds
    library.clock = lambda: later
    library.housekeeping()
    assert store.Job.get_by_id(c.id).state == "running" and store.Job.get_by_id(c.id).attempt == 1
    blocker.unlink()
    library.housekeeping()
    c = store.Job.get_by_id(c.id)
    assert c.state == "complete" and c.attempt == 1 and store.Document.get_by_id(c.document_id).width == 32
    assert library.held_events()["deferred"]["count"] == 0


# -- 4. Redis error replies are waited out ----------------------------------------------------
@pytest.mark.parametrize("transport_name", ["redis"])
def test_a_redis_that_refuses_writes_delays_the_work_and_loses_none(library, start_worker, tmp_path, redis_url):
    folder = tmp_path / "in"
    write_photos(folder, 3)
    session, _ = library.submit([folder])
    admin = redis.Redis.from_url(redis_url)
    used = admin.info("memory")["used_memory"]
    admin.config_set("maxmemory-policy", "noeviction")
    admin.config_set("maxmemory", max(1, used // 2))  # OOM for every write that may grow memory
    try:
        worker = start_worker()
        huey = library.transport.huey("thumbnail")
        # Refused until the worker has taken every task and is waiting to report them.
        wait_for(lambda: huey.pending_count() == 0, timeout=30, message="the worker to take every task")
        wait_for(lambda: "out of memory" in worker.log(), timeout=30, message="the worker to wait out the OOM")
        time.sleep(2)  # the fault lasts a little longer (a fault's length, not a wait for a result)
    finally:
        admin.config_set("maxmemory", 0)
        admin.close()
    # Well within the lost-task check's grace (60 s): the tasks were never lost, so never found again.
    assert library.wait(session, timeout=45), library.report(session)["counts"]
    assert library.report(session)["counts"]["documents"]["complete"] == 3
    assert not store.JobEvent.select().where(store.JobEvent.type == "task:lost").exists()
    assert all(j.attempt == 1 for j in store.Job.select())


def test_a_redis_that_cannot_persist_is_waited_out_not_a_crash(tmp_path):
    """MISCONF made for real: a redis-server whose background save cannot write its file refuses
    writes; sending an event waits until it can save again."""
    folder = tmp_path / "rdb"
    folder.mkdir()
    port = free_port()
    # (Redis refuses writes after a failed save only when it has save points.)
    server = subprocess.Popen([shutil.which("redis-server"), "--port", str(port), "--bind", "127.0.0.1",
                               "--save", "3600 1", "--appendonly", "no", "--dir", str(folder), "--dbfilename", "dump.rdb"],
                              stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    url = f"redis://127.0.0.1:{port}/0"
    try:
        admin = redis.Redis.from_url(url)
        wait_for(lambda: redis_pings(admin), timeout=10, message="redis-server")
        (folder / "dump.rdb").mkdir()  # the save's rename onto a folder fails
        admin.bgsave()
        wait_for(lambda: admin.info("persistence")["rdb_last_bgsave_status"] == "err", timeout=20,
                 message="the save to fail")
        settings = load_settings(env={}, data_dir=tmp_path / "data", redis_url=url, secret="s", local_workers="no")
        with Library(settings) as library:
            errors, sleeps = [], []

            def send():
                try:
                    library.transport.emit(library.owner, ev.heartbeat(library.owner, WORKER, []), retry=False)
                except Exception as exc:
                    errors.append(exc)
                    raise

            def sleep(seconds):  # at the second wait, the server can save again
                sleeps.append(seconds)
                if len(sleeps) == 2:
                    (folder / "dump.rdb").rmdir()
                    admin.bgsave()
                    wait_for(lambda: admin.info("persistence")["rdb_last_bgsave_status"] == "ok", timeout=20,
                             message="a good save")

            wait_out(send, "send an event", logging.getLogger("test"), sleep=sleep)
            assert isinstance(errors[0], RedisRefused) and "unable to persist" in str(errors[0]) and len(sleeps) == 2
            assert len(library.transport.read_events(library.owner)) == 1
    finally:
        admin.close()
        if (folder / "dump.rdb").is_dir():  # else it cannot save on the way out, and will not stop
            (folder / "dump.rdb").rmdir()
        server.terminate()
        try:
            server.wait(10)
        except subprocess.TimeoutExpired:
            server.kill()
            server.wait()


# -- 5. a job queued again gets its document copy back ------------------------------------------
@pytest.mark.parametrize("transport_name", ["redis"])
def test_a_job_queued_again_after_redis_lost_its_data_gets_its_document_copy_back(library, tmp_path, redis_url):
    photo = tmp_path / "p.jpg"
    photo.write_bytes(jpeg_bytes(320, 240))
    library.submit([photo])
    job = _job(library, photo)
    sha = job.document.sha256
    assert library.transport.get_blob(library.owner, sha) is not None
    with redis.Redis.from_url(redis_url) as client:
        client.flushall()  # a restart with nothing kept: tasks and copies gone
    later = library.clock() + 10 * library.settings.lease_seconds
    library.clock = lambda: later
    library.caught_up = True
    assert library.check_lost_tasks() == 1
    assert library.transport.get_blob(library.owner, sha) == photo.read_bytes()
    [payload] = _queued_payloads(library.transport)
    assert payload["job_id"] == job.id and payload["attempt"] == 2


# -- 6. pending jobs are never forgotten; an unreachable Redis is a clear error ---------------------
def test_a_command_that_opens_the_library_queues_what_is_pending(tmp_path, cli_env):
    write_photos(tmp_path / "in", 2)
    settings = load_settings(env={}, data_dir=Path(cli_env["SNAPDESK_DATA_DIR"]), local_workers="no", job_types="thumbnail")
    with Library(settings) as library:  # an owner stopped right after the import, before it queued anything
        session = library.begin_session([str(tmp_path / "in")])
        scanner = library.scanner()
        from snapdesk.engine.importer import found_batches
        for batch in found_batches(scanner, [str(tmp_path / "in")]):
            library.dispatch = lambda: 0
            library.add_documents(session, batch)
        assert {j.state for j in store.Job.select()} == {"pending"}
    result = snapdesk("status", "--json", env=cli_env)
    assert result.returncode == 0, result.stderr
    with Library(settings, read_only=True):
        assert "pending" not in {j.state for j in store.Job.select()}
    wait_for(lambda: snapdesk("status", "--json", env=cli_env).stdout.count('"complete"') >= 2, timeout=60,
             message="the pending jobs to run")


def test_a_redis_that_was_never_reachable_is_a_clear_error_not_a_hang(tmp_path, cli_env):
    photo = tmp_path / "new.jpg"
    photo.write_bytes(jpeg_bytes(64, 48))
    env = {**cli_env, "REDIS_URL": "redis://:s3cret-pw@127.0.0.1:1/0", "SNAPDESK_SECRET": "farm"}
    # The CLI gives up after its ten-second connect budget; the timeout only catches a hang (a busy
    # machine may take several seconds just to start Python, so the budget is not timed here).
    result = snapdesk("submit", str(photo), "--wait", env=env, timeout=60)
    assert result.returncode == 2, result.stderr
    assert "cannot reach redis redis://:***@127.0.0.1:1/0" in result.stderr and "Check that the server runs" in result.stderr
    assert "s3cret-pw" not in result.stderr + result.stdout
    status = snapdesk("status", env={**cli_env})  # the embedded library: no session was made there
    assert "no sessions yet" in status.stdout


# -- 7. leases run on the owner's clock ------------------------------------------------------------
def test_a_lease_runs_on_the_owners_clock_whatever_the_workers_says(library, tmp_path):
    photo = tmp_path / "p.png"
    photo.write_bytes(_png(20, 20))
    library.submit([photo])
    job = _job(library, photo)
    _send(library, {**_event(job, ev.EventType.STARTED, library.owner), "ts": time.time() - 60})  # a minute behind
    library.catch_up()
    assert store.Job.get_by_id(job.id).lease_expires_at > library.clock() + library.settings.lease_seconds - 5
    library.housekeeping()
    job = store.Job.get_by_id(job.id)
    assert job.state == "running" and job.attempt == 1


def test_a_worker_whose_clock_is_a_minute_behind_keeps_its_leases(settings, start_worker, tmp_path):
    settings = settings.replace(lease_seconds=3.0)
    with Library(settings) as library:
        photo = tmp_path / "slow.jpg"
        photo.write_bytes(jpeg_bytes(320, 240))
        worker = start_worker(faults={"thumbnail": {"match": "slow", "sleep": 5}}, SNAPDESK_TEST_CLOCK_SKEW="-60",
                              SNAPDESK_LEASE_SECONDS="3", SNAPDESK_LEASE_RENEW_SECONDS="1")
        session, _ = library.submit([photo])
        assert library.wait(session, timeout=60)
        job = _job(library, photo)
        assert job.state == "complete" and job.attempt == 1
        assert not store.JobEvent.select().where(store.JobEvent.type == "lease:expired").exists()
        assert [w["id"] for w in library.transport.workers()] == [worker_id(worker)]  # alive, on the server's clock


def worker_id(worker) -> str:
    return wait_for(lambda: next((line.split("worker ")[1].split()[0] for line in worker.log().splitlines()
                                  if " serving " in line), None), timeout=10, message="the worker's id")


# -- 8. one attempt never runs twice -----------------------------------------------------------------
class _ReplyLost(Exception):
    pass


def test_a_task_whose_send_timed_out_is_not_sent_again_as_the_same_attempt(library, tmp_path, monkeypatch):
    paths = [tmp_path / f"p{i}.png" for i in range(3)]
    for i, p in enumerate(paths):
        p.write_bytes(_png(40 + i, 40))
    real_enqueue = library.transport.enqueue
    sent = []

    def enqueue(queue, payload, **kw):  # the second task reaches the server, but its reply is lost
        real_enqueue(queue, payload, **kw)
        sent.append(payload)
        if len(sent) == 2:
            raise redis.TimeoutError("Timeout reading from socket")
    monkeypatch.setattr(library.transport, "enqueue", enqueue)
    library.submit(paths)  # the failed dispatch is logged; the next one sends what is left
    monkeypatch.setattr(library.transport, "enqueue", real_enqueue)
    library.dispatch()
    copies = [(p["job_id"], p["attempt"]) for p in _queued_payloads(library.transport)]
    assert len(copies) == len(set(copies)), copies  # no attempt twice on the queue
    assert {job_id for job_id, _ in copies} == {j.id for j in store.Job.select()}
    current = {(j.id, j.attempt) for j in store.Job.select()}
    assert current <= set(copies)


def test_the_lost_task_check_does_not_requeue_a_task_a_worker_just_took(library, tmp_path):
    photo = tmp_path / "p.png"
    photo.write_bytes(_png(50, 50))
    library.submit([photo])
    job = _job(library, photo)
    huey = library.transport.huey("thumbnail")
    task = huey.dequeue()  # a worker takes the task this moment; its "started" is in the log, not yet applied
    assert task.args[0]["job_id"] == job.id
    _send(library, _event(job, ev.EventType.STARTED, library.owner))
    library.caught_up = True
    assert library.check_lost_tasks(grace=0) == 0
    job = store.Job.get_by_id(job.id)
    assert job.state == "running" and job.attempt == 1
    assert _queued_payloads(library.transport) == []


def test_a_slow_worker_never_runs_an_attempt_beside_the_owners_replacement(settings, start_worker, tmp_path):
    """A worker misses its lease (it renews every 60 s, the lease is 2 s), so the owner replaces the
    attempt and another worker runs it. The slow attempt then fails, retryably: it must not queue an
    attempt of its own beside the owner's."""
    settings = settings.replace(lease_seconds=2.0)
    with Library(settings) as library:
        photo = tmp_path / "flaky.jpg"
        photo.write_bytes(jpeg_bytes(320, 240))
        faults = {"thumbnail": {"match": "flaky", "sleep": 4, "fail_attempts": 1}}
        slow = start_worker("--concurrency", "1", faults=faults, SNAPDESK_LEASE_RENEW_SECONDS="60")
        session, _ = library.submit([photo])
        wait_for(lambda: library.pump() or _job(library, photo).state == "running", timeout=30,
                 message="the slow worker to start the job")
        other = start_worker("--concurrency", "1", faults=faults)
        assert library.wait(session, timeout=90)
        job = _job(library, photo)
        assert job.state == "complete"
        for w in (slow, other):
            w.stop()
        runs = sum(w.log().count(f"job {job.id} thumbnail complete") for w in (slow, other))
        assert runs == 1, slow.log() + other.log()


# -- 9. no stale cursor ----------------------------------------------------------------------------
def test_events_written_after_the_log_was_recreated_are_read(settings, tmp_path):
    first, second = tmp_path / "a.png", tmp_path / "b.png"
    first.write_bytes(_png(60, 40))
    second.write_bytes(_png(200, 100))
    with Library(settings) as library:
        library.submit([first])
        _send(library, _event(_job(library, first), ev.EventType.COMPLETE, library.owner, **_thumbnail_result(60, 40)))
        library.catch_up()
        assert _job(library, first).state == "complete"
    # The log starts again from nothing: the events.db file is recreated, or the Redis stream is gone
    # and the server's clock went back, so new entries have smaller ids than those applied before.
    if settings.redis_url:
        with redis.Redis.from_url(settings.redis_url) as client:
            client.delete(f"snapdesk:events:{library.owner}")
    else:
        for name in ("events.db", "events.db-wal", "events.db-shm"):
            (settings.data_dir / name).unlink(missing_ok=True)
    with Library(settings) as library:
        library.submit([second])
        event = _event(_job(library, second), ev.EventType.COMPLETE, library.owner, **_thumbnail_result(200, 100))
        if settings.redis_url:
            with redis.Redis.from_url(settings.redis_url) as client:
                client.xadd(f"snapdesk:events:{library.owner}",
                            {"e": ev.seal(library.transport.library_key(library.owner), event)}, id="5-0")
        else:
            _send(library, event)
        library.catch_up()
        assert _job(library, second).state == "complete"
        assert store.Document.get(store.Document.path == str(second)).width == 200


# -- 10. what a Redis client without the secret can do ---------------------------------------------
@pytest.mark.parametrize("transport_name", ["redis"])
def test_a_redis_client_without_the_secret_can_neither_read_cancel_nor_forge(library, start_worker, tmp_path, redis_url):
    photo = tmp_path / "p.jpg"
    photo.write_bytes(jpeg_bytes(320, 240))
    session, _ = library.submit([photo])
    job = _job(library, photo)
    with redis.Redis.from_url(redis_url) as client:  # marks as they would be guessed: by the job's id
        client.zadd(f"snapdesk:cancelled:{library.owner}", {str(job.id): time.time(), f"{job.id}:0": time.time()})
        client.xadd(f"snapdesk:events:{library.owner}", {"e": ev.seal(b"a guessed key, 32 bytes long....", _event(
            job, ev.EventType.FAILED, library.owner, error="forged", error_kind="permanent"))})
    # What such a client reads: no path, no document byte, no result.
    everything = b"".join(_values(client, key) for key in client.keys("*"))
    assert photo.name.encode() not in everything and photo.read_bytes()[:64] not in everything
    start_worker()
    assert library.wait(session, timeout=60)
    assert _job(library, photo).state == "complete"
    assert library.held_events()["set_aside"]["count"] == 1


def _values(client, key) -> bytes:
    kind = client.type(key).decode()
    if kind == "string":
        return client.get(key)
    if kind == "zset":
        return b"".join(client.zrange(key, 0, -1))
    if kind == "list":
        return b"".join(client.lrange(key, 0, -1))
    if kind == "hash":
        return b"".join(k + v for k, v in client.hgetall(key).items())
    if kind == "stream":
        return b"".join(v for _, fields in client.xrange(key) for v in fields.values())
    return b"".join(client.smembers(key)) if kind == "set" else b""


class _Exploit:
    def __init__(self, path):
        self.path = path

    def __reduce__(self):
        return (os.system, (f"touch {self.path}",))


def test_a_signed_task_is_data_never_code(library, settings, start_worker, tmp_path):
    """A holder of the secret (any desktop on the farm) can queue jobs, but never make a worker run code."""
    marker = tmp_path / "pwned"
    body = pickle.dumps(_Exploit(marker))
    nonce = os.urandom(12)
    sealed = nonce + library.transport.serializer._aead.encrypt(nonce, body, b"snapdesk-task")  # as a holder can
    huey = library.transport.huey("thumbnail")
    huey.storage.enqueue(sealed, 0)
    worker = start_worker()
    wait_for(lambda: huey.pending_count() == 0, timeout=30, message="the worker to take the task")
    wait_for(lambda: marker.exists() or "rejected" in worker.log(), timeout=10, message="the task to run or be rejected")
    assert not marker.exists()
    assert "rejected" in worker.log()

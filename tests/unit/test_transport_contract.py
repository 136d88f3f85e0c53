"""What every transport promises the owner and the workers (engine/transport/base.py ``Transport``),
checked on the in-process memory transport and on the embedded one (SQLite files in tmp_path, no
worker process). The Redis transport keeps the same promises; its tests need a redis-server and
live with the integration tests."""

from __future__ import annotations

import threading
import time

import pytest
from huey.registry import Message

from snapdesk.config import QUEUES
from snapdesk.engine import events as ev
from snapdesk.engine.transport.memory import MemoryTransport
from snapdesk.engine.transport import (EVERY_LANE, PRIORITY_BATCH, PRIORITY_INTERACTIVE, STALE_WORKER_SECONDS,
                                       EmbeddedTransport, SignatureError, SignedSerializer, Transport)

OWNER, OTHER = "a" * 32, "b" * 32
WORKER = {"id": "host:1:abc", "host": "host", "pid": 1}


@pytest.fixture(params=["memory", "embedded"])
def transport(request, settings):
    t = MemoryTransport(settings) if request.param == "memory" else EmbeddedTransport(settings)
    yield t
    t.close()


def _payload(job_id: int, **extra) -> dict:
    return {"v": 2, "owner": OWNER, "job_id": job_id, "job_type": "thumbnail", "document_id": job_id,
            "session_id": 1, "attempt": 1, "max_attempts": 3, "path": f"/photos/private-{job_id}.png", **extra}


def _event(job_id: int, type_=ev.EventType.PROGRESS, owner=OWNER) -> dict:
    return ev.job_event(type_, {**_payload(job_id), "owner": owner}, WORKER, progress=job_id % 100)


def _job_ids(transport, owner=OWNER, count=500) -> list[int]:
    key = transport.library_key(owner)
    return [ev.open_sealed(key, owner, raw.data).job_id for raw in transport.read_events(owner, count=count)]


# -- the event log -------------------------------------------------------------------------
def test_events_are_read_oldest_first_and_stay_until_acked(transport):
    for job_id in range(1, 6):
        transport.emit(OWNER, _event(job_id))
    assert _job_ids(transport) == [1, 2, 3, 4, 5]
    assert _job_ids(transport, count=2) == [1, 2]
    assert _job_ids(transport) == [1, 2, 3, 4, 5]  # reading removes nothing


def test_acked_events_are_gone_and_the_rest_stay_in_order(transport):
    for job_id in range(1, 6):
        transport.emit(OWNER, _event(job_id))
    raws = transport.read_events(OWNER)
    transport.ack_events(OWNER, [raws[0].id, raws[2].id])
    transport.ack_events(OWNER, [raws[0].id])  # twice: harmless
    assert _job_ids(transport) == [2, 4, 5]
    transport.emit(OWNER, _event(6))
    assert _job_ids(transport) == [2, 4, 5, 6]


def test_finishing_a_batch_deletes_it_before_the_next_read(transport):
    for job_id in range(1, 6):
        transport.emit(OWNER, _event(job_id))
    applied = transport.read_events(OWNER, count=2)
    key = transport.library_key(OWNER)
    nxt = transport.finish_and_read(OWNER, [raw.id for raw in applied], [], count=2)
    assert [ev.open_sealed(key, OWNER, raw.data).job_id for raw in nxt] == [3, 4]
    assert transport.finish_and_read(OWNER, [raw.id for raw in nxt], [], block_ms=20) == [
        raw for raw in transport.read_events(OWNER)]
    assert _job_ids(transport) == [5]


def test_each_library_reads_only_its_own_log(transport):
    transport.emit(OWNER, _event(1))
    transport.emit(OTHER, _event(2, owner=OTHER))
    assert _job_ids(transport, OWNER) == [1]
    assert _job_ids(transport, OTHER) == [2]
    transport.ack_events(OTHER, [raw.id for raw in transport.read_events(OTHER)])
    assert _job_ids(transport, OWNER) == [1]


def test_events_are_sealed_with_the_library_key(transport):
    transport.emit(OWNER, _event(1, ev.EventType.FAILED) | {"error": "the words of a private scan",
                                                              "error_kind": "permanent"})
    [raw] = transport.read_events(OWNER)
    assert b"private" not in raw.data
    with pytest.raises(ev.BadEvent):
        ev.open_sealed(ev.library_key("another secret", OWNER), OWNER, raw.data)


def test_an_empty_log_reads_as_nothing_after_the_wait(transport):
    assert transport.read_events(OWNER, block_ms=20) == []


def test_a_blocked_reader_gets_an_event_appended_meanwhile(transport):
    got: list = []
    reader = threading.Thread(target=lambda: got.extend(transport.read_events(OWNER, block_ms=10_000)))
    reader.start()
    transport.emit(OWNER, _event(7))
    reader.join(timeout=10)
    assert not reader.is_alive()
    assert len(got) == 1


def test_events_appended_from_many_threads_are_all_kept(transport):
    def emit_many(first):
        for job_id in range(first, first + 25):
            transport.emit(OWNER, _event(job_id))

    threads = [threading.Thread(target=emit_many, args=(1 + 100 * n,)) for n in range(4)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    ids = _job_ids(transport, count=1000)
    assert sorted(ids) == sorted(j for n in range(4) for j in range(1 + 100 * n, 26 + 100 * n))
    for n in range(4):  # each thread's events in the order it appended them
        mine = [j for j in ids if 100 * n < j <= 100 * n + 25]
        assert mine == sorted(mine)


# -- marks -----------------------------------------------------------------------------------
def test_a_cancel_mark_is_seen_until_it_is_lifted(transport):
    transport.cancel_jobs(OWNER, [4, 5])
    assert transport.is_cancelled(OWNER, 4) and transport.is_cancelled(OWNER, 5)
    assert transport.job_marks(OWNER, 4, 1, PRIORITY_BATCH) == (True, False)
    assert not transport.is_cancelled(OTHER, 4)  # another library's job 4 is another job
    transport.uncancel_jobs(OWNER, [4])
    assert not transport.is_cancelled(OWNER, 4) and transport.is_cancelled(OWNER, 5)


def test_a_superseded_lane_drops_only_that_lane_s_copy_of_that_attempt(transport):
    transport.supersede(OWNER, 9, 1, PRIORITY_BATCH)
    assert transport.job_marks(OWNER, 9, 1, PRIORITY_BATCH) == (False, True)
    assert transport.job_marks(OWNER, 9, 1, PRIORITY_INTERACTIVE) == (False, False)
    assert transport.job_marks(OWNER, 9, 2, PRIORITY_BATCH) == (False, False)


def test_a_superseded_attempt_drops_its_copies_in_every_lane(transport):
    transport.supersede(OWNER, 9, 1, EVERY_LANE)
    assert transport.job_marks(OWNER, 9, 1, PRIORITY_BATCH) == (False, True)
    assert transport.job_marks(OWNER, 9, 1, PRIORITY_INTERACTIVE) == (False, True)
    assert transport.job_marks(OWNER, 9, 2, PRIORITY_INTERACTIVE) == (False, False)


def test_maintenance_trims_marks_past_their_retention_and_stale_workers(transport):
    transport.cancel_jobs(OWNER, [1])
    transport.heartbeat({**WORKER, "queues": ["thumbnail"]})
    now = time.time()
    assert transport.trim_expired(retention_seconds=3600, now=now) == {"cancel_marks": 0, "workers": 0}
    assert transport.is_cancelled(OWNER, 1)
    trimmed = transport.trim_expired(retention_seconds=3600, now=now + STALE_WORKER_SECONDS + 10)
    assert trimmed == {"cancel_marks": 1, "workers": 1}
    assert not transport.is_cancelled(OWNER, 1)


# -- queues and control ----------------------------------------------------------------------
def test_a_queued_payload_comes_back_the_same_and_sealed_on_the_way(transport):
    transport.enqueue("thumbnail", _payload(1, limits={"max_pixels": 10}))
    huey = transport.huey("thumbnail")
    [stored] = huey.storage.enqueued_items()
    assert b"private-1" not in bytes(stored)  # JSON sealed with AES-GCM, never a pickle
    task = huey.dequeue()
    assert task.args == (_payload(1, limits={"max_pixels": 10}),)


@pytest.mark.skipif(not hasattr(Transport, "enqueue_many"), reason="Transport.enqueue_many is not in this version")
def test_many_tasks_queued_at_once_land_on_their_queues_in_priority_order(transport):
    transport.enqueue_many([("thumbnail", _payload(1), PRIORITY_BATCH), ("ocr", _payload(2), PRIORITY_BATCH),
                            ("thumbnail", _payload(3), PRIORITY_INTERACTIVE)])
    thumbnails, ocr = transport.huey("thumbnail"), transport.huey("ocr")
    assert [thumbnails.dequeue().args[0]["job_id"] for _ in range(2)] == [3, 1]
    assert ocr.dequeue().args[0]["job_id"] == 2
    assert thumbnails.dequeue() is None and ocr.dequeue() is None


def test_what_a_person_asked_for_goes_ahead_of_batch_work(transport):
    transport.enqueue("thumbnail", _payload(1), priority=PRIORITY_BATCH)
    transport.enqueue("thumbnail", _payload(2), priority=PRIORITY_INTERACTIVE)
    transport.enqueue("thumbnail", _payload(3), priority=PRIORITY_BATCH)
    huey = transport.huey("thumbnail")
    assert [huey.dequeue().args[0]["job_id"] for _ in range(3)] == [2, 1, 3]


def test_a_delayed_task_waits_for_its_time(transport):
    transport.enqueue("thumbnail", _payload(1), delay=3600)
    task = transport.huey("thumbnail").dequeue()
    assert not transport.huey("thumbnail").ready_to_run(task)


def test_a_task_sealed_with_another_secret_is_refused_unread(transport):
    forger = SignedSerializer("not the secret")
    transport.huey("ocr").storage.enqueue(forger.serialize(Message(
        "forged", None, "snapdesk.run_job", None, 0, 0, None, ((_payload(1),)), {}, None, None, None, None, None)))
    with pytest.raises(SignatureError, match="missing or forged signature"):
        transport.huey("ocr").dequeue()


def test_queue_counts_say_what_waits_and_what_is_paused(transport):
    transport.enqueue("thumbnail", _payload(1))
    transport.enqueue("thumbnail", _payload(2), delay=60)
    transport.set_paused("ocr", True)
    counts = transport.queue_counts()
    assert set(counts) == set(QUEUES)
    assert counts["thumbnail"] == {"waiting": 2, "delayed": 0, "paused": False}
    assert counts["ocr"] == {"waiting": 0, "delayed": 0, "paused": True}


def test_pausing_is_kept_until_resumed_and_checks_the_queue_name(transport):
    transport.set_paused("ocr", True)
    transport.set_paused("ocr", True)
    assert transport.paused_queues() == {"ocr"}
    transport.set_paused("ocr", False)
    assert transport.paused_queues() == set()
    with pytest.raises(ValueError, match="unknown queue 'video'"):
        transport.set_paused("video", True)


def test_a_rate_limit_hands_out_its_slots_then_says_how_long_to_wait(transport):
    assert transport.acquire_rate("summary", 2) == 0
    assert transport.acquire_rate("summary", 2) == 0
    wait = transport.acquire_rate("summary", 2)
    assert 0 < wait <= 60
    assert transport.acquire_rate("describe", 2) == 0  # each limit counts on its own


# -- workers and blobs -----------------------------------------------------------------------
def test_the_worker_registry_lists_live_workers_until_they_leave(transport):
    transport.heartbeat({**WORKER, "queues": ["ocr"]})
    transport.heartbeat({**WORKER, "id": "host:2:def", "queues": ["thumbnail"]})
    listed = {w["id"]: w for w in transport.workers()}
    assert set(listed) == {"host:1:abc", "host:2:def"}
    assert listed["host:1:abc"]["queues"] == ["ocr"] and 0 <= listed["host:1:abc"]["age"] < 30
    transport.remove_worker("host:1:abc")
    assert [w["id"] for w in transport.workers()] == ["host:2:def"]


def test_a_transport_that_reads_files_keeps_no_blobs(transport):
    assert transport.uses_blobs is False
    assert transport.get_blob(OWNER, "0" * 64) is None
    assert transport.missing_blobs(OWNER, ["0" * 64]) == set()
    with pytest.raises(NotImplementedError):
        transport.put_blob(OWNER, "0" * 64, b"bytes")


def test_ping_answers(transport):
    transport.ping()


def test_running_a_task_neither_reads_nor_clears_a_huey_revoke_flag(settings, monkeypatch):
    """SnapDesk cancels with its own marks: Huey's revoke check before a task and its clearing after
    it would be two round trips a job for a flag nothing sets (on SQLite, one an exclusive write)."""
    ran: list[dict] = []
    t = EmbeddedTransport(settings, run_job=ran.append)
    try:
        t.enqueue("thumbnail", _payload(1))
        huey = t.huey("thumbnail")
        touched: list[str] = []
        for name in ("peek_data", "peek_many", "pop_data", "delete_data"):
            real = getattr(huey.storage, name)
            monkeypatch.setattr(huey.storage, name, lambda key, _real=real, _name=name: (
                touched.append(f"{_name} {key}"), _real(key))[1])
        huey.execute(huey.dequeue())
        assert ran == [_payload(1)] and touched == []
    finally:
        t.close()

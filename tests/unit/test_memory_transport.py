"""The memory transport's own parts (engine/transport/memory.py): ``run_next`` as the worker, blobs
as in Redis mode, a registry on an injected clock, and a real owner and worker in two threads."""

from __future__ import annotations

import threading

import pytest

from snapdesk.config import QUEUES
from snapdesk.engine.library import Library
from snapdesk.engine.transport.memory import MemoryTransport
from snapdesk.engine.transport import PRIORITY_BATCH, PRIORITY_INTERACTIVE
from snapdesk.store.db import Document, Job

from unit_helpers import Clock, kinds, opened, work, write_png


def test_run_next_says_when_there_was_nothing_to_run(transport):
    assert transport.run_next() is False
    assert transport.run_all() == 0


def test_run_next_takes_from_the_queue_it_is_given_only(library, transport, photo):
    library.submit([photo])
    assert transport.run_next("ocr") is False
    assert transport.run_next("thumbnail") is True


def test_run_next_takes_interactive_work_first(library, transport, tmp_path):
    library.submit([write_png(tmp_path / "in" / "batch.png", 64, 48)], priority=PRIORITY_BATCH)
    asked, _ = library.submit([write_png(tmp_path / "in" / "asked.png", 48, 64)], priority=PRIORITY_INTERACTIVE)
    transport.run_next()
    assert {e.session_id for e in opened(transport, library.owner)} == {asked.id}


def test_a_task_that_raises_is_raised_by_run_next_not_swallowed(transport):
    transport.enqueue("thumbnail", {"not": "a payload"})
    with pytest.raises(KeyError):
        transport.run_next()
    assert transport.run_next() is False  # it was taken, not left to fail again


def test_the_periodic_maintenance_runs_in_process_too(transport, clock, settings):
    transport.cancel_jobs("owner-a", [1])
    clock.advance(settings.retention_seconds + 1)
    transport.enqueue_trim("thumbnail")
    assert transport.run_next() is True
    assert not transport.is_cancelled("owner-a", 1)


def test_workers_age_on_the_transport_clock(transport, clock):
    transport.heartbeat({"id": "w1", "host": "h", "pid": 1})
    clock.advance(29)
    assert [w["age"] for w in transport.workers()] == [29]
    clock.advance(2)
    assert transport.workers() == []
    assert [w["id"] for w in transport.workers(max_age=60)] == ["w1"]


def test_rate_slots_free_up_a_minute_later_on_the_transport_clock(transport, clock):
    assert transport.acquire_rate("summary", 1) == 0
    clock.advance(45)
    assert transport.acquire_rate("summary", 1) == pytest.approx(15)
    clock.advance(15.5)
    assert transport.acquire_rate("summary", 1) == 0


def test_with_blobs_the_worker_needs_no_access_to_the_original_file(settings, photo, clock):
    """Redis mode's path: the owner puts the document's bytes in the transport, the worker reads
    them from there (here the original is gone), and the copy is dropped once no job needs it."""
    transport = MemoryTransport(settings, uses_blobs=True, clock=clock)
    with Library(settings, transport=transport, clock=clock) as library:
        _, _ = library.submit([photo])
        doc = Document.get()
        assert doc.blob_in_flight and transport.get_blob(library.owner, doc.sha256) == photo.read_bytes()
        photo.unlink()
        work(library, transport)
        assert Job.get().state == "complete"
        assert transport.get_blob(library.owner, doc.sha256) is None
        assert not Document.get().blob_in_flight


def test_with_blobs_a_copy_the_transport_lost_is_put_back_before_the_job_is_queued_again(settings, photo, clock):
    transport = MemoryTransport(settings, uses_blobs=True, clock=clock)
    with Library(settings, transport=transport, clock=clock) as library:
        library.submit([photo], priority=PRIORITY_BATCH)
        doc = Document.get()
        transport.delete_blob(library.owner, doc.sha256)  # the server lost it (a restart without persistence)
        transport.huey("thumbnail").dequeue()  # and the task with it
        clock.advance(2 * settings.lease_seconds + 1)
        library.pump()
        assert library.check_lost_tasks() == 1
        assert transport.get_blob(library.owner, doc.sha256) == photo.read_bytes()
        work(library, transport)
        assert Job.get().state == "complete"


def test_an_owner_and_a_worker_in_two_threads(settings, tmp_path):
    """The memory transport is thread-safe: a worker thread runs tasks while the owner waits on
    the log with Library.wait, as the window and the command line do."""
    transport = MemoryTransport(settings)
    stop = threading.Event()

    def worker():
        while not stop.is_set():
            if not transport.run_next():
                stop.wait(0.005)  # idle poll, as the embedded worker polls its queue

    with Library(settings, transport=transport) as library:
        session, _ = library.submit([write_png(tmp_path / "in" / f"p{n}.png", 64 + n, 48) for n in range(5)])
        thread = threading.Thread(target=worker)
        thread.start()
        try:
            assert library.wait(session, timeout=30)
        finally:
            stop.set()
            thread.join(10)
        counts = library.report(session)["counts"]["documents"]
        assert (counts["total"], counts["complete"]) == (5, 5)


def test_every_queue_can_be_run(transport):
    for queue in QUEUES:
        assert transport.run_next(queue) is False


def test_the_owner_reads_what_run_next_says(library, transport, photo):
    library.submit([photo])
    transport.run_next()
    assert kinds(opened(transport, library.owner)) == ["job:started", "job:complete"]
    assert library.pump() >= 2
    assert transport.read_events(library.owner) == []


def test_a_clock_moved_forward_runs_a_delayed_retry(library, transport, tmp_path, faults):
    faults(thumbnail={"match": "flaky", "fail_attempts": 1})
    library.submit([write_png(tmp_path / "in" / "flaky.png")])
    work(library, transport)  # the first attempt failed; the second waits for its time
    assert Job.get().state == "queued"
    work(library, transport, now=Clock()() + 60)
    assert (Job.get().state, Job.get().attempt) == ("complete", 2)


def test_it_refuses_settings_that_would_start_worker_processes(settings):
    from snapdesk.config import ConfigError

    with pytest.raises(ConfigError, match='local_workers="no"'):
        MemoryTransport(settings.replace(local_workers="auto"))

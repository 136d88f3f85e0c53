"""Queue operations on both transports: priorities, pause, cancel, failed jobs, retention, removal."""

import time
from pathlib import Path

from snapdesk.engine import events as ev
from snapdesk.engine.transport import make_transport
from snapdesk.store import db as store

from helpers import wait_for, write_photos


def _wait(library, session, timeout=60):
    assert library.wait(session, timeout=timeout), library.report(session)["counts"]
    return library.report(session)


def _thumbnail_job(library, session, name):
    report = library.report(session)
    return next(d["jobs"]["thumbnail"] for d in report["documents"] if Path(d["path"]).name == name)


def _timeline(job_id):
    return [e.type for e in store.JobEvent.select().where(store.JobEvent.job == job_id).order_by(store.JobEvent.id)]


def _settle(library, seconds):
    """Apply events for a while: long enough for an idle worker to have taken any job it could."""
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        library.pump(block_ms=100)


def test_a_small_drop_overtakes_a_hundred_queued_batch_jobs(library, start_worker, tmp_path):
    write_photos(tmp_path / "backfill", 100, prefix="batch", width=64, height=48)
    write_photos(tmp_path / "now", 1, prefix="urgent", width=64, height=48, start_seed=500)
    backfill, _ = library.submit([tmp_path / "backfill"])
    urgent, _ = library.submit([tmp_path / "now"])  # submitted last, with 100 jobs ahead of it
    start_worker("--concurrency", "1")
    _wait(library, urgent)
    _wait(library, backfill)
    started = {job.document.path: job.started_at for job in store.Job.select()}
    urgent_start = started.pop(str(tmp_path / "now" / "urgent-000.jpg"))
    assert len(started) == 100
    assert urgent_start < min(started.values())


def test_pause_holds_work_back_across_a_worker_restart_and_resume_releases_it(library, settings, start_worker,
                                                                               tmp_path):
    write_photos(tmp_path / "in", 3)
    library.pause("thumbnail")
    worker = start_worker("--concurrency", "2")
    session, _ = library.submit([tmp_path / "in"])
    _settle(library, 2)
    assert library.document_counts(session)["queued"] == 3

    assert worker.stop() == 0
    other = make_transport(settings)  # what any other process of the farm sees
    try:
        assert other.paused_queues() == {"thumbnail"}
        assert other.queue_counts()["thumbnail"] == {"waiting": 3, "delayed": 0, "paused": True}
    finally:
        other.close()
    start_worker("--concurrency", "2")
    _settle(library, 2)
    assert library.document_counts(session)["queued"] == 3
    assert not store.JobEvent.select().where(store.JobEvent.type == ev.EventType.STARTED).exists()

    library.resume("thumbnail")
    assert _wait(library, session, timeout=30)["counts"]["documents"]["complete"] == 3


def test_cancel_a_queued_job_and_a_running_one(library, start_worker, tmp_path):
    write_photos(tmp_path / "slow", 1, prefix="slow")
    write_photos(tmp_path / "next", 2, prefix="next", start_seed=10)
    worker = start_worker("--concurrency", "1", faults={"thumbnail": {"match": "slow", "sleep": 60}})
    slow, _ = library.submit([tmp_path / "slow"])
    wait_for(lambda: library.pump(block_ms=100) or library.document_counts(slow)["running"], message="a start")
    following, _ = library.submit([tmp_path / "next"])  # waits behind the slow job (one job at a time)
    waiting = _thumbnail_job(library, following, "next-000.jpg")
    running = _thumbnail_job(library, slow, "slow-000.jpg")

    assert library.cancel([waiting["id"]]) == [waiting["id"]]
    assert _thumbnail_job(library, following, "next-000.jpg")["state"] == "cancelled"  # at once
    assert library.cancel([running["id"]]) == [running["id"]]
    cancelled_at = time.monotonic()
    wait_for(lambda: library.pump(block_ms=100) or
             _thumbnail_job(library, slow, "slow-000.jpg")["state"] == "cancelled", timeout=20,
             message="the running job to stop")
    assert time.monotonic() - cancelled_at < 10  # it stopped at a checkpoint, not after its 60 s

    report = _wait(library, following)
    assert _thumbnail_job(library, following, "next-001.jpg")["state"] == "complete"
    assert report["counts"]["documents"]["cancelled"] == 1
    assert ev.EventType.STARTED not in _timeline(waiting["id"])  # it never started
    assert _timeline(running["id"])[-1] == ev.EventType.CANCELLED
    assert worker.proc.poll() is None  # the worker goes on


def test_cancel_a_whole_session(library, start_worker, tmp_path):
    write_photos(tmp_path / "in", 4)
    library.pause("thumbnail")
    session, _ = library.submit([tmp_path / "in"])
    assert len(library.cancel(session_id=session.id)) == 4
    library.resume("thumbnail")
    start_worker()
    # The worker takes the four tasks off the queue and drops them.
    wait_for(lambda: library.transport.queue_counts()["thumbnail"]["waiting"] == 0, message="the queue to drain")
    _settle(library, 1)
    assert library.report(session)["counts"]["documents"]["cancelled"] == 4
    assert not store.JobEvent.select().where(store.JobEvent.type == ev.EventType.STARTED).exists()


def test_failed_jobs_are_listed_retried_and_discarded(library, start_worker, tmp_path):
    folder = tmp_path / "in"
    write_photos(folder, 1, prefix="fine")
    write_photos(folder, 1, prefix="flaky", start_seed=3)
    (folder / "broken.jpg").write_text("not a picture at all")
    # The flaky one fails every attempt it is given (3), then succeeds when retried by hand.
    start_worker(faults={"thumbnail": {"match": "flaky", "fail_attempts": 3}})
    session, _ = library.submit([folder])
    _wait(library, session)

    failed = {Path(f["path"]).name: f for f in library.failed_jobs()}
    assert set(failed) == {"flaky-000.jpg", "broken.jpg"}
    assert failed["flaky-000.jpg"]["attempts"] == 3 and "gave up after 3 attempts" in failed["flaky-000.jpg"]["error"]
    assert failed["broken.jpg"]["attempts"] == 1 and "not an image" in failed["broken.jpg"]["error"].lower()

    library.retry([failed["flaky-000.jpg"]["id"]])
    assert library.discard([failed["broken.jpg"]["id"]]) == [failed["broken.jpg"]["id"]]
    _wait(library, session)
    assert library.failed_jobs() == []
    assert _thumbnail_job(library, session, "flaky-000.jpg")["state"] == "complete"
    broken = _thumbnail_job(library, session, "broken.jpg")
    assert broken["state"] == "cancelled" and "not an image" in broken["error"].lower()  # its reason kept


def test_retention_trims_old_timelines_and_marks_and_nothing_else(library, start_worker, tmp_path):
    write_photos(tmp_path / "in", 2)
    start_worker()
    session, _ = library.submit([tmp_path / "in"])
    _wait(library, session)
    old, recent = list(store.Job.select().order_by(store.Job.id))
    month_and_a_half = 45 * 86400
    store.Job.update(finished_at=old.finished_at - month_and_a_half).where(store.Job.id == old.id).execute()
    transport = library.transport
    transport.cancel_jobs(library.owner, [9001])
    transport.emit(library.owner, ev.heartbeat(library.owner, ev.worker_identity(), []))  # not yet applied
    old_timeline, recent_timeline = _timeline(old.id), _timeline(recent.id)
    assert ev.EventType.COMPLETE in old_timeline

    trimmed = library.trim_expired(now=time.time() + 86400)  # a day on: only the one job is 30 days old
    assert trimmed["timeline_events"] == len(old_timeline)
    assert _timeline(old.id) == [] and _timeline(recent.id) == recent_timeline
    assert transport.is_cancelled(library.owner, 9001)
    assert store.Job.get_by_id(old.id).result["thumbnails"]["sm"]["path"]  # results stay
    assert all(Path(a.path).exists() for a in store.Artifact.select())
    assert len(transport.read_events(library.owner)) == 1  # events wait to be applied

    library.trim_expired(now=time.time() + 31 * 86400)
    assert not transport.is_cancelled(library.owner, 9001)
    assert len(transport.read_events(library.owner)) == 1


def test_removing_a_session_removes_its_files_but_not_shared_ones(library, start_worker, tmp_path):
    shared, own = write_photos(tmp_path / "first", 2)
    (tmp_path / "second").mkdir()
    (tmp_path / "second" / "copy.jpg").write_bytes(shared.read_bytes())
    start_worker()
    first, _ = library.submit([tmp_path / "first"])
    _wait(library, first)
    second, _ = library.submit([tmp_path / "second"])  # same content: reuses the first's results
    _wait(library, second)
    files = {Path(d["path"]).name: Path(d["jobs"]["thumbnail"]["result"]["thumbnails"]["md"]["path"])
             for d in library.report(first)["documents"]}

    assert library.remove_session(first.id)
    assert library.session(first.id) is None
    assert not files[own.name].exists()
    assert files[shared.name].exists()
    assert Path(_thumbnail_job(library, second, "copy.jpg")["result"]["thumbnails"]["md"]["path"]).exists()


def test_the_maintenance_task_runs_on_a_worker(library, start_worker):
    worker = start_worker()
    library.transport.enqueue_trim("thumbnail")
    wait_for(lambda: "maintenance: trimmed" in worker.log(), timeout=20, message="the maintenance task to run")


def test_statistics_count_by_queue_and_list_the_workers(library, start_worker, tmp_path):
    write_photos(tmp_path / "in", 3)
    (tmp_path / "in" / "bad.jpg").write_text("nope")
    worker = start_worker("--concurrency", "2")
    session, _ = library.submit([tmp_path / "in"])
    _wait(library, session)
    stats = library.statistics()
    thumbs = stats["queues"]["thumbnail"]
    assert thumbs["states"]["complete"] == 3 and thumbs["states"]["failed"] == 1
    assert thumbs["failure_rate"] == 0.25
    assert thumbs["mean_ms"] > 0 and thumbs["p95_ms"] >= thumbs["mean_ms"] * 0.5
    assert len(thumbs["slowest"]) == 3 and thumbs["errors"][0]["count"] == 1
    assert [w["pid"] for w in stats["workers"]] == [worker.pid]
    assert stats["workers"][0]["concurrency"]["thumbnail"] == 2


def test_the_periodic_maintenance_never_waits_in_a_paused_queue(library, settings):
    from snapdesk.worker.main import Worker

    library.pause("thumbnail")
    worker = Worker(library.transport, settings, queues=["thumbnail", "ocr"])
    worker.context.paused = frozenset(library.transport.paused_queues())
    due = [object()]  # what the scheduler hands over when the crontab matches

    worker.queue_trim(due)
    counts = library.transport.queue_counts()
    assert counts["thumbnail"]["waiting"] == 0
    assert counts["ocr"]["waiting"] == 1

    library.pause("ocr")
    worker.context.paused = frozenset(library.transport.paused_queues())
    worker.queue_trim(due)
    assert library.transport.queue_counts()["ocr"]["waiting"] == 1  # nothing more queued behind a pause


def test_a_document_opened_runs_before_the_batch_work_queued_ahead_of_it(library, start_worker, tmp_path):
    write_photos(tmp_path / "backfill", 40, prefix="batch", width=64, height=48)
    backfill, _ = library.submit([tmp_path / "backfill"])  # more than a small drop: batch work
    opened = next(d for d in library.report(backfill)["documents"] if Path(d["path"]).name == "batch-039.jpg")
    assert library.prioritise([opened["id"]]) == [opened["jobs"]["thumbnail"]["id"]]
    assert library.prioritise([opened["id"]]) == []  # already at the front
    worker = start_worker("--concurrency", "1")
    _wait(library, backfill)
    started = {Path(job.document.path).name: job.started_at for job in store.Job.select()}
    first = started.pop("batch-039.jpg")
    assert first < min(started.values())
    # It ran once: the copy left in the batch lane was dropped, not run again.
    assert _timeline(opened["jobs"]["thumbnail"]["id"]).count(ev.EventType.STARTED) == 1
    wait_for(lambda: "dropped a copy left behind" in worker.log(), message="the old copy to be dropped")
    assert worker.log().count("thumbnail complete") == 40

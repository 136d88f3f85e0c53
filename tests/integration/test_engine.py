"""The job engine end to end, on both transports, with real worker processes."""

import os
import signal
import time
from pathlib import Path

from PIL import Image

from snapdesk.engine.library import Library
from snapdesk.store import db as store

from helpers import wait_for, write_photos


def _wait(library, session, timeout=60):
    assert library.wait(session, timeout=timeout), library.report(session)["counts"]
    return library.report(session)


def _jobs(report):
    return {Path(d["path"]).name: d["jobs"]["thumbnail"] for d in report["documents"]}


def test_a_folder_completes_with_three_thumbnails_each(library, start_worker, tmp_path):
    folder = tmp_path / "photos"
    write_photos(folder, 5, width=1200, height=900)
    (folder / "not-really.jpg").write_text("a text file named .jpg")
    start_worker()
    session, _ = library.submit([folder])
    report = _wait(library, session)
    jobs = _jobs(report)
    assert report["counts"]["documents"] == {"total": 6, "queued": 0, "running": 0, "complete": 5, "failed": 1,
                                             "cancelled": 0}
    for name, job in jobs.items():
        if name == "not-really.jpg":
            continue
        assert job["state"] == "complete" and job["attempts"] == 1
        result = job["result"]
        assert (result["width"], result["height"]) == (1200, 900)
        assert len(result["blurhash"]) == 28  # 4x3 components
        for size, width in (("sm", 150), ("md", 300), ("lg", 600)):
            thumb = result["thumbnails"][size]
            assert os.path.isabs(thumb["path"])
            with Image.open(thumb["path"]) as img:
                assert img.format == "WEBP" and img.size == (width, width * 3 // 4)
            assert os.path.getsize(thumb["path"]) == thumb["bytes"]


def test_a_permanent_failure_fails_at_once(library, start_worker, tmp_path):
    (tmp_path / "fake.jpg").write_text("not an image at all")
    start_worker()
    session, _ = library.submit([tmp_path / "fake.jpg"])
    job = _jobs(_wait(library, session))["fake.jpg"]
    assert job["state"] == "failed"
    assert job["attempts"] == 1 and job["error_kind"] == "permanent"
    assert job["error"] == "not an image, or an image format SnapDesk cannot read"


def test_a_transient_failure_succeeds_on_retry(library, start_worker, tmp_path):
    write_photos(tmp_path / "in", 1, prefix="flaky")
    write_photos(tmp_path / "in", 1, prefix="steady", start_seed=1)
    start_worker(faults={"thumbnail": {"match": "flaky", "fail_attempts": 2}})
    session, _ = library.submit([tmp_path / "in"])
    jobs = _jobs(_wait(library, session))
    flaky = jobs["flaky-000.jpg"]
    assert flaky["state"] == "complete" and flaky["attempts"] == 3
    timeline = [e.type for e in store.JobEvent.select().where(store.JobEvent.job == flaky["id"]).order_by(store.JobEvent.id)]
    assert timeline == ["job:started", "job:retrying", "job:started", "job:retrying", "job:started", "job:complete"]
    assert jobs["steady-000.jpg"]["state"] == "complete" and jobs["steady-000.jpg"]["attempts"] == 1


def test_retries_give_up_after_the_last_attempt(library, start_worker, tmp_path):
    write_photos(tmp_path / "in", 1, prefix="flaky")
    faulty = start_worker(faults={"thumbnail": {"match": "flaky", "fail_attempts": 99}})
    session, _ = library.submit([tmp_path / "in"])
    job = _jobs(_wait(library, session))["flaky-000.jpg"]
    assert job["state"] == "failed" and job["attempts"] == 3
    assert job["error"] == "injected transient fault on attempt 3 (gave up after 3 attempts)"
    faulty.stop()
    # A person's retry gives it a fresh set of attempts; without the fault it now completes.
    library.retry([job["id"]])
    assert store.Job.get_by_id(job["id"]).priority > 0  # ahead of batch work
    start_worker()
    job = _jobs(_wait(library, session))["flaky-000.jpg"]
    assert job["state"] == "complete" and job["attempts"] == 4


def test_the_owner_closed_mid_run_loses_nothing(settings, start_worker, tmp_path):
    write_photos(tmp_path / "in", 6)
    start_worker("--concurrency", "1", faults={"thumbnail": {"sleep": 0.3}})
    library = Library(settings)
    session, _ = library.submit([tmp_path / "in"])
    session_id = library.owner, session.id
    wait_for(lambda: library.pump(block_ms=100) or library.document_counts(session)["complete"] >= 1,
             message="a first result")
    assert library.document_counts(session)["complete"] < 6
    library.close()  # the window closes; the workers go on

    time.sleep(6 * 0.3 + 1)
    library = Library(settings)
    try:
        assert library.owner == session_id[0]
        session = library.session(session_id[1])
        report = _wait(library, session)
        assert report["counts"]["documents"]["complete"] == 6
        completions = store.JobEvent.select().where(store.JobEvent.type == "job:complete").count()
        assert completions == 6  # each result applied once
    finally:
        library.close()


def test_sigterm_lets_running_jobs_finish(library, start_worker, tmp_path):
    write_photos(tmp_path / "in", 1, prefix="slow")
    worker = start_worker("--concurrency", "1", "--drain-timeout", "20", faults={"thumbnail": {"sleep": 2}})
    session, _ = library.submit([tmp_path / "in"])
    wait_for(lambda: library.pump(block_ms=100) or library.document_counts(session)["running"], message="a start")
    worker.proc.send_signal(signal.SIGTERM)
    assert worker.wait(20) == 0
    job = _jobs(_wait(library, session, timeout=5))["slow-000.jpg"]
    assert job["state"] == "complete" and job["attempts"] == 1


def test_sigterm_past_the_drain_timeout_puts_jobs_back_on_the_queue(library, start_worker, tmp_path):
    write_photos(tmp_path / "in", 2, prefix="slow")
    worker = start_worker("--concurrency", "1", "--drain-timeout", "0.5", faults={"thumbnail": {"sleep": 30}})
    session, _ = library.submit([tmp_path / "in"])
    wait_for(lambda: library.pump(block_ms=100) or library.document_counts(session)["running"], message="a start")
    started = time.monotonic()
    worker.proc.send_signal(signal.SIGTERM)
    assert worker.wait(20) == 0
    assert time.monotonic() - started < 10
    library.catch_up()
    assert library.document_counts(session)["queued"] == 2  # none lost, none running
    start_worker()  # a fresh worker without the slow fault finishes both
    report = _wait(library, session)
    assert report["counts"]["documents"]["complete"] == 2
    assert all(job["attempts"] == 1 for job in _jobs(report).values())


def test_a_killed_worker_loses_its_lease_and_the_job_runs_again(settings, start_worker, tmp_path):
    settings = settings.replace(lease_seconds=2.0)
    library = Library(settings)
    try:
        write_photos(tmp_path / "in", 1, prefix="doomed")
        worker = start_worker("--concurrency", "1", faults={"thumbnail": {"sleep": 60}})
        session, _ = library.submit([tmp_path / "in"])
        wait_for(lambda: library.pump(block_ms=100) or library.document_counts(session)["running"], message="a start")
        worker.kill()
        start_worker()
        job = _jobs(_wait(library, session))["doomed-000.jpg"]
        assert job["state"] == "complete" and job["attempts"] == 2
        assert store.JobEvent.select().where(store.JobEvent.type == "lease:expired").count() == 1
    finally:
        library.close()

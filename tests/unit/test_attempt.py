"""engine/attempt.py: one attempt of a job in a worker, and the events it says it with.

Each test runs a real attempt in this thread through MemoryTransport.run_next, on jobs a real
Library queued, and looks at what the worker said (the owner's event log) and what the owner
made of it."""

from __future__ import annotations

import io

import pytest
from PIL import Image

from snapdesk.engine import events as ev
from snapdesk.engine.attempt import PAYLOAD_VERSION
from snapdesk.engine.transport import PRIORITY_BATCH
from snapdesk.store.db import Job

from unit_helpers import kinds, opened, work, write_png


def _job(session) -> Job:
    return Job.get(Job.session == session.id)


def test_a_job_completes_with_its_thumbnails(library, transport, photo):
    session, _ = library.submit([photo])
    assert transport.run_next() is True
    said = opened(transport, library.owner)
    assert kinds(said) == ["job:started", "job:complete"]
    done = said[-1]
    assert done.progress == 100 and done.attempt == 1
    assert (done.result["width"], done.result["height"]) == (320, 240)
    assert set(done.files) == {"sm.webp", "md.webp", "lg.webp"}

    library.pump()
    job = library.report(session)["documents"][0]["jobs"]["thumbnail"]
    assert job["state"] == "complete" and job["attempts"] == 1
    for size, width in (("sm", 150), ("md", 300), ("lg", 320)):  # never wider than the original
        with Image.open(job["result"]["thumbnails"][size]["path"]) as img:
            assert img.format == "WEBP" and img.size == (width, width * 3 // 4)
    assert transport.run_next() is False  # nothing more to do


def test_a_file_that_is_not_an_image_fails_permanently_after_one_attempt(library, transport, tmp_path):
    fake = tmp_path / "in" / "fake.png"
    fake.parent.mkdir()
    fake.write_text("a text file named .png")
    session, _ = library.submit([fake])
    transport.run_next()
    failed = opened(transport, library.owner)[-1]
    assert failed.type == ev.EventType.FAILED and failed.error_kind == ev.ErrorKind.PERMANENT
    work(library, transport)
    job = library.report(session)["documents"][0]["jobs"]["thumbnail"]
    assert (job["state"], job["attempts"], job["error_kind"]) == ("failed", 1, "permanent")
    assert job["error"] == "not an image, or an image format SnapDesk cannot read"
    assert not any(transport.queued_payloads(q) for q in ("thumbnail", "ocr", "summary"))


def test_a_file_changed_after_it_was_added_fails_with_that_reason(library, transport, photo):
    session, _ = library.submit([photo])
    write_png(photo, 100, 100)  # other content under the same name
    work(library, transport)
    job = _job(session)
    assert job.state == "failed" and job.error_kind == "permanent"
    assert job.error == "the file changed after it was added; add it again to process the new version"


def test_a_file_gone_before_its_job_ran_fails_with_that_reason(library, transport, photo):
    session, _ = library.submit([photo])
    photo.unlink()
    work(library, transport)
    assert _job(session).error == "the file is gone: it was moved or deleted after it was added"


def test_a_retryable_error_asks_the_owner_for_another_attempt_after_a_backoff(library, transport, tmp_path,
                                                                              faults, clock):
    faults(thumbnail={"match": "flaky", "fail_attempts": 1})
    session, _ = library.submit([write_png(tmp_path / "in" / "flaky.png")])
    transport.run_next()
    retrying = opened(transport, library.owner)[-1]
    assert retrying.type == ev.EventType.RETRYING and retrying.error_kind == ev.ErrorKind.RETRYABLE
    assert retrying.error == "injected transient fault on attempt 1"
    assert 80 <= retrying.delay_ms <= 120  # JOB_RETRY_BACKOFF_MS=100, +-20 % jitter

    library.pump()  # the owner makes the next attempt: queued with the wait the worker asked for
    job = _job(session)
    assert (job.state, job.attempt) == ("queued", 2)
    assert job.not_before == pytest.approx(clock() + retrying.delay_ms / 1000)
    assert [p["attempt"] for p in transport.queued_payloads("thumbnail")] == [2]
    assert transport.run_next() is False  # not due yet
    assert transport.run_next(now=clock() + 1) is True
    library.pump()
    job = _job(session)
    assert (job.state, job.attempt) == ("complete", 2)


def test_the_last_attempt_of_a_retryable_error_fails_the_job(library, transport, tmp_path, faults, settings):
    faults(thumbnail={"match": "flaky", "fail_attempts": 99})
    session, _ = library.submit([write_png(tmp_path / "in" / "flaky.png")])
    for attempt in range(1, settings.retry_attempts + 1):
        assert transport.run_next(now=library.clock() + 10 * attempt) is True
        library.pump()
    job = _job(session)
    assert (job.state, job.attempt, job.error_kind) == ("failed", 3, "retryable")
    assert job.error == "injected transient fault on attempt 3 (gave up after 3 attempts)"


def test_a_job_cancelled_while_it_runs_stops_at_its_checkpoint(library, transport, photo):
    session, _ = library.submit([photo])
    job_id = _job(session).id

    def cancel_once_started(owner, raw):  # the person clicks Cancel while the worker runs the job
        if ev.open_sealed(transport.library_key(owner), owner, raw.data).type == ev.EventType.STARTED:
            library.pump()
            assert library.cancel([job_id]) == [job_id]
            assert Job.get_by_id(job_id).state == "running"  # it ends when the worker says so

    transport.observers.append(cancel_once_started)
    transport.run_next()
    transport.observers.clear()
    said = opened(transport, library.owner)
    assert kinds(said) == ["job:cancelled"]  # the started event was applied already
    assert said[0].error == "cancelled while it ran"
    library.pump()
    job = Job.get_by_id(job_id)
    assert job.state == "cancelled" and job.result is None


def test_a_job_cancelled_before_it_started_never_runs(library, transport, photo):
    session, _ = library.submit([photo])
    library.cancel(session_id=session.id)
    transport.run_next()
    assert kinds(opened(transport, library.owner)) == ["job:cancelled"]
    library.pump()
    assert _job(session).state == "cancelled" and not _job(session).artifacts.count()


def test_a_copy_left_behind_in_the_batch_lane_is_dropped(library, transport, photo):
    """A person opened the document: its job is queued again ahead of batch work, and the worker
    that takes the old copy drops it without a word."""
    session, _ = library.submit([photo], priority=PRIORITY_BATCH)
    doc_id = session.documents[0].id
    assert library.prioritise([doc_id]) == [_job(session).id]
    assert [p["priority"] for p in transport.queued_payloads("thumbnail")] == [10, 0]
    work(library, transport)
    assert transport.queued_payloads("thumbnail") == []
    job = _job(session)
    assert job.state == "complete" and job.priority == 10
    assert [e.type for e in job.events] == ["job:started", "job:complete"]  # one run, not two


def test_an_attempt_superseded_while_it_runs_stops_and_says_nothing_more(library, transport, photo):
    session, _ = library.submit([photo])
    job = _job(session)

    def replace_once_started(owner, raw):  # the owner gave up on this attempt meanwhile
        if ev.open_sealed(transport.library_key(owner), owner, raw.data).type == ev.EventType.STARTED:
            transport.supersede(owner, job.id, job.attempt)

    transport.observers.append(replace_once_started)
    transport.run_next()
    assert kinds(opened(transport, library.owner)) == ["job:started"]


def test_a_paused_queue_is_left_alone_until_it_is_resumed(library, transport, photo):
    session, _ = library.submit([photo])
    library.pause("thumbnail")
    assert transport.run_next() is False
    assert transport.queue_counts()["thumbnail"] == {"waiting": 1, "delayed": 0, "paused": True}
    library.resume("thumbnail")
    work(library, transport)
    assert _job(session).state == "complete"


def _summary_payload(owner: str, job_id: int, **extra) -> dict:
    return {"v": PAYLOAD_VERSION, "owner": owner, "job_id": job_id, "job_type": "summary", "document_id": job_id,
            "session_id": 1, "attempt": 1, "max_attempts": 3, "backoff_ms": 100, "priority": 0,
            "path": f"/nowhere/scan-{job_id}.png", "sha256": "0" * 64, "size": 1, "kind": "image",
            "limits": {"max_pixels": 1000, "rate_per_minute": 0},
            "text": "Invoice 2041 from Northwind Traders. Total due: 1,250.00 EUR by 30 June.", **extra}


def test_a_summary_works_from_the_text_in_its_payload_without_the_file(transport):
    transport.enqueue("summary", _summary_payload("owner-a", 1))
    transport.run_next("summary")
    done = opened(transport, "owner-a")[-1]
    assert done.type == ev.EventType.COMPLETE
    assert "Northwind" in done.result["summary"] and done.files == {}


def test_the_rate_limit_puts_a_job_back_without_using_an_attempt(transport):
    for job_id in (1, 2):
        transport.enqueue("summary", _summary_payload("owner-a", job_id, limits={"max_pixels": 1000,
                                                                                 "rate_per_minute": 1}))
    transport.run_all("summary")
    said = [e for e in opened(transport, "owner-a") if e.type != ev.EventType.PROGRESS]
    assert [(e.type, e.job_id) for e in said] == [(ev.EventType.STARTED, 1), (ev.EventType.COMPLETE, 1)]
    waiting = transport.queued_payloads("summary")
    assert [(p["job_id"], p["attempt"]) for p in waiting] == [(2, 1)]  # back on the queue, for later


def test_a_task_of_another_payload_version_fails_saying_to_upgrade_the_worker(transport):
    transport.enqueue("summary", _summary_payload("owner-a", 7, v=PAYLOAD_VERSION + 1))
    transport.run_next()
    failed = opened(transport, "owner-a")[-1]
    assert failed.type == ev.EventType.FAILED and failed.error_kind == ev.ErrorKind.PERMANENT
    assert "upgrade snapdesk-worker" in failed.error


def test_events_carry_the_worker_and_its_clock(settings, photo, clock):
    from snapdesk.engine.library import Library
    from snapdesk.engine.transport.memory import MemoryTransport

    transport = MemoryTransport(settings, worker_clock=lambda: 1_000.0)
    with Library(settings, transport=transport, clock=clock) as library:
        library.submit([photo])
        transport.run_next()
        said = opened(transport, library.owner)
        assert {e.ts for e in said} == {1_000.0}  # shown, never used by the owner to judge time
        assert {e.worker.id for e in said} == {transport.context.worker["id"]}
        library.pump()
        assert Job.get().started_at == clock()  # the owner's clock


def test_thumbnails_of_a_png_read_back_as_the_same_picture(library, transport, photo):
    session, _ = library.submit([photo])
    work(library, transport)
    lg = _job(session).result["thumbnails"]["lg"]["path"]
    with Image.open(lg) as img, Image.open(io.BytesIO(photo.read_bytes())) as original:
        assert img.convert("RGB").getpixel((10, 10)) == pytest.approx(original.getpixel((10, 10)), abs=12)
        assert img.convert("RGB").getpixel((300, 200)) == pytest.approx(original.getpixel((300, 200)), abs=12)

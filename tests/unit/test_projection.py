"""The library's projection: what each event a worker sends does to the owner's library
(``Library.pump``, which opens, checks and applies the log), and what it must not do.

The events are made here, as a worker would make them, and put on the memory transport's log
sealed; nothing runs the jobs, so each test says exactly which events arrive, in which order."""

from __future__ import annotations

import base64
import json
from pathlib import Path

import pytest

from snapdesk.engine import events as ev
from snapdesk.store.db import Artifact, Job

from unit_helpers import WORKER, png_bytes, say, thumbnail_result

T = ev.EventType


@pytest.fixture
def queued(library, transport, photo):
    """A submitted photo's thumbnail job, queued: (its session, the payload on the queue)."""
    session, _ = library.submit([photo])
    [payload] = transport.queued_payloads("thumbnail")
    return session, payload


def _job(payload) -> Job:
    return Job.get_by_id(payload["job_id"])


def _timeline(payload) -> list[tuple[str, int]]:
    return [(e.type, e.attempt) for e in _job(payload).events.order_by("id")]


def _complete(transport, payload, data: bytes) -> None:
    result, files = thumbnail_result(data)
    say(transport, payload, T.COMPLETE, progress=100, duration_ms=12, result=result, files=files)


def test_started_and_progress_show_the_job_running_at_its_furthest_progress(library, transport, queued, clock):
    session, payload = queued
    say(transport, payload, T.STARTED)
    say(transport, payload, T.PROGRESS, progress=60)
    say(transport, payload, T.PROGRESS, progress=40)  # progress reports may cross: the furthest stands
    assert library.pump() == 3
    job = _job(payload)
    assert (job.state, job.progress, job.worker) == ("running", 60, "test-host:4242")
    assert job.started_at == clock()
    assert library.report(session)["documents"][0]["status"] == "running"


def test_complete_stores_the_files_in_the_library_and_the_result_with_their_paths(library, transport, queued, photo):
    session, payload = queued
    say(transport, payload, T.STARTED)
    _complete(transport, payload, photo.read_bytes())
    library.pump()
    job = library.report(session)["documents"][0]
    assert job["status"] == "complete" and (job["width"], job["height"]) == (320, 240)
    thumbs = job["jobs"]["thumbnail"]["result"]["thumbnails"]
    for name in ("sm", "md", "lg"):
        path = Path(thumbs[name]["path"])
        assert path.is_relative_to(library.artifacts_dir) and path.stat().st_size == thumbs[name]["bytes"]
    assert Artifact.select().where(Artifact.job == payload["job_id"]).count() == 3
    assert _timeline(payload) == [("job:started", 1), ("job:complete", 1)]


def test_failed_keeps_the_reason_a_person_reads(library, transport, queued):
    session, payload = queued
    say(transport, payload, T.FAILED, error="the file is empty", error_kind="permanent", duration_ms=3)
    library.pump()
    job = library.report(session)["documents"][0]["jobs"]["thumbnail"]
    assert (job["state"], job["error"], job["error_kind"]) == ("failed", "the file is empty", "permanent")
    assert library.failed_jobs()[0]["error"] == "the file is empty"


def test_retrying_makes_the_next_attempt_wait_as_long_as_the_worker_asked(library, transport, queued, clock):
    _, payload = queued
    say(transport, payload, T.STARTED)
    say(transport, payload, T.RETRYING, error="the server is busy", error_kind="retryable", delay_ms=4000)
    library.pump()
    job = _job(payload)
    assert (job.state, job.attempt, job.error) == ("queued", 2, "the server is busy")
    assert job.not_before == pytest.approx(clock() + 4)
    # Beside attempt 1's task (no worker took it in this test), the owner queued attempt 2.
    assert [p["attempt"] for p in transport.queued_payloads("thumbnail")] == [1, 2]
    assert _timeline(payload) == [("job:started", 1), ("job:retrying", 1)]


def test_an_event_applied_twice_changes_nothing(library, transport, queued, photo):
    session, payload = queued
    say(transport, payload, T.STARTED)
    _complete(transport, payload, photo.read_bytes())
    raws = transport.read_events(library.owner)
    for raw in raws:  # delivered twice (at least once is all a queue promises)
        transport.append_event(library.owner, raw.data)
    library.pump()
    before = library.report(session)
    for raw in raws:  # and once more, in a later batch
        transport.append_event(library.owner, raw.data)
    library.pump()
    assert library.report(session) == before
    assert _timeline(payload) == [("job:started", 1), ("job:complete", 1)]
    assert Artifact.select().where(Artifact.job == payload["job_id"]).count() == 3
    assert library.held_events()["set_aside"]["count"] == 0


def test_events_of_a_superseded_attempt_change_nothing(library, transport, queued, photo):
    _, payload = queued
    say(transport, payload, T.RETRYING, error="timed out", error_kind="retryable", delay_ms=0)
    library.pump()
    assert _job(payload).attempt == 2
    # The first attempt's worker did not stop after all: everything it says now is stale.
    say(transport, payload, T.STARTED)
    say(transport, payload, T.PROGRESS, progress=90)
    _complete(transport, payload, photo.read_bytes())
    library.pump()
    job = _job(payload)
    assert (job.state, job.attempt, job.progress, job.result) == ("queued", 2, 0, None)
    assert not Artifact.select().where(Artifact.job == job.id).exists()
    assert library.held_events()["set_aside"]["count"] == 0  # stale, not bad


def test_an_event_for_a_job_that_ended_changes_nothing(library, transport, queued, photo):
    _, payload = queued
    _complete(transport, payload, photo.read_bytes())
    library.pump()
    say(transport, payload, T.FAILED, error="late news", error_kind="permanent")
    say(transport, payload, T.PROGRESS, progress=5)
    library.pump()
    job = _job(payload)
    assert (job.state, job.progress, job.error) == ("complete", 100, None)


def test_an_event_not_sealed_with_the_library_key_is_set_aside_and_the_next_applies(library, transport, queued):
    _, payload = queued
    transport.append_event(library.owner, b"\x00" * 12 + b"forged by someone without the secret")
    say(transport, payload, T.STARTED)
    assert library.pump() == 2
    held = library.held_events()
    assert held["set_aside"]["count"] == 1
    assert held["latest"][0]["reason"] == ("it was not sealed with this library's key (not sent by a worker "
                                           "holding the secret)")
    assert _job(payload).state == "running"
    assert transport.read_events(library.owner) == []  # the log moved on past both


def test_an_event_that_does_not_fit_its_schema_is_set_aside_with_the_reason(library, transport, queued):
    _, payload = queued
    bad = ev.job_event(T.PROGRESS, payload, WORKER, progress=150)
    transport.append_event(library.owner, ev.seal(transport.library_key(library.owner), bad))
    say(transport, payload, T.PROGRESS, progress=30)
    library.pump()
    [held] = library.held_events()["latest"]
    assert held["reason"].startswith("not a valid event: job:progress.progress: ")
    assert json.loads(held["event"])["progress"] == 150  # kept, for a person to look at
    assert _job(payload).progress == 30


def test_an_event_naming_another_document_is_set_aside(library, transport, queued):
    _, payload = queued
    say(transport, {**payload, "document_id": payload["document_id"] + 41}, T.STARTED)
    library.pump()
    [held] = library.held_events()["latest"]
    assert held["job_id"] == payload["job_id"]
    assert "but that job is the thumbnail job of document" in held["reason"]
    assert _job(payload).state == "queued"


def test_an_attempt_the_job_never_had_is_set_aside(library, transport, queued):
    _, payload = queued
    say(transport, {**payload, "attempt": 3}, T.STARTED)
    library.pump()
    [held] = library.held_events()["latest"]
    assert held["reason"] == f"it names attempt 3 of job {payload['job_id']}, which has had only 1"


def test_a_completion_without_the_files_its_result_names_is_set_aside(library, transport, queued, photo):
    _, payload = queued
    result, files = thumbnail_result(photo.read_bytes())
    del files["lg.webp"]
    say(transport, payload, T.COMPLETE, progress=100, result=result, files=files)
    library.pump()
    [held] = library.held_events()["latest"]
    assert held["reason"] == "its thumbnail result is not valid: the files lg.webp are missing"
    assert _job(payload).state == "queued"


def test_a_completion_applied_again_after_a_write_was_cut_short_leaves_whole_files(library, transport, queued, photo):
    """The owner was killed while it wrote a thumbnail (before the rows that name it were
    committed): applying the completion again replaces the half file with the whole one."""
    session, payload = queued
    result, files = thumbnail_result(photo.read_bytes())
    folder = library.artifacts_dir / payload["sha256"][:2] / payload["sha256"] / "thumbnail"
    folder.mkdir(parents=True)
    whole = base64.b64decode(files["md.webp"])
    (folder / "md.webp").write_bytes(whole[:len(whole) // 2])
    say(transport, payload, T.COMPLETE, progress=100, duration_ms=12, result=result, files=files)
    library.pump()
    thumbs = library.report(session)["documents"][0]["jobs"]["thumbnail"]["result"]["thumbnails"]
    for name in ("sm", "md", "lg"):
        assert Path(thumbs[name]["path"]).read_bytes() == base64.b64decode(files[f"{name}.webp"])
    assert sorted(p.name for p in folder.iterdir()) == ["lg.webp", "md.webp", "sm.webp"]  # nothing left beside them


def test_result_files_that_cannot_be_written_yet_are_deferred_then_applied(library, transport, queued, photo):
    _, payload = queued
    library.artifacts_dir.write_text("a file where the results folder goes")  # as good as a full disk
    _complete(transport, payload, photo.read_bytes())
    library.pump()
    held = library.held_events()
    assert held["deferred"]["count"] == 1 and "cannot write its result files" in held["latest"][0]["reason"]
    assert _job(payload).state == "queued"
    library.artifacts_dir.unlink()
    assert library.apply_deferred() == 1
    assert _job(payload).state == "complete"
    assert library.held_events()["deferred"]["count"] == 0


def test_a_heartbeat_renews_the_lease_of_the_attempt_it_names_only(library, transport, queued, clock, settings):
    _, payload = queued
    say(transport, payload, T.STARTED)
    library.pump()
    started = clock()
    assert _job(payload).lease_expires_at == started + settings.lease_seconds
    clock.advance(20)
    transport.emit(library.owner, ev.heartbeat(library.owner, WORKER, [[payload["job_id"], 1]]))
    library.pump()
    assert _job(payload).lease_expires_at == started + 20 + settings.lease_seconds
    clock.advance(5)
    transport.emit(library.owner, ev.heartbeat(library.owner, WORKER, [[payload["job_id"], 7]]))
    library.pump()
    assert _job(payload).lease_expires_at == started + 20 + settings.lease_seconds


def test_a_job_a_stopping_worker_put_back_is_queued_again(library, transport, queued):
    _, payload = queued
    say(transport, payload, T.STARTED)
    say(transport, payload, T.QUEUED, error="the worker stopped before the job finished; it went back to the queue")
    library.pump()
    job = _job(payload)
    assert (job.state, job.worker, job.attempt) == ("queued", None, 1)


def test_cancelled_ends_a_running_job(library, transport, queued):
    session, payload = queued
    say(transport, payload, T.STARTED)
    say(transport, payload, T.CANCELLED, error="cancelled while it ran")
    library.pump()
    assert library.report(session)["documents"][0]["status"] == "cancelled"


def test_an_event_of_a_removed_session_is_ignored(library, transport, queued, photo):
    session, payload = queued
    assert library.remove_session(session.id)
    _complete(transport, payload, photo.read_bytes())
    library.pump()
    assert library.held_events()["set_aside"]["count"] == 0
    assert not Job.select().exists()


@pytest.mark.jobs("thumbnail,ocr,summary")
def test_ocr_text_is_handed_to_the_summary_job(library, transport, photo):
    _, _ = library.submit([photo])
    assert transport.queued_payloads("summary") == []  # the summary waits for the text
    [ocr] = transport.queued_payloads("ocr")
    say(transport, ocr, T.COMPLETE, progress=100, result={"text": "Quarterly report: revenue rose 12 %.",
                                                          "confidence": 0.97, "lines": []})
    library.pump()
    [summary] = transport.queued_payloads("summary")
    assert summary["text"] == "Quarterly report: revenue rose 12 %."
    assert library.search("quarterly")[0]["document_id"] == ocr["document_id"]


@pytest.mark.jobs("thumbnail,ocr,summary")
def test_a_failed_ocr_ends_its_summary_saying_why(library, transport, photo):
    session, _ = library.submit([photo])
    [ocr] = transport.queued_payloads("ocr")
    say(transport, ocr, T.FAILED, error="the image is damaged or truncated", error_kind="permanent")
    library.pump()
    jobs = library.report(session)["documents"][0]["jobs"]
    assert jobs["summary"]["state"] == "cancelled"
    assert jobs["summary"]["error"] == "skipped: the ocr job failed"


@pytest.mark.jobs("ocr,summary")
def test_a_document_without_text_gets_a_skipped_summary_not_a_request(library, transport, photo):
    session, _ = library.submit([photo])
    [ocr] = transport.queued_payloads("ocr")
    say(transport, ocr, T.COMPLETE, progress=100, result={"text": "", "confidence": 0.0})
    library.pump()
    assert transport.queued_payloads("summary") == []
    summary = library.report(session)["documents"][0]["jobs"]["summary"]
    assert summary["state"] == "complete"
    assert summary["result"] == {"skipped": True, "reason": "no text was found in the document by ocr"}


def test_files_named_like_paths_never_leave_the_library(library, transport, queued, photo):
    result, files = thumbnail_result(photo.read_bytes())
    files["../../escape.webp"] = base64.b64encode(png_bytes(4, 4)).decode()
    _, payload = queued
    say(transport, payload, T.COMPLETE, progress=100, result=result, files=files)
    library.pump()
    assert library.held_events()["set_aside"]["count"] == 1
    assert not (library.data_dir.parent / "escape.webp").exists()
    assert not list(library.data_dir.parent.rglob("escape.webp"))


def test_a_full_batch_is_deleted_from_the_log_with_the_next_read_and_nothing_applies_twice(library, transport,
                                                                                          queued, monkeypatch):
    """When more events wait than a batch holds, a batch's entries leave the log in the same round trip
    as the next read (Redis: one pipeline); by the time the owner is caught up, or closes, the log is empty."""
    monkeypatch.setattr(library, "EVENT_BATCH", 3)
    _, payload = queued
    say(transport, payload, T.STARTED)
    for progress in (10, 20, 30, 40, 50, 60):
        say(transport, payload, T.PROGRESS, progress=progress)
    assert library.pump() == 3 and not library.caught_up
    assert library.pump() == 3
    assert len(transport.read_events(library.owner)) == 4  # the second batch, and one more
    assert library.catch_up() == 1
    assert transport.read_events(library.owner) == []
    assert _job(payload).progress == 60 and _timeline(payload) == [("job:started", 1)]

    say(transport, payload, T.PROGRESS, progress=70)
    for progress in (80, 90):
        say(transport, payload, T.PROGRESS, progress=progress)
    assert library.pump() == 3 and not library.caught_up
    library.close()
    assert transport.read_events(library.owner) == []
    assert _job(payload).progress == 90

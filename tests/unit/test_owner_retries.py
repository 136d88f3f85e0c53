"""Where a retry happens: only in the owner. A worker asks (job:retrying, see test_attempt.py); the
owner also gives up on an attempt whose worker went silent (lease expiry) or whose task vanished
(lost task), and a person retries a failed job. Each time the owner makes a new attempt and marks
the old one superseded, so a copy of it still anywhere can only be dropped."""

from __future__ import annotations

from snapdesk.engine import events as ev
from snapdesk.store.db import Job

from unit_helpers import kinds, opened, say, work, write_png

T = ev.EventType


def _only_job() -> Job:
    return Job.get()


def test_an_attempt_whose_worker_went_silent_is_replaced_once_its_lease_expires(library, transport, photo, clock,
                                                                                settings):
    library.submit([photo])
    [payload] = transport.queued_payloads("thumbnail")
    transport.huey("thumbnail").dequeue()  # a worker took the task ...
    say(transport, payload, T.STARTED)  # ... said it started, and was killed
    library.pump()
    clock.advance(settings.lease_seconds - 1)
    assert library.check_leases() == 0  # not yet
    clock.advance(2)
    assert library.check_leases() == 1
    job = _only_job()
    assert (job.state, job.attempt) == ("queued", 2)
    assert job.error.startswith("the worker running it (test-host:4242) stopped responding")
    assert transport.job_marks(library.owner, job.id, 1, job.priority) == (False, True)  # attempt 1 is superseded
    work(library, transport)
    job = _only_job()
    assert (job.state, job.attempt) == ("complete", 2)


def test_leases_are_judged_only_once_the_owner_caught_up_with_the_log(library, transport, tmp_path, clock,
                                                                      settings):
    """A backlog of events must never make a lease look expired: the heartbeat that renews it may
    be waiting behind the backlog."""
    library.submit([write_png(tmp_path / "in" / "a.png"), write_png(tmp_path / "in" / "b.png", 64, 48)])
    running, busy = transport.queued_payloads("thumbnail")
    say(transport, running, T.STARTED)
    library.pump()
    clock.advance(settings.lease_seconds + 5)  # the owner was away: its log filled meanwhile
    for percent in range(getattr(library, "EVENT_BATCH", 500) + 50):
        say(transport, busy, T.PROGRESS, progress=percent % 100)
    transport.emit(library.owner, ev.heartbeat(library.owner, {"id": "w", "host": "h", "pid": 1},
                                               [[running["job_id"], 1]]))
    library.pump()  # one batch: not caught up yet
    assert library.check_leases() == 0
    library.catch_up()
    assert library.check_leases() == 0
    assert Job.get_by_id(running["job_id"]).attempt == 1  # the heartbeat renewed it, on the owner's clock


def test_the_last_attempt_lost_to_a_silent_worker_fails_the_job(library, transport, photo, clock, settings):
    library.submit([photo])
    for _ in range(settings.retry_attempts):
        [payload] = transport.queued_payloads("thumbnail")
        transport.huey("thumbnail").dequeue()
        say(transport, payload, T.STARTED)
        library.pump()
        clock.advance(settings.lease_seconds + 1)
        library.check_leases()
    job = _only_job()
    assert job.state == "failed" and job.error.endswith("(gave up after 3 attempts)")
    assert transport.queued_payloads("thumbnail") == []


def test_a_task_lost_before_any_worker_reported_it_is_queued_again_without_using_an_attempt(
        library, transport, photo, clock, settings):
    library.submit([photo])
    transport.huey("thumbnail").dequeue()  # taken by a worker killed at once: no event ever comes
    library.pump()
    assert library.check_lost_tasks() == 0  # quiet for less than the grace
    clock.advance(2 * settings.lease_seconds + 1)
    assert library.check_lost_tasks() == 1
    job = _only_job()
    assert (job.state, job.attempt, job.max_attempts) == ("queued", 2, settings.retry_attempts + 1)
    assert job.error == "its task was lost before it ran; queued again"
    work(library, transport)
    assert _only_job().state == "complete"


def test_a_task_still_on_its_queue_is_not_lost(library, transport, photo, clock, settings):
    library.submit([photo])
    clock.advance(10 * settings.lease_seconds)
    library.pump()
    assert library.check_lost_tasks() == 0


def test_a_person_retrying_a_permanent_failure_needs_new_content_or_force(library, transport, tmp_path):
    fake = tmp_path / "in" / "scan.png"
    fake.parent.mkdir()
    fake.write_text("not an image yet")
    library.submit([fake])
    work(library, transport)
    job = _only_job()
    assert (job.state, job.error_kind) == ("failed", "permanent")

    held_back: list[int] = []
    assert library.retry(failed=True, held_back=held_back) == []
    assert held_back == [job.id]  # the same bytes would fail the same way

    write_png(fake)  # the person fixed the file
    [retried] = library.retry([job.id])
    assert retried.id == job.id
    job = _only_job()
    assert (job.state, job.attempt, job.priority) == ("queued", 2, 10)
    work(library, transport)
    assert _only_job().state == "complete"


def test_a_forced_retry_runs_again_with_a_fresh_set_of_attempts(library, transport, tmp_path, settings):
    fake = tmp_path / "in" / "scan.png"
    fake.parent.mkdir()
    fake.write_text("still not an image")
    library.submit([fake])
    work(library, transport)
    library.retry(failed=True, force=True)
    job = _only_job()
    assert (job.state, job.attempt, job.max_attempts) == ("queued", 2, 1 + settings.retry_attempts)
    transport.run_next()
    assert kinds(opened(transport, library.owner)) == ["job:started", "job:failed"]


def test_a_retried_job_that_was_cancelled_runs_although_its_cancel_mark_stays_in_the_transport(
        library, transport, photo):
    session, _ = library.submit([photo])
    library.cancel(session_id=session.id)
    work(library, transport)
    assert _only_job().state == "cancelled"
    library.retry([_only_job().id])
    assert transport.is_cancelled(library.owner, _only_job().id) is False
    work(library, transport)
    assert _only_job().state == "complete"

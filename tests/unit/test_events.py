"""The events module: how an event is sealed and opened, and the schema it must fit to be applied."""

from __future__ import annotations

import json

import pytest

from snapdesk.engine import events as ev

T = ev.EventType
WORKER = {"id": "host:1:abc", "host": "host", "pid": 1}
PAYLOAD = {"job_id": 5, "job_type": "thumbnail", "document_id": 3, "session_id": 2, "owner": "lib-a", "attempt": 1,
           "max_attempts": 3}
KEY = ev.library_key("the secret", "lib-a")


def _open(event: dict, key: bytes = KEY, owner: str = "lib-a") -> ev.Event:
    return ev.open_sealed(key, owner, ev.seal(key, event))


def _reason(event: dict) -> str:
    with pytest.raises(ev.BadEvent) as caught:
        _open(event)
    return str(caught.value)


def test_a_sealed_event_opens_as_its_typed_model():
    event = _open(ev.job_event(T.COMPLETE, PAYLOAD, WORKER, progress=100, duration_ms=40,
                               result={"text": "hello", "confidence": 0.9}, files={"sm.webp": "AAAA"}))
    assert isinstance(event, ev.JobComplete)
    assert (event.type, event.job_id, event.attempt, event.progress) == (T.COMPLETE, 5, 1, 100)
    assert event.worker.name == "host:1" and event.files == {"sm.webp": "AAAA"}


def test_sealing_hides_the_body_and_each_seal_differs():
    event = ev.job_event(T.FAILED, PAYLOAD, WORKER, error="secret words", error_kind="permanent")
    one, two = ev.seal(KEY, event), ev.seal(KEY, event)
    assert one != two and b"secret words" not in one


def test_an_event_sealed_with_another_secret_is_refused():
    other = ev.library_key("another secret", "lib-a")
    with pytest.raises(ev.BadEvent, match="not sealed with this library's key"):
        ev.open_sealed(KEY, "lib-a", ev.seal(other, ev.job_event(T.STARTED, PAYLOAD, WORKER)))


def test_an_event_sealed_for_another_library_does_not_open_in_this_one():
    theirs = {**PAYLOAD, "owner": "lib-b"}
    sealed = ev.seal(KEY, ev.job_event(T.STARTED, theirs, WORKER))  # right key, other library's name
    with pytest.raises(ev.BadEvent, match="not sealed with this library's key"):
        ev.open_sealed(KEY, "lib-a", sealed)


def test_each_library_has_its_own_key():
    assert ev.library_key("s", "lib-a") != ev.library_key("s", "lib-b") != ev.library_key("t", "lib-a")


@pytest.mark.parametrize("sealed", [b"", b"short", "not even bytes", b"\x00" * 64])
def test_bytes_that_are_not_a_sealed_event_are_refused(sealed):
    with pytest.raises(ev.BadEvent):
        ev.open_sealed(KEY, "lib-a", sealed)


@pytest.mark.parametrize("change, where", [
    ({"progress": 101}, "job:progress.progress"),
    ({"progress": -1}, "job:progress.progress"),
    ({"job_id": 0}, "job:progress.job_id"),
    ({"attempt": "first"}, "job:progress.attempt"),
    ({"worker": {"host": "h"}}, "job:progress.worker.id"),
])
def test_a_field_out_of_its_range_is_named_in_the_reason(change, where):
    reason = _reason({**ev.job_event(T.PROGRESS, PAYLOAD, WORKER, progress=10), **change})
    assert reason.startswith(f"not a valid event: {where}: ")


def test_the_reason_counts_the_problems():
    reason = _reason({**ev.job_event(T.PROGRESS, PAYLOAD, WORKER), "job_id": 0, "attempt": 0})
    assert reason.endswith("(2 problems)")


def test_an_unknown_type_is_refused():
    assert "does not match any of the expected tags" in _reason(ev.job_event(T.STARTED, PAYLOAD, WORKER)
                                                                 | {"type": "job:exploded"})


def test_a_failure_must_say_why_and_of_which_kind():
    assert _reason(ev.job_event(T.FAILED, PAYLOAD, WORKER, error="broken")).startswith(
        "not a valid event: job:failed.error_kind: ")
    assert _reason(ev.job_event(T.FAILED, PAYLOAD, WORKER, error="broken", error_kind="maybe")).startswith(
        "not a valid event: job:failed.error_kind: ")
    assert isinstance(_open(ev.job_event(T.FAILED, PAYLOAD, WORKER, error="broken", error_kind="permanent")),
                      ev.JobEnded)


def test_a_retry_cannot_ask_to_wait_more_than_a_week():
    event = ev.job_event(T.RETRYING, PAYLOAD, WORKER, error="busy", error_kind="retryable",
                         delay_ms=8 * 86400 * 1000)
    assert "delay_ms" in _reason(event)


@pytest.mark.parametrize("name", ["../lg.webp", "/etc/passwd", "sub/dir.webp", ".hidden", "a" * 101, ""])
def test_a_completion_file_name_is_a_bare_name_or_the_event_is_refused(name):
    event = ev.job_event(T.COMPLETE, PAYLOAD, WORKER, result={}, files={name: "AAAA"})
    assert "files" in _reason(event)


def test_fields_a_newer_worker_adds_are_ignored():
    event = _open(ev.job_event(T.STARTED, PAYLOAD, WORKER, gpu="yes"))
    assert not hasattr(event, "gpu")


def test_a_heartbeat_names_attempts_of_jobs():
    beat = _open(ev.heartbeat("lib-a", WORKER, [[5, 1], [6, 2]]))
    assert isinstance(beat, ev.Heartbeat) and beat.jobs == [(5, 1), (6, 2)]
    assert "jobs" in _reason(ev.heartbeat("lib-a", WORKER, [[5]]))


def test_a_kept_event_reads_back_the_same_without_its_seal():
    event = _open(ev.job_event(T.RETRYING, PAYLOAD, WORKER, error="busy", error_kind="retryable", delay_ms=500))
    assert ev.parse_trusted(ev.plain(event)) == event
    with pytest.raises(ev.BadEvent):
        ev.parse_trusted(json.dumps({"type": "job:started"}))


def test_a_job_event_repeats_the_payload_fields_so_it_applies_on_its_own():
    event = ev.job_event(T.QUEUED, {**PAYLOAD, "path": "/secret/place.png"}, WORKER)
    assert {k: event[k] for k in ev.JOB_FIELDS} == PAYLOAD
    assert "path" not in event and event["progress"] == 0


def test_worker_identities_differ_within_one_process():
    assert ev.worker_identity()["id"] != ev.worker_identity()["id"]

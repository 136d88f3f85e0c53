"""The typed vocabulary tells the truth: the TypedDicts that the type checker (``make typecheck``)
holds the engine to are the shapes that really travel (a task's payload, the worker registry), and
agree with the pydantic schemas the owner checks every event against."""

from __future__ import annotations

from snapdesk.engine import events as ev
from snapdesk.engine.transport import LiveWorker


def test_a_workers_identity_is_what_the_event_schema_checks():
    assert set(ev.WorkerInfo.__annotations__) == set(ev.Worker.model_fields)
    ev.Worker.model_validate(ev.worker_identity())


def test_every_job_event_repeats_fields_every_task_has():
    assert set(ev.JOB_FIELDS) <= ev.JobPayload.__required_keys__
    for model in (ev.JobEvent, ev.JobEnded, ev.JobComplete):
        assert set(ev.JOB_FIELDS) <= set(model.model_fields)


def test_a_queued_task_has_the_keys_of_its_type(library, transport, photo):
    library.submit([photo])
    [payload] = transport.queued_payloads("thumbnail")
    assert ev.JobPayload.__required_keys__ <= set(payload) <= set(ev.JobPayload.__annotations__)
    assert set(payload["limits"]) <= set(ev.Limits.__annotations__)


def test_a_registry_entry_has_the_keys_of_its_type(transport):
    transport.heartbeat({**ev.worker_identity(), "queues": ["thumbnail"], "concurrency": {"thumbnail": 2}})
    [entry] = transport.workers()
    assert LiveWorker.__required_keys__ <= set(entry) <= set(LiveWorker.__annotations__)
    assert entry["queues"] == ["thumbnail"]

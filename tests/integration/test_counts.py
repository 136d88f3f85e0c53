"""A session's counts by status are kept as the library changes (triggers, migration 0008): after
any mix of job changes they equal a recount of every document from its jobs."""

import random
from collections import Counter

from snapdesk.config import load_settings
from snapdesk.engine.library import Library, document_status
from snapdesk.store.db import JOB_STATES, Document, Job, UploadSession

from helpers import write_photos


def recount(session) -> Counter:
    states: dict[int, list[str]] = {doc.id: [] for doc in Document.select().where(Document.session == session)}
    for doc_id, state in Job.select(Job.document, Job.state).where(Job.session == session).tuples():
        states[doc_id].append(state)
    counts = Counter(document_status(s) for s in states.values())
    counts["total"] = len(states)
    return counts


def test_counts_follow_every_change_to_jobs_and_documents(tmp_path):
    rng = random.Random(11)
    settings = load_settings(env={}, data_dir=tmp_path / "data", local_workers="no")
    with Library(settings) as library:
        for n in range(3):
            write_photos(tmp_path / f"in{n}", 12, start_seed=40 * n)
        sessions = [library.submit([tmp_path / f"in{n}"])[0] for n in range(3)]
        for session in sessions:
            assert library.document_counts(session) == recount(session)
            assert library.document_counts(session)["queued"] == 12
        jobs = list(Job.select())
        for step in range(300):
            job = rng.choice(jobs)
            action = rng.random()
            if action < 0.7:
                Job.update(state=rng.choice(JOB_STATES)).where(Job.id == job.id).execute()
            elif action < 0.85:
                library.cancel([job.id])
            else:
                library.retry([job.id], force=True)
        library.remove_session(sessions[1].id)
        for session in (sessions[0], sessions[2]):
            assert library.document_counts(session) == recount(session)
        assert library.document_counts(sessions[1]) == Counter(total=0)
        assert not UploadSession.get_or_none(UploadSession.id == sessions[1].id)

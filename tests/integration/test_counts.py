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


def test_a_library_whose_jobs_were_processing_opens_with_them_running(tmp_path):
    """Migration 0012: "processing" (the word before) becomes "running", and the counts follow."""
    import importlib.util

    import peewee

    from snapdesk.store import db as store

    settings = load_settings(env={}, data_dir=tmp_path / "data", local_workers="no")
    with Library(settings) as library:
        write_photos(tmp_path / "in", 3)
        session, _ = library.submit([tmp_path / "in"])
        session_id = session.id
    # The library as an earlier version left it: 0012 not applied, 0008's triggers, jobs "processing".
    spec = importlib.util.spec_from_file_location("m0008", store.MIGRATIONS_DIR / "0008_indexes_for_counts.py")
    m0008 = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(m0008)
    old = peewee.SqliteDatabase(str(tmp_path / "data" / "library.db"))
    old.execute_sql("DELETE FROM schema_migration WHERE name LIKE '0012%'")
    doc = "NEW.document_id"
    old.execute_sql("DROP TRIGGER job_state_changed")
    old.execute_sql("CREATE TRIGGER job_state_changed AFTER UPDATE OF state ON job WHEN OLD.state IS NOT NEW.state "
                    f"BEGIN UPDATE document SET status = {m0008.STATUS_OF.format(doc=doc)} WHERE id = {doc}; END")
    old.execute_sql("UPDATE job SET state = 'processing' WHERE type = 'thumbnail'")
    assert old.execute_sql("SELECT COUNT(*) FROM document WHERE status = 'running'").fetchone()[0] == 3
    old.close()

    with Library(settings) as library:
        states = Counter(state for (state,) in Job.select(Job.state).where(Job.type == "thumbnail").tuples())
        assert states == {"running": 3}
        counts = library.document_counts(store.UploadSession.get_by_id(session_id))
        assert counts["running"] == 3 and counts == recount(session_id)
        Job.update(state="complete").where(Job.type == "thumbnail").execute()  # the new triggers read "running"
        assert library.document_counts(store.UploadSession.get_by_id(session_id)) == recount(session_id)

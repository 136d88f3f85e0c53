"""A session's documents counted by status as the library changes, never recounted.

Each document keeps its status (one word from its jobs' states: failed, running, queued,
cancelled or complete; ``engine.library.document_status`` says the same in Python), kept by
triggers on ``job``; ``session_count`` keeps how many documents of each session have each status,
kept by triggers on ``document``. Every path that changes a job (events applied in bulk, a retry,
a cancel, a removed session) keeps them right without knowing of them, and a session's counts
are one indexed read however large the library grows.

Also indexes for the owner's regular queries: a session's jobs by state (is it finished?) and the
documents whose copies are in Redis."""

import peewee
from playhouse.migrate import SchemaMigrator

STATUS_OF = """(SELECT CASE
    WHEN COUNT(*) = 0 THEN 'complete'
    WHEN SUM(state = 'failed') > 0 THEN 'failed'
    WHEN SUM(state = 'processing') > 0 THEN 'running'
    WHEN SUM(state IN ('pending', 'queued')) > 0 THEN 'queued'
    WHEN SUM(state = 'cancelled') = COUNT(*) THEN 'cancelled'
    ELSE 'complete' END FROM job WHERE job.document_id = {doc})"""


def _count(session: str, status: str, delta: int) -> str:
    return (f"INSERT INTO session_count (session_id, status, n) VALUES ({session}, {status}, {delta}) "
            f"ON CONFLICT (session_id, status) DO UPDATE SET n = n + ({delta});")


def up(migrator: SchemaMigrator, db: peewee.Database) -> None:
    db.execute_sql("CREATE INDEX IF NOT EXISTS job_session_state ON job (session_id, state)")
    db.execute_sql("CREATE INDEX IF NOT EXISTS document_blob_in_flight ON document (blob_in_flight) "
                   "WHERE blob_in_flight")
    db.execute_sql("ALTER TABLE document ADD COLUMN status TEXT NOT NULL DEFAULT 'complete'")
    db.execute_sql("CREATE TABLE session_count (session_id INTEGER NOT NULL, status TEXT NOT NULL, "
                   "n INTEGER NOT NULL, PRIMARY KEY (session_id, status)) WITHOUT ROWID")
    db.execute_sql(f"UPDATE document SET status = {STATUS_OF.format(doc='document.id')}")
    db.execute_sql("INSERT INTO session_count (session_id, status, n) "
                   "SELECT session_id, status, COUNT(*) FROM document GROUP BY session_id, status")
    for name, event, doc in (("job_inserted", "AFTER INSERT ON job", "NEW.document_id"),
                             ("job_state_changed", "AFTER UPDATE OF state ON job WHEN OLD.state IS NOT NEW.state",
                              "NEW.document_id"),
                             ("job_deleted", "AFTER DELETE ON job", "OLD.document_id")):
        db.execute_sql(f"CREATE TRIGGER {name} {event} BEGIN "
                       f"UPDATE document SET status = {STATUS_OF.format(doc=doc)} WHERE id = {doc}; END")
    db.execute_sql("CREATE TRIGGER document_inserted AFTER INSERT ON document BEGIN "
                   f"{_count('NEW.session_id', 'NEW.status', 1)} END")
    db.execute_sql("CREATE TRIGGER document_status_changed AFTER UPDATE OF status ON document "
                   "WHEN OLD.status IS NOT NEW.status BEGIN "
                   f"{_count('OLD.session_id', 'OLD.status', -1)} {_count('NEW.session_id', 'NEW.status', 1)} END")
    db.execute_sql("CREATE TRIGGER document_deleted AFTER DELETE ON document BEGIN "
                   f"{_count('OLD.session_id', 'OLD.status', -1)} END")
    db.execute_sql("CREATE TRIGGER session_deleted AFTER DELETE ON upload_session BEGIN "
                   "DELETE FROM session_count WHERE session_id = OLD.id; END")

"""A job a worker is running is "running", as its document is and as the window says; it was
"processing" in the DB and the session JSON. The triggers that keep ``document.status`` read the
new word."""

import peewee
from playhouse.migrate import SchemaMigrator

STATUS_OF = """(SELECT CASE
    WHEN COUNT(*) = 0 THEN 'complete'
    WHEN SUM(state = 'failed') > 0 THEN 'failed'
    WHEN SUM(state = 'running') > 0 THEN 'running'
    WHEN SUM(state IN ('pending', 'queued')) > 0 THEN 'queued'
    WHEN SUM(state = 'cancelled') = COUNT(*) THEN 'cancelled'
    ELSE 'complete' END FROM job WHERE job.document_id = {doc})"""

TRIGGERS = (("job_inserted", "AFTER INSERT ON job", "NEW.document_id"),
            ("job_state_changed", "AFTER UPDATE OF state ON job WHEN OLD.state IS NOT NEW.state", "NEW.document_id"),
            ("job_deleted", "AFTER DELETE ON job", "OLD.document_id"))


def up(migrator: SchemaMigrator, db: peewee.Database) -> None:
    for name, event, doc in TRIGGERS:
        db.execute_sql(f"DROP TRIGGER IF EXISTS {name}")
        db.execute_sql(f"CREATE TRIGGER {name} {event} BEGIN "
                       f"UPDATE document SET status = {STATUS_OF.format(doc=doc)} WHERE id = {doc}; END")
    db.execute_sql("UPDATE job SET state = 'running' WHERE state = 'processing'")

"""When each photo was taken, and every file a session's scan left out, by name.

``document.taken_at`` (seconds since the epoch) is what the grid sorts by: the date the picture's
metadata gives, else the file's modification time; NULL until its thumbnail job completes (the
documents thumbnailed before this migration get their file's time: their metadata was not read).
``skipped_file`` holds each skipped path with its reason (unsupported, empty, too_large, hidden,
unreadable, missing, duplicate) and a sentence about it; at most ``Scanner.SKIPPED_PATHS_KEPT`` a
session (the rest are only counted, in ``upload_session.skipped``).
"""

import peewee
from playhouse.migrate import SchemaMigrator


def up(migrator: SchemaMigrator, db: peewee.Database) -> None:
    db.execute_sql("ALTER TABLE document ADD COLUMN taken_at REAL")
    db.execute_sql("UPDATE document SET taken_at = mtime WHERE id IN "
                   "(SELECT document_id FROM job WHERE type = 'thumbnail' AND state = 'complete')")
    db.execute_sql("""CREATE TABLE skipped_file (
        id INTEGER PRIMARY KEY,
        session_id INTEGER NOT NULL REFERENCES upload_session (id) ON DELETE CASCADE,
        path TEXT NOT NULL,
        reason TEXT NOT NULL,
        detail TEXT NOT NULL)""")
    db.execute_sql("CREATE INDEX skipped_file_session ON skipped_file (session_id, id)")

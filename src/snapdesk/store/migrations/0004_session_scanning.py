"""A session's folders are scanned while its first documents already run: mark the scan."""


def up(migrator, db):
    db.execute_sql("ALTER TABLE upload_session ADD COLUMN scanning INTEGER NOT NULL DEFAULT 0")

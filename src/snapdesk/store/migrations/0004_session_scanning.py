"""A session's folders are scanned while its first documents already run: mark the scan."""

import peewee
from playhouse.migrate import SchemaMigrator


def up(migrator: SchemaMigrator, db: peewee.Database) -> None:
    db.execute_sql("ALTER TABLE upload_session ADD COLUMN scanning INTEGER NOT NULL DEFAULT 0")

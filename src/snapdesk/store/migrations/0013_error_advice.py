"""A failure may say what to do about it (``JobError.advice``, NULL for most): a model that cannot
follow the description's schema is not cured by fixing the file, as other permanent failures are."""

import peewee
from playhouse.migrate import SchemaMigrator


def up(migrator: SchemaMigrator, db: peewee.Database) -> None:
    db.execute_sql("ALTER TABLE job ADD COLUMN error_advice TEXT")

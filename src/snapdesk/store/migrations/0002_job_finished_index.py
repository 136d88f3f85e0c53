"""Statistics and retention look up jobs by when they finished."""

import peewee
from playhouse.migrate import SchemaMigrator


def up(migrator: SchemaMigrator, db: peewee.Database) -> None:
    db.execute_sql("CREATE INDEX job_finished_at ON job (finished_at)")

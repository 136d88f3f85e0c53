"""Statistics and retention look up jobs by when they finished."""


def up(migrator, db):
    db.execute_sql("CREATE INDEX job_finished_at ON job (finished_at)")

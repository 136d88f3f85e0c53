"""Ids are never handed out twice, and events that cannot be applied are kept where a person sees them.

Sessions, documents and jobs get AUTOINCREMENT keys: without it SQLite gives a removed job's id
to the next new one, and a removed job's late events, marks or tasks would land on it. SQLite
cannot add AUTOINCREMENT to a table, so each is rebuilt (with foreign keys off, so that dropping
the old table cascades to nothing), its rows and indexes kept.

``held_event`` keeps the events the owner did not apply: set aside (forged, malformed, not
matching their job), or deferred (their result files could not be written yet; retried).
"""

import re

import peewee
from playhouse.migrate import SchemaMigrator

atomic = False  # PRAGMA foreign_keys cannot change inside a transaction

TABLES = ("upload_session", "document", "job")


def up(migrator: SchemaMigrator, db: peewee.Database) -> None:
    db.execute_sql("PRAGMA foreign_keys = OFF")
    try:
        with db.atomic():
            for table in TABLES:
                (sql,) = db.execute_sql("SELECT sql FROM sqlite_master WHERE type = 'table' AND name = ?",
                                        (table,)).fetchone()
                indexes = [s for (s,) in db.execute_sql(
                    "SELECT sql FROM sqlite_master WHERE type = 'index' AND tbl_name = ? AND sql IS NOT NULL",
                    (table,))]
                new_sql, n = re.subn(r"\bid INTEGER NOT NULL PRIMARY KEY\b", "id INTEGER PRIMARY KEY AUTOINCREMENT",
                                     sql, count=1)
                assert n == 1, f"unexpected schema of {table}: {sql}"
                new_sql = new_sql.replace(f"CREATE TABLE {table}", f"CREATE TABLE {table}__new", 1)
                db.execute_sql(new_sql)
                db.execute_sql(f"INSERT INTO {table}__new SELECT * FROM {table}")
                db.execute_sql(f"DROP TABLE {table}")
                db.execute_sql(f"ALTER TABLE {table}__new RENAME TO {table}")
                for index in indexes:
                    db.execute_sql(index)
            db.execute_sql("""CREATE TABLE held_event (
                id INTEGER PRIMARY KEY AUTOINCREMENT,
                kind TEXT NOT NULL,
                reason TEXT NOT NULL,
                received_at REAL NOT NULL,
                job_id INTEGER,
                body TEXT NOT NULL)""")
            db.execute_sql("CREATE INDEX held_event_kind ON held_event (kind)")
            problems = db.execute_sql("PRAGMA foreign_key_check").fetchall()
            assert not problems, f"foreign keys broken by the rebuild: {problems[:5]}"
    finally:
        db.execute_sql("PRAGMA foreign_keys = ON")

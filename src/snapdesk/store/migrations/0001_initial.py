"""The first schema: upload sessions, documents, jobs, their history and artifacts."""

import peewee
from playhouse.migrate import SchemaMigrator

STATEMENTS = [
    """CREATE TABLE meta (
        key TEXT NOT NULL PRIMARY KEY,
        value TEXT NOT NULL)""",
    """CREATE TABLE upload_session (
        id INTEGER NOT NULL PRIMARY KEY,
        name TEXT NOT NULL,
        created_at REAL NOT NULL,
        paths TEXT NOT NULL,
        skipped TEXT NOT NULL)""",
    """CREATE TABLE document (
        id INTEGER NOT NULL PRIMARY KEY,
        session_id INTEGER NOT NULL REFERENCES upload_session (id) ON DELETE CASCADE,
        path TEXT NOT NULL,
        size INTEGER NOT NULL,
        sha256 TEXT NOT NULL,
        kind TEXT NOT NULL,
        mtime REAL NOT NULL,
        width INTEGER,
        height INTEGER,
        blob_in_flight INTEGER NOT NULL DEFAULT 0,
        created_at REAL NOT NULL)""",
    "CREATE INDEX document_session_id ON document (session_id)",
    "CREATE INDEX document_sha256 ON document (sha256)",
    """CREATE TABLE job (
        id INTEGER NOT NULL PRIMARY KEY,
        document_id INTEGER NOT NULL REFERENCES document (id) ON DELETE CASCADE,
        session_id INTEGER NOT NULL REFERENCES upload_session (id) ON DELETE CASCADE,
        type TEXT NOT NULL,
        state TEXT NOT NULL,
        attempt INTEGER NOT NULL DEFAULT 1,
        max_attempts INTEGER NOT NULL,
        priority INTEGER NOT NULL DEFAULT 0,
        progress INTEGER NOT NULL DEFAULT 0,
        created_at REAL NOT NULL,
        queued_at REAL,
        not_before REAL,
        started_at REAL,
        finished_at REAL,
        lease_expires_at REAL,
        duration_ms INTEGER,
        worker TEXT,
        error TEXT,
        error_kind TEXT,
        result TEXT,
        reused_from INTEGER)""",
    "CREATE INDEX job_state ON job (state)",
    "CREATE INDEX job_session_id ON job (session_id)",
    "CREATE UNIQUE INDEX job_document_type ON job (document_id, type)",
    """CREATE TABLE job_event (
        id INTEGER NOT NULL PRIMARY KEY,
        job_id INTEGER NOT NULL REFERENCES job (id) ON DELETE CASCADE,
        type TEXT NOT NULL,
        attempt INTEGER NOT NULL,
        at REAL NOT NULL,
        worker TEXT,
        duration_ms INTEGER,
        error TEXT)""",
    "CREATE INDEX job_event_job_id ON job_event (job_id)",
    """CREATE TABLE artifact (
        id INTEGER NOT NULL PRIMARY KEY,
        document_id INTEGER NOT NULL REFERENCES document (id) ON DELETE CASCADE,
        job_id INTEGER NOT NULL REFERENCES job (id) ON DELETE CASCADE,
        name TEXT NOT NULL,
        path TEXT NOT NULL,
        size INTEGER NOT NULL,
        width INTEGER,
        height INTEGER)""",
    "CREATE UNIQUE INDEX artifact_job_name ON artifact (job_id, name)",
]


def up(migrator: SchemaMigrator, db: peewee.Database) -> None:
    for statement in STATEMENTS:
        db.execute_sql(statement)

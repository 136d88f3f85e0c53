"""A Live Photo's clip, recorded with its still's document.

A Live Photo (IMG_0001.HEIC and IMG_0001.MOV in one folder) is one document, the still; ``live_clip``
holds its clip: the file's path, size and modification time at import, and its length in seconds
(``duration``, read from the clip's movie header; NULL when it could not be read). One row at most a
document, gone with it.
"""

import peewee
from playhouse.migrate import SchemaMigrator


def up(migrator: SchemaMigrator, db: peewee.Database) -> None:
    db.execute_sql("""CREATE TABLE live_clip (
        document_id INTEGER PRIMARY KEY REFERENCES document (id) ON DELETE CASCADE,
        path TEXT NOT NULL,
        size INTEGER NOT NULL,
        mtime REAL NOT NULL,
        duration REAL)""")

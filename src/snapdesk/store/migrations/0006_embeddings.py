"""The vectors of search by meaning: one per content hash, quantised to 6 bits a number.

A vector of ``dim`` numbers is kept as ``dim * 6 / 8`` bytes and one scale (see
``engine/meaning.quantise``): 1152 bytes for 1536 numbers, three rows to a 4 kB page, so
100,000 documents take about 140 MB. Keyed by content hash, so a document added again (reusing earlier results) finds its
vector. Rows are only appended or replaced (a new id), so a reader can load new rows by id.
"""

import peewee
from playhouse.migrate import SchemaMigrator


def up(migrator: SchemaMigrator, db: peewee.Database) -> None:
    db.execute_sql("""CREATE TABLE embedding (
        id INTEGER PRIMARY KEY AUTOINCREMENT,
        sha256 TEXT NOT NULL UNIQUE,
        model TEXT NOT NULL,
        dim INTEGER NOT NULL,
        scale REAL NOT NULL,
        vector BLOB NOT NULL,
        created_at REAL NOT NULL)""")
    db.execute_sql("CREATE INDEX embedding_model ON embedding (model, id)")

"""What duplicates are found by: each picture's perceptual hash and grey signature.

One ``likeness`` row per content hash (as ``embedding``), written when its thumbnail job completes
(``processors/similarity.py`` makes it, ``engine/duplicates.py`` reads it): ``phash`` is the 64-bit
DCT hash as a signed INTEGER, ``signature`` the small picture (64 x 64 grey, 32 x 32 colour: 6144
bytes) that decides between candidates. Keyed by content, so a document added again, which reuses its earlier
thumbnail, has its row already; the rows of content no document has any more go with the last
session that had it. Pictures thumbnailed before this migration have no row, so they are in no
group of duplicates until they are processed again.
"""

import peewee
from playhouse.migrate import SchemaMigrator


def up(migrator: SchemaMigrator, db: peewee.Database) -> None:
    db.execute_sql("""CREATE TABLE likeness (
        sha256 TEXT NOT NULL PRIMARY KEY,
        phash INTEGER NOT NULL,
        signature BLOB NOT NULL)""")

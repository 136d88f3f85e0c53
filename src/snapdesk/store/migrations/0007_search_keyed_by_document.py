"""The search index keyed by document: its rowid is the document's id, so replacing or removing a
document's row is an indexed operation (a column marked UNINDEXED is scanned row by row)."""

import peewee
from playhouse.migrate import SchemaMigrator


def up(migrator: SchemaMigrator, db: peewee.Database) -> None:
    columns = [row[1] for row in db.execute_sql("PRAGMA table_info(search_index)").fetchall()]
    kept = [c for c in columns if c != "document_id"]
    if len(kept) == len(columns):
        return  # already keyed by rowid
    names = ", ".join(kept)
    db.execute_sql(f"CREATE VIRTUAL TABLE search_index_keyed USING fts5({names}, "
                   "tokenize = 'unicode61 remove_diacritics 2')")
    db.execute_sql(f"INSERT INTO search_index_keyed (rowid, {names}) "
                   f"SELECT document_id, {names} FROM search_index WHERE document_id IS NOT NULL")
    db.execute_sql("DROP TABLE search_index")
    db.execute_sql("ALTER TABLE search_index_keyed RENAME TO search_index")

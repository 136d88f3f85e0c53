"""Full-text search over file names, titles, summaries and OCR text (SQLite FTS5)."""

import peewee
from playhouse.migrate import SchemaMigrator


def up(migrator: SchemaMigrator, db: peewee.Database) -> None:
    db.execute_sql("CREATE VIRTUAL TABLE search_index USING fts5("
                   "document_id UNINDEXED, name, title, summary, text, tokenize = 'unicode61 remove_diacritics 2')")

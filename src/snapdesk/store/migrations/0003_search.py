"""Full-text search over file names, titles, summaries and OCR text (SQLite FTS5)."""


def up(migrator, db):
    db.execute_sql("CREATE VIRTUAL TABLE search_index USING fts5("
                   "document_id UNINDEXED, name, title, summary, text, tokenize = 'unicode61 remove_diacritics 2')")

"""The library DB: models, connection and migrations."""

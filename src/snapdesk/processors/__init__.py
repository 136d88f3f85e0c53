"""Pure processors: each takes a path or bytes and returns a result.

They know nothing of Huey, the library DB or Qt, and are tested directly.
"""

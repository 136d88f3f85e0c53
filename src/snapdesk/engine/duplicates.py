"""Duplicates: the photos of the library that are the same picture, in groups, the original first.

The thumbnail job measures each picture (``processors/similarity.py``: a perceptual hash and a
grey signature) and its result carries that ``likeness``; the projection keeps it in the
``likeness`` table, by content hash (``on_complete``), and leaves it out of the job's stored
result. ``groups`` reads the table (a read-only query: the CLI's read-only library and the
window's owner thread alike), proposes pairs whose hashes are near and groups those whose
signatures agree: the same picture resized, re-encoded, re-oriented or slightly cropped, never
two shots of one scene (see docs/DUPLICATES.md).

* Photos and camera RAWs only (``KINDS``): not PDFs or videos.
* A group's ``original`` is its largest picture: the most pixels, then the most bytes, then the
  first added. The others are its ``copies``, largest first.
* Documents of one content (the same file added in two sessions) are one picture here, shown as
  the first of them: exact copies are found at import, not here.
* A picture thumbnailed before the likeness existed has no row: it is in no group until it is
  processed again.
"""

from __future__ import annotations

import sqlite3
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

from ..processors import similarity
from ..store.db import db

#: The kinds of document grouped: pictures (a PDF's first page or a video's poster frame is not).
KINDS = ("image", "raw")


@dataclass(frozen=True)
class Picture:
    document_id: int
    session_id: int
    path: str
    width: int | None
    height: int | None
    size: int  # bytes

    @property
    def pixels(self) -> int:
        return (self.width or 0) * (self.height or 0)

    def to_json(self) -> dict[str, Any]:
        return {**asdict(self), "name": Path(self.path).name}


@dataclass(frozen=True)
class Group:
    """Pictures that are the same picture: the largest (``original``), then the others."""

    original: Picture
    copies: list[Picture]

    @property
    def pictures(self) -> list[Picture]:
        return [self.original, *self.copies]

    def to_json(self) -> dict[str, Any]:
        return {"original": self.original.to_json(), "copies": [c.to_json() for c in self.copies]}


def on_complete(job_type: str, sha256: str, result: dict[str, Any],
                rows: dict[str, similarity.Likeness]) -> dict[str, Any]:
    """A completed job's result as the library keeps it: a thumbnail's likeness goes into ``rows``
    (for the ``likeness`` table, by content hash) and out of the result. A likeness that is not
    one is left out (the thumbnails are still good): ValueError is not raised for it."""
    if job_type != "thumbnail" or "likeness" not in result:
        return result
    try:
        rows[sha256] = similarity.Likeness.from_json(result["likeness"])
    except (ValueError, KeyError, TypeError):
        pass
    return {k: v for k, v in result.items() if k != "likeness"}


def store(rows: dict[str, similarity.Likeness]) -> None:
    """Keep these likenesses (replacing a content's earlier one); inside the caller's transaction."""
    if rows:
        db.connection().executemany("INSERT OR REPLACE INTO likeness (sha256, phash, signature) VALUES (?, ?, ?)",
                                    [(sha, like.phash, sqlite3.Binary(like.signature)) for sha, like in rows.items()])


def forget_unused() -> None:
    """Drop the likenesses of content no document has any more."""
    db.execute_sql("DELETE FROM likeness WHERE sha256 NOT IN (SELECT sha256 FROM document)")


def groups(session_id: int | None = None, kept: dict[int | None, similarity.Grouping[str]] | None = None) -> list[Group]:
    """The groups of duplicates among the library's pictures (or one session's), largest group
    first, then in the order their originals were added.

    With ``kept`` (the caller's, the same each time: ``Library.duplicates``), what was found the last
    time is kept there and only pictures new since are compared, unless a picture it holds is gone
    or was measured again (then all are compared afresh)."""
    sql = ("SELECT d.id, d.session_id, d.path, d.width, d.height, d.size, d.sha256, l.phash FROM document d "
           f"JOIN likeness l ON l.sha256 = d.sha256 WHERE d.kind IN ({', '.join('?' * len(KINDS))})")
    params: list[Any] = list(KINDS)
    if session_id is not None:
        sql += " AND d.session_id = ?"
        params.append(session_id)
    pictures: dict[str, Picture] = {}
    hashes: dict[str, int] = {}
    for doc_id, session, path, width, height, size, sha, phash in db.execute_sql(sql + " ORDER BY d.id", params):
        if sha not in pictures:  # one content is one picture: its first document
            pictures[sha] = Picture(doc_id, session, path, width, height, size)
            hashes[sha] = phash

    def signature(sha: str) -> bytes | None:  # None: gone since (its last session removed meanwhile)
        row = db.execute_sql("SELECT signature FROM likeness WHERE sha256 = ?", (sha,)).fetchone()
        return None if row is None else bytes(row[0])

    grouping = kept.pop(session_id, None) if kept is not None else None
    if grouping is None or grouping.incomplete or any(hashes.get(sha) != phash for sha, phash in grouping.hashes.items()):
        grouping = similarity.Grouping()
    grouping.add([(sha, phash) for sha, phash in hashes.items() if sha not in grouping.hashes], signature)
    if kept is not None:
        kept[session_id] = grouping  # the last asked for, last
    found = []
    for members in grouping.groups():
        ranked = sorted((pictures[sha] for sha in members), key=lambda p: (-p.pixels, -p.size, p.document_id))
        found.append(Group(ranked[0], ranked[1:]))
    return sorted(found, key=lambda g: (-len(g.copies), g.original.document_id))


def grouped_ids(found: list[Group]) -> set[int]:
    """The document ids in any of ``found``: what the window's Duplicates filter shows."""
    return {p.document_id for g in found for p in g.pictures}

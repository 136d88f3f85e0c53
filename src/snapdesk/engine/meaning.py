"""Pictures understood, on the owner's side: the inputs of the describe and embed jobs, the
vector table, and search by meaning and by likeness.

The library calls in here at a few points (``Library._input_of``, the job-complete branch of
``projection.Projection.apply``, ``projection.reindex_documents`` and ``Library.remove_session``);
everything else about describe and embed lives in this module, the processors, and the job types
in ``jobs.py``.

- **describe** runs after the thumbnail (and the OCR, when the document has one). Its input travels
  in its payload, so a worker on another machine needs nothing of the owner's: the 600 px WebP
  (base64, tens of kB; never the original), the document's name and size, a few EXIF fields read
  from the original's header here, and the start of its OCR text. Its rate limit (JOB_RATE_DESCRIBE)
  applies only when a model describes: offline descriptions never wait.
- **embed** runs once describe, summary and OCR (those the document has) have ended; its payload is
  the text the vector is made from. A completed embed's vector is taken out of its result and kept
  in the ``embedding`` table, one per content hash, quantised to 6 bits a number with a scale
  (see ``quantise`` and migration 0006).
- **Search**: ``VectorIndex`` holds the vectors of one model in memory (int8 codes, their scales and
  sign bits), loading new rows by id. Up to ``EXACT_LIMIT`` vectors every score is computed;
  beyond, the sign bits pick ``CANDIDATES`` by Hamming distance and those are scored exactly (binary
  quantisation with rescoring: about 15 ms over 100,000 vectors of 1536 numbers on this machine).
  A query is embedded through the same endpoint and model as the documents. Scores are cosine
  similarities (1 is the same meaning).
"""

from __future__ import annotations

import base64
import re
import threading
import time
import weakref
from collections.abc import Callable
from pathlib import Path
from typing import TYPE_CHECKING, Any, Protocol

import numpy as np

from ..processors.errors import JobError
from ..store.db import CANCELLED, COMPLETE, FAILED, Artifact, Document, Embedding, Job, JobEvent, db
from .events import JobInputs, Limits, OwnerEvent

if TYPE_CHECKING:
    from ..config import Settings
    from .jobs import JobType

#: The job types whose input this module makes.
INPUTS = ("describe", "embed")
#: At most this much OCR text goes with a picture to describe (the model sees the picture itself).
DESCRIBE_TEXT_LIMIT = 2000
#: A document is a hit by meaning only when it scores above this: at 0 or below its meaning is
#: unrelated to (or the opposite of) what was asked, and listing it would only be noise.
MIN_SCORE = 0.0
EXACT_LIMIT = 20_000
CANDIDATES = 2000


class MeaningError(Exception):
    """Search by meaning cannot answer; the message says why and what to do."""


class Library(Protocol):
    """What this module needs of the library (``engine/library.py``, which imports this one)."""

    settings: Settings
    clock: Callable[[], float]

    def skip(self, job: Job, reason: str) -> None: ...

    def search(self, query: str, limit: int = 50, session_id: int | None = None) -> list[dict[str, Any]]: ...


# -- the jobs' inputs --------------------------------------------------------------------
def input_of(library: Library, job: Job, job_type: JobType) -> tuple[bool, JobInputs]:
    """Whether a describe or embed job can be queued now, and the payload it takes."""
    results = {j.type: j for j in Job.select().where(Job.document == job.document_id,
                                                     Job.type.in_(list(job_type.inputs)))}
    if job_type.name == "describe":
        return _describe_input(library, job, results)
    return _embed_input(library, job, results)


def _describe_input(library: Library, job: Job, inputs: dict[str, Job]) -> tuple[bool, JobInputs]:
    thumbnail = inputs.get("thumbnail")
    if thumbnail is None or thumbnail.state in (FAILED, CANCELLED):
        library.skip(job, "skipped: there is no thumbnail to describe"
                      + (f" (the thumbnail job {thumbnail.state})" if thumbnail else ""))
        return False, {}
    if thumbnail.state != COMPLETE:
        return False, {}
    artifact = (Artifact.select().where(Artifact.job == thumbnail.id).order_by(
        (Artifact.name == "lg.webp").desc(), Artifact.size.desc()).first())
    try:
        image = Path(artifact.path).read_bytes() if artifact else None
    except OSError:
        image = None
    if not image:
        library.skip(job, "skipped: the thumbnail file is gone; reprocess the document")
        return False, {}
    doc = job.document
    ocr = inputs.get("ocr")
    text = ((ocr.result or {}).get("text") or "") if ocr is not None and ocr.state == COMPLETE else ""
    settings = library.settings
    limits: Limits = {"max_pixels": settings.max_pixels,
                      "rate_per_minute": settings.describe_rate_per_minute if settings.describe_model else 0}
    return True, {"image": base64.b64encode(image).decode("ascii"), "width": doc.width, "height": doc.height,
                  "exif": exif_facts(doc.path), "text": text[:DESCRIBE_TEXT_LIMIT], "limits": limits}


def _embed_input(library: Library, job: Job, inputs: dict[str, Job]) -> tuple[bool, JobInputs]:
    from ..processors.embed import document_text

    done = {name: (j.result or {}) for name, j in inputs.items() if j.state == COMPLETE}
    text = document_text(done.get("describe"), done.get("summary"), done.get("ocr", {}).get("text") or "")
    if not text.strip():
        now = library.clock()
        Job.update(state=COMPLETE, progress=100, finished_at=now, queued_at=now, started_at=now, duration_ms=0,
                   result={"skipped": True, "reason": "nothing to make a vector from: no description, summary or text"}
                   ).where(Job.id == job.id).execute()
        JobEvent.create(job=job, type=OwnerEvent.SKIPPED, attempt=job.attempt, at=now, error="nothing to embed")
        return False, {}
    return True, {"text": text, "embed_model": library.settings.embed_model}


def exif_facts(path: str) -> dict[str, str]:
    """The camera, the time taken and the software from a file's EXIF header (nothing is decoded)."""
    from PIL import Image

    try:
        with Image.open(path) as image:
            exif = image.getexif()
            sub = exif.get_ifd(0x8769)
    except Exception:  # not an image PIL reads, gone, damaged: no facts
        return {}
    facts = {"make": exif.get(0x010F), "model": exif.get(0x0110), "software": exif.get(0x0131),
             "datetime": sub.get(0x9003) or exif.get(0x0132), "iso": sub.get(0x8827), "flash": sub.get(0x9209)}
    return {k: str(v).strip("\x00 ")[:80] for k, v in facts.items() if v not in (None, "")}


# -- results -----------------------------------------------------------------------------
def on_complete(job_type: str, sha256: str, result: dict[str, Any]) -> dict[str, Any]:
    """A completed job's result as the library keeps it: an embed's vector goes into the vector
    table (replacing the content's earlier one), and its result keeps the model and size only."""
    if job_type != "embed" or "vector" not in result:
        return result
    from ..processors.embed import unpack

    store_vector(sha256, result["model"], unpack(result["vector"]))
    return {k: v for k, v in result.items() if k != "vector"}


#: Numbers are kept in 6 bits (-31..31 times a scale): a 1536-number vector in 1152 bytes, so three
#: rows fit a 4 kB page of the library DB (8 bits would fit two: 2 kB a vector). The error this adds
#: to a cosine score is about 0.003, far below what tells documents apart.
LEVELS = 31


def quantise(vector: np.ndarray) -> tuple[float, bytes]:
    """A unit vector as a scale and its numbers in 6 bits each, packed four to three bytes
    (``unpack_codes(...) * scale`` is the vector)."""
    vector = np.asarray(vector, dtype=np.float32)
    vector = vector / (np.linalg.norm(vector) or 1.0)
    scale = float(np.abs(vector).max() / LEVELS) or 1.0
    codes = (np.round(vector / scale).astype(np.int32) + 32).astype(np.uint32)
    codes = np.concatenate([codes, np.full((-codes.size) % 4, 32, dtype=np.uint32)]).reshape(-1, 4)
    packed = codes[:, 0] | codes[:, 1] << 6 | codes[:, 2] << 12 | codes[:, 3] << 18
    return scale, np.stack([packed & 255, packed >> 8 & 255, packed >> 16], axis=1).astype(np.uint8).tobytes()


def unpack_codes(data: bytes, rows: int, dim: int) -> np.ndarray:
    """``rows`` packed vectors of ``dim`` numbers (``quantise``'s bytes, one after another) as int8 codes."""
    width = (dim + 3) // 4 * 3
    raw = np.frombuffer(data, dtype=np.uint8).reshape(rows, width // 3, 3)
    b0, b1, b2 = raw[..., 0], raw[..., 1], raw[..., 2]
    codes = np.empty((rows, width // 3, 4), dtype=np.uint8)
    codes[..., 0] = b0 & 63
    codes[..., 1] = (b0 >> 6) | ((b1 & 15) << 2)
    codes[..., 2] = (b1 >> 4) | ((b2 & 3) << 4)
    codes[..., 3] = b2 >> 2
    codes = codes.reshape(rows, -1)[:, :dim].view(np.int8)
    return np.ascontiguousarray(codes - np.int8(32))


def store_vector(sha256: str, model: str, vector: np.ndarray) -> None:
    scale, codes = quantise(vector)
    (Embedding.insert(sha256=sha256, model=model, dim=int(np.asarray(vector).size), scale=scale, vector=codes,
                      created_at=time.time()).on_conflict_replace().execute())


def forget_unused() -> int:
    """Delete the vectors of content no document has any more (its sessions were removed)."""
    return int(Embedding.delete().where(Embedding.sha256.not_in(Document.select(Document.sha256))).execute())


#: A picture's format as its tags say it (``processors.describe.FORMAT_TAGS``).
_FORMAT_WORDS = re.compile(r"\b(square|landscape|portrait)\s+format\b", re.I)


def index_words(text: str) -> str:
    """Text as the full-text index keeps it: each format tag one word ("square format" is
    "formatsquare"), so that a search for the shape "square" never finds a circle in a square
    picture. Searches read their words the same way, so "square format" finds square pictures."""
    return _FORMAT_WORDS.sub(lambda m: "format" + m.group(1).lower(), text)


def shown_words(text: str) -> str:
    """A snippet of the index as a person reads it: "formatsquare" is "square format" again."""
    return re.sub(r"\bformat(square|landscape|portrait)\b", r"\1 format", text)


def searchable_text(describe: dict[str, Any] | None) -> str:
    """What full-text search finds a described picture by: its description, tags, colours (the
    model's and the measured palette's) and objects."""
    if not describe or describe.get("skipped"):
        return ""
    colours = [*(describe.get("colors") or []),
               *(c.get("name") or "" for c in describe.get("palette") or [] if isinstance(c, dict))]
    words = [describe.get("description") or "", " ".join(describe.get("tags") or []),
             " ".join(dict.fromkeys(c for c in colours if c)), " ".join(describe.get("objects") or []),
             describe.get("searchable_text") or ""]
    return index_words(" ".join(w for w in words if w))


# -- the vectors in memory ---------------------------------------------------------------
class VectorIndex:
    """The vectors of one model, loaded from the table and kept up to date by row id."""

    def __init__(self, model: str):
        self.model = model
        self.lock = threading.Lock()
        self._reset()

    def _reset(self) -> None:
        self.dim = 0
        self.shas: list[str] = []
        self.codes = np.zeros((0, 0), dtype=np.int8)
        self.scales = np.zeros(0, dtype=np.float32)
        self.bits = np.zeros((0, 0), dtype=np.uint64)
        self.max_id, self.count = 0, 0

    def __len__(self) -> int:
        return len(self.shas)

    def refresh(self) -> None:
        """Load the rows added since the last look; everything again when rows went away."""
        with self.lock:
            (known,) = db.execute_sql("SELECT COUNT(*) FROM embedding WHERE model = ? AND id <= ?",
                                      (self.model, self.max_id)).fetchone()
            if known != self.count:
                self._reset()
            rows = db.execute_sql("SELECT id, sha256, dim, scale, vector FROM embedding WHERE model = ? AND id > ? "
                                  "ORDER BY id", (self.model, self.max_id)).fetchall()
            if not rows:
                return
            self.max_id = rows[-1][0]
            self.count += len(rows)
            if not self.dim:
                self.dim = rows[-1][2]
            rows = [r for r in rows if r[2] == self.dim]  # another size from the same model name: left out
            if not rows:
                return
            codes = unpack_codes(b"".join(r[4] for r in rows), len(rows), self.dim)
            self.shas += [r[1] for r in rows]
            self.codes = np.concatenate([self.codes.reshape(-1, self.dim), codes])
            self.scales = np.concatenate([self.scales, np.array([r[3] for r in rows], dtype=np.float32)])
            self.bits = np.concatenate([self.bits.reshape(-1, _words(self.dim)), sign_bits(codes)])

    def vector_of(self, sha256: str) -> np.ndarray | None:
        try:
            i = self.shas.index(sha256)
        except ValueError:
            return None
        vector: np.ndarray = self.codes[i].astype(np.float32) * self.scales[i]
        return vector

    def nearest(self, query: np.ndarray, k: int) -> list[tuple[str, float]]:
        """The ``k`` content hashes whose vectors are nearest ``query``, with their cosine similarity."""
        with self.lock:
            n = len(self.shas)
            query = np.asarray(query, dtype=np.float32)
            if not n or query.size != self.dim:
                return []
            query = query / (np.linalg.norm(query) or 1.0)
            if n <= EXACT_LIMIT:
                rows = np.arange(n)
            else:  # binary quantisation picks the candidates, the 8-bit codes score them
                distance = np.bitwise_count(self.bits ^ sign_bits(query[None, :])).sum(axis=1, dtype=np.int32)
                rows = np.argpartition(distance, min(CANDIDATES, n - 1))[:CANDIDATES]
            scores = np.empty(len(rows), dtype=np.float32)
            for start in range(0, len(rows), 8192):
                part = rows[start:start + 8192]
                scores[start:start + 8192] = (self.codes[part].astype(np.float32) @ query) * self.scales[part]
            order = np.argsort(-scores, kind="stable")[:k]
            return [(self.shas[rows[i]], float(scores[i])) for i in order]


def _words(dim: int) -> int:
    return (dim + 63) // 64


def sign_bits(rows: np.ndarray) -> np.ndarray:
    """Each row's signs as bits, in 64-bit words (for the Hamming distance of binary quantisation)."""
    packed = np.packbits(rows > 0, axis=1)
    padded = np.zeros((len(rows), _words(rows.shape[1]) * 8), dtype=np.uint8)
    padded[:, :packed.shape[1]] = packed
    return padded.view(np.uint64)


_indexes: weakref.WeakKeyDictionary[Any, VectorIndex] = weakref.WeakKeyDictionary()


def index_of(library: Library, model: str | None = None) -> VectorIndex:
    """The library's vector index of ``model`` (its embeddings model by default), up to date."""
    model = model or library.settings.embed_model
    index = _indexes.get(library)
    if index is None or index.model != model:
        index = _indexes[library] = VectorIndex(model)
    index.refresh()
    return index


# -- search ------------------------------------------------------------------------------
def embed_query(settings: Settings, query: str) -> np.ndarray:
    """The vector of a query, from the embeddings endpoint the documents' vectors came from."""
    from ..processors.embed import embed

    why = settings.embeddings_missing
    if why:
        raise MeaningError(f"search by meaning is off: {why}")
    try:
        [vector] = embed([query], base_url=settings.embeddings_url, api_key=settings.embeddings_key,
                         model=settings.embed_model, timeout=min(settings.llm_timeout, 30.0))
    except JobError as exc:
        raise MeaningError(f"search by meaning cannot ask the embeddings endpoint: {exc}") from None
    return vector


def _hits(pairs: list[tuple[str, float]], limit: int, session_id: int | None,
          exclude: frozenset[int] | set[int] = frozenset()) -> list[dict[str, Any]]:
    """Documents of the nearest content hashes, best first, each with its score."""
    score_of = dict(pairs)
    query = Document.select().where(Document.sha256.in_(list(score_of)))
    if session_id is not None:
        query = query.where(Document.session == session_id)
    docs = sorted((d for d in query if d.id not in exclude and score_of[d.sha256] > MIN_SCORE),
                  key=lambda d: (-score_of[d.sha256], d.id))[:limit]
    titles = _titles([d.id for d in docs])
    return [{"document_id": d.id, "session_id": d.session_id, "path": d.path, "title": titles.get(d.id),
             "snippet": "", "score": round(score_of[d.sha256], 4), "match": "meaning"} for d in docs]


def _titles(doc_ids: list[int]) -> dict[int, str]:
    """A title per document: its summary's, else its description."""
    titles: dict[int, str] = {}
    for job in Job.select(Job.document, Job.type, Job.result).where(
            Job.document.in_(doc_ids), Job.type.in_(["summary", "describe"]), Job.state == COMPLETE):
        result = job.result or {}
        title = result.get("title") if job.type == "summary" else result.get("description")
        if title and (job.type == "summary" or job.document_id not in titles):
            titles[job.document_id] = title
    return titles


def search(library: Library, query: str, limit: int = 50, session_id: int | None = None,
           text_first: bool = True) -> list[dict[str, Any]]:
    """Documents by meaning: with ``text_first``, full-text hits first (as ``Library.search`` finds
    them, ``match: "text"``), then the nearest by meaning not among them (``match: "meaning"``,
    with ``score``). Raises MeaningError when there is no embeddings endpoint or it cannot answer."""
    if not query.strip():
        return []
    vector = embed_query(library.settings, query)
    text_hits = [{**hit, "match": "text"} for hit in library.search(query, limit, session_id)] if text_first else []
    seen = {hit["document_id"] for hit in text_hits}
    index = index_of(library)
    pairs = index.nearest(vector, (limit + len(seen)) * 2)
    return (text_hits + _hits(pairs, limit, session_id, seen))[:limit]


def similar(library: Library, document_id: int, limit: int = 20,
            session_id: int | None = None) -> list[dict[str, Any]]:
    """The documents most like this one by their vectors, best first (the document itself left out)."""
    doc = Document.get_or_none(Document.id == document_id)
    if doc is None:
        raise MeaningError(f"there is no document {document_id}")
    index = index_of(library)
    vector = index.vector_of(doc.sha256)
    if vector is None:
        why = library.settings.embeddings_missing
        if why:
            raise MeaningError(f"similar-search is off: {why}")
        job = Job.get_or_none(Job.document == doc.id, Job.type == "embed")
        state = f"its embed job is {job.state}" if job else "it has no embed job (added before embeddings were set up; " \
                                                            "reprocess it)"
        raise MeaningError(f"document {document_id} has no vector yet: {state}")
    pairs = index.nearest(vector, limit * 2 + 2)
    return _hits(pairs, limit, session_id, {doc.id})


def status(library: Library) -> dict[str, Any]:
    """What search by meaning has to work with: whether it is on (and why not), the model, and
    how many documents have vectors of it."""
    settings = library.settings
    why = settings.embeddings_missing
    count = Embedding.select().where(Embedding.model == settings.embed_model).count() if not why else 0
    return {"enabled": not why, "reason": why or None, "model": settings.embed_model or None, "vectors": count}


def description_of(document_id: int) -> dict[str, Any] | None:
    """A document's completed description (for the details panel), or None."""
    job = Job.get_or_none(Job.document == document_id, Job.type == "describe", Job.state == COMPLETE)
    result = (job.result or {}) if job else {}
    return None if not result or result.get("skipped") else result


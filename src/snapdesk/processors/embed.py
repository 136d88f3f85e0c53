"""Vectors for search by meaning: one per document, from an OpenAI-compatible embeddings endpoint.

``document_text`` makes the text a document is known by (its description, tags, colours, summary
and OCR text, cut to a size every embeddings model takes); ``embed`` sends texts to
``/v1/embeddings`` and returns unit-length float32 vectors. ``pack``/``unpack`` carry a vector in
a job's result as base64 (the owner stores it quantised; see ``engine/meaning.py``).

Errors say what to fix, as the summary's do (the same client, Retry-After and hiding of
credentials: ``llm.py``).
"""

from __future__ import annotations

import base64
from typing import Any

import numpy as np

from . import llm
from .errors import PermanentError, RetryableError

#: At most this much text is embedded per document (about 2k tokens: every embeddings model takes it).
MAX_CHARS = 6000


def document_text(describe: dict[str, Any] | None, summary: dict[str, Any] | None, ocr_text: str = "") -> str:
    """The text a document's vector is made from: what it shows first, then what it says."""
    parts: list[str] = []
    if describe:
        parts += [describe.get("description") or "", describe.get("detailed_description") or "",
                  "Tags: " + ", ".join(describe.get("tags") or []),
                  "Colours: " + ", ".join(describe.get("colors") or []),
                  "Objects: " + ", ".join(describe.get("objects") or []),
                  describe.get("searchable_text") or ""]
    if summary and not summary.get("skipped"):
        parts += [summary.get("title") or "", summary.get("summary") or "", ", ".join(summary.get("topics") or [])]
    if ocr_text.strip():
        parts.append("Text: " + " ".join(ocr_text.split()))
    text = "\n".join(p for p in parts if p and not p.endswith(": "))
    return text[:MAX_CHARS]


def embed(texts: list[str], *, base_url: str, api_key: str, model: str, timeout: float = 60.0) -> list[np.ndarray]:
    """Unit-length float32 vectors of ``texts`` from the embeddings endpoint at ``base_url``."""
    where = llm.endpoint_for_messages(base_url)
    client = llm.client(base_url, api_key, timeout)
    with llm.api_errors(base_url, what="the embeddings endpoint",
                        key_hint="Settings, OPENAI_API_KEY or SNAPDESK_EMBED_API_KEY",
                        model_hint="embeddings model in Settings or SNAPDESK_EMBED_MODEL",
                        not_found=f"the endpoint {where} has no embeddings model {model!r} or no embeddings API "
                                  "(404): check SNAPDESK_EMBED_BASE_URL (or OPENAI_BASE_URL) and SNAPDESK_EMBED_MODEL",
                        bad_request_hint="check the embeddings model in Settings", model=model):
        response = client.embeddings.create(model=model, input=texts, encoding_format="float")
    data = sorted(response.data or [], key=lambda d: d.index)
    if len(data) != len(texts):
        raise RetryableError(f"the embeddings endpoint returned {len(data)} vectors for {len(texts)} texts")
    vectors = []
    for item in data:
        vector = np.asarray(item.embedding, dtype=np.float32)
        norm = float(np.linalg.norm(vector))
        if vector.ndim != 1 or not 2 <= vector.size <= 8192 or not np.isfinite(norm) or norm == 0:
            raise PermanentError(f"the embeddings model {model} returned an unusable vector "
                                 f"({vector.size} numbers, length {norm:.3g})")
        vectors.append(vector / norm)
    return vectors


def pack(vector: np.ndarray) -> str:
    return base64.b64encode(np.asarray(vector, dtype="<f4").tobytes()).decode("ascii")


def unpack(text: str) -> np.ndarray:
    return np.frombuffer(base64.b64decode(text, validate=True), dtype="<f4")


def check_embeddings(base_url: str, api_key: str, model: str, timeout: float = 20.0) -> str:
    """Embed one word: what the Settings dialog's Test endpoint shows for embeddings."""
    [vector] = embed(["test"], base_url=base_url, api_key=api_key, model=model, timeout=timeout)
    return f"{model} made a vector of {vector.size} numbers"

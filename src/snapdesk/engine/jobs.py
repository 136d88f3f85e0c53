"""The job types: which documents get which jobs, on which queue, and the processor each runs.

A job type's ``run(source, payload, progress, settings)`` returns ``(result, files)``: ``result``
is JSON-able and ``files`` maps an output name to its bytes, which travel in the completion
event for the owner to store (a worker never writes into the library). ``source`` is the
document's bytes, or None for a job that works from an earlier job's result (``after``).
``progress(percent)`` reports progress and is a checkpoint: it raises when the job was cancelled.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any, Callable

from pydantic import BaseModel, ConfigDict, Field, ValidationError

from ..processors.errors import PermanentError
from ..processors.thumbnail import describe, make_thumbnails, thumbnails_of_image

#: Document kinds by file extension. Anything else is skipped at import as unsupported.
KINDS = {
    ".jpg": "image", ".jpeg": "image", ".jpe": "image", ".png": "image", ".webp": "image",
    ".gif": "image", ".bmp": "image", ".tif": "image", ".tiff": "image",
    ".pdf": "pdf",
}

#: The summary job gets at most this much of the OCR text in its payload.
SUMMARY_TEXT_LIMIT = 100_000


class ResultError(ValueError):
    """A job's result does not have what its job type returns."""


class _Result(BaseModel):
    model_config = ConfigDict(extra="allow")


class _Size(BaseModel):
    width: int = Field(ge=1)
    height: int = Field(ge=1)


class ThumbnailResult(_Result):
    width: int = Field(ge=1)
    height: int = Field(ge=1)
    blurhash: str = Field(max_length=200)
    thumbnails: dict[str, _Size] = Field(min_length=1)


class OcrResult(_Result):
    text: str
    confidence: float = Field(ge=0, le=1)


class SummaryResult(_Result):
    """A summary, or a summary job skipped for want of text."""

    summary: str | None = None
    title: str | None = None


def _attach_files(result: dict, paths: dict[str, str]) -> dict:
    """Where the owner stored a job's files, folded into its result (by default under "files")."""
    return {**result, "files": paths} if paths else result


@dataclass(frozen=True)
class JobType:
    name: str
    queue: str
    kinds: tuple[str, ...]
    run: Callable[..., tuple[dict, dict[str, bytes]]]
    attach_files: Callable[[dict, dict[str, str]], dict] = _attach_files
    #: The job type that must complete first (its result feeds this one), if any.
    after: str | None = None
    #: Whether the worker needs the document's bytes (else it works from the payload alone).
    needs_source: bool = True
    #: Whether JOB_RATE_LLM (jobs per minute, shared by every worker) applies.
    rate_limited: bool = False
    #: The shape of its result, checked before the owner stores it.
    result_schema: type[BaseModel] = _Result
    #: The files its result comes with, from the result: {"sm.webp", ...} for a thumbnail.
    files_of: Callable[[dict], set[str]] = lambda result: set()

    def check_result(self, result: dict[str, Any], files: set[str]) -> None:
        """Raise ResultError unless ``result`` (and its ``files``) are what this job type returns."""
        try:
            self.result_schema.model_validate(result)
        except ValidationError as exc:
            first = exc.errors()[0]
            raise ResultError(f"{'.'.join(map(str, first['loc'])) or 'result'}: {first['msg']}") from None
        missing = self.files_of(result) - files
        if missing:
            raise ResultError(f"the files {', '.join(sorted(missing))} are missing")


# -- thumbnail ---------------------------------------------------------------------------
def _thumbnail(source: bytes, payload: dict, progress, settings) -> tuple[dict, dict[str, bytes]]:
    max_pixels = payload["limits"]["max_pixels"]
    if payload["kind"] == "pdf":
        from ..processors.pdf import first_page_image

        result = thumbnails_of_image(first_page_image(source, max_pixels))
    else:
        result = make_thumbnails(source, max_pixels=max_pixels)
    return describe(result), {f"{t.name}.webp": t.data for t in result.thumbnails}


def _attach_thumbnails(result: dict, paths: dict[str, str]) -> dict:
    thumbnails = {name: {**info, "path": paths[f"{name}.webp"]} for name, info in result["thumbnails"].items()}
    return {**result, "thumbnails": thumbnails}


# -- ocr ---------------------------------------------------------------------------------
def _ocr(source: bytes, payload: dict, progress, settings) -> tuple[dict, dict[str, bytes]]:
    from ..processors.ocr import ocr_document  # loads onnxruntime: only in workers that run OCR

    return ocr_document(source, payload["kind"], progress, max_pixels=payload["limits"]["max_pixels"]), {}


# -- summary -----------------------------------------------------------------------------
def _summary(source, payload: dict, progress, settings) -> tuple[dict, dict[str, bytes]]:
    from ..processors import summary

    text = payload.get("text") or ""
    if not text.strip():
        raise PermanentError("there is no text to summarise")
    name = Path(payload["path"]).name
    progress(10)  # a checkpoint: a cancelled job stops before the request
    if settings is not None and settings.openai_base_url:
        if not settings.llm_model:
            raise PermanentError("an LLM endpoint is set but no model: set SNAPDESK_LLM_MODEL (or the model in "
                                 "Settings)")
        return summary.summarize_llm(text, name, base_url=settings.openai_base_url, api_key=settings.openai_api_key,
                                     model=settings.llm_model, timeout=settings.llm_timeout), {}
    return summary.summarize_extractive(text, name), {}


JOB_TYPES: dict[str, JobType] = {
    "thumbnail": JobType("thumbnail", "thumbnail", ("image", "pdf"), _thumbnail, _attach_thumbnails,
                         result_schema=ThumbnailResult,
                         files_of=lambda result: {f"{name}.webp" for name in result.get("thumbnails", {})}),
    "ocr": JobType("ocr", "ocr", ("image", "pdf"), _ocr, result_schema=OcrResult),
    "summary": JobType("summary", "summary", ("image", "pdf"), _summary, after="ocr", needs_source=False,
                       rate_limited=True, result_schema=SummaryResult),
}


def kind_of(suffix: str) -> str | None:
    return KINDS.get(suffix.lower())


def job_types_for(kind: str, enabled: set[str] | None = None) -> list[JobType]:
    """The jobs a document of this kind gets: those enabled, and whose input job is enabled too."""
    enabled = set(JOB_TYPES) if enabled is None else enabled
    return [t for t in JOB_TYPES.values() if kind in t.kinds and t.name in enabled
            and (t.after is None or t.after in enabled)]


def dependents_of(job_type: str) -> list[JobType]:
    return [t for t in JOB_TYPES.values() if t.after == job_type]

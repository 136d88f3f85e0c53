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
from typing import TYPE_CHECKING, Any, Callable

from pydantic import BaseModel, ConfigDict, Field, ValidationError

from ..processors.decode import DEFAULT_MAX_PAGES
from ..processors.errors import PermanentError
from .events import JobPayload
from ..processors.thumbnail import VARIANT_WRITERS, describe, make_thumbnails
from ..processors.metadata import read_metadata

if TYPE_CHECKING:
    from ..config import Settings

#: What a job type's ``run`` returns: its JSON-able result, and its files by name.
Output = tuple[dict[str, Any], dict[str, bytes]]
#: ``run(source, payload, progress, settings)``: see the module's docstring. ``settings`` are the
#: worker's (None where a job runs without them, as in some tests).
Run = Callable[[Any, JobPayload, Callable[[int], None], "Settings | None"], Output]

#: Document kinds by file extension. Anything else is skipped at import as unsupported.
#: "image": whatever Pillow reads (with pillow-heif for HEIC/HEIF, Pillow's own plugin for AVIF);
#: "raw": camera RAW (rawpy), a kind of its own because OCR is pointless on it; "video": PyAV.
KINDS = {
    ".jpg": "image", ".jpeg": "image", ".jpe": "image", ".png": "image", ".webp": "image",
    ".gif": "image", ".bmp": "image", ".tif": "image", ".tiff": "image",
    ".heic": "image", ".heif": "image", ".hif": "image", ".avif": "image",
    ".jp2": "image", ".j2k": "image", ".jpf": "image", ".jpx": "image", ".psd": "image", ".ico": "image",
    ".dng": "raw", ".cr2": "raw", ".cr3": "raw", ".nef": "raw", ".arw": "raw", ".orf": "raw", ".rw2": "raw",
    ".raf": "raw",
    ".mp4": "video", ".mov": "video", ".m4v": "video", ".mkv": "video", ".webm": "video", ".avi": "video",
    ".pdf": "pdf",
}

#: The kinds whose pictures are described (a video's poster frame is its thumbnail).
PICTURE_KINDS = ("image", "raw", "video")
#: The kinds that get OCR (and so a summary): not camera RAWs or videos.
TEXT_KINDS = ("image", "pdf")

#: The summary job gets at most this much of the OCR text in its payload.
SUMMARY_TEXT_LIMIT = 100_000


class ResultError(ValueError):
    """A job's result does not have what its job type returns."""


class _Result(BaseModel):
    model_config = ConfigDict(extra="allow")


class _Variant(BaseModel):
    bytes: int = Field(ge=1)


class _Size(BaseModel):
    width: int = Field(ge=1)
    height: int = Field(ge=1)
    #: The same size as AVIF (SNAPDESK_VARIANT_FORMATS), when it was asked for.
    avif: _Variant | None = None


class ThumbnailResult(_Result):
    width: int = Field(ge=1)
    height: int = Field(ge=1)
    blurhash: str = Field(max_length=200)
    thumbnails: dict[str, _Size] = Field(min_length=1)
    #: What the picture says of itself (processors/metadata.py): date taken, camera, exposure, GPS, ...
    metadata: dict[str, Any] | None = None


class OcrResult(_Result):
    text: str
    confidence: float = Field(ge=0, le=1)


class SummaryResult(_Result):
    """A summary, or a summary job skipped for want of text."""

    summary: str | None = None
    title: str | None = None


def _attach_files(result: dict[str, Any], paths: dict[str, str]) -> dict[str, Any]:
    """Where the owner stored a job's files, folded into its result (by default under "files")."""
    return {**result, "files": paths} if paths else result


@dataclass(frozen=True)
class JobType:
    name: str
    queue: str
    kinds: tuple[str, ...]
    run: Run
    attach_files: Callable[[dict[str, Any], dict[str, str]], dict[str, Any]] = _attach_files
    #: The job types that must end first (those the document has; their results feed this one), if any:
    #: one name, or a tuple. The first is its main input: without it, this job cannot run, unless
    #: ``required`` is False (then any one of them is enough).
    after: str | tuple[str, ...] | None = None
    required: bool = True
    #: Whether the worker needs the document's bytes (else it works from the payload alone).
    needs_source: bool = True
    #: Whether JOB_RATE_LLM (jobs per minute, shared by every worker) applies.
    rate_limited: bool = False
    #: The shape of its result, checked before the owner stores it.
    result_schema: type[BaseModel] = _Result
    #: The files its result comes with, from the result: {"sm.webp", ...} for a thumbnail.
    files_of: Callable[[dict[str, Any]], set[str]] = lambda result: set()

    @property
    def inputs(self) -> tuple[str, ...]:
        """The job types this one comes after (``after`` as a tuple)."""
        return () if self.after is None else (self.after,) if isinstance(self.after, str) else tuple(self.after)

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
def _thumbnail(source: bytes, payload: JobPayload, progress: Callable[[int], None],
               settings: Settings | None) -> Output:
    formats = ("webp", *(f for f in payload.get("variant_formats", []) if f in VARIANT_WRITERS))
    result = make_thumbnails(source, max_pixels=payload["limits"]["max_pixels"], kind=payload["kind"], formats=formats)
    files = {f"{t.name}.webp": t.data for t in result.thumbnails}
    files.update({f"{t.name}.{fmt}": data for t in result.thumbnails for fmt, data in t.variants.items()})
    return {**describe(result), "metadata": read_metadata(source, payload["kind"])}, files


def _thumbnail_files(result: dict[str, Any]) -> set[str]:
    """A thumbnail result's files: each size's WebP, and its AVIF where the result lists one."""
    return {f"{name}.{fmt}" for name, info in result.get("thumbnails", {}).items()
            for fmt in ("webp", *VARIANT_WRITERS) if fmt == "webp" or isinstance(info, dict) and fmt in info}


def _attach_thumbnails(result: dict[str, Any], paths: dict[str, str]) -> dict[str, Any]:
    """Each size's WebP path under "path" (what the window shows), an AVIF's under "avif"."""
    thumbnails = {name: {**info, "path": paths[f"{name}.webp"],
                         **{fmt: {**info[fmt], "path": paths[f"{name}.{fmt}"]} for fmt in VARIANT_WRITERS
                            if fmt in info and f"{name}.{fmt}" in paths}}
                  for name, info in result["thumbnails"].items()}
    return {**result, "thumbnails": thumbnails}


# -- ocr ---------------------------------------------------------------------------------
def _ocr(source: bytes, payload: JobPayload, progress: Callable[[int], None],
         settings: Settings | None) -> Output:
    from ..processors.ocr import ocr_document  # loads onnxruntime: only in workers that run OCR

    limits = payload["limits"]
    # The page limit is the worker's setting (SNAPDESK_MAX_PAGES), unless the owner sent one.
    max_pages = limits.get("max_pages") or getattr(settings, "max_pages", None) or DEFAULT_MAX_PAGES
    return ocr_document(source, payload["kind"], progress, max_pixels=limits["max_pixels"], max_pages=max_pages), {}


# -- summary -----------------------------------------------------------------------------
def _summary(source: bytes | None, payload: JobPayload, progress: Callable[[int], None],
             settings: Settings | None) -> Output:
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


# -- describe and embed (pictures understood; see processors/describe.py, processors/embed.py) --
class DescribeResult(_Result):
    description: str = Field(min_length=1, max_length=2000)
    tags: list[str]
    palette: list[dict[str, Any]]
    source: str


class EmbedResult(_Result):
    model: str
    dim: int = Field(ge=2, le=8192)
    #: The vector (base64 float32); the owner keeps it quantised in its vector table, not in the result.
    vector: str = Field(max_length=45_000)


def _describe(source: bytes | None, payload: JobPayload, progress: Callable[[int], None],
              settings: Any) -> tuple[dict[str, Any], dict[str, bytes]]:
    import base64

    from ..processors import describe

    image = base64.b64decode(payload["image"])
    name, width, height = Path(payload["path"]).name, payload.get("width"), payload.get("height")
    exif, text = payload.get("exif") or {}, payload.get("text") or ""
    progress(10)  # a checkpoint: a cancelled job stops before the request
    model = settings.describe_model if settings is not None else ""
    if model:
        return describe.describe_llm(image, base_url=settings.openai_base_url, api_key=settings.openai_api_key,
                                     model=model, timeout=settings.llm_timeout, name=name, width=width, height=height,
                                     exif=exif, text=text), {}
    if settings is not None and settings.openai_base_url:
        raise PermanentError("an LLM endpoint is set but no model to describe pictures: set SNAPDESK_VISION_MODEL "
                             "or SNAPDESK_LLM_MODEL (or the model in Settings)")
    return describe.describe_offline(image, name=name, width=width, height=height, exif=exif, text=text), {}


def _embed(source: bytes | None, payload: JobPayload, progress: Callable[[int], None],
           settings: Any) -> tuple[dict[str, Any], dict[str, bytes]]:
    from ..processors import embed

    model = payload.get("embed_model") or (settings.embed_model if settings is not None else "")
    if settings is None or not settings.embeddings_url or not model:
        raise PermanentError("this worker has no embeddings endpoint or model: set SNAPDESK_EMBED_BASE_URL (or "
                             "OPENAI_BASE_URL) and SNAPDESK_EMBED_MODEL where it runs")
    progress(10)
    [vector] = embed.embed([payload["text"]], base_url=settings.embeddings_url, api_key=settings.embeddings_key,
                           model=model, timeout=settings.llm_timeout)
    return {"model": model, "dim": int(vector.size), "chars": len(payload["text"]), "vector": embed.pack(vector)}, {}


JOB_TYPES: dict[str, JobType] = {
    "thumbnail": JobType("thumbnail", "thumbnail", (*PICTURE_KINDS, "pdf"), _thumbnail, _attach_thumbnails,
                         result_schema=ThumbnailResult,
                         files_of=_thumbnail_files),
    "ocr": JobType("ocr", "ocr", TEXT_KINDS, _ocr, result_schema=OcrResult),
    "summary": JobType("summary", "summary", TEXT_KINDS, _summary, after="ocr", needs_source=False,
                       rate_limited=True, result_schema=SummaryResult),
    "describe": JobType("describe", "describe", PICTURE_KINDS, _describe, after=("thumbnail", "ocr"),
                        needs_source=False, rate_limited=True, result_schema=DescribeResult),
    "embed": JobType("embed", "embed", (*PICTURE_KINDS, "pdf"), _embed, after=("describe", "summary", "ocr"),
                     required=False, needs_source=False, result_schema=EmbedResult),
}


def kind_of(suffix: str) -> str | None:
    return KINDS.get(suffix.lower())


def job_types_for(kind: str, enabled: set[str] | None = None) -> list[JobType]:
    """The jobs a document of this kind gets: those enabled, and whose input job is enabled too."""
    enabled = set(JOB_TYPES) if enabled is None else enabled
    chosen: list[JobType] = []
    for t in JOB_TYPES.values():
        if kind not in t.kinds or t.name not in enabled:
            continue
        present = [name for name in t.inputs if name in enabled and name in {c.name for c in chosen}]
        if not t.inputs or (t.inputs[0] in present if t.required else present):
            chosen.append(t)
    return chosen


def dependents_of(job_type: str) -> list[JobType]:
    return [t for t in JOB_TYPES.values() if job_type in t.inputs]

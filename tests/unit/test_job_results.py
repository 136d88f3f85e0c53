"""The job types (engine/jobs.py): which documents get which jobs, and the check a result must pass
before the owner stores it (a worker's word is not taken for its shape)."""

from __future__ import annotations

import pytest

from snapdesk.engine.jobs import JOB_TYPES, ResultError, dependents_of, job_types_for, kind_of

from unit_helpers import png_bytes, thumbnail_result

THUMBNAIL = JOB_TYPES["thumbnail"]


@pytest.fixture(scope="module")
def real_thumbnail():
    result, files = thumbnail_result(png_bytes(640, 400))
    return result, set(files)


def test_a_real_thumbnail_result_passes(real_thumbnail):
    result, files = real_thumbnail
    THUMBNAIL.check_result(result, files)
    assert {name: (t["width"], t["height"]) for name, t in result["thumbnails"].items()} == {
        "sm": (150, 94), "md": (300, 188), "lg": (600, 375)}


def test_a_thumbnail_result_without_its_files_fails_the_check(real_thumbnail):
    result, files = real_thumbnail
    with pytest.raises(ResultError, match=r"^the files lg.webp, sm.webp are missing$"):
        THUMBNAIL.check_result(result, files - {"sm.webp", "lg.webp"})


@pytest.mark.parametrize("change, where", [
    ({"width": 0}, "width"),
    ({"blurhash": None}, "blurhash"),
    ({"thumbnails": {}}, "thumbnails"),
    ({"thumbnails": {"sm": {"width": 150}}}, "thumbnails.sm.height"),
])
def test_a_malformed_thumbnail_result_names_the_field(real_thumbnail, change, where):
    result, files = real_thumbnail
    with pytest.raises(ResultError, match=rf"^{where}: "):
        THUMBNAIL.check_result({**result, **change}, files)


def test_an_ocr_result_needs_its_text_and_a_confidence_between_0_and_1():
    ocr = JOB_TYPES["ocr"]
    ocr.check_result({"text": "", "confidence": 0.0}, set())
    with pytest.raises(ResultError, match="^confidence: "):
        ocr.check_result({"text": "x", "confidence": 1.5}, set())
    with pytest.raises(ResultError, match="^text: "):
        ocr.check_result({"confidence": 0.5}, set())


def test_a_summary_result_may_be_a_skip():
    JOB_TYPES["summary"].check_result({"skipped": True, "reason": "no text"}, set())
    with pytest.raises(ResultError, match="^summary: "):
        JOB_TYPES["summary"].check_result({"summary": ["not", "text"]}, set())


def test_stored_file_paths_are_folded_into_a_thumbnail_result(real_thumbnail):
    result, _ = real_thumbnail
    paths = {f"{n}.webp": f"/lib/artifacts/{n}.webp" for n in ("sm", "md", "lg")}
    stored = THUMBNAIL.attach_files(result, paths)
    assert stored["thumbnails"]["md"] == {**result["thumbnails"]["md"], "path": "/lib/artifacts/md.webp"}
    assert JOB_TYPES["ocr"].attach_files({"text": "t"}, {}) == {"text": "t"}


def test_documents_get_the_enabled_jobs_whose_input_job_is_enabled_too():
    names = lambda types: [t.name for t in types]  # noqa: E731 (a one-line helper)
    assert names(job_types_for("image", {"thumbnail", "ocr", "summary"})) == ["thumbnail", "ocr", "summary"]
    assert names(job_types_for("pdf", {"thumbnail", "summary"})) == ["thumbnail"]  # no OCR, no text to summarise
    assert names(job_types_for("image", {"ocr", "summary"})) == ["ocr", "summary"]
    assert names(job_types_for("video")) == ["thumbnail", "describe", "embed"]  # a poster frame: no OCR
    assert names(job_types_for("audio")) == []  # a kind no job type takes


def test_a_summary_comes_after_the_ocr_of_the_same_document():
    assert "summary" in [t.name for t in dependents_of("ocr")]
    summary = JOB_TYPES["summary"]
    assert (summary.after, summary.needs_source, summary.rate_limited) == ("ocr", False, True)


@pytest.mark.parametrize("suffix, kind", [(".JPG", "image"), (".tiff", "image"), (".Pdf", "pdf"), (".txt", None),
                                          ("", None)])
def test_kinds_come_from_the_file_extension_in_any_case(suffix, kind):
    assert kind_of(suffix) == kind


def test_every_job_type_runs_on_a_queue_workers_serve():
    from snapdesk.config import QUEUES

    assert {t.queue for t in JOB_TYPES.values()} <= set(QUEUES)

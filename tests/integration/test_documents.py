"""Scans and receipts end to end: OCR, then the summary, then search; on both transports."""

import json
import time
from pathlib import Path

import pytest

from snapdesk.store import db as store

from chat_server import ChatServer
from helpers import text_image, wait_for, write_photos

pytestmark = pytest.mark.jobs("thumbnail,ocr,summary")

RECEIPT = ["CORNER BAKERY", "12 Market Street", "Sourdough loaf 4.50", "Croissant 5.20", "TOTAL 9.70"]
LETTER = ["Dear Ms Lopez,", "The nitrate survey of the river", "found higher levels near farmland.",
          "Yours sincerely, Springfield Water"]


def _docs(library, session):
    return {Path(d["path"]).name: d for d in library.report(session)["documents"]}


def _wait(library, session, timeout=90):
    assert library.wait(session, timeout=timeout), library.report(session)["counts"]
    return _docs(library, session)


def _scans(folder: Path) -> Path:
    folder.mkdir(parents=True, exist_ok=True)
    (folder / "receipt.png").write_bytes(text_image(RECEIPT))
    (folder / "letter.jpg").write_bytes(text_image(LETTER, fmt="JPEG"))
    return folder


def test_scans_get_text_and_an_offline_summary_and_are_found_by_their_words(library, start_worker, tmp_path):
    start_worker()
    session, _ = library.submit([_scans(tmp_path / "scans")])
    docs = _wait(library, session)

    receipt = docs["receipt.png"]["jobs"]
    assert receipt["ocr"]["state"] == "complete"
    assert "CORNER BAKERY" in receipt["ocr"]["result"]["text"] and "9.70" in receipt["ocr"]["result"]["text"]
    summary = receipt["summary"]["result"]
    assert summary["model"] == "extractive"
    assert summary["document_type"] == "receipt" and summary["metadata"]["total"] == 9.7
    assert summary["title"] and summary["summary"]
    letter = docs["letter.jpg"]["jobs"]
    assert "nitrate" in letter["ocr"]["result"]["text"].lower()
    assert letter["summary"]["result"]["document_type"] == "letter"
    assert letter["thumbnail"]["state"] == "complete"

    [hit] = library.search("nitrate")  # a word that is only in the picture
    assert hit["path"].endswith("letter.jpg") and "[nitrate]" in hit["snippet"].lower()
    assert [h["path"] for h in library.search("bakery sourdo")] == [str(tmp_path / "scans" / "receipt.png")]
    assert library.search("zeppelin") == []


def test_the_summary_goes_through_a_configured_endpoint(library, start_worker, tmp_path):
    with ChatServer() as chat:
        chat.script = ["429:1"]  # busy at first: the job waits as told and tries again
        start_worker(OPENAI_BASE_URL=chat.base_url, OPENAI_API_KEY="sk-local", SNAPDESK_LLM_MODEL="tiny-model")
        (tmp_path / "in").mkdir()
        (tmp_path / "in" / "receipt.png").write_bytes(text_image(RECEIPT))
        session, _ = library.submit([tmp_path / "in"])
        job = _wait(library, session)["receipt.png"]["jobs"]["summary"]
    assert job["state"] == "complete" and job["attempts"] == 2
    assert job["result"]["model"] == "tiny-model" and job["result"]["tokens"] == 120
    assert job["result"]["metadata"]["vendor"] == "Corner Bakery"
    assert "CORNER BAKERY" in chat.requests[-1]["body"]["messages"][1]["content"]  # the OCR text went to the model
    [retrying] = store.JobEvent.select().where(store.JobEvent.job == job["id"], store.JobEvent.type == "job:retrying")
    assert "429" in retrying.error


def test_a_bad_key_fails_the_summary_at_once_with_what_to_fix(library, start_worker, tmp_path):
    with ChatServer() as chat:
        chat.default = "401"
        start_worker(OPENAI_BASE_URL=chat.base_url, OPENAI_API_KEY="sk-wrong", SNAPDESK_LLM_MODEL="tiny-model")
        (tmp_path / "in").mkdir()
        (tmp_path / "in" / "receipt.png").write_bytes(text_image(RECEIPT))
        session, _ = library.submit([tmp_path / "in"])
        job = _wait(library, session)["receipt.png"]["jobs"]["summary"]
    assert job["state"] == "failed" and job["attempts"] == 1 and job["error_kind"] == "permanent"
    assert "OPENAI_API_KEY" in job["error"]


def test_no_text_skips_the_summary_and_a_failed_ocr_retried_runs_it(library, start_worker, tmp_path):
    write_photos(tmp_path / "in", 1, prefix="blank", width=320, height=240)
    (tmp_path / "in" / "flaky.png").write_bytes(text_image(LETTER))
    start_worker(faults={"ocr": {"match": "flaky", "fail_attempts": 3}})
    session, _ = library.submit([tmp_path / "in"])
    docs = _wait(library, session)

    blank = docs["blank-000.jpg"]["jobs"]
    assert blank["ocr"]["state"] == "complete" and blank["ocr"]["result"]["text"].strip() == ""
    assert blank["summary"]["state"] == "complete" and blank["summary"]["result"]["skipped"] is True
    assert "no text" in blank["summary"]["result"]["reason"]

    flaky = docs["flaky.png"]["jobs"]
    assert flaky["ocr"]["state"] == "failed"
    assert flaky["summary"]["state"] == "cancelled" and flaky["summary"]["error"] == "skipped: the ocr job failed"

    retried = library.retry([flaky["ocr"]["id"]])
    assert {job.type for job in retried} == {"ocr", "summary"}
    flaky = _wait(library, session)["flaky.png"]["jobs"]
    assert flaky["ocr"]["state"] == "complete" and flaky["summary"]["state"] == "complete"
    assert "nitrate" in flaky["summary"]["result"]["summary"].lower() + " ".join(flaky["summary"]["result"]["topics"])


def test_pdfs_with_and_without_a_text_layer(library, start_worker, tmp_path):
    from fpdf import FPDF
    from PIL import Image
    import io

    folder = tmp_path / "pdfs"
    folder.mkdir()
    pdf = FPDF()
    for page in ("Invoice number 1042 for consulting", "Second page mentions the word aardvark"):
        pdf.add_page()
        pdf.set_font("helvetica", size=16)
        pdf.cell(text=page)
    pdf.output(str(folder / "typed.pdf"))
    scan = Image.open(io.BytesIO(text_image(LETTER)))
    scan.save(folder / "scanned.pdf", "PDF", resolution=100)

    start_worker()
    session, _ = library.submit([folder])
    docs = _wait(library, session)
    typed = docs["typed.pdf"]["jobs"]["ocr"]["result"]
    assert typed["page_count"] == 2 and [p["source"] for p in typed["pages"]] == ["text-layer", "text-layer"]
    assert "aardvark" in typed["pages"][1]["text"]
    scanned = docs["scanned.pdf"]["jobs"]["ocr"]["result"]
    assert scanned["pages"][0]["source"] == "ocr" and "nitrate" in scanned["text"].lower()
    for doc in docs.values():
        thumb = doc["jobs"]["thumbnail"]
        assert thumb["state"] == "complete" and Path(thumb["result"]["thumbnails"]["sm"]["path"]).exists()
    assert [h["path"] for h in library.search("aardvark")] == [str(folder / "typed.pdf")]


def test_the_llm_rate_limit_holds_across_two_workers(settings, start_worker, tmp_path):
    from snapdesk.engine.library import Library

    library = Library(settings.replace(llm_rate_per_minute=2))
    try:
        folder = tmp_path / "in"
        folder.mkdir()
        for i in range(4):
            (folder / f"note-{i}.png").write_bytes(text_image([f"Note number {i}", "Springfield water survey"]))
        workers = [start_worker("--concurrency", "1") for _ in range(2)]
        session, _ = library.submit([folder])

        def summaries(state):
            return store.Job.select().where(store.Job.type == "summary", store.Job.state == state).count()

        wait_for(lambda: library.pump(block_ms=100) is not None and summaries("complete") >= 2, timeout=60,
                 message="two summaries")
        held_until = time.monotonic() + 4
        while time.monotonic() < held_until:  # a minute's two slots are used: the others wait
            library.pump(block_ms=100)
            library.dispatch()
        assert summaries("complete") == 2
        assert store.Job.select().where(store.Job.type == "ocr", store.Job.state == "complete").count() == 4
        assert all(w.proc.poll() is None for w in workers)
        counts = library.transport.queue_counts()["summary"]
        assert counts["delayed"] + counts["waiting"] == 2, json.dumps(counts)
    finally:
        library.close()

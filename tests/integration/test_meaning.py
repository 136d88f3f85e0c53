"""Pictures understood, end to end: describe and embed jobs through real workers on both transports,
search by meaning and by likeness in the library and on the command line, against a real local
vision and embeddings server, and offline."""

import base64
import io
import json
from pathlib import Path

import numpy as np
import pytest
from PIL import Image, ImageDraw

from snapdesk.engine import meaning
from snapdesk.engine.library import Library
from snapdesk.store import db as store

from chat_server import ChatServer
from helpers import snapdesk, text_image

pytestmark = pytest.mark.jobs("thumbnail,ocr,summary,describe,embed")

SHAPES = [("red", (220, 30, 30), "circle", "blue", (30, 60, 220)),
          ("yellow", (240, 220, 30), "square", "green", (30, 170, 50)),
          ("purple", (140, 40, 180), "circle", "white", (245, 245, 245))]


def shape_photo(colour, shape, background, size=(900, 600), fmt="JPEG") -> bytes:
    image = Image.new("RGB", size, background)
    draw = ImageDraw.Draw(image)
    w, h = size
    box = (w * 0.35, h * 0.2, w * 0.35 + h * 0.6, h * 0.8)
    (draw.ellipse if shape == "circle" else draw.rectangle)(box, fill=colour)
    buf = io.BytesIO()
    image.save(buf, fmt, quality=90)
    return buf.getvalue()


def make_folder(folder: Path) -> dict[str, Path]:
    folder.mkdir(parents=True, exist_ok=True)
    paths = {}
    for name, rgb, shape, bg_name, bg in SHAPES:
        paths[f"{name} {shape}"] = folder / f"{name}-{shape}.jpg"
        paths[f"{name} {shape}"].write_bytes(shape_photo(rgb, shape, bg))
    # A resized, re-encoded copy of the first: similar-search must rank it first.
    copy = Image.open(io.BytesIO(shape_photo(SHAPES[0][1], SHAPES[0][2], SHAPES[0][4]))).resize((450, 300))
    buf = io.BytesIO()
    copy.save(buf, "PNG")
    paths["copy"] = folder / "copy-small.png"
    paths["copy"].write_bytes(buf.getvalue())
    paths["receipt"] = folder / "receipt.png"
    paths["receipt"].write_bytes(text_image(["CORNER BAKERY", "Sourdough loaf 4.50", "TOTAL $4.50"]))
    return paths


@pytest.fixture
def chat():
    with ChatServer() as server:
        yield server


def _with_models(settings, chat):
    return settings.replace(openai_base_url=chat.base_url, llm_model="tiny-model", vision_model="tiny-vision",
                            embed_model="words")


def _env(chat):
    return {"OPENAI_BASE_URL": chat.base_url, "SNAPDESK_LLM_MODEL": "tiny-model",
            "SNAPDESK_VISION_MODEL": "tiny-vision", "SNAPDESK_EMBED_MODEL": "words"}


def _jobs(library, session):
    report = library.report(session)
    return {Path(d["path"]).name: d for d in report["documents"]}


def test_pictures_get_descriptions_and_vectors_and_are_found_by_meaning(settings, chat, start_worker, tmp_path):
    settings = _with_models(settings, chat)
    make_folder(tmp_path / "photos")
    start_worker(**_env(chat))
    with Library(settings) as library:
        session, _ = library.submit([tmp_path / "photos"])
        assert library.wait(session, timeout=120), library.report(session)["counts"]
        docs = _jobs(library, session)
        red = docs["red-circle.jpg"]
        assert {t: j["state"] for t, j in red["jobs"].items()} == {t: "complete" for t in
                                                                   ("thumbnail", "ocr", "summary", "describe", "embed")}
        described = red["jobs"]["describe"]["result"]
        assert described["source"] == "llm" and described["description"].startswith("A red circle on a blue")
        assert described["palette"][0]["name"] == "blue" and "red" in described["tags"]
        # The vision model saw the 600 px thumbnail, never the original.
        sent = [r for r in chat.requests if r["path"].endswith("/chat/completions")
                and isinstance(r["body"]["messages"][1]["content"], list)]
        assert len(sent) == 5  # the five pictures; the PDF-less receipt scan is a picture too
        widths = set()
        for request in sent:
            url = request["body"]["messages"][1]["content"][1]["image_url"]["url"]
            with Image.open(io.BytesIO(base64.b64decode(url.split(",", 1)[1]))) as thumb:
                assert thumb.format == "WEBP"
                widths.add(thumb.width)
        assert max(widths) == 600  # the 900 px originals went as their 600 px thumbnails
        embedded = red["jobs"]["embed"]["result"]
        assert embedded == {"model": "words", "dim": 1024, "chars": embedded["chars"]}  # the vector is not in the result
        assert store.Embedding.select().count() == 5
        # The OCR text of the receipt went into its description's prompt and its vector.
        assert "BAKERY" in docs["receipt.png"]["jobs"]["describe"]["result"]["description"]

        hits = meaning.search(library, "yellow square", limit=3, text_first=False)
        assert Path(hits[0]["path"]).name == "yellow-square.jpg" and hits[0]["match"] == "meaning"
        scores = [h["score"] for h in hits]
        assert scores == sorted(scores, reverse=True) and all(score > 0 for score in scores)
        # A picture nothing in the query speaks of is no hit (it scores 0 or less with these vectors).
        assert "purple-circle.jpg" not in {Path(h["path"]).name for h in hits}
        near = meaning.search(library, "yellow square on a green background", limit=5, text_first=False)
        assert Path(near[0]["path"]).name == "yellow-square.jpg" and len(near) > 1
        assert near[0]["score"] > near[1]["score"] > 0
        # Full-text first, then meaning: "bakery" is in the receipt's text.
        combined = meaning.search(library, "bakery", limit=5)
        assert Path(combined[0]["path"]).name == "receipt.png" and combined[0]["match"] == "text"
        assert all(h["match"] == "meaning" for h in combined[1:])
        # Tags and descriptions are in the full-text index too.
        assert {Path(h["path"]).name for h in library.search("purple")} == {"purple-circle.jpg"}

        like = meaning.similar(library, red["id"])
        assert Path(like[0]["path"]).name == "copy-small.png" and like[0]["score"] > 0.9
        assert red["id"] not in [h["document_id"] for h in like]

        library.remove_session(session.id)
        assert store.Embedding.select().count() == 0


def test_without_an_endpoint_descriptions_are_made_offline_and_no_vectors(settings, start_worker, tmp_path):
    make_folder(tmp_path / "photos")
    start_worker()
    with Library(settings) as library:
        session, _ = library.submit([tmp_path / "photos"])
        assert library.wait(session, timeout=120), library.report(session)["counts"]
        docs = _jobs(library, session)
        red = docs["red-circle.jpg"]
        assert "embed" not in red["jobs"]  # not queued without an embeddings endpoint
        described = red["jobs"]["describe"]["result"]
        assert described["source"] == "offline" and described["model"] == "offline"
        assert [c["name"] for c in described["palette"]][:2] == ["blue", "red"]
        assert {"landscape format"} <= set(described["tags"]) and "landscape" not in described["tags"]
        assert {"document", "receipt"} <= set(docs["receipt.png"]["jobs"]["describe"]["result"]["tags"])
        with pytest.raises(meaning.MeaningError, match="no embeddings endpoint is set: set OPENAI_BASE_URL"):
            meaning.search(library, "red circle")
        with pytest.raises(meaning.MeaningError, match="similar-search is off"):
            meaning.similar(library, red["id"])


def test_a_failed_thumbnail_skips_the_description_and_an_empty_document_gets_no_vector(settings, chat, start_worker,
                                                                                    tmp_path):
    settings = _with_models(settings, chat)
    (tmp_path / "in").mkdir()
    (tmp_path / "in" / "broken.jpg").write_bytes(b"\xff\xd8\xff not really a jpeg")
    start_worker(**_env(chat))
    with Library(settings) as library:
        session, _ = library.submit([tmp_path / "in"])
        assert library.wait(session, timeout=60)
        jobs = _jobs(library, session)["broken.jpg"]["jobs"]
        assert jobs["thumbnail"]["state"] == "failed"
        assert jobs["describe"]["state"] == "cancelled" and jobs["describe"]["error"] == "skipped: the thumbnail job failed"
        # OCR failed too: nothing to make a vector from, said plainly.
        assert jobs["embed"]["state"] == "complete"
        assert jobs["embed"]["result"]["reason"] == "nothing to make a vector from: no description, summary or text"
        assert store.Embedding.select().count() == 0


def test_the_command_line_searches_by_meaning_and_likeness(cli_env, chat, tmp_path):
    make_folder(tmp_path / "photos")
    env = {**cli_env, **_env(chat), "SNAPDESK_JOBS": "thumbnail,ocr,describe,embed"}
    done = snapdesk("submit", str(tmp_path / "photos"), "--wait", "--json", env=env, timeout=180)
    assert done.returncode == 0, done.stderr
    found = snapdesk("search", "--meaning", "purple circle", "--json", env=env)
    assert found.returncode == 0, found.stderr
    results = json.loads(found.stdout)["results"]
    # The words' hit first (its tags are in the full-text index), then the rest by meaning, scored.
    assert Path(results[0]["path"]).name == "purple-circle.jpg" and results[0]["match"] == "text"
    scores = [r["score"] for r in results[1:]]
    assert scores and all(r["match"] == "meaning" for r in results[1:]) and scores == sorted(scores, reverse=True)
    assert Path(results[1]["path"]).name in ("red-circle.jpg", "copy-small.png")  # circles share a word
    red = next(r for r in json.loads(snapdesk("status", "--json", env=env).stdout)["documents"]
               if r["path"].endswith("red-circle.jpg"))
    like = snapdesk("similar", str(red["id"]), env=env)
    assert like.returncode == 0 and like.stdout.splitlines()[0].startswith(str(tmp_path / "photos" / "copy-small.png"))
    assert "score" in like.stdout

    offline = {**cli_env, "SNAPDESK_JOBS": "thumbnail,describe,embed"}
    refused = snapdesk("search", "--meaning", "red", env=offline)
    assert refused.returncode == 2 and "no embeddings endpoint is set" in refused.stderr  # a setting is missing


def test_words_find_the_measured_colours_and_shapes_not_the_format(settings, chat, start_worker, tmp_path):
    """With a model describing: a circle in a square picture is not found by "square" (its format is
    "square format"), and the palette's colours are searchable even when the model does not name them."""
    settings = _with_models(settings, chat)
    folder = tmp_path / "in"
    folder.mkdir()
    circle = Image.new("RGB", (600, 600), (30, 170, 50))
    draw = ImageDraw.Draw(circle)
    draw.ellipse((150, 150, 450, 450), fill=(240, 220, 30))
    draw.rectangle((0, 510, 600, 600), fill=(220, 30, 30))  # a red band: 15 % of it, smaller than the circle
    circle.save(folder / "round-thing.jpg", quality=90)
    (folder / "square-shape.jpg").write_bytes(shape_photo((30, 60, 220), "square", (245, 245, 245)))
    start_worker(**_env(chat))
    with Library(settings) as library:
        session, _ = library.submit([folder])
        assert library.wait(session, timeout=120), library.report(session)["counts"]
        described = _jobs(library, session)["round-thing.jpg"]["jobs"]["describe"]["result"]
        assert "red" not in described["colors"] and "red" in [c["name"] for c in described["palette"]]
        assert {"circle", "square format"} <= set(described["tags"])

        def names(query):
            return {Path(h["path"]).name for h in library.search(query)}

        assert names("red") == {"round-thing.jpg"}  # the measured palette, as offline
        assert names("square") == {"square-shape.jpg"}  # the shape, not the format
        assert names("square format") == {"round-thing.jpg"}
        [hit] = library.search("square format")
        assert "square format" in hit["snippet"] and "formatsquare" not in hit["snippet"]


def test_the_command_line_blames_the_model_not_the_file_and_says_when_there_are_no_vectors(cli_env, chat, tmp_path):
    make_folder(tmp_path / "photos")
    chat.default = "incomplete"  # a model that never follows the schema
    env = {**cli_env, **_env(chat), "SNAPDESK_JOBS": "thumbnail,describe"}  # no embed jobs: no vectors
    done = snapdesk("submit", str(tmp_path / "photos"), "--wait", env=env, timeout=180)
    assert done.returncode == 1
    status = snapdesk("status", env=env).stdout
    assert "did not return a valid description" in status and "the model tiny-vision is not" in status
    assert "SNAPDESK_VISION_MODEL" in status and "fix or replace the file" not in status
    failed = snapdesk("jobs", "--failed", env=env).stdout
    assert "follows JSON schemas" in failed and "fix or replace" not in failed

    env["SNAPDESK_JOBS"] = "thumbnail,describe,embed"  # embeddings set up after the documents came in
    found = snapdesk("search", "--meaning", "copy", "--json", env=env)
    assert found.returncode == 0 and [Path(r["path"]).name for r in json.loads(found.stdout)["results"]] == [
        "copy-small.png"]  # the words' hit (its name); stdout is only JSON
    assert "no document has a vector" in found.stderr and "reprocess" in found.stderr
    nothing = snapdesk("search", "--meaning", "zebra", env=env)
    assert nothing.returncode == 1 and "no document has a vector" in nothing.stderr


def test_vectors_are_quantised_small_and_found_exactly_or_by_their_sign_bits(tmp_path):
    database = store.open_db(tmp_path / "library.db")
    rng = np.random.default_rng(1)
    vectors = rng.standard_normal((300, 64)).astype(np.float32)
    for i, v in enumerate(vectors):
        meaning.store_vector(f"{i:064d}", "m", v)
    row = store.Embedding.get()
    assert len(row.vector) == 48  # six bits a number
    codes = meaning.unpack_codes(row.vector, 1, 64)[0]
    assert np.abs(codes.astype(np.float32) * row.scale - vectors[0] / np.linalg.norm(vectors[0])).max() < 0.02
    index = meaning.VectorIndex("m")
    index.refresh()
    query = vectors[7] + 0.1 * rng.standard_normal(64).astype(np.float32)
    assert index.nearest(query, 1)[0][0] == f"{7:064d}"
    exact = index.nearest(query, 5)
    old = meaning.EXACT_LIMIT, meaning.CANDIDATES
    meaning.EXACT_LIMIT, meaning.CANDIDATES = 10, 100  # the binary pre-selection path
    try:
        assert index.nearest(query, 1)[0][0] == exact[0][0]
    finally:
        meaning.EXACT_LIMIT, meaning.CANDIDATES = old
    # A replaced vector (the content embedded again) is seen on the next refresh.
    meaning.store_vector(f"{7:064d}", "m", -vectors[7])
    index.refresh()
    assert len(index) == 300 and index.nearest(query, 1)[0][0] != f"{7:064d}"
    database.close()

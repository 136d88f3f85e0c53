"""The describe and embed processors: offline, and against a real local vision and embeddings server."""

import io

import numpy as np
import pytest
from PIL import Image, ImageDraw

from snapdesk.engine.meaning import exif_facts
from snapdesk.processors.describe import colour_name, describe_llm, describe_offline
from snapdesk.processors.embed import document_text, embed
from snapdesk.processors.errors import PermanentError, RetryableError

from chat_server import ChatServer


def picture(background=(30, 60, 220), shape_colour=(220, 30, 30), shape="circle", size=(600, 400), fmt="WEBP"):
    image = Image.new("RGB", size, background)
    draw = ImageDraw.Draw(image)
    w, h = size
    box = (w * 0.3, h * 0.2, w * 0.3 + h * 0.6, h * 0.8)
    if shape == "circle":
        draw.ellipse(box, fill=shape_colour)
    elif shape == "square":
        draw.rectangle(box, fill=shape_colour)
    buf = io.BytesIO()
    image.save(buf, fmt)
    return buf.getvalue()


@pytest.fixture
def chat():
    with ChatServer() as server:
        yield server


def test_colour_names_are_plain_words():
    assert [colour_name(c) for c in [(220, 30, 30), (30, 60, 220), (250, 250, 250), (10, 10, 10), (128, 128, 128),
                                     (30, 170, 50), (240, 220, 30), (120, 70, 30)]] == [
        "red", "blue", "white", "black", "gray", "green", "yellow", "brown"]


def test_offline_description_names_the_dominant_colours_with_their_shares():
    result = describe_offline(picture(), name="IMG_0001.jpg", width=6000, height=4000)
    assert result["source"] == "offline" and result["model"] == "offline"
    names = [c["name"] for c in result["palette"]]
    assert names[:2] == ["blue", "red"]  # the background is the larger part
    assert 0.6 < result["palette"][0]["share"] < 0.9 and result["palette"][0]["hex"].startswith("#")
    assert result["orientation"] == "landscape" and "landscape format" in result["tags"]
    assert "mostly blue and red" in result["description"]
    assert 0 < result["brightness"] < 1 and result["colorfulness"] > 0.3


def test_offline_tags_come_from_the_metadata_and_the_text():
    night = describe_offline(picture(background=(8, 8, 20), shape_colour=(40, 40, 60), size=(300, 400)),
                             name="DSC_1.jpg", exif={"make": "Canon", "model": "EOS R5",
                                                     "datetime": "2026:07:01 23:10:00"})
    assert {"camera", "canon", "night", "portrait format"} <= set(night["tags"])
    assert "Taken with a Canon EOS R5." in night["detailed_description"]
    # Cameras write their make into the model too: the camera is named with its make once.
    canon = describe_offline(picture(), exif={"make": "Canon", "model": "Canon EOS R5"})
    assert "Taken with a Canon EOS R5." in canon["detailed_description"] and "Canon Canon" not in str(canon)
    shot = describe_offline(picture(background=(250, 250, 250), shape_colour=(30, 30, 30), shape="square"),
                            name="Screenshot 2026-07-01 at 10.00.png", text="File Edit View")
    assert "screenshot" in shot["tags"] and "camera" not in shot["tags"]
    receipt_text = "CORNER BAKERY\nSourdough loaf 4.50\nCroissant 5.20\nSubtotal 9.70\nTax 0.78\nTOTAL $10.48\n" \
                   "Thank you for shopping with us today, come back again soon for more fresh bread and cakes"
    scan = describe_offline(picture(background=(245, 245, 245), shape_colour=(200, 200, 200), shape="square"),
                            name="scan.jpg", text=receipt_text)
    assert {"document", "text", "receipt"} <= set(scan["tags"])


def test_a_file_that_is_not_a_picture_fails_for_good():
    with pytest.raises(PermanentError, match="thumbnail to describe cannot be read"):
        describe_offline(b"not a picture")


def test_exif_facts_come_from_the_original_header(tmp_path):
    exif = Image.Exif()
    exif[0x010F], exif[0x0110] = "NIKON CORPORATION", "NIKON D750"
    path = tmp_path / "photo.jpg"
    Image.new("RGB", (64, 48), "gray").save(path, exif=exif.tobytes())
    assert exif_facts(str(path)) == {"make": "NIKON CORPORATION", "model": "NIKON D750"}
    assert exif_facts(str(tmp_path / "gone.jpg")) == {}


def test_a_vision_model_describes_the_thumbnail_with_a_schema(chat):
    result = describe_llm(picture(), base_url=chat.base_url, api_key="sk-test", model="tiny-vision", timeout=5,
                          name="shape.jpg", text="BAKERY")
    assert result["source"] == "llm" and result["model"] == "tiny-vision" and result["tokens"] == 120
    assert result["description"] == "A red circle on a blue background with a sign saying BAKERY."
    assert {"red", "circle", "landscape format"} <= set(result["tags"])  # the model's tags and the offline ones
    assert result["palette"][0]["name"] == "blue"  # measured, not asked
    [request] = chat.requests
    body = request["body"]
    assert body["response_format"]["type"] == "json_schema"
    assert set(body["response_format"]["json_schema"]["schema"]["required"]) >= {"description", "tags", "mood"}
    image = body["messages"][1]["content"][1]["image_url"]["url"]
    assert image.startswith("data:image/webp;base64,")  # the thumbnail, never the original


def test_a_server_without_structured_output_is_asked_again_without_it(chat):
    chat.script = ["schema400", "schema400"]
    result = describe_llm(picture(), base_url=chat.base_url, api_key="", model="m", timeout=5)
    assert result["description"].startswith("A red circle")
    assert "response_format" in chat.requests[0]["body"] and "response_format" not in chat.requests[1]["body"]


def test_an_invalid_description_gets_a_repair_attempt_then_fails_with_the_reason(chat):
    chat.script = ["malformed", "good"]
    assert describe_llm(picture(), base_url=chat.base_url, api_key="", model="m", timeout=5)["tokens"] == 240
    chat.script = ["incomplete", "incomplete", "good"]
    with pytest.raises(PermanentError, match="did not return a valid description.*description: Field required") as err:
        describe_llm(picture(), base_url=chat.base_url, api_key="", model="m", timeout=5)
    assert len(chat.requests) == 2 + 2  # the answer and one repair: the third ("good") was never asked for
    # The file is not at fault, the model is: the failure says so, and what to do.
    assert err.value.kind == "permanent" and "model m" in err.value.advice
    assert "SNAPDESK_VISION_MODEL" in err.value.advice and "follows JSON schemas" in err.value.advice


def test_a_server_that_refuses_the_schema_still_gets_one_repair_not_two(chat):
    chat.script = ["schema400", "incomplete", "good"]
    result = describe_llm(picture(), base_url=chat.base_url, api_key="", model="m", timeout=5)
    assert result["description"].startswith("A red circle") and len(chat.requests) == 3
    assert ["response_format" in r["body"] for r in chat.requests] == [True, False, False]
    chat.requests.clear()
    chat.script = ["schema400", "incomplete", "incomplete", "good"]
    with pytest.raises(PermanentError, match="did not return a valid description"):
        describe_llm(picture(), base_url=chat.base_url, api_key="", model="m", timeout=5)
    assert len(chat.requests) == 3  # refused once, answered, repaired once: then it gives up


def test_the_format_is_a_tag_no_shape_word_is_mistaken_for(chat):
    square = describe_offline(picture(size=(400, 400)), name="a.jpg")
    assert "square format" in square["tags"] and "square" not in square["tags"]
    assert square["orientation"] == "square" and "in square format" in square["description"]


def test_vision_errors_are_the_summary_errors(chat):
    chat.script = ["429:9"]
    with pytest.raises(RetryableError, match="429") as err:
        describe_llm(picture(), base_url=chat.base_url, api_key="", model="m", timeout=5)
    assert err.value.retry_after == 9.0
    chat.script = ["401"]
    with pytest.raises(PermanentError, match="refused the API key"):
        describe_llm(picture(), base_url=chat.base_url, api_key="sk-bad", model="m", timeout=5)


def test_embeddings_are_unit_vectors_and_near_for_shared_words(chat):
    a, b, c = embed(["a red circle by the sea", "red circle", "invoice from the plumber"], base_url=chat.base_url,
                    api_key="", model="words", timeout=5)
    assert a.dtype == np.float32 and a.size == chat.embed_dim and abs(np.linalg.norm(a) - 1) < 1e-5
    assert float(a @ b) > 0.5 > float(a @ c)
    assert chat.requests[0]["path"] == "/v1/embeddings"


def test_embedding_errors_say_what_to_fix(chat):
    chat.script = ["404"]
    with pytest.raises(PermanentError, match="no embeddings model 'words' or no embeddings API \\(404\\)"):
        embed(["x"], base_url=chat.base_url, api_key="", model="words", timeout=5)
    chat.script = ["500"]
    with pytest.raises(RetryableError, match="embeddings endpoint failed \\(500\\)"):
        embed(["x"], base_url=chat.base_url, api_key="", model="words", timeout=5)
    with pytest.raises(RetryableError, match="cannot reach the embeddings endpoint"):
        embed(["x"], base_url="http://127.0.0.1:9/v1", api_key="", model="words", timeout=2)


def test_a_documents_text_puts_what_it_shows_first():
    text = document_text({"description": "A red circle.", "tags": ["red", "circle"], "colors": ["red"]},
                         {"title": "Bakery receipt", "summary": "A receipt.", "topics": ["bread"]}, "TOTAL 4.50")
    assert text.splitlines()[0] == "A red circle."
    assert "Tags: red, circle" in text and "Bakery receipt" in text and text.endswith("Text: TOTAL 4.50")
    assert document_text(None, {"skipped": True}, "") == ""

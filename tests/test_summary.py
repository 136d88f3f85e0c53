"""The summary processor against a real local chat-completions server, and offline."""

import pytest

from snapdesk.processors.errors import PermanentError, RetryableError
from snapdesk.processors.summary import summarize_extractive, summarize_llm

from chat_server import ChatServer

RECEIPT = """CORNER BAKERY
12 Market Street, Springfield
Date: 2026-03-14
Sourdough loaf 4.50
Croissant x2 5.20
Coffee large 3.80
Subtotal 13.50
Tax 1.08
TOTAL $14.58
Card payment. Thank you!"""

REPORT = """Quarterly Report on Regional Water Quality

The Springfield Water Authority measured nitrate levels at forty sampling sites during the third quarter.
Nitrate levels rose at sites near farmland after heavy rain in August, while the city centre stayed well
within the legal limits for drinking water. The authority recommends new buffer strips along the river
to reduce runoff from farmland. Maria Lopez, the chief engineer, will present the findings on 12 October 2026."""


@pytest.fixture
def chat():
    with ChatServer() as server:
        yield server


def _llm(server, text=RECEIPT, **kw):
    return summarize_llm(text, "receipt.jpg", base_url=server.base_url, api_key="sk-test", model="tiny-model",
                         **{"timeout": 5, **kw})


def test_a_good_answer_gives_every_field(chat):
    result = _llm(chat)
    assert result["model"] == "tiny-model" and result["source"] == "llm"
    assert result["tokens"] == 120  # from the API's usage
    assert result["title"] and result["summary"].startswith("A document named receipt.jpg")
    assert result["document_type"] == "receipt"
    assert {"name": "Springfield", "type": "other"} in result["entities"]  # bare strings are taken as names
    assert result["metadata"]["total"] == 14.58 and result["metadata"]["currency"] == "USD"
    [request] = chat.requests
    assert request["authorization"] == "Bearer sk-test"
    assert "TOTAL $14.58" in request["body"]["messages"][1]["content"]


def test_json_in_a_code_fence_is_accepted(chat):
    chat.script = ["fenced"]
    assert _llm(chat)["metadata"]["vendor"] == "Corner Bakery"


def test_invalid_json_gets_one_repair_attempt(chat):
    chat.script = ["malformed", "good"]
    result = _llm(chat)
    assert result["tokens"] == 240  # both calls counted
    repair = chat.requests[1]["body"]["messages"]
    assert repair[-1]["role"] == "user" and "not valid" in repair[-1]["content"]
    assert repair[-2]["content"].startswith("{'title'")  # the model sees what it said


def test_invalid_json_twice_fails_with_the_reason(chat):
    chat.script = ["malformed", "incomplete"]
    with pytest.raises(PermanentError, match=r"did not return valid JSON.*summary: Field required"):
        _llm(chat)
    assert len(chat.requests) == 2


def test_429_is_retryable_and_carries_retry_after(chat):
    chat.script = ["429:7"]
    with pytest.raises(RetryableError, match="429") as err:
        _llm(chat)
    assert err.value.retry_after == 7.0


def test_500_and_timeouts_are_retryable(chat):
    chat.script = ["500"]
    with pytest.raises(RetryableError, match="500"):
        _llm(chat)
    chat.script = ["slow:3"]
    with pytest.raises(RetryableError, match="did not answer in time"):
        _llm(chat, timeout=0.5)


@pytest.mark.parametrize("status, advice", [("401", "refused the API key (401)"),
                                            ("403", "may not use the model tiny-model"),
                                            ("400", "rejected the request (400: Unknown parameter)")])
def test_auth_and_request_errors_fail_at_once_saying_what_to_fix(chat, status, advice):
    chat.script = [status]
    with pytest.raises(PermanentError, match=r"\(?" + advice.replace("(", r"\(").replace(")", r"\)")):
        _llm(chat)
    assert len(chat.requests) == 1


def test_nothing_listening_is_retryable():
    with pytest.raises(RetryableError, match="cannot reach the LLM endpoint"):
        summarize_llm("text", "a.jpg", base_url="http://127.0.0.1:9/v1", api_key="", model="m", timeout=2)


def test_the_offline_summary_of_a_receipt():
    result = summarize_extractive(RECEIPT, "receipt_001.jpg")
    assert result["model"] == "extractive" and result["source"] == "extractive"
    assert result["document_type"] == "receipt"
    meta = result["metadata"]
    assert (meta["vendor"], meta["date"], meta["total"], meta["currency"]) == ("CORNER BAKERY", "2026-03-14", 14.58,
                                                                               "USD")
    assert [i["description"] for i in meta["line_items"]] == ["Sourdough loaf", "Croissant x2", "Coffee large"]
    assert "Receipt from CORNER BAKERY" in result["summary"] and "14.58" in result["summary"]
    assert {"name": "2026-03-14", "type": "date"} in result["entities"]


def test_the_offline_summary_of_prose_picks_salient_sentences():
    result = summarize_extractive(REPORT, "water.pdf")
    assert result["title"] == "Quarterly Report on Regional Water Quality"
    assert result["document_type"] == "report" and result["metadata"] == {}
    assert "nitrate levels" in result["summary"].lower()
    assert result["summary"].count(".") <= 4  # a few sentences, not the whole text
    names = {e["name"] for e in result["entities"]}
    assert {"Maria Lopez", "Springfield Water Authority", "12 October 2026"} <= names
    assert "farmland" in result["topics"] and "the" not in result["topics"]

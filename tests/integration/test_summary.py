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


INVOICE = """INVOICE
Invoice from Northwind Garden Supplies Ltd
14 Harbour Road, Bristol BS1 4QA
Invoice number: INV-2026-0412
Date: 03/11/2026
Due date: 03/12/2026
Bill to: Greenfield Community Allotments
Description                 Qty   Unit price   Amount
Raised bed kit, cedar        4      45.00      180.00
Compost, 50 l bags          10       6.50       65.00
Delivery                     1      15.00       15.00
Subtotal                                      260.00
VAT 20%                                        52.00
Total due                                 GBP 312.00
Payment terms: 30 days. Please quote the invoice number with your payment.
Thank you for your business."""

SHOP_RECEIPT = """Receipt
FRESH MART
221 Elm Street, Springfield
Date 2026-02-08 14:32
Bananas 1.29
Whole milk 2L 3.49
Bread 2.99
Eggs dozen 4.19
SUBTOTAL 11.96
TAX 0.96
TOTAL USD 12.92
VISA **** 4421 12.92
Thank you for shopping with us!"""

LETTER = """Mrs Helen Carter
7 Mill Lane
Oxford OX2 6LP

12 March 2026

Dear Mr Patel,

Thank you for your letter of 2 March about the repairs to the roof of the village hall.
The committee met last week and agreed to accept the quote from Hartley Roofing for the work.
We would like the repairs to start in April, before the spring fair, if that suits your team.
Please let me know which dates are possible and whether you need access to the hall at weekends.

Yours sincerely,
Helen Carter
Secretary, Kingston Village Hall Committee"""

NOTE = """Shopping and errands
- pick up parcel from post office
- call the dentist to move Thursday appointment
- milk, eggs, bread
Remember: bins go out Tuesday night.
Pay the window cleaner 20.00"""

FIELD_WORDS = {"usd", "gbp", "eur", "date", "due", "total", "subtotal", "tax", "vat", "amount", "qty", "price",
               "number", "invoice", "receipt", "payment", "dear", "sincerely", "march", "tuesday", "thursday"}


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


def test_the_offline_summary_of_an_invoice_names_its_vendor_once():
    result = summarize_extractive(INVOICE, "scan_0412.pdf")
    assert result["document_type"] == "invoice"
    assert result["title"] == "Invoice from Northwind Garden Supplies Ltd"
    assert result["summary"] == ("Invoice from Northwind Garden Supplies Ltd, dated 03/11/2026, total 312.00 GBP, "
                                 "3 line items.")
    assert [i["description"] for i in result["metadata"]["line_items"]] == ["Raised bed kit, cedar",
                                                                            "Compost, 50 l bags", "Delivery"]
    assert not FIELD_WORDS & set(result["topics"]) and {"compost", "cedar"} <= set(result["topics"])


def test_the_offline_summary_of_a_receipt_with_a_heading():
    result = summarize_extractive(SHOP_RECEIPT, "IMG_2211.jpg")
    assert result["document_type"] == "receipt"
    assert result["title"] == "Receipt from FRESH MART"
    assert result["summary"] == "Receipt from FRESH MART, dated 2026-02-08, total 12.92 USD, 4 line items."
    assert not FIELD_WORDS & set(result["topics"]) and {"bananas", "milk"} <= set(result["topics"])


def test_a_receipt_that_calls_itself_an_invoice_from_is_not_a_receipt_from_an_invoice():
    text = "Invoice from Corner Bakery\n" + RECEIPT.split("\n", 1)[1]
    result = summarize_extractive(text, "r.jpg")
    assert result["document_type"] == "receipt" and result["metadata"]["vendor"] == "Corner Bakery"
    assert result["title"] == "Receipt from Corner Bakery"
    assert result["summary"].startswith("Receipt from Corner Bakery, dated 2026-03-14, total 14.58 USD")


def test_the_offline_summary_of_a_letter():
    result = summarize_extractive(LETTER, "letter.png")
    assert result["document_type"] == "letter"
    assert result["title"] == "Letter to Mr Patel from Helen Carter"
    assert "accept the quote from Hartley Roofing" in result["summary"]
    assert "without full sentences" not in result["summary"]
    assert not FIELD_WORDS & set(result["topics"]) and {"hall", "repairs"} <= set(result["topics"])
    assert not {"helen", "carter", "patel"} & set(result["topics"])  # people are entities, not topics


def test_the_offline_summary_of_a_note_lists_what_it_says():
    result = summarize_extractive(NOTE, "note.jpg")
    assert result["title"] == "Shopping and errands"
    assert result["summary"].startswith("Shopping and errands: pick up parcel from post office; call the dentist "
                                        "to move Thursday appointment; milk, eggs, bread")
    assert "without full sentences" not in result["summary"] and "words" not in result["summary"]
    assert not FIELD_WORDS & set(result["topics"])

"""Summaries: what a document is, through any OpenAI-compatible endpoint, or offline.

``summarize_llm`` asks a chat-completions endpoint (OpenAI, Ollama, llama.cpp, vLLM) for one
JSON object, validates it, and gives invalid JSON one repair attempt. ``summarize_extractive``
makes the same fields with no model at all: salient sentences, dates, amounts, names, and
keywords as topics, labelled with model ``extractive``. Both return the same shape:

    {"summary", "title", "entities": [{"name", "type"}], "topics": [...], "document_type",
     "metadata": {"vendor", "date", "total", "currency", "line_items": [{"description", "amount"}]},
     "tokens", "model"}
"""

from __future__ import annotations

import math
import re
from collections import Counter
from typing import Any, Literal

from openai.types.chat import ChatCompletionMessageParam
from pydantic import BaseModel, Field, ValidationError, field_validator

from . import llm
from .errors import PermanentError

#: At most this much text goes to the model (about 6k tokens); the rest is cut, and the prompt says so.
MAX_INPUT_CHARS = 24_000
DOCUMENT_TYPES = ("receipt", "invoice", "letter", "form", "report", "article", "id", "photo", "other")

SYSTEM_PROMPT = """You read the text of one document (OCR output, so expect noise) and describe it.
Reply with ONE JSON object and nothing else, with exactly these keys:
  "title": a short title for the document (at most 12 words),
  "summary": two or three sentences saying what the document is and what matters in it,
  "document_type": one of %s,
  "entities": up to 10 objects {"name": ..., "type": "person" | "organization" | "place" | "date" | "amount" | "other"},
  "topics": up to 6 short lowercase keywords,
  "metadata": for a receipt or an invoice {"vendor": ..., "date": "YYYY-MM-DD" or null, "total": number or null,
              "currency": ISO code or null, "line_items": [{"description": ..., "amount": number or null}]};
              for anything else {}.
""" % ", ".join(DOCUMENT_TYPES)


# -- the shape every summary has -------------------------------------------------------
class Entity(BaseModel):
    name: str
    type: str = "other"


class LineItem(BaseModel):
    description: str
    amount: float | None = None


class Metadata(BaseModel):
    vendor: str | None = None
    date: str | None = None
    total: float | None = None
    currency: str | None = None
    line_items: list[LineItem] = Field(default_factory=list)


class Summary(BaseModel):
    title: str
    summary: str = Field(min_length=1)
    document_type: str = "other"
    entities: list[Entity] = Field(default_factory=list)
    topics: list[str] = Field(default_factory=list)
    metadata: Metadata = Field(default_factory=Metadata)

    @field_validator("document_type")
    @classmethod
    def _known_type(cls, value: str) -> str:
        value = value.strip().lower()
        return value if value in DOCUMENT_TYPES else "other"

    @field_validator("entities", mode="before")
    @classmethod
    def _entities(cls, value: Any) -> Any:
        # Models often list entities as bare strings; take them as names.
        return [{"name": v} if isinstance(v, str) else v for v in value or []]


def _result(summary: Summary, tokens: int, model: str, source: Literal["llm", "extractive"]) -> dict[str, Any]:
    data = summary.model_dump()
    if data["document_type"] not in ("receipt", "invoice"):
        data["metadata"] = {}
    return {**data, "tokens": tokens, "model": model, "source": source}


# -- through a model -------------------------------------------------------------------
def summarize_llm(text: str, filename: str, *, base_url: str, api_key: str, model: str,
                  timeout: float = 120.0) -> dict[str, Any]:
    """Summarise ``text`` with the chat-completions endpoint at ``base_url``."""
    client = llm.client(base_url, api_key, timeout)
    cut = len(text) > MAX_INPUT_CHARS
    user = (f"File name: {filename}\n\nDocument text" + (" (cut to its first part)" if cut else "") + ":\n"
            + text[:MAX_INPUT_CHARS])
    messages: list[ChatCompletionMessageParam] = [{"role": "system", "content": SYSTEM_PROMPT},
                                                  {"role": "user", "content": user}]
    tokens = 0
    problem = None
    for _ in range(2):  # the answer, and one repair attempt
        reply, used = llm.complete(client, model, messages, base_url)
        tokens += used
        try:
            return _result(Summary.model_validate(llm.parse_json(reply)), tokens, model, "llm")
        except (ValueError, ValidationError) as exc:
            problem = llm.explain(exc)
        messages += [{"role": "assistant", "content": reply},
                     {"role": "user", "content": f"That reply was not valid: {problem}. Reply with only the "
                                                 "corrected JSON object, with the keys asked for."}]
    raise PermanentError(f"the model {model} did not return valid JSON, even when asked to repair it: {problem}")


def check_endpoint(base_url: str, api_key: str, model: str, timeout: float = 20.0) -> str:
    """Ask the endpoint for a one-word answer: what the Settings dialog's Test button shows.
    Raises JobError with what to fix (the same messages a summary job would give)."""
    client = llm.client(base_url, api_key, timeout)
    reply, tokens = llm.complete(client, model, [{"role": "user", "content": "Reply with the single word OK."}], base_url)
    return f"{model} answered ({tokens} tokens): {reply.strip()[:40]}"


# -- offline ---------------------------------------------------------------------------
STOPWORDS = frozenset("""a about above after again against all am an and any are as at be because been before being
below between both but by can could did do does doing down during each few for from further had has have having he her
here hers herself him himself his how i if in into is it its itself just me more most my myself no nor not now of off
on once only or other our ours ourselves out over own same she should so some such than that the their theirs them
themselves then there these they this those through to too under until up very was we were what when where which while
who whom why will with would you your yours yourself yourselves also may must shall per via page""".split())

#: Words that are never a document's topic: field labels, units, currencies, months and days, and
#: the words of greetings and sign-offs. They are what invoices, receipts and letters are made of.
TOPIC_STOPWORDS = STOPWORDS | frozenset("""usd eur gbp chf jpy cad aud dollar dollars euro euros pound pounds
date dated day days number total subtotal sub tax vat due amount amounts qty quantity price prices unit units each
description item items payment payments pay paid terms invoice invoices receipt receipts bill bills ref reference
account tel phone fax email mail www com net org http https street road lane avenue ave suite floor
thank thanks dear sincerely regards yours kind best wishes please visa mastercard card cash change balance tip
ltd inc llc gmbh plc pcs kg ml cm mm km min hrs
january february march april june july august september october november december jan feb mar apr jun jul aug
sep sept oct nov dec monday tuesday wednesday thursday friday saturday sunday today tomorrow yesterday week weeks
month months year years last next mr mrs ms miss dr sir madam inv""".split())
#: A line that only says what kind of document this is ("INVOICE", "Tax invoice", "Sales receipt").
DOC_HEADING_RE = re.compile(r"^\W*(?:(?:tax|sales|vat|cash|payment|customer|original)\s+)?(?:invoice|receipt|bill)"
                            r"(?:\s+(?:no\.?|number|#)\s*\S*)?\W*$", re.I)
#: "Invoice from", "Receipt from" at the start of a line: the vendor follows.
FROM_PREFIX_RE = re.compile(r"^\W*(?:invoice|receipt|bill)\s+(?:from|by)\s+", re.I)
#: A "Label: value" line (a field of a form, an invoice or a receipt), not a vendor's name.
FIELD_RE = re.compile(r"^[A-Za-z][A-Za-z .#/-]{0,30}:\s*\S")
BULLET_RE = re.compile(r"^\s*(?:[-*•·–]|\d{1,2}[.)]|\[[ xX]?\])\s+")

_MONTHS = "january|february|march|april|may|june|july|august|september|october|november|december"
_MONTHS_SHORT = "jan|feb|mar|apr|may|jun|jul|aug|sep|sept|oct|nov|dec"
DATE_RE = re.compile(
    rf"\b(\d{{4}}-\d{{2}}-\d{{2}}|\d{{1,2}}[./-]\d{{1,2}}[./-]\d{{2,4}}|"
    rf"\d{{1,2}}\s+(?:{_MONTHS}|{_MONTHS_SHORT})\.?\s+\d{{4}}|(?:{_MONTHS}|{_MONTHS_SHORT})\.?\s+\d{{1,2}},?\s+\d{{4}})\b",
    re.I)
CURRENCIES = {"$": "USD", "€": "EUR", "£": "GBP", "¥": "JPY", "usd": "USD", "eur": "EUR", "gbp": "GBP",
              "chf": "CHF", "jpy": "JPY", "cad": "CAD", "aud": "AUD"}
AMOUNT_RE = re.compile(r"(?P<cur>[$€£¥]|\b(?:USD|EUR|GBP|CHF|JPY|CAD|AUD)\b)?\s?"
                       r"(?P<num>\d{1,3}(?:[,.\s]\d{3})*[.,]\d{2}|\d+[.,]\d{2})\b\s?(?P<cur2>[$€£¥]|\b(?:USD|EUR|GBP|CHF)\b)?",
                       re.I)
NAME_RE = re.compile(r"\b([A-Z][a-z]+(?:[ \t]+(?:[A-Z][a-z]+|&|of|and)){0,3}[ \t]+[A-Z][a-z]+)\b")
WORD_RE = re.compile(r"[A-Za-zÀ-ÿ][A-Za-zÀ-ÿ'-]{2,}")
RECEIPT_WORDS = {"receipt": 3, "total": 2, "subtotal": 2, "tax": 1, "vat": 1, "cash": 1, "change": 1, "card": 1,
                 "qty": 1, "thank": 1}
INVOICE_WORDS = {"invoice": 4, "due": 1, "bill": 1, "payment": 1, "terms": 1, "vat": 1, "total": 1}
LETTER_WORDS = {"dear": 3, "sincerely": 3, "regards": 2, "yours": 1}
REPORT_WORDS = {"report": 3, "findings": 2, "quarter": 1, "quarterly": 1, "results": 1, "recommends": 1, "analysis": 1}


def summarize_extractive(text: str, filename: str) -> dict[str, Any]:
    """The summary fields from the text alone: no model, no network.

    A receipt or an invoice is summed up by its facts ("Invoice from Northwind Ltd, dated ...,
    total 312.00 GBP, 3 line items"), a text with sentences by its most salient ones, and a short
    text without sentences (a note, a list, a label) by its heading and first lines."""
    lines = [line.strip() for line in text.splitlines() if line.strip()]
    words = [w.lower() for w in WORD_RE.findall(text)]
    content = [w for w in words if w not in STOPWORDS]
    freq = Counter(content)
    priced_lines = sum(1 for line in lines if AMOUNT_RE.search(line))
    doc_type = _document_type(Counter(words), priced_lines)
    metadata = _receipt_fields(lines) if doc_type in ("receipt", "invoice") else Metadata()
    entities = _entities(text)
    if doc_type in ("receipt", "invoice"):
        title = _kind_from(doc_type, metadata.vendor)
        summary_text = _describe(doc_type, metadata)
        people: tuple[str | None, ...] = ()
    else:
        people = _letter_people(lines) if doc_type == "letter" else (None, None)
        title = _letter_title(*people) or _title(lines, filename)
        summary_text = _salient(lines, freq) or _listing(title, lines)
    named = {w.lower() for name in (metadata.vendor, *people) if name for w in WORD_RE.findall(name)}
    summary = Summary(
        title=title,
        summary=summary_text,
        document_type=doc_type,
        entities=entities,
        # What was bought is what a receipt or an invoice is about (its address lines are not).
        topics=_topics([w.lower() for item in metadata.line_items for w in WORD_RE.findall(item.description)]
                       or content, named),
        metadata=metadata,
    )
    return _result(summary, len(words), "extractive", "extractive")


def _topics(content: list[str], named: set[str], count: int = 6) -> list[str]:
    """The most frequent words that say what the document is about: no field labels, units,
    currencies or dates, no reference numbers, and not the words of the names of the vendor, the
    sender or the addressee (the people and companies are entities, not topics)."""
    words = (w.strip("-'") for w in content)
    freq = Counter(w for w in words if len(w) >= 3 and w not in TOPIC_STOPWORDS and w not in named)
    return [w for w, _ in freq.most_common(count)]


def _salient(lines: list[str], freq: Counter[str], count: int = 3) -> str:
    """The ``count`` sentences whose words are most frequent in the document, in document order."""
    # A line that runs on into a next one starting in lower case is one sentence broken by the scan.
    blocks: list[str] = []
    for line in lines:
        if BULLET_RE.match(line):  # an item of a list, not prose
            blocks.append("")
            continue
        if blocks and blocks[-1] and not blocks[-1].endswith((".", "!", "?", ":")) and line[:1].islower():
            blocks[-1] += " " + line
        else:
            blocks.append(line)
    # Short lines without a full stop are headings, table rows or receipt lines, not sentences.
    prose = [block for block in blocks if len(block.split()) >= 8 or block.endswith((".", "!", "?"))]
    flat = " ".join(prose)
    sentences = [s.strip() for s in re.split(r"(?<=[.!?])\s+(?=[A-Z0-9])", flat) if len(s.split()) >= 5]
    if len(sentences) < 2 and sum(len(s.split()) for s in sentences) < 12:
        return ""  # a sentence or two at the end of a list is not what the document says
    top = max(freq.values()) if freq else 1

    def score(sentence: str) -> float:
        ws = [w.lower() for w in WORD_RE.findall(sentence) if w.lower() not in STOPWORDS]
        return sum(freq[w] / top for w in ws) / math.sqrt(len(ws) + 1)

    best = sorted(range(len(sentences)), key=lambda i: -score(sentences[i]))[:count]
    return " ".join(sentences[i][:400] for i in sorted(best))


def _kind_from(doc_type: str, vendor: str | None) -> str:
    return f"{doc_type.capitalize()} from {vendor or 'an unknown vendor'}"


def _describe(doc_type: str, metadata: Metadata) -> str:
    """A receipt's or an invoice's summary: who, when, how much, how many items."""
    parts = [_kind_from(doc_type, metadata.vendor)]
    if metadata.date:
        parts.append(f"dated {metadata.date}")
    if metadata.total is not None:
        parts.append(f"total {metadata.total:.2f}" + (f" {metadata.currency}" if metadata.currency else ""))
    if metadata.line_items:
        parts.append(f"{len(metadata.line_items)} line item{'s' if len(metadata.line_items) != 1 else ''}")
    return ", ".join(parts) + "."


def _listing(title: str, lines: list[str], count: int = 4) -> str:
    """A text without sentences to pick (a note, a list, a label): its heading and first lines."""
    items = [BULLET_RE.sub("", line).strip(" .;") for line in lines]
    items = [item for item in items if item and item != title][:count]
    if not items:
        return title.rstrip(".") + "."
    more = len(lines) - 1 - len(items)
    return f"{title.rstrip('.:')}: {'; '.join(items)}" + ("; ..." if more > 0 else ".")


def _title(lines: list[str], filename: str) -> str:
    for line in lines[:5]:
        letters = sum(c.isalpha() for c in line)
        if 3 <= len(line) <= 80 and letters >= len(line) / 2 and not re.match(r"(dear|to|hi|hello)\b", line, re.I):
            return BULLET_RE.sub("", line).strip()
    stem = filename.rsplit(".", 1)[0]
    return re.sub(r"[_-]+", " ", stem).strip() or "Untitled"


def _letter_people(lines: list[str]) -> tuple[str | None, str | None]:
    """A letter's addressee and sender, from its greeting ("Dear Mr Patel,") and its signature."""
    to = sender = None
    for i, line in enumerate(lines):
        greeting = re.match(r"(?:dear|hello|hi)\s+([^,:]{2,40})[,:]?$", line, re.I)
        if greeting and to is None:
            to = greeting.group(1).strip()
        if re.match(r"(?:yours\s+(?:sincerely|faithfully|truly)|(?:kind|best|warm)\s+regards|regards|"
                    r"sincerely|best wishes)\b", line, re.I) and i + 1 < len(lines):
            name = lines[i + 1].strip(" ,.")
            if 1 <= len(name.split()) <= 4 and sum(c.isalpha() for c in name) >= len(name) * 0.7:
                sender = name
    return to, sender


def _letter_title(to: str | None = None, sender: str | None = None) -> str | None:
    """"Letter to Mr Patel from Helen Carter" (None when neither is known)."""
    if to is None and sender is None:
        return None
    return "Letter" + (f" to {to}" if to else "") + (f" from {sender}" if sender else "")


def _document_type(words: Counter[str], priced_lines: int = 0) -> str:
    scores = {kind: sum(words[w] * weight for w, weight in table.items())
              for kind, table in (("receipt", RECEIPT_WORDS), ("invoice", INVOICE_WORDS), ("letter", LETTER_WORDS),
                                  ("report", REPORT_WORDS))}
    scores["receipt"] += min(3, priced_lines)  # lines with prices are what receipts are made of
    if priced_lines < 2:  # no receipt or invoice without prices, whatever its words
        scores["receipt"] = scores["invoice"] = 0
    kind, best = max(scores.items(), key=lambda kv: kv[1])
    if best >= 4:
        return kind
    return "article" if sum(words.values()) > 150 else "other"


def _amount(text: str) -> tuple[float | None, str | None]:
    match = None
    for match in AMOUNT_RE.finditer(text):
        pass  # the last amount on a line is the price
    if match is None:
        return None, None
    num = match.group("num").replace(" ", "")
    if re.search(r"[.,]\d{2}$", num):
        num = re.sub(r"[.,]", "", num[:-3]) + "." + num[-2:]
    cur = match.group("cur") or match.group("cur2")
    return float(num), CURRENCIES.get(cur.lower()) if cur else None


def _receipt_fields(lines: list[str]) -> Metadata:
    vendor = _vendor(lines)
    date = next((m.group(1) for line in lines if (m := DATE_RE.search(line))), None)
    total = currency = None
    items = []
    for line in lines:
        amount, cur = _amount(line)
        currency = currency or cur
        if amount is None:
            continue
        low = line.lower()
        if re.search(r"\b(grand\s+)?total\b", low) and "subtotal" not in low and "sub total" not in low:
            total = amount  # the last "total" line wins (totals after tax)
        elif not re.search(r"\b(subtotal|sub total|tax|vat|change|cash|card|balance|tip)\b", low) and total is None:
            description = re.sub(r"(?:\s+[\d.,]+)+$", "", AMOUNT_RE.sub("", line).rstrip()).strip(" .:-*x\t")
            if sum(c.isalpha() for c in description) >= 2:
                items.append(LineItem(description=description, amount=amount))
    return Metadata(vendor=vendor, date=date, total=total, currency=currency, line_items=items[:50])


def _vendor(lines: list[str]) -> str | None:
    """Who issued a receipt or an invoice: the first of its top lines that is a name, not the
    document's kind ("INVOICE"), a field ("Date: ..."), an amount or an address number."""
    for line in lines[:6]:
        line = FROM_PREFIX_RE.sub("", line).strip()
        if DOC_HEADING_RE.match(line) or FIELD_RE.match(line) or AMOUNT_RE.search(line) or DATE_RE.search(line):
            continue
        if sum(c.isalpha() for c in line) >= 3 and not re.match(r"\d", line):
            return line
    return None


def _entities(text: str) -> list[Entity]:
    found: list[Entity] = []
    seen: set[str] = set()

    def add(name: str, kind: str) -> None:
        key = name.lower()
        if key not in seen and len(found) < 15:
            seen.add(key)
            found.append(Entity(name=name, type=kind))

    for m in DATE_RE.finditer(text):
        add(m.group(1), "date")
    for m in AMOUNT_RE.finditer(text):
        if m.group("cur") or m.group("cur2"):
            add(m.group(0).strip(), "amount")
    names: Counter[str] = Counter()
    for m in NAME_RE.finditer(text):
        words = m.group(1).split()
        while words and words[0].lower() in STOPWORDS:  # "The Springfield Water Authority"
            words.pop(0)
        if len(words) >= 2:
            names[" ".join(words)] += 1
    for name, _ in names.most_common(8):
        add(name, "name")
    return found

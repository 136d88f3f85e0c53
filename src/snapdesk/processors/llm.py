"""Any OpenAI-compatible endpoint (OpenAI, Ollama, llama.cpp, vLLM), as the summary, describe and
embed jobs talk to it: one client per call with no retries of its own, its errors mapped to
JobErrors a person can act on (429 and 5xx wait, honouring Retry-After; 401, 403, 404 and 400
fail at once saying what to fix), and credentials hidden from every message and log line.
"""

from __future__ import annotations

import json
import logging
import re
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any
from urllib.parse import parse_qsl

import openai
from openai.types.chat import ChatCompletionMessageParam
from pydantic import ValidationError

from ..config import redact_text, redact_url
from .errors import PermanentError, RetryableError


class RetryLater(RetryableError):
    """A retryable failure that knows when to try again (a 429's Retry-After)."""

    def __init__(self, message: str, retry_after: float | None = None):
        super().__init__(message)
        self.retry_after = retry_after


def endpoint_for_messages(base_url: str) -> str:
    """``base_url`` as messages and logs name it: a password or token in its userinfo, and the
    values of query parameters such as ``key``, ``api_key``, ``token`` or ``secret``, hidden."""
    return redact_url(base_url).rstrip("/")


class _RedactURLs(logging.Filter):
    """Hides credentials in the URLs the HTTP client logs ("HTTP Request: POST http://user:pw@...")."""

    def filter(self, record: logging.LogRecord) -> bool:
        if isinstance(record.args, tuple):
            record.args = tuple(redact_text(str(a)) if "://" in str(a) else a for a in record.args)
        if isinstance(record.msg, str) and "://" in record.msg:
            record.msg = redact_text(record.msg)
        return True


for _name in ("httpx", "httpx2"):  # the HTTP client under openai logs every request's URL at INFO
    logging.getLogger(_name).addFilter(_RedactURLs())


def client(base_url: str, api_key: str, timeout: float) -> openai.OpenAI:
    """An OpenAI client for ``base_url``. Query parameters in the URL (``?api-version=``,
    ``?key=``) are sent with every request (in the URL openai would put them before the path)."""
    where = endpoint_for_messages(base_url)
    url, _, query = base_url.partition("?")
    try:
        client = openai.OpenAI(base_url=url, api_key=api_key or "not-needed", timeout=timeout, max_retries=0,
                               default_query=dict(parse_qsl(query.partition("#")[0], keep_blank_values=True)) or None)
    except Exception as exc:  # an invalid URL (a bad port, an unclosed "[")
        problem = redact_text(str(exc), base_url)
        raise PermanentError(f"the LLM endpoint {where} is not a valid URL ({problem}): "
                             "check OPENAI_BASE_URL") from None
    return client


def complete(client: openai.OpenAI, model: str, messages: list[ChatCompletionMessageParam], base_url: str) -> tuple[str, int]:
    """The reply and the tokens used. Every message raised names the endpoint with its credentials
    hidden (``endpoint_for_messages``), and what the endpoint said is shown with them hidden too."""
    where = endpoint_for_messages(base_url)
    with api_errors(base_url, what="the LLM endpoint", key_hint="Settings or OPENAI_API_KEY",
                    model_hint="model in Settings or SNAPDESK_LLM_MODEL, or a key that may",
                    not_found=f"the LLM endpoint {where} has no model {model!r} or no chat-completions API (404): "
                              "check OPENAI_BASE_URL and SNAPDESK_LLM_MODEL",
                    bad_request_hint="check the model name and the endpoint in Settings", model=model):
        response = client.chat.completions.create(model=model, messages=messages, temperature=0.1)
    if not response.choices or response.choices[0].message.content is None:
        raise RetryableError("the LLM endpoint returned an empty answer")
    usage = response.usage
    return response.choices[0].message.content, (usage.total_tokens if usage else 0)


@contextmanager
def api_errors(base_url: str, *, what: str, key_hint: str, model_hint: str, not_found: str, bad_request_hint: str,
               model: str) -> Iterator[None]:
    """What an OpenAI-compatible endpoint's errors mean for a job, as JobErrors a person can act on:
    429 and 5xx wait (honouring Retry-After), timeouts and unreachable endpoints are retried, 401,
    403, 404 and 400 fail at once saying what to fix. ``what`` names the endpoint ("the LLM
    endpoint"); every message shows it with its credentials hidden, and what it said likewise."""
    where = endpoint_for_messages(base_url)

    def said(exc: openai.APIStatusError) -> str:
        return redact_text(_api_message(exc), base_url)

    try:
        yield
    except openai.RateLimitError as exc:
        retry_after = _retry_after(exc.response)
        raise RetryLater(f"{what} is busy (429 Too Many Requests)"
                         + (f"; it asked to wait {retry_after:.0f} s" if retry_after else ""), retry_after) from None
    except openai.AuthenticationError:
        raise PermanentError(f"{what} {where} refused the API key (401): set a valid key in {key_hint}") from None
    except openai.PermissionDeniedError:
        raise PermanentError(f"the API key may not use the model {model} at {where} (403): choose another "
                             f"{model_hint}") from None
    except openai.NotFoundError:
        raise PermanentError(not_found) from None
    except openai.BadRequestError as exc:
        raise PermanentError(f"{what} rejected the request (400: {said(exc)}): {bad_request_hint}") from None
    except openai.APITimeoutError:
        raise RetryableError(f"{what} {where} did not answer in time") from None
    except openai.APIConnectionError:
        raise RetryableError(f"cannot reach {what} {where}") from None
    except openai.InternalServerError as exc:
        raise RetryLater(f"{what} failed ({exc.status_code}); trying again later",
                         _retry_after(exc.response)) from None
    except openai.APIStatusError as exc:
        raise PermanentError(f"{what} answered {exc.status_code}: {said(exc)}") from None
    except openai.OpenAIError as exc:  # anything else the client raises (an invalid reply, a bad URL)
        raise RetryableError(f"{what} {where} failed: {type(exc).__name__}: "
                             f"{redact_text(str(exc), base_url)}") from None


def _retry_after(response: Any) -> float | None:
    value = response.headers.get("retry-after") if response is not None else None
    try:
        return max(0.0, float(value)) if value is not None else None
    except ValueError:
        return None  # an HTTP date: the exponential backoff will do


def _api_message(exc: openai.APIStatusError) -> str:
    body = exc.body
    if isinstance(body, dict):
        body = body.get("error", body)
        if isinstance(body, dict):
            body = body.get("message", body)
    return str(body or exc.message)[:300]


def parse_json(reply: str) -> dict[str, Any]:
    """The JSON object in a reply, allowing for Markdown fences and text around it."""
    text = reply.strip()
    fenced = re.search(r"```(?:json)?\s*(.*?)```", text, re.S)
    if fenced:
        text = fenced.group(1).strip()
    start, end = text.find("{"), text.rfind("}")
    if start < 0 or end < start:
        raise ValueError("no JSON object in the reply")
    value = json.loads(text[start:end + 1])
    if not isinstance(value, dict):
        raise ValueError("the reply is not a JSON object")
    return value


def explain(exc: Exception) -> str:
    if isinstance(exc, ValidationError):
        return "; ".join(f"{'.'.join(map(str, e['loc'])) or 'object'}: {e['msg']}" for e in exc.errors()[:5])
    return str(exc)

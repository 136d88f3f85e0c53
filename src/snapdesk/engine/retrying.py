"""Waiting out a transport that cannot serve us for now: which errors those are, and the backoff.

Owners, workers and the transports all use this one list, so that every answer that means "not
now" is treated alike: a server that is down or slow (connection errors, timeouts), and a Redis
that answers but refuses the command for the moment (OOM under ``noeviction``, MISCONF when it
cannot persist, READONLY after a failover, LOADING while it reads its data, BUSY while a script
runs). Nothing is dequeued and dropped because of one of these: it is retried.
"""

from __future__ import annotations

import logging
import sqlite3
import time
from typing import Callable, TypeVar

import redis
from redis._parsers import _RESP2Parser, _RESP3Parser
from redis.exceptions import BusyLoadingError, OutOfMemoryError, ReadOnlyError, TryAgainError

T = TypeVar("T")


class RedisRefused(redis.ResponseError):
    """Redis answered, but refuses the command for now (MISCONF, BUSY, NOREPLICAS, ...)."""


#: Error replies that mean "not now" and have no class of their own in redis-py.
_REFUSALS = {code: RedisRefused for code in ("MISCONF", "BUSY", "NOREPLICAS", "MASTERDOWN", "CLUSTERDOWN")}


class RESP2Parser(_RESP2Parser):
    EXCEPTION_CLASSES = {**_RESP2Parser.EXCEPTION_CLASSES, **_REFUSALS}


class RESP3Parser(_RESP3Parser):
    EXCEPTION_CLASSES = {**_RESP3Parser.EXCEPTION_CLASSES, **_REFUSALS}


def parser_for(protocol: int | str | None) -> type[_RESP2Parser | _RESP3Parser]:
    """The parser for a connection speaking ``protocol`` (None: redis-py's default, RESP3 since 8)."""
    try:
        from redis.utils import check_protocol_version
    except ImportError:  # redis-py before 8 speaks RESP2 unless told
        return RESP3Parser if str(protocol) == "3" else RESP2Parser
    return RESP3Parser if check_protocol_version(protocol, 3) else RESP2Parser


#: What a transport raises when it cannot serve us for now: wait, and try again.
TRANSIENT_ERRORS: tuple[type[BaseException], ...] = (
    redis.ConnectionError, redis.TimeoutError, BusyLoadingError, OutOfMemoryError, ReadOnlyError, TryAgainError,
    RedisRefused, sqlite3.OperationalError)


#: Not "not now" but "no": a wrong password or user (redis-py counts it as a connection error).
REFUSED_FOR_GOOD: tuple[type[BaseException], ...] = (redis.AuthenticationError,)


def describe(exc: BaseException) -> str:
    """One line for a person: what the transport said, and what it means when it is a refusal."""
    if isinstance(exc, OutOfMemoryError):
        return f"Redis is out of memory and refuses writes (OOM {exc})"
    if isinstance(exc, ReadOnlyError):
        return f"Redis is a read-only replica (READONLY {exc})"
    if isinstance(exc, BusyLoadingError):
        return "Redis is loading its data"
    if isinstance(exc, REFUSED_FOR_GOOD):
        return f"Redis refused the user or password ({exc})"
    return (str(exc) or type(exc).__name__).rstrip(". ")


class Backoff:
    """Waits that double from ``first`` up to ``cap`` seconds while something keeps failing."""

    def __init__(self, first: float = 0.2, cap: float = 5.0):
        self.first, self.cap = first, cap
        self.failures = 0

    def failed(self) -> float:
        """Count a failure; returns how long to wait before the next try."""
        self.failures += 1
        return min(self.cap, self.first * 2.0 ** (self.failures - 1))

    def succeeded(self) -> bool:
        """Count a success; True when it ends a run of failures (a reconnection)."""
        was_failing, self.failures = self.failures > 0, 0
        return was_failing


def wait_out(call: Callable[[], T], what: str, log: logging.Logger, deadline: float | None = None,
             sleep: Callable[[float], object] = time.sleep) -> T:
    """``call()``, retried with backoff while the transport is unavailable. Says once in the log what
    it waits for, and when it is over. With a ``deadline`` (monotonic), the last error is raised then."""
    backoff = Backoff()
    while True:
        try:
            result = call()
        except TRANSIENT_ERRORS as exc:
            if isinstance(exc, REFUSED_FOR_GOOD) or (deadline is not None and time.monotonic() >= deadline):
                raise
            if backoff.failures == 0:
                log.warning("waiting to %s: %s; retrying with backoff", what, describe(exc))
            sleep(backoff.failed())
            continue
        if backoff.succeeded():
            log.info("the transport is back: %s done", what)
        return result

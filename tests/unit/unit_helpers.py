"""Shared parts of the fast tier's tests: a hand-moved clock, small real PNGs, and a worker and an
owner taking turns (``work``)."""

from __future__ import annotations

import io
import time
from pathlib import Path

from PIL import Image

from snapdesk.engine import events as ev
from snapdesk.engine.library import Library
from snapdesk.engine.transport.memory import MemoryTransport


class Clock:
    """A clock that moves only when told to: the owner's (leases, retry times) and the transport's."""

    def __init__(self, start: float | None = None):
        self.now = time.time() if start is None else start

    def __call__(self) -> float:
        return self.now

    def advance(self, seconds: float) -> float:
        self.now += seconds
        return self.now


def png_bytes(width: int = 320, height: int = 240, colour=(200, 80, 40)) -> bytes:
    """A small real PNG: a two-tone picture, so its thumbnails and blurhash are not trivial."""
    image = Image.new("RGB", (width, height), colour)
    image.paste((20, 40, 220), (0, 0, width // 2, height))
    buf = io.BytesIO()
    image.save(buf, "PNG")
    return buf.getvalue()


def write_png(path: Path, width: int = 320, height: int = 240) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes(png_bytes(width, height))
    return path


def opened(transport, owner: str) -> list[ev.Event]:
    """What waits in the owner's event log, opened and checked, oldest first (nothing is removed)."""
    key = transport.library_key(owner)
    return [ev.open_sealed(key, owner, raw.data) for raw in transport.read_events(owner)]


def kinds(events, progress: bool = False) -> list[str]:
    """The events' types, in order; progress reports left out unless asked for (a processor may add some)."""
    return [str(e.type) for e in events if progress or e.type != ev.EventType.PROGRESS]


def work(library: Library, transport: MemoryTransport, now: float | None = None, rounds: int = 50) -> None:
    """Run tasks and apply their events until nothing moves: a worker and an owner, taking turns."""
    for _ in range(rounds):
        ran = transport.run_all(now=now)
        applied = library.pump()
        if not ran and not applied:
            return
    raise AssertionError("the library and the memory worker never settled")


WORKER = {"id": "test-host:4242:abcdef", "host": "test-host", "pid": 4242}


def say(transport, payload: dict, type_: ev.EventType, **fields) -> None:
    """Put an event about ``payload``'s attempt on its owner's log, sealed, as a worker would."""
    transport.emit(payload["owner"], ev.job_event(type_, payload, WORKER, **fields))


def thumbnail_result(data: bytes) -> tuple[dict, dict[str, str]]:
    """A thumbnail job's real result and files (base64), as a worker sends them in job:complete."""
    import base64

    from snapdesk.processors.thumbnail import describe, make_thumbnails

    made = make_thumbnails(data)
    return describe(made), {f"{t.name}.webp": base64.b64encode(t.data).decode("ascii") for t in made.thumbnails}

"""The window under load: 10,000 documents, 500 events a second for 30 seconds, offscreen.

    python benchmarks/gui.py [--documents 10000] [--rate 500] [--seconds 30]

Builds a library with one session of N documents (rows written straight into the library DB:
this measures the window, not the import), opens the real window on it, and has a producer
thread write worker events into the embedded event log at the given rate, as workers would:
a start and then progress for documents all over the session, and one event in ten for the
documents on screen. The producer is a process of its own, as workers are. The window's owner thread applies them, the models coalesce them, the
delegate repaints. It prints:

  stall  the longest the GUI thread went without turning its event loop (a 5 ms timer's
         largest gap, less its interval); goal 50 ms
  p95    from an event written to the log until its tile was repainted showing that state or
         a later one, for the tiles on screen; goal 100 ms
"""

from __future__ import annotations

import argparse
import multiprocessing
import os
import random
import statistics
import sys
import tempfile
import threading
import time
from pathlib import Path

os.environ.setdefault("QT_QPA_PLATFORM", "offscreen")

from PySide6.QtCore import QTimer  # noqa: E402
from PySide6.QtWidgets import QApplication  # noqa: E402

from snapdesk.config import load_settings  # noqa: E402
from snapdesk.engine import events as ev  # noqa: E402
from snapdesk.engine.library import Library  # noqa: E402
from snapdesk.engine.transport import EmbeddedTransport  # noqa: E402
from snapdesk.gui.models import RowRole  # noqa: E402
from snapdesk.gui.window import MainWindow  # noqa: E402
from snapdesk.store.db import Document, Job, UploadSession, db  # noqa: E402

STALL_GOAL_MS, LATENCY_GOAL_MS = 50, 100


def build_library(settings, count: int) -> tuple[str, int]:
    """A session of ``count`` queued documents, each with one thumbnail job (ids 1..count)."""
    library = Library(settings)
    try:
        with db.atomic():
            session = UploadSession.create(name=f"{count} documents", paths=["/bench"], skipped={})
            now = time.time()
            for start in range(0, count, 500):
                ids = range(start + 1, min(count, start + 500) + 1)
                Document.insert_many([{"id": i, "session": session.id, "path": f"/bench/IMG_{i:05d}.jpg",
                                       "size": 3_000_000, "sha256": f"{i:064x}", "kind": "image", "mtime": now,
                                       "created_at": now} for i in ids]).execute()
                Job.insert_many([{"id": i, "document": i, "session": session.id, "type": "thumbnail",
                                  "state": "queued", "max_attempts": 3, "queued_at": now, "created_at": now}
                                 for i in ids]).execute()
        return library.owner, session.id
    finally:
        library.close()


def produce(settings, owner, session_id, count, visible, rate, seconds, report) -> None:
    """The workers: another process writes events into the log at a steady rate, and reports on
    ``report`` when it wrote each event for a tile on screen (doc id, progress, time)."""
    transport = EmbeddedTransport(settings)
    worker = ev.worker_identity()
    rng = random.Random(7)
    on_screen = set(visible)
    others = [d for d in range(1, count + 1) if d not in on_screen]
    progress = dict.fromkeys(range(1, count + 1), 0)
    start = time.monotonic()
    n = 0
    while time.monotonic() - start < seconds:
        delay = start + n / rate - time.monotonic()
        if delay > 0:
            time.sleep(delay)
        doc = rng.choice(visible) if rng.random() < 0.1 else rng.choice(others)  # one in ten on screen
        kind = ev.EventType.STARTED if progress[doc] == 0 else ev.EventType.PROGRESS
        progress[doc] = min(99, progress[doc] + 1)
        shown = progress[doc] if kind == ev.EventType.PROGRESS else 0
        payload = {"job_id": doc, "job_type": "thumbnail", "document_id": doc, "session_id": session_id,
                   "owner": owner, "attempt": 1, "max_attempts": 3}
        event = ev.job_event(kind, payload, worker, progress=shown)
        transport.emit(owner, event)
        if doc in on_screen:
            report.put((doc, shown, event["ts"]))
        n += 1
    report.put(("done", n, None))
    transport.close()


class Collector(threading.Thread):
    """Gathers the producer's reports in the window's process: doc -> [(progress, written at)]."""

    def __init__(self, report, visible):
        super().__init__(daemon=True)
        self.report = report
        self.written: dict[int, list[tuple[int, float]]] = {d: [] for d in visible}
        self.lock = threading.Lock()
        self.total = None

    def run(self):
        while True:
            doc, progress, ts = self.report.get()
            if doc == "done":
                self.total = progress
                return
            with self.lock:
                self.written[doc].append((progress, ts))


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--documents", type=int, default=10_000)
    parser.add_argument("--rate", type=int, default=500, help="events per second")
    parser.add_argument("--seconds", type=float, default=30)
    args = parser.parse_args()

    data_dir = Path(tempfile.mkdtemp(prefix="snapdesk-gui-bench-"))
    settings = load_settings(env={}, data_dir=data_dir, local_workers="no", job_types="thumbnail")
    owner, session_id = build_library(settings, args.documents)

    app = QApplication.instance() or QApplication(sys.argv)
    window = MainWindow(settings)
    window.resize(1400, 900)
    window.show()

    latencies: list[float] = []
    gaps: list[float] = []
    state = {"collector": None, "process": None, "last_tick": None, "paints": 0}
    delegate = window.grid.itemDelegate()
    paint = delegate.paint

    def timed_paint(p, option, index):
        paint(p, option, index)
        producer = state["collector"]
        row = index.data(RowRole)
        if producer is None or row is None or row.id not in producer.written:
            return
        state["paints"] += 1
        now = time.time()
        shown = row.progress if row.progress is not None else (0 if row.status == "running" else -1)
        with producer.lock:
            pending = producer.written[row.id]
            done = [ts for progress, ts in pending if progress <= shown]
            producer.written[row.id] = [(progress, ts) for progress, ts in pending if progress > shown]
        latencies.extend((now - ts) * 1000 for ts in done)

    delegate.paint = timed_paint

    def tick():
        now = time.perf_counter()
        if state["last_tick"] is not None:
            gaps.append((now - state["last_tick"]) * 1000 - 5)
        state["last_tick"] = now

    ticker = QTimer()
    ticker.setInterval(5)
    ticker.timeout.connect(tick)

    def start():
        if window.documents.rowCount() < args.documents:  # the session is still loading
            QTimer.singleShot(200, start)
            return
        viewport = window.grid.viewport().rect()
        visible = [window.filtered.index(r, 0).data(RowRole).id for r in range(window.filtered.rowCount())
                   if window.grid.visualRect(window.filtered.index(r, 0)).intersects(viewport)]
        print(f"{args.documents} documents loaded; {len(visible)} tiles on screen; "
              f"{args.rate} events/s for {args.seconds:.0f} s", flush=True)
        ctx = multiprocessing.get_context("spawn")
        report = ctx.Queue()
        state["collector"] = Collector(report, visible)
        state["collector"].start()
        state["process"] = ctx.Process(target=produce, args=(settings, owner, session_id, args.documents, visible,
                                                               args.rate, args.seconds, report))
        ticker.start()
        state["process"].start()
        QTimer.singleShot(int(args.seconds * 1000) + 1500, finish)

    def finish():
        ticker.stop()
        window.close()
        app.quit()

    QTimer.singleShot(500, start)
    app.exec()
    producer = state["collector"]
    if producer is None or not latencies:
        print("no measurements: the session did not load or nothing on screen was repainted")
        return 1
    state["process"].join()
    producer.join(10)
    latencies.sort()
    p95 = latencies[int(0.95 * (len(latencies) - 1))]
    stall = max(gaps) if gaps else float("nan")
    print(f"events written: {producer.total} ({producer.total / args.seconds:.0f}/s); "
          f"on-screen repaints measured: {len(latencies)}")
    print(f"longest GUI-thread stall: {stall:6.1f} ms   (goal {STALL_GOAL_MS} ms)   "
          f"{'ok' if stall <= STALL_GOAL_MS else 'OVER'}")
    print(f"event to repaint: median {statistics.median(latencies):6.1f} ms, p95 {p95:6.1f} ms, "
          f"max {latencies[-1]:6.1f} ms   (goal p95 {LATENCY_GOAL_MS} ms)   "
          f"{'ok' if p95 <= LATENCY_GOAL_MS else 'OVER'}")
    return 0


if __name__ == "__main__":
    sys.exit(main())

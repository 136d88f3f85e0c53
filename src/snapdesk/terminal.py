"""What the command line draws on a terminal: the live progress line of ``submit --wait``, and the
farm's table that ``snapdesk jobs`` prints and ``jobs --watch`` redraws in place, like ``top``."""

from __future__ import annotations

import shutil
import sys
import time
from collections import Counter
from pathlib import Path
from typing import TYPE_CHECKING

from .engine.retrying import TRANSIENT_ERRORS, describe

if TYPE_CHECKING:
    from .engine.library import Library


class ProgressBar:
    """One live line on stderr: done / running / failed of total documents."""

    WIDTH = 30

    def __init__(self, stream=sys.stderr):
        self.stream = stream
        self.tty = stream.isatty()
        self._last = None
        self._last_print = 0.0

    def __call__(self, counts: Counter) -> None:
        total = counts["total"] or 1
        done, running, failed = counts.get("complete", 0), counts.get("running", 0), counts.get("failed", 0)
        filled = int(self.WIDTH * (done + failed) / total)
        line = (f"[{'#' * filled}{'.' * (self.WIDTH - filled)}] {done + failed}/{counts['total']} "
                f"done: {done}  running: {running}  failed: {failed}")
        now = time.monotonic()
        if line == self._last or (not self.tty and now - self._last_print < 2):
            return
        self._last, self._last_print = line, now
        self.stream.write(("\r" + line) if self.tty else line + "\n")
        self.stream.flush()

    def connection(self, connected: bool, message: str) -> None:
        """A line of its own when the transport goes away or comes back."""
        self.stream.write(("\r\033[K" if self.tty else "") + ("" if connected else "disconnected: ")
                          + message + "\n")
        self.stream.flush()
        self._last = None  # repaint the progress line

    def warning(self, message: str) -> None:
        """A line of its own for something the person can do about (a queue no worker serves)."""
        self.stream.write(("\r\033[K" if self.tty else "") + "waiting: " + message + "\n")
        self.stream.flush()
        self._last = None

    def finish(self, counts: Counter) -> None:
        self._last_print = 0.0  # the final counts always show
        self(counts)
        if self.tty:
            self.stream.write("\n")


def span(seconds: float) -> str:
    return f"{seconds:.0f} s" if seconds < 120 else f"{seconds / 60:.0f} min"


def statistics_lines(stats: dict) -> list[str]:
    """The queues table, events not applied, and the workers: `snapdesk jobs` and each --watch frame."""
    lines = [f"{'queue':<10} {'waiting':>7} {'delayed':>7} {'running':>7} {'done':>6} {'failed':>6} "
             f"{'per min':>7} {'mean ms':>7} {'p95 ms':>7} {'fail %':>6}"]
    for queue, q in stats["queues"].items():
        rate = "-" if q["failure_rate"] is None else f"{100 * q['failure_rate']:.0f}"
        lines.append(f"{queue + (' (paused)' if q['paused'] else ''):<10} {q['waiting']:>7} {q['delayed']:>7} "
                     f"{q['states']['running']:>7} {q['states']['complete']:>6} {q['states']['failed']:>6} "
                     f"{q['throughput_per_min']:>7} {q['mean_ms'] or '-':>7} {q['p95_ms'] or '-':>7} {rate:>6}")
    held = stats["held_events"]
    if held["set_aside"]["count"] or held["deferred"]["count"]:
        lines.append(f"events not applied: {held['set_aside']['count']} set aside, {held['deferred']['count']} "
                     "deferred (see snapdesk jobs --held)")
    lines.append(f"workers: {len(stats['workers'])}")
    for w in stats["workers"]:
        running = ", ".join(f"{r['job_type']} {r['job_id']}" for r in w["running"]) or "idle"
        lines.append(f"  {w['host']}:{w['pid']}  {','.join(w['queues'])}  heartbeat {w['seconds_since_heartbeat']} "
                     f"s ago  {running}")
    return lines


def watch_jobs(library: Library, interval: float, window: float | None) -> None:
    """`snapdesk jobs --watch`: redraw the farm's statistics every --interval seconds until Ctrl+C.

    On a terminal each frame is drawn over the last (no scrolling, no flicker); into a pipe or a
    file, frames follow one another. As an owner it applies events between frames, so the counts
    are live; beside the window it reads what the window applies."""
    window = window or 60
    tty = sys.stdout.isatty()
    previous: tuple[float, int] | None = None  # (when, jobs done) at the last frame, for the rate now
    try:
        if tty:
            sys.stdout.write("\033[?25l\033[2J")  # hide the cursor, clear the screen
        while True:
            began = time.monotonic()
            header = (f"snapdesk jobs --watch  {library.transport.describe()}  {time.strftime('%H:%M:%S')}  "
                      f"every {interval:g} s, Ctrl+C quits" + ("  (read-only: the window applies events)"
                                                                    if library.read_only else ""))
            try:
                library.housekeeping()
                stats = library.statistics(window=window)
                failed = library.failed_jobs(limit=5)
            except TRANSIENT_ERRORS as exc:
                lines = [header, "", f"cannot reach {library.transport.describe()} ({describe(exc)}); retrying"]
            else:
                done = sum(q["states"]["complete"] + q["states"]["failed"] for q in stats["queues"].values())
                now_rate = ""
                if previous is not None and began > previous[0]:
                    now_rate = f"; now {60 * (done - previous[1]) / (began - previous[0]):.0f} per min"
                previous = (began, done)
                per_min = sum(q["throughput_per_min"] for q in stats["queues"].values())
                lines = [header, f"throughput: {per_min:g} jobs per min over the last {span(window)}{now_rate}", "",
                         *statistics_lines(stats)]
                if failed:
                    lines += ["", "latest failures (snapdesk jobs --failed):"]
                    lines += [f"  {j['id']:>6}  {j['type']:<9} {Path(j['path']).name}: {j['error']}" for j in failed]
            if tty:
                width = shutil.get_terminal_size().columns
                sys.stdout.write("\033[H" + "".join(line[:width] + "\033[K\n" for line in lines) + "\033[J")
            else:
                sys.stdout.write("\n".join(lines) + "\n\n")
            sys.stdout.flush()
            time.sleep(max(0.0, max(interval, 0.1) - (time.monotonic() - began)))
    except KeyboardInterrupt:
        if not tty:
            sys.stdout.flush()
        return
    finally:
        if tty:
            sys.stdout.write("\033[?25h")  # the cursor back
            sys.stdout.flush()

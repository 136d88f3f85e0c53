"""Recycling: a worker process that ran ``--max-jobs`` jobs, or grew past ``--max-memory`` MB, makes
way for a fresh one.

With either flag, ``snapdesk-worker`` becomes a small supervisor: it runs the real worker as a
child process and starts a new child whenever one leaves to be recycled. A child past a limit
takes no new job, lets the jobs it runs finish (however long they take: none is interrupted, so
none goes back on the queue to run twice), says why in the log, and exits with a code that
names the limit. Crashes and ordinary exits end the supervisor with the child's code, so the
service manager (systemd's ``Restart=on-failure``) sees them; SIGTERM and SIGINT go on to the
child, which drains as always. On POSIX the supervisor holds ``--http``'s listening socket and
hands it to each child, so a probe or scrape that arrives while one child replaces another waits
a moment instead of being refused.
"""

from __future__ import annotations

import logging
import os
import signal
import socket
import subprocess
import sys
import threading
import time

log = logging.getLogger("snapdesk.worker")

#: A child's exit code when it leaves to be recycled, by the limit it reached (75: EX_TEMPFAIL).
EXIT_RECYCLED = {"max_jobs": 75, "max_memory": 76}
REASON_OF_EXIT = {code: reason for reason, code in EXIT_RECYCLED.items()}
MB = 2**20


def resident_memory() -> int | None:
    """This process's resident set size in bytes: /proc/self/statm on Linux; elsewhere the peak
    (getrusage's maxrss), which never falls, so a limit on it still holds. None when unknown."""
    try:
        with open("/proc/self/statm", "rb") as fh:
            return int(fh.read().split()[1]) * os.sysconf("SC_PAGE_SIZE")
    except (OSError, ValueError, IndexError, AttributeError):
        pass
    try:
        import resource
    except ImportError:  # Windows
        return None
    peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    return peak if sys.platform == "darwin" else peak * 1024  # bytes on macOS, KiB elsewhere


class Limits:
    """Counts the jobs a worker process ran and watches its memory; says once when it is past a limit.

    ``job_ran()`` is called by the thread that just finished a job (before it could take another),
    ``check_memory()`` also by the worker's main loop. The first limit reached is the reason;
    ``on_reached(reason, message)`` is called once, from whichever thread found it."""

    def __init__(self, max_jobs: int | None, max_memory_mb: float | None, on_reached):
        self.max_jobs = max_jobs or None
        self.max_memory = int(max_memory_mb * MB) if max_memory_mb else None
        self.on_reached = on_reached
        self.jobs = 0
        self.reason: str | None = None
        self._lock = threading.Lock()
        baseline = resident_memory()
        if self.max_memory and baseline and baseline > self.max_memory:
            # Recycling would only start another process just as big: say so, and do without.
            log.error("a fresh worker process already uses %d MB, more than --max-memory %d MB: recycling on "
                      "memory is off; raise --max-memory", baseline // MB, self.max_memory // MB)
            self.max_memory = None

    @property
    def active(self) -> bool:
        return bool(self.max_jobs or self.max_memory)

    def job_ran(self) -> None:
        with self._lock:
            self.jobs += 1
            jobs = self.jobs
        if self.max_jobs and jobs >= self.max_jobs:
            self._reached("max_jobs", f"ran {jobs} job{'s' if jobs != 1 else ''} (--max-jobs {self.max_jobs})")
        else:
            self.check_memory()

    def check_memory(self) -> None:
        if not self.max_memory or self.reason:
            return
        rss = resident_memory()
        if rss is not None and rss > self.max_memory and self.jobs:
            self._reached("max_memory", f"uses {rss // MB} MB, past --max-memory {self.max_memory // MB} MB")

    def _reached(self, reason: str, message: str) -> None:
        with self._lock:
            if self.reason:
                return
            self.reason = reason
        self.on_reached(reason, message)


# -- the supervisor ---------------------------------------------------------------------
def supervise(argv: list[str], http_address: tuple[str, int] | None) -> int:
    """Run the worker in child processes, one at a time, replacing each that leaves to be recycled."""
    from ..engine.local_workers import worker_command
    from .endpoints import listen

    listener = None
    if http_address and os.name != "nt":  # on Windows each child binds --http itself
        try:
            listener = listen(http_address)
        except OSError as exc:
            log.error("cannot serve HTTP on %s:%s: %s", *http_address, exc.strerror or exc)
            return 2
    base = worker_command() + list(argv)  # a child knows itself by --supervised
    recycles = {reason: 0 for reason in EXIT_RECYCLED}
    child: subprocess.Popen | None = None
    stop_signal: list[int] = []

    def forward(signum, frame):
        if not stop_signal:
            log.info("received %s: the worker process finishes its jobs and stops", signal.Signals(signum).name)
        # SIGHUP (the terminal went away) stops the worker like SIGTERM: it drains.
        stop_signal.append(signal.SIGTERM if signum == getattr(signal, "SIGHUP", None) else signum)
        pass_on()

    def pass_on():
        if child is not None and child.poll() is None:
            child.send_signal(signal.CTRL_BREAK_EVENT if os.name == "nt" else stop_signal[-1])

    for name in ("SIGTERM", "SIGINT", "SIGBREAK", "SIGHUP"):
        if hasattr(signal, name):
            signal.signal(getattr(signal, name), forward)
    kwargs: dict = {}
    if os.name == "nt":
        kwargs["creationflags"] = subprocess.CREATE_NEW_PROCESS_GROUP
    else:
        kwargs["start_new_session"] = True  # Ctrl+C reaches the supervisor, which passes it on once
    try:
        while True:
            if stop_signal:  # came while the last process left: start no other
                return 0
            cmd = base + ["--supervised", ",".join(f"{r}={n}" for r, n in recycles.items())]
            if listener is not None:  # the child serves on our socket (and ignores its --http)
                cmd += ["--http-fd", str(listener.fileno())]
                kwargs["pass_fds"] = (listener.fileno(),)
            child = subprocess.Popen(cmd, **kwargs)
            log.info("worker process %s started (%d recycled before it)", child.pid, sum(recycles.values()))
            if stop_signal:  # came while it started, when there was no process to pass it to
                pass_on()
            started = time.monotonic()
            code = child.wait()
            reason = REASON_OF_EXIT.get(code)
            if stop_signal:  # stopped as asked (a process still starting may die of the signal itself)
                return 0 if code in (0, -stop_signal[-1], *EXIT_RECYCLED.values()) else _exit_code(child.pid, code)
            if reason is None:
                if code != 0:
                    return _exit_code(child.pid, code)
                log.info("worker process %s exited", child.pid)
                return 0
            recycles[reason] += 1
            log.info("worker process %s left to be recycled (%s, after %.0f s); starting a fresh one", child.pid,
                     reason.replace("_", "-"), time.monotonic() - started)
    finally:
        if child is not None and child.poll() is None:  # an exception of our own: leave no worker behind
            child.terminate()
            child.wait()
        if listener is not None:
            listener.close()


def _exit_code(pid: int, code: int) -> int:
    if code < 0:
        log.error("worker process %s was killed by %s", pid, signal.Signals(-code).name)
        return 128 - code
    log.error("worker process %s exited with code %s", pid, code)
    return code


def parse_recycles(value: str | None) -> dict[str, int]:
    """The supervisor's count of earlier recycles (``max_jobs=2,max_memory=0``), for the metrics."""
    counts = {reason: 0 for reason in EXIT_RECYCLED}
    for part in (value or "").split(","):
        reason, _, n = part.partition("=")
        if reason in counts and n.isdigit():
            counts[reason] = int(n)
    return counts


def listening_socket(fd: int) -> socket.socket:
    """The listening socket the supervisor handed down."""
    return socket.socket(fileno=fd)

"""Local workers: the owner starts a worker process on this machine and keeps one running.

One worker process serves all queues of a library, with each queue's concurrency in
threads. A lock file in the data dir makes sure only one such process runs per library.
"""

from __future__ import annotations

import logging
import os
import subprocess
import sys
import threading
import time
from pathlib import Path
from typing import IO, Any

from ..config import Settings

log = logging.getLogger("snapdesk.local_workers")


def try_lock(path: Path) -> IO[bytes] | None:
    """Take an exclusive lock on ``path`` without waiting; the open file while held, else None."""
    fh = open(path, "a+b")
    try:
        if sys.platform == "win32":  # (not os.name: mypy knows only sys.platform)
            import msvcrt

            fh.seek(0)
            msvcrt.locking(fh.fileno(), msvcrt.LK_NBLCK, 1)
        else:
            import fcntl

            fcntl.flock(fh.fileno(), fcntl.LOCK_EX | fcntl.LOCK_NB)
    except OSError:
        fh.close()
        return None
    return fh


def lock_path(settings: Settings) -> Path:
    return Path(settings.data_dir) / f"worker-{settings.transport}.lock"


def worker_command() -> list[str]:
    if getattr(sys, "frozen", False):  # the PyInstaller bundle ships the worker beside the app
        exe = Path(sys.executable).with_name("snapdesk-worker" + (".exe" if os.name == "nt" else ""))
        return [str(exe)]
    return [sys.executable, "-m", "snapdesk.worker"]


class LocalWorkers:
    """Keeps a local worker process running for the library while there is work."""

    #: A restarted worker waits this long after the previous start, doubling up to a minute.
    BACKOFF = (1, 2, 4, 8, 16, 32, 60)

    def __init__(self, settings: Settings, idle_exit: float = 0):
        self.settings = settings
        self.idle_exit = idle_exit
        self.process: subprocess.Popen[bytes] | None = None
        self._starts: list[float] = []

    def running(self) -> bool:
        """A worker for this library holds the lock (ours or one started by another owner process)."""
        if self.process is not None and self.process.poll() is None:
            return True
        probe = try_lock(lock_path(self.settings))
        if probe is None:
            return True
        probe.close()
        return False

    def ensure(self) -> bool:
        """Start a worker unless one runs; True when one was started."""
        if self.running():
            return False
        recent = [t for t in self._starts if time.monotonic() - t < 120]
        wait = self.BACKOFF[min(len(recent), len(self.BACKOFF) - 1)] if recent else 0
        if recent and time.monotonic() - recent[-1] < wait:
            return False
        self._starts = recent + [time.monotonic()]
        self.start()
        return True

    def start(self) -> None:
        settings = self.settings
        logs = Path(settings.data_dir) / "logs"
        logs.mkdir(parents=True, exist_ok=True)
        cmd = worker_command() + ["--data-dir", str(settings.data_dir), "--single",
                                  "--log-file", str(logs / "worker.log")]
        if self.idle_exit:
            cmd += ["--idle-exit", str(self.idle_exit)]
        env = dict(os.environ, SNAPDESK_DATA_DIR=str(settings.data_dir))
        if settings.redis_url:  # secrets go by environment, never on a command line
            env.update(REDIS_URL=settings.redis_url, SNAPDESK_SECRET=settings.secret)
        else:
            env.pop("REDIS_URL", None)
        kwargs: dict[str, Any] = {}
        if sys.platform == "win32":
            kwargs["creationflags"] = subprocess.CREATE_NEW_PROCESS_GROUP | subprocess.CREATE_NO_WINDOW
        else:
            kwargs["start_new_session"] = True  # outlives a CLI that returns at once
        self.process = subprocess.Popen(cmd, env=env, stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL,
                                        stderr=subprocess.DEVNULL, **kwargs)
        # Reaped the moment it exits (idle, or stopped), not left a zombie until the app quits.
        threading.Thread(target=self.process.wait, name="reap-local-worker", daemon=True).start()
        log.info("started a local worker, pid %s", self.process.pid)

    def stop(self, timeout: float | None = 30) -> None:
        """Stop the worker this owner started (gracefully: running jobs finish or go back to the
        queue). With ``timeout=None`` it asks and returns; the worker drains on its own."""
        if self.process is None or self.process.poll() is not None:
            return
        self.process.terminate()
        if timeout is None:  # it drains on its own; the reaper thread waits for it
            return
        try:
            self.process.wait(timeout)
        except subprocess.TimeoutExpired:
            self.process.kill()
            self.process.wait()

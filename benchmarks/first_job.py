"""From a drop to its first job running, after the workers sat idle, on both transports.

    python benchmarks/first_job.py [--drops 6] [--idle 3] [--long-idle 30]

Starts a real snapdesk-worker (thumbnail queue) on the embedded queue and, when redis-server is
installed, on a private Redis; lets it sit idle, then submits one photo and measures from the
call to Library.submit until the worker says the job started (its JOB_STARTED event's time).
Each transport gets ``--drops`` drops ``--idle`` seconds apart and one after ``--long-idle``
seconds, long enough for any idle backoff to have grown. The budget (DESIGN.md) is 250 ms.
"""

from __future__ import annotations

import argparse
import os
import shutil
import socket
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).parent))
from photos import make_photo  # noqa: E402

from snapdesk.config import load_settings  # noqa: E402
from snapdesk.engine.library import Library  # noqa: E402
from snapdesk.store.db import Job  # noqa: E402

BUDGET_MS = 250


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _started(library: Library, session, timeout: float = 30) -> float:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        library.pump(block_ms=20)
        job = Job.get(Job.session == session)
        if job.started_at:
            return job.started_at
    raise TimeoutError("the job did not start")


def measure(name: str, settings, photos: list[Path], idle: float, long_idle: float) -> list[float]:
    env = dict(os.environ, SNAPDESK_DATA_DIR=str(settings.data_dir), SNAPDESK_SECRET=settings.secret,
               REDIS_URL=settings.redis_url)
    worker = subprocess.Popen([sys.executable, "-m", "snapdesk.worker", "--queues", "thumbnail"], env=env,
                              stderr=subprocess.DEVNULL)
    latencies = []
    try:
        with Library(settings) as library:
            warm, _ = library.submit(photos[:1])  # the worker is up and has run a job
            library.wait(warm, timeout=60)
            for i, photo in enumerate(photos[1:]):
                time.sleep(long_idle if i == len(photos) - 2 else idle)
                dropped = time.time()
                session, _ = library.submit([photo])
                latencies.append((_started(library, session) - dropped) * 1000)
                library.wait(session, timeout=60)
    finally:
        worker.terminate()
        worker.wait(30)
    *short, last = latencies
    print(f"{name:>9}: after {idle:.0f} s idle: median {statistics.median(short):5.0f} ms, "
          f"max {max(short):5.0f} ms; after {long_idle:.0f} s idle: {last:5.0f} ms   (budget {BUDGET_MS} ms)")
    return latencies


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--drops", type=int, default=6)
    parser.add_argument("--idle", type=float, default=3.0)
    parser.add_argument("--long-idle", type=float, default=30.0)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        photos = []
        for i in range(args.drops + 2):  # a warm-up, the drops and the one after the long idle
            path = Path(tmp) / f"photo-{i}.jpg"
            path.write_bytes(make_photo(1600, 1200, seed=i))
            photos.append(path)
        common = dict(env={}, local_workers="no", job_types="thumbnail")
        measure("embedded", load_settings(data_dir=Path(tmp) / "embedded", **common), photos, args.idle,
                args.long_idle)
        exe = shutil.which("redis-server")
        if exe is None:
            print("    redis: skipped, redis-server is not installed")
            return 0
        port = _free_port()
        server = subprocess.Popen([exe, "--port", str(port), "--bind", "127.0.0.1", "--save", "", "--appendonly",
                                   "no", "--dir", tmp], stdout=subprocess.DEVNULL)
        try:
            time.sleep(0.5)
            settings = load_settings(data_dir=Path(tmp) / "redis", redis_url=f"redis://127.0.0.1:{port}/0",
                                     secret="benchmark-secret", **common)
            measure("redis", settings, photos, args.idle, args.long_idle)
        finally:
            server.terminate()
            server.wait(10)
    return 0


if __name__ == "__main__":
    sys.exit(main())

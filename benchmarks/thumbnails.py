"""Thumbnail throughput: the SnapDesk job beside a naive Pillow version, in the same run.

    python benchmarks/thumbnails.py [--images 8] [--rounds 3] [--engine]

Both make the same outputs from the same 12 MP JPEGs (three WebP sizes, 150/300/600 px wide,
and a 4x3 blurhash): the naive one decodes the full image and resizes it three times. Each
runs on one core, interleaved round by round so that noise on this shared machine hits both.
Ratios are what to compare; the absolute times move with the machine.

With --engine it also times the same job end to end through the embedded queue, a real
worker process, the event log and the library DB, against the bare processor.
"""

from __future__ import annotations

import argparse
import io
import os
import statistics
import sys
import tempfile
import time
from pathlib import Path

import blurhash
from PIL import Image, ImageOps

sys.path.insert(0, str(Path(__file__).parent))
from photos import make_photo  # noqa: E402

from snapdesk.processors.thumbnail import make_thumbnails  # noqa: E402

GOAL_MS = 110
CORES = sorted(os.sched_getaffinity(0)) if hasattr(os, "sched_setaffinity") else [0]
WORKER_CORE, OWNER_CORE = CORES[0], CORES[-1]


def _pin_to(core: int):
    return lambda: os.sched_setaffinity(0, {core})


def naive(path: Path) -> None:
    with Image.open(path) as img:
        img = ImageOps.exif_transpose(img).convert("RGB")
    for width in (600, 300, 150):
        thumb = img.resize((width, round(img.height * width / img.width)), Image.Resampling.LANCZOS)
        thumb.save(io.BytesIO(), "WEBP", quality=80)
    small = img.resize((32, round(img.height * 32 / img.width)))
    blurhash.encode(small, 4, 3)


def snapdesk_job(path: Path) -> None:
    make_thumbnails(path.read_bytes())


def time_each(func, paths) -> list[float]:
    times = []
    for path in paths:
        start = time.perf_counter()
        func(path)
        times.append((time.perf_counter() - start) * 1000)
    return times


def engine_run(paths: list[Path]) -> float:
    """Wall time (ms) per image through queue, worker, events and projection, one worker thread."""
    import subprocess

    from snapdesk.config import load_settings
    from snapdesk.engine.library import Library
    from snapdesk.store.db import Job

    with tempfile.TemporaryDirectory() as data:
        settings = load_settings(env={}, data_dir=data, local_workers="no", job_types="thumbnail")
        with Library(settings) as library:
            env = dict(os.environ, SNAPDESK_DATA_DIR=data)
            env.pop("REDIS_URL", None)
            # The worker gets a core of its own, as the bare job had; the owner runs on the other.
            worker = subprocess.Popen([sys.executable, "-m", "snapdesk.worker", "--queues", "thumbnail",
                                       "--concurrency", "1"], env=env, stderr=subprocess.DEVNULL,
                                      preexec_fn=_pin_to(WORKER_CORE) if hasattr(os, "sched_setaffinity") else None)
            try:
                warm, _ = library.submit(paths[:1])  # let the worker start and warm up
                library.wait(warm)
                session, _ = library.submit(paths[1:], reprocess=True)
                library.wait(session)
                # From the first job's start to the last one's result in the DB: every per-job cost
                # (reading and checking the file, events, applying them) but not the one-time wait
                # for an idle worker to notice the drop, which has a budget of its own.
                jobs = list(Job.select().where(Job.session == session))
                span = max(j.finished_at for j in jobs) - min(j.started_at for j in jobs)
                in_job = statistics.median(j.duration_ms for j in jobs)
                return span * 1000 / len(jobs), in_job
            finally:
                worker.terminate()
                worker.wait()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--images", type=int, default=8)
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--engine", action="store_true", help="also time the job through the whole engine")
    args = parser.parse_args()
    if hasattr(os, "sched_setaffinity"):
        os.sched_setaffinity(0, {WORKER_CORE})  # one core, as the budget says
    with tempfile.TemporaryDirectory() as tmp:
        paths = []
        for i in range(args.images):
            path = Path(tmp) / f"photo-{i}.jpg"
            path.write_bytes(make_photo(4000, 3000, seed=i, exif_orientation=6 if i % 4 == 3 else None))
            paths.append(path)
        print(f"{args.images} JPEGs of 4000x3000 (12 MP), {paths[0].stat().st_size / 2**20:.1f} MiB each; "
              f"{args.rounds} rounds, one core, Pillow {Image.__version__}")
        results = {"snapdesk": [], "naive": []}
        for _ in range(args.rounds):
            results["snapdesk"] += time_each(snapdesk_job, paths)
            results["naive"] += time_each(naive, paths)
        medians = {name: statistics.median(times) for name, times in results.items()}
        for name, median in medians.items():
            print(f"{name:>9}: median {median:6.1f} ms per image, {1000 / median:5.1f} images/s per core")
        ratio = medians["naive"] / medians["snapdesk"]
        verdict = "meets" if medians["snapdesk"] <= GOAL_MS else "misses"
        print(f"speed-up over naive Pillow: {ratio:.1f}x; {verdict} the {GOAL_MS} ms goal")
        if args.engine:
            if hasattr(os, "sched_setaffinity"):
                os.sched_setaffinity(0, {OWNER_CORE})
            per_image, in_job = engine_run(paths)
            # Like with like: the engine's figure is a mean over paths[1:] (the first warms the
            # worker up), so it is set against the bare job's mean over the same images.
            n = len(paths)
            bare = statistics.mean(t for i, t in enumerate(results["snapdesk"]) if i % n != 0)
            overhead = per_image / bare - 1
            print(f"   engine: {per_image:6.1f} ms per image through queue, worker, events and DB, against "
                  f"{bare:.1f} ms for the bare job on the same images ({overhead:+.1%}); median "
                  f"{in_job:.1f} ms inside the job (reading and checking the file included)")


if __name__ == "__main__":
    main()

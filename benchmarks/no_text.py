"""What OCR costs on a photo without text (the budget: under 0.3 s), and what the quick look
(``ocr.has_text``) adds to a page that has text.

Photos: the scenes of tests/integration/test_decode.py (1600 x 1200: sky, outlined rings, boxes and sticks,
grass) and the phone-like photos of benchmarks/photos.py at 12 MP. For each, the whole OCR job's
processor (``ocr_document``: decode, the look, and nothing else when it finds no text), median of
a few runs on one thread (wall and CPU time), with the text it returned (it must be empty).

    .venv/bin/python benchmarks/no_text.py [--runs 5]
"""

from __future__ import annotations

import argparse
import statistics
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path[:0] = [str(ROOT / "src"), str(ROOT / "tests" / "integration"), str(ROOT / "benchmarks")]

from photos import make_photo  # noqa: E402
from snapdesk.processors import decode  # noqa: E402
from snapdesk.processors.ocr import OcrEngine, has_text, ocr_document  # noqa: E402
from test_decode import scene, text_page  # noqa: E402


def _median_seconds(call, runs: int, clock=time.perf_counter) -> tuple[float, object]:
    times, value = [], None
    for _ in range(runs):
        started = clock()
        value = call()
        times.append(clock() - started)
    return statistics.median(times), value


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--runs", type=int, default=5)
    args = parser.parse_args()
    engine = OcrEngine(threads=1)
    ocr_document(scene(0), "image", None, engine=engine)  # warm up onnxruntime

    # CPU time too: on a machine shared with other work, wall time says as much about the others.
    print(f"{'photo':<28} {'OCR job (s)':>11} {'CPU (s)':>8}  text")
    worst = worst_cpu = 0.0
    samples = [(f"scene {seed} (1600x1200)", scene(seed)) for seed in range(6)]
    samples += [(f"phone photo {seed} (4000x3000)", make_photo(4000, 3000, seed=seed)) for seed in range(3)]
    for name, data in samples:
        job = lambda data=data: ocr_document(data, "image", None, engine=engine)  # noqa: E731
        seconds, result = _median_seconds(job, args.runs)
        cpu, _ = _median_seconds(job, args.runs, time.process_time)
        worst, worst_cpu = max(worst, seconds), max(worst_cpu, cpu)
        print(f"{name:<28} {seconds:>11.3f} {cpu:>8.3f}  {result['text']!r}")
    print(f"worst: {worst:.3f} s, {worst_cpu:.3f} s of CPU (budget 0.3 s)")

    page = text_page()
    seconds, found = _median_seconds(lambda: has_text(page, engine), args.runs)
    print(f"the look on a line of text (1100x120): {seconds * 1000:.0f} ms, found text: {found}")
    a4 = decode.first_page(make_photo(2480, 3508, seed=9)).image
    seconds, found = _median_seconds(lambda: has_text(a4, engine), args.runs)
    print(f"the look on an A4-sized photo (2480x3508): {seconds * 1000:.0f} ms, found text: {found}")


if __name__ == "__main__":
    main()

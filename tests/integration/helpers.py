"""Real images and real worker processes for the tests."""

from __future__ import annotations

import io
import json
import os
import subprocess
import sys
import time
from pathlib import Path

import shutil
import socket
import threading

import numpy as np
import redis
from PIL import Image


def jpeg_bytes(width=640, height=480, seed=0, orientation=None, quality=85) -> bytes:
    """A photo-like JPEG: smooth colour fields and noise, optionally with an EXIF orientation."""
    rng = np.random.default_rng(seed)
    y, x = np.mgrid[0:height, 0:width]
    pixels = np.stack([(x * 255 // max(width - 1, 1)), (y * 255 // max(height - 1, 1)),
                       np.full_like(x, (seed * 37) % 256)], axis=-1).astype(np.int16)
    pixels += rng.integers(-12, 12, pixels.shape, dtype=np.int16)
    image = Image.fromarray(pixels.clip(0, 255).astype(np.uint8))
    exif = Image.Exif()
    if orientation:
        exif[0x0112] = orientation
    buf = io.BytesIO()
    image.save(buf, "JPEG", quality=quality, exif=exif.tobytes())
    return buf.getvalue()


def _font(size: int):
    from PIL import ImageFont

    for path in ("/usr/share/fonts/truetype/dejavu/DejaVuSans.ttf",
                 "/usr/share/fonts/truetype/liberation/LiberationSans-Regular.ttf"):
        if os.path.exists(path):
            return ImageFont.truetype(path, size)
    return ImageFont.load_default(size=size)  # a real TrueType font in Pillow >= 10.1


def text_image(lines: list[str], width=900, size=28, fmt="PNG") -> bytes:
    """A scan-like picture of the given lines of text, black on white."""
    from PIL import ImageDraw

    font = _font(size)
    height = 40 + int(len(lines) * size * 1.6)
    image = Image.new("RGB", (width, height), "white")
    draw = ImageDraw.Draw(image)
    for i, line in enumerate(lines):
        draw.text((30, 20 + int(i * size * 1.6)), line, fill="black", font=font)
    buf = io.BytesIO()
    image.save(buf, fmt)
    return buf.getvalue()


def bomb_png(width=20_000, height=20_000) -> bytes:
    """A tiny PNG whose header claims ``width`` x ``height`` pixels (a decompression bomb)."""
    import struct
    import zlib

    buf = io.BytesIO()
    Image.new("L", (1, 1)).save(buf, "PNG")
    data = bytearray(buf.getvalue())
    ihdr = bytearray(data[12:29])  # b"IHDR" + 13 bytes of header
    ihdr[4:12] = struct.pack(">II", width, height)
    data[12:29] = ihdr
    data[29:33] = struct.pack(">I", zlib.crc32(bytes(ihdr)))
    return bytes(data)


def write_photos(folder: Path, count: int, prefix="photo", width=640, height=480, start_seed=0) -> list[Path]:
    folder.mkdir(parents=True, exist_ok=True)
    paths = []
    for i in range(count):
        path = folder / f"{prefix}-{i:03d}.jpg"
        path.write_bytes(jpeg_bytes(width, height, seed=start_seed + i))
        paths.append(path)
    return paths


def snapdesk(*args, env=None, timeout=120) -> subprocess.CompletedProcess:
    """Run the snapdesk command as a person would."""
    return subprocess.run([sys.executable, "-m", "snapdesk", *args], capture_output=True, text=True,
                          env=env, timeout=timeout)


def worker_env(settings, faults: dict | None = None, **extra) -> dict:
    env = {k: v for k, v in os.environ.items() if not k.startswith(("SNAPDESK_", "JOB_", "REDIS_URL"))}
    env.update(
        SNAPDESK_CONFIG_DIR=os.environ["SNAPDESK_CONFIG_DIR"],
        SNAPDESK_DATA_DIR=str(settings.data_dir),
        JOB_RETRY_BACKOFF_MS=str(settings.retry_backoff_ms),
        SNAPDESK_LEASE_RENEW_SECONDS=str(settings.lease_renew_seconds),
        PYTHONUNBUFFERED="1",
    )
    if settings.redis_url:
        env.update(REDIS_URL=settings.redis_url, SNAPDESK_SECRET=settings.secret)
    if faults:
        env["SNAPDESK_TEST_FAULTS"] = json.dumps(faults)
    env.update({k: str(v) for k, v in extra.items()})
    return env


class WorkerProcess:
    """A real snapdesk-worker process that a test can stop, drain or kill."""

    def __init__(self, settings, *args, faults=None, log_path: Path | None = None, **env):
        self.log_path = log_path
        out = open(log_path, "wb") if log_path else subprocess.DEVNULL
        try:
            self.proc = subprocess.Popen([sys.executable, "-m", "snapdesk.worker", *args],
                                         env=worker_env(settings, faults, **env), stdout=out, stderr=out)
        finally:
            if log_path:
                out.close()  # the child has its own copy

    @property
    def pid(self):
        return self.proc.pid

    def log(self) -> str:
        return self.log_path.read_text(errors="replace") if self.log_path else ""

    def wait(self, timeout) -> int:
        """The exit code; a worker still running after ``timeout`` fails the test with its log."""
        try:
            return self.proc.wait(timeout)
        except subprocess.TimeoutExpired:
            raise AssertionError(f"the worker did not exit within {timeout} s; its log:\n{self.log()}") from None

    def stop(self, timeout=20):
        if self.proc.poll() is None:
            self.proc.terminate()
            try:
                self.proc.wait(timeout)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()
        return self.proc.returncode

    def kill(self):
        self.proc.kill()
        self.proc.wait()


def wait_for_first_job(env, job_type: str, message: str) -> dict:
    """The latest session's report, once its first document's ``job_type`` job is complete."""
    def complete():
        report = json.loads(snapdesk("status", "--json", env=env).stdout)
        return report["documents"][0]["jobs"][job_type]["state"] == "complete" and report
    return wait_for(complete, timeout=60, interval=0.5, message=message)


def wait_for(predicate, timeout=30.0, interval=0.05, message="condition"):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        value = predicate()
        if value:
            return value
        time.sleep(interval)
    raise AssertionError(f"timed out after {timeout} s waiting for {message}")


class RedisServer:
    """A redis-server of the test's own, with AOF persistence, that the test can stop and start again."""

    def __init__(self, workdir):
        with socket.socket() as s:
            s.bind(("127.0.0.1", 0))
            self.port = s.getsockname()[1]
        self.workdir = workdir
        self.url = f"redis://127.0.0.1:{self.port}/0"
        self.proc = None

    def start(self):
        self.proc = subprocess.Popen(
            [shutil.which("redis-server"), "--port", str(self.port), "--bind", "127.0.0.1", "--dir", str(self.workdir),
             "--appendonly", "yes", "--appendfsync", "always", "--save", ""],
            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        client = redis.Redis.from_url(self.url)
        wait_for(lambda: redis_pings(client), timeout=10, message="redis-server to start")
        client.close()

    def stop(self):
        self.proc.terminate()
        self.proc.wait(10)

    def restart(self, keep: bool = True):
        """Stop and start again: with its data (AOF), or with nothing kept (a new, empty server)."""
        self.stop()
        if not keep:
            for path in self.workdir.rglob("*"):
                if path.is_file():
                    path.unlink()
        self.start()

    def outage(self, after: float, lasting: float) -> threading.Thread:
        def run():
            time.sleep(after)
            self.stop()
            time.sleep(lasting)
            self.start()
        thread = threading.Thread(target=run, daemon=True)
        thread.start()
        return thread


def redis_pings(client) -> bool:
    """Whether a redis-server answers (False while it starts, loads its data, or is gone)."""
    try:
        return client.ping()
    except redis.ConnectionError:
        return False


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]

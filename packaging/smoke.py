"""Smoke test of the PyInstaller bundle (`make smoke` builds it first, then runs this).

    python packaging/smoke.py [--bundle dist/SnapDesk]

Every step runs the frozen executables as a user would, each under a hard timeout (the whole
process group is killed when it runs over):

1. layout: every file packaging/layout.py declares is there, the shared libraries of onnxruntime,
   PDFium, libheif (pillow-heif), FFmpeg (PyAV) and LibRaw (rawpy) are, no left-out Qt library
   is; the bundle's size.
2. ``snapdesk --version`` and ``snapdesk-worker --version``.
3. ``snapdesk-worker --self-test`` (thumbnail, OCR and PDF on the bundled samples, a HEIC's and
   a video's thumbnails, LibRaw loaded), with no network: in a network namespace of its own (``unshare -rn``) where the system allows one,
   and in any case with connections refused inside the process.
4. the window, offscreen, closed after two seconds (``--quit-after``), with no worker left behind.
5. ``snapdesk submit SAMPLE --wait --json``: the frozen command line starts the frozen worker,
   which thumbnails, reads and summarises the sample, offline.

Prints one line per step and exits 1 when any failed.
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import signal
import subprocess
import sys
import tempfile
import time
from pathlib import Path

HERE = Path(__file__).resolve().parent
ROOT = HERE.parent
sys.path.insert(0, str(HERE))
sys.path.insert(0, str(ROOT / "src"))

import layout  # noqa: E402

from snapdesk import __version__  # noqa: E402

WINDOWS = os.name == "nt"


#: What the frozen worker's self-test must say "ok" to.
SELF_TEST_CHECKS = ("thumbnail", "ocr", "pdf", "heic", "video", "raw")


class StepFailed(Exception):
    pass


def run(cmd, timeout, env=None, offline=False) -> subprocess.CompletedProcess:
    """Run ``cmd`` with a hard timeout: on expiry its whole process group is killed."""
    if offline and shutil.which("unshare") and _can_unshare():
        cmd = ["unshare", "--net", "--map-root-user", *cmd]
    proc = subprocess.Popen([str(c) for c in cmd], stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True,
                            env={**os.environ, **(env or {})}, start_new_session=not WINDOWS)
    try:
        out, _ = proc.communicate(timeout=timeout)
    except subprocess.TimeoutExpired:
        if WINDOWS:
            proc.kill()
        else:
            os.killpg(proc.pid, signal.SIGKILL)
        out, _ = proc.communicate()
        raise StepFailed(f"still running after {timeout} s, killed; it said:\n{_indent(out)}") from None
    return subprocess.CompletedProcess(cmd, proc.returncode, out, None)


_UNSHARE = None


def _can_unshare() -> bool:
    global _UNSHARE
    if _UNSHARE is None:
        try:
            _UNSHARE = subprocess.run(["unshare", "--net", "--map-root-user", "true"], capture_output=True,
                                      timeout=10).returncode == 0
        except (OSError, subprocess.TimeoutExpired):
            _UNSHARE = False
    return _UNSHARE


def _indent(text: str) -> str:
    return "\n".join("      " + line for line in (text or "").rstrip().splitlines()[-40:])


def _expect(proc, ok: bool, what: str) -> None:
    if proc.returncode != 0 or not ok:
        raise StepFailed(f"{what} (exit {proc.returncode}); it said:\n{_indent(proc.stdout)}")


def size_of(path: Path) -> int:
    return sum(p.stat().st_size for p in path.rglob("*") if p.is_file() and not p.is_symlink())


# ---------------------------------------------------------------------- steps
def step_layout(bundle: Path) -> str:
    missing = [f for f in layout.expected_files(WINDOWS) if not (bundle / f).is_file()]
    if missing:
        raise StepFailed(f"missing from the bundle: {', '.join(missing)}")
    version = (bundle / layout.CONTENTS_DIR / "snapdesk" / "VERSION").read_text().strip()
    if version != __version__:
        raise StepFailed(f"the bundle is version {version}, the package {__version__}: rebuild it")
    names = [p.name for p in (bundle / layout.CONTENTS_DIR).rglob("*") if p.is_file()]
    for lib in layout.SHARED_LIBRARIES:
        if not any(lib in n and (".so" in n or n.endswith((".dll", ".dylib"))) for n in names):
            raise StepFailed(f"no {lib} shared library in the bundle")
    forbidden = sorted({n for n in names for f in layout.FORBIDDEN_LIBRARIES if f in n})
    if forbidden:
        raise StepFailed(f"left-out Qt libraries are in the bundle: {', '.join(forbidden)}")
    qt = sorted({n.split(".")[0] for n in names if n.startswith(("libQt6", "Qt6")) and (".so" in n or n.endswith(".dll"))})
    return f"{size_of(bundle) / 1e6:.0f} MB, {len(names)} files; Qt libraries: {', '.join(qt)}"


def step_versions(bundle: Path) -> str:
    said = []
    for name, console in layout.EXECUTABLES.items():
        proc = run([bundle / layout.executable(name, WINDOWS), "--version"], timeout=60)
        if WINDOWS and not console:  # a windowed program on Windows has nowhere to print: its exit code says it
            _expect(proc, True, f"{name} --version")
            said.append(f"{name}: exit 0")
            continue
        _expect(proc, proc.stdout.strip() == f"{name} {__version__}", f"{name} --version")
        said.append(proc.stdout.strip())
    return "; ".join(said)


def step_self_test(bundle: Path) -> str:
    proc = run([bundle / layout.executable("snapdesk-worker", WINDOWS), "--self-test"], timeout=180, offline=True)
    checked = {line.split()[1] for line in proc.stdout.splitlines() if line.startswith("ok ")}
    missing = [name for name in SELF_TEST_CHECKS if name not in checked]
    _expect(proc, "self-test passed" in proc.stdout and not missing,
            f"the self-test failed{' (no ' + ', '.join(missing) + ' check passed)' if missing else ''}")
    where = "in a network namespace with no network" if _can_unshare() else "with connections refused in-process"
    return f"passed {where}:\n{_indent(proc.stdout)}"


def _worker_alive(data_dir: Path) -> bool:
    """A worker holds the library's lock (engine/local_workers.py)."""
    from snapdesk.engine.local_workers import try_lock

    for lock in data_dir.glob("worker-*.lock"):
        held = try_lock(lock)
        if held is None:
            return True
        held.close()
    return False


def _has_library(data_dir: Path) -> bool:
    """The library DB exists and its migrations ran."""
    import sqlite3

    if not (data_dir / "library.db").is_file():
        return False
    with sqlite3.connect(data_dir / "library.db") as con:
        return con.execute("SELECT count(*) FROM sqlite_master WHERE name = 'meta'").fetchone()[0] == 1


def step_window(bundle: Path, tmp: Path) -> str:
    data = tmp / "window"
    start = time.monotonic()
    proc = run([bundle / layout.executable("snapdesk", WINDOWS), "--data-dir", data, "--quit-after", "2"],
               timeout=90, env={"QT_QPA_PLATFORM": "offscreen"})
    took = time.monotonic() - start
    _expect(proc, True, "the window did not start and close cleanly")
    log = data / "logs" / "app.log"
    errors = [ln for ln in log.read_text().splitlines() if " ERROR " in ln] if log.is_file() else []
    if errors or not _has_library(data):
        said = log.read_text() if log.is_file() else proc.stdout
        raise StepFailed(f"the window did not open its library in {data}:\n{_indent(said)}")
    deadline = time.monotonic() + 15
    while _worker_alive(data):
        if time.monotonic() > deadline:
            raise StepFailed("a worker the window started was still running 15 s after it closed")
        time.sleep(0.5)
    return f"opened offscreen and closed after {took:.1f} s (exit 0)"


def step_submit(bundle: Path, tmp: Path) -> str:
    data = tmp / "submit"
    sample = bundle / layout.CONTENTS_DIR / "snapdesk" / "resources" / "selftest.png"
    proc = run([bundle / layout.executable("snapdesk", WINDOWS), "submit", sample, "--data-dir", data,
                "--wait", "--json"], timeout=240, offline=True,
               env={"SNAPDESK_WORKER_IDLE_EXIT": "3", "OPENAI_BASE_URL": "", "REDIS_URL": ""})
    try:
        doc = json.loads(proc.stdout[proc.stdout.index("{"):])["documents"][0]
    except (ValueError, KeyError, IndexError):
        raise StepFailed(f"no session JSON (exit {proc.returncode}):\n{_indent(proc.stdout)}") from None
    jobs = doc["jobs"]
    states = {name: job["state"] for name, job in jobs.items()}
    text = (jobs.get("ocr", {}).get("result") or {}).get("text", "")
    _expect(proc, set(states.values()) == {"complete"} and "SNAPDESK" in text, f"jobs ended {states}")
    title = (jobs.get("summary", {}).get("result") or {}).get("title")
    return f"jobs {states}; read {' | '.join(text.splitlines())!r}; summary title {title!r}"


STEPS = (("layout", step_layout), ("--version", step_versions), ("self-test", step_self_test),
         ("window", step_window), ("submit", step_submit))


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--bundle", type=Path, default=ROOT / "dist" / layout.BUNDLE_DIR)
    args = parser.parse_args(argv)
    bundle = args.bundle.resolve()
    if not bundle.is_dir():
        print(f"smoke: no bundle at {bundle}; build it with `make bundle`", file=sys.stderr)
        return 2
    failed = []
    with tempfile.TemporaryDirectory(prefix="snapdesk-smoke-") as tmp:
        for name, step in STEPS:
            start = time.monotonic()
            try:
                args_ = (bundle, Path(tmp)) if step.__code__.co_argcount == 2 else (bundle,)
                detail, ok = step(*args_), True
            except StepFailed as exc:
                detail, ok = str(exc), False
            print(f"{'ok  ' if ok else 'FAIL'} {name:<10} {time.monotonic() - start:5.1f} s  {detail}", flush=True)
            if not ok:
                failed.append(name)
    print("smoke test passed" if not failed else f"smoke test FAILED: {', '.join(failed)}")
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())

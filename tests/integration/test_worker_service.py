"""snapdesk-worker as a service: /metrics, /healthz and /readyz over HTTP, recycling after --max-jobs
or past --max-memory, the systemd unit, and `snapdesk jobs --watch`. Real redis-servers, real
worker processes."""

from __future__ import annotations

import json
import os
import re
import select
import shutil
import signal
import socket
import subprocess
import sys
import urllib.error
import urllib.request
from collections import Counter
from pathlib import Path

import pytest
from prometheus_client.parser import text_string_to_metric_families

from snapdesk import __version__
from snapdesk.config import load_settings
from snapdesk.store import db as store
from snapdesk.worker.endpoints import parse_address

from helpers import RedisServer, wait_for, write_photos

ROOT = Path(__file__).resolve().parents[2]
on_redis = pytest.mark.parametrize("transport_name", ["redis"])


def _url(worker) -> str:
    """Where the worker serves HTTP (it was given port 0 and says which port it took)."""
    found = wait_for(lambda: re.search(r"on (http://[\d.]+:\d+)", worker.log()), timeout=20,
                     message="the worker to serve HTTP")
    return found.group(1)


def _get(url: str) -> tuple[int, str]:
    try:
        with urllib.request.urlopen(url, timeout=10) as reply:
            return reply.status, reply.read().decode()
    except urllib.error.HTTPError as err:
        return err.code, err.read().decode()


def _metrics(url: str) -> dict:
    """Every sample of a scrape, parsed by Prometheus' own text parser: {(name, labels): value}."""
    status, text = _get(url + "/metrics")
    assert status == 200
    return {(s.name, tuple(sorted(s.labels.items()))): s.value
            for family in text_string_to_metric_families(text) for s in family.samples}


def _sample(samples: dict, name: str, **labels) -> float | None:
    return samples.get((name, tuple(sorted(labels.items()))))


def _timelines(library) -> dict[int, list[str]]:
    """Each job's applied events (its timeline), in order."""
    out: dict[int, list[str]] = {}
    for e in store.JobEvent.select().order_by(store.JobEvent.id):
        out.setdefault(e.job_id, []).append(e.type)
    return out


def _completed_by_process(library) -> Counter:
    """How many jobs each worker process completed (a worker id names one process)."""
    return Counter(e.worker for e in store.JobEvent.select().where(store.JobEvent.type == "job:complete"))


# ------------------------------------------------------------------------------------- HTTP
def test_http_addresses_are_loopback_unless_told():
    assert parse_address("9108") == ("127.0.0.1", 9108)
    assert parse_address("0.0.0.0:9108") == ("0.0.0.0", 9108)
    assert parse_address("[::1]:9108") == ("::1", 9108)
    assert parse_address(":9108") == ("127.0.0.1", 9108)
    for bad in ("", "http", "1.2.3.4:", "99999", "[::1]9108"):
        with pytest.raises(ValueError):
            parse_address(bad)


@on_redis
def test_metrics_parse_and_move_as_jobs_complete(library, start_worker, tmp_path):
    worker = start_worker("--http", "0", "--concurrency", "2")
    url = _url(worker)
    assert url.startswith("http://127.0.0.1:")
    wait_for(lambda: _get(url + "/readyz")[0] == 200, timeout=15, message="the worker to be ready")
    before = _metrics(url)
    info = [labels for (name, labels) in before if name == "snapdesk_worker_info"]
    assert dict(info[0])["version"] == __version__ and dict(info[0])["queues"] == "thumbnail,ocr,summary,describe,embed"
    assert _sample(before, "snapdesk_worker_jobs_total", job_type="thumbnail", outcome="complete") == 0
    assert _sample(before, "process_resident_memory_bytes") > 0
    assert _sample(before, "snapdesk_worker_transport_up") == 1

    write_photos(tmp_path / "in", 4)
    (tmp_path / "in" / "broken.jpg").write_text("not an image")
    library.pause("thumbnail")
    session, _ = library.submit([tmp_path / "in"])

    def depth(state="waiting"):
        m = _metrics(url)
        return _sample(m, "snapdesk_worker_queue_jobs", queue="thumbnail", state=state), m

    _, paused = wait_for(lambda: (d := depth())[0] == 5 and d, timeout=15, message="the queue depth")
    assert _sample(paused, "snapdesk_worker_queue_paused", queue="thumbnail") == 1
    library.resume("thumbnail")
    assert library.wait(session, timeout=60)
    wait_for(lambda: depth()[0] == 0, timeout=15, message="the queue depth to fall")

    def counted():
        after = _metrics(url)
        return after if _sample(after, "snapdesk_worker_jobs_total", job_type="thumbnail", outcome="failed") else None

    after = wait_for(counted, timeout=10, message="the failed job in the metrics")
    assert _sample(after, "snapdesk_worker_jobs_total", job_type="thumbnail", outcome="complete") == 4
    assert _sample(after, "snapdesk_worker_jobs_total", job_type="thumbnail", outcome="failed") == 1
    assert _sample(after, "snapdesk_worker_job_duration_seconds_count", job_type="thumbnail", outcome="complete") == 4
    assert _sample(after, "snapdesk_worker_job_duration_seconds_sum", job_type="thumbnail", outcome="complete") > 0
    assert _sample(after, "snapdesk_worker_jobs_running", job_type="thumbnail") == 0
    assert _sample(after, "snapdesk_worker_retries_total", job_type="thumbnail") == 0
    assert _sample(after, "snapdesk_worker_rate_limit_waits_total", queue="summary") == 0
    assert _get(url + "/healthz")[0] == 200
    assert _get(url + "/readyz") == (200, f"ready: taking thumbnail, ocr, summary, describe, embed jobs from "
                                          f"{library.transport.describe()}\n")


@on_redis
def test_healthz_fails_while_the_main_loop_is_blocked(start_worker, tmp_path):
    block = tmp_path / "block-the-loop"
    worker = start_worker("--http", "0", "--stuck-after", "1",
                          SNAPDESK_TEST_WORKER_HOOKS=json.dumps({"block_loop_while": str(block)}))
    url = _url(worker)
    wait_for(lambda: _get(url + "/healthz")[0] == 200, timeout=10, message="a healthy worker")
    block.touch()
    status, body = wait_for(lambda: (r := _get(url + "/healthz"))[0] == 503 and r, timeout=10,
                            message="/healthz to fail")
    assert body.startswith("stuck: the main loop has not come round for")
    assert _get(url + "/readyz")[0] == 503  # a stuck worker is not ready either
    block.unlink()
    wait_for(lambda: _get(url + "/healthz")[0] == 200, timeout=10, message="/healthz to recover")


@on_redis
def test_readyz_follows_redis_and_the_pauses(start_worker, tmp_path):
    (tmp_path / "redis").mkdir()
    server = RedisServer(tmp_path / "redis")  # one of its own, to stop and start again
    server.start()
    try:
        settings = load_settings(env={}, data_dir=tmp_path / "data", redis_url=server.url, secret="farm-secret",
                                 local_workers="no")
        worker = start_worker("--http", "0", "--queues", "thumbnail,ocr", settings_=settings)
        url = _url(worker)
        wait_for(lambda: _get(url + "/readyz")[0] == 200, timeout=15, message="the worker to be ready")

        server.stop()
        status, body = wait_for(lambda: (r := _get(url + "/readyz"))[0] == 503 and r, timeout=15,
                                message="/readyz to fail while Redis is down")
        assert body.startswith("cannot use redis redis://127.0.0.1:")
        assert _get(url + "/healthz")[0] == 200  # the worker itself is fine: it waits for Redis
        server.start()
        wait_for(lambda: _get(url + "/readyz")[0] == 200, timeout=30, message="/readyz to recover with Redis")

        from snapdesk.engine.transport import RedisTransport

        control = RedisTransport(settings)
        control.set_paused("thumbnail", True)
        control.set_paused("ocr", True)
        status, body = wait_for(lambda: (r := _get(url + "/readyz"))[0] == 503 and r, timeout=10,
                                message="/readyz to fail with every queue paused")
        assert body == "paused: every queue this worker serves is paused (thumbnail, ocr)\n"
        control.set_paused("ocr", False)
        wait_for(lambda: _get(url + "/readyz")[0] == 200, timeout=10, message="/readyz with a queue resumed")
        control.close()
        worker.stop()
    finally:
        server.stop()


@on_redis
def test_a_port_in_use_is_an_error_at_start(start_worker):
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        port = taken.getsockname()[1]
        for extra in ((), ("--max-jobs", "5")):  # on its own, and as the recycling supervisor
            worker = start_worker("--http", str(port), *extra)
            assert worker.wait(20) == 2
            assert f"cannot serve HTTP on 127.0.0.1:{port}: Address already in use" in worker.log()


# ------------------------------------------------------------------------------------ recycling
def test_max_jobs_recycles_without_losing_or_repeating_work(library, start_worker, tmp_path):
    write_photos(tmp_path / "in", 20)
    worker = start_worker("--max-jobs", "5", "--concurrency", "1", "--http", "0")
    url = _url(worker)
    session, _ = library.submit([tmp_path / "in"])
    assert library.wait(session, timeout=90)
    assert library.report(session)["counts"]["documents"]["complete"] == 20
    timelines = _timelines(library)
    assert len(timelines) == 20
    for job_id, timeline in timelines.items():  # every job ran once and completed once
        assert timeline == ["job:started", "job:complete"], (job_id, timeline)
    # Four processes of five jobs each: recycled three times while the work lasted...
    assert sorted(_completed_by_process(library).values()) == [5, 5, 5, 5]
    # ... and the fourth, having run its five, makes way too: a fresh process waits for the next work.
    wait_for(lambda: worker.log().count("left to be recycled (max-jobs") == 4, timeout=20,
             message="the fourth recycle")
    log = worker.log()
    assert log.count("recycling: this worker process ran 5 jobs (--max-jobs 5)") == 4
    assert log.count("went back to the queue") == 0
    # The same port serves each process in turn; the supervisor's count carries over.
    samples = wait_for(lambda: (m := _metrics(url)) and _sample(m, "snapdesk_worker_recycles_total",
                                                                  reason="max_jobs") == 4 and m,
                       timeout=20, message="the fifth process to serve /metrics")
    assert _sample(samples, "snapdesk_worker_process_jobs_total") == 0
    assert worker.stop() == 0  # SIGTERM to the supervisor: its worker process drains and both exit
    pids = [int(p) for p in re.findall(r"worker process (\d+) started", worker.log())]  # the fifth's line too
    assert len(set(pids)) == 5 and not any(_alive(pid) for pid in pids)


@on_redis
@pytest.mark.jobs("thumbnail,ocr")
def test_a_recycling_process_lets_a_long_job_finish_past_the_drain_timeout(library, start_worker, tmp_path):
    [photo] = write_photos(tmp_path / "in", 1)
    session, _ = library.submit([photo])
    # The thumbnail and the OCR job run at once; the thumbnail ends first and the process is past
    # --max-jobs while the OCR job still runs, for longer than the drain timeout. A recycle waits
    # for it: it completes there, and does not go back on the queue to run again.
    worker = start_worker("--max-jobs", "1", "--concurrency", "1", "--drain-timeout", "1",
                          faults={"thumbnail": {"sleep": 0.5}, "ocr": {"sleep": 3}})
    assert library.wait(session, timeout=60)
    timelines = _timelines(library)
    assert len(timelines) == 2 and all(t == ["job:started", "job:complete"] for t in timelines.values()), timelines
    assert len(_completed_by_process(library)) == 1  # both in the first process
    log = worker.log()
    assert "recycling: this worker process ran 1 job (--max-jobs 1)" in log
    assert "went back to the queue" not in log
    assert worker.stop() == 0


@on_redis
def test_max_memory_recycles_a_process_that_grows_past_it(library, start_worker, tmp_path):
    write_photos(tmp_path / "in", 6)
    # Each job leaves 80 MB behind; a fresh worker process holds about 60-100 MB.
    worker = start_worker("--max-memory", "220", "--concurrency", "1",
                          SNAPDESK_TEST_WORKER_HOOKS=json.dumps({"leak_mb_per_job": 80}))
    session, _ = library.submit([tmp_path / "in"])
    assert library.wait(session, timeout=90)
    assert all(t == ["job:started", "job:complete"] for t in _timelines(library).values())
    assert sum(_completed_by_process(library).values()) == 6
    assert max(_completed_by_process(library).values()) <= 3
    log = worker.log()
    assert re.search(r"recycling: this worker process uses \d+ MB, past --max-memory 220 MB", log), log
    assert "left to be recycled (max-memory" in log
    assert "recycling on memory is off" not in log


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    return True


# ---------------------------------------------------------------------------------- the unit file
UNIT = ROOT / "packaging" / "snapdesk-worker.service"


def test_the_unit_file_drains_on_stop_and_reads_its_environment_file():
    keys: dict[str, list[str]] = {}
    for line in UNIT.read_text().splitlines():
        if "=" in line and not line.startswith(("#", "[")):
            key, _, value = line.partition("=")
            keys.setdefault(key, []).append(value)
    assert keys["KillSignal"] == ["SIGTERM"]
    assert keys["Restart"] == ["on-failure"]
    assert keys["EnvironmentFile"] == ["-/etc/snapdesk/worker.env"]
    assert keys["User"] == ["snapdesk"] and keys["NoNewPrivileges"] == ["yes"]
    drain = load_settings(env={}).drain_timeout
    assert float(keys["TimeoutStopSec"][0]) >= drain + 15  # the drain, and time to put jobs back
    assert "$SNAPDESK_WORKER_ARGS" in keys["ExecStart"][0]
    env = (ROOT / "packaging" / "snapdesk-worker.env").read_text()
    assert re.search(r"^SNAPDESK_WORKER_ARGS=.*--http 9108", env, re.M)


@pytest.mark.skipif(shutil.which("systemd-analyze") is None,
                    reason="systemd-analyze is not installed (no systemd on this machine)")
def test_the_unit_file_passes_systemd_analyze_verify(tmp_path):
    # verify wants ExecStart's program to exist: point it at this checkout's snapdesk-worker.
    exe = Path(sys.executable).with_name("snapdesk-worker")
    unit = tmp_path / UNIT.name
    unit.write_text(UNIT.read_text().replace("/opt/snapdesk/bin/snapdesk-worker", str(exe)))
    proc = subprocess.run(["systemd-analyze", "verify", str(unit)], capture_output=True, text=True, timeout=60)
    # A bad value is only a warning (exit 0): any line about the unit fails the test.
    about_it = [ln for ln in (proc.stdout + proc.stderr).splitlines() if UNIT.name in ln]
    assert proc.returncode == 0 and not about_it, proc.stdout + proc.stderr


# ----------------------------------------------------------------------------- jobs --watch
@on_redis
def test_jobs_watch_shows_the_farm_live_and_quits_on_ctrl_c(library, start_worker, settings, tmp_path, cli_env):
    write_photos(tmp_path / "in", 3)
    session, _ = library.submit([tmp_path / "in"])
    worker = start_worker()
    assert library.wait(session, timeout=60)
    library.close()  # the watch becomes the owner
    env = dict(cli_env, REDIS_URL=settings.redis_url, SNAPDESK_SECRET=settings.secret,
               SNAPDESK_DATA_DIR=str(settings.data_dir), SNAPDESK_LOCAL_WORKERS="no")
    out = tmp_path / "watch.txt"
    with open(out, "wb") as fh:
        watch = subprocess.Popen([sys.executable, "-m", "snapdesk", "jobs", "--watch", "--interval", "0.3"],
                                 stdout=fh, stderr=subprocess.STDOUT, env=env)
    try:
        wait_for(lambda: out.read_text().count("snapdesk jobs --watch") >= 2, timeout=30,
                 message="two frames")
    finally:
        watch.send_signal(signal.SIGINT)
        code = watch.wait(20)
    text = out.read_text()
    assert code == 0, text
    frame = text.split("\n\n" + "snapdesk jobs --watch")[-1]
    assert "thumbnail        0       0       0      3      0" in frame
    assert "workers: 1" in frame and f":{worker.pid}  thumbnail,ocr,summary,describe,embed" in frame
    assert "Traceback" not in text and "\x1b[" not in text  # into a file: plain frames


@on_redis
def test_jobs_watch_draws_in_place_on_a_terminal(settings, cli_env, library):
    import pty

    library.close()
    env = dict(cli_env, REDIS_URL=settings.redis_url, SNAPDESK_SECRET=settings.secret,
               SNAPDESK_DATA_DIR=str(settings.data_dir), SNAPDESK_LOCAL_WORKERS="no")
    leader, follower = pty.openpty()
    watch = subprocess.Popen([sys.executable, "-m", "snapdesk", "jobs", "--watch", "--interval", "0.3"],
                             stdout=follower, stderr=follower, env=env)
    os.close(follower)
    seen = b""

    def read() -> bool:
        """Whatever the terminal shows next; False once it is closed."""
        nonlocal seen
        if select.select([leader], [], [], 0.1)[0]:
            try:
                chunk = os.read(leader, 65536)
            except OSError:  # the process is gone and its terminal with it
                return False
            seen += chunk
            return bool(chunk)
        return True

    try:
        wait_for(lambda: read() and seen.count(b"snapdesk jobs --watch") >= 2, timeout=30, message="two frames")
    finally:
        watch.send_signal(signal.SIGINT)
        code = watch.wait(20)
    while read() and not seen.endswith(b"\x1b[?25h"):
        pass
    os.close(leader)
    assert code == 0, seen
    assert seen.startswith(b"\x1b[?25l\x1b[2J")  # the cursor hidden and the screen cleared, once
    assert seen.count(b"\x1b[H") >= 2  # each frame drawn over the last
    assert seen.endswith(b"\x1b[?25h")  # the cursor back on Ctrl+C
    assert b"Traceback" not in seen

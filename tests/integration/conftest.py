import os
import shutil
import socket
import subprocess

import pytest
import redis

from snapdesk.config import load_settings
from snapdesk.engine.library import Library
from snapdesk.engine.local_workers import lock_path, try_lock

from helpers import WorkerProcess, wait_for


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@pytest.fixture(scope="session")
def redis_server(tmp_path_factory):
    """A private redis-server on a free port (never the machine's own on 6379)."""
    exe = shutil.which("redis-server")
    if exe is None:
        pytest.fail("redis-server is not installed; `make test` installs it")
    port = _free_port()
    workdir = tmp_path_factory.mktemp("redis")
    proc = subprocess.Popen([exe, "--port", str(port), "--bind", "127.0.0.1", "--save", "", "--appendonly", "no",
                             "--dir", str(workdir)], stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    url = f"redis://127.0.0.1:{port}/0"
    client = redis.Redis.from_url(url)
    wait_for(lambda: _pings(client), timeout=10, message="redis-server to start")
    yield url
    client.close()
    proc.terminate()
    proc.wait(10)


def _pings(client) -> bool:
    try:
        return client.ping()
    except redis.ConnectionError:
        return False


@pytest.fixture
def redis_url(redis_server):
    """The private server, emptied for this test."""
    client = redis.Redis.from_url(redis_server)
    client.flushall()
    client.close()
    return redis_server


@pytest.fixture(params=["embedded", "redis"])
def transport_name(request):
    return request.param


@pytest.fixture
def settings(tmp_path, transport_name, request):
    url = request.getfixturevalue("redis_url") if transport_name == "redis" else ""
    return load_settings(env={}, data_dir=tmp_path / "data", redis_url=url, secret="farm-secret-for-tests",
                         retry_backoff_ms=100, local_workers="no", lease_seconds=30, lease_renew_seconds=1,
                         job_types=request.node.get_closest_marker("jobs").args[0]
                         if request.node.get_closest_marker("jobs") else "thumbnail")


@pytest.fixture
def library(settings):
    lib = Library(settings)
    yield lib
    lib.close()


@pytest.fixture
def start_worker(settings, tmp_path):
    """Start real worker processes on the test's transport; all are stopped at the end."""
    workers = []

    def start(*args, faults=None, settings_=None, **env):
        s = settings_ or settings
        base = ["--data-dir", str(s.data_dir)] + (["--redis", s.redis_url] if s.redis_url else [])
        worker = WorkerProcess(s, *base, *args, faults=faults, log_path=tmp_path / f"worker-{len(workers)}.log", **env)
        workers.append(worker)
        return worker

    yield start
    for worker in workers:
        worker.stop()
    for worker in workers:  # whatever a test provoked, no worker thread may have crashed
        assert "died" not in worker.log(), worker.log()


@pytest.fixture
def cli_env(tmp_path):
    """The environment for running the snapdesk command on a library of the test's own."""
    env = {k: v for k, v in os.environ.items() if not k.startswith(("SNAPDESK_", "JOB_")) and k != "REDIS_URL"}
    env.update(SNAPDESK_CONFIG_DIR=str(tmp_path / "config"), SNAPDESK_DATA_DIR=str(tmp_path / "data"),
               SNAPDESK_WORKER_IDLE_EXIT="2", JOB_RETRY_BACKOFF_MS="100", SNAPDESK_JOBS="thumbnail")
    yield env
    # The local worker the CLI started exits by itself once idle.
    settings = load_settings(env={}, data_dir=tmp_path / "data")
    if lock_path(settings).exists():
        wait_for(lambda: _unlocked(settings), timeout=30, message="the local worker to exit when idle")


def _unlocked(settings):
    lock = try_lock(lock_path(settings))
    if lock:
        lock.close()
    return lock is not None

"""Redis goes away mid-run and comes back: owner and workers reconnect, nothing is lost or applied twice."""

import json
import re
import subprocess
import sys

import pytest

from snapdesk.config import load_settings
from snapdesk.engine.library import Library
from snapdesk.store import db as store

from helpers import RedisServer, WorkerProcess, wait_for, write_photos


@pytest.fixture
def farm(tmp_path):
    server = RedisServer(tmp_path)
    server.start()
    yield server
    if server.proc.poll() is None:
        server.stop()


def test_a_redis_outage_mid_run_loses_nothing_and_applies_nothing_twice(farm, tmp_path):
    settings = load_settings(env={}, data_dir=tmp_path / "data", redis_url=farm.url, secret="farm-secret",
                             local_workers="no", job_types="thumbnail", lease_renew_seconds=1)
    faults = {"thumbnail": {"sleep": 0.3}}
    workers = [WorkerProcess(settings, "--concurrency", "1", faults=faults, log_path=tmp_path / f"w{i}.log")
               for i in range(2)]
    library = Library(settings)
    try:
        write_photos(tmp_path / "in", 12)
        session, _ = library.submit([tmp_path / "in"])
        outage = farm.outage(after=1.0, lasting=3.0)
        seen = []
        assert library.wait(session, timeout=120, on_connection=lambda ok, why: seen.append(ok))
        outage.join()
        assert seen[0] is False and seen[-1] is True  # it noticed, and it came back
        report = library.report(session)
        assert report["counts"]["documents"]["complete"] == 12
        for job in store.Job.select():
            completions = store.JobEvent.select().where(store.JobEvent.job == job,
                                                        store.JobEvent.type == "job:complete").count()
            assert completions == 1, job.id
        assert store.Artifact.select().count() == 36
        assert all(w.proc.poll() is None for w in workers)  # the workers rode it out
        logs = "".join(w.log() for w in workers)
        assert "retrying with backoff" in logs and "Traceback" not in logs
    finally:
        library.close()
        for w in workers:
            w.stop()


def test_the_command_line_says_it_is_disconnected_and_then_connected(farm, tmp_path, cli_env):
    env = dict(cli_env, REDIS_URL=farm.url, SNAPDESK_SECRET="farm-secret")
    settings = load_settings(env=env)
    worker = WorkerProcess(settings, "--concurrency", "1", faults={"thumbnail": {"sleep": 0.3}},
                           log_path=tmp_path / "worker.log")
    try:
        write_photos(tmp_path / "in", 8)
        err_path = tmp_path / "submit.err"
        with open(err_path, "w") as err:
            submit = subprocess.Popen([sys.executable, "-m", "snapdesk", "submit", str(tmp_path / "in"), "--wait",
                                       "--json"], stdout=subprocess.PIPE, stderr=err, text=True, env=env)
            # The outage begins once submit is connected and waiting (its progress line shows a document
            # done), however long it took to start: not at a fixed time.
            wait_for(lambda: re.search(r"done: [1-7]\b", err_path.read_text()), timeout=60,
                     message="submit to show its first document done")
            farm.outage(after=0, lasting=3.0)
            out, _ = submit.communicate(timeout=120)
        stderr = err_path.read_text()
        assert submit.returncode == 0, stderr
        assert "disconnected: cannot reach redis" in stderr
        assert "connected to redis" in stderr.split("disconnected:", 1)[1]
        assert json.loads(out)["counts"]["documents"]["complete"] == 8
    finally:
        worker.stop()

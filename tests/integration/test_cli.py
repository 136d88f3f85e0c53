"""The snapdesk and snapdesk-worker commands, run as a person runs them."""

import json
import os
import subprocess
import sys
from collections import Counter


from snapdesk import __version__
from snapdesk.config import load_settings

from helpers import wait_for_first_job, WorkerProcess, snapdesk, wait_for, write_photos


def test_submit_wait_json_on_the_embedded_default(tmp_path, cli_env):
    folder = tmp_path / "photos"
    write_photos(folder, 4, width=800, height=600)
    (folder / ".DS_Store").write_bytes(b"x")
    (folder / "readme.txt").write_text("not a photo")
    done = snapdesk("submit", str(folder), "--wait", "--json", env=cli_env)
    assert done.returncode == 0, done.stderr
    report = json.loads(done.stdout)
    assert report["transport"] == "embedded"
    assert report["session"]["status"] == "complete"
    assert report["counts"]["documents"]["complete"] == 4
    assert report["counts"]["skipped"] == {"hidden": 1, "unsupported": 1}
    for doc in report["documents"]:
        thumb = doc["jobs"]["thumbnail"]
        assert thumb["state"] == "complete"
        assert set(thumb["result"]["thumbnails"]) == {"sm", "md", "lg"}
        assert all(os.path.exists(t["path"]) for t in thumb["result"]["thumbnails"].values())
    assert "done: 4" in done.stderr  # the progress line

    status = snapdesk("status", "--json", env=cli_env)
    assert json.loads(status.stdout)["documents"] == report["documents"]
    human = snapdesk("status", str(report["session"]["id"]), env=cli_env)
    assert f"session {report['session']['id']} (photos): complete, 4 documents, 4 complete" in human.stdout


def test_submit_returns_at_once_and_status_catches_up(tmp_path, cli_env):
    write_photos(tmp_path / "in", 3)
    submitted = snapdesk("submit", str(tmp_path / "in"), env=cli_env)
    assert submitted.returncode == 0, submitted.stderr
    assert "follow it with: snapdesk status 1" in submitted.stdout

    def complete():
        return json.loads(snapdesk("status", "1", "--json", env=cli_env).stdout)["session"]["status"] == "complete"

    wait_for(complete, timeout=60, interval=0.5, message="the session to complete")


def test_failures_exit_non_zero_and_retry_requeues(tmp_path, cli_env):
    write_photos(tmp_path / "in", 1, prefix="flaky")
    env = dict(cli_env, JOB_RETRY_ATTEMPTS="1",
               SNAPDESK_TEST_FAULTS=json.dumps({"thumbnail": {"match": "flaky", "fail_attempts": 1}}))
    failed = snapdesk("submit", str(tmp_path / "in"), "--wait", env=env)
    assert failed.returncode == 1
    assert "failed: " in failed.stdout and "injected transient fault on attempt 1" in failed.stdout
    assert "snapdesk retry --failed" in failed.stdout

    retried = snapdesk("retry", "--failed", env=env)
    assert retried.returncode == 0 and "queued 1 job again" in retried.stdout

    report = wait_for_first_job(env, "thumbnail", "the retried job to complete")
    assert report["documents"][0]["jobs"]["thumbnail"]["attempts"] == 2

    nothing = snapdesk("retry", "999", env=env)
    assert nothing.returncode == 1 and "not retried (unknown, or not failed): 999" in nothing.stderr


def test_a_missing_path_is_a_usage_error_and_nothing_is_added(tmp_path, cli_env):
    write_photos(tmp_path / "in", 1)
    for args in ([str(tmp_path / "nope")], [str(tmp_path / "in"), str(tmp_path / "nope")]):
        done = snapdesk("submit", *args, "--wait", env=cli_env)
        assert done.returncode == 2, done
        assert f"no such file or folder: {tmp_path / 'nope'}; nothing was added" in done.stderr
    status = snapdesk("status", env=cli_env)
    assert status.returncode == 0 and "no sessions yet" in status.stdout


def test_redis_farm_with_two_workers_started_by_hand(tmp_path, cli_env, redis_url):
    env = dict(cli_env, REDIS_URL=redis_url, SNAPDESK_SECRET="the-farm-secret")
    settings = load_settings(env=env)
    workers = [WorkerProcess(settings, "--concurrency", "1", log_path=tmp_path / f"w{i}.log",
                             SNAPDESK_TEST_FAULTS=json.dumps({"thumbnail": {"sleep": 0.2}})) for i in range(2)]
    try:
        write_photos(tmp_path / "in", 8)
        done = snapdesk("submit", str(tmp_path / "in"), "--wait", "--json", env=env)
        assert done.returncode == 0, done.stderr
        report = json.loads(done.stdout)
        assert report["transport"] == f"redis {redis_url}"
        assert report["counts"]["documents"]["complete"] == 8
        per_worker = Counter(d["jobs"]["thumbnail"]["worker"] for d in report["documents"])
        assert sorted(per_worker) == sorted(f"{os.uname().nodename}:{w.pid}" for w in workers)
    finally:
        for w in workers:
            w.stop()


def test_redis_without_a_secret_is_a_clear_error(tmp_path, cli_env, redis_url):
    write_photos(tmp_path / "in", 1)
    done = snapdesk("submit", str(tmp_path / "in"), "--redis", redis_url, env=cli_env)
    assert done.returncode == 2
    assert "set SNAPDESK_SECRET" in done.stderr


def test_worker_version_and_json_logs(tmp_path, cli_env, redis_url):
    version = subprocess.run([sys.executable, "-m", "snapdesk.worker", "--version"], capture_output=True, text=True)
    assert version.stdout.strip() == f"snapdesk-worker {__version__}"
    env = dict(cli_env, REDIS_URL=redis_url, SNAPDESK_SECRET="s3cret-value")
    worker = WorkerProcess(load_settings(env=env), "--log-json", "--queues", "thumbnail",
                           log_path=tmp_path / "worker.log", SNAPDESK_SECRET="s3cret-value")
    try:
        write_photos(tmp_path / "in", 1)
        assert snapdesk("submit", str(tmp_path / "in"), "--wait", env=env).returncode == 0
    finally:
        assert worker.stop() == 0
    lines = [json.loads(line) for line in worker.log().splitlines()]
    [job_line] = [line for line in lines if line.get("job_id")]
    assert job_line["job_type"] == "thumbnail" and job_line["outcome"] == "complete"
    assert isinstance(job_line["duration_ms"], int)
    assert "s3cret-value" not in worker.log()


def test_unknown_queue_is_refused():
    done = subprocess.run([sys.executable, "-m", "snapdesk.worker", "--queues", "thumbnail,videos"],
                          capture_output=True, text=True)
    assert done.returncode == 2 and "unknown queue videos" in done.stderr

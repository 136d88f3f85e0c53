"""Queue operations from the command line, with --json output: jobs, failed, cancel, pause, health."""

import json
import socket

import pytest

from snapdesk.config import load_settings

from helpers import WorkerProcess, snapdesk, wait_for, write_photos


def _json(done):
    assert done.returncode in (0, 1), done.stderr
    return json.loads(done.stdout)


def test_jobs_failed_list_discard_and_remove(tmp_path, cli_env):
    write_photos(tmp_path / "in", 2)
    (tmp_path / "in" / "bad.jpg").write_text("a text file named .jpg")
    assert snapdesk("submit", str(tmp_path / "in"), "--wait", env=cli_env).returncode == 1

    stats = _json(snapdesk("jobs", "--json", env=cli_env))
    thumbs = stats["queues"]["thumbnail"]
    assert thumbs["states"]["complete"] == 2 and thumbs["states"]["failed"] == 1
    assert thumbs["errors"][0]["count"] == 1 and thumbs["throughput_per_min"] > 0
    human = snapdesk("jobs", env=cli_env).stdout
    assert human.splitlines()[2].split()[:6] == ["thumbnail", "0", "0", "0", "2", "1"]

    [failed] = _json(snapdesk("jobs", "--failed", "--json", env=cli_env))["failed"]
    assert failed["path"] == str(tmp_path / "in" / "bad.jpg") and "not an image" in failed["error"].lower()
    discarded = snapdesk("discard", str(failed["id"]), env=cli_env)
    assert discarded.returncode == 0 and "discarded 1 job" in discarded.stdout
    assert _json(snapdesk("jobs", "--failed", "--json", env=cli_env))["failed"] == []

    removed = snapdesk("remove", "1", env=cli_env)
    assert removed.returncode == 0 and "removed session 1" in removed.stdout
    gone = snapdesk("status", "1", env=cli_env)
    assert gone.returncode == 2 and "no session 1" in gone.stderr


def test_pause_cancel_and_resume(tmp_path, cli_env):
    paused = snapdesk("pause", "thumbnail", env=cli_env)
    assert paused.returncode == 0 and "paused: thumbnail" in paused.stdout
    write_photos(tmp_path / "in", 3)
    assert snapdesk("submit", str(tmp_path / "in"), env=cli_env).returncode == 0
    report = _json(snapdesk("status", "--json", env=cli_env))
    assert report["counts"]["jobs"]["queued"] == 3
    first = report["documents"][0]["jobs"]["thumbnail"]["id"]
    cancelled = snapdesk("cancel", str(first), env=cli_env)
    assert cancelled.returncode == 0 and "cancelled 1 job" in cancelled.stdout
    queues = _json(snapdesk("jobs", "--json", env=cli_env))["queues"]
    assert queues["thumbnail"]["paused"] is True and queues["ocr"]["paused"] is False

    assert "paused: none" in snapdesk("resume", "all", env=cli_env).stdout

    def finished():
        report = _json(snapdesk("status", "--json", env=cli_env))
        return report["session"]["status"] != "running" and report

    report = wait_for(finished, timeout=60, interval=0.5, message="the session to finish")
    assert report["counts"]["documents"]["complete"] == 2 and report["counts"]["documents"]["cancelled"] == 1
    assert report["documents"][0]["jobs"]["thumbnail"]["state"] == "cancelled"


def test_health_fails_without_workers_and_when_redis_is_down(tmp_path, cli_env, redis_url):
    env = dict(cli_env, REDIS_URL=redis_url, SNAPDESK_SECRET="farm-secret")
    lonely = snapdesk("health", "--json", env=env)
    assert lonely.returncode == 1
    checks = {c["name"]: c for c in _json(lonely)["checks"]}
    assert checks["transport"]["ok"] and not checks["workers"]["ok"]

    worker = WorkerProcess(load_settings(env=env), log_path=tmp_path / "worker.log")
    try:
        wait_for(lambda: snapdesk("health", env=env).returncode == 0, interval=0.5, message="a healthy farm")
        assert "ok    workers: 1 alive" in snapdesk("health", env=env).stdout
    finally:
        worker.stop()

    with socket.socket() as s:  # a port where no Redis listens
        s.bind(("127.0.0.1", 0))
        nobody = f"redis://127.0.0.1:{s.getsockname()[1]}/0"
    down = snapdesk("health", env=dict(env, REDIS_URL=nobody))
    assert down.returncode == 1
    assert "FAIL  transport: cannot reach redis" in down.stdout and "Traceback" not in down.stderr


def test_health_is_fine_on_an_idle_embedded_library(cli_env):
    done = snapdesk("health", env=cli_env)
    assert done.returncode == 0, done.stdout


@pytest.mark.parametrize("transport_name", ["embedded"])
def test_one_owner_at_a_time_and_read_only_commands_beside_it(library, start_worker, tmp_path, cli_env):
    """While the window (here: a Library in this process) owns the library, the command line may
    look but not write: the owner alone applies events and writes the DB."""
    write_photos(tmp_path / "in", 2)
    start_worker()
    session, _ = library.submit([tmp_path / "in"])
    assert library.wait(session, timeout=60)

    refused = snapdesk("submit", str(tmp_path / "in"), env=cli_env)
    assert refused.returncode == 2 and "another SnapDesk" in refused.stderr and "is using the library" in refused.stderr
    status = _json(snapdesk("status", str(session.id), "--json", env=cli_env))
    assert status["counts"]["documents"]["complete"] == 2  # read beside the owner
    assert snapdesk("search", "photo", "--json", env=cli_env).returncode in (0, 1)

    library.close()  # the window closes: the command line may own it now
    again = snapdesk("retry", "--failed", env=cli_env)
    assert again.returncode == 0 and "queued 0 jobs again" in again.stdout

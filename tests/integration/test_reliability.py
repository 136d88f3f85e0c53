"""Nothing lost, nothing forged: bad input, an owner killed mid-run, a worker's machine vanishing,
two desktops on one farm, a Redis password, and a soak with workers killed at random."""

import json
import os
import random
import shutil
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
import redis

from snapdesk.config import load_settings
from snapdesk.engine.library import Library
from snapdesk.store import db as store

from helpers import WorkerProcess, bomb_png, jpeg_bytes, snapdesk, wait_for, write_photos


def _wait(library, session, timeout=90):
    assert library.wait(session, timeout=timeout), library.report(session)["counts"]
    return {Path(d["path"]).name: d for d in library.report(session)["documents"]}


def _bad_folder(folder: Path) -> None:
    """Every kind of bad input a person's folder holds, beside good photos."""
    folder.mkdir(parents=True)
    write_photos(folder, 2, prefix="good")
    (folder / "holiday photo ünïcødé 日本.jpg").write_bytes(jpeg_bytes(320, 240, seed=7))
    (folder / "empty.jpg").write_bytes(b"")
    good = jpeg_bytes(640, 480, seed=8)
    (folder / "truncated.jpg").write_bytes(good[: len(good) // 2])
    (folder / "text.jpg").write_text("this is a text file with a .jpg name")
    (folder / "corrupt.pdf").write_bytes(b"%PDF-1.4\n1 0 obj << /Type /Catalog >> garbage garbage\n%%EOF")
    (folder / "bomb.png").write_bytes(bomb_png(20_000, 20_000))  # claims 400 MP
    with open(folder / "huge.jpg", "wb") as f:  # 600 MiB, over SNAPDESK_MAX_FILE_MB (sparse: no disk used)
        f.truncate(600 * 2**20)
    (folder / "loop").mkdir()
    (folder / "loop" / "again").symlink_to(folder)
    (folder / "deleted.jpg").write_bytes(jpeg_bytes(320, 240, seed=9))
    (folder / "changed.jpg").write_bytes(jpeg_bytes(320, 240, seed=10))


def test_bad_input_fails_or_is_skipped_with_its_reason_and_the_rest_completes(library, start_worker, tmp_path,
                                                                              transport_name):
    folder = tmp_path / "mixed"
    _bad_folder(folder)
    library.pause("thumbnail")  # so the files can change between import and processing
    session, scanner = library.submit([folder])
    assert scanner.skipped["empty"] == 1 and scanner.skipped["too_large"] == 1
    assert (str(folder / "huge.jpg"), "600 MiB is more than the 512 MiB limit (SNAPDESK_MAX_FILE_MB)") \
        in scanner.problems
    (folder / "deleted.jpg").unlink()
    (folder / "changed.jpg").write_bytes(jpeg_bytes(320, 240, seed=11))
    worker = start_worker()
    library.resume("thumbnail")
    docs = _wait(library, session)

    def outcome(name):
        job = docs[name]["jobs"]["thumbnail"]
        return job["state"], (job["error"] or "").lower()

    for name in ("good-000.jpg", "good-001.jpg", "holiday photo ünïcødé 日本.jpg"):
        assert outcome(name)[0] == "complete"
    assert "empty.jpg" not in docs  # skipped at import, counted
    assert outcome("truncated.jpg") == ("failed", outcome("truncated.jpg")[1])
    assert "damaged or truncated" in outcome("truncated.jpg")[1]
    assert "not an image" in outcome("text.jpg")[1]
    assert "too large" in outcome("bomb.png")[1] and "400 mp" in outcome("bomb.png")[1]
    assert outcome("corrupt.pdf")[0] == "failed" and "pdf" in outcome("corrupt.pdf")[1]
    if transport_name == "embedded":  # the worker reads the file itself
        assert outcome("deleted.jpg") == ("failed", "the file is gone: it was moved or deleted after it was added")
        assert "changed after it was added" in outcome("changed.jpg")[1]
    else:  # the owner put the bytes in Redis when it queued them: the document as added is processed
        assert outcome("deleted.jpg")[0] == "complete" and outcome("changed.jpg")[0] == "complete"
    for name, doc in docs.items():
        if doc["jobs"]["thumbnail"]["state"] == "failed":
            assert doc["jobs"]["thumbnail"]["error_kind"] == "permanent" and doc["jobs"]["thumbnail"]["attempts"] == 1
    assert len([d for d in docs if d.startswith("good")]) == 2  # the symlink loop added nothing twice
    assert worker.proc.poll() is None


def test_a_file_the_owner_cannot_read_is_skipped_with_its_reason(tmp_path, cli_env):
    folder = tmp_path / "in"
    write_photos(folder, 1)
    secret = folder / "private.jpg"
    secret.write_bytes(jpeg_bytes(200, 100))
    secret.chmod(0o000)
    command = [sys.executable, "-m", "snapdesk", "submit", str(folder), "--wait", "--json"]
    if os.geteuid() == 0:  # root reads any file: run the owner as root without that power
        drop = "-dac_override,-dac_read_search"
        command = [shutil.which("setpriv"), f"--inh-caps={drop}", f"--bounding-set={drop}", *command]
    done = subprocess.run(command, capture_output=True, text=True, env=cli_env, timeout=120)
    assert done.returncode == 0, done.stderr
    assert f"skipped {secret}: cannot read it (Permission denied)" in done.stderr
    report = json.loads(done.stdout)
    assert report["counts"]["skipped"] == {"unreadable": 1}
    assert report["counts"]["documents"]["complete"] == 1


def test_an_owner_killed_mid_run_catches_up_from_its_log(tmp_path, cli_env):
    write_photos(tmp_path / "in", 10)
    env = dict(cli_env, SNAPDESK_TEST_FAULTS=json.dumps({"thumbnail": {"sleep": 0.3}}), SNAPDESK_WORKER_IDLE_EXIT="5")
    owner = subprocess.Popen([sys.executable, "-m", "snapdesk", "submit", str(tmp_path / "in"), "--wait"],
                             env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    time.sleep(2.5)  # some results applied, some not
    owner.send_signal(signal.SIGKILL)
    owner.communicate(timeout=10)
    done = snapdesk("status", "1", "--json", env=env)
    wait_for(lambda: json.loads(snapdesk("status", "1", "--json", env=env).stdout)["session"]["status"] == "complete",
             timeout=60, interval=0.5, message="the session to complete after the owner's restart")
    settings = load_settings(env={}, data_dir=tmp_path / "data", local_workers="no")
    with Library(settings) as library:
        library.catch_up()
        completions = [store.JobEvent.select().where(store.JobEvent.job == job, store.JobEvent.type == "job:complete")
                       .count() for job in store.Job.select()]
        assert completions == [1] * 10  # every result applied, none twice
    assert done.returncode == 0


def test_a_worker_whose_machine_vanishes_loses_its_jobs_to_others(settings, start_worker, tmp_path):
    """A frozen worker (SIGSTOP: no heartbeats, no events, as if its machine dropped off the network)."""
    library = Library(settings.replace(lease_seconds=2.0))
    try:
        write_photos(tmp_path / "in", 1, prefix="stranded")
        gone = start_worker("--concurrency", "1", faults={"thumbnail": {"sleep": 3}})
        session, _ = library.submit([tmp_path / "in"])
        wait_for(lambda: library.pump(block_ms=100) or library.document_counts(session)["running"],
                 message="a start")
        gone.proc.send_signal(signal.SIGSTOP)
        start_worker()
        doc = _wait(library, session)["stranded-000.jpg"]
        assert doc["jobs"]["thumbnail"]["attempts"] == 2 and doc["jobs"]["thumbnail"]["state"] == "complete"
        gone.proc.send_signal(signal.SIGCONT)  # it wakes up and reports its stale attempt: ignored
        time.sleep(4)
        library.catch_up()
        job = store.Job.get()
        assert job.attempt == 2
        assert store.JobEvent.select().where(store.JobEvent.type == "job:complete").count() == 1
    finally:
        library.close()


def test_two_desktops_on_one_farm_never_see_each_others_jobs(tmp_path, redis_url, cli_env):
    settings = load_settings(env={}, data_dir=tmp_path / "mine", redis_url=redis_url, secret="farm-secret",
                             local_workers="no", job_types="thumbnail")
    other_env = dict(cli_env, REDIS_URL=redis_url, SNAPDESK_SECRET="farm-secret",
                     SNAPDESK_DATA_DIR=str(tmp_path / "theirs"))
    worker = WorkerProcess(settings, "--concurrency", "2", log_path=tmp_path / "worker.log")
    library = Library(settings)
    try:
        write_photos(tmp_path / "a", 3, prefix="mine")
        write_photos(tmp_path / "b", 4, prefix="theirs", start_seed=50)
        library.pause("thumbnail")
        session, _ = library.submit([tmp_path / "a"])
        theirs = snapdesk("submit", str(tmp_path / "b"), env=other_env)
        assert theirs.returncode == 0, theirs.stderr
        # Job ids are per library: both have a job 1. Cancelling mine leaves theirs alone.
        assert library.cancel([1]) == [1]
        library.resume("thumbnail")
        docs = _wait(library, session)
        assert sorted(d["jobs"]["thumbnail"]["state"] for d in docs.values()) == ["cancelled", "complete", "complete"]
        other = wait_for(lambda: _finished(snapdesk("status", "--json", env=other_env)), timeout=60, interval=0.5,
                         message="the other desktop's session")
        assert other["counts"]["documents"]["complete"] == 4  # their job 1 ran
        assert all("theirs" not in e.job.document.path for e in store.JobEvent.select())
        assert library.transport.read_events(library.owner) == []  # nothing of theirs in my log
    finally:
        library.close()
        worker.stop()


def _finished(done):
    report = json.loads(done.stdout)
    return report["session"]["status"] != "running" and report


def test_a_farm_with_a_password(tmp_path):
    port = _free_port()
    password = "pa55-w0rd-for-the-farm"
    server = subprocess.Popen([shutil.which("redis-server"), "--port", str(port), "--bind", "127.0.0.1", "--save", "",
                               "--appendonly", "no", "--requirepass", password, "--dir", str(tmp_path)],
                              stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    try:
        url = f"redis://:{password}@127.0.0.1:{port}/0"
        wait_for(lambda: _pings(url), timeout=10, message="redis-server")
        report, worker = _two_photos_through_a_farm(url, tmp_path)
        assert report["counts"]["documents"]["complete"] == 2
        assert report["transport"] == f"redis redis://:***@127.0.0.1:{port}/0"
        assert password not in worker.log() and "***" in worker.log()
        wrong = load_settings(env={}, data_dir=tmp_path / "data2", redis_url=f"redis://:nope@127.0.0.1:{port}/0",
                              secret="farm-secret", local_workers="no")
        with Library(wrong) as library:
            health = library.health()
        assert not health["ok"] and "nope" not in json.dumps(health)
    finally:
        server.terminate()
        server.wait(10)


def _two_photos_through_a_farm(url: str, tmp_path: Path):
    """Two photos through one worker on the farm at ``url``: the session's report and the worker."""
    settings = load_settings(env={}, data_dir=tmp_path / "data", redis_url=url, secret="farm-secret",
                             local_workers="no", job_types="thumbnail")
    worker = WorkerProcess(settings, "--redis", url, log_path=tmp_path / "worker.log")
    try:
        write_photos(tmp_path / "in", 2)
        with Library(settings) as library:
            session, _ = library.submit([tmp_path / "in"])
            assert library.wait(session, timeout=60)
            return library.report(session), worker
    finally:
        worker.stop()


def _free_port():
    import socket

    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _pings(url):
    try:
        return redis.Redis.from_url(url).ping()
    except redis.ConnectionError:
        return False


#: Read at import: the tests' environment is emptied of SNAPDESK_* settings before each test.
SOAK_DOCS = int(os.environ.get("SNAPDESK_SOAK_DOCS", "150"))


@pytest.mark.soak
def test_soak_workers_killed_at_random_lose_nothing(tmp_path, redis_url):
    """SNAPDESK_SOAK_DOCS documents (150 in the default suite; `make soak` runs 1000) through three
    workers while a random one is killed and replaced every second or two."""
    count = SOAK_DOCS
    settings = load_settings(env={}, data_dir=tmp_path / "data", redis_url=redis_url, secret="farm-secret",
                             local_workers="no", job_types="thumbnail", lease_seconds=3.0, lease_renew_seconds=1.0,
                             retry_backoff_ms=100, retry_attempts=10)
    folder = tmp_path / "in"
    folder.mkdir()
    for i in range(count):
        (folder / f"doc-{i:04d}.jpg").write_bytes(jpeg_bytes(160, 120, seed=i))
    faults = {"thumbnail": {"sleep": 0.2}}  # long enough for the kills to land mid-job
    workers = [WorkerProcess(settings, "--concurrency", "2", faults=faults, log_path=tmp_path / f"w{i}.log")
               for i in range(3)]
    rng = random.Random(1234)
    kills = 0
    library = Library(settings)
    try:
        session, _ = library.submit([folder])
        deadline = time.monotonic() + 600
        next_kill = time.monotonic() + 1
        while library.unfinished(session) and time.monotonic() < deadline:
            library.pump(block_ms=200)
            library.housekeeping()
            if time.monotonic() >= next_kill and library.unfinished(session) > count // 10:
                victim = rng.randrange(len(workers))
                workers[victim].kill()
                kills += 1
                workers[victim] = WorkerProcess(settings, "--concurrency", "2", faults=faults,
                                                log_path=tmp_path / f"w{victim}-{kills}.log")
                next_kill = time.monotonic() + rng.uniform(1.0, 2.0)
        assert library.wait(session, timeout=120)
        assert kills >= 2
        report = library.report(session)
        assert report["counts"]["documents"]["complete"] == count
        completions = {}
        for event in store.JobEvent.select().where(store.JobEvent.type == "job:complete"):
            completions[event.job_id] = completions.get(event.job_id, 0) + 1
        assert sorted(completions.values()) == [1] * count  # each applied exactly once
        artifacts = list(store.Artifact.select())
        assert len(artifacts) == 3 * count and len({a.path for a in artifacts}) == 3 * count
        assert all(Path(a.path).exists() for a in artifacts)
    finally:
        library.close()
        for w in workers:
            w.stop()

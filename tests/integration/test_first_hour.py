"""What tripped a newcomer on the command line, each now a clear message and the right exit code."""

import json
import signal
import subprocess
import sys

from snapdesk.config import load_settings
from snapdesk.engine.local_workers import LocalWorkers

from helpers import wait_for_first_job, WorkerProcess, jpeg_bytes, snapdesk, text_image, wait_for, write_photos


def test_a_mistyped_command_is_a_usage_error_that_suggests_the_command(tmp_path, cli_env):
    typo = snapdesk("stauts", env=cli_env)
    assert typo.returncode == 2
    assert "'stauts' is neither a command nor a file or folder; did you mean status?" in typo.stderr
    assert "no sessions yet" in snapdesk("status", env=cli_env).stdout  # no session named "stauts" was made


def test_the_window_opens_on_a_data_folder_that_does_not_exist_yet(tmp_path, cli_env):
    """Only PATHs are checked: an option's value (a new data folder) is not a mistyped command."""
    opened = snapdesk("--data-dir", str(tmp_path / "new-library"), "--quit-after", "0.5",
                      env=dict(cli_env, QT_QPA_PLATFORM="offscreen", SNAPDESK_LOCAL_WORKERS="no"), timeout=60)
    assert opened.returncode == 0, opened.stderr
    assert (tmp_path / "new-library" / "library.db").is_file()


def test_a_folder_with_nothing_to_read_says_so_and_succeeds(tmp_path, cli_env):
    (tmp_path / "notes").mkdir()
    (tmp_path / "notes" / "todo.txt").write_text("buy milk")
    done = snapdesk("submit", str(tmp_path / "notes"), "--wait", env=cli_env)
    assert done.returncode == 0, done.stderr
    assert f"nothing to process in {tmp_path / 'notes'}: 1 file skipped (1 unsupported)" in done.stderr
    assert "JPEG" in done.stderr and "PDF" in done.stderr and "no session was kept" in done.stderr
    assert "no sessions yet" in snapdesk("status", env=cli_env).stdout  # the latest session is still the real one
    assert json.loads(snapdesk("status", "--json", env=cli_env).stdout) == {"session": None, "sessions": 0}


def test_sessions_are_listed_and_search_names_each_hits_session(tmp_path, cli_env):
    env = dict(cli_env, SNAPDESK_JOBS="thumbnail,ocr")
    for folder, names in (("a", ("one", "two")), ("b", ("three",))):
        (tmp_path / folder).mkdir()
        for name in names:
            (tmp_path / folder / f"{name}.png").write_bytes(text_image([f"Receipt {name.upper()}", "Total 4.50"]))
        assert snapdesk("submit", str(tmp_path / folder), "--wait", env=env).returncode == 0
    listed = snapdesk("status", "--all", env=cli_env)
    assert listed.returncode == 0
    lines = listed.stdout.splitlines()
    assert lines[0].split()[:2] == ["2", "complete"] and "b  (1 document: 1 complete)" in lines[0]
    assert lines[1].split()[:2] == ["1", "complete"] and "a  (2 documents: 2 complete)" in lines[1]
    found = snapdesk("search", "receipt", env=env)
    assert found.returncode == 0 and "[session 1]" in found.stdout and "[session 2]" in found.stdout, found
    assert snapdesk("search", "receipt", "--session", "99", env=env).returncode == 2
    assert "must be 1 or more" in snapdesk("search", "receipt", "--limit", "0", env=env).stderr


def test_jobs_refuses_flags_that_contradict_each_other_or_make_no_sense(cli_env):
    for args, says in ((["--held", "--failed"], "not allowed with argument"), (["--window", "-5"], "more than 0"),
                       (["--watch", "--interval", "0"], "more than 0")):
        refused = snapdesk("jobs", *args, env=cli_env)
        assert refused.returncode == 2 and says in refused.stderr, (args, refused.stderr)


def test_a_failure_no_retry_cures_is_said_to_be_permanent_and_not_retried_until_the_file_changes(tmp_path, cli_env):
    folder = tmp_path / "in"
    folder.mkdir()
    good = jpeg_bytes(640, 480)
    (folder / "cut.jpg").write_bytes(good[: len(good) // 3])
    env = dict(cli_env, SNAPDESK_JOBS="thumbnail")
    done = snapdesk("submit", str(folder), "--wait", env=env)
    assert done.returncode == 1
    assert "session 1 (in): failed, 1 document, 1 failed" in done.stdout
    assert "the image is damaged or truncated: image file is truncated" in done.stdout
    assert "((" not in done.stdout and "))" not in done.stdout  # no brackets within brackets
    assert "1 job failed for good: no retry will cure it" in done.stdout
    assert "retry the failed ones" not in done.stdout

    failed = snapdesk("jobs", "--failed", env=env)
    assert "(permanent: no retry will cure this)" in failed.stdout and "attempt 1 of" not in failed.stdout
    assert "session 1" in failed.stdout and "each failed for good" in failed.stdout

    again = snapdesk("retry", "--failed", env=env)
    assert again.returncode == 0 and "queued 0 jobs again" in again.stdout
    assert "not retried: 1 job that failed for good" in again.stderr and "--force" in again.stderr

    (folder / "cut.jpg").write_bytes(good)  # the person puts the whole file back
    fixed = snapdesk("retry", "--failed", env=env)
    assert fixed.returncode == 0 and "queued 1 job again" in fixed.stdout

    report = wait_for_first_job(env, "thumbnail", "the fixed file to complete")
    assert report["documents"][0]["width"] == 640


def test_health_refuses_a_negative_lag(cli_env):
    bad = snapdesk("health", "--max-lag", "-1", env=cli_env)
    assert bad.returncode == 2 and "must be 0 or more seconds" in bad.stderr


def test_each_command_says_what_it_does_in_its_help(cli_env):
    helped = snapdesk("pause", "--help", env=cli_env)
    assert "Pause queues: workers finish what they run and take nothing new." in helped.stdout
    assert "thumbnail, ocr, summary, describe, embed, or all" in helped.stdout


def test_a_queue_no_worker_serves_is_named_while_submit_waits(tmp_path, cli_env, redis_url):
    """A farm whose only worker serves thumbnails, while the documents also need OCR."""
    env = dict(cli_env, REDIS_URL=redis_url, SNAPDESK_SECRET="farm", SNAPDESK_JOBS="thumbnail,ocr")
    worker = WorkerProcess(load_settings(env=env), "--queues", "thumbnail", log_path=tmp_path / "w.log")
    submit = None
    try:
        write_photos(tmp_path / "in", 1)
        submit = subprocess.Popen([sys.executable, "-m", "snapdesk", "submit", str(tmp_path / "in"), "--wait"],
                                  env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
        lines = []

        def warned():
            lines.append(submit.stderr.readline())
            return any("no live worker serves the ocr queue" in line for line in lines)
        wait_for(warned, timeout=60, interval=0, message="the warning about the ocr queue")
        assert "snapdesk-worker --queues ocr" in "".join(lines)
        assert submit.poll() is None  # and it keeps waiting
        status = snapdesk("status", env=env)
        assert "no live worker serves the ocr queue" in status.stderr
        health = json.loads(snapdesk("health", "--json", env=env).stdout)
        assert not {c["name"]: c for c in health["checks"]}["queues"]["ok"]
        submit.send_signal(signal.SIGINT)
        assert submit.wait(30) == 130
    finally:
        if submit is not None:
            if submit.poll() is None:
                submit.kill()
                submit.wait()
            submit.stdout.close()
            submit.stderr.close()
        worker.stop()


def test_a_local_worker_that_exits_when_idle_is_not_left_a_zombie(tmp_path):
    settings = load_settings(env={}, data_dir=tmp_path / "data")
    workers = LocalWorkers(settings, idle_exit=0.5)
    workers.start()
    pid = workers.process.pid

    def reaped():
        try:
            with open(f"/proc/{pid}/stat") as fh:
                return fh.read().split()[2] not in ("Z", "X") and False
        except FileNotFoundError:
            return True  # exited and reaped: no process, not even a zombie
    wait_for(reaped, timeout=60, interval=0.1, message="the idle worker to exit and be reaped")
    assert workers.process.returncode == 0

"""The embedded transport's SQLite parts (engine/transport/embedded.py ``EmbeddedTransport``): what it keeps
in the data folder survives a restart, and what it shares between libraries and processes is
bound to the library's secret. Files in tmp_path; no worker process."""

from __future__ import annotations

import os
import stat

import pytest

from snapdesk.engine import events as ev
from snapdesk.engine.transport import PRIORITY_BATCH, EmbeddedTransport, SignatureError, library_secret

OWNER = "c" * 32
WORKER = {"id": "host:1:abc", "host": "host", "pid": 1}
PAYLOAD = {"job_id": 3, "job_type": "thumbnail", "document_id": 3, "session_id": 1, "owner": OWNER, "attempt": 1,
           "max_attempts": 3}


@pytest.fixture
def reopen(settings):
    """Open the embedded transport on the test's data folder, as many times as asked; all closed at the end."""
    opened = []

    def open_(secret=None):
        t = EmbeddedTransport(settings, secret=secret)
        opened.append(t)
        return t

    yield open_
    for t in opened:
        t.close()


def test_the_library_secret_is_made_once_private_and_kept(settings):
    settings.data_dir.mkdir(parents=True)
    first = library_secret(settings.data_dir)
    assert len(first) == 64 and library_secret(settings.data_dir) == first
    mode = stat.S_IMODE(os.stat(settings.data_dir / "secret").st_mode)
    assert mode == 0o600


def test_an_empty_secret_file_is_reported_with_what_to_do(settings):
    settings.data_dir.mkdir(parents=True)
    (settings.data_dir / "secret").write_text("")
    from snapdesk.config import ConfigError

    with pytest.raises(ConfigError, match="is empty; delete it and start again"):
        library_secret(settings.data_dir)


def test_events_not_yet_applied_survive_a_restart(reopen):
    before = reopen()
    before.emit(OWNER, ev.job_event(ev.EventType.STARTED, PAYLOAD, WORKER))
    before.emit(OWNER, ev.job_event(ev.EventType.PROGRESS, PAYLOAD, WORKER, progress=50))
    before.ack_events(OWNER, [before.read_events(OWNER)[0].id])
    before.close()
    after = reopen()  # the same library secret, read from the data folder
    [raw] = after.read_events(OWNER)
    assert ev.open_sealed(after.library_key(OWNER), OWNER, raw.data).progress == 50


def test_pauses_and_marks_survive_a_restart(reopen):
    before = reopen()
    before.set_paused("ocr", True)
    before.cancel_jobs(OWNER, [3])
    before.supersede(OWNER, 4, 2, PRIORITY_BATCH)
    before.close()
    after = reopen()
    assert after.paused_queues() == {"ocr"}
    assert after.is_cancelled(OWNER, 3)
    assert after.job_marks(OWNER, 4, 2, PRIORITY_BATCH) == (False, True)


def test_queued_tasks_survive_a_restart(reopen):
    before = reopen()
    before.enqueue("thumbnail", {**PAYLOAD, "v": 2})
    before.close()
    assert reopen().huey("thumbnail").dequeue().args[0]["job_id"] == 3


def test_marks_made_without_the_secret_are_not_obeyed(reopen):
    ours, intruder = reopen(), reopen(secret="someone else's secret")
    intruder.cancel_jobs(OWNER, [3])
    intruder.supersede(OWNER, 3, 1)
    assert ours.job_marks(OWNER, 3, 1, PRIORITY_BATCH) == (False, False)


def test_tasks_queued_without_the_secret_are_refused(reopen):
    ours, intruder = reopen(), reopen(secret="someone else's secret")
    intruder.enqueue("thumbnail", {**PAYLOAD, "v": 2, "path": "/etc/shadow"})
    with pytest.raises(SignatureError):
        ours.huey("thumbnail").dequeue()


def test_events_sealed_without_the_secret_do_not_open(reopen):
    ours, intruder = reopen(), reopen(secret="someone else's secret")
    intruder.emit(OWNER, ev.job_event(ev.EventType.STARTED, PAYLOAD, WORKER))
    [raw] = ours.read_events(OWNER)
    with pytest.raises(ev.BadEvent, match="not sealed with this library's key"):
        ev.open_sealed(ours.library_key(OWNER), OWNER, raw.data)


def test_its_files_live_in_the_data_folder(reopen, settings):
    t = reopen()
    t.enqueue("ocr", {**PAYLOAD, "v": 2})
    t.emit(OWNER, ev.job_event(ev.EventType.STARTED, PAYLOAD, WORKER))
    assert {"queue.db", "events.db", "secret"} <= {p.name for p in settings.data_dir.iterdir()}
    assert t.describe() == "embedded"


def test_the_queue_commits_without_a_disk_flush_per_task_as_the_library_does(reopen):
    """WAL with synchronous=NORMAL: an fdatasync per Huey transaction cost more than the job on small files."""
    queue = reopen().huey("thumbnail").storage
    assert queue.conn.execute("PRAGMA journal_mode").fetchone() == ("wal",)
    assert queue.conn.execute("PRAGMA synchronous").fetchone() == (1,)  # NORMAL; Huey's default is FULL (2)

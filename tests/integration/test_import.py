"""Finding documents in dropped files and folders."""

import os

import pytest

from snapdesk.config import load_settings
from snapdesk.engine.importer import Scanner, found_batches
from snapdesk.engine.library import Library
from snapdesk.store import db as store

from helpers import jpeg_bytes, write_photos


def _scan(*paths):
    scanner = Scanner(max_bytes=10 * 2**20)
    return sorted(f.path.name for f in scanner.scan(paths)), scanner


def test_folders_are_walked_recursively_skipping_hidden_and_unsupported(tmp_path):
    write_photos(tmp_path / "a", 2)
    write_photos(tmp_path / "a" / "deeper", 1, prefix="deep")
    (tmp_path / "a" / ".secret.jpg").write_bytes(jpeg_bytes(50, 50))
    write_photos(tmp_path / "a" / ".cache", 3)
    (tmp_path / "a" / "notes.txt").write_text("hello")
    (tmp_path / "a" / "empty.jpg").write_bytes(b"")
    names, scanner = _scan(tmp_path / "a")
    assert names == ["deep-000.jpg", "photo-000.jpg", "photo-001.jpg"]
    assert scanner.skipped == {"hidden": 2, "unsupported": 1, "empty": 1}


@pytest.mark.skipif(os.name == "nt", reason="symlinks need privileges on Windows")
def test_symlink_loops_are_walked_once(tmp_path):
    write_photos(tmp_path / "top" / "sub", 2)
    os.symlink(tmp_path / "top", tmp_path / "top" / "sub" / "back-to-top")
    os.symlink(tmp_path / "nowhere", tmp_path / "top" / "dangling.jpg")
    names, scanner = _scan(tmp_path / "top")
    assert names == ["photo-000.jpg", "photo-001.jpg"]
    assert scanner.skipped == {"unreadable": 1}


def test_missing_paths_are_reported(tmp_path):
    names, scanner = _scan(tmp_path / "not-there")
    assert names == []
    assert scanner.problems == [(str(tmp_path / "not-there"), "no such file or folder")]


def test_same_content_is_one_document_and_known_content_reuses_results(tmp_path):
    settings = load_settings(env={}, data_dir=tmp_path / "data", local_workers="no", job_types="thumbnail")
    folder = tmp_path / "in"
    [first] = write_photos(folder, 1)
    (folder / "copy.jpg").write_bytes(first.read_bytes())
    with Library(settings) as lib:
        session, scanner = lib.submit([folder])
        assert scanner.skipped["duplicate"] == 1
        [job] = list(store.Job.select())
        # Pretend the job ran: a later session with the same content reuses it.
        store.Job.update(state="complete", result={"blurhash": "x"}, finished_at=1.0).where(store.Job.id == job.id).execute()
        again, _ = lib.submit([first])
        report = lib.report(again)
        assert report["documents"][0]["jobs"]["thumbnail"]["reused"] is True
        assert report["documents"][0]["jobs"]["thumbnail"]["result"] == {"blurhash": "x"}
        fresh, _ = lib.submit([first], reprocess=True)
        assert lib.report(fresh)["documents"][0]["jobs"]["thumbnail"]["state"] == "queued"


def test_models_match_the_migrated_schema(tmp_path):
    database = store.open_db(tmp_path / "library.db")
    for model in store.MODELS:
        columns = {c.name for c in database.get_columns(model._meta.table_name)}
        assert columns == {f.column_name for f in model._meta.sorted_fields}, model.__name__
    database.close()


def test_an_unwritable_data_folder_is_a_clear_error(tmp_path):
    blocker = tmp_path / "file"
    blocker.write_text("a file where the data folder should be")
    with pytest.raises(Exception, match="cannot use the data folder"):
        Library(load_settings(env={}, data_dir=blocker / "data", local_workers="no"))


def test_a_scan_hands_over_its_first_files_before_it_reads_the_rest(tmp_path):
    write_photos(tmp_path / "a", 3)
    write_photos(tmp_path / "b", 2, start_seed=20)
    scanner = Scanner(max_bytes=10 * 2**20)
    batches = found_batches(scanner, [tmp_path], first=3)
    first = next(batches)
    assert [f.path.name for f, _ in first] == ["photo-000.jpg", "photo-001.jpg", "photo-002.jpg"]
    # The scan has not reached b/ yet: a file that appears there now is still found.
    write_photos(tmp_path / "b", 1, prefix="late", start_seed=40)
    rest = [f.path.name for batch in batches for f, _ in batch]
    assert rest == ["late-000.jpg", "photo-000.jpg", "photo-001.jpg"]


def test_a_small_drop_goes_ahead_and_a_big_one_is_batch_work(tmp_path):
    from snapdesk.engine.transport import PRIORITY_BATCH, PRIORITY_INTERACTIVE

    write_photos(tmp_path / "small", 2)
    write_photos(tmp_path / "big", 4, start_seed=10)
    settings = load_settings(env={}, data_dir=tmp_path / "data", local_workers="no", job_types="thumbnail",
                             small_drop=3)
    with Library(settings) as library:
        small, _ = library.submit([tmp_path / "small"])
        big, _ = library.submit([tmp_path / "big"])
        assert {job.priority for job in store.Job.select().where(store.Job.session == small)} == {PRIORITY_INTERACTIVE}
        assert {job.priority for job in store.Job.select().where(store.Job.session == big)} == {PRIORITY_BATCH}
        assert not store.UploadSession.get_by_id(big.id).scanning


def test_a_scan_cut_short_by_a_quit_is_over_and_says_so_on_the_next_start(tmp_path):
    settings = load_settings(env={}, data_dir=tmp_path / "data", local_workers="no", job_types="thumbnail")
    with Library(settings) as library:
        session = library.begin_session([str(tmp_path / "big")])  # the app quits before end_scan
    with Library(settings) as library:
        again = store.UploadSession.get_by_id(session.id)
        assert not again.scanning and again.skipped == {"interrupted": 1}
        assert library.report(again)["session"]["status"] == "complete"

"""Every file an import leaves out is named with its reason: by the scanner, in the library with its
session, in ``status --json``, and in the line ``submit`` prints."""

import json
import os

from snapdesk.engine.importer import Scanner, found_batches

from helpers import jpeg_bytes, snapdesk


def _folder_with_everything_skipped(folder):
    folder.mkdir()
    (folder / "a.jpg").write_bytes(jpeg_bytes(320, 240, seed=1))
    (folder / "copy of a.jpg").write_bytes((folder / "a.jpg").read_bytes())
    (folder / "notes.txt").write_text("not a picture")
    (folder / "clip.xyz").write_bytes(b"\x00" * 10)
    (folder / "Makefile").write_text("all:\n")
    (folder / "empty.png").write_bytes(b"")
    (folder / "big.jpg").write_bytes(b"\xff" * (2 * 2**20))
    (folder / ".thumbs.jpg").write_bytes(jpeg_bytes(64, 48, seed=2))
    (folder / ".cache").mkdir()
    (folder / ".cache" / "x.jpg").write_bytes(jpeg_bytes(64, 48, seed=3))
    os.symlink(folder / "gone.jpg", folder / "dangling.jpg")


EXPECTED = {
    "copy of a.jpg": ("duplicate", "the same content as {folder}/a.jpg"),
    "notes.txt": ("unsupported", "unsupported type: SnapDesk does not read .txt files"),
    "clip.xyz": ("unsupported", "unsupported type: SnapDesk does not read .xyz files"),
    "Makefile": ("unsupported", "unsupported type: SnapDesk does not read this type"),
    "empty.png": ("empty", "the file is empty"),
    "big.jpg": ("too_large", "2 MiB is more than the 1 MiB limit (SNAPDESK_MAX_FILE_MB)"),
    ".thumbs.jpg": ("hidden", "a hidden file"),
    ".cache": ("hidden", "a hidden folder"),
    "dangling.jpg": ("unreadable", "cannot read it (No such file or directory)"),
}


def test_the_scanner_names_each_skipped_path_with_its_reason(tmp_path):
    folder = tmp_path / "in"
    _folder_with_everything_skipped(folder)
    scanner = Scanner(max_bytes=2**20)
    found = [f.path.name for batch in found_batches(scanner, [folder]) for f, _ in batch]
    assert found == ["a.jpg"]
    named = {os.path.basename(path): (reason, detail) for path, reason, detail in scanner.skipped_paths}
    assert named == {name: (reason, detail.format(folder=folder)) for name, (reason, detail) in EXPECTED.items()}
    assert sum(scanner.skipped.values()) == len(EXPECTED)


def test_past_the_limit_skipped_files_are_counted_not_named(tmp_path):
    for i in range(25):
        (tmp_path / f"note-{i:02}.txt").write_text("x")
    scanner = Scanner(max_bytes=2**20, keep_paths=10)
    assert list(scanner.scan([tmp_path])) == []
    assert scanner.skipped == {"unsupported": 25}
    assert [os.path.basename(p) for p, _, _ in scanner.skipped_paths] == [f"note-{i:02}.txt" for i in range(10)]


def test_submit_says_how_many_were_skipped_and_status_json_lists_them(tmp_path, cli_env):
    folder = tmp_path / "in"
    _folder_with_everything_skipped(folder)
    env = {**cli_env, "SNAPDESK_MAX_FILE_MB": "1"}
    done = snapdesk("submit", str(folder), "--wait", env=env)
    assert done.returncode == 0, done.stderr
    line = next(line for line in done.stderr.splitlines() if "files skipped" in line)
    assert line.startswith("9 files skipped (")
    assert "see which and why with `snapdesk status 1 --json`" in line and "in the window" in line

    status = json.loads(snapdesk("status", "1", "--json", env=env).stdout)
    listed = {os.path.basename(f["path"]): (f["reason"], f["detail"]) for f in status["skipped_files"]}
    assert listed == {name: (reason, detail.format(folder=folder)) for name, (reason, detail) in EXPECTED.items()}
    assert status["counts"]["skipped"] == {"duplicate": 1, "unsupported": 3, "empty": 1, "too_large": 1,
                                           "hidden": 2, "unreadable": 1}
    assert [os.path.basename(d["path"]) for d in status["documents"]] == ["a.jpg"]


def test_a_drop_with_nothing_skipped_says_nothing_of_it(tmp_path, cli_env):
    (tmp_path / "in").mkdir()
    (tmp_path / "in" / "a.jpg").write_bytes(jpeg_bytes(320, 240))
    done = snapdesk("submit", str(tmp_path / "in"), "--wait", "--json", env=cli_env)
    assert done.returncode == 0, done.stderr
    assert "skipped" not in done.stderr
    assert json.loads(done.stdout)["skipped_files"] == []

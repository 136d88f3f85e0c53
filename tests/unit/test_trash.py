"""Removed sessions' result folders leave the library at once and are deleted in the background
(engine/trash.py ``Trash``; ``Library.remove_session`` and ``Library.close``). Files in tmp_path."""

from __future__ import annotations

from pathlib import Path

from snapdesk.engine.library import Library
from snapdesk.engine.trash import TRASH, Trash

from unit_helpers import work


def _results(root: Path, name: str) -> Path:
    folder = root / name[:2] / name / "thumbnail"
    folder.mkdir(parents=True)
    for size in ("sm", "md", "lg"):
        (folder / f"{size}.webp").write_bytes(b"RIFF" + bytes(60))
    return folder.parent


def test_discarded_folders_leave_at_once_and_are_deleted_by_wait(tmp_path):
    trash = Trash(tmp_path / "artifacts" / TRASH)
    folders = [_results(tmp_path / "artifacts", f"{i:02d}" + "ab" * 31) for i in range(20)]
    kept = _results(tmp_path / "artifacts", "ff" + "cd" * 31)

    assert trash.discard([*folders, tmp_path / "artifacts" / "ee" / "not-there"]) == 20
    assert not any(folder.exists() for folder in folders)  # gone from their places at once
    trash.wait()
    assert list((tmp_path / "artifacts" / TRASH).iterdir()) == []
    assert sorted(p.name for p in kept.rglob("*.webp")) == ["lg.webp", "md.webp", "sm.webp"]


def test_a_folder_made_again_can_be_discarded_again(tmp_path):
    trash = Trash(tmp_path / "artifacts" / TRASH)
    name = "ab" * 32
    trash.discard([_results(tmp_path / "artifacts", name)])
    again = _results(tmp_path / "artifacts", name)  # the same content added and removed once more
    assert trash.discard([again]) == 1 and not again.exists()
    trash.wait()
    assert list((tmp_path / "artifacts" / TRASH).iterdir()) == []


def test_what_a_killed_process_left_in_the_trash_is_deleted_next_time(tmp_path):
    left = tmp_path / "artifacts" / TRASH
    _results(left, "ab" * 32)
    _results(left, "cd" * 32)
    trash = Trash(left)
    assert trash.recover() == 2
    trash.wait()
    assert list(left.iterdir()) == []
    assert Trash(tmp_path / "elsewhere").recover() == 0  # no trash folder: nothing to do


def test_a_removed_session_s_own_files_are_gone_once_the_library_closes(settings, transport, clock, tmp_path):
    from unit_helpers import write_png

    write_png(tmp_path / "first" / "own.png", 64, 48)
    write_png(tmp_path / "first" / "shared.png", 80, 60)
    write_png(tmp_path / "second" / "shared.png", 80, 60)  # the same content in another session
    library = Library(settings, transport=transport, clock=clock)
    try:
        first, _ = library.submit([tmp_path / "first"])
        second, _ = library.submit([tmp_path / "second"])
        work(library, transport)
        paths = {Path(d["path"]).name: Path(d["jobs"]["thumbnail"]["result"]["thumbnails"]["md"]["path"])
                 for d in library.report(first)["documents"]}
        assert all(p.exists() for p in paths.values())
        assert library.remove_session(first.id)
        assert not paths["own.png"].exists()  # out of the library at once
        assert paths["shared.png"].exists()  # the other session still shows it
    finally:
        library.close()
    assert list((library.artifacts_dir / TRASH).iterdir()) == []  # and deleted by the time it closed


def test_the_deleting_thread_ends_once_the_trash_is_empty_and_another_starts_for_more(tmp_path):
    import time

    trash = Trash(tmp_path / "artifacts" / TRASH)
    trash.discard([_results(tmp_path / "artifacts", "ab" * 32)])
    trash.wait()
    deadline = time.monotonic() + 10  # after its last deletion it looks at the queue once more, then ends
    while trash._thread is not None and time.monotonic() < deadline:
        time.sleep(0.01)
    assert trash._thread is None
    trash.discard([_results(tmp_path / "artifacts", "cd" * 32)])
    trash.wait()
    assert list((tmp_path / "artifacts" / TRASH).iterdir()) == []

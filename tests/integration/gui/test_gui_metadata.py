"""The window shows a photo's metadata in the details panel, sorts the grid by date taken, and names
the files an import skipped: offscreen, a real library, real worker processes, real files."""

import os

from test_gui_window import WAIT, drag_and_drop, rows
from test_metadata import exif_jpeg

from helpers import jpeg_bytes


def test_the_details_panel_shows_metadata_and_the_grid_sorts_by_date_taken(window, start_worker, tmp_path, qtbot):
    from snapdesk.gui.models import RowRole

    folder = tmp_path / "roll"
    folder.mkdir()
    (folder / "a-late.jpg").write_bytes(exif_jpeg(taken="2023:05:01 08:00:00", offset="+02:00"))
    (folder / "b-early.jpg").write_bytes(exif_jpeg(make="NIKON CORPORATION", model="NIKON D750",
                                                   taken="2016:01:02 03:04:05", offset=None, gps=False))
    (folder / "c-plain.jpg").write_bytes(jpeg_bytes(320, 240, seed=4))  # no EXIF: dated by the file's time
    os.utime(folder / "c-plain.jpg", (1400000000, 1400000000))  # 2014
    start_worker()
    drag_and_drop(window.empty_page, [folder])
    qtbot.waitUntil(lambda: [r.status for r in rows(window)] == ["complete"] * 3
                    and all(r.taken_at for r in rows(window)), timeout=WAIT)

    def grid():
        return [window.filtered.index(r, 0).data(RowRole).name for r in range(window.filtered.rowCount())]

    assert grid() == ["a-late.jpg", "b-early.jpg", "c-plain.jpg"]  # as imported
    window.sort_actions["taken"].trigger()
    assert grid() == ["c-plain.jpg", "b-early.jpg", "a-late.jpg"]
    window.sort_actions["name"].trigger()
    assert grid() == ["a-late.jpg", "b-early.jpg", "c-plain.jpg"]
    window.sort_actions["taken"].trigger()

    window.grid.setCurrentIndex(window.filtered.index(2, 0))  # the latest taken: a-late.jpg
    qtbot.waitUntil(lambda: window.details.details is not None
                    and window.details.details["path"].endswith("a-late.jpg"), timeout=WAIT)
    assert window.details.metadata_shown() == {
        "Taken": "1 May 2023, 08:00:00 (UTC+02:00)",
        "Camera": "Canon EOS R5",
        "Lens": "Canon RF50mm F1.8 STM",
        "Exposure": "1/250 s, f/2.8, ISO 400, 50 mm",
        "Place": "-33.85900, 151.21000 (58 m)",
        "Profile": "sRGB built-in",
    }
    window.grid.setCurrentIndex(window.filtered.index(0, 0))  # the plain scan says nothing it does not know
    qtbot.waitUntil(lambda: window.details.details["path"].endswith("c-plain.jpg"), timeout=WAIT)
    assert window.details.metadata_shown() == {}


def test_the_files_an_import_skipped_are_named_under_its_session(window, start_worker, tmp_path, qtbot):
    folder = tmp_path / "downloads"
    folder.mkdir()
    (folder / "photo.jpg").write_bytes(jpeg_bytes(320, 240, seed=1))
    (folder / "photo_copy.jpg").write_bytes((folder / "photo.jpg").read_bytes())
    (folder / "setup.exe").write_bytes(b"MZ")
    (folder / "empty.png").write_bytes(b"")
    (folder / ".DS_Store").write_bytes(b"x")
    start_worker()
    drag_and_drop(window.empty_page, [folder])
    qtbot.waitUntil(lambda: window.header.skipped_line.isVisible(), timeout=WAIT)
    assert window.header.skipped_line.text() == "4 files skipped — <a href='show'>Show</a>"

    dialog = window.header.skipped_line.open_dialog()
    assert dialog.isVisible()
    assert sorted((os.path.basename(path), reason) for path, reason in dialog.listed()) == [
        (".DS_Store", "Hidden"), ("empty.png", "Empty"), ("photo_copy.jpg", "Duplicate"),
        ("setup.exe", "Unsupported type")]
    whys = {os.path.basename(dialog.table.topLevelItem(i).text(0)): dialog.table.topLevelItem(i).text(2)
            for i in range(dialog.table.topLevelItemCount())}
    assert whys["setup.exe"] == "unsupported type: SnapDesk does not read .exe files"
    assert whys["photo_copy.jpg"] == f"the same content as {folder / 'photo.jpg'}"
    dialog.close()

    # A session with nothing skipped shows no such line.
    clean = tmp_path / "clean"
    clean.mkdir()
    (clean / "one.jpg").write_bytes(jpeg_bytes(200, 100, seed=9))
    drag_and_drop(window.grid.viewport(), [clean])
    header = window.header
    qtbot.waitUntil(lambda: header.session_title.text() == "clean" and header.skipped_line.skipped is not None
                    and header.skipped_line.skipped["session_id"] == window.current_session, timeout=WAIT)
    assert header.skipped_line.skipped["total"] == 0 and not header.skipped_line.isVisible()

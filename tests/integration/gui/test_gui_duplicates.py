"""The Duplicates filter: offscreen, a real library, a real worker process, real files.

The photos come from benchmarks/duplicates.py (a scene shot as a camera takes it), with seeds the
thresholds were not tuned on.
"""

import sys
from pathlib import Path

from test_gui_window import WAIT, drag_and_drop, rows

sys.path.insert(0, str(Path(__file__).resolve().parents[3] / "benchmarks"))
import duplicates as photos  # noqa: E402  (benchmarks/duplicates.py)

W, H = 1200, 900


def test_the_duplicates_filter_finds_a_resized_re_encoded_copy_but_not_a_photo_taken_a_second_later(
        window, start_worker, tmp_path, qtbot, qtmodeltester):
    from snapdesk.gui.models import DUPLICATES, RowRole

    scene = photos.shoot(2002, width=W, height=H)
    folder = tmp_path / "holiday"
    folder.mkdir()
    (folder / "IMG_0101.jpg").write_bytes(photos.encode(scene, "JPEG", 92))
    (folder / "IMG_0101-shared.webp").write_bytes(photos.encode(scene.resize((W // 3, H // 3)), "WEBP", 55))
    second_later = photos.shoot(2002, photos.Shot(shift=(0.04, 0.01), noise_seed=1), width=W, height=H)
    (folder / "IMG_0102.jpg").write_bytes(photos.encode(second_later, "JPEG", 92))
    (folder / "IMG_0150.jpg").write_bytes(photos.encode(photos.shoot(2003, width=W, height=H), "JPEG", 92))
    start_worker()
    drag_and_drop(window.empty_page, [folder])
    qtbot.waitUntil(lambda: [r.status for r in rows(window)] == ["complete"] * 4, timeout=WAIT)

    # The window asks for the session's duplicates as its thumbnails complete: the count shows on the button.
    button = window.header.filter_buttons[DUPLICATES]
    qtbot.waitUntil(lambda: button.text() == "Duplicates  2", timeout=WAIT)
    assert button.accessibleName() == "Show duplicates: 2 documents"

    button.click()
    shown = [window.filtered.index(r, 0).data(RowRole) for r in range(window.filtered.rowCount())]
    assert [row.name for row in shown] == ["IMG_0101.jpg", "IMG_0101-shared.webp"]  # the original first
    assert window.filtered.original_of(shown[1].id) == shown[0].id
    # Each tile says which is the original, and the copy's size beside it.
    assert [window.delegate.duplicate_text(row, window.filtered) for row in shown] == [
        "Original · 1200×900", "Copy · 400×300"]
    qtmodeltester.check(window.filtered)

    window.filtered.set_filter("all")
    assert window.filtered.rowCount() == 4


def test_a_window_opened_on_a_library_with_duplicates_counts_them(open_window, start_worker, tmp_path, qtbot):
    """The groups may arrive before the session's documents do; the count follows the documents."""
    from snapdesk.gui.models import DUPLICATES

    scene = photos.shoot(2004, width=W, height=H)
    folder = tmp_path / "trip"
    folder.mkdir()
    (folder / "IMG_0201.jpg").write_bytes(photos.encode(scene, "JPEG", 92))
    (folder / "IMG_0201-small.webp").write_bytes(photos.encode(scene.resize((W // 4, H // 4)), "WEBP", 60))
    (folder / "IMG_0250.jpg").write_bytes(photos.encode(photos.shoot(2005, width=W, height=H), "JPEG", 92))
    first = open_window()
    start_worker()
    first.import_paths([str(folder)])
    qtbot.waitUntil(lambda: len(rows(first)) == 3 and all(r.status == "complete" for r in rows(first)), timeout=WAIT)
    first.close()

    again = open_window()  # the same library, its last session shown
    qtbot.waitUntil(lambda: again.documents.rowCount() == 3, timeout=WAIT)
    qtbot.waitUntil(lambda: again.header.filter_buttons[DUPLICATES].text() == "Duplicates  2", timeout=WAIT)

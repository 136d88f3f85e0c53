"""The window end to end: a real library on its owner thread, real worker processes, real images."""

import csv
import io
import itertools
import json
import logging
import shutil
import signal
import subprocess
import sys
import threading
import time

import pytest
from helpers import wait_for, write_photos
from PySide6.QtCore import QMimeData, QObject, QPointF, Qt, QTimer, QUrl, Slot
from PySide6.QtGui import QDesktopServices, QDragEnterEvent, QDropEvent
from PySide6.QtTest import QTest
from PySide6.QtWidgets import QApplication, QPlainTextEdit

from snapdesk.gui import app
from snapdesk.gui.models import RowRole
from snapdesk.engine.local_workers import LocalWorkers
from snapdesk.gui.window import MainWindow

WAIT = 30_000  # ms: generous for a busy 2-core machine; the tests end as soon as the state is reached


def rows(window):
    return [window.documents.row(r) for r in range(window.documents.rowCount())]


def statuses(window):
    return sorted(r.status for r in rows(window))


def session_row(window):
    return window.sessions.row_by_id(window.current_session) if window.current_session else None


def drag_and_drop(widget, paths):
    """Drag files onto ``widget`` as a file manager would; returns (enter accepted, drop accepted)."""
    mime = QMimeData()
    mime.setUrls([QUrl.fromLocalFile(str(p)) for p in paths])
    pos = QPointF(widget.width() / 2, widget.height() / 2)
    enter = QDragEnterEvent(pos, Qt.DropAction.CopyAction, mime, Qt.MouseButton.LeftButton,
                            Qt.KeyboardModifier.NoModifier)
    QApplication.sendEvent(widget, enter)
    overlay_shown = widget.window().overlay.isVisible()
    drop = QDropEvent(pos, Qt.DropAction.CopyAction, mime, Qt.MouseButton.LeftButton, Qt.KeyboardModifier.NoModifier)
    QApplication.sendEvent(widget, drop)
    return enter.isAccepted(), overlay_shown, drop.isAccepted()


def test_a_dropped_folder_becomes_a_session_whose_items_complete(window, start_worker, tmp_path, qtbot):
    folder = tmp_path / "holiday"
    write_photos(folder, 4, width=800, height=600)
    (folder / "notes.jpg").write_text("a text file named .jpg")
    start_worker()

    assert window.splitter.count() == 3  # sessions, documents, details: the overlay is not a pane
    entered, overlay_shown, dropped = drag_and_drop(window.empty_page, [folder])
    assert entered and overlay_shown and dropped
    assert not window.overlay.isVisible()
    qtbot.waitUntil(lambda: window.documents.rowCount() == 5, timeout=WAIT)
    assert window.header.session_title.text() == "holiday"
    qtbot.waitUntil(lambda: statuses(window) == ["complete"] * 4 + ["failed"], timeout=WAIT)

    failed = next(r for r in rows(window) if r.status == "failed")
    assert failed.name == "notes.jpg" and failed.error == "not an image, or an image format SnapDesk cannot read"
    done = next(r for r in rows(window) if r.status == "complete")
    assert done.blurhash and done.thumbs["sm"].endswith("sm.webp") and (done.width, done.height) == (800, 600)
    # The sidebar's counts follow, and the tiles on screen get their thumbnails.
    qtbot.waitUntil(lambda: (session_row(window).complete, session_row(window).failed) == (4, 1), timeout=WAIT)
    assert window.header.filter_buttons["failed"].text() == "Failed  1"
    qtbot.waitUntil(lambda: window.statusBar().currentMessage() == "holiday: done, 4 of 5 documents, 1 failed",
                    timeout=WAIT)
    window.grid.viewport().update()
    qtbot.waitUntil(lambda: window.images.get("sm", done.id, done.thumbs["sm"]) is not None, timeout=WAIT)
    window.set_filter("failed")
    assert window.filtered.rowCount() == 1 and window.filtered.index(0, 0).data(RowRole).name == "notes.jpg"
    window.set_filter("done")
    assert window.filtered.rowCount() == 4
    qtbot.waitUntil(lambda: window.throughput_label.text() == "5 jobs/min", timeout=WAIT)  # 4 done, 1 failed

    # A second drop, onto the grid itself, is a second session, shown at once.
    more = write_photos(tmp_path / "more", 1, prefix="extra", start_seed=9)
    entered, overlay_shown, dropped = drag_and_drop(window.grid.viewport(), more)
    assert entered and overlay_shown and dropped
    qtbot.waitUntil(lambda: window.sessions.rowCount() == 2 and window.header.session_title.text() == "extra-000.jpg",
                    timeout=WAIT)
    qtbot.waitUntil(lambda: statuses(window) == ["complete"], timeout=WAIT)


def test_something_not_a_file_is_not_accepted(window):
    mime = QMimeData()
    mime.setText("just text")
    enter = QDragEnterEvent(QPointF(10, 10), Qt.DropAction.CopyAction, mime, Qt.MouseButton.LeftButton,
                            Qt.KeyboardModifier.NoModifier)
    QApplication.sendEvent(window.empty_page, enter)
    assert not enter.isAccepted() and not window.overlay.isVisible()


def test_failed_documents_are_retried_to_done_from_the_tile_and_from_the_details(window, start_worker, tmp_path,
                                                                                 qtbot):
    folder = tmp_path / "scans"
    write_photos(folder, 2, prefix="flaky")
    # Each of the first three attempts fails (all a job has); a retry asked by a person then succeeds.
    start_worker(faults={"thumbnail": {"match": "flaky", "fail_attempts": 3}})
    window.import_paths([str(folder)])
    qtbot.waitUntil(lambda: statuses(window) == ["failed", "failed"], timeout=WAIT)
    first, second = rows(window)
    assert first.error == "injected transient fault on attempt 3 (gave up after 3 attempts)"

    # The Retry button painted on the first tile.
    rect = window.grid.visualRect(window.filtered.index(0, 0))
    QTest.mouseClick(window.grid.viewport(), Qt.MouseButton.LeftButton, Qt.KeyboardModifier.NoModifier,
                     window.delegate.retry_rect(rect).center())
    qtbot.waitUntil(lambda: window.documents.row_by_id(first.id).status == "complete", timeout=WAIT)
    assert window.documents.row_by_id(second.id).status == "failed"  # only the one clicked

    # The second from the details panel: select it, then its job's Retry button.
    window.grid.setCurrentIndex(window.filtered.index(1, 0))
    qtbot.waitUntil(lambda: window.details.doc_id == second.id, timeout=WAIT)
    card = window.details.cards[0]
    assert not card.retry_button.isHidden()
    qtbot.mouseClick(card.retry_button, Qt.MouseButton.LeftButton)
    qtbot.waitUntil(lambda: window.documents.row_by_id(second.id).status == "complete", timeout=WAIT)

    # The details follow: attempt 4 of a fresh set, and the whole story in the timeline.
    qtbot.waitUntil(lambda: window.details.details["status"] == "complete", timeout=WAIT)
    job = window.details.details["jobs"][0]
    assert job["state"] == "complete" and job["attempts"] == 4
    assert [e["type"] for e in job["timeline"]] == ["job:started", "job:retrying"] * 2 + [
        "job:started", "job:failed", "retry", "job:started", "job:complete"]
    assert window.details.cards[0].retry_button.isHidden()


def test_ctrl_r_retries_the_selection_and_the_session_can_be_exported(window, start_worker, tmp_path, qtbot):
    folder = tmp_path / "mixed"
    write_photos(folder, 1, prefix="flaky")
    write_photos(folder, 1, prefix="fine", start_seed=5)
    start_worker(faults={"thumbnail": {"match": "flaky", "fail_attempts": 3}})
    window.import_paths([str(folder)])
    qtbot.waitUntil(lambda: statuses(window) == ["complete", "failed"], timeout=WAIT)
    window.grid.selectAll()
    QTest.keyClick(window, Qt.Key.Key_R, Qt.KeyboardModifier.ControlModifier)
    qtbot.waitUntil(lambda: statuses(window) == ["complete", "complete"], timeout=WAIT)

    exported = []
    for fmt in ("json", "csv"):
        window.commands.export_session(str(tmp_path / f"session.{fmt}"), fmt, on_done=exported.append)
    qtbot.waitUntil(lambda: len(exported) == 2, timeout=WAIT)
    report = json.loads((tmp_path / "session.json").read_text())
    assert report["counts"]["documents"]["complete"] == 2 and report["transport"] == "embedded"
    lines = list(csv.DictReader(io.StringIO((tmp_path / "session.csv").read_text())))
    assert sorted(line["thumbnail_attempts"] for line in lines) == ["1", "4"]


def test_the_status_bar_shows_workers_and_waiting_jobs(window, start_worker, qtbot):
    assert window.transport_label.text() == "Embedded queue"
    start_worker()
    qtbot.waitUntil(lambda: window.workers_label.text() == "1 worker online", timeout=WAIT)
    assert window.queue_label.text() == "0 jobs waiting"


def test_closing_the_window_stops_the_owner_thread_at_once(open_window, tmp_path, qtbot):
    window = open_window()
    write_photos(tmp_path / "in", 3)
    window.import_paths([str(tmp_path / "in")])  # no worker: the jobs stay queued
    qtbot.waitUntil(lambda: window.documents.rowCount() == 3, timeout=WAIT)
    started = time.monotonic()
    window.close()
    assert not window.owner.is_running() and time.monotonic() - started < 2


def test_the_window_remembers_its_geometry(open_window, qtbot):
    window = open_window()
    window.resize(790, 560)
    qtbot.waitUntil(lambda: window.size().width() == 790, timeout=WAIT)
    window.close()
    again = MainWindow(window.settings)
    qtbot.addWidget(again)
    try:
        assert (again.width(), again.height()) == (790, 560)
    finally:
        again.close()


def test_main_opens_the_window_and_adds_the_paths_given(tmp_path, monkeypatch, qtbot):
    monkeypatch.setenv("SNAPDESK_LOCAL_WORKERS", "no")
    monkeypatch.setattr(sys, "excepthook", sys.excepthook)
    sigint = signal.getsignal(signal.SIGINT)
    write_photos(tmp_path / "given", 2)
    seen = {}

    def look():
        windows = [w for w in QApplication.topLevelWidgets() if isinstance(w, MainWindow) and w.isVisible()]
        if windows and windows[0].documents.rowCount() == 2 or time.monotonic() > seen.setdefault("t", time.monotonic()) + 20:
            seen["docs"] = windows[0].documents.rowCount() if windows else None
            for w in windows:
                w.close()
        else:
            QTimer.singleShot(50, look)

    QTimer.singleShot(50, look)
    try:
        code = app.main(["--data-dir", str(tmp_path / "data"), str(tmp_path / "given")])
    finally:
        root = logging.getLogger("snapdesk")
        for handler in [h for h in root.handlers if getattr(h, "_snapdesk_app", False)]:
            root.removeHandler(handler)
            handler.close()
    assert code == 0 and seen["docs"] == 2
    assert signal.getsignal(signal.SIGINT) is sigint  # main puts back the handlers it replaced


def test_the_jobs_view_shows_queues_workers_and_failed_jobs_and_pauses_a_queue(window, start_worker, tmp_path,
                                                                              qtbot):
    (tmp_path / "in").mkdir()
    (tmp_path / "in" / "broken.jpg").write_text("not an image")
    start_worker()
    window.import_paths([str(tmp_path / "in")])
    qtbot.waitUntil(lambda: statuses(window) == ["failed"], timeout=WAIT)
    window.show_jobs()
    dialog = window.jobs_dialog
    qtbot.waitUntil(lambda: dialog.failed_table.rowCount() >= 1 and dialog.workers.rowCount() == 1, timeout=WAIT)
    assert dialog.failed_table.item(0, 0).text() == "broken.jpg"
    assert [dialog.queues.item(r, 0).text() for r in range(dialog.queues.rowCount())] == ["thumbnail", "ocr",
                                                                                           "summary", "describe",
                                                                                           "embed"]
    headers = [dialog.queues.horizontalHeaderItem(c).text() for c in range(dialog.queues.columnCount())]
    state, rate = headers.index("State"), headers.index("Failure rate")
    assert dialog.queues.item(0, rate).text() == "100 %"
    qtbot.mouseClick(dialog.queues.cellWidget(0, dialog.queues.columnCount() - 1), Qt.MouseButton.LeftButton)
    qtbot.waitUntil(lambda: dialog.queues.item(0, state).text() == "paused", timeout=WAIT)
    qtbot.mouseClick(dialog.queues.cellWidget(0, dialog.queues.columnCount() - 1), Qt.MouseButton.LeftButton)
    qtbot.waitUntil(lambda: dialog.queues.item(0, state).text() == "running", timeout=WAIT)

    # A text file named .jpg fails for good: the Jobs view offers no Retry for it, and says why.
    headers = [dialog.failed_table.horizontalHeaderItem(c).text() for c in range(dialog.failed_table.columnCount())]
    assert dialog.failed_table.item(0, headers.index("Retry")).text() == "no, permanent"
    assert not dialog.retry_all_button.isEnabled()
    dialog.failed_table.selectRow(0)
    assert not dialog.retry_button.isEnabled()

    # Discard takes it off the failed list for good.
    qtbot.mouseClick(dialog.discard_button, Qt.MouseButton.LeftButton)
    qtbot.waitUntil(lambda: dialog.failed_table.rowCount() == 0, timeout=WAIT)
    dialog.close()


def test_removing_a_session_forgets_it(window, tmp_path, qtbot):
    write_photos(tmp_path / "a", 1)
    write_photos(tmp_path / "b", 1, start_seed=3)
    window.import_paths([str(tmp_path / "a")])
    qtbot.waitUntil(lambda: window.sessions.rowCount() == 1, timeout=WAIT)
    window.import_paths([str(tmp_path / "b")])
    qtbot.waitUntil(lambda: window.header.session_title.text() == "b", timeout=WAIT)
    window.commands.remove_session(confirm=False)
    qtbot.waitUntil(lambda: window.sessions.rowCount() == 1, timeout=WAIT)
    assert window.sessions.row(0).name == "a"
    qtbot.waitUntil(lambda: window.header.session_title.text() == "a" and window.documents.rowCount() == 1,
                    timeout=WAIT)


def test_a_library_that_cannot_be_opened_is_explained_in_the_window(open_window, settings, tmp_path, qtbot):
    (tmp_path / "not-a-folder").write_text("a file where the data folder should be")
    window = open_window(settings.replace(data_dir=tmp_path / "not-a-folder"))
    assert window.transport_label.text() == "Library not open"
    assert window.empty_page.title.text() == "SnapDesk cannot open its library"
    assert "not-a-folder" in window.empty_page.what.text()
    assert not window.empty_page.add_files_button.isVisibleTo(window)  # nothing to add to


@pytest.mark.parametrize("transport_name", ["redis"])
def test_the_window_works_the_same_on_a_redis_farm(window, start_worker, settings, tmp_path, qtbot):
    assert window.transport_label.text() == f"Redis {settings.redis_url}"
    write_photos(tmp_path / "farm", 2)
    start_worker()
    window.import_paths([str(tmp_path / "farm")])
    qtbot.waitUntil(lambda: statuses(window) == ["complete", "complete"], timeout=WAIT)
    qtbot.waitUntil(lambda: window.workers_label.text() == "1 worker online", timeout=WAIT)
    assert rows(window)[0].thumbs["sm"].endswith("sm.webp")


def test_keyboard_shortcuts(window, qtbot):
    shortcuts = {a.text(): a.shortcut().toString() for a in window.actions()}
    assert shortcuts["Add &Files…"] == "Ctrl+O" and shortcuts["Add F&older…"] == "Ctrl+Shift+O"
    assert shortcuts["&Retry Selected"] == "Ctrl+R" and shortcuts["&Quit"] == "Ctrl+Q"
    window.header.session_title.show()
    window.header.search.show()
    window.activateWindow()
    QTest.keyClick(window, Qt.Key.Key_F, Qt.KeyboardModifier.ControlModifier)
    qtbot.waitUntil(lambda: window.header.search.hasFocus(), timeout=WAIT)


def test_a_large_import_does_not_freeze_the_window(window, tmp_path, qtbot):
    """The scan runs on a thread of its own and the inserts on the owner thread: the event loop
    keeps turning meanwhile."""
    folder = tmp_path / "many"
    folder.mkdir()
    for i in range(3000):
        (folder / f"scan-{i:04d}.png").write_bytes(b"\x89PNG not really %d" % i * 64)
    ticks = []
    timer = QTimer()
    timer.setInterval(10)
    timer.timeout.connect(lambda: ticks.append(time.monotonic()))
    timer.start()
    started = time.monotonic()
    window.import_paths([str(folder)])
    qtbot.waitUntil(lambda: window.documents.rowCount() == 3000, timeout=WAIT)
    took = time.monotonic() - started
    timer.stop()
    gaps = [b - a for a, b in itertools.pairwise(ticks)]
    print(f"import of 3000 files: {took:.2f} s, {len(ticks)} ticks, longest gap {max(gaps) * 1000:.0f} ms")
    # A frozen window would not turn its loop for most of the import; one that keeps turning has its
    # longest pause a small part of it, however busy the machine (absolute stalls: benchmarks/gui.py).
    assert max(gaps) < took / 4, (max(gaps), took)


def test_a_big_folder_shows_its_first_items_while_the_scan_goes_on(open_window, settings, tmp_path, qtbot):
    folder = tmp_path / "archive"
    write_photos(folder, 25, width=64, height=48)
    with open(folder / "zz-disk-image.jpg", "wb") as fh:  # sparse: no disk used, but seconds to hash
        fh.truncate(2 * 2**30)
    window = open_window(settings.replace(max_file_mb=8192))
    window.import_paths([str(folder)])
    qtbot.waitUntil(lambda: session_row(window) is not None and window.documents.rowCount() >= 21, timeout=WAIT)
    assert window.header.session_title.text() == "archive"
    assert session_row(window).scanning and "scanning for files" in window.header.session_info.text()
    assert window.importing == 1
    qtbot.waitUntil(lambda: window.documents.rowCount() == 26 and not session_row(window).scanning, timeout=WAIT)
    assert window.importing == 0


def test_cancelling_a_session_while_it_is_scanned_stops_the_scan(open_window, settings, tmp_path, qtbot):
    folder = tmp_path / "archive"
    write_photos(folder, 25, width=64, height=48)
    with open(folder / "zz-disk-image.jpg", "wb") as fh:  # sparse: seconds to hash, while we cancel
        fh.truncate(2 * 2**30)
    write_photos(folder, 3, prefix="zzz-after", start_seed=50)
    window = open_window(settings.replace(max_file_mb=8192))
    window.import_paths([str(folder)])
    qtbot.waitUntil(lambda: session_row(window) is not None and window.documents.rowCount() >= 21, timeout=WAIT)
    assert session_row(window).scanning
    window.select_session(window.current_session)
    window.cancel_session_action.trigger()
    qtbot.waitUntil(lambda: window.importing == 0 and not session_row(window).scanning, timeout=WAIT)
    qtbot.waitUntil(lambda: statuses(window) == ["cancelled"] * window.documents.rowCount(), timeout=WAIT)
    assert window.documents.rowCount() < 29  # what the scan found after the cancel was not added


@pytest.mark.jobs("thumbnail,ocr,summary")
def test_the_details_show_the_summary_and_the_text_of_a_scan(window, start_worker, tmp_path, qtbot):
    from helpers import text_image

    (tmp_path / "scans").mkdir()
    (tmp_path / "scans" / "invoice.png").write_bytes(text_image(["ACME Supplies Ltd", "Invoice 2041",
                                                                 "Total EUR 132.40"]))
    write_photos(tmp_path / "scans", 1, prefix="photo", width=320, height=240)
    start_worker()
    window.import_paths([str(tmp_path / "scans")])
    qtbot.waitUntil(lambda: statuses(window) == ["complete", "complete"], timeout=60_000)

    # The search finds the scan by a word of its text, not of its name.
    window.header.search.setText("acme")
    qtbot.waitUntil(lambda: [window.filtered.index(r, 0).data() for r in range(window.filtered.rowCount())]
                    == ["invoice.png"], timeout=WAIT)
    window.header.search.clear()
    window.grid.setCurrentIndex(window.filtered.index(0, 0))  # the scan, first by name
    qtbot.waitUntil(lambda: window.details.doc_id is not None and len(window.details.results) == 2, timeout=WAIT)
    summary, text = window.details.results
    assert summary.objectName() == "summarySection" and text.objectName() == "ocrSection"
    assert "Invoice 2041" in text.findChild(QPlainTextEdit, "ocrText").toPlainText()
    assert [c.job_id for c in window.details.cards] == sorted(c.job_id for c in window.details.cards)
    assert rows(window)[0].title and not rows(window)[1].title  # the scan's tile shows its summary's title

    # Searching in another session points to the sessions where the text is found.
    scans = window.current_session
    write_photos(tmp_path / "later", 1, prefix="later", width=320, height=240, start_seed=4)
    window.import_paths([str(tmp_path / "later")])
    qtbot.waitUntil(lambda: window.current_session != scans and window.documents.rowCount() == 1, timeout=WAIT)
    window.header.search.setText("acme")
    qtbot.waitUntil(lambda: window.header.other_matches.isVisibleTo(window), timeout=WAIT)
    assert window.filtered.rowCount() == 0 and "scans</a> (1)" in window.header.other_matches.text()
    window.header.other_matches.linkActivated.emit(f"session:{scans}")  # what clicking the link does
    qtbot.waitUntil(lambda: window.current_session == scans and window.filtered.rowCount() == 1, timeout=WAIT)
    assert window.filtered.index(0, 0).data() == "invoice.png"


def test_without_a_display_main_says_what_to_do_instead_of_crashing(monkeypatch, capsys):
    for name in ("QT_QPA_PLATFORM", "DISPLAY", "WAYLAND_DISPLAY"):
        monkeypatch.delenv(name, raising=False)
    monkeypatch.setattr(sys, "platform", "linux")
    assert app.main([]) == 2
    assert "no display" in capsys.readouterr().err


class _Opened(QObject):
    """Receives the URLs the window asks the desktop to open (Qt's own hook, QDesktopServices.setUrlHandler)."""

    def __init__(self):
        super().__init__()
        self.urls = []

    @Slot(QUrl)
    def open(self, url):
        self.urls.append(url.toLocalFile())


def test_open_show_in_folder_and_copy_path_act_on_the_selection(window, tmp_path, qtbot):
    photos = write_photos(tmp_path / "pick", 2)
    window.import_paths([str(tmp_path / "pick")])
    qtbot.waitUntil(lambda: window.filtered.rowCount() == 2, timeout=WAIT)
    window.grid.setCurrentIndex(window.filtered.index(1, 0))
    opened = _Opened()
    QDesktopServices.setUrlHandler("file", opened, "open")
    try:
        window.open_action.trigger()
        window.show_action.trigger()
    finally:
        QDesktopServices.unsetUrlHandler("file")
    assert opened.urls == [str(photos[1]), str(photos[1].parent)]
    window.grid.selectAll()
    window.copy_action.trigger()
    assert QApplication.clipboard().text() == "\n".join(str(p) for p in photos)
    # No worker here: nothing failed, and the grid says so rather than staying blank.
    window.set_filter("failed")
    assert window.filtered.rowCount() == 0 and window.grid.empty_text == "Nothing failed in this session."
    window.header.search.setText("holiday")
    assert window.grid.empty_text == "No document here matches “holiday”."


def test_the_settings_dialog_moves_the_window_to_a_redis_farm(open_window, settings, redis_url, start_worker,
                                                               tmp_path, qtbot):
    from snapdesk.config import load_settings
    from snapdesk.config import settings_path

    def reload():
        return load_settings(env={}, data_dir=settings.data_dir, retry_backoff_ms=100, local_workers="no",
                             job_types="thumbnail")

    window = open_window(reload_settings=reload)
    window.show_settings()
    dialog = window.settings_dialog
    dialog.editors["redis_url"].setText("http://not-redis")
    dialog.save()
    assert dialog.error.text().startswith("The Redis URL starts with") and dialog.isVisible()
    dialog.editors["redis_url"].setText(redis_url)
    dialog.editors["secret"].setText("")
    dialog.save()
    assert dialog.error.text().startswith("A worker farm needs its shared secret") and dialog.isVisible()
    dialog.editors["secret"].setText("farm-secret-for-tests")
    dialog.editors["concurrency_thumbnail"].setValue(2)
    dialog.save()
    qtbot.waitUntil(lambda: window.transport_label.text() == f"Redis {redis_url}", timeout=WAIT)
    assert not dialog.isVisible()
    saved = json.loads(settings_path().read_text())
    # What the dialog shows, defaults left out (the test's library: its own folder, short retry waits,
    # no local workers).
    assert saved == {"REDIS_URL": redis_url, "SNAPDESK_SECRET": "farm-secret-for-tests",
                     "JOB_CONCURRENCY_THUMBNAIL": 2, "SNAPDESK_LOCAL_WORKERS": "no",
                     "SNAPDESK_DATA_DIR": str(settings.data_dir), "JOB_RETRY_BACKOFF_MS": 100}
    assert settings_path().stat().st_mode & 0o077 == 0  # it holds a secret: the owner's alone

    write_photos(tmp_path / "farm", 2)
    start_worker(settings_=window.settings)
    window.import_paths([str(tmp_path / "farm")])
    qtbot.waitUntil(lambda: statuses(window) == ["complete", "complete"], timeout=WAIT)


def test_the_settings_dialog_moves_the_library_and_changes_the_retry_wait(open_window, settings, tmp_path,
                                                                        qtbot):
    from snapdesk.config import load_settings

    def reload():  # as the app reads its settings, but with no workers of its own in this test
        return load_settings(env={}, local_workers="no", job_types="thumbnail")

    write_photos(tmp_path / "in", 1)
    window = open_window(settings.replace(data_dir=tmp_path / "first"), reload_settings=reload)
    window.import_paths([str(tmp_path / "in")])
    qtbot.waitUntil(lambda: window.documents.rowCount() == 1, timeout=WAIT)

    window.show_settings()
    dialog = window.settings_dialog
    assert dialog.editors["data_dir"].text() == str(tmp_path / "first")
    (tmp_path / "a-file").write_text("not a folder")
    dialog.editors["data_dir"].setText(str(tmp_path / "a-file" / "library"))
    dialog.save()
    assert dialog.error.text().startswith(f"Cannot use {tmp_path / 'a-file' / 'library'}") and dialog.isVisible()

    dialog.editors["data_dir"].setText(str(tmp_path / "second"))
    dialog.editors["retry_backoff_ms"].setValue(2500)
    dialog.save()
    qtbot.waitUntil(lambda: window.settings.data_dir == tmp_path / "second", timeout=WAIT)
    assert window.settings.retry_backoff_ms == 2500 and not dialog.isVisible()
    qtbot.waitUntil(lambda: (tmp_path / "second" / "library.db").exists(), timeout=WAIT)
    assert window.sessions.rowCount() == 0  # a new, empty library; the first one is left as it was
    assert (tmp_path / "first" / "library.db").exists()


def test_a_window_closed_mid_run_finds_the_work_done_when_it_opens_again(open_window, start_worker, tmp_path,
                                                                         qtbot):
    write_photos(tmp_path / "slow", 4)
    start_worker("--concurrency", "1", faults={"thumbnail": {"sleep": 0.4}})
    window = open_window()
    window.import_paths([str(tmp_path / "slow")])
    qtbot.waitUntil(lambda: "complete" in statuses(window), timeout=WAIT)
    assert statuses(window).count("complete") < 4
    window.close()  # the worker goes on; its events wait in the log

    again = open_window()
    qtbot.waitUntil(lambda: statuses(again) == ["complete"] * 4, timeout=WAIT)
    assert again.header.session_title.text() == "slow"


def test_the_window_starts_its_local_worker_and_stops_it_on_quit(open_window, settings, tmp_path, qtbot):
    write_photos(tmp_path / "in", 2)
    window = open_window(settings.replace(local_workers="yes"))  # as on the embedded default
    window.import_paths([str(tmp_path / "in")])
    qtbot.waitUntil(lambda: statuses(window) == ["complete"] * 2, timeout=WAIT)
    local = LocalWorkers(settings)
    assert local.running()  # the worker it started holds the library's worker lock
    window.close()
    qtbot.waitUntil(lambda: not local.running(), timeout=WAIT)  # asked to stop, it drained and exited


def test_reprocess_runs_a_finished_document_again(window, start_worker, tmp_path, qtbot):
    write_photos(tmp_path / "in", 1)
    start_worker()
    window.import_paths([str(tmp_path / "in")])
    qtbot.waitUntil(lambda: statuses(window) == ["complete"], timeout=WAIT)
    window.grid.setCurrentIndex(window.filtered.index(0, 0))
    qtbot.waitUntil(lambda: window.details.doc_id is not None and window.details.details is not None, timeout=WAIT)
    window.reprocess_action.trigger()
    qtbot.waitUntil(lambda: [e["type"] for e in window.details.details["jobs"][0]["timeline"]][-3:]
                    == ["reprocess", "job:started", "job:complete"], timeout=WAIT)
    qtbot.waitUntil(lambda: statuses(window) == ["complete"], timeout=WAIT)  # the tile follows


class LauncherMonitor:
    """A private D-Bus session bus and ``dbus-monitor`` on it, collecting the Unity LauncherEntry
    updates a dock or taskbar would read."""

    def __init__(self):
        self.daemon = subprocess.Popen(["dbus-daemon", "--session", "--nofork", "--print-address=1"],
                                       stdout=subprocess.PIPE, stderr=subprocess.DEVNULL, text=True)
        self.address = self.daemon.stdout.readline().strip()
        self.monitor = subprocess.Popen(["dbus-monitor", "--address", self.address,
                                         "interface='com.canonical.Unity.LauncherEntry'"],
                                        stdout=subprocess.PIPE, stderr=subprocess.DEVNULL, text=True)
        self.lines = []
        self.reader = threading.Thread(target=lambda: self.lines.extend(self.monitor.stdout), daemon=True)
        self.reader.start()
        wait_for(lambda: any("NameAcquired" in line for line in self.lines), message="dbus-monitor")

    def updates(self) -> list[dict]:
        """Each Update signal's properties, in order: {"progress": 0.5, "progress-visible": True, ...}."""
        found, key = [], None
        for line in list(self.lines):
            line = line.strip()
            if "member=Update" in line:
                found.append({})
            elif found and line.startswith('string "') and line != 'string "application://snapdesk.desktop"':
                key = line[len('string "'):-1]
            elif found and line.startswith("variant") and key:
                kind, value = line.split()[1:3]
                found[-1][key] = {"double": float, "int32": int, "int64": int}.get(kind, lambda v: v == "true")(value)
        return found

    def close(self):
        for proc in (self.monitor, self.daemon):
            proc.terminate()
            proc.wait(5)
        self.reader.join(5)
        self.monitor.stdout.close()
        self.daemon.stdout.close()


@pytest.mark.skipif(not shutil.which("dbus-daemon") or not shutil.which("dbus-monitor"),
                    reason="needs dbus-daemon and dbus-monitor (make test installs them)")
def test_the_taskbar_entry_shows_the_progress_of_the_running_sessions(window, start_worker, tmp_path, qtbot):
    from snapdesk.gui.taskbar import TaskbarProgress

    launcher = LauncherMonitor()
    try:
        window.taskbar = TaskbarProgress(bus_address=launcher.address)
        assert window.taskbar.available
        write_photos(tmp_path / "in", 3)
        start_worker("--concurrency", "1", faults={"thumbnail": {"sleep": 0.5}})
        window.import_paths([str(tmp_path / "in")])
        qtbot.waitUntil(lambda: statuses(window) == ["complete"] * 3, timeout=WAIT)
        qtbot.waitUntil(lambda: launcher.updates() and not launcher.updates()[-1]["progress-visible"], timeout=WAIT)
        shown = [(u["count"], u["progress"]) for u in launcher.updates() if u["progress-visible"]]
        assert shown[0] == (3, 0.0)  # three documents to go
        assert any(count in (1, 2) for count, _ in shown)  # then fewer, as they complete
        assert [c for c, _ in shown] == sorted((c for c, _ in shown), reverse=True)
    finally:
        launcher.close()


def test_a_switch_to_a_dark_theme_recolours_the_window(window, qtbot):
    from PySide6.QtGui import QColor, QPalette

    light = QApplication.palette()
    info = window.header.session_info  # coloured by the style sheet: palette(mid)
    assert info.palette().color(QPalette.ColorRole.WindowText) == light.color(QPalette.ColorRole.Mid)
    dark = QPalette(QColor("#202124"))  # what the platform hands over when the system turns dark
    try:
        QApplication.setPalette(dark)
        qtbot.waitUntil(lambda: info.palette().color(QPalette.ColorRole.WindowText) ==
                        dark.color(QPalette.ColorRole.Mid), timeout=WAIT)
        assert window.sessions_view.palette().color(QPalette.ColorRole.Window).lightness() < 60
    finally:
        QApplication.setPalette(light)
    qtbot.waitUntil(lambda: info.palette().color(QPalette.ColorRole.WindowText) ==
                    light.color(QPalette.ColorRole.Mid), timeout=WAIT)


def test_opening_a_document_moves_it_ahead_of_the_batch(window, start_worker, tmp_path, qtbot):
    from snapdesk.store import db as store

    write_photos(tmp_path / "backfill", 30, prefix="batch", width=64, height=48)  # more than a small drop
    window.import_paths([str(tmp_path / "backfill")])
    qtbot.waitUntil(lambda: window.documents.rowCount() == 30 and not session_row(window).scanning, timeout=WAIT)
    last = window.filtered.index(29, 0)
    assert last.data(RowRole).name == "batch-029.jpg"
    window.grid.setCurrentIndex(last)  # the details panel opens it
    qtbot.waitUntil(lambda: window.details.doc_id == last.data(RowRole).id, timeout=WAIT)
    start_worker("--concurrency", "1")
    qtbot.waitUntil(lambda: statuses(window) == ["complete"] * 30, timeout=WAIT)
    started = {job.document.path: job.started_at for job in store.Job.select()}
    opened = started.pop(str(tmp_path / "backfill" / "batch-029.jpg"))
    assert opened < min(started.values())


def test_the_status_bar_says_when_redis_is_gone_and_when_it_is_back(open_window, settings, start_worker, tmp_path,
                                                                    qtbot):
    from test_outages import RedisServer

    server = RedisServer(tmp_path)
    server.start()
    try:
        farm = settings.replace(redis_url=server.url)
        window = open_window(farm)
        start_worker(settings_=farm)
        qtbot.waitUntil(lambda: window.workers_label.text() == "1 worker online", timeout=WAIT)
        server.stop()
        qtbot.waitUntil(lambda: window.workers_label.text().startswith("Disconnected, retrying: Error 111"),
                        timeout=WAIT)
        assert window.transport_label.text() == f"Redis {server.url}"
        assert window.queue_label.text() == ""
        server.start()
        qtbot.waitUntil(lambda: window.workers_label.text() == "1 worker online", timeout=WAIT)
        write_photos(tmp_path / "after", 2)  # and the work goes on
        window.import_paths([str(tmp_path / "after")])
        qtbot.waitUntil(lambda: statuses(window) == ["complete", "complete"], timeout=WAIT)
    finally:
        server.stop()


def test_only_the_changed_tiles_on_screen_are_painted_again(open_window, tmp_path, qtbot):
    """At thousands of events a second, a batch changes rows all over a large session; painting
    every tile on screen again for each batch stalled the window (benchmarks/gui.py)."""
    import dataclasses

    window = open_window()
    write_photos(tmp_path / "in", 60)
    window.import_paths([str(tmp_path / "in")])  # no worker: the tiles stay as they are
    qtbot.waitUntil(lambda: window.documents.rowCount() == 60, timeout=WAIT)
    grid, model = window.grid, window.grid.model()
    shown = grid.visible_rows()
    assert 0 < len(shown) < 40
    painted = []
    paint = grid.delegate.paint
    grid.delegate.paint = lambda p, option, index: (painted.append(index.data(RowRole).id), paint(p, option, index))
    try:
        qtbot.waitUntil(lambda: grid.verticalScrollBar().isVisible(), timeout=WAIT)  # laid out for 60 tiles
        rows = [model.index(r, 0).data(RowRole) for r in range(model.rowCount())]
        viewport = grid.viewport().rect()
        on_screen = [r for r in range(model.rowCount()) if grid.visualRect(model.index(r, 0)).intersects(viewport)]
        last = on_screen[-1]
        assert len(on_screen) < model.rowCount() - 1 and model.index(last + 1, 0).isValid()
        # The last tile on screen and the first below it: one range of rows, whose bounding box spans
        # two lines whole, of which the first is on screen.
        pair = rows[last:last + 2]
        assert grid.visualRect(model.index(last, 0)).top() < grid.visualRect(model.index(last + 1, 0)).top()

        def change(changed, done):
            window.documents.update([dataclasses.replace(r, jobs_done=done) for r in changed])
            window.documents.flush()

        off_screen = {r.id for r in rows[shown.stop:]}
        tries = []
        for done in range(1, 6):  # a whole repaint for some other reason (a busy machine's late layout) may
            change(pair, done)    # fall into one try; painting the changed tile's line fails them all
            qtbot.waitUntil(lambda: pair[0].id in painted, timeout=WAIT)
            painted.clear()
            change(rows[shown.stop:], done)  # off screen
            change(pair, done + 10)
            qtbot.waitUntil(lambda: pair[0].id in painted, timeout=WAIT)
            tries.append(set(painted))
            assert not tries[-1] & off_screen  # never a tile off screen
            if tries[-1] == {pair[0].id}:  # not the others on screen either
                break
        assert tries[-1] == {pair[0].id}, tries
    finally:
        grid.delegate.paint = paint


def test_two_changed_tiles_far_apart_paint_only_those_two(open_window, tmp_path, qtbot):
    """The list view paints every tile within the bounding box of what changed (here the whole screen);
    the tiles between, which the changed region leaves out, are not drawn only to be clipped away."""
    import dataclasses

    window = open_window()
    write_photos(tmp_path / "in", 30)
    window.import_paths([str(tmp_path / "in")])  # no worker: the tiles stay as they are
    qtbot.waitUntil(lambda: window.documents.rowCount() == 30, timeout=WAIT)
    grid, model = window.grid, window.grid.model()
    viewport = grid.viewport().rect()
    qtbot.waitUntil(lambda: grid.visualRect(model.index(0, 0)).intersects(viewport), timeout=WAIT)
    on_screen = [r for r in range(model.rowCount()) if viewport.contains(grid.visualRect(model.index(r, 0)))]
    assert len(on_screen) >= 4
    rows = [model.index(r, 0).data(RowRole) for r in range(model.rowCount())]
    corners = [rows[on_screen[0]], rows[on_screen[-1]]]
    drawn = []
    draw = grid.delegate._paint_image
    grid.delegate._paint_image = lambda p, rect, row, palette: (drawn.append(row.id), draw(p, rect, row, palette))
    try:
        tries = []
        for done in range(1, 6):  # a whole repaint for another reason may fall into one try
            drawn.clear()
            window.documents.update([dataclasses.replace(r, jobs_done=done) for r in corners])
            window.documents.flush()
            qtbot.waitUntil(lambda: {r.id for r in corners} <= set(drawn), timeout=WAIT)
            tries.append(set(drawn))
            if tries[-1] == {r.id for r in corners}:
                break
        assert tries[-1] == {r.id for r in corners}, tries
    finally:
        grid.delegate._paint_image = draw

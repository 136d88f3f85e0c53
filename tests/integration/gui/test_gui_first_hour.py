"""What tripped a newcomer in the window in the first hour: Retry offered where no retry helps,
counts that said "running" of what waited, a details panel that kept its scroll, numbers in the
Jobs view that counted jobs nobody ran, what a screen reader and a keyboard get, and a first
window that explains itself."""

import pytest
from helpers import jpeg_bytes, write_photos
from PySide6.QtCore import QObject, Qt, Signal
from PySide6.QtGui import QAccessible
from PySide6.QtTest import QTest
from PySide6.QtWidgets import QAbstractButton, QApplication, QFileDialog, QLabel, QListView

from snapdesk.gui.delegates import DocumentDelegate, SessionDelegate
from snapdesk.gui.details import DetailsPanel
from snapdesk.gui.models import DocumentModel, SessionModel
from snapdesk.gui.queries import DocRow, SessionRow

WAIT = 30_000  # ms: generous for a busy 2-core machine; the tests end as soon as the state is reached


def rows(window):
    return [window.documents.row(r) for r in range(window.documents.rowCount())]


def by_name(window, name):
    return next(r for r in rows(window) if r.name == name)


def select(window, qtbot, name):
    """Make a document current (as a click would) and wait for its details."""
    for r in range(window.filtered.rowCount()):
        if window.filtered.index(r, 0).data() == name:
            window.grid.setCurrentIndex(window.filtered.index(r, 0))
            doc_id = by_name(window, name).id
            qtbot.waitUntil(lambda: window.details.doc_id == doc_id, timeout=WAIT)
            return
    raise AssertionError(f"{name} is not in the grid")


def on_owner(window, qtbot, op):
    """Run ``op(library)`` on the window's owner thread (the one writer of the DB) and wait for it."""
    done = []
    window.owner.call(op, done.append, done.append)
    qtbot.waitUntil(lambda: bool(done), timeout=WAIT)
    assert not isinstance(done[0], Exception), done[0]
    return done[0]


def labels(window):
    return {name: b.text() for name, b in window.header.filter_buttons.items()}


# -- 7. A permanent failure is not offered a Retry ------------------------------------------------

def test_a_permanent_failure_offers_no_retry_until_its_file_changes(window, start_worker, tmp_path, qtbot):
    folder = tmp_path / "in"
    folder.mkdir()
    whole = jpeg_bytes(640, 480)
    (folder / "cut.jpg").write_bytes(whole[: len(whole) // 3])  # truncated: no retry will cure it
    write_photos(folder, 1, prefix="flaky")  # fails all its attempts, but a later retry works
    start_worker(faults={"thumbnail": {"match": "flaky", "fail_attempts": 3}})
    window.import_paths([str(folder)])
    qtbot.waitUntil(lambda: sorted(r.status for r in rows(window)) == ["failed", "failed"], timeout=WAIT)
    cut, flaky = by_name(window, "cut.jpg"), by_name(window, "flaky-000.jpg")

    # The tile: no Retry button on the permanent failure, and it says why.
    assert cut.permanent and cut.retry_job_ids == () and cut.failed_job_ids
    assert not DocumentDelegate.offers_retry(cut) and DocumentDelegate.status_text(cut) == "Failed · permanent"
    assert DocumentDelegate.offers_retry(flaky) and flaky.retry_job_ids == flaky.failed_job_ids
    clicked = []
    window.delegate.retryClicked.connect(clicked.append)
    index = next(window.filtered.index(r, 0) for r in range(2) if window.filtered.index(r, 0).data() == "cut.jpg")
    QTest.mouseClick(window.grid.viewport(), Qt.MouseButton.LeftButton, Qt.KeyboardModifier.NoModifier,
                     window.delegate.retry_rect(window.grid.visualRect(index)).center())
    assert clicked == []
    # The context menu: Retry only where a retry may help.
    assert window.retry_action not in window.grid_menu([cut]).actions()
    assert window.retry_action in window.grid_menu([flaky]).actions()

    # The details: no Retry on the job, a "Permanent" mark and the reason instead.
    select(window, qtbot, "cut.jpg")
    card = window.details.cards[0]
    assert card.retry_button.isHidden() and not card.permanent_label.isHidden()
    error = card.findChild(QLabel, "error")
    assert error.text().startswith("the image is damaged or truncated") and error.text().endswith(
        "No retry will cure this.")
    assert not window.retry_action.isEnabled()  # Ctrl+R: nothing in the selection a retry cures
    window.commands.retry_selected()
    assert window.statusBar().currentMessage() == "No retry will cure what failed in the selection"

    # Retry Failed queues the one that may work, and leaves the permanent one as it is.
    qtbot.waitUntil(lambda: window.sessions.row_by_id(window.current_session).retryable == 1, timeout=WAIT)
    assert window.header.retry_failed_button.isEnabled()
    qtbot.mouseClick(window.header.retry_failed_button, Qt.MouseButton.LeftButton)
    qtbot.waitUntil(lambda: by_name(window, "flaky-000.jpg").status == "complete", timeout=WAIT)
    qtbot.waitUntil(lambda: not window.header.retry_failed_button.isEnabled(), timeout=WAIT)
    assert "no retry will cure" in window.header.retry_failed_button.toolTip()
    assert by_name(window, "cut.jpg").status == "failed"
    assert "retry" not in [e["type"] for e in window.details.details["jobs"][0]["timeline"]]

    # The whole file is put back: now a retry may cure it, and Retry is offered (the details and the
    # tile, once the document is looked at again), and it completes.
    (folder / "cut.jpg").write_bytes(whole)
    select(window, qtbot, "flaky-000.jpg")
    select(window, qtbot, "cut.jpg")
    qtbot.waitUntil(lambda: not window.details.cards[0].retry_button.isHidden(), timeout=WAIT)
    assert window.details.cards[0].permanent_label.isHidden()
    assert "has changed since it was added" in window.details.cards[0].findChild(QLabel, "error").text()
    qtbot.waitUntil(lambda: by_name(window, "cut.jpg").retry_job_ids != (), timeout=WAIT)
    assert DocumentDelegate.offers_retry(by_name(window, "cut.jpg"))
    qtbot.mouseClick(window.details.cards[0].retry_button, Qt.MouseButton.LeftButton)
    qtbot.waitUntil(lambda: by_name(window, "cut.jpg").status == "complete", timeout=WAIT)
    assert (by_name(window, "cut.jpg").width, by_name(window, "cut.jpg").height) == (640, 480)


# -- 8. Counts that say what they count -------------------------------------------------------------

def test_the_filters_count_queued_apart_from_running_and_follow_the_search(window, tmp_path, qtbot):
    from snapdesk.store.db import Job

    write_photos(tmp_path / "trip", 3, prefix="beach")
    write_photos(tmp_path / "trip", 2, prefix="city", start_seed=7)
    window.import_paths([str(tmp_path / "trip")])  # no worker: everything waits
    qtbot.waitUntil(lambda: window.documents.rowCount() == 5 and not window.sessions.row_by_id(
        window.current_session).scanning, timeout=WAIT)
    qtbot.waitUntil(lambda: labels(window) == {"all": "All  5", "queued": "Queued  5", "running": "Running  0",
                                               "failed": "Failed  0", "done": "Done  0",
                                               "duplicates": "Duplicates  0"}, timeout=WAIT)

    # Two documents are taken by a worker (as its "started" events would make them).
    beaches = [r.id for r in rows(window) if r.name.startswith("beach")][:2]

    def start_two(lib):
        Job.update(state="running", worker="test:1").where(Job.document.in_(beaches)).execute()
        lib.touch_jobs([j.id for j in Job.select(Job.id).where(Job.document.in_(beaches))])
    on_owner(window, qtbot, start_two)
    qtbot.waitUntil(lambda: labels(window)["running"] == "Running  2", timeout=WAIT)
    assert labels(window)["queued"] == "Queued  3" and labels(window)["all"] == "All  5"
    window.set_filter("running")
    assert window.filtered.rowCount() == 2
    window.set_filter("queued")
    assert window.filtered.rowCount() == 3
    window.set_filter("all")

    # With a search, the counts are those of the documents it finds.
    window.header.search.setText("city")
    assert labels(window) == {"all": "All  2", "queued": "Queued  2", "running": "Running  0",
                              "failed": "Failed  0", "done": "Done  0",
                              "duplicates": "Duplicates  0"}
    assert window.header.filter_buttons["queued"].accessibleName() == "Show queued: 2 documents matching “city”"
    window.header.search.setText("beach")
    assert (labels(window)["all"], labels(window)["running"], labels(window)["queued"]) == (
        "All  3", "Running  2", "Queued  1")
    window.header.search.clear()
    assert labels(window)["all"] == "All  5"

    # The session's ring says what its number is: a percentage.
    row = window.sessions.row_by_id(window.current_session)
    assert SessionDelegate.ring_text(row) == "0%"
    assert SessionDelegate.ring_text(SessionRow(id=9, name="s", created_at=0, total=27, complete=7)) == "25%"


def test_counts_while_a_search_runs_follow_the_documents_changes(qtbot):
    from snapdesk.gui.models import DocumentFilterModel

    def doc(i, status):
        return DocRow(id=i, session_id=1, path=f"/p/{'beach' if i < 3 else 'city'}-{i}.jpg", size=1, width=None,
                      height=None, status=status, progress=None)

    model = DocumentModel()
    model.load(1, [doc(i, "queued") for i in range(5)])
    proxy = DocumentFilterModel()
    proxy.setSourceModel(model)
    proxy.set_search("beach")
    assert proxy.counts() == {"all": 3, "queued": 3, "running": 0, "failed": 0, "done": 0}
    model.update([doc(0, "running"), doc(1, "complete"), doc(4, "running")])
    model.flush()
    assert proxy.counts() == {"all": 3, "queued": 1, "running": 1, "failed": 0, "done": 1}
    proxy.set_matches({4})  # the text search found a city photo too
    assert proxy.counts()["running"] == 2 and proxy.counts()["all"] == 4


# -- 9. The details of the next document start at the top ------------------------------------------

class _NoImages(QObject):
    imageReady = Signal(int)

    def get(self, *args):
        return None


def _details(doc_id, lines=60):
    timeline = [{"type": "job:started", "attempt": 1, "at": 1_700_000_000 + i, "worker": "host:1",
                 "duration_ms": None, "error": None} for i in range(lines)]
    job = {"id": doc_id * 10, "type": "ocr", "state": "complete", "attempts": 1, "max_attempts": 3,
           "progress": 100, "worker": "host:1", "duration_ms": 500, "error": None, "error_kind": None,
           "reused": False, "timeline": timeline,
           "result": {"text": "\n".join(f"line {i}" for i in range(lines)), "confidence": 0.9}}
    return {"id": doc_id, "session_id": 1, "path": f"/scans/page-{doc_id}.png", "size": 1000, "kind": "image",
            "sha256": "0" * 64, "width": 800, "height": 600, "status": "complete", "jobs": [job]}


def test_the_details_of_the_next_document_open_at_the_top(qtbot):
    panel = DetailsPanel(_NoImages())
    qtbot.addWidget(panel)
    panel.resize(320, 400)
    panel.show()
    qtbot.waitExposed(panel)
    bar = panel.verticalScrollBar()
    panel.show_details(_details(1))
    qtbot.waitUntil(lambda: bar.maximum() > 400, timeout=WAIT)  # much longer than the panel
    bar.setValue(bar.maximum())
    scrolled = bar.value()
    panel.show_details({**_details(1), "size": 1001})  # the same document, changed: the reader stays put
    assert bar.value() == scrolled
    panel.show_details(_details(2))  # the next document: from its preview on
    assert bar.value() == 0
    qtbot.waitUntil(lambda: bar.maximum() > 400, timeout=WAIT)
    assert bar.value() == 0
    assert panel.preview.accessibleName() == "Preview of page-2.png"


# -- 10. The Jobs view counts what workers did --------------------------------------------------------

@pytest.mark.jobs("thumbnail,ocr,summary")
def test_the_jobs_view_leaves_out_summaries_nobody_ran(window, start_worker, tmp_path, qtbot):
    """Photos without text end their summary job at once, on the owner, without a worker: they
    are done, but no duration (the Jobs view showed a mean of 16 ms and a p95 of 0 ms)."""
    write_photos(tmp_path / "photos", 2, width=320, height=240)
    start_worker()
    window.import_paths([str(tmp_path / "photos")])
    qtbot.waitUntil(lambda: [r.status for r in rows(window)] == ["complete"] * 2, timeout=60_000)
    window.show_jobs()
    dialog = window.jobs_dialog
    headers = [dialog.queues.horizontalHeaderItem(c).text() for c in range(dialog.queues.columnCount())]

    def cell(name, header):
        queue = {dialog.queues.item(r, 0).text(): r for r in range(dialog.queues.rowCount())}
        return dialog.queues.item(queue[name], headers.index(header)).text() if name in queue else None
    qtbot.waitUntil(lambda: cell("summary", "Done") == "2", timeout=WAIT)
    assert (cell("summary", "Mean"), cell("summary", "p95"), cell("summary", "Per minute")) == ("–", "–", "0.0")
    assert cell("ocr", "Mean").endswith(("ms", " s")) and cell("ocr", "Mean") != "0 ms"
    dialog.close()


# -- 13. Names and values for a screen reader, and every action from the keyboard --------------------

def test_tiles_and_session_rings_have_accessible_names(qtbot):
    docs = DocumentModel()
    docs.load(1, [DocRow(id=1, session_id=1, path="/photos/IMG_4100.jpg", size=1, width=4000, height=3000,
                         status="complete", progress=None),
                  DocRow(id=2, session_id=1, path="/photos/IMG_4101.jpg", size=1, width=None, height=None,
                         status="running", progress=40),
                  DocRow(id=3, session_id=1, path="/photos/notes.jpg", size=1, width=None, height=None,
                         status="failed", progress=None, error="not an image", failed_job_ids=(7,))])
    view = QListView()
    qtbot.addWidget(view)
    view.setModel(docs)
    view.show()
    grid = QAccessible.queryAccessibleInterface(view)
    said = [grid.child(i).text(QAccessible.Text.Name) for i in range(grid.childCount())]
    assert said == ["IMG_4100.jpg, done, 4000 by 3000", "IMG_4101.jpg, running, 40%",
                    "notes.jpg, failed for good, no retry will cure it"]
    assert "not an image" in grid.child(2).text(QAccessible.Text.Description)

    sessions = SessionModel()
    sessions.update([SessionRow(id=1, name="Holiday", created_at=0, total=28, complete=17, failed=2, running=2,
                                queued=7)])
    sessions.flush()
    assert sessions.index(0, 0).data(Qt.ItemDataRole.AccessibleTextRole) == (
        "Holiday, 67% finished, 17 of 28 documents done, 2 running, 7 queued, 2 failed")


def test_the_window_speaks_its_tiles_and_sessions(window, start_worker, tmp_path, qtbot):
    write_photos(tmp_path / "Lisbon", 1, prefix="IMG", width=800, height=600)
    start_worker()
    window.import_paths([str(tmp_path / "Lisbon")])
    qtbot.waitUntil(lambda: [r.status for r in rows(window)] == ["complete"], timeout=WAIT)
    grid = QAccessible.queryAccessibleInterface(window.grid)
    assert grid.text(QAccessible.Text.Name) == "Documents"
    qtbot.waitUntil(lambda: grid.childCount() == 1, timeout=WAIT)
    assert grid.child(0).text(QAccessible.Text.Name) == "IMG-000.jpg, done, 800 by 600"
    sessions = QAccessible.queryAccessibleInterface(window.sessions_view)
    qtbot.waitUntil(lambda: sessions.child(0).text(QAccessible.Text.Name)
                    == "Lisbon, done, 1 of 1 document done", timeout=WAIT)
    assert sessions.text(QAccessible.Text.Name) == "Sessions"
    assert window.header.search.accessibleName() == "Search names and text"
    assert window.header.filter_buttons["done"].accessibleName() == "Show done: 1 document"


def test_every_action_is_reachable_from_the_keyboard(window, tmp_path, qtbot):
    menus = [a.menu() for a in window.menuBar().actions()]
    assert all("&" in m.title() for m in menus)  # Alt+letter opens each
    in_menus = {a for m in menus for a in m.actions()}
    assert all(a in in_menus for a in window.actions()), [a.text() for a in window.actions() if a not in in_menus]

    write_photos(tmp_path / "keys", 2)
    window.import_paths([str(tmp_path / "keys")])
    qtbot.waitUntil(lambda: window.filtered.rowCount() == 2, timeout=WAIT)
    window.activateWindow()
    qtbot.waitUntil(lambda: QApplication.activeWindow() is window, timeout=WAIT)
    window.grid.setFocus()
    window.grid.setCurrentIndex(window.filtered.index(0, 0))
    qtbot.waitUntil(lambda: window.details.doc_id is not None, timeout=WAIT)

    # Tab goes round the whole window: sessions, the filters, the search, the grid, the details' buttons.
    window.sessions_view.setFocus()
    qtbot.waitUntil(window.sessions_view.hasFocus, timeout=WAIT)
    seen = []
    for _ in range(40):
        QTest.keyClick(QApplication.focusWidget(), Qt.Key.Key_Tab)
        seen.append(QApplication.focusWidget())
        if seen[-1] is window.sessions_view:
            break
    # The filters are one stop, like radio buttons: Tab reaches the one chosen, the arrows choose another.
    expected = [window.header.filter_buttons["all"], window.header.search, window.grid]
    header = window.header
    assert [w for w in seen if w in [*header.filter_buttons.values(), header.search, window.grid]] == expected
    texts = [w.text() for w in seen if isinstance(w, QAbstractButton)]
    assert {"Open", "Show in Folder", "Copy Path"} <= set(texts)
    window.header.filter_buttons["all"].setFocus()
    QTest.keyClick(window.header.filter_buttons["all"], Qt.Key.Key_Right)
    assert window.header.filter_buttons["queued"].hasFocus() and window.filtered.filter == "queued"
    QTest.keyClick(window.header.filter_buttons["queued"], Qt.Key.Key_Left)
    assert window.filtered.filter == "all"

    # F6 moves between the panes; Escape in the search clears it and goes back to the grid.
    window.sessions_view.setFocus()
    QTest.keyClick(window.sessions_view, Qt.Key.Key_F6)
    assert window.grid.hasFocus()
    QTest.keyClick(window.grid, Qt.Key.Key_F6)
    assert window.details.isAncestorOf(QApplication.focusWidget()) or window.details.hasFocus()
    QTest.keyClick(QApplication.focusWidget(), Qt.Key.Key_F6)
    assert window.sessions_view.hasFocus()
    window.header.focus_search()
    QTest.keyClicks(window.header.search, "zzz")
    assert window.filtered.rowCount() == 0
    QTest.keyClick(window.header.search, Qt.Key.Key_Escape)
    assert window.header.search.text() == "" and window.grid.hasFocus() and window.filtered.rowCount() == 2

    # The Jobs view: Tab goes from the queues to each queue's Pause button, which stays while it refreshes.
    window.show_jobs()
    dialog = window.jobs_dialog
    last = dialog.queues.columnCount() - 1
    qtbot.waitUntil(lambda: dialog.queues.rowCount() == 5 and dialog.queues.cellWidget(4, last) is not None,
                    timeout=WAIT)
    pauses = [dialog.queues.cellWidget(r, last) for r in range(5)]
    assert [p.accessibleName() for p in pauses] == [f"Pause the {q} queue" for q in ("thumbnail", "ocr", "summary",
                                                                                      "describe", "embed")]
    dialog.activateWindow()
    qtbot.waitUntil(lambda: QApplication.activeWindow() is dialog, timeout=WAIT)
    dialog.queues.setFocus()
    for pause in pauses:
        QTest.keyClick(QApplication.focusWidget(), Qt.Key.Key_Tab)
        assert QApplication.focusWidget() is pause
    dialog.stats = None
    dialog.refresh()
    qtbot.waitUntil(lambda: dialog.stats is not None, timeout=WAIT)
    assert QApplication.focusWidget() is pauses[-1] and dialog.queues.cellWidget(4, last) is pauses[-1]
    dialog.close()


# -- 14. A first window that explains itself ---------------------------------------------------------

@pytest.mark.jobs("thumbnail,ocr,summary")
def test_an_empty_window_says_what_to_drop_what_happens_and_where_results_are_kept(window, settings, tmp_path,
                                                                                    monkeypatch, qtbot):
    page = window.empty_page
    assert window.stack.currentWidget() is page and page.isVisibleTo(window)
    assert page.title.text() == "Drop photos, scans or PDFs here"
    assert "JPEG" in page.kinds.text() and "PDF" in page.kinds.text() and "folders" in page.kinds.text()
    assert page.what.text() == ("For each document SnapDesk makes a thumbnail, reads its text and writes a short "
                                "summary, in the background. With no language model set up, summaries are made "
                                "offline from the text.")
    assert "Each drop becomes a session" in page.session.text()
    assert str(settings.data_dir) in page.where.text() and "originals stay where they are" in page.where.text()
    assert str(settings.data_dir) in page.accessibleDescription()

    # Its buttons do what they say: Add Files… asks for files, and they become a session.
    photo = write_photos(tmp_path / "first", 1)[0]
    monkeypatch.setattr(QFileDialog, "getOpenFileNames", staticmethod(lambda *a, **k: ([str(photo)], "")))
    qtbot.mouseClick(page.add_files_button, Qt.MouseButton.LeftButton)
    qtbot.waitUntil(lambda: window.documents.rowCount() == 1, timeout=WAIT)
    assert window.stack.currentWidget() is window.grid


def test_the_first_run_text_follows_the_jobs_enabled(settings):
    from snapdesk.gui.empty_state import what_happens

    assert what_happens(settings.replace(job_types="thumbnail")) == (
        "For each document SnapDesk makes a thumbnail, in the background.")
    assert what_happens(settings.replace(job_types="thumbnail,ocr,summary", openai_base_url="http://llm/v1")) == (
        "For each document SnapDesk makes a thumbnail, reads its text and writes a short summary, in the background.")
    assert what_happens(settings.replace(job_types="thumbnail,describe")) == (
        "For each document SnapDesk makes a thumbnail and describes what a picture shows, in the background.")


def test_a_session_gets_its_context_menu_from_the_keyboard(window, tmp_path, qtbot):
    write_photos(tmp_path / "menu", 1)
    window.import_paths([str(tmp_path / "menu")])
    qtbot.waitUntil(lambda: window.sessions.rowCount() == 1 and window.current_session is not None, timeout=WAIT)
    window._session_menu(window.sessions_view.viewport().rect().bottomRight() * 10)  # nowhere near an item
    qtbot.waitUntil(lambda: QApplication.activePopupWidget() is not None, timeout=WAIT)
    menu = QApplication.activePopupWidget()
    assert window.remove_session_action in menu.actions() and window.retry_failed_action not in menu.actions()
    menu.close()

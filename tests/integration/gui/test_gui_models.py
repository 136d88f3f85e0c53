"""The item models on their own: Qt's model checks, coalesced batches, filters."""

import csv
import io
import sys

from snapdesk.gui import refcount_workaround
from snapdesk.gui.images import decode_blurhash
from snapdesk.gui.models import (
    DocumentFilterModel,
    DocumentModel,
    ProgressRole,
    SessionModel,
    _ranges,
)
from snapdesk.gui.queries import DocRow, SessionRow, report_csv


def doc(i, status="queued", session=1, progress=None):
    return DocRow(id=i, session_id=session, path=f"/photos/img-{i:03d}.jpg", size=1000 + i, width=None, height=None,
                  status=status, progress=progress, error="broken" if status == "failed" else None,
                  failed_job_ids=(100 + i,) if status == "failed" else ())


def test_document_model_passes_qt_model_checks_through_loads_updates_and_inserts(qtmodeltester, qtbot):
    model = DocumentModel()
    qtmodeltester.check(model)
    model.load(1, [doc(i) for i in range(20)])
    qtmodeltester.check(model)
    model.update([doc(3, "running", progress=40), doc(20, "queued"), doc(21, "queued")])
    model.flush()
    qtmodeltester.check(model)
    assert model.rowCount() == 22 and model.row(3).progress == 40


def test_changes_are_applied_in_one_batch_with_one_signal_per_contiguous_range(qtbot):
    model = DocumentModel()
    model.load(1, [doc(i) for i in range(10)])
    changes = []
    model.dataChanged.connect(lambda first, last, roles=(): changes.append((first.row(), last.row())))
    model.update([doc(2, "running")])
    model.update([doc(3, "running"), doc(1, "complete"), doc(7, "failed")])
    model.update([doc(5, "complete", session=2)])  # another session's document: not shown here
    assert changes == []  # nothing until the batch timer fires
    qtbot.waitUntil(lambda: bool(changes), timeout=1000)
    assert sorted(changes) == [(1, 3), (7, 7)]
    assert [model.row(r).status for r in (1, 2, 3, 5, 7)] == ["complete", "running", "running", "queued", "failed"]
    assert model.rowCount() == 10


def test_ranges():
    assert _ranges([5, 1, 2, 3, 9, 8]) == [(1, 3), (5, 5), (8, 9)]
    assert _ranges([]) == []


def test_filters_follow_status_changes(qtmodeltester):
    model = DocumentModel()
    model.load(1, [doc(0, "complete"), doc(1, "failed"), doc(2, "running"), doc(3, "queued")])
    proxy = DocumentFilterModel()
    proxy.setSourceModel(model)
    qtmodeltester.check(proxy)
    counts = {}
    for name in ("all", "queued", "running", "failed", "done"):
        proxy.set_filter(name)
        counts[name] = proxy.rowCount()
    assert counts == {"all": 4, "queued": 1, "running": 1, "failed": 1, "done": 1}  # queued is not running
    assert proxy.counts() == counts
    proxy.set_filter("failed")
    model.update([doc(2, "failed")])
    model.flush()
    assert proxy.rowCount() == 2
    proxy.set_search("IMG-001")
    assert proxy.rowCount() == 1 and proxy.index(0, 0).data() == "img-001.jpg"
    proxy.set_matches({3})  # the full-text search found a document whose name does not match
    assert [proxy.index(r, 0).data() for r in range(proxy.rowCount())] == ["img-001.jpg"]
    proxy.set_filter("all")
    assert [proxy.index(r, 0).data() for r in range(proxy.rowCount())] == ["img-001.jpg", "img-003.jpg"]
    qtmodeltester.check(proxy)


def test_session_model_puts_new_sessions_on_top(qtmodeltester):
    model = SessionModel()
    model.update([SessionRow(id=1, name="old", created_at=1.0, total=2, complete=2),
                  SessionRow(id=2, name="newer", created_at=2.0, total=4, failed=1, complete=2, queued=1)])
    model.flush()
    qtmodeltester.check(model)
    model.update([SessionRow(id=3, name="newest", created_at=3.0, total=1, running=1)])
    model.flush()
    assert [model.row(r).name for r in range(3)] == ["newest", "newer", "old"]
    assert model.index(0, 0).data(ProgressRole) == 0 and model.index(1, 0).data(ProgressRole) == 75
    qtmodeltester.check(model)


def test_blurhash_placeholder_decodes_to_a_small_image():
    image = decode_blurhash("LEHV6nWB2yk8pyo0adR*.7kCMdnj")
    assert (image.width(), image.height()) == (32, 24) and not image.isNull()
    assert decode_blurhash("not a blurhash").isNull()


def test_report_csv_has_a_line_per_document_and_columns_per_job_type():
    report = {"documents": [
        {"id": 1, "path": "/a.jpg", "size": 10, "width": 4, "height": 3, "status": "complete",
         "jobs": {"thumbnail": {"state": "complete", "attempts": 1, "duration_ms": 90, "worker": "h:1", "error": None}}},
        {"id": 2, "path": "/b, with comma.jpg", "size": 5, "width": None, "height": None, "status": "failed",
         "jobs": {"thumbnail": {"state": "failed", "attempts": 1, "duration_ms": 0, "worker": "h:1",
                                "error": "not an image"}}},
    ]}
    lines = list(csv.DictReader(io.StringIO(report_csv(report))))
    assert [line["path"] for line in lines] == ["/a.jpg", "/b, with comma.jpg"]
    assert lines[1]["thumbnail_error"] == "not an image" and lines[1]["width"] == ""
    assert lines[0]["thumbnail_duration_ms"] == "90"


def test_the_binding_no_longer_runs_none_and_true_out_of_references():
    """PySide6 6.12.0 on Python 3.11 drops a reference to None per void call: refcount_workaround gives them a reserve."""
    if sys.version_info < (3, 12) and any(refcount_workaround.leaks().values()):
        assert sys.getrefcount(None) > refcount_workaround.RESERVE and sys.getrefcount(True) > refcount_workaround.RESERVE


def _grid_showing(qtbot, rows):
    """A document grid of 800 x 500 on screen, showing ``rows``: (the grid, its model, the filter)."""
    from snapdesk.gui.delegates import DocumentDelegate
    from snapdesk.gui.views import DocumentGrid

    model = DocumentModel()
    model.load(1, rows)
    proxy = DocumentFilterModel()
    proxy.setSourceModel(model)
    grid = DocumentGrid(DocumentDelegate())
    qtbot.addWidget(grid)
    grid.setModel(proxy)
    grid.resize(800, 500)
    grid.show()
    qtbot.waitExposed(grid)
    return grid, model, proxy


def test_only_visible_running_tiles_are_animated(qtbot):
    grid, _, proxy = _grid_showing(qtbot, [doc(i, "running" if i % 2 == 0 else "complete") for i in range(2000)])
    qtbot.waitUntil(lambda: grid.animated > 0, timeout=2000)
    cols = grid.viewport().width() // grid.gridSize().width()
    lines = grid.viewport().height() // grid.gridSize().height() + 1
    assert grid.animated <= cols * lines // 2 + cols  # the running half of what fits on screen, not 1000
    proxy.set_filter("done")  # nothing running on screen: nothing to animate, and the ticker rests
    qtbot.waitUntil(lambda: grid.animated == 0 and not grid._ticker.isActive(), timeout=2000)
    proxy.set_filter("all")  # running tiles on screen again: it wakes
    qtbot.waitUntil(lambda: grid.animated > 0, timeout=2000)


def test_a_running_tile_with_a_figure_is_not_animated_until_the_figure_changes(qtbot):
    """Its badge is a progress ring, which the tick would paint the same 16 times a second."""
    grid, model, _ = _grid_showing(qtbot, [doc(i, "running", progress=40 if i else None) for i in range(20)])
    qtbot.waitUntil(lambda: grid.animated == 1, timeout=2000)  # the one without a figure: a spinner
    model.update([doc(0, "running", progress=10)])
    qtbot.waitUntil(lambda: grid.animated == 0 and not grid._ticker.isActive(), timeout=2000)


def test_a_documents_progress_counts_all_its_jobs():
    from snapdesk.gui.delegates import DocumentDelegate
    from snapdesk.gui.queries import _doc_row

    def job(i, type_, state, progress=0, **result):
        return {"id": i, "document": 1, "type": type_, "state": state, "progress": progress, "error": None,
                "blurhash": result.get("blurhash"), "duration": None, "sm": result.get("sm"), "md": None, "lg": None,
                "title": result.get("title")}

    document = {"id": 1, "session": 1, "path": "/scans/invoice.png", "size": 10, "width": 800, "height": 600}
    thumb = job(1, "thumbnail", "complete", 100, blurhash="LEHV6nWB2yk8pyo0adR*.7kCMdnj", sm="/a/sm.webp")
    row = _doc_row(document, [thumb, job(2, "ocr", "running", 50), job(3, "summary", "pending")])
    assert (row.status, row.progress, row.thumbs, row.unfinished_job_ids) == ("running", 50, {"sm": "/a/sm.webp"},
                                                                              (2, 3))
    assert DocumentDelegate.status_text(row) == "Running 50%"
    row = _doc_row(document, [thumb, job(2, "ocr", "queued"), job(3, "summary", "pending")])
    assert (row.status, row.progress) == ("queued", 33)
    assert DocumentDelegate.status_text(row) == "Queued · 1 of 3 done"
    row = _doc_row(document, [thumb, job(2, "ocr", "complete", 100), job(3, "summary", "complete", 100,
                                                                            title="Invoice 2041 from Acme")])
    assert (row.status, row.progress, row.title) == ("complete", None, "Invoice 2041 from Acme")
    assert DocumentDelegate.status_text(row) == "Invoice 2041 from Acme"


def test_a_videos_length_reads_as_a_player_shows_it():
    from snapdesk.gui.delegates import DocumentDelegate

    assert [DocumentDelegate.duration_text(s) for s in (0.4, 7, 59.6, 205, 3729)] == [
        "0:00", "0:07", "1:00", "3:25", "1:02:09"]


def test_session_counts_in_sql_follow_the_engines_document_status(library):
    """queries.session_rows counts in SQL; it must agree with engine.library.document_status on every mix of states."""
    import itertools
    from collections import Counter

    from snapdesk.engine.library import document_status
    from snapdesk.gui.queries import session_rows
    from snapdesk.store.db import JOB_STATES, Document, Job, UploadSession

    session = UploadSession.create(name="mixes", paths=[], skipped={})
    expected = Counter()
    mixes = [()] + [m for n in (1, 2, 3) for m in itertools.combinations_with_replacement(JOB_STATES, n)]
    for i, states in enumerate(mixes):
        doc = Document.create(session=session, path=f"/d/{i}.jpg", size=1, sha256=f"{i:064x}", kind="image", mtime=0)
        for state, job_type in zip(states, ("thumbnail", "ocr", "summary")):
            Job.create(document=doc, session=session, type=job_type, state=state, max_attempts=3)
        expected[document_status(list(states))] += 1
    (row,) = session_rows([session.id])
    got = {"queued": row.queued, "running": row.running, "complete": row.complete, "failed": row.failed,
           "cancelled": row.cancelled}
    assert got == {k: expected.get(k, 0) for k in got} and row.total == len(mixes)


def test_settings_set_by_the_environment_are_shown_but_not_saved(qtbot, tmp_path):
    import pytest

    from snapdesk.config import ConfigError, load_settings
    from snapdesk.config import write_settings_file
    from snapdesk.gui.settings_dialog import SettingsDialog

    settings = load_settings(env={"REDIS_URL": "redis://farm:6379/0", "SNAPDESK_SECRET": "s"}, data_dir=tmp_path)
    dialog = SettingsDialog(settings, environ={"REDIS_URL": "redis://farm:6379/0"})
    qtbot.addWidget(dialog)
    assert not dialog.editors["redis_url"].isEnabled() and dialog.editors["redis_url"].text() == "redis://farm:6379/0"
    dialog.editors["concurrency_ocr"].setValue(3)
    values = dialog.values()
    assert "REDIS_URL" not in values and values["JOB_CONCURRENCY_OCR"] == 3 and values["SNAPDESK_SECRET"] == "s"

    path = tmp_path / "settings.json"
    path.write_text('{"OPENAI_BASE_URL": "http://llm.local/v1", "JOB_CONCURRENCY_OCR": 1}')
    write_settings_file({"JOB_CONCURRENCY_OCR": 3, "OPENAI_BASE_URL": None}, path)
    assert load_settings(env={}, settings_file=path).concurrency_ocr == 3
    assert "OPENAI_BASE_URL" not in path.read_text()
    with pytest.raises(ConfigError):
        write_settings_file({"REDIS_URL": "http://not-redis"}, path)
    assert load_settings(env={}, settings_file=path).redis_url == ""  # a bad value never reaches the file


def test_the_settings_dialog_tests_redis_and_the_llm_endpoint_as_entered(settings, redis_url, qtbot):
    import socket

    from chat_server import ChatServer
    from PySide6.QtCore import Qt

    from snapdesk.gui.settings_dialog import SettingsDialog

    dialog = SettingsDialog(settings, environ={})
    qtbot.addWidget(dialog)

    def test(which):
        button, result = dialog.test_results[which]
        qtbot.mouseClick(button, Qt.MouseButton.LeftButton)
        qtbot.waitUntil(lambda: button.isEnabled() and result.text() != "Testing…", timeout=20_000)
        return result.text()

    dialog.editors["redis_url"].setText(redis_url)
    assert test("redis").startswith("✓ connected to Redis")
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        nobody = f"redis://:hunter2@127.0.0.1:{s.getsockname()[1]}/0"
    dialog.editors["redis_url"].setText(nobody)
    answer = test("redis")
    assert answer.startswith("✗ cannot reach redis://:***@127.0.0.1") and "hunter2" not in answer

    with ChatServer() as chat:
        dialog.editors["openai_base_url"].setText(chat.base_url)
        dialog.editors["llm_model"].setText("tiny-model")
        assert test("llm").startswith("✓ tiny-model answered (120 tokens)")
        chat.default = "401"
        assert "refused the API key (401)" in test("llm")


def test_a_tile_drawn_from_remembered_pictures_takes_a_new_palette_at_once(qtbot):
    """The frame and badges are drawn once per look and copied after; switching between light and dark
    must not leave a tile in the old colours."""
    from PySide6.QtCore import QRect
    from PySide6.QtGui import QColor, QImage, QPainter, QPalette
    from PySide6.QtWidgets import QListView, QStyleOptionViewItem

    from snapdesk.gui.delegates import DocumentDelegate

    model = DocumentModel()
    model.load(1, [doc(1, "queued")])
    view = QListView()
    qtbot.addWidget(view)
    delegate = DocumentDelegate()

    def tile(base: str, line: str) -> QImage:
        palette = QPalette(view.palette())
        palette.setColor(QPalette.ColorRole.Base, QColor(base))
        palette.setColor(QPalette.ColorRole.Midlight, QColor(line))
        image = QImage(200, 200, QImage.Format.Format_ARGB32)
        image.fill(QColor("white"))
        option = QStyleOptionViewItem()
        option.initFrom(view)
        option.rect, option.palette, option.font = QRect(0, 0, 180, 190), palette, view.font()
        p = QPainter(image)
        delegate.paint(p, option, model.index(0, 0))
        p.end()
        return image

    light = tile("#ffffff", "#c8c8c8")
    assert tile("#ffffff", "#c8c8c8") == light  # the same look: the same pixels, from the remembered frame
    dark = tile("#202020", "#505050")
    assert QColor(dark.pixel(90, 180)).name() == "#202020"  # the tile's ground, below its status line
    assert QColor(light.pixel(90, 180)).name() == "#ffffff"
    # The frame's top edge (a line of 1 px, antialiased over the ground): drawn in each look's colour.
    assert QColor(dark.pixel(90, 1)).lightness() < 0x60 < QColor(light.pixel(90, 1)).lightness() < 0xff

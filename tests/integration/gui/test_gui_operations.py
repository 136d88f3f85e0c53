"""gui/operations.py: how every view runs an action off the GUI thread, seen from the window."""

import threading

from PySide6.QtWidgets import QWidget

from snapdesk.gui import operations
from snapdesk.gui.operations import Op

WAIT = 20_000


def test_a_failure_nobody_listens_for_is_said_in_the_status_bar(window, tmp_path, qtbot):
    operations.export_session(window.owner, 424242, str(tmp_path / "gone.csv"), "csv").run()
    qtbot.waitUntil(lambda: window.statusBar().currentMessage().startswith("Could not export"), timeout=WAIT)
    assert "no longer in the library" in window.statusBar().currentMessage()


def test_the_callbacks_run_on_the_gui_thread_with_the_result_or_the_error(window, qtbot):
    got = []

    def answer(lib):
        return threading.current_thread().name

    Op(window.owner, answer, "answer").success(lambda name: got.append((name, threading.current_thread().name))).run()

    def fail(lib):
        raise ValueError("no such thing")

    (Op(window.owner, fail, "fail").success(lambda _: got.append("success called"))
     .failure(lambda exc: got.append(("failure", str(exc), threading.current_thread().name))).run())
    qtbot.waitUntil(lambda: len(got) == 2, timeout=WAIT)
    main = threading.main_thread().name
    assert got == [("snapdesk-owner", main), ("failure", "no such thing", main)]


def test_no_callback_runs_once_the_widget_that_asked_is_gone(window, qtbot):
    dialog = QWidget()
    release = threading.Event()
    heard = []

    def slow(lib):
        release.wait(10)
        return "late"

    Op(window.owner, slow, "ask", parent=dialog).success(heard.append).failure(heard.append).run()
    dialog.deleteLater()
    qtbot.waitUntil(lambda: not _valid(dialog), timeout=WAIT)
    release.set()
    after = []
    Op(window.owner, lambda lib: "next", "after").success(after.append).run()  # runs after the slow one
    qtbot.waitUntil(lambda: after == ["next"], timeout=WAIT)
    assert heard == []


def _valid(widget):
    import shiboken6

    return shiboken6.isValid(widget)

"""Take the README's screenshots: the first window, the main window mid-run and the Jobs view,
on a real library.

    QT_QPA_PLATFORM=offscreen .venv/bin/python docs/screenshots.py
    xvfb-run -s "-screen 0 1400x900x24" .venv/bin/python docs/screenshots.py   # where Xvfb is installed

Makes a folder of photos, scans and two broken files in a temporary library (and a temporary
config folder, so the window's saved geometry is neither used nor changed), opens the window on
the embedded default (its local worker does the work) and saves docs/first-run.png before
anything is added. Then it drops the folder in, selects the truncated photo (a failure no retry
cures) and saves docs/window.png while the jobs run, and docs/jobs.png (the Jobs view) once
they are done. Each shot waits for the state it shows, not for a fixed time.
"""

from __future__ import annotations

import os
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path[:0] = [str(ROOT / "tests" / "integration"), str(ROOT / "benchmarks")]
BASE = Path(tempfile.mkdtemp(prefix="snapdesk-shots-"))
os.environ["SNAPDESK_CONFIG_DIR"] = str(BASE / "config")

from PySide6.QtCore import QTimer  # noqa: E402
from PySide6.QtWidgets import QApplication  # noqa: E402

from helpers import text_image  # noqa: E402
from photos import make_photo  # noqa: E402

from snapdesk.config import load_settings  # noqa: E402
from snapdesk.gui.window import MainWindow  # noqa: E402

#: The photo whose details the window shot shows: truncated, so it fails for good.
BROKEN = "IMG_2046.jpg"


def make_folder(folder: Path) -> None:
    folder.mkdir(parents=True)
    for i in range(26):
        name = f"IMG_{2040 + i}.jpg"
        if name == "IMG_2045.jpg":
            (folder / name).write_text("a text file with a photo's name")
        elif name == BROKEN:
            (folder / name).write_bytes(make_photo(800, 600, seed=99)[:20_000])
        else:
            w, h = [(1600, 1200), (1200, 1600), (1600, 900)][i % 3]
            (folder / name).write_bytes(make_photo(w, h, seed=i))
    (folder / "receipt-bakery.png").write_bytes(text_image(
        ["CORNER BAKERY", "12 Market Street", "Sourdough loaf 4.50", "Croissant 5.20", "TOTAL 9.70"]))
    (folder / "letter.png").write_bytes(text_image(
        ["Dear Ms Lopez,", "The nitrate survey of the river", "found higher levels near farmland.",
         "Yours sincerely, Springfield Water"]))


def when(condition, then, timeout: float = 120.0) -> None:
    """Call ``then()`` once ``condition()`` holds (or after ``timeout`` seconds, whatever the state)."""
    deadline = time.monotonic() + timeout

    def poll():
        if condition() or time.monotonic() > deadline:
            then()
        else:
            QTimer.singleShot(100, poll)
    QTimer.singleShot(100, poll)


def main() -> int:
    folder = BASE / "Holiday in Lisbon"
    make_folder(folder)
    settings = load_settings(env={}, data_dir=BASE / "SnapDesk")
    app = QApplication.instance() or QApplication(sys.argv)
    window = MainWindow(settings)
    window.resize(1400, 860)
    window.show()

    def session():
        return window.sessions.row_by_id(window.current_session) if window.current_session else None

    def broken_row():
        return next((r for r in (window.documents.row(i) for i in range(window.documents.rowCount()))
                     if r.name == BROKEN), None)

    def shot_first_run():
        window.grab().save(str(ROOT / "docs" / "first-run.png"))
        window.import_paths([str(folder)])
        when(lambda: broken_row() is not None and broken_row().status == "failed", select_broken)

    def select_broken():
        for r in range(window.filtered.rowCount()):
            if window.filtered.index(r, 0).data() == BROKEN:
                window.grid.setCurrentIndex(window.filtered.index(r, 0))  # the details panel shows it
        # Mid-run: some documents done, some running, some waiting, and the details shown.
        when(lambda: window.details.doc_id is not None and session() is not None and session().running
             and session().queued and session().finished >= session().total // 3, shot_window)

    def shot_window():
        window.grab().save(str(ROOT / "docs" / "window.png"))
        when(lambda: session() is not None and session().status != "running", show_jobs)

    def show_jobs():
        window.show_jobs()
        when(lambda: window.jobs_dialog.stats is not None and window.jobs_dialog.workers.rowCount() > 0
             and all(not w["running"] for w in window.jobs_dialog.stats["workers"])  # its heartbeat caught up
             and all(q["states"]["complete"] + q["states"]["failed"] + q["states"]["cancelled"] > 0
                     for q in window.jobs_dialog.stats["queues"].values()), shot_jobs)

    def shot_jobs():
        window.jobs_dialog.grab().save(str(ROOT / "docs" / "jobs.png"))
        window.close()
        app.quit()

    when(lambda: window.transport_label.text() != "Opening the library…", shot_first_run)
    return app.exec()


if __name__ == "__main__":
    sys.exit(main())

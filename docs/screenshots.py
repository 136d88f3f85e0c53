"""Take the README's screenshots: the main window mid-run and the Jobs view, on a real library.

    xvfb-run -s "-screen 0 1400x900x24" .venv/bin/python docs/screenshots.py

Makes a folder of photos, scans and two broken files in a temporary library, opens the window
on the embedded default (its local worker does the work), drops the folder in, and saves
docs/window.png while the jobs run and docs/jobs.png (the Jobs view) a little later.
"""

from __future__ import annotations

import sys
import tempfile
from pathlib import Path

from PySide6.QtCore import QTimer
from PySide6.QtWidgets import QApplication

ROOT = Path(__file__).resolve().parent.parent
sys.path[:0] = [str(ROOT / "tests"), str(ROOT / "benchmarks")]

from helpers import text_image  # noqa: E402
from photos import make_photo  # noqa: E402

from snapdesk.config import load_settings  # noqa: E402
from snapdesk.gui.window import MainWindow  # noqa: E402


def make_folder(folder: Path) -> None:
    folder.mkdir(parents=True)
    for i in range(24):
        w, h = [(1600, 1200), (1200, 1600), (1600, 900)][i % 3]
        (folder / f"IMG_{2040 + i}.jpg").write_bytes(make_photo(w, h, seed=i))
    (folder / "receipt-bakery.png").write_bytes(text_image(
        ["CORNER BAKERY", "12 Market Street", "Sourdough loaf 4.50", "Croissant 5.20", "TOTAL 9.70"]))
    (folder / "letter.png").write_bytes(text_image(
        ["Dear Ms Lopez,", "The nitrate survey of the river", "found higher levels near farmland.",
         "Yours sincerely, Springfield Water"]))
    (folder / "IMG_2099.jpg").write_text("a text file with a photo's name")
    (folder / "IMG_2100.jpg").write_bytes(make_photo(800, 600, seed=99)[:20_000])  # truncated


def main() -> int:
    base = Path(tempfile.mkdtemp(prefix="snapdesk-shots-"))
    folder = base / "Holiday in Lisbon"
    make_folder(folder)
    settings = load_settings(env={}, data_dir=base / "data")
    app = QApplication.instance() or QApplication(sys.argv)
    window = MainWindow(settings)
    window.resize(1400, 860)
    window.show()
    window.import_paths([str(folder)])

    def shot_window():
        window.grab().save(str(ROOT / "docs" / "window.png"))
        window.show_jobs()
        QTimer.singleShot(6000, shot_jobs)

    def shot_jobs():
        window.jobs_dialog.grab().save(str(ROOT / "docs" / "jobs.png"))
        window.close()
        app.quit()

    def select_first():
        window.grid.setCurrentIndex(window.filtered.index(0, 0))  # the details panel shows it

    QTimer.singleShot(6000, select_first)
    QTimer.singleShot(8000, shot_window)
    return app.exec()


if __name__ == "__main__":
    sys.exit(main())

"""Python's cyclic garbage collector, run on the GUI thread only.

The window's process runs Python on several threads (the owner thread, folder scans, the image
loader's pool). Left automatic, the collector runs on whichever thread happens to allocate when a
threshold is crossed, and if the garbage it finds holds a Qt widget, that widget is destroyed on a
thread that is not the GUI thread: the process crashes (a segmentation fault in "Garbage-collecting").
So while a window is open, automatic collection is off and a timer on the GUI thread collects with
the same thresholds, the youngest generation that is due first.
"""

from __future__ import annotations

import gc

from PySide6.QtCore import QCoreApplication, QObject, QTimer


class MainThreadCollector(QObject):
    """Collects cyclic garbage on the thread it lives on (the GUI thread), every ``interval_ms``."""

    INTERVAL_MS = 500

    def __init__(self, parent: QObject | None = None, interval_ms: int = INTERVAL_MS) -> None:
        super().__init__(parent)
        self._timer = QTimer(self)
        self._timer.setInterval(interval_ms)
        self._timer.timeout.connect(self.check)
        self._timer.start()
        gc.disable()

    def check(self) -> int:
        """Collect the oldest generation whose threshold is crossed, as the automatic collector would."""
        counts, thresholds = gc.get_count(), gc.get_threshold()
        generation = -1
        for gen in range(3):
            if thresholds[gen] and counts[gen] > thresholds[gen]:
                generation = gen
        return gc.collect(generation) if generation >= 0 else 0

    def stop(self) -> None:
        """Give collection back to Python, after one full pass here."""
        self._timer.stop()
        gc.collect()
        gc.enable()


def install() -> MainThreadCollector:
    """The application's collector, made on first use (call it on the GUI thread, once there is an app)."""
    app = QCoreApplication.instance()
    assert app is not None, "a QApplication must exist first"
    collector = app.findChild(MainThreadCollector)
    if collector is None or not collector._timer.isActive():
        collector = MainThreadCollector(app)
    return collector


def uninstall() -> None:
    """Automatic collection back on (tests that outlive their windows use this)."""
    app = QCoreApplication.instance()
    for collector in app.findChildren(MainThreadCollector) if app is not None else ():
        collector.stop()
        collector.deleteLater()

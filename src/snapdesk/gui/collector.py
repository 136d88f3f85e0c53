"""Python's cyclic garbage collector, run on the GUI thread only.

The window's process runs Python on several threads (the owner thread, folder scans, the image
loader's pool). Left automatic, the collector runs on whichever thread happens to allocate when a
threshold is crossed, and if the garbage it finds holds a Qt widget, that widget is destroyed on a
thread that is not the GUI thread: the process crashes (a segmentation fault in "Garbage-collecting").
So while a window is open, automatic collection is off and a timer on the GUI thread collects with
the same thresholds, the oldest generation that is due.

A full collection (the oldest generation) goes over every object the process holds: 30 to 60 ms
with a session of 10,000 documents shown, a stall the window must not have while work streams in
(benchmarks/gui.py at 2,000 events a second). So while the process is busy (the youngest
generation filled up since the last look), a full collection that is due waits for a quiet look,
but never more than ``MAX_FULL_DELAY_S``; meanwhile the middle generation is collected.
"""

from __future__ import annotations

import gc
import time
from typing import Callable

from PySide6.QtCore import QCoreApplication, QObject, QTimer


class MainThreadCollector(QObject):
    """Collects cyclic garbage on the thread it lives on (the GUI thread), every ``interval_ms``."""

    INTERVAL_MS = 500
    #: The longest a due full collection waits for a quiet moment.
    MAX_FULL_DELAY_S = 300.0

    def __init__(self, parent: QObject | None = None, interval_ms: int = INTERVAL_MS,
                 clock: Callable[[], float] = time.monotonic) -> None:
        super().__init__(parent)
        self._clock = clock
        self._full_due_since: float | None = None  # when a full collection fell due, while it waits
        self._timer = QTimer(self)
        self._timer.setInterval(interval_ms)
        self._timer.timeout.connect(self.check)
        self._timer.start()
        gc.disable()

    def check(self) -> int:
        """Collect the oldest generation whose threshold is crossed, as the automatic collector would;
        a full collection only when the process is quiet, or once it has waited MAX_FULL_DELAY_S."""
        counts, thresholds = gc.get_count(), gc.get_threshold()
        generation = -1
        for gen in range(3):
            if thresholds[gen] and counts[gen] > thresholds[gen]:
                generation = gen
        if generation == 2:
            now = self._clock()
            if self._full_due_since is None:
                self._full_due_since = now
            busy = counts[0] > thresholds[0]
            if busy and now - self._full_due_since < self.MAX_FULL_DELAY_S:
                generation = 1  # the full pass waits for a quiet look
            else:
                self._full_due_since = None
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

"""Garbage is collected on the GUI thread while a window is open, whichever thread made it."""

import gc
import threading
import weakref


class _Cycle:
    """Garbage only the cyclic collector frees; it records the thread that freed it."""

    freed_on: list[str] = []

    def __init__(self):
        self.me = self

    def __del__(self):
        _Cycle.freed_on.append(threading.current_thread().name)


def test_cycles_made_on_another_thread_are_freed_on_the_gui_thread(window, qtbot):
    assert not gc.isenabled()  # nothing collects on the owner thread, the scans or the image loader
    _Cycle.freed_on.clear()
    refs = []

    def make_garbage():
        for _ in range(50):
            refs.append(weakref.ref(_Cycle()))
        # Far past the youngest generation's threshold: automatic collection would run here.
        junk = [[i] for i in range(gc.get_threshold()[0] * 20)]
        del junk

    thread = threading.Thread(target=make_garbage, name="not-the-gui-thread")
    thread.start()
    thread.join()
    qtbot.waitUntil(lambda: all(ref() is None for ref in refs), timeout=10_000)
    assert set(_Cycle.freed_on) == {threading.main_thread().name}



def test_a_full_collection_waits_for_a_quiet_moment_but_not_for_ever(qapp):
    """A full pass over a large session stalls the window for tens of milliseconds: while objects
    stream in it waits (the middle generation is collected instead), at most MAX_FULL_DELAY_S."""
    from snapdesk.gui.collector import MainThreadCollector

    now = [1000.0]
    collector = MainThreadCollector(interval_ms=10**8, clock=lambda: now[0])  # checked by hand, not by its timer
    try:
        def full_collections():
            return gc.get_stats()[2]["collections"]

        def make_full_due():
            gc.collect(0)
            for _ in range(gc.get_threshold()[2] + 1):
                gc.collect(1)  # each counts towards the oldest generation's threshold

        make_full_due()
        busy = [[i] for i in range(gc.get_threshold()[0] * 3)]  # the youngest generation fills up
        before = full_collections()
        collector.check()
        assert full_collections() == before  # busy: it waits
        now[0] += collector.MAX_FULL_DELAY_S / 2
        busy += [[i] for i in range(gc.get_threshold()[0] * 3)]  # more since the last look
        collector.check()
        assert full_collections() == before  # still busy, still within its delay
        del busy
        gc.collect(0)  # quiet: the youngest generation is nearly empty
        collector.check()
        assert full_collections() == before + 1

        make_full_due()
        busy = [[i] for i in range(gc.get_threshold()[0] * 3)]
        collector.check()
        assert full_collections() == before + 1
        now[0] += collector.MAX_FULL_DELAY_S
        busy += [[i] for i in range(gc.get_threshold()[0] * 3)]
        collector.check()  # busy, but it has waited long enough
        assert full_collections() == before + 2
    finally:
        collector.stop()
        collector.deleteLater()

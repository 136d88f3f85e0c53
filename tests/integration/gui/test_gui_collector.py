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


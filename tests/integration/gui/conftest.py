"""The window's tests: pytest-qt, offscreen, a real library on the embedded transport and real workers."""

import pytest

from snapdesk.gui import collector
from snapdesk.gui.window import MainWindow


@pytest.fixture(autouse=True)
def _collect_on_the_gui_thread():
    """A window turns automatic collection off; tests after it (not all of them Qt's) get it back."""
    yield
    collector.uninstall()


@pytest.fixture
def transport_name():
    """The window talks to the Library the same way on both transports; these tests use the embedded one."""
    return "embedded"


@pytest.fixture
def open_window(qtbot, settings):
    """Open windows on the test's library; each is closed, and its owner thread checked stopped, at the end."""
    windows = []

    def open_(settings_=None, **kwargs):
        window = MainWindow(settings_ or settings, **kwargs)
        qtbot.addWidget(window)
        window.resize(1200, 800)
        window.show()
        qtbot.waitUntil(lambda: window.transport_label.text() != "Opening the library…", timeout=10_000)
        windows.append(window)
        return window

    yield open_
    for window in windows:
        window.close()
        assert not window.owner.is_running()


@pytest.fixture
def window(open_window):
    return open_window()

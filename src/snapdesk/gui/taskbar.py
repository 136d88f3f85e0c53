"""Progress on the app's taskbar or dock entry, where the platform has one.

Linux desktops take it over D-Bus, through the Unity LauncherEntry API that the Ubuntu Dock,
Dash to Dock, KDE Plasma's task manager and Plank read: a signal naming the app's .desktop file
(``snapdesk.desktop``, which ``make desktop-install`` and the packages install) with the share
done and the documents left. Elsewhere (or with no session bus) it does nothing.
"""

from __future__ import annotations

import logging
import sys

log = logging.getLogger("snapdesk.gui.taskbar")

DESKTOP_FILE = "snapdesk.desktop"
OBJECT_PATH = "/com/snapdesk/SnapDesk"
INTERFACE = "com.canonical.Unity.LauncherEntry"


class TaskbarProgress:
    def __init__(self, desktop_file: str = DESKTOP_FILE, bus_address: str | None = None):
        """On the session bus, or the bus at ``bus_address``."""
        self.app_uri = f"application://{desktop_file}"
        self._bus = None
        self._last: dict | None = None
        if sys.platform.startswith("linux"):
            try:
                from PySide6.QtDBus import QDBusConnection

                bus = (QDBusConnection.connectToBus(bus_address, f"snapdesk-taskbar-{id(self)}") if bus_address
                       else QDBusConnection.sessionBus())
                self._bus = bus if bus.isConnected() else None
            except ImportError:  # a build without QtDBus: no taskbar progress, nothing else lost
                log.info("QtDBus is not available: no taskbar progress")

    @property
    def available(self) -> bool:
        return self._bus is not None

    def show(self, done: int, total: int) -> None:
        """``done`` of ``total`` documents; a total of 0 hides the progress."""
        if total > 0:
            properties = {"progress": min(max(done / total, 0.0), 1.0), "progress-visible": True,
                          "count": max(total - done, 0), "count-visible": True}
        else:
            properties = {"progress": 0.0, "progress-visible": False, "count": 0, "count-visible": False}
        if properties == self._last or self._bus is None:
            return
        self._last = properties
        from PySide6.QtDBus import QDBusMessage

        message = QDBusMessage.createSignal(OBJECT_PATH, INTERFACE, "Update")
        message.setArguments([self.app_uri, properties])
        if not self._bus.send(message):
            log.debug("could not send the taskbar progress: %s", self._bus.lastError().message())

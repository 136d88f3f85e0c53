"""The window's state between runs (geometry, the panes' widths) in an INI file beside the settings
file, as ``QSettings`` keeps it; nothing of the library is kept here."""

from __future__ import annotations

from PySide6.QtCore import QByteArray, QSettings
from PySide6.QtWidgets import QMainWindow, QSplitter

from ...config import config_dir

#: The window's size the first time it opens.
FIRST_SIZE = (1320, 820)


def ui_settings() -> QSettings:
    """Window state (geometry, splitters, last filter) in an INI file beside the settings file."""
    return QSettings(str(config_dir() / "window.ini"), QSettings.Format.IniFormat)


def restore_state(window: QMainWindow, splitter: QSplitter) -> None:
    qs = ui_settings()
    geometry = qs.value("window/geometry")
    if isinstance(geometry, QByteArray) and not geometry.isEmpty():
        window.restoreGeometry(geometry)
    else:
        window.resize(*FIRST_SIZE)
    state = qs.value("window/splitter")
    if isinstance(state, QByteArray) and not state.isEmpty():
        splitter.restoreState(state)


def save_state(window: QMainWindow, splitter: QSplitter) -> None:
    qs = ui_settings()
    qs.setValue("window/geometry", window.saveGeometry())
    qs.setValue("window/splitter", splitter.saveState())
    qs.sync()

"""The window's dialogs: About, Settings (saving reopens the library when something changed) and
the Jobs view, one of each, kept on the window as ``settings_dialog`` and ``jobs_dialog``."""

from __future__ import annotations

import html
from typing import TYPE_CHECKING

from PySide6.QtWidgets import QMessageBox

from ...config import APP_NAME, Settings
from .. import operations
from .base import Window

if TYPE_CHECKING:
    from ..settings_dialog import SettingsDialog


def show_about(window: Window) -> None:
    from ... import __version__

    QMessageBox.about(window, f"About {APP_NAME}",
                      f"<b>{APP_NAME} {__version__}</b><p>Thumbnails, text and summaries of documents and "
                      f"photos, made by background workers.</p>"
                      f"<p>Library: {html.escape(str(window.settings.data_dir))}<br>"
                      f"Queue: {html.escape(window.transport_label.text())}</p>")


def show_settings(window: Window) -> None:
    from ..settings_dialog import SettingsDialog

    dialog = SettingsDialog(window.settings, parent=window)
    dialog.saved.connect(lambda values: _save_settings(window, dialog, values))
    window.settings_dialog = dialog
    dialog.open()


def _save_settings(window: Window, dialog: SettingsDialog, values: dict[str, object]) -> None:
    """Write the settings file and read the settings again on the owner thread, then reopen the library."""
    def saved(settings: Settings) -> None:
        dialog.accept()
        if settings != window.settings:
            window.restart_library(settings)
            window.statusBar().showMessage("Settings saved", 5000)
    operations.save_settings(window.owner, values, window.reload_settings, parent=dialog) \
        .success(saved).failure(lambda error: dialog.show_error(str(error))).run()


def show_jobs(window: Window) -> None:
    """The Jobs view: queues (pause, resume), workers and failed jobs across sessions."""
    if window.jobs_dialog is None:
        from ..jobs_view import JobsDialog

        window.jobs_dialog = JobsDialog(window.owner, window)
    window.jobs_dialog.show()
    window.jobs_dialog.raise_()

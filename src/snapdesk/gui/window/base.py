"""The window as its parts see it: what ``actions``, ``commands``, ``dialogs``, ``imports``,
``progress`` and ``session_header`` may use of it, besides what any QMainWindow has.
``mainwindow.MainWindow`` builds those parts and fills all of this in; the parts name this class,
never ``MainWindow``, so that no part imports the module that imports it."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from PySide6.QtCore import Signal
from PySide6.QtGui import QAction
from PySide6.QtWidgets import QLabel, QMainWindow, QPushButton, QListView, QWidget

from ...config import Settings
from ..models import DocumentFilterModel, DocumentModel, SessionModel
from ..owner import LibraryOwner
from ..queries import DocRow
from ..taskbar import TaskbarProgress
from ..views import DocumentGrid, DropOverlay

if TYPE_CHECKING:  # the window's own parts: annotations only
    from ..jobs_view import JobsDialog
    from ..settings_dialog import SettingsDialog


class Window(QMainWindow):
    #: The library could not be opened: the message for a person.
    libraryFailed = Signal(str)
    #: An import finished: its result (session id, skipped, problems) or an exception.
    imported = Signal(object)

    settings: Settings
    #: Reads the settings again after the Settings dialog saved them (on the owner thread).
    reload_settings: Any
    owner: LibraryOwner
    sessions: SessionModel
    documents: DocumentModel
    filtered: DocumentFilterModel
    grid: DocumentGrid
    sessions_view: QListView
    add_button: QPushButton
    overlay: DropOverlay
    busy: QWidget
    transport_label: QLabel
    taskbar: TaskbarProgress
    #: The session shown, if any.
    current_session: int | None
    #: Imports under way.
    importing: int
    settings_dialog: SettingsDialog | None
    jobs_dialog: JobsDialog | None
    #: The View menu's sort actions, by sort name; each action of the registry is also ``<name>_action``.
    sort_actions: dict[str, QAction]
    #: ``session_header.SessionHeader``, ``commands.Commands``, ``imports.Imports``,
    #: ``duplicates.DuplicatesFinder``: parts of their own.
    header: Any
    commands: Any
    imports: Any
    duplicates: Any

    def selected_rows(self) -> list[DocRow]:
        raise NotImplementedError

    def select_session(self, session_id: int) -> None:
        raise NotImplementedError

    def set_filter(self, name: str) -> None:
        raise NotImplementedError

    def restart_library(self, settings: Settings) -> None:
        raise NotImplementedError

    def search_changing(self, change: Any) -> None:
        raise NotImplementedError

    def search_settled(self) -> None:
        raise NotImplementedError

    def cycle_pane(self, step: int) -> None:
        raise NotImplementedError

    def show_settings(self) -> None:
        raise NotImplementedError

    def show_jobs(self) -> None:
        raise NotImplementedError

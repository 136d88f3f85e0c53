"""The main window: sessions on the left, the document grid, the details of the selection.

It builds itself in small ``_init_*`` steps and wires the owner's signals in ``_connect_owner``;
what each part does lives beside it in this package (see ``__init__.py``). Every action hands an
operation to the owner thread (``gui/operations.py``) and returns; results and changes come back
as rows, which the models apply in batches.
"""

from __future__ import annotations

import gc
import logging
from typing import TYPE_CHECKING, Any

from PySide6.QtCore import QEvent, QItemSelectionModel, QModelIndex, QPoint, Qt
from PySide6.QtWidgets import (
    QApplication,
    QMenu,
    QSplitter,
    QStackedWidget,
    QVBoxLayout,
    QWidget,
)

from ...config import APP_NAME, Settings, load_settings
from .. import collector, operations
from ..delegates import DocumentDelegate
from ..details import DetailsPanel
from ..duplicates import DuplicatesFinder
from ..empty_state import EmptyState
from ..icon import app_icon
from ..images import ImageCache
from ..models import DocumentFilterModel, DocumentModel, IdRole, RowRole, SessionModel
from ..owner import LibraryOwner
from ..queries import DocRow, SessionRow
from ..status_bar import LibraryStatus, transport_text
from ..taskbar import TaskbarProgress
from ..views import DocumentGrid, DropOverlay
from . import actions, dialogs, state, style
from .base import Window
from .commands import Commands
from .imports import Imports
from .progress import SessionProgress
from .session_header import SessionHeader
from .sessions_pane import SessionsPane

if TYPE_CHECKING:
    from ..jobs_view import JobsDialog
    from ..settings_dialog import SettingsDialog

log = logging.getLogger("snapdesk.gui")


class MainWindow(Window):
    """The window: it builds its parts (``actions``, ``commands``, ``imports``, ``session_header``,
    ...), which see it as a ``base.Window``, and wires them to the owner thread's signals."""

    def __init__(self, settings: Settings, parent: QWidget | None = None, reload_settings: Any = None):
        super().__init__(parent)
        self.settings = settings
        #: Reads the settings again after the Settings dialog saved them (on the owner thread).
        self.reload_settings = reload_settings or load_settings
        self.settings_dialog: SettingsDialog | None = None
        self.jobs_dialog: JobsDialog | None = None
        self.setWindowTitle(APP_NAME)
        self.setWindowIcon(app_icon())
        style.restyle(self)
        self.current_session: int | None = None
        #: The document selected when a search began changing the grid: selected again once the search
        #: shows it (the file-name filter may hide it until the text index answers).
        self.kept_document: int | None = None
        #: A search is changing the grid: the current tile moving is not the person's choice.
        self.filtering = False
        self.importing = 0
        self.last_status: dict = {}
        self.taskbar = TaskbarProgress()
        collector.install()  # before any other thread runs Python: garbage is collected on this one

        self.images = ImageCache(parent=self)
        self.sessions = SessionModel(self)
        self.documents = DocumentModel(self.images, self)
        self.filtered = DocumentFilterModel(self)
        self.filtered.setSourceModel(self.documents)
        self.sessions.rowsUpdated.connect(self._sessions_updated)
        self.sessions.rowsInserted.connect(self._sessions_inserted)
        self.documents.rowsUpdated.connect(self._documents_updated)
        self.commands = Commands(self)
        self.imports = Imports(self)
        self.progress = SessionProgress(self)

        self.owner = LibraryOwner(settings, self)
        self.duplicates = DuplicatesFinder(self.owner, self.filtered, self)
        self._connect_owner()
        self._init_panes()
        self.duplicates.found.connect(lambda *_: self.header.update_counts())
        self._init_status_bar()
        self._init_tab_order()
        actions.build(self)
        self._show_session(None)
        state.restore_state(self, self.splitter)
        self.owner.start()

    # -- building ----------------------------------------------------------------------
    def _init_panes(self) -> None:
        splitter = QSplitter(Qt.Orientation.Horizontal)
        splitter.setObjectName("mainSplitter")
        splitter.setChildrenCollapsible(False)
        self.splitter = splitter
        pane = SessionsPane(self.sessions)
        self.add_button, self.sessions_view = pane.add_button, pane.view
        self.sessions_view.selectionModel().currentChanged.connect(self._session_selected)
        self.sessions_view.customContextMenuRequested.connect(self._session_menu)
        splitter.addWidget(pane)
        splitter.addWidget(self._init_documents_pane())
        self.details = DetailsPanel(self.images)
        self.details.retryJob.connect(lambda job_id: self.commands.retry_jobs([job_id]))
        self.details.tagClicked.connect(self.header.search.setText)  # a description's tag: its documents
        self.details.openFile.connect(self.commands.open_path)
        self.details.showInFolder.connect(self.commands.show_in_folder)
        self.details.copyPath.connect(self.commands.copy_paths)
        splitter.addWidget(self.details)
        splitter.setStretchFactor(0, 0)
        splitter.setStretchFactor(1, 1)
        splitter.setStretchFactor(2, 0)
        splitter.setSizes([250, 800, 330])
        central = QWidget()
        central_layout = QVBoxLayout(central)
        central_layout.setContentsMargins(0, 0, 0, 0)
        central_layout.addWidget(splitter)
        self.setCentralWidget(central)
        # Over everything, outside the layout (a child of the splitter would become a pane of it).
        self.overlay = DropOverlay(central)

    def _init_documents_pane(self) -> QWidget:
        center = QWidget()
        center_layout = QVBoxLayout(center)
        center_layout.setContentsMargins(12, 10, 12, 0)
        center_layout.setSpacing(8)
        self.header = SessionHeader(self)
        self.header.filter_bar.filterChosen.connect(self.set_filter)
        self.header.retry_failed_button.clicked.connect(self.commands.retry_session_failed)
        self.header.meaning.documentChosen.connect(self._show_document)
        center_layout.addWidget(self.header)

        self.delegate = DocumentDelegate(self.images, self)
        self.delegate.retryClicked.connect(self.commands.retry_documents)
        self.grid = DocumentGrid(self.delegate)
        self.grid.setAccessibleName("Documents")
        self.grid.setModel(self.filtered)
        self.grid.setAcceptDrops(False)
        self.grid.viewport().setAcceptDrops(False)
        self.grid.setDragDropMode(DocumentGrid.DragDropMode.NoDragDrop)
        self.grid.selectionModel().currentChanged.connect(self._document_selected)
        self.grid.selectionModel().selectionChanged.connect(self._selection_changed)
        self.grid.activated.connect(lambda index: self.commands.open_original())
        self.grid.customContextMenuRequested.connect(self._grid_menu)

        self.empty_page = EmptyState(self.settings)
        self.empty_page.addFiles.connect(self.imports.add_files_dialog)
        self.empty_page.addFolder.connect(self.imports.add_folder_dialog)
        self.empty_page.openLibraryFolder.connect(lambda: self.commands.open_path(str(self.settings.data_dir)))
        self.stack = QStackedWidget()
        self.stack.addWidget(self.empty_page)
        self.stack.addWidget(self.grid)
        center_layout.addWidget(self.stack, 1)
        return center

    def _init_status_bar(self) -> None:
        self.library_status = LibraryStatus(self.statusBar(), self.settings.wants_local_workers)
        self.busy = self.library_status.busy
        self.transport_label, self.workers_label = self.library_status.transport, self.library_status.workers
        self.queue_label, self.throughput_label = self.library_status.queue, self.library_status.throughput

    def _init_tab_order(self) -> None:
        h = self.header
        chain = (self.add_button, self.sessions_view, *h.filter_buttons.values(), h.search, h.retry_failed_button,
                 h.other_matches, self.grid, self.details)
        for a, b in zip(chain, chain[1:]):
            QWidget.setTabOrder(a, b)

    # -- the owner ---------------------------------------------------------------------
    def _connect_owner(self) -> None:
        owner = self.owner
        owner.ready.connect(self._ready)
        owner.failed.connect(self._failed)
        owner.sessionsChanged.connect(self.sessions.update)
        owner.documentsChanged.connect(self.documents.update)
        owner.statusChanged.connect(self._status_changed)
        owner.sessionRemoved.connect(self._session_removed)
        owner.operationFailed.connect(lambda message: self.statusBar().showMessage(message, 10000))

    def restart_library(self, settings: Settings) -> None:
        """Open the library again with new settings (another transport, another data folder)."""
        old = self.owner
        for signal in (old.ready, old.failed, old.sessionsChanged, old.documentsChanged, old.statusChanged,
                       old.sessionRemoved, old.operationFailed):
            signal.disconnect()
        old.stop(timeout=5)
        old.deleteLater()
        if self.jobs_dialog is not None:
            self.jobs_dialog.close()
            self.jobs_dialog.deleteLater()
            self.jobs_dialog = None
        self.settings = settings
        self.empty_page.set_settings(settings)
        self.library_status.local_workers = settings.wants_local_workers
        self.current_session = None
        self.importing = 0  # a scan of the old library ended with it
        self.busy.hide()
        self.progress.clear()
        self.details.clear()
        self.documents.load(None, [])
        self.sessions.reset([])
        self.taskbar.show(0, 0)
        self.owner = LibraryOwner(settings, self)
        self.header.meaning.owner = self.owner
        self.duplicates.owner = self.owner
        self.duplicates.show_session(None)
        self._show_session(None)
        self.library_status.opening()
        self._connect_owner()
        self.owner.start()

    def _ready(self, info: dict) -> None:
        self.transport_label.setText(transport_text(info["transport"]))

    def _failed(self, message: str) -> None:
        self.transport_label.setText("Library not open")
        self.empty_page.show_error("SnapDesk cannot open its library", message)
        self.libraryFailed.emit(message)

    def _status_changed(self, status: dict) -> None:
        self.last_status = status
        self.library_status.show(status)

    # -- dialogs (see ``dialogs.py``) ----------------------------------------------------
    def show_settings(self) -> None:
        dialogs.show_settings(self)

    def show_jobs(self) -> None:
        dialogs.show_jobs(self)

    # -- the window --------------------------------------------------------------------
    def event(self, event: QEvent) -> bool:
        if event.type() == QEvent.Type.ApplicationPaletteChange:  # the system switched between light and dark
            style.restyle(self)
        return super().event(event)

    def closeEvent(self, event: Any) -> None:
        state.save_state(self, self.splitter)
        self.taskbar.show(0, 0)
        self.owner.stop(timeout=5)
        self.images.shutdown()
        super().closeEvent(event)

    def cycle_pane(self, step: int) -> None:
        """F6 and Shift+F6: the focus to the next (previous) pane: sessions, documents, details."""
        grid = self.grid if self.stack.currentWidget() is self.grid else self.empty_page.add_files_button
        panes = [self.sessions_view, grid, self.details]
        focus = QApplication.focusWidget()
        inside = [i for i, pane in enumerate(panes) if focus is pane or (focus and pane.isAncestorOf(focus))]
        at = inside[0] if inside else (-1 if step > 0 else 0)
        panes[(at + step) % len(panes)].setFocus(Qt.FocusReason.ShortcutFocusReason)

    def set_filter(self, name: str) -> None:
        self.filtered.set_filter(name)
        self.header.filter_bar.select(name)
        self.header.update_empty_text()

    # -- sessions ----------------------------------------------------------------------
    def _sessions_inserted(self, parent: QModelIndex, first: int, last: int) -> None:
        if self.current_session is None and self.sessions.rowCount():
            self.select_session(self.sessions.row(0).id)

    def _sessions_updated(self, ids: set) -> None:
        if self.current_session in ids:
            self._show_session(self.sessions.row_by_id(self.current_session))
        self.progress.sessions_changed(ids)

    def select_session(self, session_id: int) -> None:
        index = self.sessions.index_of(session_id)
        if not index.isValid():  # its row may still wait in the model's batch
            self.sessions.flush()
            index = self.sessions.index_of(session_id)
        if index.isValid():
            self.sessions_view.selectionModel().setCurrentIndex(
                index, QItemSelectionModel.SelectionFlag.ClearAndSelect)

    def _session_selected(self, current: QModelIndex, previous: QModelIndex) -> None:
        session_id = current.data(IdRole) if current.isValid() else None
        if session_id == self.current_session:
            return
        self.current_session = session_id
        self.duplicates.show_session(session_id)
        self.header.session_changed()
        self.documents.load(session_id, [])
        self.kept_document = None
        self.details.clear()
        self._show_session(self.sessions.row_by_id(session_id) if session_id is not None else None)
        if session_id is not None:
            operations.load_session(self.owner, session_id) \
                .success(lambda rows, s=session_id: self._documents_loaded(s, rows)).run()

    def _documents_loaded(self, session_id: int, rows: list) -> None:
        if session_id == self.current_session:
            self.documents.load(session_id, rows)
            self.header.update_counts()  # the Duplicates count is of the documents loaded: it may have come first
            # A session's rows live as long as it is shown: out of the cyclic collector's way, or each
            # of its full passes over them (60 ms at 10,000 documents) stalls the GUI thread.
            gc.freeze()

    def _show_session(self, row: SessionRow | None) -> None:
        self.stack.setCurrentWidget(self.grid if row is not None else self.empty_page)
        self.setWindowTitle(f"{row.name} — {APP_NAME}" if row is not None else APP_NAME)
        self.header.show_session(row)

    def _session_removed(self, session_id: int) -> None:
        row = self.sessions.row_by_id(session_id)
        self.sessions.remove(session_id)
        self.progress.update()
        if self.current_session == session_id:
            self.current_session = None
            self.duplicates.show_session(None)
            self.documents.load(None, [])
            self.details.clear()
            if self.sessions.rowCount():
                self.select_session(self.sessions.row(0).id)
            else:
                self._show_session(None)
        if row is not None:
            self.statusBar().showMessage(f"Removed {row.name}", 5000)

    def _session_menu(self, pos: QPoint) -> None:
        index = self.sessions_view.indexAt(pos)
        if not index.isValid():  # from the keyboard (the Menu key): the current session
            index = self.sessions_view.currentIndex()
            pos = self.sessions_view.visualRect(index).center()
        if not index.isValid():
            return
        self.select_session(index.data(IdRole))
        actions.session_menu(self, index.data(RowRole)).popup(self.sessions_view.viewport().mapToGlobal(pos))

    # -- documents ---------------------------------------------------------------------
    def selected_rows(self) -> list[DocRow]:
        indexes = self.grid.selectionModel().selectedIndexes()
        if not indexes and self.grid.currentIndex().isValid():
            indexes = [self.grid.currentIndex()]
        return [i.data(RowRole) for i in sorted(indexes, key=lambda i: i.row()) if i.data(RowRole) is not None]

    def _document_selected(self, current: QModelIndex, previous: QModelIndex) -> None:
        self._request_details()

    def _selection_changed(self, *args: Any) -> None:
        rows = self.selected_rows()
        self.retry_action.setEnabled(any(r.retry_job_ids for r in rows) or not rows)

    def _request_details(self) -> None:
        index = self.grid.currentIndex()
        doc_id = index.data(IdRole) if index.isValid() else None
        if self.filtering and self.kept_document is not None and doc_id != self.kept_document:
            return  # a search hid it, or moved the current tile: its details stay until the search ends
        if doc_id is None:
            self.kept_document = None
            self.details.clear()
            return
        if not self.filtering:
            self.kept_document = None
        operations.document_details(self.owner, doc_id) \
            .success(lambda details, d=doc_id: self._details_arrived(d, details)).run()

    def _details_arrived(self, doc_id: int, details: dict | None) -> None:
        index = self.grid.currentIndex()
        if details is not None and index.isValid() and index.data(IdRole) == doc_id:
            self.details.show_details(details)
            # The file may have come back or changed since the tile was read: it follows the details.
            cures = {j["id"] for j in details["jobs"] if j["state"] == "failed" and j.get("retry_cures")}
            if cures != set(index.data(RowRole).retry_job_ids):
                operations.refresh_rows(self.owner, [doc_id]).run()

    def _documents_updated(self, ids: set) -> None:
        if self.details.doc_id in ids:
            self._request_details()
        self.header.documents_changed()
        self.duplicates.documents_changed()

    # -- the selection while a search changes the grid ----------------------------------
    def search_changing(self, change: Any) -> None:
        """Run ``change`` (a search filtering the grid), keeping the selected document and its
        details: selected again when the search shows it, forgotten when the search ends without it."""
        index = self.grid.currentIndex()
        if self.kept_document is None and index.isValid():
            self.kept_document = index.data(IdRole)
        self.filtering = True
        try:
            change()
            self._select_kept()
        finally:
            self.filtering = False

    def search_settled(self) -> None:
        """The search's hits are in: the kept document is selected, or, when it is not among them,
        forgotten (and the details follow the current tile, if any)."""
        if self.kept_document is None:
            return
        if not self._select_kept():
            self.kept_document = None
            self._request_details()

    def _select_kept(self) -> bool:
        if self.kept_document is None:
            return False
        index = self.filtered.mapFromSource(self.documents.index_of(self.kept_document))
        if not index.isValid():
            return False
        if self.grid.currentIndex() != index:
            self.grid.setCurrentIndex(index)
        return True

    def _show_document(self, session_id: int, doc_id: int) -> None:
        """Select a document found by a search (its session first, when another is shown)."""
        if session_id != self.current_session:
            self.select_session(session_id)
            return
        index = self.filtered.mapFromSource(self.documents.index_of(doc_id))
        if index.isValid():
            self.grid.setCurrentIndex(index)

    def grid_menu(self, rows: list[DocRow]) -> QMenu:
        return actions.grid_menu(self, rows)

    def _grid_menu(self, pos: QPoint) -> None:
        rows = self.selected_rows()
        if rows:
            if not self.grid.viewport().rect().contains(pos):  # from the keyboard: at the current tile
                pos = self.grid.visualRect(self.grid.currentIndex()).center()
            self.grid_menu(rows).popup(self.grid.viewport().mapToGlobal(pos))

    # -- getting documents in ------------------------------------------------------------
    def import_paths(self, paths: list[str]) -> None:
        """Add files and folders as a new session (see ``imports.py``)."""
        self.imports.import_paths(paths)

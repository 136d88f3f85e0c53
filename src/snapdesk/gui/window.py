"""The main window: sessions on the left, the document grid, the details of the selection.

Every action hands an operation to the owner thread and returns; results and changes come
back as rows, which the models apply in batches.
"""

from __future__ import annotations

import datetime
import gc
import html
import logging
import os
import sys
from pathlib import Path

from PySide6.QtCore import (
    QByteArray,
    QEvent,
    QItemSelectionModel,
    QModelIndex,
    QProcess,
    QSettings,
    Qt,
    QTimer,
    QUrl,
    Signal,
)
from PySide6.QtGui import (
    QAction,
    QActionGroup,
    QDesktopServices,
    QGuiApplication,
    QKeySequence,
)
from PySide6.QtWidgets import (
    QApplication,
    QFileDialog,
    QHBoxLayout,
    QLabel,
    QLineEdit,
    QListView,
    QMainWindow,
    QMenu,
    QMessageBox,
    QPushButton,
    QSplitter,
    QStackedWidget,
    QSystemTrayIcon,
    QToolButton,
    QVBoxLayout,
    QWidget,
)

from ..config import APP_NAME, Settings, config_dir, load_settings
from . import collector
from .delegates import DocumentDelegate, SessionDelegate
from .details import DetailsPanel
from .empty_state import EmptyState
from .filter_bar import FilterBar
from .icon import app_icon
from .images import ImageCache
from .meaning_view import MeaningControls
from .models import DocumentFilterModel, DocumentModel, IdRole, RowRole, SessionModel
from .owner import LibraryOwner
from .rows import DocRow, SessionRow
from .skipped_view import SkippedLine
from .status_bar import LibraryStatus, transport_text
from .taskbar import TaskbarProgress
from .views import DocumentGrid, DropOverlay

log = logging.getLogger("snapdesk.gui")

STYLE = """
QLabel#muted { color: palette(mid); }
QLabel#error { color: #d64541; }
QLabel#section { font-weight: 600; font-size: 11pt; margin-top: 6px; }
QLabel#sessionTitle { font-size: 15pt; font-weight: 600; }
QLabel#sessionInfo { color: palette(mid); }
QLabel#emptyTitle { font-size: 17pt; font-weight: 600; }
QLabel#preview { background: palette(alternate-base); border-radius: 8px; }
QFrame#jobCard { border: 1px solid palette(midlight); border-radius: 8px; background: palette(base); }
QToolButton[filter="true"] { padding: 4px 10px; border: 1px solid palette(midlight); border-radius: 12px; }
QToolButton[filter="true"]:checked { background: palette(highlight); color: palette(highlighted-text);
                                      border-color: palette(highlight); }
QListView#sessions { border: none; background: palette(window); }
QLabel#statusError { color: #d64541; }
QLabel#permanent { border: 1px solid palette(mid); border-radius: 9px; padding: 1px 8px; }
"""


def ui_settings() -> QSettings:
    """Window state (geometry, splitters, last filter) in an INI file beside the settings file."""
    return QSettings(str(config_dir() / "window.ini"), QSettings.Format.IniFormat)


def local_paths(mime) -> list[str]:
    if mime is None or not mime.hasUrls():
        return []
    return [url.toLocalFile() for url in mime.urls() if url.isLocalFile() and url.toLocalFile()]


class MainWindow(QMainWindow):
    #: The library could not be opened: the message for a person.
    libraryFailed = Signal(str)
    #: An import finished: its result (session id, skipped, problems) or an exception.
    imported = Signal(object)

    def __init__(self, settings: Settings, parent=None, reload_settings=None):
        super().__init__(parent)
        self.settings = settings
        #: Reads the settings again after the Settings dialog saved them (on the owner thread).
        self.reload_settings = reload_settings or load_settings
        self.settings_dialog = None
        self.setWindowTitle(APP_NAME)
        self.setWindowIcon(app_icon())
        self.setAcceptDrops(True)
        self.setStyleSheet(STYLE)
        self.current_session: int | None = None
        self.importing = 0
        self.last_status: dict = {}
        self.jobs_dialog = None
        self._session_status: dict[int, str] = {}
        self._tray = None
        self.taskbar = TaskbarProgress()
        collector.install()  # before any other thread runs Python: garbage is collected on this one

        self.images = ImageCache(parent=self)
        self.sessions = SessionModel(self)
        self.documents = DocumentModel(self.images, self)
        self.filtered = DocumentFilterModel(self)
        self.filtered.setSourceModel(self.documents)

        self.owner = self._make_owner(settings)
        self.sessions.rowsUpdated.connect(self._sessions_updated)
        self.sessions.rowsInserted.connect(self._sessions_inserted)
        self.documents.rowsUpdated.connect(self._documents_updated)

        self._build_ui()
        self._build_actions()
        self._restore_state()
        self.owner.start()

    def _make_owner(self, settings: Settings) -> LibraryOwner:
        owner = LibraryOwner(settings, self)
        owner.ready.connect(self._ready)
        owner.failed.connect(self._failed)
        owner.sessionsChanged.connect(self.sessions.update)
        owner.documentsLoaded.connect(self._documents_loaded)
        owner.documentsChanged.connect(self.documents.update)
        owner.statusChanged.connect(self._status_changed)
        owner.sessionRemoved.connect(self._session_removed)
        owner.operationFailed.connect(lambda message: self.statusBar().showMessage(message, 10000))
        return owner

    def restart_library(self, settings: Settings) -> None:
        """Open the library again with new settings (another transport, another data folder)."""
        old = self.owner
        for signal in (old.ready, old.failed, old.sessionsChanged, old.documentsLoaded, old.documentsChanged,
                       old.statusChanged, old.sessionRemoved, old.operationFailed):
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
        self._session_status.clear()
        self.details.clear()
        self.documents.load(None, [])
        self.sessions.reset([])
        self.taskbar.show(0, 0)
        self._show_session_header(None)
        self.library_status.opening()
        self.owner = self._make_owner(settings)
        self.owner.start()

    def show_about(self) -> None:
        from .. import __version__

        QMessageBox.about(self, f"About {APP_NAME}",
                          f"<b>{APP_NAME} {__version__}</b><p>Thumbnails, text and summaries of documents and "
                          f"photos, made by background workers.</p>"
                          f"<p>Library: {html.escape(str(self.settings.data_dir))}<br>"
                          f"Queue: {html.escape(self.transport_label.text())}</p>")

    def show_settings(self) -> None:
        from .settings_dialog import SettingsDialog

        dialog = SettingsDialog(self.settings, parent=self)
        dialog.saved.connect(lambda values: self._save_settings(dialog, values))
        self.settings_dialog = dialog
        dialog.open()

    def _save_settings(self, dialog, values: dict) -> None:
        """Write the settings file and read the settings again on the owner thread, then reopen the library."""
        from .settings_dialog import write_settings_file

        reload_settings = self.reload_settings

        def op(lib):
            write_settings_file(values)
            return reload_settings()

        def done(result):
            if isinstance(result, Exception):
                dialog.show_error(str(result))
                return
            dialog.accept()
            if result != self.settings:
                self.restart_library(result)
                self.statusBar().showMessage("Settings saved", 5000)
        self.owner.call(op, done, done)

    # -- building ----------------------------------------------------------------------
    def _build_ui(self) -> None:
        splitter = QSplitter(Qt.Orientation.Horizontal)
        splitter.setObjectName("mainSplitter")
        splitter.setChildrenCollapsible(False)
        self.splitter = splitter

        # sessions
        side = QWidget()
        side_layout = QVBoxLayout(side)
        side_layout.setContentsMargins(8, 10, 0, 8)
        head = QHBoxLayout()
        title = QLabel("Sessions")
        title.setObjectName("section")
        head.addWidget(title, 1)
        self.add_button = QToolButton()
        self.add_button.setText("Add")
        self.add_button.setToolTip("Add files or a folder as a new session")
        self.add_button.setPopupMode(QToolButton.ToolButtonPopupMode.InstantPopup)
        head.addWidget(self.add_button)
        side_layout.addLayout(head)
        self.sessions_view = QListView()
        self.sessions_view.setObjectName("sessions")
        self.sessions_view.setModel(self.sessions)
        self.sessions_view.setItemDelegate(SessionDelegate(self.sessions_view))
        self.sessions_view.setUniformItemSizes(True)
        # Its rows are painted to the width it has (names elided): never a sideways scroll bar.
        self.sessions_view.setHorizontalScrollBarPolicy(Qt.ScrollBarPolicy.ScrollBarAlwaysOff)
        self.sessions_view.setMouseTracking(True)
        self.sessions_view.selectionModel().currentChanged.connect(self._session_selected)
        self.sessions_view.setContextMenuPolicy(Qt.ContextMenuPolicy.CustomContextMenu)
        self.sessions_view.customContextMenuRequested.connect(self._session_menu)
        side_layout.addWidget(self.sessions_view)
        side.setMinimumWidth(160)
        splitter.addWidget(side)

        # documents
        center = QWidget()
        center_layout = QVBoxLayout(center)
        center_layout.setContentsMargins(12, 10, 12, 0)
        center_layout.setSpacing(8)
        self.session_title = QLabel()
        self.session_title.setObjectName("sessionTitle")
        self.session_info = QLabel()
        self.session_info.setObjectName("sessionInfo")
        center_layout.addWidget(self.session_title)
        center_layout.addWidget(self.session_info)
        self.skipped_line = SkippedLine()  # "12 files skipped — Show"
        center_layout.addWidget(self.skipped_line)
        bar = QHBoxLayout()
        self.filter_bar = FilterBar()
        self.filter_bar.filterChosen.connect(self.set_filter)
        self.filter_buttons = self.filter_bar.buttons
        bar.addWidget(self.filter_bar)
        bar.addStretch(1)
        self.search = QLineEdit()
        self.search.setPlaceholderText("Search names and text (Ctrl+F)")
        self.search.setAccessibleName("Search names and text")
        self.search.installEventFilter(self)  # Escape clears it and goes back to the grid
        self.search.setClearButtonEnabled(True)
        self.search.setMinimumWidth(220)
        self.search.setMaximumWidth(300)
        self.search.textChanged.connect(self._search_changed)
        self._search_timer = QTimer(self)
        self._search_timer.setSingleShot(True)
        self._search_timer.setInterval(250)
        self._search_timer.timeout.connect(self._full_text_search)
        bar.addWidget(self.search)
        self.meaning = MeaningControls(self.owner, self.search, self)  # search by meaning, Find Similar
        self.meaning.toggle.toggled.connect(lambda _: self.search.text().strip() and self._search_timer.start())
        self.meaning.documentChosen.connect(self._show_document)
        bar.addWidget(self.meaning.toggle)
        self.retry_failed_button = QPushButton("Retry Failed")
        self.retry_failed_button.setToolTip("Queue every failed job of this session again")
        self.retry_failed_button.clicked.connect(self.retry_session_failed)
        bar.addWidget(self.retry_failed_button)
        center_layout.addLayout(bar)
        self.other_matches = QLabel()
        self.other_matches.setObjectName("otherMatches")
        self.other_matches.setTextFormat(Qt.TextFormat.RichText)
        self.other_matches.setTextInteractionFlags(Qt.TextInteractionFlag.LinksAccessibleByMouse
                                                   | Qt.TextInteractionFlag.LinksAccessibleByKeyboard)
        self.other_matches.linkActivated.connect(self._other_match_clicked)
        self.other_matches.hide()
        center_layout.addWidget(self.other_matches)
        center_layout.addWidget(self.meaning.panel)

        self.delegate = DocumentDelegate(self.images, self)
        self.delegate.retryClicked.connect(self.retry_documents)
        self.grid = DocumentGrid(self.delegate)
        self.grid.setModel(self.filtered)
        self.grid.setAcceptDrops(False)
        self.grid.viewport().setAcceptDrops(False)
        self.grid.setDragDropMode(DocumentGrid.DragDropMode.NoDragDrop)
        self.grid.selectionModel().currentChanged.connect(self._document_selected)
        self.grid.selectionModel().selectionChanged.connect(self._selection_changed)
        self.grid.activated.connect(lambda index: self.open_original())
        self.grid.customContextMenuRequested.connect(self._grid_menu)

        self.empty_page = EmptyState(self.settings)
        self.empty_page.addFiles.connect(self.add_files_dialog)
        self.empty_page.addFolder.connect(self.add_folder_dialog)
        self.empty_page.openLibraryFolder.connect(lambda: self.open_path(str(self.settings.data_dir)))
        self.stack = QStackedWidget()
        self.stack.addWidget(self.empty_page)
        self.stack.addWidget(self.grid)
        center_layout.addWidget(self.stack, 1)
        splitter.addWidget(center)

        self.details = DetailsPanel(self.images)
        self.details.retryJob.connect(lambda job_id: self.retry_jobs([job_id]))
        self.details.tagClicked.connect(self.search.setText)  # a description's tag: its documents
        self.details.openFile.connect(self.open_path)
        self.details.showInFolder.connect(self.show_in_folder)
        self.details.copyPath.connect(self.copy_paths)
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

        self.library_status = LibraryStatus(self.statusBar(), self.settings.wants_local_workers)
        self.busy = self.library_status.busy
        self.transport_label, self.workers_label = self.library_status.transport, self.library_status.workers
        self.queue_label, self.throughput_label = self.library_status.queue, self.library_status.throughput
        self._counts_timer = QTimer(self)  # while a search runs, its counts follow the documents' changes
        self._counts_timer.setSingleShot(True)
        self._counts_timer.setInterval(150)
        self._counts_timer.timeout.connect(self._update_counts)
        self.sessions_view.setAccessibleName("Sessions")
        self.add_button.setAccessibleName("Add files or a folder")
        self.grid.setAccessibleName("Documents")
        for a, b in zip((self.add_button, self.sessions_view, *self.filter_buttons.values(), self.search,
                         self.retry_failed_button, self.other_matches),
                        (self.sessions_view, *self.filter_buttons.values(), self.search, self.retry_failed_button,
                         self.other_matches, self.grid)):
            QWidget.setTabOrder(a, b)
        QWidget.setTabOrder(self.grid, self.details)
        self._show_session_header(None)

    def _build_actions(self) -> None:
        def action(text, slot, shortcut=None, menu=None):
            a = QAction(text, self)
            if shortcut:
                a.setShortcut(QKeySequence(shortcut))
            a.triggered.connect(slot)
            self.addAction(a)
            if menu is not None:
                menu.addAction(a)
            return a

        file_menu = self.menuBar().addMenu("&File")
        self.add_files_action = action("Add &Files…", self.add_files_dialog, "Ctrl+O", file_menu)
        self.add_folder_action = action("Add F&older…", self.add_folder_dialog, "Ctrl+Shift+O", file_menu)
        file_menu.addSeparator()
        self.export_json_action = action("Export Session as &JSON…", lambda: self.export_dialog("json"), None,
                                         file_menu)
        self.export_csv_action = action("Export Session as &CSV…", lambda: self.export_dialog("csv"), None, file_menu)
        self.remove_session_action = action("&Remove Session…", lambda: self.remove_session(), None, file_menu)
        file_menu.addSeparator()
        self.settings_action = action("&Settings…", self.show_settings, "Ctrl+,", file_menu)
        self.settings_action.setMenuRole(QAction.MenuRole.PreferencesRole)
        file_menu.addSeparator()
        self.quit_action = action("&Quit", self.close, "Ctrl+Q", file_menu)

        docs_menu = self.menuBar().addMenu("&Documents")
        self.retry_action = action("&Retry Selected", self.retry_selected, "Ctrl+R", docs_menu)
        self.retry_failed_action = action("Retry All &Failed in Session", self.retry_session_failed,
                                          "Ctrl+Shift+R", docs_menu)
        self.cancel_action = action("Ca&ncel Selected", self.cancel_selected, None, docs_menu)
        self.reprocess_action = action("Re&process Selected", self.reprocess_selected, None, docs_menu)
        self.cancel_session_action = action("Cancel &Everything Left in Session", self.cancel_session, None,
                                            docs_menu)
        docs_menu.addSeparator()
        self.open_action = action("&Open Original", self.open_original, None, docs_menu)
        self.show_action = action("Show in &Folder", lambda: self.show_in_folder(), None, docs_menu)
        self.copy_action = action("&Copy Path", lambda: self.copy_paths(), "Ctrl+Shift+C", docs_menu)
        docs_menu.addSeparator()
        self.find_action = action("&Search", self.focus_search, "Ctrl+F", docs_menu)

        view_menu = self.menuBar().addMenu("&View")
        self.jobs_action = action("&Jobs…", self.show_jobs, "Ctrl+J", view_menu)
        view_menu.addSeparator()
        for i, (name, text) in enumerate((("all", "&All"), ("queued", "&Queued"), ("running", "&Running"),
                                           ("failed", "F&ailed"), ("done", "&Done"))):
            action(f"Show {text}", lambda _=False, n=name: self.set_filter(n), f"Ctrl+{i + 1}", view_menu)
        view_menu.addSeparator()
        self.sort_actions = {}
        sort_group = QActionGroup(self)
        for name, text in (("added", "Sort by &Import Order"), ("taken", "Sort by Date &Taken"),
                           ("name", "Sort by &Name")):
            a = self.sort_actions[name] = action(text, lambda _=False, n=name: self.filtered.set_sort(n), None,
                                                 view_menu)
            a.setCheckable(True)
            a.setChecked(name == "added")
            sort_group.addAction(a)
        view_menu.addSeparator()
        action("&Next Pane", lambda: self.cycle_pane(1), "F6", view_menu)
        action("&Previous Pane", lambda: self.cycle_pane(-1), "Shift+F6", view_menu)

        help_menu = self.menuBar().addMenu("&Help")
        action("Open &Data Folder", lambda: self.open_path(str(self.settings.data_dir)), None, help_menu)
        action("Open &Log Folder", lambda: self.open_path(str(Path(self.settings.data_dir) / "logs")), None,
               help_menu)
        help_menu.addSeparator()
        self.about_action = action("&About SnapDesk", self.show_about, None, help_menu)
        self.about_action.setMenuRole(QAction.MenuRole.AboutRole)

        add_menu = QMenu(self)
        add_menu.addAction(self.add_files_action)
        add_menu.addAction(self.add_folder_action)
        self.add_button.setMenu(add_menu)
        # Delete in the sessions list removes the selected session (after asking).
        remove = QAction("Remove Session", self.sessions_view)
        remove.setShortcut(QKeySequence(QKeySequence.StandardKey.Delete))
        remove.setShortcutContext(Qt.ShortcutContext.WidgetShortcut)
        remove.triggered.connect(lambda: self.remove_session())
        self.sessions_view.addAction(remove)

    # -- state -------------------------------------------------------------------------
    def _restore_state(self) -> None:
        qs = ui_settings()
        geometry = qs.value("window/geometry")
        if isinstance(geometry, QByteArray) and not geometry.isEmpty():
            self.restoreGeometry(geometry)
        else:
            self.resize(1320, 820)
        splitter = qs.value("window/splitter")
        if isinstance(splitter, QByteArray) and not splitter.isEmpty():
            self.splitter.restoreState(splitter)

    def _save_state(self) -> None:
        qs = ui_settings()
        qs.setValue("window/geometry", self.saveGeometry())
        qs.setValue("window/splitter", self.splitter.saveState())
        qs.sync()

    def event(self, event) -> bool:
        """The system switched between light and dark: Qt hands the app the new palette, but a style
        sheet's palette(...) colours were resolved when it was set, so it is set again."""
        if event.type() == QEvent.Type.ApplicationPaletteChange:
            self.setStyleSheet("")
            self.setStyleSheet(STYLE)
        return super().event(event)

    def closeEvent(self, event) -> None:
        self._save_state()
        self.taskbar.show(0, 0)
        self.owner.stop(timeout=5)
        self.images.shutdown()
        super().closeEvent(event)

    # -- owner signals -----------------------------------------------------------------
    def _ready(self, info: dict) -> None:
        self.transport_label.setText(transport_text(info["transport"]))

    def _failed(self, message: str) -> None:
        self.transport_label.setText("Library not open")
        self.empty_page.show_error("SnapDesk cannot open its library", message)
        self.libraryFailed.emit(message)

    def _status_changed(self, status: dict) -> None:
        self.last_status = status
        self.library_status.show(status)

    # -- sessions ----------------------------------------------------------------------
    def _sessions_inserted(self, parent: QModelIndex, first: int, last: int) -> None:
        if self.current_session is None and self.sessions.rowCount():
            self.select_session(self.sessions.row(0).id)

    def _sessions_updated(self, ids: set) -> None:
        if self.current_session in ids:
            self._show_session_header(self.sessions.row_by_id(self.current_session))
        for session_id in ids:
            row = self.sessions.row_by_id(session_id)
            if row is None:
                continue
            previous = self._session_status.get(session_id)
            self._session_status[session_id] = row.status
            if previous == "running" and row.status != "running":
                self._session_finished(row)
        self._update_taskbar()

    def running_progress(self) -> tuple[int, int]:
        """(documents finished, documents in all) over the sessions that still have work."""
        running = [self.sessions.row(r) for r in range(self.sessions.rowCount())]
        running = [row for row in running if row.status == "running"]
        return sum(row.finished for row in running), sum(row.total for row in running)

    def _update_taskbar(self) -> None:
        self.taskbar.show(*self.running_progress())

    def _session_finished(self, row: SessionRow) -> None:
        """A session has no work left: say so in the status bar and, when the window is not in front, the tray."""
        message = f"{row.name}: done, {row.complete} of {row.total} documents" + (
            f", {row.failed} failed" if row.failed else "")
        self.statusBar().showMessage(message, 15000)
        emit_notice = not self.isActiveWindow() and QSystemTrayIcon.isSystemTrayAvailable()
        if emit_notice:
            if self._tray is None:
                self._tray = QSystemTrayIcon(self.windowIcon(), self)
                self._tray.setToolTip(APP_NAME)
            self._tray.show()
            icon = QSystemTrayIcon.MessageIcon.Warning if row.failed else QSystemTrayIcon.MessageIcon.Information
            self._tray.showMessage(APP_NAME, message, icon, 8000)

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
        self.filtered.set_matches(())
        if self.search.text().strip():
            self._search_timer.start()  # the same search, in this session
        self.documents.load(session_id, [])
        self.details.clear()
        self._show_session_header(self.sessions.row_by_id(session_id) if session_id is not None else None)
        if session_id is not None:
            self.owner.load_session(session_id)

    def _documents_loaded(self, session_id: int, rows: list) -> None:
        if session_id == self.current_session:
            self.documents.load(session_id, rows)
            # A session's rows live as long as it is shown: out of the cyclic collector's way, or each
            # of its full passes over them (60 ms at 10,000 documents) stalls the GUI thread.
            gc.freeze()

    def _show_session_header(self, row: SessionRow | None) -> None:
        has = row is not None
        self.stack.setCurrentWidget(self.grid if has else self.empty_page)
        for w in (self.session_title, self.session_info, self.retry_failed_button, self.search,
                  *self.filter_buttons.values()):
            w.setVisible(has)
        self.setWindowTitle(f"{row.name} — {APP_NAME}" if has else APP_NAME)
        self.skipped_line.show_for(self.owner, row.id if row else None, row.name if row else "",
                                   bool(row and row.scanning))
        if not has:
            return
        when = datetime.datetime.fromtimestamp(row.created_at).strftime("%d %b %Y, %H:%M")
        self.session_title.setText(row.name)
        state = "scanning for files" if row.scanning else {
            "running": "processing", "complete": "done", "failed": "done, with failures"}[row.status]
        self.session_info.setText(f"{row.total} document{'s' if row.total != 1 else ''} · added {when} · {state}")
        self._update_counts()
        # Only failures a retry may cure: a permanent one would fail the same way again.
        self.retry_failed_button.setEnabled(row.retryable > 0)
        self.retry_failed_button.setToolTip(
            "Queue every failed job of this session again that a retry may cure" if row.retryable else
            "Nothing here to retry: no retry will cure these failures" if row.failed else "Nothing failed")

    def _update_counts(self) -> None:
        """The filter buttons' counts: the session's, or with a search those of the documents it finds."""
        self._counts_timer.stop()
        row = self.sessions.row_by_id(self.current_session) if self.current_session is not None else None
        if row is None:
            return
        if self.filtered.searching:
            self.filter_bar.set_counts(self.filtered.counts(), self.search.text().strip())
        else:
            self.filter_bar.set_counts({"all": row.total, "queued": row.queued, "running": row.running,
                                        "failed": row.failed, "done": row.complete})

    def set_filter(self, name: str) -> None:
        self.filtered.set_filter(name)
        self.filter_bar.select(name)
        self._update_empty_text()

    def _update_empty_text(self) -> None:
        """What the grid says when the filters leave nothing: why, rather than a blank."""
        if self.search.text().strip():
            text = f"No document here matches “{self.search.text().strip()}”."
        else:
            text = {"all": "", "queued": "Nothing is waiting for a worker in this session.",
                    "running": "No document of this session is being processed right now.",
                    "failed": "Nothing failed in this session.", "done": "Nothing is done yet."}[self.filtered.filter]
        self.grid.empty_text = text
        self.grid.viewport().update()

    def _search_changed(self, text: str) -> None:
        self.filtered.set_search(text)  # file names at once; the text index a moment later
        self._update_empty_text()
        self._update_counts()
        self.other_matches.hide()
        if text.strip():
            self._search_timer.start()
        else:
            self._search_timer.stop()

    def _full_text_search(self) -> None:
        text = self.search.text()
        if not text.strip():
            return

        def found(by_session, text=text, session=self.current_session):
            if isinstance(by_session, Exception) or text != self.search.text() or session != self.current_session:
                return
            self.filtered.set_matches(by_session.get(session, set()))
            self._update_counts()
            self._show_other_matches({s: len(ids) for s, ids in by_session.items() if s != session})
        if self.meaning.toggle.isChecked():
            self.meaning.search(text, found)
        else:
            self.owner.search(text, found)

    def _show_document(self, session_id: int, doc_id: int) -> None:
        """Select a document found by a search (its session first, when another is shown)."""
        if session_id != self.current_session:
            self.select_session(session_id)
            return
        index = self.filtered.mapFromSource(self.documents.index_of(doc_id))
        if index.isValid():
            self.grid.setCurrentIndex(index)

    def _show_other_matches(self, counts: dict[int, int]) -> None:
        """Under the search box: the other sessions where the search text is found, as links to them."""
        links = []
        for session_id, n in sorted(counts.items(), key=lambda item: -item[0]):
            row = self.sessions.row_by_id(session_id)
            if row is not None:
                links.append(f"<a href='session:{session_id}'>{html.escape(row.name)}</a> ({n})")
        self.other_matches.setText("Also found in " + ", ".join(links) if links else "")
        self.other_matches.setVisible(bool(links))

    def _other_match_clicked(self, link: str) -> None:
        if link.startswith("session:"):
            self.select_session(int(link.split(":", 1)[1]))  # the search stays, and runs in that session
            self._search_timer.start()

    def show_jobs(self) -> None:
        """The Jobs view: queues (pause, resume), workers and failed jobs across sessions."""
        if self.jobs_dialog is None:
            from .jobs_view import JobsDialog

            self.jobs_dialog = JobsDialog(self.owner, self)
        self.jobs_dialog.show()
        self.jobs_dialog.raise_()

    def focus_search(self) -> None:
        self.search.setFocus(Qt.FocusReason.ShortcutFocusReason)
        self.search.selectAll()

    def eventFilter(self, obj, event) -> bool:
        if obj is self.search and event.type() == QEvent.Type.KeyPress and event.key() == Qt.Key.Key_Escape:
            self.search.clear()
            self.grid.setFocus(Qt.FocusReason.ShortcutFocusReason)
            return True
        return super().eventFilter(obj, event)

    def cycle_pane(self, step: int) -> None:
        """F6 and Shift+F6: the focus to the next (previous) pane: sessions, documents, details."""
        grid = self.grid if self.stack.currentWidget() is self.grid else self.empty_page.add_files_button
        panes = [self.sessions_view, grid, self.details]
        focus = QApplication.focusWidget()
        inside = [i for i, pane in enumerate(panes) if focus is pane or (focus and pane.isAncestorOf(focus))]
        at = inside[0] if inside else (-1 if step > 0 else 0)
        panes[(at + step) % len(panes)].setFocus(Qt.FocusReason.ShortcutFocusReason)

    # -- documents ---------------------------------------------------------------------
    def selected_rows(self) -> list[DocRow]:
        indexes = self.grid.selectionModel().selectedIndexes()
        if not indexes and self.grid.currentIndex().isValid():
            indexes = [self.grid.currentIndex()]
        return [i.data(RowRole) for i in sorted(indexes, key=lambda i: i.row()) if i.data(RowRole) is not None]

    def _document_selected(self, current: QModelIndex, previous: QModelIndex) -> None:
        self._request_details()

    def _selection_changed(self, *args) -> None:
        rows = self.selected_rows()
        self.retry_action.setEnabled(any(r.retry_job_ids for r in rows) or not rows)

    def _request_details(self) -> None:
        index = self.grid.currentIndex()
        doc_id = index.data(IdRole) if index.isValid() else None
        if doc_id is None:
            self.details.clear()
            return
        self.owner.details(doc_id, lambda details, d=doc_id: self._details_arrived(d, details))

    def _details_arrived(self, doc_id: int, details) -> None:
        index = self.grid.currentIndex()
        if isinstance(details, dict) and index.isValid() and index.data(IdRole) == doc_id:
            self.details.show_details(details)
            # The file may have come back or changed since the tile was read: it follows the details.
            cures = {j["id"] for j in details["jobs"] if j["state"] == "failed" and j.get("retry_cures")}
            if cures != set(index.data(RowRole).retry_job_ids):
                self.owner.refresh_rows([doc_id])

    def _documents_updated(self, ids: set) -> None:
        if self.details.doc_id in ids:
            self._request_details()
        if self.filtered.searching:
            self._counts_timer.start()

    def grid_menu(self, rows: list[DocRow]) -> QMenu:
        """The documents' context menu: Retry only where a retry may cure a failure."""
        menu = QMenu(self)
        menu.addAction(self.open_action)
        menu.addAction(self.show_action)
        menu.addAction(self.copy_action)
        menu.addSeparator()
        if any(r.retry_job_ids for r in rows):
            menu.addAction(self.retry_action)
        if any(r.unfinished_job_ids for r in rows):
            menu.addAction(self.cancel_action)
        if any(not r.unfinished_job_ids for r in rows):
            menu.addAction(self.reprocess_action)
        if len(rows) == 1:
            self.meaning.similar_action.setData(rows[0].id)
            menu.addAction(self.meaning.similar_action)
        return menu

    def _grid_menu(self, pos) -> None:
        rows = self.selected_rows()
        if rows:
            if not self.grid.viewport().rect().contains(pos):  # from the keyboard: at the current tile
                pos = self.grid.visualRect(self.grid.currentIndex()).center()
            self.grid_menu(rows).popup(self.grid.viewport().mapToGlobal(pos))

    def _session_menu(self, pos) -> None:
        index = self.sessions_view.indexAt(pos)
        if not index.isValid():  # from the keyboard (the Menu key): the current session
            index = self.sessions_view.currentIndex()
            pos = self.sessions_view.visualRect(index).center()
        if not index.isValid():
            return
        self.select_session(index.data(IdRole))
        row: SessionRow = index.data(RowRole)
        menu = QMenu(self)
        if row.retryable:
            menu.addAction(self.retry_failed_action)
        if row.queued or row.running:
            menu.addAction(self.cancel_session_action)
        menu.addAction(self.export_json_action)
        menu.addAction(self.export_csv_action)
        menu.addSeparator()
        menu.addAction(self.remove_session_action)
        menu.popup(self.sessions_view.viewport().mapToGlobal(pos))

    # -- getting documents in ------------------------------------------------------------
    def import_paths(self, paths: list[str]) -> None:
        """Add files and folders as a new session (scanned on the owner thread)."""
        paths = [str(Path(p).expanduser()) for p in paths if p]
        if not paths:
            return
        self.importing += 1
        self.busy.show()
        what = Path(paths[0]).name + (f" and {len(paths) - 1} more" if len(paths) > 1 else "")
        self.statusBar().showMessage(f"Adding {what}…")
        self.owner.submit(paths, on_started=self._import_started, on_done=self._imported, on_error=self._imported)

    def _import_started(self, session_id: int) -> None:
        """The new session exists (empty): show it; its documents appear as the scan finds them."""
        self.search.clear()
        self.set_filter("all")  # what is being added, all of it
        self.select_session(session_id)

    def _imported(self, result) -> None:
        self.importing -= 1
        self.busy.setVisible(self.importing > 0)
        if isinstance(result, Exception):
            self.statusBar().showMessage(f"Could not add the files: {result}", 15000)
        else:
            skipped = {k: v for k, v in result["skipped"].items() if v}
            message = "Added a new session"
            if skipped:
                message += "; left out: " + ", ".join(f"{n} {reason.replace('_', ' ')}" for reason, n in
                                                      skipped.items())
            self.statusBar().showMessage(message, 10000)
        self.imported.emit(result)

    def add_files_dialog(self) -> None:
        files, _ = QFileDialog.getOpenFileNames(self, "Add Files", str(Path.home()),
                                                "Images (*.jpg *.jpeg *.jpe *.png *.webp *.gif *.bmp *.tif *.tiff);;"
                                                "All files (*)")
        self.import_paths(files)

    def add_folder_dialog(self) -> None:
        folder = QFileDialog.getExistingDirectory(self, "Add Folder", str(Path.home()))
        if folder:
            self.import_paths([folder])

    def dragEnterEvent(self, event) -> None:
        if local_paths(event.mimeData()):
            event.acceptProposedAction()
            self.overlay.show_over(self.centralWidget())
        else:
            event.ignore()

    def dragMoveEvent(self, event) -> None:
        if local_paths(event.mimeData()):
            event.acceptProposedAction()
        else:
            event.ignore()

    def dragLeaveEvent(self, event) -> None:
        self.overlay.hide()
        event.accept()

    def dropEvent(self, event) -> None:
        self.overlay.hide()
        paths = local_paths(event.mimeData())
        if not paths:
            event.ignore()
            return
        event.acceptProposedAction()
        self.import_paths(paths)

    # -- actions -----------------------------------------------------------------------
    def retry_jobs(self, job_ids) -> None:
        job_ids = list(job_ids)
        if job_ids:
            self.owner.retry(job_ids, on_done=self._retried)

    def retry_documents(self, *doc_ids: int) -> None:
        job_ids = []
        for doc_id in doc_ids:
            row = self.documents.row_by_id(doc_id)
            if row is not None:
                job_ids += row.retry_job_ids
        self.retry_jobs(job_ids)

    def retry_selected(self) -> None:
        selected = self.selected_rows()
        rows = [r for r in selected if r.retry_job_ids]
        if not rows:
            self.statusBar().showMessage("No retry will cure what failed in the selection" if any(
                r.permanent for r in selected) else "Nothing failed in the selection", 5000)
            return
        self.retry_documents(*(r.id for r in rows))

    def retry_session_failed(self) -> None:
        row = self.sessions.row_by_id(self.current_session) if self.current_session is not None else None
        if row is not None and not row.retryable:
            self.statusBar().showMessage("No retry will cure the failures in this session" if row.failed else
                                         "Nothing failed in this session", 5000)
        elif row is not None:
            self.owner.retry(session_id=self.current_session, on_done=self._retried)

    def cancel_selected(self) -> None:
        job_ids = [j for r in self.selected_rows() for j in r.unfinished_job_ids]
        if not job_ids:
            self.statusBar().showMessage("Nothing left to do in the selection", 5000)
            return
        self.owner.cancel(job_ids, on_done=self._cancelled)

    def reprocess_selected(self) -> None:
        rows = [r for r in self.selected_rows() if not r.unfinished_job_ids]
        if not rows:
            self.statusBar().showMessage("Nothing finished in the selection to process again", 5000)
            return
        self.owner.reprocess([r.id for r in rows], on_done=self._retried)

    def cancel_session(self) -> None:
        if self.current_session is not None:
            self.owner.cancel(session_id=self.current_session, on_done=self._cancelled)

    def _cancelled(self, count) -> None:
        if isinstance(count, Exception):
            self.statusBar().showMessage(f"Could not cancel: {count}", 10000)
        else:
            self.statusBar().showMessage(f"Cancelled {count} job{'s' if count != 1 else ''}", 5000)

    def remove_session(self, session_id: int | None = None, confirm: bool = True) -> None:
        """Forget a session and the result files no other session shares (the originals stay)."""
        session_id = self.current_session if session_id is None else session_id
        row = self.sessions.row_by_id(session_id) if session_id is not None else None
        if row is None:
            return
        if confirm:
            answer = QMessageBox.question(
                self, "Remove Session",
                f"Remove the session “{row.name}” ({row.total} documents) from SnapDesk?\n\n"
                "Its thumbnails and results are deleted and its unfinished jobs cancelled. "
                "The original files are not touched.",
                QMessageBox.StandardButton.Cancel | QMessageBox.StandardButton.Yes, QMessageBox.StandardButton.Cancel)
            if answer != QMessageBox.StandardButton.Yes:
                return
        self.owner.remove_session(session_id)

    def _session_removed(self, session_id: int) -> None:
        row = self.sessions.row_by_id(session_id)
        self.sessions.remove(session_id)
        self._update_taskbar()
        if self.current_session == session_id:
            self.current_session = None
            self.documents.load(None, [])
            self.details.clear()
            if self.sessions.rowCount():
                self.select_session(self.sessions.row(0).id)
            else:
                self._show_session_header(None)
        if row is not None:
            self.statusBar().showMessage(f"Removed {row.name}", 5000)

    def _retried(self, count) -> None:
        if isinstance(count, Exception):
            self.statusBar().showMessage(f"Could not retry: {count}", 10000)
        else:
            self.statusBar().showMessage(f"Queued {count} job{'s' if count != 1 else ''} again", 5000)

    def open_original(self) -> None:
        for row in self.selected_rows()[:10]:
            self.open_path(row.path)

    @staticmethod
    def open_path(path: str) -> None:
        QDesktopServices.openUrl(QUrl.fromLocalFile(path))

    def show_in_folder(self, path: str | None = None) -> None:
        paths = [path] if path else [r.path for r in self.selected_rows()[:1]]
        for p in paths:  # the file selected in its folder where the platform can, else the folder
            if sys.platform == "win32":
                QProcess.startDetached("explorer", ["/select," + os.path.normpath(p)])
            elif sys.platform == "darwin":
                QProcess.startDetached("open", ["-R", p])
            else:
                QDesktopServices.openUrl(QUrl.fromLocalFile(os.path.dirname(p)))

    def copy_paths(self, path: str | None = None) -> None:
        paths = [path] if path else [r.path for r in self.selected_rows()]
        if paths:
            QGuiApplication.clipboard().setText("\n".join(paths))
            self.statusBar().showMessage("Copied " + ("the path" if len(paths) == 1 else f"{len(paths)} paths"), 3000)

    def export_dialog(self, fmt: str) -> None:
        row = self.sessions.row_by_id(self.current_session) if self.current_session is not None else None
        if row is None:
            self.statusBar().showMessage("Select a session to export", 5000)
            return
        suggested = str(Path.home() / f"{row.name}.{fmt}")
        path, _ = QFileDialog.getSaveFileName(self, f"Export Session as {fmt.upper()}", suggested,
                                              f"{fmt.upper()} (*.{fmt})")
        if path:
            self.export_session(path, fmt)

    def export_session(self, path: str, fmt: str, on_done=None) -> None:
        def done(result):
            if isinstance(result, Exception):
                self.statusBar().showMessage(f"Could not export: {result}", 10000)
            else:
                self.statusBar().showMessage(f"Exported to {result}", 8000)
            if on_done:
                on_done(result)
        self.owner.export(self.current_session, path, fmt, on_done=done, on_error=done)

"""Getting documents in: files and folders dropped on the window, or chosen in the Add dialogs,
become a new session. The scan runs off the GUI thread (``operations.add_paths``); the session
shows at once, and its documents as the scan finds them."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from PySide6.QtCore import QEvent, QObject
from PySide6.QtWidgets import QFileDialog

from .. import operations
from .base import Window

#: What the Add Files dialog offers first.
IMAGE_FILTER = "Images (*.jpg *.jpeg *.jpe *.png *.webp *.gif *.bmp *.tif *.tiff);;All files (*)"


def local_paths(mime: Any) -> list[str]:
    if mime is None or not mime.hasUrls():
        return []
    return [url.toLocalFile() for url in mime.urls() if url.isLocalFile() and url.toLocalFile()]


class Imports(QObject):
    """Adds what is dropped on the window (it filters the window's drag and drop events) or chosen."""

    def __init__(self, window: Window):
        super().__init__(window)
        self._window = window
        window.setAcceptDrops(True)
        window.installEventFilter(self)

    def import_paths(self, paths: list[str]) -> None:
        """Add files and folders as a new session (scanned off the GUI thread)."""
        w = self._window
        paths = [str(Path(p).expanduser()) for p in paths if p]
        if not paths:
            return
        w.importing += 1
        w.busy.show()
        what = Path(paths[0]).name + (f" and {len(paths) - 1} more" if len(paths) > 1 else "")
        w.statusBar().showMessage(f"Adding {what}…")
        operations.add_paths(w.owner, paths, started=self._started).success(self._done).failure(self._failed).run()

    def _started(self, session_id: int) -> None:
        """The new session exists (empty): show it; its documents appear as the scan finds them."""
        self._window.header.search.clear()
        self._window.set_filter("all")  # what is being added, all of it
        self._window.select_session(session_id)

    def _ended(self) -> None:
        self._window.importing -= 1
        self._window.busy.setVisible(self._window.importing > 0)

    def _done(self, result: dict) -> None:
        self._ended()
        skipped = {k: v for k, v in result["skipped"].items() if v}
        message = "Added a new session"
        if skipped:
            message += "; left out: " + ", ".join(f"{n} {reason.replace('_', ' ')}" for reason, n in skipped.items())
        self._window.statusBar().showMessage(message, 10000)
        self._window.imported.emit(result)

    def _failed(self, error: Exception) -> None:
        self._ended()
        self._window.statusBar().showMessage(f"Could not add the files: {error}", 15000)
        self._window.imported.emit(error)

    def add_files_dialog(self) -> None:
        files, _ = QFileDialog.getOpenFileNames(self._window, "Add Files", str(Path.home()), IMAGE_FILTER)
        self.import_paths(files)

    def add_folder_dialog(self) -> None:
        folder = QFileDialog.getExistingDirectory(self._window, "Add Folder", str(Path.home()))
        if folder:
            self.import_paths([folder])

    # -- drag and drop -------------------------------------------------------------------
    def eventFilter(self, obj: QObject, event: QEvent) -> bool:
        kind = event.type()
        if obj is not self._window or kind not in (QEvent.Type.DragEnter, QEvent.Type.DragMove,
                                                   QEvent.Type.DragLeave, QEvent.Type.Drop):
            return super().eventFilter(obj, event)
        overlay = self._window.overlay
        if kind == QEvent.Type.DragLeave:
            overlay.hide()
            event.accept()
            return True
        paths = local_paths(event.mimeData())  # type: ignore[attr-defined]
        if kind == QEvent.Type.Drop:
            overlay.hide()
        if not paths:
            event.ignore()
            return True
        event.acceptProposedAction()  # type: ignore[attr-defined]
        if kind == QEvent.Type.DragEnter:
            overlay.show_over(self._window.centralWidget())
        elif kind == QEvent.Type.Drop:
            self.import_paths(paths)
        return True

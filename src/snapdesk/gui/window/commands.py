"""What the person asks of the selected documents and the shown session: retry, cancel, process
again, remove, export, open, show in the folder, copy the path. Each runs as one of
``operations``' functions and says in the status bar what it did, or why it did nothing."""

from __future__ import annotations

import os
import sys
from collections.abc import Callable, Iterable
from pathlib import Path
from typing import Any

from PySide6.QtCore import QProcess, QUrl
from PySide6.QtGui import QDesktopServices, QGuiApplication
from PySide6.QtWidgets import QFileDialog, QMessageBox

from .. import operations
from .base import Window


def _jobs(count: int) -> str:
    return f"{count} job{'s' if count != 1 else ''}"


class Commands:
    """The window's commands on documents and sessions; the actions and buttons call these."""

    def __init__(self, window: Window):
        self.window = window

    def _say(self, message: str, ms: int) -> None:
        self.window.statusBar().showMessage(message, ms)

    def _retried(self, count: int) -> None:
        self._say(f"Queued {_jobs(count)} again", 5000)

    def _cancelled(self, count: int) -> None:
        self._say(f"Cancelled {_jobs(count)}", 5000)

    # -- retry, cancel, process again ----------------------------------------------------
    def retry_jobs(self, job_ids: Iterable[int]) -> None:
        job_ids = list(job_ids)
        if job_ids:
            operations.retry(self.window.owner, job_ids).success(self._retried).run()

    def retry_documents(self, *doc_ids: int) -> None:
        job_ids: list[int] = []
        for doc_id in doc_ids:
            row = self.window.documents.row_by_id(doc_id)
            if row is not None:
                job_ids += row.retry_job_ids
        self.retry_jobs(job_ids)

    def retry_selected(self) -> None:
        selected = self.window.selected_rows()
        rows = [r for r in selected if r.retry_job_ids]
        if not rows:
            self._say("No retry will cure what failed in the selection" if any(r.permanent for r in selected)
                      else "Nothing failed in the selection", 5000)
            return
        self.retry_documents(*(r.id for r in rows))

    def retry_session_failed(self) -> None:
        session_id = self.window.current_session
        row = self.window.sessions.row_by_id(session_id) if session_id is not None else None
        if row is not None and not row.retryable:
            self._say("No retry will cure the failures in this session" if row.failed else
                      "Nothing failed in this session", 5000)
        elif row is not None:
            operations.retry_failed(self.window.owner, session_id).success(self._retried).run()

    def cancel_selected(self) -> None:
        job_ids = [j for r in self.window.selected_rows() for j in r.unfinished_job_ids]
        if not job_ids:
            self._say("Nothing left to do in the selection", 5000)
            return
        operations.cancel(self.window.owner, job_ids).success(self._cancelled).run()

    def cancel_session(self) -> None:
        if self.window.current_session is not None:
            operations.cancel_session(self.window.owner, self.window.current_session).success(self._cancelled).run()

    def reprocess_selected(self) -> None:
        rows = [r for r in self.window.selected_rows() if not r.unfinished_job_ids]
        if not rows:
            self._say("Nothing finished in the selection to process again", 5000)
            return
        operations.reprocess(self.window.owner, [r.id for r in rows]).success(self._retried).run()

    # -- sessions ------------------------------------------------------------------------
    def remove_session(self, session_id: int | None = None, confirm: bool = True) -> None:
        """Forget a session and the result files no other session shares (the originals stay)."""
        session_id = self.window.current_session if session_id is None else session_id
        row = self.window.sessions.row_by_id(session_id) if session_id is not None else None
        if row is None:
            return
        if confirm:
            answer = QMessageBox.question(
                self.window, "Remove Session",
                f"Remove the session “{row.name}” ({row.total} documents) from SnapDesk?\n\n"
                "Its thumbnails and results are deleted and its unfinished jobs cancelled. "
                "The original files are not touched.",
                QMessageBox.StandardButton.Cancel | QMessageBox.StandardButton.Yes, QMessageBox.StandardButton.Cancel)
            if answer != QMessageBox.StandardButton.Yes:
                return
        operations.remove_session(self.window.owner, row.id).run()  # the window hears sessionRemoved

    def export_dialog(self, fmt: str) -> None:
        session_id = self.window.current_session
        row = self.window.sessions.row_by_id(session_id) if session_id is not None else None
        if row is None:
            self._say("Select a session to export", 5000)
            return
        suggested = str(Path.home() / f"{row.name}.{fmt}")
        path, _ = QFileDialog.getSaveFileName(self.window, f"Export Session as {fmt.upper()}", suggested,
                                              f"{fmt.upper()} (*.{fmt})")
        if path:
            self.export_session(path, fmt)

    def export_session(self, path: str, fmt: str, on_done: Callable[[Any], None] | None = None) -> None:
        """Write the shown session's report; ``on_done`` gets the path, or the exception it failed with."""
        def exported(written: str) -> None:
            self._say(f"Exported to {written}", 8000)
            if on_done:
                on_done(written)

        def failed(error: Exception) -> None:
            self._say(f"Could not export: {error}", 10000)
            if on_done:
                on_done(error)
        session_id = self.window.current_session
        if session_id is None:
            failed(ValueError("no session is shown"))
            return
        operations.export_session(self.window.owner, session_id, path, fmt).success(exported).failure(failed).run()

    # -- the files -----------------------------------------------------------------------
    def open_original(self) -> None:
        for row in self.window.selected_rows()[:10]:
            self.open_path(row.path)

    @staticmethod
    def open_path(path: str) -> None:
        QDesktopServices.openUrl(QUrl.fromLocalFile(path))

    def show_in_folder(self, path: str | None = None) -> None:
        paths = [path] if path else [r.path for r in self.window.selected_rows()[:1]]
        for p in paths:  # the file selected in its folder where the platform can, else the folder
            if sys.platform == "win32":
                QProcess.startDetached("explorer", ["/select," + os.path.normpath(p)])
            elif sys.platform == "darwin":
                QProcess.startDetached("open", ["-R", p])
            else:
                QDesktopServices.openUrl(QUrl.fromLocalFile(os.path.dirname(p)))

    def copy_paths(self, path: str | None = None) -> None:
        paths = [path] if path else [r.path for r in self.window.selected_rows()]
        if paths:
            QGuiApplication.clipboard().setText("\n".join(paths))
            self._say("Copied " + ("the path" if len(paths) == 1 else f"{len(paths)} paths"), 3000)

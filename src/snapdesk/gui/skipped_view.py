"""The files a session's import left out, named: a line under the session's title ("12 files skipped —
Show") and the small dialog it opens, listing each path with its reason.

The list is read on the owner thread (the GUI thread never waits on the DB) when the shown session
changes or its scan ends, never on every repaint of the header. The library names at most
``importer.SKIPPED_PATHS_KEPT`` files a session; past that the line says how many more were only counted.
"""

from __future__ import annotations

import html
from typing import Any

from PySide6.QtCore import Qt
from PySide6.QtWidgets import (
    QDialog,
    QDialogButtonBox,
    QLabel,
    QTreeWidget,
    QTreeWidgetItem,
    QVBoxLayout,
    QWidget,
)

from . import operations

#: What each reason is called in the window.
REASON_TEXT = {"unsupported": "Unsupported type", "empty": "Empty", "too_large": "Too large", "hidden": "Hidden",
               "unreadable": "Unreadable", "missing": "Missing", "duplicate": "Duplicate",
               "interrupted": "Scan interrupted"}


class SkippedDialog(QDialog):
    """Each skipped file of a session: its path, its reason, and the sentence that says why."""

    def __init__(self, name: str, skipped: dict[str, Any], parent: QWidget | None = None):
        super().__init__(parent)
        self.setWindowTitle(f"Skipped in {name}")
        self.resize(760, 420)
        layout = QVBoxLayout(self)
        files = skipped["files"]
        more = skipped["total"] - len(files)
        intro = QLabel(f"{_files(skipped['total'])} left out of this session"
                       + (f" ({more} more were counted but not named)." if more > 0 else "."))
        intro.setWordWrap(True)
        layout.addWidget(intro)
        self.table = QTreeWidget()
        self.table.setRootIsDecorated(False)
        self.table.setUniformRowHeights(True)
        self.table.setHeaderLabels(["File", "Reason", "Why"])
        self.table.setAccessibleName("Skipped files")
        self.table.addTopLevelItems([QTreeWidgetItem([path, REASON_TEXT.get(reason, reason), detail])
                                     for path, reason, detail in files])
        self.table.setColumnWidth(0, 380)
        self.table.setColumnWidth(1, 120)
        layout.addWidget(self.table)
        buttons = QDialogButtonBox(QDialogButtonBox.StandardButton.Close)
        buttons.rejected.connect(self.reject)
        layout.addWidget(buttons)

    def listed(self) -> list[tuple[str, str]]:
        """(file, reason) as the dialog shows them, top to bottom."""
        return [(self.table.topLevelItem(i).text(0), self.table.topLevelItem(i).text(1))
                for i in range(self.table.topLevelItemCount())]


class SkippedLine(QLabel):
    """"12 files skipped — Show" under the session's title; hidden when nothing was skipped."""

    def __init__(self, parent: QWidget | None = None):
        super().__init__(parent)
        self.setObjectName("sessionInfo")
        self.setTextFormat(Qt.TextFormat.RichText)
        self.setTextInteractionFlags(Qt.TextInteractionFlag.LinksAccessibleByMouse
                                     | Qt.TextInteractionFlag.LinksAccessibleByKeyboard)
        self.linkActivated.connect(lambda _link: self.open_dialog())
        self.skipped: dict[str, Any] | None = None
        self.dialog: SkippedDialog | None = None
        self._shown: tuple[int, bool] | None = None
        self._name = ""
        self.hide()

    def show_for(self, owner: Any, session_id: int | None, name: str = "", scanning: bool = False) -> None:
        """Follow the session on show: read its skipped files again when it changes or its scan ends."""
        self._name = name
        key = None if session_id is None else (session_id, scanning)
        if key == self._shown:
            return
        self._shown = key
        if session_id is None or scanning:  # the list is written when the scan ends
            self.skipped = None
            self.hide()
            return
        operations.skipped_files(owner, session_id, parent=self).success(self._read).run()

    def _read(self, skipped: dict[str, Any]) -> None:
        if self._shown is None or skipped["session_id"] != self._shown[0]:
            return  # a session no longer shown
        self.skipped = skipped
        if not skipped["total"]:
            self.hide()
            return
        self.setText(f"{html.escape(_files(skipped['total']))} skipped — <a href='show'>Show</a>")
        self.setAccessibleName(f"{_files(skipped['total'])} skipped: show them")
        self.show()

    def open_dialog(self) -> SkippedDialog | None:
        if not self.skipped:
            return None
        self.dialog = SkippedDialog(self._name, self.skipped, self.window())
        self.dialog.show()
        return self.dialog


def _files(n: int) -> str:
    return f"{n} file{'s' if n != 1 else ''}"

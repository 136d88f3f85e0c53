"""What the window shows before there is any session: what to drop, what happens then, and
where the results are kept. When the library cannot be opened, it says why instead."""

from __future__ import annotations

import html

from PySide6.QtCore import Qt, Signal
from PySide6.QtWidgets import QHBoxLayout, QLabel, QPushButton, QSizePolicy, QVBoxLayout, QWidget

from ..config import Settings

#: What each job type does, as a person would say it.
JOB_WORDS = {"thumbnail": "makes a thumbnail", "ocr": "reads its text", "summary": "writes a short summary",
             "describe": "describes what a picture shows", "embed": "files it by meaning"}
KINDS_TEXT = ("Photos and scans (JPEG, PNG, HEIC, AVIF, WebP, GIF, TIFF, BMP, JPEG 2000, PSD), camera RAW "
              "(DNG, CR2, CR3, NEF, ARW, ORF, RW2, RAF), videos (MP4, MOV, M4V, MKV, WebM, AVI) and PDF files, "
              "or whole folders of them.")


def what_happens(settings: Settings) -> str:
    """One sentence: what SnapDesk does with each document, from the job types enabled."""
    enabled = settings.enabled_job_types
    words = [w for name, w in JOB_WORDS.items() if name in enabled]
    if "summary" in enabled and "ocr" not in enabled:
        words.remove(JOB_WORDS["summary"])  # a summary is made from the text: without OCR there is none
    if not words:
        return "SnapDesk lists each document; no job is enabled to process them (see Settings)."
    said = words[0] if len(words) == 1 else ", ".join(words[:-1]) + " and " + words[-1]
    text = f"For each document SnapDesk {said}, in the background."
    if "summary" in enabled and "ocr" in enabled and not settings.openai_base_url:
        text += " With no language model set up, summaries are made offline from the text."
    return text


class EmptyState(QWidget):
    """The first-run page in place of the document grid."""

    addFiles = Signal()
    addFolder = Signal()
    openLibraryFolder = Signal()

    def __init__(self, settings: Settings, parent=None):
        super().__init__(parent)
        self.setObjectName("emptyState")
        self.setAccessibleName("No session yet")
        outer = QVBoxLayout(self)
        outer.addStretch(1)
        column = QVBoxLayout()
        column.setSpacing(10)

        self.title = QLabel("Drop photos, scans or PDFs here")
        self.title.setObjectName("emptyTitle")
        self.title.setAlignment(Qt.AlignmentFlag.AlignCenter)
        self.title.setWordWrap(True)
        self.kinds = QLabel(KINDS_TEXT)
        self.what = QLabel()
        self.session = QLabel("Each drop becomes a session in the list on the left. Its documents appear at "
                              "once and fill in as the work is done; a failure says why, and Retry is there "
                              "when a retry can help. Your files are never changed or moved.")
        self.where = QLabel()
        self.where.setTextInteractionFlags(Qt.TextInteractionFlag.TextSelectableByMouse)
        for label in (self.kinds, self.what, self.session, self.where):
            label.setAlignment(Qt.AlignmentFlag.AlignCenter)
            label.setWordWrap(True)
        column.addWidget(self.title)
        column.addWidget(self.kinds)
        column.addWidget(self.what)
        column.addWidget(self.session)

        buttons = QHBoxLayout()
        buttons.addStretch(1)
        self.add_files_button = QPushButton("Add Files…")
        self.add_files_button.setToolTip("Ctrl+O")
        self.add_files_button.clicked.connect(self.addFiles)
        self.add_folder_button = QPushButton("Add Folder…")
        self.add_folder_button.setToolTip("Ctrl+Shift+O")
        self.add_folder_button.clicked.connect(self.addFolder)
        self.add_files_button.setDefault(True)
        buttons.addWidget(self.add_files_button)
        buttons.addWidget(self.add_folder_button)
        buttons.addStretch(1)
        column.addSpacing(6)
        column.addLayout(buttons)
        column.addSpacing(10)
        column.addWidget(self.where)
        folder_row = QHBoxLayout()
        folder_row.addStretch(1)
        self.open_folder_button = QPushButton("Open Library Folder")
        self.open_folder_button.clicked.connect(self.openLibraryFolder)
        folder_row.addWidget(self.open_folder_button)
        folder_row.addStretch(1)
        column.addLayout(folder_row)

        holder = QWidget()
        holder.setLayout(column)
        holder.setMaximumWidth(620)
        holder.setSizePolicy(QSizePolicy.Policy.Preferred, QSizePolicy.Policy.Maximum)
        row = QHBoxLayout()
        row.addStretch(1)
        row.addWidget(holder, 4)
        row.addStretch(1)
        outer.addLayout(row)
        outer.addStretch(2)
        self.set_settings(settings)

    def set_settings(self, settings: Settings) -> None:
        """Say what this library does and where it keeps its results."""
        self.title.setText("Drop photos, scans or PDFs here")
        self.kinds.setText(KINDS_TEXT)
        self.what.setText(what_happens(settings))
        for w in (self.kinds, self.what, self.session, self.add_files_button, self.add_folder_button,
                  self.open_folder_button):
            w.show()
        self.where.setText(f"Thumbnails, text and summaries are kept in the library folder<br>"
                           f"<b>{html.escape(str(settings.data_dir))}</b><br>"
                           f"(change it in File › Settings). The originals stay where they are.")
        self.setAccessibleDescription(" ".join(w.text() for w in (self.kinds, self.what, self.session))
                                      + f" Results are kept in {settings.data_dir}.")

    def show_error(self, title: str, message: str) -> None:
        """The library cannot be opened: why, and nothing to add to."""
        self.title.setText(title)
        self.what.setText(message)
        for w in (self.kinds, self.session, self.add_files_button, self.add_folder_button):
            w.hide()
        self.setAccessibleDescription(message)

    def focus_first(self) -> None:
        self.add_files_button.setFocus(Qt.FocusReason.OtherFocusReason)

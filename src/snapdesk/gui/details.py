"""The details panel: a preview, the file's facts, the photo's metadata (a Live Photo's clip, taken, camera,
lens, exposure, place, colour profile: rows shown only when known), what the picture shows (its description,
tags and colours), what its text says, and each job's timeline with a Retry button."""

from __future__ import annotations

import datetime
import html
import os

from PySide6.QtCore import Qt, Signal
from PySide6.QtGui import QPixmap
from PySide6.QtWidgets import (
    QFormLayout,
    QFrame,
    QHBoxLayout,
    QLabel,
    QScrollArea,
    QToolButton,
    QSizePolicy,
    QVBoxLayout,
    QWidget,
)

from .delegates import STATUS_COLOR
from .detail_sections import DescriptionSection, JobCard, ResultSection
from .models import STATUS_TEXT

def human_size(n: int | None) -> str:
    if n is None:
        return "–"
    size = float(n)
    for unit in ("bytes", "KB", "MB", "GB"):
        if size < 1024 or unit == "GB":
            return f"{size:.0f} {unit}" if unit == "bytes" else f"{size:.1f} {unit}"
        size /= 1024
    return f"{n} bytes"


def metadata_rows(metadata: dict) -> list[tuple[str, str]]:
    """The details panel's rows for a photo's metadata (the thumbnail job's, processors/metadata.py):
    only those it has, in the order a photographer reads them."""
    rows = []
    if metadata.get("taken"):
        taken = datetime.datetime.fromisoformat(metadata["taken"])
        text = f"{taken.day} {taken:%B %Y, %H:%M:%S}"  # no %-d: Windows' strftime lacks it
        rows.append(("Taken", f"{text} (UTC{taken.strftime('%z')[:3]}:{taken.strftime('%z')[3:]})"
                     if taken.tzinfo else text))
    if metadata.get("camera"):
        rows.append(("Camera", metadata["camera"]))
    if metadata.get("lens"):
        rows.append(("Lens", metadata["lens"]))
    exposure = [metadata.get("exposure"), metadata.get("f_number") and f"f/{metadata['f_number']:g}",
                metadata.get("iso") and f"ISO {metadata['iso']}",
                metadata.get("focal_length") and f"{metadata['focal_length']:g} mm"]
    if any(exposure):
        rows.append(("Exposure", ", ".join(str(e) for e in exposure if e)))
    gps = metadata.get("gps") or {}
    position = ""
    if "lat" in gps and "lon" in gps:
        position = f"{gps['lat']:.5f}, {gps['lon']:.5f}"
        position += f" ({gps['altitude']:g} m)" if gps.get("altitude") is not None else ""
    name = metadata.get("place_name") or ""  # the names the file carries (IPTC, XMP), never looked up
    if name or position:
        rows.append(("Place", f"{name} — {position}" if name and position else name or position))
    if metadata.get("profile"):
        rows.append(("Profile", metadata["profile"]))
    return rows


def live_photo_text(live: dict) -> str:
    """A Live Photo's row: its clip's length and file ("2.5 s clip, IMG_0001.MOV")."""
    name = os.path.basename(live["clip"])
    return f"{live['duration']:.1f} s clip, {name}" if live.get("duration") is not None else f"clip, {name}"


class DetailsPanel(QScrollArea):
    """What the selected document is, and what happened to it."""

    retryJob = Signal(int)
    #: A tag of the description was clicked: the window searches for it.
    tagClicked = Signal(str)
    openFile = Signal(str)
    showInFolder = Signal(str)
    copyPath = Signal(str)

    PREVIEW_WIDTH = 300
    PREVIEW_HEIGHT = 260

    def __init__(self, images, parent=None):
        super().__init__(parent)
        self.images = images
        self.details: dict | None = None
        self.setWidgetResizable(True)
        self.setFrameShape(QFrame.Shape.NoFrame)
        self.setMinimumWidth(240)
        self.setAccessibleName("Details of the selected document")
        body = QWidget()
        self.setWidget(body)
        self.layout_ = QVBoxLayout(body)
        self.layout_.setContentsMargins(14, 14, 14, 14)
        self.layout_.setSpacing(10)

        self.empty = QLabel("Select a document to see its details.")
        self.empty.setAlignment(Qt.AlignmentFlag.AlignCenter)
        self.empty.setWordWrap(True)
        self.empty.setObjectName("muted")
        self.layout_.addWidget(self.empty)

        self.content = QWidget()
        content = QVBoxLayout(self.content)
        content.setContentsMargins(0, 0, 0, 0)
        content.setSpacing(10)
        self.preview = QLabel()
        self.preview.setAlignment(Qt.AlignmentFlag.AlignCenter)
        self.preview.setMinimumHeight(180)
        self.preview.setObjectName("preview")
        self.preview.setSizePolicy(QSizePolicy.Policy.Ignored, QSizePolicy.Policy.Preferred)
        content.addWidget(self.preview)
        self.title = QLabel()
        self.title.setObjectName("title")
        self.title.setWordWrap(True)
        content.addWidget(self.title)
        self.status = QLabel()
        content.addWidget(self.status)

        form = QFormLayout()
        form.setLabelAlignment(Qt.AlignmentFlag.AlignLeft)
        form.setFieldGrowthPolicy(QFormLayout.FieldGrowthPolicy.AllNonFixedFieldsGrow)
        self.path = QLabel()
        self.path.setWordWrap(True)
        self.path.setTextInteractionFlags(Qt.TextInteractionFlag.TextSelectableByMouse)
        self.size = QLabel()
        self.dimensions = QLabel()
        form.addRow("File", self.path)
        form.addRow("Size", self.size)
        form.addRow("Dimensions", self.dimensions)
        content.addLayout(form)
        #: The photo's metadata, one row a fact it has (see ``metadata_rows``).
        self.metadata_form = QFormLayout()
        self.metadata_form.setLabelAlignment(Qt.AlignmentFlag.AlignLeft)
        self.metadata_form.setFieldGrowthPolicy(QFormLayout.FieldGrowthPolicy.AllNonFixedFieldsGrow)
        content.addLayout(self.metadata_form)

        buttons = QHBoxLayout()
        for text, signal in (("Open", self.openFile), ("Show in Folder", self.showInFolder),
                             ("Copy Path", self.copyPath)):
            b = QToolButton()  # a tool button is as wide as its text: the row fits a narrow panel
            b.setText(text)
            b.setFocusPolicy(Qt.FocusPolicy.StrongFocus)  # reached by Tab, as push buttons are
            b.clicked.connect(lambda _=False, s=signal: self.details and s.emit(self.details["path"]))
            buttons.addWidget(b)
        buttons.addStretch(1)
        content.addLayout(buttons)

        self.results_box = QVBoxLayout()
        self.results_box.setSpacing(10)
        content.addLayout(self.results_box)
        jobs_title = QLabel("Jobs")
        jobs_title.setObjectName("section")
        content.addWidget(jobs_title)
        self.jobs_box = QVBoxLayout()
        self.jobs_box.setSpacing(8)
        content.addLayout(self.jobs_box)
        self.layout_.addWidget(self.content)
        self.layout_.addStretch(1)
        self.content.hide()
        images.imageReady.connect(self._image_ready)
        # Never sideways: the panel is at least as wide as its widest row (the buttons), and the
        # rest wraps or is elided within it.
        self.setHorizontalScrollBarPolicy(Qt.ScrollBarPolicy.ScrollBarAlwaysOff)
        margins = self.layout_.contentsMargins()
        self.setMinimumWidth(max(240, buttons.minimumSize().width() + margins.left() + margins.right()
                                 + self.verticalScrollBar().sizeHint().width() + 2))

    @property
    def doc_id(self) -> int | None:
        return self.details["id"] if self.details else None

    def clear(self) -> None:
        self.details = None
        self.content.hide()
        self.empty.show()
        self.verticalScrollBar().setValue(0)

    def show_details(self, details: dict | None) -> None:
        if not details:
            self.clear()
            return
        if details == self.details:
            return  # nothing new: keep the cards (and the text selection, the scroll position) as they are
        same = self.details is not None and self.details["id"] == details["id"]
        self.details = details
        if not same:  # another document starts at its top, preview first
            self.verticalScrollBar().setValue(0)
        self.empty.hide()
        self.content.show()
        name = os.path.basename(details["path"])
        self.title.setText(f"<b>{html.escape(name)}</b>")
        self.preview.setAccessibleName(f"Preview of {name}")
        color = STATUS_COLOR.get(details["status"])
        self.status.setText(f"<span style='color:{color.name() if color else 'gray'}'>"
                            f"{STATUS_TEXT.get(details['status'], details['status'])}</span>")
        self.path.setText(details["path"])
        self.size.setText(human_size(details["size"]))
        self.dimensions.setText(f"{details['width']} × {details['height']} px" if details.get("width") else "–")
        if not same:
            self.preview.clear()
            self.preview.setText("")
        self._update_preview()
        self._show_metadata(details)
        for box in (self.results_box, self.jobs_box):
            while box.count():
                item = box.takeAt(0)
                if item.widget():
                    item.widget().deleteLater()
        jobs = sorted(details["jobs"], key=lambda j: {"summary": 0, "ocr": 1}.get(j["type"], 2))
        self.results = [DescriptionSection(job, self.tagClicked.emit) for job in jobs if DescriptionSection.wanted(job)]
        self.results += [ResultSection(job) for job in jobs if ResultSection.wanted(job)]
        for section in self.results:
            self.results_box.addWidget(section)
        self.cards = []
        for job in details["jobs"]:
            card = JobCard(job, self.retryJob.emit)
            self.cards.append(card)
            self.jobs_box.addWidget(card)

    def _show_metadata(self, details: dict) -> None:
        while self.metadata_form.rowCount():
            self.metadata_form.removeRow(0)
        thumbnail = next((j for j in details["jobs"] if j["type"] == "thumbnail" and j["state"] == "complete"), None)
        rows = metadata_rows(((thumbnail or {}).get("result") or {}).get("metadata") or {})
        if details.get("live_photo"):
            rows.insert(0, ("Live Photo", live_photo_text(details["live_photo"])))
        for label, text in rows:
            value = QLabel(text)
            value.setTextFormat(Qt.TextFormat.PlainText)  # the file's own words (a place, a camera), never markup
            value.setWordWrap(True)
            value.setTextInteractionFlags(Qt.TextInteractionFlag.TextSelectableByMouse)
            value.setAccessibleName(label)
            self.metadata_form.addRow(label, value)

    def metadata_shown(self) -> dict[str, str]:
        """The metadata rows on show, label -> text (what a person reads in the panel)."""
        shown = {}
        for r in range(self.metadata_form.rowCount()):
            label = self.metadata_form.itemAt(r, QFormLayout.ItemRole.LabelRole).widget()
            value = self.metadata_form.itemAt(r, QFormLayout.ItemRole.FieldRole).widget()
            shown[label.text()] = value.text()
        return shown

    def _thumb_path(self, size: str) -> str | None:
        for job in (self.details or {}).get("jobs", []):
            if job["type"] == "thumbnail" and job["state"] == "complete":
                return ((job.get("result") or {}).get("thumbnails") or {}).get(size, {}).get("path")
        return None

    def _update_preview(self) -> None:
        if not self.details:
            return
        pixmap: QPixmap | None = self.images.get("md", self.details["id"], self._thumb_path("md"))
        if pixmap is None:
            blur = None
            for job in self.details["jobs"]:
                if job["type"] == "thumbnail" and job["state"] == "complete":
                    blur = (job.get("result") or {}).get("blurhash")
            small = self.images.get("blur", self.details["id"], blur) if blur else None
            if small is not None and self.details.get("width"):
                w = self.PREVIEW_WIDTH
                h = int(w * self.details["height"] / self.details["width"])
                self.preview.setPixmap(self._fit(small.scaled(w, h, Qt.AspectRatioMode.IgnoreAspectRatio,
                                                              Qt.TransformationMode.SmoothTransformation)))
            elif self.preview.pixmap().isNull():
                self.preview.setText("No preview yet" if self.details["status"] != "failed" else "No preview")
            return
        self.preview.setPixmap(self._fit(pixmap))

    def _fit(self, pixmap: QPixmap) -> QPixmap:
        width = max(120, min(self.PREVIEW_WIDTH, self.viewport().width() - 28))
        if pixmap.width() <= width and pixmap.height() <= self.PREVIEW_HEIGHT:
            return pixmap
        return pixmap.scaled(width, self.PREVIEW_HEIGHT, Qt.AspectRatioMode.KeepAspectRatio,
                             Qt.TransformationMode.SmoothTransformation)

    def _image_ready(self, doc_id: int) -> None:
        if doc_id == self.doc_id:
            self._update_preview()

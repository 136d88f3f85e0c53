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
    QPlainTextEdit,
    QPushButton,
    QScrollArea,
    QToolButton,
    QSizePolicy,
    QVBoxLayout,
    QWidget,
)

from .delegates import STATUS_COLOR
from .models import STATUS_TEXT

JOB_STATE_TEXT = {"pending": "Waiting", "queued": "Queued", "processing": "Processing", "complete": "Done",
                  "failed": "Failed", "cancelled": "Cancelled"}
JOB_NAMES = {"thumbnail": "Thumbnails", "ocr": "Text (OCR)", "summary": "Summary", "describe": "Description",
             "embed": "Vector (search by meaning)"}
EVENT_TEXT = {"job:queued": "queued", "job:started": "started", "job:retrying": "will retry",
              "job:complete": "done", "job:failed": "failed", "job:cancelled": "cancelled",
              "lease:expired": "worker lost", "retry": "retry asked", "cancel": "cancel asked",
              "discard": "discarded", "skipped": "skipped"}


def human_size(n: int | None) -> str:
    if n is None:
        return "–"
    size = float(n)
    for unit in ("bytes", "KB", "MB", "GB"):
        if size < 1024 or unit == "GB":
            return f"{size:.0f} {unit}" if unit == "bytes" else f"{size:.1f} {unit}"
        size /= 1024
    return f"{n} bytes"


def _time(ts: float | None) -> str:
    return "–" if ts is None else datetime.datetime.fromtimestamp(ts).strftime("%H:%M:%S")


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


def _ms(ms: int | None) -> str:
    if ms is None:
        return ""
    return f"{ms} ms" if ms < 1000 else f"{ms / 1000:.1f} s"


class JobCard(QFrame):
    """One job: its state, attempts, duration, worker, error and timeline, and a Retry button."""

    def __init__(self, job: dict, on_retry, parent=None):
        super().__init__(parent)
        self.job_id = job["id"]
        self.setObjectName("jobCard")
        self.setFrameShape(QFrame.Shape.StyledPanel)
        layout = QVBoxLayout(self)
        layout.setContentsMargins(10, 8, 10, 8)
        layout.setSpacing(4)
        head = QHBoxLayout()
        color = STATUS_COLOR.get({"processing": "running", "pending": "queued"}.get(job["state"], job["state"]))
        title = QLabel(f"<b>{html.escape(JOB_NAMES.get(job['type'], job['type'].capitalize()))}</b> "
                       f"<span style='color:{color.name() if color else '#888'}'>"
                       f"{JOB_STATE_TEXT.get(job['state'], job['state'])}</span>")
        head.addWidget(title, 1)
        ended = job["state"] in ("failed", "cancelled")
        # A permanent failure gets no Retry (it would fail the same way), unless its file changed since.
        cures = job.get("retry_cures", ended and job.get("error_kind") != "permanent")
        self.permanent = ended and job.get("error_kind") == "permanent" and not cures
        self.retry_button = QPushButton("Retry")
        self.retry_button.setObjectName(f"retryJob{job['id']}")
        self.retry_button.setAccessibleName(f"Retry the {JOB_NAMES.get(job['type'], job['type'])} job")
        self.retry_button.setEnabled(cures)
        self.retry_button.setVisible(cures)
        self.retry_button.clicked.connect(lambda: on_retry(job["id"]))
        head.addWidget(self.retry_button)
        self.permanent_label = QLabel("Permanent")
        self.permanent_label.setObjectName("permanent")
        self.permanent_label.setToolTip("No retry will cure this. If the file is fixed or replaced, Retry comes back")
        self.permanent_label.setVisible(self.permanent)
        head.addWidget(self.permanent_label)
        layout.addLayout(head)

        # A permanent failure gets no further attempts: "of 3" would promise two more.
        facts = [f"attempt {job['attempts']}" + ("" if self.permanent else f" of {job['max_attempts']}")]
        if job.get("duration_ms") is not None:
            facts.append(_ms(job["duration_ms"]))
        if job.get("worker"):
            facts.append(f"on {job['worker']}")
        if job.get("reused"):
            facts.append("result reused")
        if job["state"] == "processing" and job.get("progress"):
            facts.append(f"{job['progress']}%")
        info = QLabel(" · ".join(facts))
        info.setObjectName("muted")
        layout.addWidget(info)
        if job.get("error"):
            if self.permanent and job["state"] == "failed":
                note = " No retry will cure this."
            elif job.get("error_kind") == "permanent" and cures:
                note = " The file has changed since it was added: Retry processes its new content."
            else:
                note = ""
            error = QLabel(job["error"] + ("." if note and not job["error"].endswith(".") else "") + note)
            error.setTextFormat(Qt.TextFormat.PlainText)
            error.setObjectName("error")
            error.setWordWrap(True)
            error.setTextInteractionFlags(Qt.TextInteractionFlag.TextSelectableByMouse)
            layout.addWidget(error)
        if job.get("timeline"):
            lines = []
            for e in job["timeline"]:
                parts = [f"<span style='color:gray'>{_time(e['at'])}</span>",
                         f"#{e['attempt']} {EVENT_TEXT.get(e['type'], e['type'])}"]
                if e.get("duration_ms") is not None:
                    parts.append(_ms(e["duration_ms"]))
                if e.get("worker") and e["type"] == "job:started":
                    parts.append(html.escape(e["worker"]))
                if e.get("error"):
                    parts.append(f"<i>{html.escape(e['error'])}</i>")
                lines.append(" ".join(parts))
            timeline = QLabel("<br>".join(lines))
            timeline.setObjectName("timeline")
            timeline.setWordWrap(True)
            timeline.setTextFormat(Qt.TextFormat.RichText)
            layout.addWidget(timeline)


class ResultSection(QFrame):
    """What an OCR or summary job found, above the jobs: the summary, then the text."""

    def __init__(self, job: dict, parent=None):
        super().__init__(parent)
        self.setObjectName(f"{job['type']}Section")
        layout = QVBoxLayout(self)
        layout.setContentsMargins(0, 0, 0, 0)
        layout.setSpacing(4)
        heading = QLabel("Summary" if job["type"] == "summary" else "Text")
        heading.setObjectName("section")
        layout.addWidget(heading)
        self._add_result(layout, job)

    @staticmethod
    def wanted(job: dict) -> bool:
        """A finished OCR or summary job with something to show (a photo without text shows neither)."""
        result = job.get("result") or {}
        if job["type"] not in ("ocr", "summary") or job["state"] != "complete" or result.get("skipped"):
            return False
        return bool((result.get("text") or "").strip()) if job["type"] == "ocr" else True

    def _add_result(self, layout: QVBoxLayout, job: dict) -> None:
        result = job.get("result") or {}
        if job["state"] != "complete" or job["type"] not in ("ocr", "summary"):
            return
        if result.get("skipped"):
            note = QLabel(result.get("reason") or "skipped")
            note.setObjectName("muted")
            note.setWordWrap(True)
            layout.addWidget(note)
            return
        if job["type"] == "summary":
            if result.get("title"):
                title = QLabel(result["title"])
                title.setTextFormat(Qt.TextFormat.PlainText)
                title.setWordWrap(True)
                title.setStyleSheet("font-weight: 600")
                layout.addWidget(title)
            parts = [result.get("summary") or ""]
            if result.get("topics"):
                parts.append("Topics: " + ", ".join(map(str, result["topics"][:8])))
            text = "\n".join(p for p in parts if p)
            origin = ("Made offline from the text (no language model is configured)"
                      if result.get("source") == "extractive" else f"By {result.get('model') or 'a language model'}")
        else:
            text = result.get("text") or ""
            confidence = result.get("confidence")
            origin = (f"Confidence {confidence:.0%}" if isinstance(confidence, (int, float)) else "") if text else \
                "No text found"
        if text and job["type"] == "ocr":
            body = QPlainTextEdit(text)
            body.setObjectName("ocrText")
            body.setReadOnly(True)
            lines = text.count("\n") + 1
            body.setFixedHeight(min(180, 12 + lines * body.fontMetrics().lineSpacing()))
            layout.addWidget(body)
        elif text:
            body = QLabel(text[:2000] + ("…" if len(text) > 2000 else ""))
            body.setObjectName(f"{job['type']}Text")
            body.setTextFormat(Qt.TextFormat.PlainText)
            body.setWordWrap(True)
            body.setTextInteractionFlags(Qt.TextInteractionFlag.TextSelectableByMouse)
            layout.addWidget(body)
        if origin:
            note = QLabel(origin)
            note.setObjectName("muted")
            note.setWordWrap(True)
            layout.addWidget(note)


class DescriptionSection(QFrame):
    """What a picture shows: its description, its tags (each a button that searches for it) and its
    colours as swatches with their shares."""

    def __init__(self, job: dict, on_tag, parent=None):
        super().__init__(parent)
        result = job.get("result") or {}
        self.setObjectName("describeSection")
        layout = QVBoxLayout(self)
        layout.setContentsMargins(0, 0, 0, 0)
        layout.setSpacing(4)
        heading = QLabel("What it shows")
        heading.setObjectName("section")
        layout.addWidget(heading)
        text = QLabel(result.get("description") or "")
        text.setObjectName("describeText")
        text.setTextFormat(Qt.TextFormat.PlainText)
        text.setWordWrap(True)
        text.setTextInteractionFlags(Qt.TextInteractionFlag.TextSelectableByMouse)
        layout.addWidget(text)
        self.tag_buttons = []
        tags = QHBoxLayout()
        tags.setSpacing(4)
        for tag in (result.get("tags") or [])[:12]:
            button = QPushButton(tag)
            button.setObjectName("tag")
            # A chip as wide as its word (a style sheet drops the style's minimum button width).
            button.setStyleSheet("QPushButton { padding: 1px 8px; border: 1px solid palette(mid); border-radius: 9px; }"
                                 "QPushButton:hover { background: palette(midlight); }")
            button.setCursor(Qt.CursorShape.PointingHandCursor)
            button.setToolTip(f"Show the documents found by “{tag}”")
            button.setAccessibleName(f"Search for {tag}")
            button.clicked.connect(lambda _=False, t=tag: on_tag(t))
            self.tag_buttons.append(button)
        rows = [self.tag_buttons[i:i + 3] for i in range(0, len(self.tag_buttons), 3)]  # fits the narrowest panel
        for row in rows:
            line = QHBoxLayout()
            line.setSpacing(4)
            for button in row:
                line.addWidget(button)
            line.addStretch(1)
            layout.addLayout(line)
        self.swatches = []
        colours = QHBoxLayout()
        colours.setSpacing(6)
        for colour in (result.get("palette") or [])[:6]:
            swatch = QLabel()
            swatch.setObjectName("swatch")
            swatch.setFixedSize(28, 18)
            swatch.setStyleSheet(f"background: {colour['hex']}; border: 1px solid palette(mid); border-radius: 3px")
            share = f"{colour['name']} {colour['share']:.0%}"
            swatch.setToolTip(share)
            swatch.setAccessibleName(share)
            colours.addWidget(swatch)
            self.swatches.append((swatch, colour))
        colours.addStretch(1)
        layout.addLayout(colours)
        names = QLabel(", ".join(f"{c['name']} {c['share']:.0%}" for c in (result.get("palette") or [])[:6]))
        names.setObjectName("muted")
        names.setWordWrap(True)
        layout.addWidget(names)
        origin = ("Made offline from the colours and the file's details (no vision model is configured)"
                  if result.get("source") == "offline" else f"By {result.get('model') or 'a vision model'}")
        note = QLabel(origin)
        note.setObjectName("muted")
        note.setWordWrap(True)
        layout.addWidget(note)

    @staticmethod
    def wanted(job: dict) -> bool:
        result = job.get("result") or {}
        return job["type"] == "describe" and job["state"] == "complete" and bool(result.get("description"))


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

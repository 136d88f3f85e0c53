"""The details panel's sections (``details.py`` lays them out): a job's card with its timeline and
Retry, a result (the OCR text, the summary with its title, entities and topics), and what a picture
shows (its description, clickable tags and colour swatches)."""

from __future__ import annotations

import datetime
import html

from PySide6.QtCore import Qt
from PySide6.QtWidgets import (
    QFrame,
    QHBoxLayout,
    QLabel,
    QPlainTextEdit,
    QPushButton,
    QVBoxLayout,
)

from ..engine.events import EventType, OwnerEvent
from ..store.db import JobState
from .delegates import STATUS_COLOR

JOB_STATE_TEXT = {JobState.PENDING: "Waiting", JobState.QUEUED: "Queued", JobState.RUNNING: "Running",
                  JobState.COMPLETE: "Done", JobState.FAILED: "Failed", JobState.CANCELLED: "Cancelled"}
JOB_NAMES = {"thumbnail": "Thumbnails", "ocr": "Text (OCR)", "summary": "Summary", "describe": "Description",
             "embed": "Vector (search by meaning)"}
#: A timeline's entries as they read: the workers' events and the owner's own.
EVENT_TEXT = {EventType.QUEUED: "queued", EventType.STARTED: "started", EventType.RETRYING: "will retry",
              EventType.COMPLETE: "done", EventType.FAILED: "failed", EventType.CANCELLED: "cancelled",
              OwnerEvent.LEASE_EXPIRED: "worker lost", OwnerEvent.TASK_LOST: "task lost, queued again",
              OwnerEvent.RETRY: "retry asked", OwnerEvent.REPROCESS: "reprocess asked",
              OwnerEvent.CANCEL: "cancel asked", OwnerEvent.DISCARD: "discarded", OwnerEvent.SKIPPED: "skipped"}


def _time(ts: float | None) -> str:
    return "–" if ts is None else datetime.datetime.fromtimestamp(ts).strftime("%H:%M:%S")


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
        color = STATUS_COLOR.get({"pending": "queued"}.get(job["state"], job["state"]))
        title = QLabel(f"<b>{html.escape(JOB_NAMES.get(job['type'], job['type'].capitalize()))}</b> "
                       f"<span style='color:{color.name() if color else '#888'}'>"
                       f"{JOB_STATE_TEXT.get(job['state'], job['state'])}</span>")
        head.addWidget(title, 1)
        ended = job["state"] in (JobState.FAILED, JobState.CANCELLED)
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
        self.permanent_label.setToolTip(_sentence(job["advice"]) if job.get("advice") else
                                        "No retry will cure this. If the file is fixed or replaced, Retry comes back")
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
        if job["state"] == JobState.RUNNING and job.get("progress"):
            facts.append(f"{job['progress']}%")
        info = QLabel(" · ".join(facts))
        info.setObjectName("muted")
        layout.addWidget(info)
        if job.get("error"):
            if self.permanent and job["state"] == "failed" and job.get("advice"):
                note = " " + _sentence(job["advice"])  # the file is not at fault: what to do instead
            elif self.permanent and job["state"] == "failed":
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


def _sentence(text: str) -> str:
    """Advice as a sentence of its own: capitalised, with its full stop."""
    text = text.strip()
    return text[:1].upper() + text[1:] + ("" if text.endswith(".") else ".")

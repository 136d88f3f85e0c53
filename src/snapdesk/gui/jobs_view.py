"""The Jobs view: per-queue numbers with pause and resume, the workers, and the failed jobs.
Everything it reads and does goes through ``operations``."""

from __future__ import annotations

import os

from PySide6.QtCore import Qt, QTimer
from PySide6.QtWidgets import (
    QAbstractItemView,
    QDialog,
    QHBoxLayout,
    QHeaderView,
    QLabel,
    QPushButton,
    QTableWidget,
    QTableWidgetItem,
    QVBoxLayout,
    QWidget,
)

from . import operations


def _ms(value) -> str:
    if value is None:
        return "–"
    return f"{value} ms" if value < 1000 else f"{value / 1000:.1f} s"


def _table(headers: list[str]) -> QTableWidget:
    table = QTableWidget(0, len(headers))
    table.setHorizontalHeaderLabels(headers)
    table.verticalHeader().hide()
    table.setEditTriggers(QAbstractItemView.EditTrigger.NoEditTriggers)
    table.setSelectionBehavior(QAbstractItemView.SelectionBehavior.SelectRows)
    table.horizontalHeader().setSectionResizeMode(QHeaderView.ResizeMode.ResizeToContents)
    table.horizontalHeader().setStretchLastSection(True)
    table.setAlternatingRowColors(True)
    table.setTabKeyNavigation(False)  # Tab moves on to the next control; the arrows move between cells
    return table


def _fill(table: QTableWidget, rows: list[list]) -> None:
    table.setRowCount(len(rows))
    for r, values in enumerate(rows):
        for c, value in enumerate(values):
            item = QTableWidgetItem("" if value is None else str(value))
            if isinstance(value, (int, float)):
                item.setTextAlignment(Qt.AlignmentFlag.AlignRight | Qt.AlignmentFlag.AlignVCenter)
            table.setItem(r, c, item)


class JobsDialog(QDialog):
    """Refreshed every two seconds while it is open; every number comes from the owner thread."""

    REFRESH_MS = 2000

    def __init__(self, owner, parent=None):
        super().__init__(parent)
        self.owner = owner
        self.setWindowTitle("Jobs")
        self.resize(900, 620)
        self.stats: dict | None = None
        self.failed: list[dict] = []
        self.paused: set[str] = set()
        layout = QVBoxLayout(self)

        self.summary = QLabel()
        self.summary.setObjectName("muted")
        layout.addWidget(self.summary)
        layout.addWidget(self._title("Queues"))
        self.queues = _table(["Queue", "Waiting", "Later", "Running", "Done", "Failed", "Per minute", "Mean",
                              "p95", "Failure rate", "State", ""])
        self.queues.setMaximumHeight(140)
        self.queues.horizontalHeader().setStretchLastSection(False)  # the Pause buttons stay button-sized
        layout.addWidget(self.queues)
        layout.addWidget(self._title("Workers"))
        self.workers = _table(["Worker", "Queues", "Concurrency", "Running now", "Last heard"])
        self.workers.setMaximumHeight(150)
        layout.addWidget(self.workers)
        layout.addWidget(self._title("Failed jobs"))
        self.failed_table = _table(["File", "Job", "Attempts", "Worker", "Retry", "Error"])
        self.failed_table.setSelectionMode(QAbstractItemView.SelectionMode.ExtendedSelection)
        self.failed_table.itemSelectionChanged.connect(self._failed_selection_changed)
        layout.addWidget(self.failed_table, 1)
        buttons = QHBoxLayout()
        self.retry_button = QPushButton("Retry Selected")
        self.retry_button.clicked.connect(self.retry_selected)
        self.retry_button.setEnabled(False)
        self.retry_all_button = QPushButton("Retry All Failed")
        self.retry_all_button.setToolTip("Queue again every failed job a retry may cure; permanent failures stay")
        self.retry_all_button.clicked.connect(self.retry_all)
        self.discard_button = QPushButton("Discard Selected")
        self.discard_button.setToolTip("Take the selected jobs off the failed list; their error is kept")
        self.discard_button.clicked.connect(self.discard_selected)
        buttons.addWidget(self.retry_button)
        buttons.addWidget(self.retry_all_button)
        buttons.addWidget(self.discard_button)
        buttons.addStretch(1)
        close = QPushButton("Close")
        close.clicked.connect(self.close)
        buttons.addWidget(close)
        layout.addLayout(buttons)

        self._timer = QTimer(self)
        self._timer.setInterval(self.REFRESH_MS)
        self._timer.timeout.connect(self.refresh)

    @staticmethod
    def _title(text: str) -> QLabel:
        label = QLabel(text)
        label.setObjectName("section")
        return label

    def showEvent(self, event) -> None:
        super().showEvent(event)
        self.refresh()
        self._timer.start()

    def hideEvent(self, event) -> None:
        self._timer.stop()
        super().hideEvent(event)

    def refresh(self) -> None:
        operations.job_statistics(self.owner, parent=self).success(self._show).failure(self._unreadable).run()

    def _unreadable(self, error: Exception) -> None:
        self.summary.setText(f"Cannot read the statistics: {error}")

    def _show(self, result: tuple[dict, list[dict], list[str]]) -> None:
        self.stats, self.failed, paused = result
        stats = self.stats
        minutes = stats["window_seconds"] / 60
        self.summary.setText(f"{stats['transport']} · throughput and durations over the last {minutes:.0f} minutes")
        rows = []
        for name, q in stats["queues"].items():
            states = q["states"]
            rows.append([name, q.get("waiting", 0), q.get("delayed", 0), states.get("running", 0),
                         states.get("complete", 0), states.get("failed", 0), q.get("throughput_per_min"),
                         _ms(q.get("mean_ms")), _ms(q.get("p95_ms")),
                         "–" if q.get("failure_rate") is None else f"{100 * q['failure_rate']:.0f} %",
                         "paused" if name in paused else "running", ""])
        _fill(self.queues, rows)
        self.paused = set(paused)
        previous = self.queues
        for r, name in enumerate(stats["queues"]):
            # One button per queue for the dialog's life: a refresh never takes the keyboard focus away.
            button = self.queues.cellWidget(r, len(rows[r]) - 1)
            if button is None or button.objectName() != f"pause-{name}":
                button = QPushButton()
                button.setObjectName(f"pause-{name}")
                button.clicked.connect(lambda _=False, n=name: self.set_paused(n, n not in self.paused))
                self.queues.setCellWidget(r, len(rows[r]) - 1, button)
                QWidget.setTabOrder(previous, button)  # after the table, before the workers: where they are seen
            button.setText("Resume" if name in paused else "Pause")
            button.setAccessibleName(f"{button.text()} the {name} queue")
            button.setToolTip(f"{button.text()} the {name} queue for every worker"
                              + (" of the farm: every desktop's jobs on it wait" if stats["transport"].startswith("redis")
                                 else ""))
            previous = button
        _fill(self.workers, [[f"{w['host']}:{w['pid']}", ", ".join(w["queues"]),
                              ", ".join(f"{k} {v}" for k, v in (w.get("concurrency") or {}).items()),
                              ", ".join(f"{r['job_type']} #{r['job_id']}" for r in w.get("running") or []) or "idle",
                              f"{w['seconds_since_heartbeat']:.0f} s ago"]
                             for w in stats["workers"]])
        _fill(self.failed_table, [[os.path.basename(f["path"]), f["type"], f"{f['attempts']}/{f['max_attempts']}",
                                   f.get("worker"), self._retry_text(f), f.get("error")] for f in self.failed])
        for r, f in enumerate(self.failed):
            self.failed_table.item(r, 0).setToolTip(f["path"])
        self.retry_all_button.setEnabled(any(f.get("retry_cures", True) for f in self.failed))
        self._failed_selection_changed()

    @staticmethod
    def _retry_text(f: dict) -> str:
        if f.get("error_kind") != "permanent":
            return "yes"
        return "yes, the file changed" if f.get("retry_cures") else "no, permanent"

    def _selected_curable(self) -> list[int]:
        rows = sorted({i.row() for i in self.failed_table.selectedIndexes()})
        return [self.failed[r]["id"] for r in rows if r < len(self.failed) and self.failed[r].get("retry_cures", True)]

    def _failed_selection_changed(self) -> None:
        self.retry_button.setEnabled(bool(self._selected_curable()))

    def discard_selected(self) -> None:
        rows = sorted({i.row() for i in self.failed_table.selectedIndexes()})
        ids = [self.failed[r]["id"] for r in rows if r < len(self.failed)]
        if ids:
            operations.discard(self.owner, ids, parent=self).success(self._refresh).run()

    def set_paused(self, queue: str, paused: bool) -> None:
        operations.set_paused(self.owner, queue, paused, parent=self).success(self._refresh).run()

    def retry_selected(self) -> None:
        ids = self._selected_curable()  # a permanent failure would fail the same way again
        if ids:
            operations.retry(self.owner, ids, parent=self).success(self._refresh).run()

    def retry_all(self) -> None:
        operations.retry_failed(self.owner, parent=self).success(self._refresh).run()

    def _refresh(self, _result: object) -> None:
        self.refresh()

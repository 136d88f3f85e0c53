"""The status bar's permanent numbers: the queue in use, the workers, the jobs waiting, the throughput."""

from __future__ import annotations

from PySide6.QtWidgets import QLabel, QProgressBar, QStatusBar


def transport_text(transport: str) -> str:
    return "Embedded queue" if transport == "embedded" else transport.replace("redis ", "Redis ", 1)


class LibraryStatus:
    """Labels added to a window's status bar, filled from the owner's status every two seconds."""

    def __init__(self, bar: QStatusBar, local_workers: bool = False):
        #: This computer starts its own worker when there is work (the embedded default).
        self.local_workers = local_workers
        self.transport = QLabel("Opening the library…")
        self.workers = QLabel()
        self.queue = QLabel()
        self.throughput = QLabel()
        self.throughput.setToolTip("Jobs done or failed in the last minute, on every worker")
        self.busy = QProgressBar()
        self.busy.setRange(0, 0)  # a scan has no known length: it just moves
        self.busy.setMaximumWidth(110)
        self.busy.setMaximumHeight(14)
        self.busy.setTextVisible(False)
        self.busy.setAccessibleName("Adding files")
        self.busy.hide()
        bar.addPermanentWidget(self.busy)
        for label in (self.transport, self.workers, self.queue, self.throughput):
            bar.addPermanentWidget(label)

    def opening(self) -> None:
        self.transport.setText("Opening the library…")
        for label in (self.workers, self.queue, self.throughput):
            label.setText("")

    def show(self, status: dict) -> None:
        self.transport.setText(transport_text(status["transport"]))
        if status.get("error"):
            if status.get("disconnected"):
                self.workers.setText(f"Disconnected, retrying: {status['error']}")
            else:
                self.workers.setText(f"Queue error: {status['error']}")
            self.workers.setStyleSheet("color: #d64541")
            self.queue.setText("")
            self.throughput.setText("")
            return
        self.workers.setStyleSheet("")
        workers = status.get("workers") or []
        if not workers and self.local_workers:  # not a fault: a worker starts with the work
            self.workers.setText("No worker running: one starts with new work")
        else:
            self.workers.setText(f"{len(workers)} worker{'s' if len(workers) != 1 else ''} online")
        self.workers.setToolTip("\n".join(
            f"{w.get('host', '?')}:{w.get('pid', '?')}  queues: {', '.join(w.get('queues', []) or [])}"
            for w in workers) or ("A worker starts on this computer when there is work" if self.local_workers
                                  else "No worker has reported in the last 30 s"))
        queues = status.get("queues") or {}
        waiting = sum(q.get("waiting", 0) for q in queues.values())
        later = sum(q.get("delayed", 0) for q in queues.values())
        text = f"{waiting} job{'s' if waiting != 1 else ''} waiting"
        if later:
            text += f", {later} to retry later"
        self.queue.setText(text)
        self.queue.setToolTip("\n".join(f"{name}: {q.get('waiting', 0)} waiting, {q.get('delayed', 0)} later"
                                        for name, q in queues.items()))
        self.throughput.setText(f"{status.get('throughput') or 0:.0f} jobs/min")

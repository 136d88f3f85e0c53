"""Result folders leave the library at once, and their files are deleted in the background.

Removing a session used to wait for the disk to delete every result file: a document's thumbnails
are three files in two folders, and 20,000 documents took 5 to 18 seconds of the owner's time on
this machine's disk, which is slower still on a laptop with a virus scanner. ``Trash.discard``
moves each folder into the trash folder (one rename), and one thread deletes what is there. A
folder that cannot be moved is deleted there and then, as before.

``wait`` returns once everything discarded is gone: ``Library.close`` waits, so a command leaves
nothing behind. What a process that was killed left in the trash is deleted the next time the
library opens (``recover``).
"""

from __future__ import annotations

import logging
import os
import queue
import shutil
import threading
import uuid
from collections.abc import Iterable
from pathlib import Path

log = logging.getLogger("snapdesk.trash")

#: The trash folder's name, in the library's result folder (``artifacts``).
TRASH = ".trash"


class Trash:
    """A folder beside the results, emptied by a thread of its own."""

    def __init__(self, folder: Path):
        self.folder = folder
        self._queue: queue.Queue[str] = queue.Queue()
        self._thread: threading.Thread | None = None
        self._lock = threading.Lock()

    def discard(self, folders: Iterable[Path]) -> int:
        """Take these folders out of the library now (those that exist) and delete them in the
        background; how many were taken."""
        taken = 0
        for folder in folders:
            target = self.folder / f"{folder.name}-{uuid.uuid4().hex[:8]}"  # a folder may come back and go again
            try:
                self.folder.mkdir(parents=True, exist_ok=True)
                os.rename(folder, target)
            except FileNotFoundError:
                continue
            except OSError as exc:  # cannot be moved: deleted here, as before there was a trash
                log.warning("could not move %s to the trash (%s); deleting it now", folder, exc.strerror or exc)
                shutil.rmtree(folder, ignore_errors=True)
                continue
            self._put(str(target))
            taken += 1
        return taken

    def recover(self) -> int:
        """Delete in the background what an earlier process left in the trash; how many folders."""
        try:
            left = [entry.path for entry in os.scandir(self.folder)]
        except OSError:  # no trash yet
            return 0
        for path in left:
            self._put(path)
        return len(left)

    def wait(self) -> None:
        """Return once everything discarded so far is deleted."""
        self._queue.join()

    def _put(self, path: str) -> None:
        self._queue.put(path)
        with self._lock:
            if self._thread is None:
                self._thread = threading.Thread(target=self._empty, name="snapdesk-trash", daemon=True)
                self._thread.start()

    def _empty(self) -> None:
        """Delete what is queued; the thread ends once the queue is empty (``_put`` starts another)."""
        while True:
            path = self._queue.get()
            try:
                shutil.rmtree(path, ignore_errors=True)
            finally:
                self._queue.task_done()
            with self._lock:  # _put queues before it looks at the thread: nothing is left behind
                if self._queue.empty():
                    self._thread = None
                    return

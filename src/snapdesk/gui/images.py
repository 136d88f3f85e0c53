"""Thumbnails and blurhash placeholders, loaded off the GUI thread and kept in a small cache.

The delegate asks for an image when it paints an item, so only what is on screen is ever
loaded. Files are read and blurhashes decoded in a private thread pool (QImage is safe
off the GUI thread; QPixmap is made on it), newest request first so the rows just scrolled
into view win over the ones scrolled past.
"""

from __future__ import annotations

import logging
import threading
from collections import OrderedDict

from PySide6.QtCore import QObject, QRunnable, Qt, QThreadPool, Signal
from PySide6.QtGui import QImage, QImageReader, QPixmap

log = logging.getLogger("snapdesk.gui.images")

BLURHASH_SIZE = (32, 24)


def decode_blurhash(value: str, width: int = BLURHASH_SIZE[0], height: int = BLURHASH_SIZE[1]) -> QImage:
    """A small image of a blurhash (a null QImage when it cannot be decoded)."""
    import blurhash

    try:
        pil = blurhash.decode(value, width, height)
    except (ValueError, blurhash.BlurhashDecodeError):
        return QImage()
    data = pil.convert("RGB").tobytes()
    return QImage(data, width, height, width * 3, QImage.Format.Format_RGB888).copy()


def read_image(path: str, max_width: int | None = None) -> QImage:
    reader = QImageReader(path)
    reader.setAutoTransform(True)
    if max_width and reader.size().isValid() and reader.size().width() > max_width:
        size = reader.size()
        reader.setScaledSize(size.scaled(max_width, size.height() * max_width // size.width(),
                                         Qt.AspectRatioMode.KeepAspectRatio))
    image = reader.read()
    if image.isNull():
        log.info("cannot read %s: %s", path, reader.errorString())
    return image


class _Signals(QObject):
    loaded = Signal(object, QImage)


class _Load(QRunnable):
    def __init__(self, cache: ImageCache):
        super().__init__()
        self.cache = cache

    def run(self) -> None:
        request = self.cache._next_request()
        if request is None:
            return
        key, source = request
        kind = key[0]
        try:
            image = decode_blurhash(source) if kind == "blur" else read_image(source)
        except Exception:  # never let a bad file take the pool down
            log.exception("loading %s", source)
            image = QImage()
        self.cache._signals.loaded.emit(key, image)


class ImageCache(QObject):
    """Pixmaps by key (kind, document id); ``imageReady(doc_id)`` when one has arrived."""

    imageReady = Signal(int)

    def __init__(self, max_items: int = 800, threads: int = 2, parent: QObject | None = None):
        super().__init__(parent)
        self._pixmaps: OrderedDict = OrderedDict()
        self._missing: set = set()
        self._wanted: OrderedDict = OrderedDict()  # key -> source, newest last
        self._in_flight: set = set()
        self._lock = threading.Lock()
        self.max_items = max_items
        self._pool = QThreadPool(self)
        self._pool.setMaxThreadCount(threads)
        self._signals = _Signals()
        self._signals.loaded.connect(self._loaded)

    def get(self, kind: str, doc_id: int, source: str | None) -> QPixmap | None:
        """The pixmap when cached; otherwise None, and a load is started (``source`` a path or a blurhash)."""
        if not source:
            return None
        key = (kind, doc_id, source)
        pixmap = self._pixmaps.get(key)
        if pixmap is not None:
            self._pixmaps.move_to_end(key)
            return pixmap
        if key in self._missing:
            return None
        with self._lock:
            if key in self._in_flight:
                return None
            new = key not in self._wanted
            self._wanted[key] = source
            self._wanted.move_to_end(key)
        if new:
            self._pool.start(_Load(self))
        return None

    def _next_request(self):
        with self._lock:
            if not self._wanted:
                return None
            key, source = self._wanted.popitem(last=True)
            self._in_flight.add(key)
            return key, source

    def _loaded(self, key, image: QImage) -> None:
        with self._lock:
            self._in_flight.discard(key)
        if image.isNull():
            self._missing.add(key)
            return
        self._pixmaps[key] = QPixmap.fromImage(image)
        while len(self._pixmaps) > self.max_items:
            self._pixmaps.popitem(last=False)
        self.imageReady.emit(key[1])

    def clear_wanted(self) -> None:
        """Forget loads not yet started (a different session is shown)."""
        with self._lock:
            self._wanted.clear()

    def shutdown(self) -> None:
        self.clear_wanted()
        self._pool.waitForDone(2000)

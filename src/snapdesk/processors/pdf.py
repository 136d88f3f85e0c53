"""PDF pages for OCR and thumbnails: the text layer where a page has one, a rendering where not.

PDFium is not thread-safe, and a worker runs several jobs in threads of one process, so every
call into it here holds one process-wide lock. The lock is taken per page, not per document,
so two long PDFs still take turns page by page.
"""

from __future__ import annotations

import math
import threading
from contextlib import contextmanager

from PIL import Image

from .errors import PermanentError, RetryableError

TEXT_LAYER_MIN_CHARS = 20  # non-space characters that make a page's text layer worth using
DEFAULT_DPI = 200
MAX_RENDER_PIXELS = 40_000_000  # a page is rendered smaller than this, whatever its paper size

_LOCK = threading.RLock()


def _pdfium():
    import pypdfium2

    return pypdfium2


@contextmanager
def _open(source: bytes):
    """The document, or PermanentError with the reason a person would want."""
    pdfium = _pdfium()
    if not source:
        raise PermanentError("the file is empty")
    if b"%PDF" not in bytes(source[:1024]):
        raise PermanentError("not a PDF: the file does not start like one")
    with _LOCK:
        try:
            doc = pdfium.PdfDocument(bytes(source))
        except pdfium.PdfiumError as exc:
            code = getattr(exc, "err_code", None)
            if code == 4:  # FPDF_ERR_PASSWORD
                raise PermanentError("the PDF is protected by a password, so SnapDesk cannot open it") from None
            if code == 5:  # FPDF_ERR_SECURITY
                raise PermanentError("the PDF uses an encryption SnapDesk cannot open") from None
            raise PermanentError("the PDF is damaged, or has no pages, and cannot be opened") from None
        except MemoryError:
            raise RetryableError("not enough memory to open the PDF") from None
    try:
        yield doc
    finally:
        with _LOCK:
            doc.close()


def page_count(source: bytes) -> int:
    with _open(source) as doc, _LOCK:
        return len(doc)


def _scale(page, scale: float, max_pixels: int) -> float:
    """``scale`` (pixels per PDF point), reduced if needed to keep the rendering under the limit."""
    width, height = page.get_size()
    limit = min(max_pixels, MAX_RENDER_PIXELS)
    pixels = width * height * scale * scale
    if pixels > limit:
        scale *= (limit / pixels) ** 0.5
        while math.ceil(width * scale) * math.ceil(height * scale) > limit:  # PDFium rounds up
            scale *= 0.998
    return scale


def _render(page, scale: float) -> Image.Image:
    bitmap = page.render(scale=scale, may_draw_forms=True)
    try:
        return bitmap.to_pil().convert("RGB")
    finally:
        bitmap.close()


def first_page_image(source: bytes, max_pixels: int, width: int = 1200) -> Image.Image:
    """The first page rendered ``width`` pixels wide (aspect kept), for thumbnails."""
    with _open(source) as doc, _LOCK:
        page = doc[0]
        try:
            page_w, _ = page.get_size()
            return _render(page, _scale(page, width / max(page_w, 1), max_pixels))
        finally:
            page.close()


def page_text(page) -> str | None:
    """The text layer of a page when it has real text, else None."""
    textpage = page.get_textpage()
    try:
        text = textpage.get_text_range()
    finally:
        textpage.close()
    text = text.replace("\r\n", "\n").replace("\r", "\n")
    if sum(not c.isspace() for c in text) >= TEXT_LAYER_MIN_CHARS:
        return text.strip()
    return None


def pages(source: bytes, dpi: int = DEFAULT_DPI, max_pixels: int = MAX_RENDER_PIXELS):
    """Each page as (index, text, image, (width, height)).

    A page with a text layer gives its text and no image (it is not rendered); any other page
    gives None and its rendering at ``dpi``. The size is the page's in pixels at ``dpi``.
    """
    with _open(source) as doc:
        with _LOCK:
            count = len(doc)
        for index in range(count):
            with _LOCK:
                page = doc[index]
                try:
                    page_w, page_h = page.get_size()
                    size = (round(page_w * dpi / 72), round(page_h * dpi / 72))
                    text = page_text(page)
                    image = None if text is not None else _render(page, _scale(page, dpi / 72, max_pixels))
                finally:
                    page.close()
            yield index, text, image, size

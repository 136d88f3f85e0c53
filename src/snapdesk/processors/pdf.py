"""PDF pages for OCR and thumbnails: the text layer where a page has one, a rendering where not.

PDFium is not thread-safe, and a worker runs several jobs in threads of one process, so every
call into it here holds one process-wide lock. The lock is taken per page, not per document,
so two long PDFs still take turns page by page.

Pages are rendered one at a time (``each_page``, which ``processors/decode.py`` uses for every
job), so a long PDF never holds more than one rendered page, and ``max_pages`` bounds how many.
"""

from __future__ import annotations

import math
import threading
from contextlib import contextmanager
from typing import Any, Iterator

from PIL import Image

from .errors import PermanentError, RetryableError

TEXT_LAYER_MIN_CHARS = 20  # non-space characters that make a page's text layer worth using
DEFAULT_DPI = 200
MAX_RENDER_PIXELS = 40_000_000  # a page is rendered smaller than this, whatever its paper size

_LOCK = threading.RLock()


def _pdfium() -> Any:  # pypdfium2 ships no types: its documents and pages are Any here
    import pypdfium2

    return pypdfium2


@contextmanager
def _open(source: bytes) -> Iterator[Any]:
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


def _scale(page: Any, scale: float, max_pixels: int) -> float:
    """``scale`` (pixels per PDF point), reduced if needed to keep the rendering under the limit."""
    width, height = page.get_size()
    limit = min(max_pixels, MAX_RENDER_PIXELS)
    pixels = width * height * scale * scale
    if pixels > limit:
        scale *= (limit / pixels) ** 0.5
        while math.ceil(width * scale) * math.ceil(height * scale) > limit:  # PDFium rounds up
            scale *= 0.998
    return scale


def _render(page: Any, scale: float) -> Image.Image:
    bitmap = page.render(scale=scale, may_draw_forms=True)
    try:
        image: Image.Image = bitmap.to_pil().convert("RGB")
        return image
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


def page_text(page: Any) -> str | None:
    """The text layer of a page when it has real text, else None."""
    textpage = page.get_textpage()
    try:
        text: str = textpage.get_text_range()
    finally:
        textpage.close()
    text = text.replace("\r\n", "\n").replace("\r", "\n")
    if sum(not c.isspace() for c in text) >= TEXT_LAYER_MIN_CHARS:
        return text.strip()
    return None


def pages(source: bytes, dpi: int = DEFAULT_DPI, max_pixels: int = MAX_RENDER_PIXELS
          ) -> Iterator[tuple[int, str | None, Image.Image | None, tuple[int, int]]]:
    """Each page as (index, text, image, (width, height)).

    A page with a text layer gives its text and no image (it is not rendered); any other page
    gives None and its rendering at ``dpi``. The size is the page's in pixels at ``dpi``.
    """
    for index, _, text, image, size in each_page(source, dpi=dpi, max_pixels=max_pixels):
        yield index, text, image, size


def each_page(source: bytes, dpi: int = DEFAULT_DPI, max_pixels: int = MAX_RENDER_PIXELS, width: int | None = None,
              text_layer: bool = True, max_pages: int | None = None
              ) -> Iterator[tuple[int, int, str | None, Image.Image | None, tuple[int, int]]]:
    """Each page, one at a time, as (index, page count, text, image, (width, height)): what
    ``processors/decode.py`` hands out. At most ``max_pages`` pages; rendered at ``dpi`` or, given
    ``width``, that many pixels wide (aspect kept, the pixel limit still first). Without
    ``text_layer`` every page is rendered, and text is always None.
    """
    with _open(source) as doc:
        with _LOCK:
            count = len(doc)
        for index in range(count if max_pages is None else min(count, max_pages)):
            with _LOCK:
                page = doc[index]
                try:
                    page_w, page_h = page.get_size()
                    size = (round(page_w * dpi / 72), round(page_h * dpi / 72))
                    text = page_text(page) if text_layer else None
                    scale = dpi / 72 if width is None else width / max(page_w, 1)
                    image = None if text is not None else _render(page, _scale(page, scale, max_pixels))
                except pdfium_error():
                    raise PermanentError(f"page {index + 1} of the PDF is damaged and cannot be rendered") from None
                except MemoryError:
                    raise RetryableError("not enough memory to render a page of the PDF") from None
                finally:
                    page.close()
            yield index, count, text, image, size


def pdfium_error() -> type[Exception]:
    error: type[Exception] = _pdfium().PdfiumError
    return error

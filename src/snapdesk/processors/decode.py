"""One way in for every job: open a document safely and hand out its pages one at a time.

``pages(source, kind, mode=...)`` is the only place SnapDesk decodes an input file, for the
thumbnail job and the OCR job alike, so both read the same files and refuse the same ones with
the same sentence. It

* checks the pixel count of every page *before* decoding it (a decompression bomb is refused,
  not decoded), and reads at most ``max_pages`` pages: past that the iteration simply ends, and
  each ``Page`` says how many pages the document has (``count``), so a caller can say so;
* decodes one page at a time (a multi-page TIFF, a PDF through ``processors/pdf.py``): the page
  handed out is the only one in memory, whatever the document claims;
* applies the EXIF orientation (a damaged EXIF block is ignored: the pixels are still good);
* converts every pixel mode Pillow opens (1, P, L, LA, PA, RGB(A), CMYK, YCbCr, LAB, HSV, I;16*,
  I, F) to what the caller asked for: ``RGB`` (RGB, or RGBA when the image has transparency) for
  thumbnails, ``GRAY`` (8-bit grey, transparency over white) for OCR. 16-bit and 32-bit grey are
  scaled to 8 bits (a 16-bit scan's white stays white), LAB goes through a colour transform;
* turns every decoder complaint (UnidentifiedImageError, "truncated" OSErrors, SyntaxError,
  ValueError, struct.error, EOFError, DecompressionBombError, a PNG text-chunk bomb ...) into a
  ``PermanentError`` with a sentence a person understands. Only errors raised inside Pillow or
  PDFium are translated; a bug in SnapDesk's own code still surfaces as one.

Animated formats (GIF, APNG, WebP, MPO) are pictures, not page sets: their first frame is the
image, and ``Page.info["frames"]`` says how many frames the animation has. TIFF pages are the
document's pages. A PSD gives its composite, an ICO its largest icon, JPEG 2000 its full size.

HEIC/HEIF stills are read through pillow-heif's Pillow opener (registered, lazily, the first time
a file in an ISO media container comes: its 10-bit and HDR pictures are handed out as 8-bit, its
rotation already applied; with ``draft``, from an embedded thumbnail that covers the width asked,
when the file has one, since libheif cannot decode smaller); AVIF through Pillow's own AVIF plugin. Both then go the way of any
image. Two kinds are not Pillow's: ``"raw"`` (camera RAW, ``processors/raw.py``, rawpy) and
``"video"`` (``processors/video.py``, PyAV: the poster frame is the one page; ``Page.info``
carries the duration, codec and frame rate). pillow-heif, rawpy and PyAV are each imported only
when a file that needs them comes, so a worker that never meets one never loads them.
"""

from __future__ import annotations

import io
import os
import re
import struct
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
from PIL import Image, UnidentifiedImageError

from .errors import PermanentError, RetryableError, damaged
from .orientation import DECODER_ERRORS, ROTATED, TRANSPOSE, orientation_of

#: A document as the processors take it: its bytes, or the path of its file.
Source = bytes | str | os.PathLike[str]

RGB = "rgb"  # RGB, or RGBA when the image has transparency: for thumbnails
GRAY = "gray"  # 8-bit grey, transparency flattened onto white: for OCR

DEFAULT_MAX_PIXELS = 180_000_000
DEFAULT_MAX_PAGES = 200
#: Formats whose frames are a document's pages (the others' extra frames are an animation).
PAGED_FORMATS = {"TIFF"}
#: Formats decoded by a library that reports damaged data as RuntimeError.
LIBRARY_DECODED = {"AVIF", "HEIF"}
#: Formats whose extra frames are an animation (the frame count is reported).
ANIMATED_FORMATS = {"GIF", "WEBP", "PNG", "AVIF"}

# SnapDesk checks the pixel count itself, per page and before anything is decoded, and fails such
# files with a clear message; Pillow's own global check would only warn first.
Image.MAX_IMAGE_PIXELS = None

_ORDINALS = ("first", "second", "third", "fourth", "fifth", "sixth", "seventh", "eighth", "ninth", "tenth")


@dataclass
class Page:
    """One page of a document, decoded. ``image`` is None when ``text`` holds a PDF page's text layer."""

    number: int  # 1-based
    count: int  # the document's pages, all of them (``max_pages`` may stop the iteration earlier)
    size: tuple[int, int]  # as displayed (orientation applied); a PDF page's at the asked dpi
    image: Image.Image | None
    text: str | None = None
    format: str | None = None  # "JPEG", "TIFF", "PDF" ...
    #: What else the decoder learnt: "frames" of an animation; a video's "duration", "codec", "fps".
    info: dict[str, Any] = field(default_factory=dict)


def pages(source: Source, kind: str = "image", *, mode: str = RGB,
          max_pixels: int = DEFAULT_MAX_PIXELS, max_pages: int = DEFAULT_MAX_PAGES,
          draft: int | None = None, dpi: int = 200, width: int | None = None,
          text_layer: bool = False) -> Iterator[Page]:
    """The pages of a document (``kind`` "image", "pdf", "raw" or "video"), one at a time, in ``mode`` (RGB or GRAY).

    ``draft``: the width the caller needs at most (as displayed, aspect kept); a JPEG (and a RAW's
    embedded JPEG preview) is then decoded at the smallest 1/2, 1/4 or 1/8 scale that still covers
    it (and, for GRAY, straight to grey), a HEIC from an embedded thumbnail that covers it, if any,
    and a video's poster frame scaled to it as FFmpeg converts it to RGB. A PDF page is rendered at ``dpi``, or ``width`` pixels wide; with ``text_layer`` a
    page that has real text gives that text instead of an image. Raises PermanentError
    (RetryableError for want of memory) with the reason a person would want.
    """
    if mode not in (RGB, GRAY):
        raise ValueError(f"mode is decode.RGB or decode.GRAY, not {mode!r}")
    if kind == "pdf":
        return _pdf_pages(source, mode, max_pixels, max_pages, dpi, width, text_layer)
    if kind == "image":
        return _image_pages(source, mode, max_pixels, max_pages, draft)
    if kind == "raw":
        return _raw_pages(source, mode, max_pixels, draft)
    if kind == "video":
        return _video_pages(source, mode, max_pixels, draft)
    raise PermanentError(f"SnapDesk cannot read a document of type {kind!r}")


def first_page(source: Source, kind: str = "image", **kw: Any) -> Page:
    """The first page alone (a thumbnail's), decoded as ``pages`` does."""
    for page in pages(source, kind, max_pages=1, **kw):
        return page
    raise PermanentError("the document has no pages")


# ---------------------------------------------------------------------- PDF
def _pdf_pages(source: Source, mode: str, max_pixels: int, max_pages: int, dpi: int, width: int | None,
               text_layer: bool) -> Iterator[Page]:
    from . import pdf  # pypdfium2 is imported only when a PDF comes

    data = _read(source)
    for index, count, text, image, size in pdf.each_page(data, dpi=dpi, max_pixels=max_pixels, width=width,
                                                         text_layer=text_layer, max_pages=max_pages):
        yield Page(index + 1, count, size, None if image is None else convert(image, mode), text, "PDF")


# ---------------------------------------------------------------------- RAW and video
def _raw_pages(source: Source, mode: str, max_pixels: int, draft: int | None) -> Iterator[Page]:
    from . import raw

    data = _read(source)
    if not data:
        raise PermanentError("the file is empty")
    picture = raw.decode(data, max_pixels=max_pixels, draft=draft)
    yield Page(1, 1, picture.size, convert(picture.image, mode), None, "RAW", {"picture": picture.source})


def _video_pages(source: Source, mode: str, max_pixels: int, draft: int | None) -> Iterator[Page]:
    from . import video

    data = _read(source)
    if not data:
        raise PermanentError("the file is empty")
    poster = video.poster(data, max_pixels=max_pixels, width=draft)
    yield Page(1, 1, poster.size, convert(poster.image, mode), None, "VIDEO", dict(poster.info))


# ---------------------------------------------------------------------- images
_HEIF_BRANDS = (b"heic", b"heix", b"heim", b"heis", b"hevc", b"hevx", b"mif1", b"msf1", b"mif2", b"miaf")
_heif_registered = False


def _register_heif(data: bytes) -> bool:
    """Whether ``data`` is a HEIF file (HEIC and the like); pillow-heif's opener is registered with
    Pillow the first time one comes."""
    global _heif_registered
    # The major brand says HEIF; an AVIF (whose brands may also say "mif1") is Pillow's own plugin's.
    if data[4:8] != b"ftyp" or data[8:12] not in _HEIF_BRANDS or b"avi" in data[8:64]:
        return False
    if not _heif_registered:
        import pillow_heif

        pillow_heif.register_heif_opener()
        _heif_registered = True
    return True


def _heif_failure(data: bytes) -> PermanentError:
    """Why libheif cannot open a HEIF file, as the sentence a person reads."""
    import pillow_heif

    try:
        pillow_heif.open_heif(io.BytesIO(data)).to_pillow()
    except (RuntimeError, *DECODER_ERRORS) as exc:
        return heif_damaged(exc)
    return PermanentError("not an image, or an image format SnapDesk cannot read")


def heif_damaged(exc: BaseException) -> PermanentError:
    """libheif's complaint ("Invalid input: Unexpected end of file: ...") as one sentence."""
    reason = re.sub(r"\s*\(([^()]*)\)", r", \1", str(exc)).removeprefix("Invalid input: ").strip(" .,\n")
    return PermanentError(f"the HEIC/HEIF image is damaged or truncated ({reason})" if reason else
                          "the HEIC/HEIF image is damaged or truncated")


def _read(source: Source) -> bytes:
    if isinstance(source, (bytes, bytearray, memoryview)):
        return bytes(source)
    try:
        return Path(source).read_bytes()
    except FileNotFoundError:
        raise PermanentError("the file is gone: it was moved or deleted after it was added") from None
    except PermissionError:
        raise PermanentError("cannot read the file: permission denied") from None
    except IsADirectoryError:
        raise PermanentError("the path is a folder, not a file") from None
    except OSError as exc:
        raise RetryableError(f"cannot read the file: {exc.strerror or exc}") from None


def _image_pages(source: Source, mode: str, max_pixels: int, max_pages: int, draft: int | None) -> Iterator[Page]:
    data = _read(source)
    if not data:
        raise PermanentError("the file is empty")
    heif = _register_heif(data)
    try:
        with _decoding(None, 1, opening=True):
            img = Image.open(io.BytesIO(data))
    except PermanentError:
        if heif:  # Pillow only says it found no opener: libheif says what is wrong
            raise _heif_failure(data) from None
        raise
    # The file is in memory (BytesIO): nothing to close but the frames Pillow keeps, and a
    # single-frame image is handed out as decoded, without a copy.
    fmt = img.format
    with _decoding(fmt, 1):
        count = getattr(img, "n_frames", 1) if fmt in PAGED_FORMATS else 1
        frames = getattr(img, "n_frames", 1) if fmt in ANIMATED_FORMATS else 1
    try:
        for number in range(1, min(count, max(1, max_pages)) + 1):
            with _decoding(fmt, number):
                if number > 1:
                    img.seek(number - 1)
                raw_w, raw_h = img.size
                if raw_w * raw_h > max_pixels:
                    where = "the image" if count == 1 else f"page {number} of the image"
                    raise PermanentError(
                        f"{where} has {raw_w} x {raw_h} = {raw_w * raw_h / 1e6:.0f} MP, more than the limit of "
                        f"{max_pixels / 1e6:.0f} MP (a decompression bomb, or simply too large)")
                orientation = orientation_of(img)
                size = (raw_h, raw_w) if orientation in ROTATED else (raw_w, raw_h)
                if fmt == "JPEG" and (draft or (mode == GRAY and img.mode == "RGB")):
                    # libjpeg decodes smaller (1/2, 1/4, 1/8), and straight to grey (its Y channel),
                    # much faster than decoding it all and converting it here.
                    img.draft("L" if mode == GRAY and img.mode == "RGB" else "RGB",
                              _stored_size(size, draft, orientation))
                elif fmt == "HEIF" and draft:
                    # libheif cannot decode smaller, but a HEIC may carry a thumbnail: pillow-heif's draft
                    # takes the smallest one that covers the size asked and is a scaled copy of the picture
                    # (same orientation, crop and colours), and leaves the picture alone when none is.
                    img.draft(img.mode, _stored_size(size, draft, orientation))
                img.load()
                frame = img.copy() if count > 1 else img  # the next seek replaces the pixels of img
                if orientation in TRANSPOSE:
                    frame = frame.transpose(TRANSPOSE[orientation])
                frame = convert(frame, mode)
            yield Page(number, count, size, frame, None, fmt, {"frames": frames} if frames > 1 else {})
    finally:
        if count > 1:
            img.close()


def _stored_size(size: tuple[int, int], width: int | None, orientation: int) -> tuple[int, int]:
    """The size to decode at, as stored (before ``orientation``), for a picture ``size`` (as displayed)
    to come out at least ``width`` wide, aspect kept; its own size when ``width`` is None."""
    scale = min(1.0, width / size[0]) if width else 1.0
    need = (max(1, round(size[0] * scale)), max(1, round(size[1] * scale)))
    return (need[1], need[0]) if orientation in ROTATED else need


@contextmanager
def _decoding(fmt: str | None, number: int, opening: bool = False) -> Iterator[None]:
    """Pillow's complaints while decoding page ``number`` of a ``fmt`` file (``opening``: while
    Pillow's openers read its header), as PermanentError."""
    try:
        yield
    except (PermanentError, RetryableError):
        raise
    except UnidentifiedImageError:
        raise PermanentError("not an image, or an image format SnapDesk cannot read") from None
    except Image.DecompressionBombError as exc:
        raise PermanentError(f"the image is too large to open safely ({exc})") from None
    except MemoryError:
        raise RetryableError("not enough memory to decode the image") from None
    except DECODER_ERRORS as exc:
        raise explain(exc, fmt, number) from None
    except RuntimeError as exc:  # libheif and libavif say "Failed to decode frame 0: ..." so
        if opening or fmt in LIBRARY_DECODED:
            raise explain(exc, fmt, number) from None
        raise


def explain(exc: BaseException, fmt: str | None = None, number: int = 1) -> PermanentError:
    """A decoder's exception as the sentence a person reads."""
    message = str(exc)
    low = message.lower()
    kind = fmt or "image"
    if fmt == "HEIF":
        return heif_damaged(exc)
    if "max_text_chunk" in low or "text chunks" in low:
        return PermanentError(f"the {kind if fmt else 'PNG'} carries more text metadata than SnapDesk reads safely "
                              "(a decompression bomb, or a damaged file)")
    unsupported = re.search(r"(?:unsupported|unknown|not supported)\s+(?:[A-Z0-9]{2,}\s+)?([a-z][a-z ]*[a-z])", message,
                            re.I)
    if unsupported and not _truncation(exc, low):
        what = unsupported.group(1).lower()
        fmt_name = fmt or _format_in(message)
        detail = f"{fmt_name} with an unsupported {what}" if fmt_name else f"an unsupported {what}"
        return PermanentError(f"the file is not an image SnapDesk can read ({detail})")
    if number > 1 and _truncation(exc, low):
        ordinal = _ORDINALS[number - 1] if number <= len(_ORDINALS) else f"number {number}"
        return PermanentError(f"the {kind} stops before its {ordinal} page ends: the file is truncated or damaged")
    return damaged(exc)


def _truncation(exc: BaseException, low: str) -> bool:
    return isinstance(exc, (EOFError, struct.error)) or any(
        word in low for word in ("truncated", "not enough", "broken data stream", "end of file", "no more images"))


def _format_in(message: str) -> str | None:
    match = re.search(r"\b(BMP|TIFF|PNG|GIF|JPEG|WEBP|ICO|PCX|TGA|PSD)\b", message)
    return match.group(1) if match else None


# ---------------------------------------------------------------------- pixel modes
def has_alpha(img: Image.Image) -> bool:
    return img.mode in ("RGBA", "LA", "PA", "RGBa", "La") or (img.mode == "P" and "transparency" in img.info)


def convert(img: Image.Image, mode: str) -> Image.Image:
    """``img`` in ``mode``: RGB (RGBA when it has transparency), or GRAY (8-bit, transparency on white)."""
    if has_alpha(img):
        rgba = img.convert("RGBA")
        if mode == RGB:
            return rgba
        background = Image.new("RGBA", img.size, (255, 255, 255, 255))
        return Image.alpha_composite(background, rgba).convert("L")
    if img.mode in ("I;16", "I;16B", "I;16L", "I;16N", "I", "F"):
        img = _eight_bit(img)
    elif img.mode == "LAB":
        img = img.getchannel(0) if mode == GRAY else _lab_to_rgb(img)
    target = "L" if mode == GRAY else "RGB"
    return img if img.mode == target else img.convert(target)


def _eight_bit(img: Image.Image) -> Image.Image:
    """16-bit or 32-bit grey as 8-bit: 16-bit (and 32-bit up to 65535) scaled by 1/257, so a 16-bit
    scan's white stays white; larger integer or float ranges by their own maximum."""
    values = np.asarray(img)
    values = values.astype(np.float32)
    top = float(values.max()) if values.size else 0.0
    if img.mode.startswith("I;16") or 255 < top <= 65535:
        values = values / 257.0
    elif top > 65535:
        values = values * (255.0 / top)
    return Image.fromarray(np.clip(values + 0.5, 0, 255).astype(np.uint8), "L")


def _lab_to_rgb(img: Image.Image) -> Image.Image:
    from PIL import ImageCms

    transform = ImageCms.buildTransform(ImageCms.createProfile("LAB"), ImageCms.createProfile("sRGB"), "LAB", "RGB")
    rgb = ImageCms.applyTransform(img, transform)
    assert rgb is not None  # None only for a transform in place
    return rgb

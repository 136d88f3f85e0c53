"""Thumbnails: three WebP sizes, a blurhash placeholder and the original dimensions.

The image is decoded once, as small as it can be while still covering the largest size:
JPEG's draft mode lets libjpeg decode at 1/2, 1/4 or 1/8 scale, which is several times
faster than decoding all 12 MP. Each smaller size is then made from the one above it.
"""

from __future__ import annotations

import io
import os
from dataclasses import dataclass, field
from pathlib import Path

import blurhash
from PIL import Image, ImageOps, UnidentifiedImageError

from .errors import PermanentError, RetryableError, damaged

#: Thumbnail widths, largest first: each is made from the one before it.
SIZES = {"lg": 600, "md": 300, "sm": 150}
BLURHASH_COMPONENTS = (4, 3)
WEBP_QUALITY = 80
WEBP_MAX_SIDE = 16383
DEFAULT_MAX_PIXELS = 180_000_000

# SnapDesk checks the pixel count itself (max_pixels, before anything is decoded) and
# fails such files with a clear message; Pillow's own global check would only warn first.
Image.MAX_IMAGE_PIXELS = None

_ROTATED = {5, 6, 7, 8}  # EXIF orientations that swap width and height


@dataclass
class Thumbnail:
    name: str
    data: bytes
    width: int
    height: int


@dataclass
class ThumbnailResult:
    width: int  # of the original, as displayed (EXIF orientation applied)
    height: int
    blurhash: str
    thumbnails: list[Thumbnail] = field(default_factory=list)


def make_thumbnails(source: str | os.PathLike | bytes, max_pixels: int = DEFAULT_MAX_PIXELS) -> ThumbnailResult:
    """Make the thumbnails of an image file (a path) or of its bytes."""
    try:
        return _make(source, max_pixels)
    except PermanentError:
        raise
    except FileNotFoundError:
        raise PermanentError("the file is gone: it was moved or deleted after it was added") from None
    except PermissionError:
        raise PermanentError("cannot read the file: permission denied") from None
    except UnidentifiedImageError:
        if _is_empty(source):
            raise PermanentError("the file is empty") from None
        raise PermanentError("not an image, or an image format SnapDesk cannot read") from None
    except Image.DecompressionBombError as exc:
        raise PermanentError(f"the image is too large to open safely ({exc})") from None
    except (OSError, SyntaxError, ValueError) as exc:
        # Pillow reports damaged data as OSError ("image file is truncated", "broken data stream").
        raise damaged(exc) from None
    except MemoryError:
        raise RetryableError("not enough memory to decode the image") from None


def _is_empty(source) -> bool:
    if isinstance(source, (bytes, bytearray)):
        return len(source) == 0
    try:
        return Path(source).stat().st_size == 0
    except OSError:
        return False


def _make(source, max_pixels: int) -> ThumbnailResult:
    fp = io.BytesIO(source) if isinstance(source, (bytes, bytearray)) else source
    with Image.open(fp) as img:
        raw_w, raw_h = img.size
        if raw_w * raw_h > max_pixels:
            raise PermanentError(
                f"the image has {raw_w} x {raw_h} = {raw_w * raw_h / 1e6:.0f} MP, more than the limit of "
                f"{max_pixels / 1e6:.0f} MP (a decompression bomb, or simply too large)")
        orientation = img.getexif().get(0x0112, 1)
        width, height = (raw_h, raw_w) if orientation in _ROTATED else (raw_w, raw_h)

        largest = _fit(width, height, SIZES["lg"])
        if img.format == "JPEG":
            # Ask libjpeg for the smallest scale that still covers the largest thumbnail.
            need = (largest[1], largest[0]) if orientation in _ROTATED else largest
            img.draft("RGB", need)
        img.load()
        frame = ImageOps.exif_transpose(img)

    return thumbnails_of_image(frame, (width, height))


def thumbnails_of_image(frame: Image.Image, original_size: tuple[int, int] | None = None) -> ThumbnailResult:
    """The thumbnails of an image already decoded and upright (a rendered PDF page, say).

    ``original_size`` is the size of the original as displayed, when ``frame`` was decoded smaller."""
    width, height = original_size or frame.size
    frame = _to_rgb(frame)
    thumbnails = []
    current = frame
    for name, target in SIZES.items():  # largest first, each from the previous one
        size = _fit(width, height, target)
        if current.size != size:
            current = current.resize(size, Image.Resampling.LANCZOS, reducing_gap=3.0)
        thumbnails.append(Thumbnail(name, _webp(current), *size))

    tiny = current.resize(_fit(width, height, 32), Image.Resampling.BILINEAR)
    hash_ = blurhash.encode(tiny.convert("RGB"), *BLURHASH_COMPONENTS)
    return ThumbnailResult(width=width, height=height, blurhash=hash_, thumbnails=thumbnails[::-1])


def _fit(width: int, height: int, target_width: int) -> tuple[int, int]:
    """The size ``target_width`` wide (never wider than the original), aspect kept."""
    scale = min(1.0, target_width / width, WEBP_MAX_SIDE / height)
    return max(1, round(width * scale)), max(1, round(height * scale))


def _to_rgb(img: Image.Image) -> Image.Image:
    has_alpha = img.mode in ("RGBA", "LA", "PA") or (img.mode == "P" and "transparency" in img.info)
    if has_alpha:
        return img.convert("RGBA")
    if img.mode in ("I;16", "I;16B", "I;16L", "I"):
        img = img.point(lambda v: v * (1 / 256)).convert("L")
    return img if img.mode == "RGB" else img.convert("RGB")


def _webp(img: Image.Image) -> bytes:
    buf = io.BytesIO()
    img.save(buf, "WEBP", quality=WEBP_QUALITY, method=2)
    return buf.getvalue()


def describe(result: ThumbnailResult) -> dict:
    """The JSON-able part of a result (everything but the image bytes)."""
    return {
        "width": result.width,
        "height": result.height,
        "blurhash": result.blurhash,
        "thumbnails": {t.name: {"width": t.width, "height": t.height, "bytes": len(t.data)} for t in result.thumbnails},
    }

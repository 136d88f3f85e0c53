"""Thumbnails: three WebP sizes (and AVIF ones too when asked), a blurhash placeholder and the original dimensions.

The image is opened through ``processors/decode.py``, the one decode path every job shares (its
limits, its pixel modes, its messages for files it cannot read), and decoded once, as small as it
can be while still covering the largest size: JPEG's draft mode lets libjpeg decode at 1/2, 1/4
or 1/8 scale, which is several times faster than decoding all 12 MP. Each smaller size is then
made from the one above it. A PDF's thumbnails are of its first page; a video's are of its
poster frame (``processors/video.py``), and its duration, codec and frame rate come with them
(``video``); a camera RAW's are of its embedded preview or a half-size demosaic
(``processors/raw.py``); an animation's are of its first frame, and its frame count comes with
them (``frames``).
"""

from __future__ import annotations

import io
from dataclasses import dataclass, field
from typing import Any

import blurhash
from PIL import Image

from . import decode
from .similarity import Likeness, likeness

#: Thumbnail widths, largest first: each is made from the one before it.
SIZES = {"lg": 600, "md": 300, "sm": 150}
BLURHASH_COMPONENTS = (4, 3)
WEBP_QUALITY = 80
AVIF_QUALITY = 60  # of 100 (libavif)
AVIF_SPEED = 8  # libavif: 0 (slowest, smallest) to 10
WEBP_MAX_SIDE = 16383
DEFAULT_MAX_PIXELS = decode.DEFAULT_MAX_PIXELS
PDF_RENDER_WIDTH = 1200  # a PDF's first page is rendered this wide for its thumbnails


@dataclass
class Thumbnail:
    name: str
    data: bytes  # WebP
    width: int
    height: int
    #: The same size in the other formats asked for (SNAPDESK_VARIANT_FORMATS), by format: {"avif": bytes}.
    variants: dict[str, bytes] = field(default_factory=dict)


@dataclass
class ThumbnailResult:
    width: int  # of the original, as displayed (EXIF orientation applied)
    height: int
    blurhash: str
    thumbnails: list[Thumbnail] = field(default_factory=list)
    #: What the decoder learnt besides the pixels (decode.Page.info): see ``media_facts``.
    info: dict[str, Any] = field(default_factory=dict)
    #: What duplicates are found by (processors/similarity.py), from the smallest thumbnail.
    likeness: Likeness | None = None


def make_thumbnails(source: decode.Source, max_pixels: int = DEFAULT_MAX_PIXELS,
                    kind: str = "image", formats: tuple[str, ...] = ("webp",)) -> ThumbnailResult:
    """Make the thumbnails of an image file or a PDF (``kind`` "pdf"), given as a path or its bytes.

    Input no retry can cure raises PermanentError, with the reason ``decode`` gives."""
    if kind == "pdf":
        page = decode.first_page(source, "pdf", mode=decode.RGB, max_pixels=max_pixels, width=PDF_RENDER_WIDTH)
        original_size = None
    elif kind in ("raw", "video"):  # a RAW's JPEG preview is drafted as a JPEG is, a video's poster scaled by FFmpeg
        page = decode.first_page(source, kind, mode=decode.RGB, max_pixels=max_pixels, draft=SIZES["lg"])
        original_size = page.size
    else:
        page = decode.first_page(source, "image", mode=decode.RGB, max_pixels=max_pixels, draft=SIZES["lg"])
        original_size = page.size
    assert page.image is not None  # only a PDF page's text layer comes without one, and it is not asked for
    result = thumbnails_of_image(page.image, original_size, formats)
    result.info = dict(page.info)
    return result


def thumbnails_of_image(frame: Image.Image, original_size: tuple[int, int] | None = None,
                        formats: tuple[str, ...] = ("webp",)) -> ThumbnailResult:
    """The thumbnails of an image already decoded and upright (a rendered PDF page, say): WebP, and each
    size also in the other ``formats`` ("avif") asked for.

    ``original_size`` is the size of the original as displayed, when ``frame`` was decoded smaller."""
    width, height = original_size or frame.size
    frame = _to_rgb(frame)
    thumbnails = []
    current = frame
    for name, target in SIZES.items():  # largest first, each from the previous one
        size = _fit(width, height, target)
        if current.size != size:
            current = current.resize(size, Image.Resampling.LANCZOS, reducing_gap=3.0)
        variants = {fmt: VARIANT_WRITERS[fmt](current) for fmt in formats if fmt != "webp"}
        thumbnails.append(Thumbnail(name, _webp(current), *size, variants=variants))

    tiny = current.resize(_fit(width, height, 32), Image.Resampling.BILINEAR)
    hash_ = blurhash.encode(tiny.convert("RGB"), *BLURHASH_COMPONENTS)
    return ThumbnailResult(width=width, height=height, blurhash=hash_, thumbnails=thumbnails[::-1],
                           likeness=likeness(current))


def _fit(width: int, height: int, target_width: int) -> tuple[int, int]:
    """The size ``target_width`` wide (never wider than the original), aspect kept."""
    scale = min(1.0, target_width / width, WEBP_MAX_SIDE / height)
    return max(1, round(width * scale)), max(1, round(height * scale))


def _to_rgb(img: Image.Image) -> Image.Image:
    return decode.convert(img, decode.RGB)


def _webp(img: Image.Image) -> bytes:
    buf = io.BytesIO()
    img.save(buf, "WEBP", quality=WEBP_QUALITY, method=2)
    return buf.getvalue()


def _avif(img: Image.Image) -> bytes:
    buf = io.BytesIO()
    img.save(buf, "AVIF", quality=AVIF_QUALITY, speed=AVIF_SPEED)
    return buf.getvalue()


#: The formats each size can be written in besides WebP (SNAPDESK_VARIANT_FORMATS), and their writers.
VARIANT_WRITERS = {"avif": _avif}


def describe(result: ThumbnailResult) -> dict[str, Any]:
    """The JSON-able part of a result (everything but the image bytes)."""
    return {
        "width": result.width,
        "height": result.height,
        "blurhash": result.blurhash,
        "thumbnails": {t.name: {"width": t.width, "height": t.height, "bytes": len(t.data),
                                **{fmt: {"bytes": len(data)} for fmt, data in t.variants.items()}}
                       for t in result.thumbnails},
        **media_facts(result.info),
        **({"likeness": result.likeness.to_json()} if result.likeness else {}),
    }


def media_facts(info: dict[str, Any]) -> dict[str, Any]:
    """The result's fields for what the decoder learnt: ``frames`` (an animation's frame count),
    ``video`` (duration in seconds, codec, fps, poster_time), ``raw`` (``picture``: "preview" or
    "demosaic"). Empty for a still image or a PDF."""
    facts: dict[str, Any] = {}
    if info.get("frames", 1) > 1:
        facts["frames"] = info["frames"]
    video = {k: info[k] for k in ("duration", "codec", "fps", "poster_time") if k in info}
    if video:
        facts["video"] = video
    if "picture" in info:
        facts["raw"] = {"picture": info["picture"]}
    return facts

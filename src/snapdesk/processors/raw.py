"""Camera RAW files (DNG, CR2, CR3, NEF, ARW, ORF, RW2, RAF) through rawpy (LibRaw).

``decode(data)`` gives the picture to make thumbnails from and the document's real dimensions:

* the size is the sensor image's as LibRaw develops it (``sizes.width`` x ``sizes.height``, turned
  by the file's orientation), whatever picture is used for the thumbnails;
* the picture is the JPEG (or bitmap) preview the camera embedded, when its long side is at least
  ``MIN_PREVIEW`` pixels: reading it is a matter of milliseconds (with ``draft``, the width the
  caller needs, a JPEG preview is decoded at the smallest 1/2, 1/4 or 1/8 scale that covers it: a
  full-size 24 MP preview, as Canon and Nikon bodies embed, costs what a 12 MP JPEG's thumbnails
  do); otherwise the sensor data is demosaiced at half size (camera white balance, 8 bits), which
  takes a second or more.

Every LibRaw complaint becomes a PermanentError: a camera LibRaw does not know (or a file that is
not a RAW at all), damaged data, a file that ends early. rawpy is imported inside ``decode``, so
only a worker that meets a RAW file loads LibRaw.
"""

from __future__ import annotations

import io
from dataclasses import dataclass

from PIL import Image

from .orientation import DECODER_ERRORS, ROTATED, TRANSPOSE, orientation_of
from .errors import PermanentError

MIN_PREVIEW = 600  # an embedded preview this long (long side) or more is used as the picture

# LibRaw's flip: 3 = 180 degrees, 5 = 90 counter-clockwise, 6 = 90 clockwise.
_FLIP = {3: Image.Transpose.ROTATE_180, 5: Image.Transpose.ROTATE_90, 6: Image.Transpose.ROTATE_270}


@dataclass
class RawPicture:
    image: Image.Image  # upright, RGB
    size: tuple[int, int]  # the developed sensor image's, as displayed
    source: str  # "preview" or "demosaic"


def decode(data: bytes, *, max_pixels: int | None = None, min_preview: int = MIN_PREVIEW,
           draft: int | None = None) -> RawPicture:
    """The picture and size of a RAW file given as bytes (PermanentError when LibRaw cannot read it).

    ``draft``: the width (as displayed) the caller needs at most; a JPEG preview may come smaller
    than its full size, but never narrower than that."""
    import rawpy  # LibRaw is loaded only when a RAW file comes

    try:
        with rawpy.imread(io.BytesIO(data)) as raw:
            flip = int(raw.sizes.flip)
            width, height = int(raw.sizes.width), int(raw.sizes.height)
            if width < 1 or height < 1:
                raise PermanentError("the RAW file holds no image")
            if max_pixels is not None and width * height > max_pixels:
                raise PermanentError(f"the RAW image has {width} x {height} = {width * height / 1e6:.0f} MP, more "
                                     f"than the limit of {max_pixels / 1e6:.0f} MP")
            size = (height, width) if flip in (5, 6) else (width, height)
            preview = _preview(raw, rawpy, flip, min_preview, draft)
            if preview is not None:
                return RawPicture(preview, size, "preview")
            pixels = raw.postprocess(half_size=True, use_camera_wb=True, output_bps=8, no_auto_bright=False)
            return RawPicture(Image.fromarray(pixels).convert("RGB"), size, "demosaic")
    except rawpy.LibRawFileUnsupportedError:
        raise PermanentError("not a RAW file SnapDesk can read: the camera is unknown to LibRaw, or the file is "
                             "not a camera RAW at all") from None
    except rawpy.LibRawTooBigError:
        raise PermanentError("the RAW image is too large to open safely") from None
    except (rawpy.LibRawIOError, rawpy.LibRawDataError):
        raise PermanentError("the RAW file is damaged or truncated: LibRaw could not read its image data") from None
    except rawpy.LibRawError as exc:
        raise PermanentError(f"the RAW file cannot be read: {exc}") from None
    except MemoryError:
        from .errors import RetryableError

        raise RetryableError("not enough memory to develop the RAW image") from None


def _preview(raw: object, rawpy: object, flip: int, min_preview: int, draft: int | None = None) -> Image.Image | None:
    """The embedded preview, upright, when there is one at least ``min_preview`` long; else None.
    With ``draft``, a JPEG preview is decoded at the smallest scale that is still ``draft`` wide upright."""

    try:
        thumb = raw.extract_thumb()  # type: ignore[attr-defined]
    except getattr(rawpy, "LibRawError") as exc:  # no preview, or one of a kind LibRaw cannot hand out
        del exc
        return None
    img: Image.Image
    try:
        if thumb.format == getattr(rawpy, "ThumbFormat").JPEG:
            jpeg = Image.open(io.BytesIO(thumb.data))
            if max(jpeg.size) < min_preview:
                return None
            orientation = orientation_of(jpeg)
            if draft:
                # Which way up it is shown: its own orientation when it says one, else the RAW's.
                turned = orientation in ROTATED if orientation != 1 else flip in (5, 6)
                width = jpeg.size[1] if turned else jpeg.size[0]
                scale = min(1.0, draft / width)
                jpeg.draft("RGB", (max(1, round(jpeg.size[0] * scale)), max(1, round(jpeg.size[1] * scale))))
            img = jpeg.convert("RGB")
            if orientation != 1:  # the preview says its own orientation: trust it over the RAW's
                return img.transpose(TRANSPOSE[orientation]) if orientation in TRANSPOSE else img
        else:
            img = Image.fromarray(thumb.data).convert("RGB")
            if max(img.size) < min_preview:
                return None
    except DECODER_ERRORS:
        return None  # a damaged preview: develop the sensor data instead
    return img.transpose(_FLIP[flip]) if flip in _FLIP else img

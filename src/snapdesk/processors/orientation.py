"""What every decoder here shares of Pillow: EXIF orientation (the value, and how to turn an
image upright), and the errors Pillow's decoders raise on data they cannot make sense of.
``decode.py`` and ``raw.py`` (a RAW's embedded JPEG preview) both use it."""

from __future__ import annotations

import struct

from PIL import Image

TRANSPOSE = {2: Image.Transpose.FLIP_LEFT_RIGHT, 3: Image.Transpose.ROTATE_180, 4: Image.Transpose.FLIP_TOP_BOTTOM,
              5: Image.Transpose.TRANSPOSE, 6: Image.Transpose.ROTATE_270, 7: Image.Transpose.TRANSVERSE,
              8: Image.Transpose.ROTATE_90}
ROTATED = {5, 6, 7, 8}  # EXIF orientations that swap width and height
#: What Pillow's decoders raise on data they cannot make sense of (Warning: a warning made an
#: error, as under ``python -W error``).
DECODER_ERRORS = (OSError, SyntaxError, ValueError, EOFError, struct.error, IndexError, KeyError, ZeroDivisionError,
                  Warning)


def orientation_of(img: Image.Image) -> int:
    """The EXIF orientation (1 to 8), or 1 when there is none or the EXIF block is damaged (the
    pixels are still good: a damaged EXIF block never costs the image)."""
    try:
        value = img.getexif().get(0x0112, 1)
    except DECODER_ERRORS:
        return 1
    return value if isinstance(value, int) and 1 <= value <= 8 else 1

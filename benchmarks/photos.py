"""Photo-like test images: smooth light, shapes with soft edges, fine texture and sensor noise.

Pure noise is the worst case for any codec and nothing like a photo; a flat image is the
best case. This sits between, close to what a phone camera produces.
"""

from __future__ import annotations

import io

import numpy as np
from PIL import Image, ImageDraw, ImageFilter


def make_photo(width: int = 4000, height: int = 3000, seed: int = 0, exif_orientation: int | None = None) -> bytes:
    """A JPEG (quality 90, like a phone's) of ``width`` x ``height`` pixels."""
    rng = np.random.default_rng(seed)
    small_w, small_h = max(1, width // 8), max(1, height // 8)
    y, x = np.mgrid[0:small_h, 0:small_w].astype(np.float32)
    base = np.stack([
        120 + 80 * np.sin(x / small_w * 3 + seed) * np.cos(y / small_h * 2),
        110 + 70 * np.cos(x / small_w * 2 - y / small_h * 3),
        140 + 60 * np.sin(y / small_h * 4 + seed),
    ], axis=-1)
    scene = Image.fromarray(base.clip(0, 255).astype(np.uint8))
    draw = ImageDraw.Draw(scene)
    for _ in range(40):
        cx, cy = rng.integers(0, small_w), rng.integers(0, small_h)
        r = int(rng.integers(small_w // 40 + 1, small_w // 6 + 2))
        draw.ellipse((cx - r, cy - r, cx + r, cy + r), fill=tuple(int(c) for c in rng.integers(0, 255, 3)))
    scene = scene.filter(ImageFilter.GaussianBlur(2)).resize((width, height), Image.Resampling.BICUBIC)
    pixels = np.asarray(scene, dtype=np.int16)
    pixels = pixels + rng.normal(0, 6, (height, width, 1)).astype(np.int16)  # sensor noise
    image = Image.fromarray(pixels.clip(0, 255).astype(np.uint8))
    buf = io.BytesIO()
    exif = Image.Exif()
    if exif_orientation:
        exif[0x0112] = exif_orientation
    image.save(buf, "JPEG", quality=90, exif=exif.tobytes())
    return buf.getvalue()

"""Writes SnapDesk's resources into src/snapdesk/resources/ (run it after changing anything here).

    .venv/bin/python resources/make_resources.py

This script is the source of the resources; what it writes is committed, because the wheel,
the sdist and the PyInstaller bundle all ship the copy inside the package (package data under
``snapdesk/resources``), where ``importlib.resources`` finds it both installed and frozen.

* ``snapdesk.svg``, ``snapdesk.png`` (256 px), ``snapdesk.ico`` (16-256 px): the app icon, the
  same drawing as ``gui.window.app_icon()``: four tiles on a blue square, one of them done.
* ``selftest.png``: a small scanned-looking page of printed text that ``snapdesk-worker
  --self-test`` thumbnails and reads; ``selftest.pdf``: a one-page PDF with a text layer, which
  the self-test reads through PDFium. Both are written with nothing but Pillow and plain bytes.
* ``selftest.heic``: a 320x240 picture (a gradient, a red block in its stored top-left corner)
  with EXIF orientation 6, as a phone held upright writes it (pillow-heif); ``selftest.mp4``: one
  second of 160x120 H.264 whose first quarter second is black (PyAV). The self-test makes their
  thumbnails, which shows libheif and FFmpeg are in the bundle and read as they should.
"""

from __future__ import annotations

from pathlib import Path

import io

import numpy as np
from PIL import Image, ImageDraw, ImageFont

OUT = Path(__file__).resolve().parent.parent / "src" / "snapdesk" / "resources"

BLUE, WHITE, DONE = "#2d7ff9", "#ffffff", "#7ee2a0"

#: What the self-test sample says, line by line (selftest.py looks for these words).
SAMPLE_LINES = ["SNAPDESK SELF TEST", "Corner Bakery      14.58", "Invoice 2026-03-14"]
PDF_TEXT = "SnapDesk self test: this page has a text layer."


def _tiles(size: float):
    """(x, y, width, radius, colour) of each tile, as app_icon() places them."""
    gap, tile = size * 0.12, size * 0.32
    for i, color in enumerate((WHITE, WHITE, WHITE, DONE)):
        x, y = gap * 1.5 + (i % 2) * (tile + gap), gap * 1.5 + (i // 2) * (tile + gap)
        yield x, y, tile, size * 0.06, color


def icon(size: int) -> Image.Image:
    scale = 4  # drawn large and scaled down: Pillow's shapes have no antialiasing of their own
    big = size * scale
    img = Image.new("RGBA", (big, big), (0, 0, 0, 0))
    draw = ImageDraw.Draw(img)
    draw.rounded_rectangle((0, 0, big - 1, big - 1), radius=big * 0.22, fill=BLUE)
    for x, y, w, r, color in _tiles(big):
        draw.rounded_rectangle((x, y, x + w, y + w), radius=r, fill=color)
    return img.resize((size, size), Image.LANCZOS)


def icon_svg() -> str:
    rects = "\n".join(f'  <rect x="{x:g}" y="{y:g}" width="{w:g}" height="{w:g}" rx="{r:g}" fill="{c}"/>'
                      for x, y, w, r, c in _tiles(100))
    return (f'<svg xmlns="http://www.w3.org/2000/svg" width="256" height="256" viewBox="0 0 100 100">\n'
            f'  <rect width="100" height="100" rx="22" fill="{BLUE}"/>\n{rects}\n</svg>\n')


def sample() -> Image.Image:
    img = Image.new("L", (560, 200), 255)
    draw = ImageDraw.Draw(img)
    font = ImageFont.load_default(size=30)  # Pillow's own font: the same image on every machine
    for n, line in enumerate(SAMPLE_LINES):
        draw.text((28, 26 + n * 54), line, fill=20, font=font)
    return img


def sample_pdf() -> bytes:
    """A one-page PDF (A6) whose text layer says PDF_TEXT in Helvetica, written by hand."""
    stream = f"BT /F1 11 Tf 20 260 Td ({PDF_TEXT}) Tj ET".encode()
    objects = [
        b"<< /Type /Catalog /Pages 2 0 R >>",
        b"<< /Type /Pages /Kids [3 0 R] /Count 1 >>",
        b"<< /Type /Page /Parent 2 0 R /MediaBox [0 0 298 420] /Resources << /Font << /F1 4 0 R >> >> "
        b"/Contents 5 0 R >>",
        b"<< /Type /Font /Subtype /Type1 /BaseFont /Helvetica >>",
        b"<< /Length %d >>\nstream\n%s\nendstream" % (len(stream), stream),
    ]
    out = bytearray(b"%PDF-1.4\n")
    offsets = []
    for n, body in enumerate(objects, 1):
        offsets.append(len(out))
        out += b"%d 0 obj\n%s\nendobj\n" % (n, body)
    xref = len(out)
    out += b"xref\n0 %d\n0000000000 65535 f \n" % (len(objects) + 1)
    out += b"".join(b"%010d 00000 n \n" % o for o in offsets)
    out += b"trailer\n<< /Size %d /Root 1 0 R >>\nstartxref\n%d\n%%%%EOF\n" % (len(objects) + 1, xref)
    return bytes(out)


def _gradient(width: int, height: int, corner: bool) -> np.ndarray:
    y, x = np.mgrid[0:height, 0:width]
    pixels = np.stack([x * 200 // width, y * 200 // height, np.full_like(x, 90)], axis=-1).astype(np.uint8)
    if corner:
        pixels[: height // 5, : width // 5] = (255, 0, 0)
    return pixels


def sample_heic() -> bytes:
    """320x240 stored, shown 240x320 (EXIF orientation 6): the red block ends up top right."""
    import pillow_heif

    pillow_heif.register_heif_opener()
    exif = Image.Exif()
    exif[0x0112] = 6
    buf = io.BytesIO()
    Image.fromarray(_gradient(320, 240, corner=True)).save(buf, "HEIF", quality=60, exif=exif.tobytes())
    return buf.getvalue()


def sample_video(seconds: float = 1.0, fps: int = 12, size: tuple[int, int] = (160, 120)) -> bytes:
    """H.264 in MP4, black for its first quarter second, then an orange-red gradient."""
    import av

    buf = io.BytesIO()
    with av.open(buf, "w", format="mp4") as out:
        stream = out.add_stream("libx264", rate=fps)
        stream.width, stream.height, stream.pix_fmt = size[0], size[1], "yuv420p"
        stream.options = {"crf": "35"}
        picture = _gradient(*size, corner=False)
        picture[..., 0] = 200
        for i in range(int(seconds * fps)):
            pixels = np.zeros_like(picture) if i < fps // 4 else picture
            for packet in stream.encode(av.VideoFrame.from_ndarray(pixels, format="rgb24")):
                out.mux(packet)
        for packet in stream.encode():
            out.mux(packet)
    return buf.getvalue()


def main() -> None:
    OUT.mkdir(parents=True, exist_ok=True)
    (OUT / "snapdesk.svg").write_text(icon_svg(), encoding="utf-8")
    icon(256).save(OUT / "snapdesk.png", optimize=True)
    icon(256).save(OUT / "snapdesk.ico", sizes=[(16, 16), (24, 24), (32, 32), (48, 48), (64, 64), (128, 128), (256, 256)])
    sample().save(OUT / "selftest.png", optimize=True)
    (OUT / "selftest.pdf").write_bytes(sample_pdf())
    (OUT / "selftest.heic").write_bytes(sample_heic())
    (OUT / "selftest.mp4").write_bytes(sample_video())
    for path in sorted(OUT.iterdir()):
        print(f"{path.stat().st_size:>8} {path.relative_to(OUT.parent.parent.parent)}")


if __name__ == "__main__":
    main()

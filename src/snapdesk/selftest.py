"""``snapdesk-worker --self-test``: thumbnail and OCR the bundled samples, offline, and say what came out.

It runs the real processors in this process on the samples in ``snapdesk/resources`` (written by
``resources/make_resources.py``) with every network connection refused, so it shows that an
installed or frozen SnapDesk has everything it needs on disk: Pillow with WebP, blurhash,
onnxruntime with rapidocr's models, PDFium, libheif (a HEIC turned by its EXIF orientation), FFmpeg
(an H.264 clip's poster past its black start) and LibRaw. It prints one line per check and exits 0 when
all of them pass, 1 when any fails.
"""

from __future__ import annotations

import contextlib
import io
import socket
import sys
import time
from importlib import resources

from PIL import Image

from . import __version__

#: The sample's lines as printed (resources/make_resources.py); OCR must read each of them, spaces aside.
EXPECTED_LINES = ("SNAPDESK SELF TEST", "Corner Bakery 14.58", "Invoice 2026-03-14")
EXPECTED_PDF_TEXT = "SnapDesk self test: this page has a text layer."


class NetworkBlocked(OSError):
    pass


@contextlib.contextmanager
def network_blocked():
    """Refuse every connection and name lookup made in this process; yields the list of attempts."""
    attempts: list[str] = []
    saved = (socket.socket.connect, socket.socket.connect_ex, socket.getaddrinfo, socket.gethostbyname)

    def refuse(what):
        attempts.append(str(what))
        raise NetworkBlocked(f"the self-test runs offline: no connection to {what}")

    def connect(sock, address):
        if sock.family == getattr(socket, "AF_UNIX", None):
            return saved[0](sock, address)
        refuse(address)

    def connect_ex(sock, address):
        if sock.family == getattr(socket, "AF_UNIX", None):
            return saved[1](sock, address)
        refuse(address)

    socket.socket.connect, socket.socket.connect_ex = connect, connect_ex
    socket.getaddrinfo = lambda host, *a, **k: refuse(host)
    socket.gethostbyname = lambda host: refuse(host)
    try:
        yield attempts
    finally:
        socket.socket.connect, socket.socket.connect_ex, socket.getaddrinfo, socket.gethostbyname = saved


def _sample(name: str) -> bytes:
    return (resources.files("snapdesk") / "resources" / name).read_bytes()


def _squash(text: str) -> str:
    return "".join(text.split()).lower()


def check_thumbnail() -> tuple[bool, str]:
    from .processors.thumbnail import SIZES, make_thumbnails

    result = make_thumbnails(_sample("selftest.png"))
    sizes = {t.name: t for t in result.thumbnails}
    ok = set(sizes) == set(SIZES) and all(t.data[8:12] == b"WEBP" for t in sizes.values()) and bool(result.blurhash)
    made = ", ".join(f"{t.name} {t.width}x{t.height} {len(t.data)} B" for t in result.thumbnails)
    return ok, f"selftest.png {result.width}x{result.height}: {made}; blurhash {result.blurhash}"


def check_ocr() -> tuple[bool, str]:
    from .processors.ocr import get_engine, model_files, ocr_document

    result = ocr_document(_sample("selftest.png"), "image", lambda percent: None)
    found = _squash(result["text"])
    missing = [line for line in EXPECTED_LINES if _squash(line) not in found]
    text = " | ".join(result["text"].splitlines())
    det, rec = model_files(get_engine().rec_model)
    detail = (f"read {text!r}, confidence {result['confidence']:.2f}, {get_engine().rec_model} models "
              f"({det} and {rec.name})")
    if missing:
        detail += f"; did not read {', '.join(map(repr, missing))}"
    return not missing, detail


def check_pdf() -> tuple[bool, str]:
    from .processors import pdf
    from .processors.ocr import ocr_document
    from .processors.thumbnail import thumbnails_of_image

    source = _sample("selftest.pdf")
    result = ocr_document(source, "pdf", lambda percent: None)
    page = pdf.first_page_image(source, max_pixels=10_000_000)
    thumbs = thumbnails_of_image(page)
    ok = (result["page_count"] == 1 and result["pages"][0]["source"] == "text-layer"
          and _squash(result["text"]) == _squash(EXPECTED_PDF_TEXT) and len(thumbs.thumbnails) == 3)
    return ok, (f"selftest.pdf: {result['page_count']} page, {result['pages'][0]['source']} {result['text']!r}; "
                f"first page rendered {page.width}x{page.height}")


def check_heic() -> tuple[bool, str]:
    from .processors.thumbnail import make_thumbnails

    result = make_thumbnails(_sample("selftest.heic"))
    lg = Image.open(io.BytesIO({t.name: t for t in result.thumbnails}["lg"].data)).convert("RGB")
    r, g, b = lg.getpixel((lg.width - 8, 8))  # the stored top-left red block, top right once upright
    ok = (result.width, result.height) == (240, 320) and r > 180 and g < 80 and b < 80
    return ok, (f"selftest.heic {result.width}x{result.height} upright (stored 320x240, EXIF orientation 6), "
                f"top-right pixel {(r, g, b)}; libheif {_version('pillow_heif')}")


def check_video() -> tuple[bool, str]:
    from .processors.thumbnail import describe, make_thumbnails

    result = make_thumbnails(_sample("selftest.mp4"), kind="video")
    facts = describe(result).get("video", {})
    lg = Image.open(io.BytesIO({t.name: t for t in result.thumbnails}["lg"].data)).convert("RGB")
    r, _, _ = lg.getpixel((8, lg.height // 2))
    ok = ((result.width, result.height) == (160, 120) and facts.get("codec") == "h264"
          and facts.get("poster_time", 0) > 0 and r > 150)
    return ok, f"selftest.mp4 {result.width}x{result.height}: {facts}, poster red {r}; FFmpeg {_version('av')}"


def check_raw() -> tuple[bool, str]:
    import rawpy  # LibRaw's shared library loads: a RAW's own check is tests/integration/test_formats.py

    return bool(rawpy.libraw_version), f"LibRaw {'.'.join(map(str, rawpy.libraw_version))} loads"


def _version(module: str) -> str:
    if module == "av":
        import av

        return str(av.ffmpeg_version_info)
    import pillow_heif

    return str(pillow_heif.libheif_version())


CHECKS = (("thumbnail", check_thumbnail), ("ocr", check_ocr), ("pdf", check_pdf), ("heic", check_heic),
          ("video", check_video), ("raw", check_raw))


def run(out=None) -> int:
    """Run every check; print what each found. 0 when all pass, 1 when any fails."""
    out = out or sys.stdout
    frozen = " (frozen)" if getattr(sys, "frozen", False) else ""
    print(f"snapdesk-worker {__version__} self-test{frozen}, network blocked", file=out, flush=True)
    failed = []
    with network_blocked() as attempts:
        for name, check in CHECKS:
            start = time.perf_counter()
            try:
                ok, detail = check()
            except Exception as exc:  # what broke is the finding
                ok, detail = False, f"{type(exc).__name__}: {exc}"
            ms = (time.perf_counter() - start) * 1000
            print(f"{'ok  ' if ok else 'FAIL'} {name:<9} {detail} ({ms:.0f} ms)", file=out, flush=True)
            if not ok:
                failed.append(name)
    if attempts:
        failed.append("network")
        print(f"FAIL network   something tried to go online: {', '.join(attempts)}", file=out)
    print("self-test passed" if not failed else f"self-test FAILED: {', '.join(failed)}", file=out, flush=True)
    return 1 if failed else 0

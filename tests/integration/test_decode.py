"""The one decode path (processors/decode.py): broken and unusual files, made here with Pillow and
byte surgery, read or refused the same way by the thumbnail and the OCR processors; the page
limit; the time limit; and photos without text, through the real engine on both transports."""

import io
import struct
from pathlib import Path

import numpy as np
import pytest
from fpdf import FPDF
from PIL import Image, ImageDraw, ImageFilter, PngImagePlugin

from snapdesk.processors import decode
from snapdesk.processors.errors import PermanentError
from snapdesk.processors.ocr import get_engine, has_text, ocr_document
from snapdesk.processors.thumbnail import make_thumbnails

from helpers import _font

MAX_PIXELS = 180_000_000
LINE = "Please send the invoice to our office in York"


# ---------------------------------------------------------------------- files
def _save(img, fmt, **kw) -> bytes:
    buf = io.BytesIO()
    img.save(buf, fmt, **kw)
    return buf.getvalue()


def text_page(lines=(LINE,), size=(1100, 120)) -> Image.Image:
    img = Image.new("L", size, 255)
    draw = ImageDraw.Draw(img)
    for i, line in enumerate(lines):
        draw.text((30, 30 + i * 48), line, fill=0, font=_font(32))
    return img


def bmp_unsupported_compression() -> bytes:
    data = bytearray(_save(Image.new("RGB", (40, 30), "red"), "BMP"))
    data[30:34] = struct.pack("<I", 7)  # biCompression: no such method
    return bytes(data)


def lab_tiff() -> bytes:
    return _save(Image.new("LAB", (120, 80), (200, 128, 128)), "TIFF")


def gray16_tiff(big_endian: bool = False) -> bytes:
    """Text as a 16-bit greyscale TIFF, as many scanners write (white is 65535); Motorola byte
    order (mode I;16B, which Pillow's point() refuses) or Intel (I;16)."""
    page = text_page()
    pixels = np.asarray(page).astype(">u2" if big_endian else "<u2") * 257
    return _save(Image.frombytes("I;16B" if big_endian else "I;16", page.size, pixels.tobytes()), "TIFF")


def png_text_bomb() -> bytes:
    info = PngImagePlugin.PngInfo()
    info.add_text("comment", "x" * (2 * PngImagePlugin.MAX_TEXT_CHUNK), zip=True)  # a few KB compressed
    return _save(Image.new("L", (10, 10)), "PNG", pnginfo=info)


def tiff_second_page_cut() -> bytes:
    first, second = text_page(), text_page(("A second page that never ends",))
    data = _save(first, "TIFF", save_all=True, append_images=[second])
    with Image.open(io.BytesIO(data)) as img:
        img.seek(1)
        offset = img.tile[0].offset
    return data[:offset + 2000]  # the second page's strip stops early


def jpeg_truncated_exif() -> bytes:
    exif = Image.Exif()
    exif[0x0112] = 6
    exif[0x010F] = "Camera maker " * 5
    return _save(Image.new("RGB", (90, 60), "blue"), "JPEG", exif=exif.tobytes()[:30])  # the IFD is cut off


def multi_page_tiff(pages: int) -> bytes:
    frames = [text_page((f"Page {n} of the scanned letter",), size=(800, 100)) for n in range(1, pages + 1)]
    return _save(frames[0], "TIFF", save_all=True, append_images=frames[1:])


def text_pdf(pages: int) -> bytes:
    pdf = FPDF()
    pdf.set_font("helvetica", size=12)
    for n in range(1, pages + 1):
        pdf.add_page()
        pdf.multi_cell(0, 6, f"Page {n}: the minutes of the meeting of the garden committee.")
    return bytes(pdf.output())


def scene(seed=0, width=1600, height=1200) -> bytes:
    """A text-free photo: a gradient sky, outlined rings, boxes and sticks (what OCR used to read as
    "0", "O" or "I"), filled shapes, grass and noise."""
    rng = np.random.default_rng(seed)
    y = np.mgrid[0:height, 0:width][0][..., None] / height
    top, bottom = rng.integers(120, 256, 3), rng.integers(0, 140, 3)
    pixels = top * (1 - y) + bottom * y + rng.normal(0, 6, (height, width, 3))
    img = Image.fromarray(pixels.clip(0, 255).astype(np.uint8))
    draw = ImageDraw.Draw(img)
    for _ in range(12):
        x0, y0 = int(rng.integers(0, width - 200)), int(rng.integers(0, height - 200))
        s = int(rng.integers(20, 180))
        colour = tuple(int(v) for v in rng.integers(0, 120, 3))
        shape = int(rng.integers(0, 4))
        if shape == 0:
            draw.ellipse([x0, y0, x0 + int(s * 0.7), y0 + s], outline=colour, width=max(2, s // 8))
        elif shape == 1:
            draw.rectangle([x0, y0, x0 + s, y0 + s], outline=colour, width=max(2, s // 10))
        elif shape == 2:
            draw.line([(x0, y0), (x0 + s // 10, y0 + s)], fill=colour, width=max(2, s // 8))
        else:
            draw.ellipse([x0, y0, x0 + 2 * s, y0 + s], fill=colour)
    for _ in range(300):
        x0, y0 = int(rng.integers(0, width)), int(rng.integers(height * 2 // 3, height))
        draw.line([(x0, y0), (x0 + int(rng.integers(-8, 8)), y0 - int(rng.integers(5, 30)))],
                  fill=(20, int(rng.integers(90, 180)), 30), width=2)
    return _save(img.filter(ImageFilter.GaussianBlur(1)), "JPEG", quality=88)


@pytest.fixture(scope="module")
def engine():
    return get_engine()


def _outcome(call):
    try:
        return "ok", call()
    except PermanentError as exc:
        return "permanent", str(exc)


# ---------------------------------------------------------------------- broken and unusual files
REFUSED = [
    (bmp_unsupported_compression, "the file is not an image SnapDesk can read (BMP with an unsupported compression)"),
    (png_text_bomb, ("the PNG carries more text metadata than SnapDesk reads safely (a decompression bomb, or a "
                     "damaged file)")),
]


@pytest.mark.parametrize("make, message", REFUSED, ids=["bmp-compression", "png-text-bomb"])
def test_a_file_no_decoder_can_read_fails_permanently_alike_for_thumbnails_and_ocr(make, message, engine):
    data = make()
    thumb = _outcome(lambda: make_thumbnails(data))
    text = _outcome(lambda: ocr_document(data, "image", None, MAX_PIXELS, engine))
    assert thumb == text == ("permanent", message)


# Pillow warns about the damaged EXIF block (and goes on): a warning, as in the worker, not an error.
@pytest.mark.filterwarnings("ignore::UserWarning:PIL.TiffImagePlugin")
@pytest.mark.parametrize("make, size", [(lab_tiff, (120, 80)), (jpeg_truncated_exif, (90, 60)),
                                        (gray16_tiff, (1100, 120))], ids=["lab-tiff", "jpeg-cut-exif", "16-bit-tiff"])
def test_unusual_but_readable_files_are_read_by_both(make, size, engine):
    data = make()
    thumbs = make_thumbnails(data)
    assert (thumbs.width, thumbs.height) == size
    with Image.open(io.BytesIO(thumbs.thumbnails[-1].data)) as lg:
        assert lg.mode == "RGB"
    result = ocr_document(data, "image", None, MAX_PIXELS, engine)
    assert (result["pages"][0]["width"], result["pages"][0]["height"]) == size


def test_lab_colours_are_converted_not_copied():
    page = decode.first_page(lab_tiff())
    assert page.image.mode == "RGB"
    r, g, b = page.image.getpixel((5, 5))
    assert max(r, g, b) - min(r, g, b) <= 3 and 185 <= r <= 205  # L* 78 and no colour: light grey


@pytest.mark.parametrize("big_endian", [False, True], ids=["I;16", "I;16B"])
def test_text_in_a_16_bit_greyscale_tiff_is_read(big_endian, engine):
    with Image.open(io.BytesIO(gray16_tiff(big_endian))) as img:
        assert img.mode == ("I;16B" if big_endian else "I;16")
    result = ocr_document(gray16_tiff(big_endian), "image", None, MAX_PIXELS, engine)
    assert " ".join(result["text"].split()) == LINE
    thumbs = make_thumbnails(gray16_tiff(big_endian))
    with Image.open(io.BytesIO(thumbs.thumbnails[-1].data)) as lg:
        assert lg.getpixel((2, 2)) == (255, 255, 255)  # white stays white, not clipped or darkened


def test_a_tiff_cut_off_in_its_second_page(engine):
    data = tiff_second_page_cut()
    with pytest.raises(PermanentError) as err:
        ocr_document(data, "image", None, MAX_PIXELS, engine)
    assert str(err.value) == "the TIFF stops before its second page ends: the file is truncated or damaged"
    assert make_thumbnails(data).width == 1100  # a thumbnail shows the first page, which is whole


@pytest.mark.parametrize("mode", ["1", "P", "LA", "PA", "I", "F", "CMYK", "YCbCr", "HSV", "I;16B", "RGBA"])
def test_every_pixel_mode_becomes_what_the_caller_needs(mode):
    img = Image.new("RGB", (8, 6), (250, 250, 250)).convert(mode) if mode not in ("I", "F", "I;16B") else \
        Image.new(mode, (8, 6), 1000)
    gray = decode.convert(img, decode.GRAY)
    rgb = decode.convert(img, decode.RGB)
    assert gray.mode == "L" and gray.size == (8, 6)
    assert rgb.mode == ("RGBA" if mode in ("LA", "PA", "RGBA") else "RGB")


def test_a_decompression_bomb_in_a_later_page_is_refused_before_it_is_decoded():
    data = bytearray(_save(Image.new("L", (10, 10), 255), "TIFF", save_all=True,
                           append_images=[Image.new("L", (123, 457), 255)]))
    for tag, value in ((256, 123), (257, 457)):  # the second page's width and height claim 20000 each
        for kind, packed in ((3, struct.pack("<HH", value, 0)), (4, struct.pack("<I", value))):
            entry = struct.pack("<HHI", tag, kind, 1) + packed
            at = data.find(entry)
            if at >= 0:
                data[at + 8:at + 12] = struct.pack("<HH", 20_000, 0) if kind == 3 else struct.pack("<I", 20_000)
                break
        else:
            raise AssertionError(f"tag {tag} not found")
    data = bytes(data)
    with pytest.raises(PermanentError, match="page 2 of the image has 20000 x 20000 = 400 MP, more than the limit"):
        list(decode.pages(data, mode=decode.GRAY))


# ---------------------------------------------------------------------- the page limit
def test_ocr_reads_the_first_pages_up_to_the_limit_and_says_so(engine):
    data = multi_page_tiff(3)
    seen = []
    result = ocr_document(data, "image", seen.append, MAX_PIXELS, engine, max_pages=2)
    assert result["page_count"] == 2 and result["pages_total"] == 3
    assert result["note"] == "only the first 2 of 3 pages were read (the limit is SNAPDESK_MAX_PAGES=2)"
    assert "Page 2 of the scanned letter" in result["text"] and "Page 3" not in result["text"]
    assert seen[-1] == 100
    whole = ocr_document(data, "image", None, MAX_PIXELS, engine, max_pages=3)
    assert whole["page_count"] == 3 and "note" not in whole


def test_a_long_pdf_is_read_up_to_the_limit():
    result = ocr_document(text_pdf(5), "pdf", None, MAX_PIXELS, max_pages=3)
    assert result["page_count"] == 3 and result["pages_total"] == 5
    assert "Page 3:" in result["text"] and "Page 4:" not in result["text"]


def test_pages_are_handed_out_one_at_a_time():
    pages = decode.pages(multi_page_tiff(3), mode=decode.GRAY)
    first = next(pages)
    assert (first.number, first.count) == (1, 3)
    assert [p.number for p in pages] == [2, 3]


# ---------------------------------------------------------------------- photos without text
@pytest.mark.parametrize("seed", range(4))
def test_a_photo_without_text_gives_no_text(seed, engine):
    result = ocr_document(scene(seed), "image", None, MAX_PIXELS, engine)
    assert result["text"] == "" and result["confidence"] == 0.0 and result["pages"][0]["lines"] == []


def test_the_quick_look_sees_text_where_there_is_some(engine):
    assert has_text(text_page(), engine)
    small_print = Image.new("L", (2480, 3508), 255)  # an A4 page at 300 dpi, a few lines of small print
    draw = ImageDraw.Draw(small_print)
    for i in range(5):
        draw.text((150, 150 + i * 40), f"Small print on a full page, line {i}", fill=0, font=_font(20))
    assert has_text(small_print, engine)
    assert not has_text(decode.first_page(scene(7)).image, engine)


# ---------------------------------------------------------------------- through the engine
def _jobs(report):
    return {Path(d["path"]).name: d["jobs"] for d in report["documents"]}


@pytest.mark.jobs("thumbnail,ocr,summary")
def test_through_the_engine_bad_files_fail_at_once_and_photos_get_no_summary(library, start_worker, tmp_path):
    folder = tmp_path / "in"
    folder.mkdir()
    (folder / "scan.bmp").write_bytes(bmp_unsupported_compression())
    (folder / "meta.png").write_bytes(png_text_bomb())
    (folder / "garden.jpg").write_bytes(scene(1))
    start_worker()
    session, _ = library.submit([folder])
    assert library.wait(session, timeout=90), library.report(session)["counts"]
    jobs = _jobs(library.report(session))
    for name, message in (("scan.bmp", REFUSED[0][1]), ("meta.png", REFUSED[1][1])):
        for job_type in ("thumbnail", "ocr"):
            job = jobs[name][job_type]
            assert (job["state"], job["error_kind"], job["attempts"], job["error"]) == (
                "failed", "permanent", 1, message), (name, job_type, job)
        assert jobs[name]["summary"]["state"] == "cancelled"  # skipped: the ocr job failed
    photo = jobs["garden.jpg"]
    assert photo["thumbnail"]["state"] == photo["ocr"]["state"] == "complete"
    assert photo["ocr"]["result"]["text"] == ""
    summary = photo["summary"]
    assert summary["state"] == "complete" and summary["result"]["skipped"] is True
    assert not summary["result"].get("title")


def test_a_job_past_its_time_limit_ends_failed_for_good(library, start_worker, tmp_path):
    (tmp_path / "slow.jpg").write_bytes(_save(Image.new("RGB", (64, 48), "green"), "JPEG"))
    # The fault makes the job take 30 s, reporting at its checkpoints; the limit is half a second.
    start_worker(faults={"thumbnail": {"match": "slow", "sleep": 30}}, SNAPDESK_JOB_TIMEOUT_THUMBNAIL="0.5")
    session, _ = library.submit([tmp_path / "slow.jpg"])
    assert library.wait(session, timeout=25), library.report(session)["counts"]
    job = _jobs(library.report(session))["slow.jpg"]["thumbnail"]
    assert (job["state"], job["error_kind"], job["attempts"]) == ("failed", "permanent", 1)
    assert job["error"].startswith("stopped after 0.5 s, the time limit of a thumbnail job "
                                   "(SNAPDESK_JOB_TIMEOUT_THUMBNAIL on the worker)")


def _mutants(count=25, seed=1):
    """Damaged copies of small images in every format SnapDesk imports: cut short, or bytes changed."""
    rng = np.random.default_rng(seed)
    picture = Image.fromarray((rng.random((48, 64, 3)) * 255).astype(np.uint8))
    for fmt, options in (("PNG", {}), ("JPEG", {}), ("BMP", {}), ("GIF", {}), ("TIFF", {"compression": "tiff_lzw"}),
                         ("WEBP", {})):
        data = _save(picture, fmt, **options)
        for i in range(count):
            damaged = bytearray(data)
            if i % 3 == 0:
                damaged = damaged[:int(rng.integers(1, len(data)))]
            else:
                for at in rng.integers(0, len(data), int(rng.integers(1, 6))):
                    damaged[at] = int(rng.integers(0, 256))
            yield f"{fmt}-{i}", bytes(damaged)


@pytest.mark.filterwarnings("ignore::UserWarning")  # Pillow warns about some damage, and goes on
def test_damaged_files_of_every_format_are_read_or_refused_never_an_unexpected_error():
    outcomes = {}
    for name, data in _mutants():
        thumb = _outcome(lambda data=data: make_thumbnails(data))[0]
        gray = _outcome(lambda data=data: list(decode.pages(data, mode=decode.GRAY)))[0]  # what OCR reads
        outcomes[name] = (thumb, gray)
    assert {pair for pair in outcomes.values()} <= {("ok", "ok"), ("permanent", "permanent")}, outcomes
    assert sum(pair[0] == "permanent" for pair in outcomes.values()) >= 50  # most damage is seen

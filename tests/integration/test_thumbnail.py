"""The thumbnail processor, tested directly on real images."""

import io

import blurhash
import pytest
from PIL import Image

from snapdesk.processors.errors import PermanentError
from snapdesk.processors.thumbnail import make_thumbnails

from helpers import bomb_png, jpeg_bytes


def _sizes(result):
    return {t.name: (t.width, t.height) for t in result.thumbnails}


def test_three_webp_sizes_with_aspect_kept(tmp_path):
    path = tmp_path / "landscape.jpg"
    path.write_bytes(jpeg_bytes(1600, 1000))
    result = make_thumbnails(path)
    assert (result.width, result.height) == (1600, 1000)
    assert _sizes(result) == {"sm": (150, 94), "md": (300, 188), "lg": (600, 375)}
    for thumb in result.thumbnails:
        with Image.open(io.BytesIO(thumb.data)) as img:
            assert img.format == "WEBP"
            assert img.size == (thumb.width, thumb.height)


def test_exif_orientation_is_applied(tmp_path):
    path = tmp_path / "portrait.jpg"
    path.write_bytes(jpeg_bytes(1200, 800, orientation=6))  # stored landscape, shown rotated 90 degrees
    result = make_thumbnails(path)
    assert (result.width, result.height) == (800, 1200)
    assert _sizes(result)["lg"] == (600, 900)


def test_small_images_are_not_enlarged():
    result = make_thumbnails(jpeg_bytes(200, 100))
    assert _sizes(result) == {"sm": (150, 75), "md": (200, 100), "lg": (200, 100)}


def test_blurhash_is_4x3_and_decodes():
    result = make_thumbnails(jpeg_bytes(400, 300, seed=3))
    assert blurhash.is_valid_blurhash(result.blurhash)
    # The first character encodes the component counts: (x - 1) + (y - 1) * 9.
    size_flag = "0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz#$%*+,-.:;=?@[]^_{|}~".index(result.blurhash[0])
    assert (size_flag % 9 + 1, size_flag // 9 + 1) == (4, 3)


def test_png_with_alpha_keeps_it():
    img = Image.new("RGBA", (320, 240), (255, 0, 0, 0))
    img.paste((0, 0, 255, 255), (80, 60, 240, 180))
    buf = io.BytesIO()
    img.save(buf, "PNG")
    result = make_thumbnails(buf.getvalue())
    with Image.open(io.BytesIO(result.thumbnails[-1].data)) as lg:
        assert lg.mode == "RGBA"
        assert lg.getpixel((2, 2))[3] == 0


@pytest.mark.parametrize("data, message", [
    (b"", "empty"),
    (b"this is a text file named .jpg", "not an image"),
    (jpeg_bytes(800, 600)[:4000], "damaged or truncated"),
])
def test_bad_input_fails_permanently_with_a_clear_reason(data, message):
    with pytest.raises(PermanentError, match=message):
        make_thumbnails(data)


def test_decompression_bomb_is_refused_before_decoding():
    with pytest.raises(PermanentError, match="400 MP, more than the limit of 180 MP"):
        make_thumbnails(bomb_png(20_000, 20_000))  # a few bytes that claim 400 MP


def test_missing_file_fails_permanently(tmp_path):
    with pytest.raises(PermanentError, match="gone"):
        make_thumbnails(tmp_path / "nope.jpg")


def test_a_pdf_gets_the_thumbnails_of_its_first_page():
    from fpdf import FPDF

    pdf = FPDF(format="A4")
    pdf.set_font("helvetica", size=14)
    for text in ("First page", "Second page"):
        pdf.add_page()
        pdf.cell(0, 10, text)
    result = make_thumbnails(bytes(pdf.output()), kind="pdf")
    assert result.width == 1200 and abs(result.height - 1200 * 297 / 210) <= 1  # 1200 px wide, A4 aspect
    assert _sizes(result) == {"sm": (150, 212), "md": (300, 424), "lg": (600, 849)}


def test_a_damaged_pdf_fails_permanently():
    with pytest.raises(PermanentError, match="the PDF is damaged"):
        make_thumbnails(b"%PDF-1.7\n1 0 obj garbage and no trailer", kind="pdf")

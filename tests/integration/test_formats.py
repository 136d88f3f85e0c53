"""Every format a phone or a camera writes, made in the test: HEIC (8 and 10 bit) and AVIF stills with
their EXIF orientation, camera RAW (a DNG written here as a TIFF with DNG tags, with and without an
embedded preview), videos in six containers (PyAV writes them, with a black first half second), animated
GIF and WebP, JPEG 2000, PSD and ICO; and the bad files of the new kinds. Each goes through the
processors, and the HEIC, the video and the RAW through the real engine on both transports."""

from __future__ import annotations

import io
import struct
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from snapdesk.engine.jobs import job_types_for, kind_of
from snapdesk.processors import thumbnail, video
from snapdesk.processors.errors import PermanentError

from helpers import jpeg_bytes


# ---------------------------------------------------------------------- files made here
def picture(width=640, height=480) -> Image.Image:
    """A gradient with a red block in its top-left corner, to see which way up a thumbnail is."""
    y, x = np.mgrid[0:height, 0:width]
    pixels = np.stack([x * 200 // width, y * 200 // height, np.full_like(x, 90)], axis=-1).astype(np.uint8)
    pixels[: height // 5, : width // 5] = (255, 0, 0)
    return Image.fromarray(pixels)


def saved(img: Image.Image, fmt: str, **options) -> bytes:
    if fmt == "HEIF":
        import pillow_heif

        pillow_heif.register_heif_opener()
    buf = io.BytesIO()
    img.save(buf, fmt, **options)
    return buf.getvalue()


def exif(orientation: int) -> bytes:
    block = Image.Exif()
    block[0x0112] = orientation
    return block.tobytes()


def heic_10bit(width=640, height=480) -> bytes:
    import pillow_heif

    pixels = np.asarray(picture(width, height)).astype(np.uint16) * 4  # 10-bit values
    heif = pillow_heif.from_bytes(mode="RGB;16", size=(width, height), data=(pixels << 6).astype("<u2").tobytes())
    buf = io.BytesIO()
    heif.save(buf, format="HEIF")
    return buf.getvalue()


def video_bytes(fmt="mp4", codec="libx264", seconds=2.0, fps=24, size=(320, 240), black=0.5) -> bytes:
    """``seconds`` of video, black for the first ``black`` seconds, then an orange-red gradient."""
    import av

    buf = io.BytesIO()
    with av.open(buf, "w", format=fmt) as out:
        stream = out.add_stream(codec, rate=fps)
        stream.width, stream.height = size
        stream.pix_fmt = "yuv420p"
        for i in range(int(seconds * fps)):
            frame = np.zeros((size[1], size[0], 3), np.uint8)
            if i >= black * fps:
                frame[..., 0] = 200
                frame[..., 1] = np.linspace(0, 120, size[0], dtype=np.uint8)
            for packet in stream.encode(av.VideoFrame.from_ndarray(frame, format="rgb24")):
                out.mux(packet)
        for packet in stream.encode():
            out.mux(packet)
    return buf.getvalue()


def sound_only_mov() -> bytes:
    import av

    buf = io.BytesIO()
    with av.open(buf, "w", format="mov") as out:
        stream = out.add_stream("aac", rate=44100)
        for i in range(20):
            frame = av.AudioFrame.from_ndarray(np.zeros((1, 1024), np.float32), format="fltp", layout="mono")
            frame.rate, frame.pts = 44100, i * 1024
            for packet in stream.encode(frame):
                out.mux(packet)
        for packet in stream.encode():
            out.mux(packet)
    return buf.getvalue()


def _ifd(entries, at: int) -> bytes:
    """A little-endian TIFF IFD placed at offset ``at``, its long values right after it."""
    codes = {1: "B", 2: "B", 3: "H", 4: "I", 5: "I", 10: "i"}
    entries = sorted(entries)
    table, extra = struct.pack("<H", len(entries)), b""
    end = at + 2 + 12 * len(entries) + 4
    for tag, typ, values in entries:
        if typ == 2:
            payload = values.encode() + b"\0"
        else:
            flat = [v for value in values for v in (value if isinstance(value, tuple) else (value,))]
            payload = struct.pack("<" + codes[typ] * len(flat), *flat)
        count = len(payload) if typ == 2 else len(values)
        if len(payload) <= 4:
            table += struct.pack("<HHI", tag, typ, count) + payload.ljust(4, b"\0")
        else:
            table += struct.pack("<HHII", tag, typ, count, end + len(extra))
            extra += payload + b"\0" * (len(payload) % 2)
    return table + struct.pack("<I", 0) + extra


def dng_bytes(width=640, height=480, preview: bytes | None = None) -> bytes:
    """A DNG: a gradient as 16-bit RGGB Bayer data, uncompressed, with the tags LibRaw needs (DNGVersion,
    CFA pattern, colour matrix, white level). With ``preview`` (a JPEG), IFD0 is that preview and the RAW is
    in a SubIFD, as cameras write them."""
    y, x = np.mgrid[0:height, 0:width]
    red, green, blue = x / width, y / height, np.full(x.shape, 0.4)
    bayer = np.where((y % 2 == 0) & (x % 2 == 0), red, np.where((y % 2 == 1) & (x % 2 == 1), blue, green))
    sensor = (bayer * 60000 + 1000).astype("<u2").tobytes()
    common = [(271, 2, "SnapDesk"), (272, 2, "Test DNG"), (50706, 1, [1, 4, 0, 0]), (50708, 2, "SnapDesk Test"),
              (50721, 10, [(1, 1), (0, 1), (0, 1), (0, 1), (1, 1), (0, 1), (0, 1), (0, 1), (1, 1)]),
              (50728, 5, [(1, 1)] * 3), (50778, 3, [21])]
    raw_tags = [(254, 4, [0]), (256, 4, [width]), (257, 4, [height]), (258, 3, [16]), (259, 3, [1]),
                (262, 3, [32803]), (277, 3, [1]), (278, 4, [height]), (279, 4, [len(sensor)]), (284, 3, [1]),
                (33421, 3, [2, 2]), (33422, 1, [0, 1, 1, 2]), (50714, 4, [0]), (50717, 4, [65535])]
    if preview is None:
        size = len(_ifd(raw_tags + common + [(273, 4, [0])], 8))
        return b"II*\0" + struct.pack("<I", 8) + _ifd(raw_tags + common + [(273, 4, [8 + size])], 8) + sensor
    pw, ph = Image.open(io.BytesIO(preview)).size

    def first(sub_at: int, data_at: int) -> bytes:
        return _ifd([(254, 4, [1]), (256, 4, [pw]), (257, 4, [ph]), (258, 3, [8, 8, 8]), (259, 3, [7]),
                     (262, 3, [6]), (273, 4, [data_at]), (277, 3, [3]), (278, 4, [ph]), (279, 4, [len(preview)]),
                     (330, 4, [sub_at])] + common, 8)

    sub_at = 8 + len(first(0, 0))
    sub_size = len(_ifd(raw_tags + [(273, 4, [0])], sub_at))
    preview_at = sub_at + sub_size
    sensor_at = preview_at + len(preview) + len(preview) % 2
    return (b"II*\0" + struct.pack("<I", 8) + first(sub_at, preview_at)
            + _ifd(raw_tags + [(273, 4, [sensor_at])], sub_at) + preview + b"\0" * (len(preview) % 2) + sensor)


def psd_bytes(img: Image.Image) -> bytes:
    """A flat RGB Photoshop file (no layers: the composite alone), as the PSD format describes it."""
    width, height = img.size
    header = b"8BPS" + struct.pack(">H6xHIIHH", 1, 3, height, width, 8, 3)
    planes = b"".join(img.getchannel(c).tobytes() for c in "RGB")
    return header + struct.pack(">III", 0, 0, 0) + struct.pack(">H", 0) + planes


def animation(fmt: str) -> bytes:
    frames = [Image.new("RGB", (200, 100), colour) for colour in ("red", "green", "blue", "yellow", "white")]
    return saved(frames[0], fmt, save_all=True, append_images=frames[1:], duration=100)


# ---------------------------------------------------------------------- what a user checks
def thumbs(result) -> dict[str, Image.Image]:
    return {t.name: Image.open(io.BytesIO(t.data)) for t in result.thumbnails}


def check_thumbnails(result, size: tuple[int, int]) -> dict[str, Image.Image]:
    """Three WebP sizes of the right shape, a blurhash, and the document's dimensions."""
    assert (result.width, result.height) == size
    images = thumbs(result)
    assert set(images) == {"sm", "md", "lg"}
    for name, width in (("sm", 150), ("md", 300), ("lg", 600)):
        assert images[name].format == "WEBP"
        expected = min(width, size[0])
        assert images[name].size == (expected, round(size[1] * expected / size[0]))
    assert len(result.blurhash) == 28
    return images


def is_red(pixel) -> bool:
    r, g, b = pixel[:3]
    return r > 180 and g < 80 and b < 80


# ---------------------------------------------------------------------- HEIC, AVIF
@pytest.mark.parametrize("fmt", ["HEIF", "AVIF"])
def test_a_phone_still_turned_by_its_exif_orientation(fmt):
    data = saved(picture(), fmt, exif=exif(6), quality=90)  # stored 640x480, shown turned a quarter clockwise
    result = thumbnail.make_thumbnails(data)
    lg = check_thumbnails(result, (480, 640))["lg"].convert("RGB")
    # The red block of the stored top-left corner is at the top right once upright.
    assert is_red(lg.getpixel((lg.width - 10, 10))) and not is_red(lg.getpixel((10, 10)))


def test_a_10_bit_heic_gives_8_bit_thumbnails_of_its_colours():
    result = thumbnail.make_thumbnails(heic_10bit())
    lg = check_thumbnails(result, (640, 480))["lg"].convert("RGB")
    assert is_red(lg.getpixel((10, 10)))
    r, g, b = lg.getpixel((500, 400))  # the gradient: 200 * 500/640, 200 * 400/480, 90
    assert abs(r - 156) < 20 and abs(g - 166) < 20 and abs(b - 90) < 20


def test_heic_and_avif_are_images_with_every_picture_job():
    for suffix in (".heic", ".HEIF", ".hif", ".avif"):
        assert kind_of(suffix) == "image"
    assert {t.name for t in job_types_for("image")} == {"thumbnail", "ocr", "summary", "describe", "embed"}


# ---------------------------------------------------------------------- RAW
def test_a_raw_without_a_large_preview_is_demosaiced_at_half_size():
    result = thumbnail.make_thumbnails(dng_bytes(640, 480, preview=jpeg_bytes(160, 120)), kind="raw")
    lg = check_thumbnails(result, (640, 480))["lg"].convert("RGB")  # the sensor's size, not the preview's
    assert thumbnail.describe(result)["raw"] == {"picture": "demosaic"}
    # The Bayer data was red rising to the right, green rising downwards.
    left, right = lg.getpixel((20, 225)), lg.getpixel((580, 225))
    top, bottom = lg.getpixel((300, 20)), lg.getpixel((300, 430))
    assert right[0] > left[0] + 80 and bottom[1] > top[1] + 80


def test_a_raw_with_a_large_embedded_preview_uses_it():
    result = thumbnail.make_thumbnails(dng_bytes(640, 480, preview=jpeg_bytes(800, 600, seed=3)), kind="raw")
    assert (result.width, result.height) == (640, 480)  # the sensor's
    assert thumbnail.describe(result)["raw"] == {"picture": "preview"}
    assert thumbs(result)["lg"].size == (600, 450)  # made from the 800x600 preview


def test_raws_are_their_own_kind_without_ocr():
    for suffix in (".dng", ".CR2", ".cr3", ".nef", ".arw", ".orf", ".rw2", ".raf"):
        assert kind_of(suffix) == "raw"
    assert {t.name for t in job_types_for("raw")} == {"thumbnail", "describe", "embed"}


# ---------------------------------------------------------------------- video
@pytest.mark.parametrize("fmt,codec,suffix", [("mp4", "libx264", ".mp4"), ("mov", "libx264", ".mov"),
                                              ("ipod", "libx264", ".m4v"), ("matroska", "libx264", ".mkv"),
                                              ("webm", "libvpx-vp9", ".webm"), ("avi", "mpeg4", ".avi")])
def test_a_video_gets_a_poster_past_its_black_start_and_its_facts(fmt, codec, suffix):
    assert kind_of(suffix) == "video"
    result = thumbnail.make_thumbnails(video_bytes(fmt, codec), kind="video")
    lg = check_thumbnails(result, (320, 240))["lg"].convert("RGB")
    r, g, b = lg.getpixel((20, 120))
    assert r > 150 and b < 60  # the picture, not the black first half second
    facts = thumbnail.describe(result)["video"]
    assert facts["codec"] == {"libx264": "h264", "libvpx-vp9": "vp9", "mpeg4": "mpeg4"}[codec]
    assert abs(facts["duration"] - 2.0) < 0.15 and facts["fps"] == pytest.approx(24, abs=0.5)
    assert 0.45 <= facts["poster_time"] <= 1.0


def test_a_portrait_phone_clip_is_turned_as_its_display_matrix_says():
    import av

    buf = io.BytesIO()
    with av.open(buf, "w", format="mov") as out:
        stream = out.add_stream("libx264", rate=24)
        stream.width, stream.height, stream.pix_fmt = 320, 240, "yuv420p"
        stream.set_display_rotation(-90)  # shown turned a quarter clockwise, as a phone held upright records
        pixels = np.asarray(picture(320, 240))
        for _ in range(12):
            for packet in stream.encode(av.VideoFrame.from_ndarray(pixels, format="rgb24")):
                out.mux(packet)
        for packet in stream.encode():
            out.mux(packet)
    result = thumbnail.make_thumbnails(buf.getvalue(), kind="video")
    lg = check_thumbnails(result, (240, 320))["lg"].convert("RGB")
    assert is_red(lg.getpixel((lg.width - 10, 10))) and not is_red(lg.getpixel((10, 10)))


def test_a_video_black_throughout_still_gets_a_poster():
    result = thumbnail.make_thumbnails(video_bytes(seconds=1.0, black=2.0), kind="video")
    check_thumbnails(result, (320, 240))
    assert thumbnail.describe(result)["video"]["poster_time"] == 0.0


def test_the_poster_search_ends_at_its_time_limit():
    ticks = iter(range(10_000))  # a clock that moves a second at every look: the budget of 5 s runs out at once
    with pytest.raises(PermanentError, match="no frame could be decoded in the time allowed"):
        video.poster(video_bytes(), time_limit=5, clock=lambda: float(next(ticks) * 10))


def test_videos_get_thumbnails_and_describe_but_no_ocr():
    assert {t.name for t in job_types_for("video")} == {"thumbnail", "describe", "embed"}


# ---------------------------------------------------------------------- animations and the rest of Pillow's
@pytest.mark.parametrize("fmt", ["GIF", "WEBP"])
def test_an_animation_gives_its_first_frame_and_its_frame_count(fmt):
    result = thumbnail.make_thumbnails(animation(fmt))
    lg = check_thumbnails(result, (200, 100))["lg"].convert("RGB")
    assert is_red(lg.getpixel((100, 50)))
    assert thumbnail.describe(result)["frames"] == 5


def test_a_still_gif_says_no_frame_count():
    result = thumbnail.make_thumbnails(saved(picture(), "GIF"))
    assert "frames" not in thumbnail.describe(result)


def icon() -> bytes:
    return saved(picture(256, 192), "ICO", sizes=[(64, 48), (256, 192)])


@pytest.mark.parametrize("suffix,make", [(".jp2", lambda: saved(picture(), "JPEG2000")),
                                         (".psd", lambda: psd_bytes(picture())), (".ico", icon)])
def test_jpeg_2000_psd_and_ico(suffix, make):
    assert kind_of(suffix) == "image"
    result = thumbnail.make_thumbnails(make())
    size = (256, 192) if suffix == ".ico" else (640, 480)  # an icon's largest size
    lg = check_thumbnails(result, size)["lg"].convert("RGB")
    assert is_red(lg.getpixel((5, 5))) and not is_red(lg.getpixel((lg.width - 5, lg.height - 5)))


# ---------------------------------------------------------------------- bad files
def truncated_heic() -> bytes:
    data = saved(picture(), "HEIF")
    return data[: len(data) // 2]


def corrupt_header_video() -> bytes:
    data = video_bytes("mp4")
    return b"\0" * 64 + data[64:]


BAD = [
    ("cut.heic", "image", truncated_heic, "the HEIC/HEIF image is damaged or truncated"),
    ("voice.mov", "video", sound_only_mov, "the file has no video stream (it holds sound only): there is no picture "
                                           "to show"),
    ("unknown.nef", "raw", lambda: bytes(range(256)) * 40,
     "not a RAW file SnapDesk can read: the camera is unknown to LibRaw, or the file is not a camera RAW at all"),
    ("broken.mp4", "video", corrupt_header_video,
     "not a video SnapDesk can read: the file's header is damaged or of an unknown format"),
]


@pytest.mark.parametrize("name,kind,make,message", BAD, ids=[b[0] for b in BAD])
def test_a_bad_file_of_a_new_kind_fails_for_good_with_a_sentence(name, kind, make, message):
    assert kind_of(Path(name).suffix) == kind
    with pytest.raises(PermanentError) as failure:
        thumbnail.make_thumbnails(make(), kind=kind)
    assert str(failure.value).startswith(message)


# ---------------------------------------------------------------------- through the engine
@pytest.mark.jobs("thumbnail,ocr,summary,describe")
def test_a_camera_roll_completes_through_the_engine(library, start_worker, tmp_path):
    folder = tmp_path / "roll"
    folder.mkdir()
    (folder / "IMG_0001.HEIC").write_bytes(saved(picture(), "HEIF", exif=exif(6)))
    (folder / "IMG_0002.MOV").write_bytes(video_bytes("mov"))
    (folder / "DSC_0003.DNG").write_bytes(dng_bytes())
    for name, _, make, _ in BAD:
        (folder / name).write_bytes(make())
    start_worker()
    session, _ = library.submit([folder])
    assert library.wait(session, timeout=120), library.report(session)["counts"]
    docs = {Path(d["path"]).name: d["jobs"] for d in library.report(session)["documents"]}

    heic = docs["IMG_0001.HEIC"]
    assert set(heic) == {"thumbnail", "ocr", "summary", "describe"}
    assert all(job["state"] == "complete" for job in heic.values()), heic
    assert (heic["thumbnail"]["result"]["width"], heic["thumbnail"]["result"]["height"]) == (480, 640)
    with Image.open(heic["thumbnail"]["result"]["thumbnails"]["lg"]["path"]) as lg:
        assert lg.format == "WEBP" and lg.size == (480, 640)

    clip = docs["IMG_0002.MOV"]
    assert set(clip) == {"thumbnail", "describe"}  # no OCR, and so no summary
    assert clip["describe"]["state"] == "complete" and clip["describe"]["result"]["description"]
    result = clip["thumbnail"]["result"]
    assert clip["thumbnail"]["state"] == "complete" and (result["width"], result["height"]) == (320, 240)
    assert result["video"]["codec"] == "h264" and abs(result["video"]["duration"] - 2.0) < 0.15
    with Image.open(result["thumbnails"]["md"]["path"]) as md:
        assert md.convert("RGB").getpixel((20, 120))[0] > 150  # the poster, past the black start
    # The window's tile says how long the clip is, as a player does.
    from snapdesk.gui.delegates import DocumentDelegate
    from snapdesk.gui.queries import document_rows

    tiles = {Path(row.path).name: row for row in document_rows(session_id=session.id)}
    assert DocumentDelegate.duration_text(tiles["IMG_0002.MOV"].duration) == "0:02"
    assert tiles["IMG_0001.HEIC"].duration is None

    raw = docs["DSC_0003.DNG"]
    assert set(raw) == {"thumbnail", "describe"}
    assert raw["thumbnail"]["state"] == raw["describe"]["state"] == "complete"
    assert (raw["thumbnail"]["result"]["width"], raw["thumbnail"]["result"]["height"]) == (640, 480)

    for name, _, _, message in BAD:
        job = docs[name]["thumbnail"]
        assert (job["state"], job["error_kind"], job["attempts"]) == ("failed", "permanent", 1), (name, job)
        assert job["error"].startswith(message), (name, job["error"])
        assert docs[name]["describe"]["state"] == "cancelled"  # its picture never came


@pytest.mark.parametrize("kind,make", [("image", lambda: saved(picture(), "HEIF")),
                                       ("image", lambda: saved(picture(), "AVIF")),
                                       ("video", lambda: video_bytes("mp4")),
                                       ("video", lambda: video_bytes("matroska")),
                                       ("raw", lambda: dng_bytes())], ids=["heic", "avif", "mp4", "mkv", "dng"])
def test_damaged_copies_give_thumbnails_or_a_sentence_never_another_error(kind, make):
    """Cut short or with bytes overwritten (seeded): each copy either still gives thumbnails or fails
    with a PermanentError: never a decoder's own exception, an AttributeError or a hang."""
    import random

    data, rng = make(), random.Random(7)
    for i in range(24):
        copy = bytearray(data)
        if i % 3 == 0:
            copy = copy[: rng.randrange(1, len(copy))]
        else:
            for _ in range(rng.randrange(1, 30)):
                copy[rng.randrange(len(copy))] = rng.randrange(256)
        try:
            result = thumbnail.make_thumbnails(bytes(copy), kind=kind)
        except PermanentError as exc:
            assert str(exc) and "unexpected" not in str(exc)
        else:
            assert len(result.thumbnails) == 3


# ---------------------------------------------------------------------- decoded no larger than the thumbnails need
def test_a_heic_with_a_large_embedded_thumbnail_keeps_its_real_size_and_orientation():
    """The thumbnails come from the HEIC's own 1024 px thumbnail (libheif cannot decode smaller): still
    the picture's dimensions, still upright."""
    import pillow_heif

    pillow_heif.register_heif_opener()
    buf = io.BytesIO()
    picture(1600, 1200).save(buf, "HEIF", exif=exif(6), quality=80, thumbnails=[1024])
    with Image.open(io.BytesIO(buf.getvalue())) as img:
        assert img.info["thumbnails"]  # the file carries one
    result = thumbnail.make_thumbnails(buf.getvalue())
    lg = check_thumbnails(result, (1200, 1600))["lg"].convert("RGB")
    assert is_red(lg.getpixel((lg.width - 10, 10))) and not is_red(lg.getpixel((10, 10)))


def test_a_raw_with_a_full_size_preview_gives_thumbnails_of_its_colours():
    preview = saved(picture(2400, 1800), "JPEG", quality=90)
    result = thumbnail.make_thumbnails(dng_bytes(640, 480, preview=preview), kind="raw")
    assert thumbnail.describe(result)["raw"] == {"picture": "preview"}
    lg = check_thumbnails(result, (640, 480))["lg"].convert("RGB")
    assert is_red(lg.getpixel((10, 10)))
    r, g, b = lg.getpixel((500, 400))  # the gradient: 200 * 500/600, 200 * 400/450, 90
    assert abs(r - 167) < 20 and abs(g - 178) < 20 and abs(b - 90) < 20


def test_a_portrait_hd_clip_gets_an_upright_poster_and_its_real_size():
    import av

    buf = io.BytesIO()
    with av.open(buf, "w", format="mov") as out:
        stream = out.add_stream("libx264", rate=24)
        stream.width, stream.height, stream.pix_fmt = 1280, 720, "yuv420p"
        stream.set_display_rotation(-90)
        pixels = np.asarray(picture(1280, 720))
        for _ in range(6):
            for packet in stream.encode(av.VideoFrame.from_ndarray(pixels, format="rgb24")):
                out.mux(packet)
        for packet in stream.encode():
            out.mux(packet)
    result = thumbnail.make_thumbnails(buf.getvalue(), kind="video")
    lg = check_thumbnails(result, (720, 1280))["lg"].convert("RGB")  # the clip's size, not the poster's
    assert is_red(lg.getpixel((lg.width - 10, 10))) and not is_red(lg.getpixel((10, 10)))

"""A photo's metadata: read by the processor from real JPEGs whose EXIF Pillow writes here, carried by
the thumbnail job through the real engine (a worker process) into ``status --json``, and found by search."""

import io
import json
import os
import warnings

from PIL import Image, ImageCms
from PIL.TiffImagePlugin import IFDRational

from snapdesk.engine.jobs import JOB_TYPES
from snapdesk.processors.metadata import read_metadata

from helpers import jpeg_bytes, snapdesk

#: 2021-07-14 09:30:05 at UTC+2, as seconds since the epoch.
TAKEN_AT = 1626247805.0


def exif_jpeg(make="Canon", model="Canon EOS R5", taken="2021:07:14 09:30:05", offset="+02:00", orientation=6,
              gps=True, width=640, height=480) -> bytes:
    """A real JPEG with the EXIF a camera writes: camera, lens, exposure, date taken, GPS, an sRGB profile."""
    exif = Image.Exif()
    exif[0x010F], exif[0x0110], exif[0x0112] = make, model, orientation
    sub = exif.get_ifd(0x8769)
    sub[0x9003] = taken
    if offset:
        sub[0x9011] = offset
    sub[0x829A], sub[0x829D], sub[0x8827] = IFDRational(1, 250), IFDRational(28, 10), 400
    sub[0x920A], sub[0xA433], sub[0xA434] = IFDRational(50, 1), "Canon", "RF50mm F1.8 STM"
    if gps:
        where = exif.get_ifd(0x8825)
        where[1], where[2] = "S", (IFDRational(33, 1), IFDRational(51, 1), IFDRational(3240, 100))
        where[3], where[4] = "E", (IFDRational(151, 1), IFDRational(12, 1), IFDRational(3600, 100))
        where[5], where[6] = b"\x00", IFDRational(58, 1)
    icc = ImageCms.ImageCmsProfile(ImageCms.createProfile("sRGB")).tobytes()
    buf = io.BytesIO()
    with Image.open(io.BytesIO(jpeg_bytes(width, height))) as img:
        img.save(buf, "JPEG", exif=exif, icc_profile=icc)
    return buf.getvalue()


def damaged_exif_jpeg() -> bytes:
    """A JPEG whose EXIF block is overwritten in its middle: the tags' offsets point past its end."""
    data = exif_jpeg()
    start = data.index(b"Exif\x00\x00") + 24
    return data[:start] + b"\xff" * 48 + data[start + 48:]


def test_the_processor_reads_date_camera_exposure_place_orientation_and_profile():
    meta = read_metadata(exif_jpeg())
    assert meta["taken"] == "2021-07-14T09:30:05+02:00"
    assert meta["taken_at"] == TAKEN_AT
    assert (meta["make"], meta["model"], meta["camera"]) == ("Canon", "Canon EOS R5", "Canon EOS R5")
    assert meta["lens"] == "Canon RF50mm F1.8 STM"
    assert (meta["exposure"], meta["f_number"], meta["iso"], meta["focal_length"]) == ("1/250 s", 2.8, 400, 50.0)
    assert meta["gps"] == {"lat": -33.859, "lon": 151.21, "altitude": 58.0}
    assert meta["orientation"] == 6
    assert "sRGB" in meta["profile"]


def test_a_time_without_its_offset_is_kept_as_written_and_sorted_as_utc():
    meta = read_metadata(exif_jpeg(taken="2019:12:31 23:59:59", offset=None, gps=False))
    assert meta["taken"] == "2019-12-31T23:59:59"
    assert meta["taken_at"] == 1577836799.0
    assert "gps" not in meta


def test_a_photo_without_exif_and_a_pdf_say_nothing_and_do_not_fail():
    assert read_metadata(jpeg_bytes(64, 48)) == {}
    assert read_metadata(b"%PDF-1.4\n%\xe2\xe3\xcf\xd3\n") == {}
    assert read_metadata(b"") == {}


def test_a_damaged_exif_block_gives_what_could_be_read_and_the_job_completes():
    data = damaged_exif_jpeg()
    meta = read_metadata(data)
    assert "taken" not in meta and "camera" not in meta  # their tags were destroyed
    assert "sRGB" in meta["profile"]  # the colour profile is elsewhere in the file
    payload = {"kind": "image", "limits": {"max_pixels": 50_000_000}}
    with warnings.catch_warnings():  # Pillow warns of the damaged tags it skips (this suite makes warnings errors)
        warnings.simplefilter("ignore", UserWarning)
        result, files = JOB_TYPES["thumbnail"].run(data, payload, lambda percent: None, None)
    assert result["metadata"] == meta and set(files) == {"sm.webp", "md.webp", "lg.webp"}
    JOB_TYPES["thumbnail"].check_result(result, set(files))


def test_metadata_travels_through_the_engine_to_status_json_and_search(tmp_path, cli_env):
    folder = tmp_path / "trip"
    folder.mkdir()
    (folder / "harbour.jpg").write_bytes(exif_jpeg())
    (folder / "damaged.jpg").write_bytes(damaged_exif_jpeg())
    (folder / "scan.jpg").write_bytes(jpeg_bytes(320, 240, seed=5))  # no EXIF: sorted by the file's time
    os.utime(folder / "scan.jpg", (1500000000, 1500000000))
    (folder / "other.jpg").write_bytes(exif_jpeg(make="NIKON CORPORATION", model="NIKON D750",
                                                 taken="2018:03:02 12:00:00", offset="-05:00", width=600))
    done = snapdesk("submit", str(folder), "--wait", "--json", env=cli_env)
    assert done.returncode == 0, done.stderr
    status = json.loads(snapdesk("status", "--json", env=cli_env).stdout)
    docs = {os.path.basename(d["path"]): d for d in status["documents"]}
    assert {name: d["jobs"]["thumbnail"]["state"] for name, d in docs.items()} == dict.fromkeys(docs, "complete")

    harbour = docs["harbour.jpg"]
    assert harbour["taken_at"] == "2021-07-14T07:30:05.000+00:00"
    assert harbour["metadata"]["camera"] == "Canon EOS R5"
    assert harbour["metadata"]["gps"] == {"lat": -33.859, "lon": 151.21, "altitude": 58.0}
    assert harbour["metadata"]["orientation"] == 6
    assert (harbour["width"], harbour["height"]) == (480, 640)  # shown rotated, as the orientation says
    assert docs["damaged.jpg"]["metadata"].get("camera") is None
    assert docs["scan.jpg"]["metadata"] == {} and docs["scan.jpg"]["taken_at"] == "2017-07-14T02:40:00.000+00:00"
    assert docs["other.jpg"]["taken_at"] == "2018-03-02T17:00:00.000+00:00"

    def found(*query):
        out = snapdesk("search", *query, "--json", env=cli_env)
        return sorted(os.path.basename(r["path"]) for r in json.loads(out.stdout)["results"])

    assert found("EOS", "R5") == ["harbour.jpg"]
    assert found("nikon") == ["other.jpg"]
    assert found("2021") == ["harbour.jpg"]
    assert found("2018") == ["other.jpg"]

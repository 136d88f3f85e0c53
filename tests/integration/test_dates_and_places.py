"""When and where: a clip's date (QuickTime's with its time zone, else the container's UTC one) and its
ISO 6709 position, written by PyAV here; the place names a photo carries in XMP and IPTC, written into
real JPEGs here; a photo's EXIF time zone. Read by the processors, then carried through the real engine
(worker processes, both transports) into ``status``'s report, the grid's order and search."""

from __future__ import annotations

import io
import struct
from pathlib import Path

import numpy as np
from PIL import Image

from snapdesk.gui.queries import document_rows
from snapdesk.processors.metadata import read_metadata
from snapdesk.processors.video import iso6709

from test_metadata import exif_jpeg

from helpers import jpeg_bytes

#: What an iPhone writes into a clip: its local time with the offset, where, and the camera.
APPLE_TAGS = {"com.apple.quicktime.creationdate": "2019-08-03T18:45:10+0900",
              "com.apple.quicktime.location.ISO6709": "+35.0116+135.7681+042.500/",
              "com.apple.quicktime.make": "Apple", "com.apple.quicktime.model": "iPhone 11",
              "creation_time": "2019-08-03T09:45:12.000000Z"}


# ---------------------------------------------------------------------- files made here
def tagged_clip(tags: dict[str, str] | None = None, fmt: str = "mov", seconds: float = 2.0, fps: int = 12) -> bytes:
    """A real clip (H.264, 160 x 120, an orange picture) whose container carries ``tags``; QuickTime's own
    keys (com.apple.quicktime.*) are written as Apple writes them, in the ``keys`` and ``ilst`` boxes."""
    import av

    buf = io.BytesIO()
    options = {"movflags": "use_metadata_tags"} if fmt == "mov" else {}
    with av.open(buf, "w", format=fmt, options=options) as out:
        out.metadata.update(tags or {})
        stream = out.add_stream("libx264", rate=fps)
        stream.width, stream.height, stream.pix_fmt = 160, 120, "yuv420p"
        frame = np.zeros((120, 160, 3), np.uint8)
        frame[..., 0], frame[..., 1] = 220, 120
        for _ in range(int(seconds * fps)):
            for packet in stream.encode(av.VideoFrame.from_ndarray(frame, format="rgb24")):
                out.mux(packet)
        for packet in stream.encode():
            out.mux(packet)
    return buf.getvalue()


def xmp_packet(city=None, state=None, country=None, location=None, as_elements=False) -> bytes:
    """An XMP packet with the place's names, as Lightroom writes them (attributes) or as elements."""
    fields = {"photoshop:City": city, "photoshop:State": state, "photoshop:Country": country,
              "Iptc4xmpCore:Location": location}
    given = {name: value.replace("&", "&amp;") for name, value in fields.items() if value}
    if as_elements:
        attributes, elements = "", "".join(f"<{n}>{v}</{n}>" for n, v in given.items())
    else:
        attributes, elements = "".join(f' {n}="{v}"' for n, v in given.items()), ""
    return ('<?xpacket begin="\ufeff" id="W5M0MpCehiHzreSzNTczkc9d"?><x:xmpmeta xmlns:x="adobe:ns:meta/">'
            '<rdf:RDF xmlns:rdf="http://www.w3.org/1999/02/22-rdf-syntax-ns#"><rdf:Description rdf:about="" '
            'xmlns:photoshop="http://ns.adobe.com/photoshop/1.0/" '
            f'xmlns:Iptc4xmpCore="http://iptc.org/std/Iptc4xmpCore/1.0/xmlns/"{attributes}>{elements}'
            '</rdf:Description></rdf:RDF></x:xmpmeta><?xpacket end="w"?>').encode()


def iptc_segment(city=None, state=None, country=None, sublocation=None) -> bytes:
    """A JPEG APP13 segment (Photoshop 3.0, resource 0x0404) holding IPTC IIM datasets in UTF-8, as Photo
    Mechanic and Photoshop write them."""
    datasets = b"\x1c\x01\x5a\x00\x03\x1b\x25\x47"  # 1:90 coded character set: UTF-8
    for number, value in ((92, sublocation), (90, city), (95, state), (101, country)):
        if value:
            data = value.encode()
            datasets += b"\x1c\x02" + bytes([number]) + struct.pack(">H", len(data)) + data
    resource = b"8BIM\x04\x04\x00\x00" + struct.pack(">I", len(datasets)) + datasets + b"\0" * (len(datasets) % 2)
    body = b"Photoshop 3.0\x00" + resource
    return b"\xff\xed" + struct.pack(">H", len(body) + 2) + body


def placed_jpeg(xmp: bytes | None = None, iptc: bytes | None = None, **exif) -> bytes:
    """A camera's JPEG (test_metadata's EXIF) with an XMP packet and an IPTC segment, when given."""
    data = exif_jpeg(**exif)
    if xmp:
        buf = io.BytesIO()
        with Image.open(io.BytesIO(data)) as img:
            img.save(buf, "JPEG", exif=img.info["exif"], xmp=xmp)
        data = buf.getvalue()
    return data[:2] + (iptc or b"") + data[2:]


# ---------------------------------------------------------------------- the processors
def test_an_iphone_clip_gives_its_local_time_with_its_zone_its_place_and_camera():
    meta = read_metadata(tagged_clip(APPLE_TAGS), "video")
    assert meta["taken"] == "2019-08-03T18:45:10+09:00"  # the phone's own clock, not the container's UTC copy
    assert meta["taken_at"] == 1564825510.0
    assert meta["gps"] == {"lat": 35.0116, "lon": 135.7681, "altitude": 42.5}
    assert (meta["make"], meta["model"], meta["camera"]) == ("Apple", "iPhone 11", "Apple iPhone 11")


def test_a_camera_mp4_gives_its_utc_creation_time_and_location():
    meta = read_metadata(tagged_clip({"creation_time": "2022-02-01T12:00:00.000000Z",
                                      "location": "-33.8587+151.2140/"}, fmt="mp4"), "video")
    assert meta == {"taken": "2022-02-01T12:00:00+00:00", "taken_at": 1643716800.0,
                    "gps": {"lat": -33.8587, "lon": 151.214}}


def test_a_clip_without_dates_or_a_damaged_one_says_nothing_and_does_not_fail():
    assert read_metadata(tagged_clip(), "video") == {}
    assert read_metadata(tagged_clip(APPLE_TAGS)[:300], "video") == {}
    assert read_metadata(b"not a video at all", "video") == {}


def test_iso_6709_positions_in_degrees_or_degrees_and_minutes():
    assert iso6709("+48.8584+002.2945/") == {"lat": 48.8584, "lon": 2.2945}
    assert iso6709("+4851.504+00217.670/") == {"lat": 48.8584, "lon": 2.294500}
    assert iso6709("-3351.5-07016.2+12.0/") == {"lat": -33.858333, "lon": -70.27, "altitude": 12.0}
    assert iso6709("+95.0+010.0/") is None and iso6709("somewhere") is None and iso6709(None) is None


def test_a_photo_time_zone_comes_from_offset_time_original():
    meta = read_metadata(exif_jpeg(taken="2020:01:01 00:30:00", offset="-03:30", gps=False))
    assert meta["taken"] == "2020-01-01T00:30:00-03:30"
    assert meta["taken_at"] == 1577851200.0  # 04:00 UTC


def test_place_names_come_from_xmp_and_iptc_and_xmp_wins_where_both_say():
    lightroom = read_metadata(placed_jpeg(xmp_packet(city="Sainte-Foy & Lès", country="France",
                                                     location="Tour Eiffel")))
    assert lightroom["place"] == {"location": "Tour Eiffel", "city": "Sainte-Foy & Lès", "country": "France"}
    assert lightroom["place_name"] == "Tour Eiffel, Sainte-Foy & Lès, France"
    assert lightroom["camera"] == "Canon EOS R5"  # the EXIF is read as before

    iptc = read_metadata(placed_jpeg(iptc=iptc_segment(city="Kyōto", state="Kyoto", country="Japan")))
    assert iptc["place"] == {"city": "Kyōto", "state": "Kyoto", "country": "Japan"}

    both = read_metadata(placed_jpeg(xmp_packet(city="Lyon", as_elements=True),
                                     iptc_segment(city="Paris", country="France")))
    assert both["place"] == {"city": "Lyon", "country": "France"}  # the country only IPTC gives fills in
    assert both["place_name"] == "Lyon, France"

    assert "place" not in read_metadata(jpeg_bytes(64, 48))


def test_a_damaged_place_block_gives_what_could_be_read():
    segment = iptc_segment(city="Kyōto", country="Japan")
    at = segment.index(b"\x1c\x02\x65")  # the country's dataset: it now says it is 200 bytes long
    damaged = segment[:at + 3] + struct.pack(">H", 200) + segment[at + 5:]
    meta = read_metadata(placed_jpeg(xmp_packet(state="Kansai"), damaged))
    assert meta["camera"] == "Canon EOS R5"
    assert meta["place"]["state"] == "Kansai"
    assert all(ch.isprintable() for ch in meta["place_name"])


# ---------------------------------------------------------------------- through the engine
def test_videos_sort_among_photos_by_when_they_were_filmed_and_places_are_found(library, start_worker, tmp_path):
    folder = tmp_path / "holiday"
    folder.mkdir()
    (folder / "a-harbour.jpg").write_bytes(placed_jpeg(xmp_packet(city="Sydney", state="NSW", country="Australia"),
                                                       taken="2019:08:01 10:00:00", offset="+10:00"))
    (folder / "b-temple.MOV").write_bytes(tagged_clip(APPLE_TAGS))  # 3 August 2019, 09:45:10 UTC
    (folder / "c-shrine.jpg").write_bytes(placed_jpeg(iptc=iptc_segment(city="Kyōto", country="Japan"),
                                                      taken="2019:08:05 08:00:00", offset="+09:00"))
    (folder / "d-beach.mp4").write_bytes(tagged_clip({"creation_time": "2019-07-30T06:00:00.000000Z"}, fmt="mp4"))
    start_worker()
    session, _ = library.submit([folder])
    assert library.wait(session, timeout=120), library.report(session)["counts"]
    report = library.report(session)
    docs = {Path(d["path"]).name: d for d in report["documents"]}
    assert {name: d["status"] for name, d in docs.items()} == dict.fromkeys(docs, "complete")

    temple = docs["b-temple.MOV"]
    assert temple["taken_at"] == "2019-08-03T09:45:10.000+00:00"
    assert temple["metadata"]["taken"] == "2019-08-03T18:45:10+09:00"
    assert temple["metadata"]["gps"] == {"lat": 35.0116, "lon": 135.7681, "altitude": 42.5}
    assert docs["d-beach.mp4"]["taken_at"] == "2019-07-30T06:00:00.000+00:00"
    assert docs["a-harbour.jpg"]["metadata"]["place_name"] == "Sydney, NSW, Australia"

    # The grid's "date taken" order puts each clip among the photos.
    by_taken = sorted(document_rows(session_id=session.id), key=lambda row: row.taken_at)
    assert [Path(row.path).name for row in by_taken] == ["d-beach.mp4", "a-harbour.jpg", "b-temple.MOV",
                                                         "c-shrine.jpg"]

    def found(query):
        return sorted(Path(hit["path"]).name for hit in library.search(query))

    assert found("Kyōto") == ["c-shrine.jpg"]
    assert found("australia") == ["a-harbour.jpg"]
    assert found("iPhone") == ["b-temple.MOV"]
    assert found("2019") == ["a-harbour.jpg", "b-temple.MOV", "c-shrine.jpg", "d-beach.mp4"]

"""A photo's metadata from its bytes: when it was taken, with what, how, where, and its colour profile.

Pure (bytes in, a JSON-able dict out) and read with Pillow's EXIF support, which reads the header only
(no pixels are decoded): ``Image.getexif()`` for the main IFD, ``get_ifd(IFD.Exif)`` for the exposure and
the date taken, ``get_ifd(IFD.GPSInfo)`` for the position, and the ICC profile's description through
``ImageCms``. Every field is read on its own: a damaged or odd EXIF block gives what could be read and
never an error, and a file Pillow does not open (a PDF) gives an empty dict.

The keys, each present only when known: ``taken`` (ISO 8601, with the offset when the file has
``OffsetTimeOriginal``), ``taken_at`` (seconds since the epoch, for sorting; a time without an offset is
read as UTC), ``make``, ``model``, ``camera`` (make and model, said once), ``lens``, ``exposure_time``
(seconds), ``exposure`` (as a photographer writes it: "1/125 s"), ``f_number``, ``iso``,
``focal_length`` (mm), ``gps`` (``lat``, ``lon`` in decimal degrees, ``altitude`` in metres),
``orientation`` (the EXIF value 1-8), ``profile`` (the ICC description, "sRGB IEC61966-2.1"), and the
place names the file carries (IPTC City, Province-State, Country and Sub-location; XMP photoshop:City, State,
Country and Iptc4xmpCore:Location, which win where both are given): ``place`` (``location``, ``city``,
``state``, ``country``, each when present) and ``place_name`` ("Eiffel Tower, Paris, France"). Names are only
read, never looked up: there is no geocoding.

A video's (``kind`` "video") come from its container instead (``processors/video.py``
``container_metadata``): the date QuickTime gives with its time zone, the ISO 6709 position, Apple's make and
model.
"""

from __future__ import annotations

import datetime
import html
import io
import math
import re
import warnings
from collections.abc import Callable
from typing import Any

from PIL import ExifTags, Image, ImageFile, IptcImagePlugin

_MAKE, _MODEL, _ORIENTATION, _DATETIME = 0x010F, 0x0110, 0x0112, 0x0132
_EXPOSURE_TIME, _F_NUMBER, _ISO, _DATETIME_ORIGINAL = 0x829A, 0x829D, 0x8827, 0x9003
_OFFSET_TIME, _OFFSET_TIME_ORIGINAL, _FOCAL_LENGTH, _LENS_MAKE, _LENS_MODEL = 0x9010, 0x9011, 0x920A, 0xA433, 0xA434
_GPS_LAT_REF, _GPS_LAT, _GPS_LON_REF, _GPS_LON, _GPS_ALT_REF, _GPS_ALT = 1, 2, 3, 4, 5, 6

#: Longest text kept from a field (a camera's name, a lens, a profile's description).
TEXT_LIMIT = 120


def read_metadata(source: bytes, kind: str = "image") -> dict[str, Any]:
    """What the picture (or, for ``kind`` "video", the clip) in ``source`` says of itself (see the module's
    docstring); {} when nothing."""
    if kind == "video":
        from .video import container_metadata  # FFmpeg is loaded only when a video comes

        out = container_metadata(source)
        camera = camera_name(out.get("make"), out.get("model"))
        return {**out, "camera": camera} if camera else out
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # Pillow warns of each damaged tag it skips: that is expected here
        return _read(source)


def _read(source: bytes) -> dict[str, Any]:
    try:
        image = Image.open(io.BytesIO(source))
    except Exception:  # noqa: BLE001 (not a picture Pillow opens, a PDF, or too damaged to open: nothing to say)
        return {}
    with image:
        out: dict[str, Any] = {}
        exif = _attempt(image.getexif)
        if exif is not None:
            main: dict[int, Any] = dict(_attempt(lambda: dict(exif.items())) or {})
            sub: dict[int, Any] = dict(_attempt(lambda: dict(exif.get_ifd(ExifTags.IFD.Exif))) or {})
            gps: dict[int, Any] = dict(_attempt(lambda: dict(exif.get_ifd(ExifTags.IFD.GPSInfo))) or {})
            # The time taken with its own offset; else the file's time (DateTime) with the offset of that.
            original = sub.get(_DATETIME_ORIGINAL)
            _fill(out, "taken", lambda: _taken(original, sub.get(_OFFSET_TIME_ORIGINAL)) if original
                  else _taken(main.get(_DATETIME), sub.get(_OFFSET_TIME)))
            _fill(out, "make", lambda: _text(main.get(_MAKE)))
            _fill(out, "model", lambda: _text(main.get(_MODEL)))
            _fill(out, "lens", lambda: _lens(sub.get(_LENS_MAKE), sub.get(_LENS_MODEL)))
            _fill(out, "exposure_time", lambda: _number(sub.get(_EXPOSURE_TIME)))
            _fill(out, "f_number", lambda: _number(sub.get(_F_NUMBER)))
            _fill(out, "iso", lambda: _iso(sub.get(_ISO)))
            _fill(out, "focal_length", lambda: _number(sub.get(_FOCAL_LENGTH)))
            _fill(out, "gps", lambda: _gps(gps))
            _fill(out, "orientation", lambda: _orientation(main.get(_ORIENTATION)))
        _fill(out, "profile", lambda: _profile(image.info.get("icc_profile")))
        _fill(out, "place", lambda: _place(image))
    if "taken" in out:
        taken, at = out.pop("taken")
        out["taken"], out["taken_at"] = taken, at
    camera = camera_name(out.get("make"), out.get("model"))
    if camera:
        out["camera"] = camera
    if "exposure_time" in out:
        out["exposure"] = _shutter(out["exposure_time"])
    if "place" in out:
        out["place_name"] = place_name(out["place"])
    return out


def _attempt(read: Callable[[], Any]) -> Any:
    try:
        return read()
    except Exception:  # noqa: BLE001 (a damaged block, whatever Pillow raises: this part is unknown)
        return None


def _fill(out: dict[str, Any], key: str, read: Callable[[], Any]) -> None:
    value = _attempt(read)
    if value is not None:
        out[key] = value


def _text(value: Any) -> str | None:
    if isinstance(value, bytes):
        value = value.decode("utf-8", "replace")
    if not isinstance(value, str):
        return None
    text = " ".join("".join(ch if ch.isprintable() else " " for ch in value).split())[:TEXT_LIMIT]
    return text or None


def _number(value: Any) -> float | None:
    if isinstance(value, tuple) and len(value) == 2:  # a bare (numerator, denominator)
        value = value[0] / value[1] if value[1] else None
    if value is None:
        return None
    number = float(value)
    return round(number, 6) if math.isfinite(number) and number > 0 else None


def _iso(value: Any) -> int | None:
    if isinstance(value, (tuple, list)):
        value = value[0] if value else None
    return int(value) if isinstance(value, (int, float)) and value > 0 else None


def _orientation(value: Any) -> int | None:
    return int(value) if isinstance(value, int) and 1 <= value <= 8 else None


_OFFSET = re.compile(r"^([+-])(\d{2}):?(\d{2})$")


def _taken(value: Any, offset: Any) -> tuple[str, float] | None:
    """The time taken, as ISO 8601 text and as seconds since the epoch (UTC when no offset is known)."""
    text = _text(value)
    if not text:
        return None
    moment = datetime.datetime.strptime(text[:19], "%Y:%m:%d %H:%M:%S")
    match = _OFFSET.match(_text(offset) or "")
    if match:
        sign = -1 if match[1] == "-" else 1
        zone = datetime.timezone(sign * datetime.timedelta(hours=int(match[2]), minutes=int(match[3])))
        moment = moment.replace(tzinfo=zone)
        return moment.isoformat(), moment.timestamp()
    return moment.isoformat(), moment.replace(tzinfo=datetime.timezone.utc).timestamp()


def _lens(make: Any, model: Any) -> str | None:
    make_text, model_text = _text(make), _text(model)
    if make_text and model_text and not model_text.lower().startswith(make_text.lower()):
        return f"{make_text} {model_text}"
    return model_text or make_text


def camera_name(make: str | None, model: str | None) -> str | None:
    """The camera as a person names it: its make once ("Canon EOS R5", not "Canon Canon EOS R5")."""
    if make and model and not model.lower().startswith(make.split()[0].lower()):
        return f"{make} {model}"
    return model or make


def _shutter(seconds: float) -> str:
    if seconds < 1:
        return f"1/{round(1 / seconds)} s"
    return f"{seconds:g} s"


def _degrees(value: Any, ref: Any) -> float | None:
    d, m, s = (float(part) for part in value)
    degrees = d + m / 60 + s / 3600
    if not math.isfinite(degrees):
        return None
    return round(-degrees if _text(ref) in ("S", "W") else degrees, 6)


def _gps(gps: dict[int, Any]) -> dict[str, float] | None:
    if _GPS_LAT not in gps or _GPS_LON not in gps:
        return None
    lat = _degrees(gps[_GPS_LAT], gps.get(_GPS_LAT_REF))
    lon = _degrees(gps[_GPS_LON], gps.get(_GPS_LON_REF))
    if lat is None or lon is None or not (-90 <= lat <= 90 and -180 <= lon <= 180):
        return None
    out = {"lat": lat, "lon": lon}
    altitude = _attempt(lambda: float(gps[_GPS_ALT]))
    if altitude is not None and math.isfinite(altitude):
        below = gps.get(_GPS_ALT_REF) in (1, b"\x01")
        out["altitude"] = round(-altitude if below else altitude, 2)
    return out


def _profile(icc: Any) -> str | None:
    if not icc:
        return None
    from PIL import ImageCms

    profile = ImageCms.ImageCmsProfile(io.BytesIO(icc))
    return _text(profile.profile.profile_description)


# -- place names (IPTC, XMP) -------------------------------------------------------------
#: The place's parts, most precise first: IPTC IIM (record 2) dataset numbers and XMP properties.
PLACE_FIELDS = (("location", (2, 92), ("Iptc4xmpCore:Location",)),
                ("city", (2, 90), ("photoshop:City",)),
                ("state", (2, 95), ("photoshop:State",)),
                ("country", (2, 101), ("photoshop:Country",)))
#: An XMP packet longer than this is not searched (a real one is a few KB; a hostile one could be anything).
XMP_LIMIT = 1 << 20
_XMP_ATTRIBUTE = re.compile(r'\s{0,16}=\s{0,16}(?:"([^"<]{0,1000})"|\'([^\'<]{0,1000})\')')
_XMP_OPENED = re.compile(r"(?:\s[^>]{0,500})?>")


def _place(image: ImageFile.ImageFile) -> dict[str, str] | None:
    """The place names in the file's XMP, with its IPTC block filling what XMP lacks."""
    xmp = _attempt(lambda: _xmp_text(image.info.get("xmp") or image.info.get("XML:com.adobe.xmp"))) or ""
    iptc = _attempt(lambda: IptcImagePlugin.getiptcinfo(image)) or {}
    place = {}
    for key, dataset, properties in PLACE_FIELDS:
        from_xmp = next(filter(None, (_xmp_value(xmp, name) for name in properties)), None)
        value = from_xmp or _iptc_text(iptc.get(dataset))
        if value:
            place[key] = value
    return place or None


def place_name(place: dict[str, str]) -> str:
    """A place's parts as a person writes them, most precise first, each said once: "Eiffel Tower, Paris, France"."""
    parts: list[str] = []
    for key in ("location", "city", "state", "country"):
        value = place.get(key)
        if value and value.lower() not in (p.lower() for p in parts):
            parts.append(value)
    return ", ".join(parts)


def _xmp_text(value: Any) -> str | None:
    if isinstance(value, bytes):
        value = value[:XMP_LIMIT].decode("utf-8", "replace")
    return value[:XMP_LIMIT] if isinstance(value, str) else None


def _xmp_value(xmp: str, name: str) -> str | None:
    """An XMP property written as an attribute (``photoshop:City="Paris"``) or as an element, its text (or
    the first ``rdf:li`` of a language alternative), entities resolved. Every pattern is bounded and tried
    at the property's first place only, so a hostile packet costs no more than a real one."""
    at = xmp.find(name)
    while at > 0 and xmp[at - 1] not in "< \t\r\n":  # "xphotoshop:City": another name
        at = xmp.find(name, at + 1)
    if at < 0:
        return None
    if at == 0 or xmp[at - 1] != "<":
        found = _XMP_ATTRIBUTE.match(xmp, at + len(name))
        return _text(html.unescape(found[1] if found[1] is not None else found[2])) if found else None
    opened = _XMP_OPENED.match(xmp, at + len(name))
    closed = xmp.find(f"</{name}", opened.end(), opened.end() + 10_000) if opened else -1
    if not opened or closed < 0:
        return None
    inner = xmp[opened.end():closed]
    item = re.search(r"<rdf:li(?:\s[^>]{0,500})?>(.*?)</rdf:li\s*>", inner, re.S)
    return _text(html.unescape(re.sub(r"<[^>]{0,500}>", " ", item[1] if item else inner)))


def _iptc_text(value: Any) -> str | None:
    if isinstance(value, list):
        value = value[0] if value else None
    if isinstance(value, bytes):
        try:
            value = value.decode("utf-8")
        except UnicodeDecodeError:
            value = value.decode("latin-1")
    return _text(value)

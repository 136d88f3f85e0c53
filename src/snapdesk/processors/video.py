"""Video files (MP4, MOV, M4V, MKV, WebM, AVI) through PyAV: a poster frame, the duration, codec and frame rate.

``poster(data)`` opens the file from memory, takes its first video stream and decodes from the
start until it finds a frame that is not (nearly) black, within the first ``SEARCH_SECONDS`` of the
clip: a phone's clip that fades in, or a camera's black first frames, gets a poster of what was
filmed. When every frame in that window is dark, the brightest one is the poster.

Decoding is bounded three ways, so a hostile or broken file can never hang a worker: at most
``MAX_PACKETS`` packets are read, at most ``MAX_FRAMES`` frames decoded, and a wall-clock budget
(``time_limit`` seconds, the clock injectable) ends the search with the best frame so far, or a
PermanentError when there is none. Every complaint FFmpeg makes (a corrupt header, no video
stream, undecodable data) becomes a PermanentError with a sentence a person understands.

``container_metadata(data)`` reads when and where a clip was filmed from its container's tags (QuickTime's
``creationdate`` with its time zone, ``creation_time``, the ISO 6709 location); ``clip_duration(path)``
reads a QuickTime file's length from its movie header alone, for a Live Photo's clip at import.

PyAV is imported inside ``poster`` and ``container_metadata``: only a worker that meets a video loads FFmpeg.
"""

from __future__ import annotations

import datetime
import io
import os
import re
import struct
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from PIL import Image

from .errors import PermanentError

SEARCH_SECONDS = 3.0  # how far into the clip a poster frame is looked for
BLACK_LEVEL = 24.0  # a frame whose mean brightness (0-255) is below this counts as black
MAX_FRAMES = 240
MAX_PACKETS = 2000
TIME_LIMIT = 30.0  # seconds of wall clock for opening and searching


@dataclass
class Poster:
    image: Image.Image  # the poster frame, upright, RGB
    size: tuple[int, int]  # the video's size as displayed (rotation applied)
    info: dict[str, Any] = field(default_factory=dict)  # duration (s), codec, fps, poster_time (s)


def poster(data: bytes, *, time_limit: float = TIME_LIMIT, max_pixels: int | None = None,
           clock: Callable[[], float] = time.monotonic, width: int | None = None) -> Poster:
    """The poster frame and facts of a video given as bytes. Raises PermanentError for a file that is
    not a video PyAV can decode, has no video stream, or gives no frame within the limits.

    ``width``: the width (as displayed) the caller needs at most; a larger poster is scaled down to it
    by FFmpeg as it is converted to RGB (a 1080p frame's conversion at full size costs several times
    more). ``size`` is the video's own, whatever the poster's."""
    import av  # FFmpeg is loaded only when a video comes

    deadline = clock() + time_limit
    try:
        container = av.open(io.BytesIO(data), mode="r", metadata_errors="ignore")
    except (av.FFmpegError, UnicodeDecodeError, ValueError, OSError) as exc:
        raise PermanentError(f"not a video SnapDesk can read: the file's header is damaged or of an unknown "
                             f"format ({_reason(exc)})") from None
    try:
        if not container.streams.video:
            audio = " (it holds sound only)" if container.streams.audio else ""
            raise PermanentError(f"the file has no video stream{audio}: there is no picture to show")
        stream = container.streams.video[0]
        ctx = stream.codec_context
        if ctx is None:  # FFmpeg found no decoder for what the header names
            raise PermanentError("the video's codec is unknown or its header is damaged: there is no decoder for it")
        stream.thread_type = "AUTO"
        coded_w, coded_h = int(ctx.width or 0), int(ctx.height or 0)
        if max_pixels is not None and coded_w * coded_h > max_pixels:
            raise PermanentError(f"the video is {coded_w} x {coded_h} = {coded_w * coded_h / 1e6:.0f} MP a frame, "
                                 f"more than the limit of {max_pixels / 1e6:.0f} MP")
        info = _facts(container, stream)
        best, best_level, best_time = None, -1.0, 0.0
        frames = packets = 0
        try:
            for packet in container.demux(stream):
                packets += 1
                if packets > MAX_PACKETS or clock() > deadline:
                    break
                for frame in packet.decode():
                    frames += 1
                    level = float(frame.reformat(width=32, height=32, format="gray").to_ndarray().mean())
                    seconds = float(frame.time or 0.0)
                    if level > best_level:
                        best, best_level, best_time = frame, level, seconds
                    if level >= BLACK_LEVEL or seconds > SEARCH_SECONDS or frames >= MAX_FRAMES:
                        break
                else:
                    continue
                break
        except av.FFmpegError as exc:
            if best is None:
                raise PermanentError(f"the video is damaged: no frame could be decoded ({_reason(exc)})") from None
        if best is None:
            raise PermanentError("the video is damaged or empty: no frame could be decoded"
                                 + (" in the time allowed" if clock() > deadline else ""))
        rotation = int(getattr(best, "rotation", 0) or 0) % 360
        shown = (best.height, best.width) if rotation in (90, 270) else (best.width, best.height)
        scaled: dict[str, Any] = {}
        if width and shown[0] > width and rotation in (0, 90, 180, 270):
            scale = width / shown[0]
            scaled = {"width": max(1, round(best.width * scale)), "height": max(1, round(best.height * scale)),
                      "interpolation": "AREA"}
        image: Image.Image = best.to_image(**scaled)  # type: ignore[no-untyped-call]
        if rotation:  # the display matrix's turn (counter-clockwise degrees), as a phone records portrait clips
            image = image.rotate(rotation, expand=True)
        info["poster_time"] = round(best_time, 3)
        return Poster(image.convert("RGB"), shown if scaled else image.size, info)
    finally:
        container.close()


def _facts(container: Any, stream: Any) -> dict[str, Any]:
    """Duration (seconds), codec and frame rate, each only when the file says it."""
    info: dict[str, Any] = {}
    duration = None
    if stream.duration is not None and stream.time_base is not None:
        duration = float(stream.duration * stream.time_base)
    elif container.duration is not None:
        duration = container.duration / 1_000_000  # AV_TIME_BASE
    if duration is not None and duration >= 0:
        info["duration"] = round(duration, 3)
    if stream.codec_context.name:
        info["codec"] = str(stream.codec_context.name)
    rate = stream.average_rate or stream.guessed_rate
    if rate:
        info["fps"] = round(float(rate), 3)
    return info


def _reason(exc: BaseException) -> str:
    text = getattr(exc, "strerror", None) or str(exc)
    return str(text).strip().rstrip(".") or type(exc).__name__


# -- what the container says of itself -----------------------------------------------------
#: Dates before this are a container's zero value (QuickTime counts from 1904, others from 1970), not a date.
_EARLIEST_YEAR = 1971


def container_metadata(data: bytes) -> dict[str, Any]:
    """When and where a clip was filmed, and with what, as its container says (the header only; no frame is
    decoded), in the keys of ``processors/metadata.py``: ``taken`` and ``taken_at`` from Apple's
    ``com.apple.quicktime.creationdate`` (the phone's local time with its offset) or else the container's
    ``creation_time`` (UTC); ``gps`` from ``com.apple.quicktime.location.ISO6709`` or the ``location`` tag;
    ``make``, ``model`` from Apple's keys. {} for a file PyAV cannot open: this never raises."""
    import av

    try:
        with av.open(io.BytesIO(data), mode="r", metadata_errors="ignore") as container:
            tags = {str(k).lower(): str(v) for k, v in dict(container.metadata).items()}
    except Exception:  # noqa: BLE001 (a damaged or unknown file: its thumbnail job says why; here nothing is known)
        return {}
    out: dict[str, Any] = {}
    for key in ("com.apple.quicktime.creationdate", "creation_time", "date"):
        taken = _moment(tags.get(key))
        if taken is not None:
            out["taken"], out["taken_at"] = taken.isoformat(), taken.timestamp()
            break
    for key in ("com.apple.quicktime.location.iso6709", "location", "location-eng"):
        gps = iso6709(tags.get(key))
        if gps is not None:
            out["gps"] = gps
            break
    for field_, key in (("make", "com.apple.quicktime.make"), ("model", "com.apple.quicktime.model")):
        text = " ".join(tags.get(key, "").replace("\x00", " ").split())[:120]
        if text:
            out[field_] = text
    return out


def _moment(text: str | None) -> datetime.datetime | None:
    """A container's date ("2021-07-14T09:30:05+0200", "2021-07-14T07:30:05.000000Z", "2021-07-14 07:30:05")
    as an aware datetime (UTC when it names no zone), or None when it is not a date."""
    if not text:
        return None
    text = text.strip()
    if text.endswith(("Z", "z")):
        text = text[:-1] + "+00:00"
    match = re.match(r"^(\d{4}-\d{2}-\d{2})[T ](\d{2}:\d{2}:\d{2})(?:\.\d+)?\s*([+-]\d{2}:?\d{2})?$", text)
    if not match:
        return None
    try:
        moment = datetime.datetime.fromisoformat(f"{match[1]}T{match[2]}")
    except ValueError:
        return None
    if match[3]:
        sign = -1 if match[3][0] == "-" else 1
        digits = match[3][1:].replace(":", "")
        zone = datetime.timedelta(hours=int(digits[:2]), minutes=int(digits[2:]))
        if zone > datetime.timedelta(hours=14):
            return None
        moment = moment.replace(tzinfo=datetime.timezone(sign * zone))
    else:
        moment = moment.replace(tzinfo=datetime.timezone.utc)
    return moment if moment.year >= _EARLIEST_YEAR else None


_ISO6709 = re.compile(r"^([+-])(\d+(?:\.\d+)?)([+-])(\d+(?:\.\d+)?)(?:([+-]\d+(?:\.\d+)?))?(?:CRS[^/]*)?/?$")


def iso6709(text: str | None) -> dict[str, float] | None:
    """A position written as ISO 6709 ("+48.8584+002.2945+035.000/", as phones write it; also the
    degrees-and-minutes forms "+4851.50+00217.67/") as ``lat``, ``lon`` and ``altitude`` (metres), or None."""
    match = _ISO6709.match((text or "").strip())
    if not match:
        return None
    lat = _sexagesimal(match[2], 2) * (-1 if match[1] == "-" else 1)
    lon = _sexagesimal(match[4], 3) * (-1 if match[3] == "-" else 1)
    if not (-90 <= lat <= 90 and -180 <= lon <= 180):
        return None
    out = {"lat": round(lat, 6), "lon": round(lon, 6)}
    if match[5]:
        out["altitude"] = round(float(match[5]), 2)
    return out


def _sexagesimal(text: str, degree_digits: int) -> float:
    """ISO 6709's number: degrees (DD.dd), degrees and minutes (DDMM.mm) or with seconds (DDMMSS.ss)."""
    whole, _, fraction = text.partition(".")
    digits = len(whole)
    if digits <= degree_digits:
        return float(text)
    degrees = float(whole[:degree_digits])
    if digits <= degree_digits + 2:
        return degrees + float(whole[degree_digits:] + "." + (fraction or "0")) / 60
    return degrees + float(whole[degree_digits:degree_digits + 2]) / 60 + \
        float(whole[degree_digits + 2:] + "." + (fraction or "0")) / 3600


# -- a Live Photo's clip: its length from the header alone -------------------------------
#: At most this many boxes are looked at before ``moov`` is found (a real file has a handful).
MAX_BOXES = 64


def clip_duration(path: str | os.PathLike[str]) -> float | None:
    """The length in seconds of a QuickTime/MP4 file, from its movie header (``moov``/``mvhd``): a few
    small reads, whatever the file's size, and no FFmpeg. None when the file has no readable header (it
    is damaged, or not a QuickTime file); never raises."""
    try:
        with open(path, "rb") as fh:
            moov = _find_box(fh, b"moov", os.fstat(fh.fileno()).st_size)
            if moov is None:
                return None
            mvhd = _find_box(fh, b"mvhd", moov)
            if mvhd is None:
                return None
            header = fh.read(min(mvhd - fh.tell(), 32))
    except OSError:
        return None
    if len(header) < 20:
        return None
    if header[0] == 1:  # version 1: 64-bit times and duration
        if len(header) < 32:
            return None
        scale, length = struct.unpack(">IQ", header[20:32])
    else:
        scale, length = struct.unpack(">II", header[12:20])
    if not scale or length in (0, 0xFFFFFFFF, 0xFFFFFFFFFFFFFFFF):
        return None
    return round(float(length) / float(scale), 3)


def _find_box(fh: Any, kind: bytes, end: int) -> int | None:
    """Seek to the contents of the first box of ``kind`` from the file's position up to ``end``; where it ends."""
    for _ in range(MAX_BOXES):
        start = fh.tell()
        if start + 8 > end:
            return None
        head = fh.read(8)
        if len(head) < 8:
            return None
        size, found = struct.unpack(">I4s", head)
        header = 8
        if size == 1:
            large = fh.read(8)
            if len(large) < 8:
                return None
            size, header = struct.unpack(">Q", large)[0], 16
        elif size == 0:
            size = end - start
        if size < header or start + size > end:
            return None
        if found == kind:
            return int(start + size)
        fh.seek(start + size)
    return None

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

PyAV is imported inside ``poster``: only a worker that meets a video loads FFmpeg.
"""

from __future__ import annotations

import io
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
           clock: Callable[[], float] = time.monotonic) -> Poster:
    """The poster frame and facts of a video given as bytes. Raises PermanentError for a file that is
    not a video PyAV can decode, has no video stream, or gives no frame within the limits."""
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
        width, height = int(ctx.width or 0), int(ctx.height or 0)
        if max_pixels is not None and width * height > max_pixels:
            raise PermanentError(f"the video is {width} x {height} = {width * height / 1e6:.0f} MP a frame, more "
                                 f"than the limit of {max_pixels / 1e6:.0f} MP")
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
        image: Image.Image = best.to_image()  # type: ignore[no-untyped-call]
        rotation = int(getattr(best, "rotation", 0) or 0) % 360
        if rotation:  # the display matrix's turn (counter-clockwise degrees), as a phone records portrait clips
            image = image.rotate(rotation, expand=True)
        info["poster_time"] = round(best_time, 3)
        return Poster(image.convert("RGB"), image.size, info)
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

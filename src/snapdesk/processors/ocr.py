"""OCR: raw text in reading order, a confidence, and lines with their boxes, from an image or a PDF.

The models are the ones rapidocr-onnxruntime ships (PP-OCRv4 detection and recognition), loaded
once per process into onnxruntime sessions that SnapDesk sets up itself; rapidocr's own
post-processing (DB boxes) is reused. What differs from ``RapidOCR()`` with its defaults, each
measured on dense document pages in benchmarks/ocr.py (figures in docs/OCR.md):

* The recognition model's convolutions run in int8: SnapDesk ships that model
  (``resources/ocr_rec_int8.onnx``, made from rapidocr's own by resources/quantize_ocr.py),
  about a third faster a page at the same accuracy. ``SNAPDESK_OCR_MODEL=fp32`` uses the
  original instead.

* Detection runs on the page scaled to 1024 px on its longer side (larger when its letters are
  small, as on screenshots), but lines are cut out of the full-resolution page. The defaults
  shrink the whole page to 2000 px first and crop from that, which costs accuracy on small print.
* No angle classifier per line. On upright documents it *hurts*: it turns some good lines upside
  down and their text is then dropped. Instead a page that reads badly is checked once for being
  upside down as a whole (see ``_upside_down``).
* Each line is warped straight to the recogniser's 48 px height and squeezed horizontally until
  its letter pitch is 16 px: recognition time grows with width, and that still leaves about two
  CTC steps a character, which the model needs to keep letters and the spaces between words.
* Lines are recognised one at a time (batch of 1): on one thread that is faster per pixel than
  batches, which also pad every line to the widest in the batch.
* One onnxruntime thread per session for every two cores, no spinning: the worker runs two OCR
  jobs at once, and two single-threaded jobs use two cores better than one two-threaded one. A
  session may be run from several threads at once, so jobs in one process share one engine
  without a lock around inference.
* Rows are found in the page's own slant, and boxes on one row are joined left to right with
  their gap kept as spaces.
"""

from __future__ import annotations

import io
import math
import os
import threading
from pathlib import Path

import cv2
import numpy as np
import onnxruntime as ort
from PIL import Image, ImageOps, UnidentifiedImageError

from . import pdf
from .errors import PermanentError, RetryableError, damaged

DEFAULT_MAX_PIXELS = 180_000_000

DET_LIMIT = 1024  # detection input, longer side (px)...
DET_MIN_LETTER = 7.5  # ...unless letters would be smaller than this (px) at that size
DET_MAX_PIXELS = 4_000_000  # the most detection ever looks at
DESPECKLE = True  # dots no larger than SPECKLE_FRACTION of the letter height are removed first
SPECKLE_FRACTION = 0.15
TINY_FRACTION = 0.13  # a full stop is about 0.2 of the median letter (mostly x-height): smaller dots never are
DET_THRESH = 0.3  # pixel probability that counts as text
DET_BOX_THRESH = 0.5  # mean probability inside a box to keep it
DET_UNCLIP = 1.6  # how far a box is grown around its text core
REC_HEIGHT = 48  # the recogniser's input height
REC_PITCH_TARGET = 16.0  # letter pitch (px, at 48 px high) a line is squeezed down to...
REC_MIN_SQUEEZE = 0.5  # ...but never to less than half its width
MIN_LINE_SCORE = 0.5  # lines the recogniser is less sure of are dropped (rapidocr's text_score)
LOW_CONFIDENCE = 0.75  # a page below this is checked for being upside down
PDF_DPI = 200

_MODELS = None  # the directory of rapidocr's models, found on first use
#: "int8" (the default: the quantised recogniser SnapDesk ships) or "fp32" (rapidocr's own).
REC_MODEL = os.environ.get("SNAPDESK_OCR_MODEL", "int8")


def _model_dir() -> Path:
    global _MODELS
    if _MODELS is None:
        import rapidocr_onnxruntime

        _MODELS = Path(rapidocr_onnxruntime.__file__).resolve().parent / "models"
    return _MODELS


def fp32_rec_model() -> Path:
    return _model_dir() / "ch_PP-OCRv4_rec_infer.onnx"


def int8_rec_model() -> Path:
    return Path(__file__).resolve().parent.parent / "resources" / "ocr_rec_int8.onnx"


class OcrEngine:
    """rapidocr's models loaded once per process, tuned for document pages; thread-safe."""

    #: How many times any engine loaded the models in this process (the tests check it stays 1).
    loads = 0

    def __init__(self, threads: int | None = None, rec_model: str | None = None):
        """``rec_model``: "int8" (SnapDesk's quantised recogniser) or "fp32" (rapidocr's); by default
        ``SNAPDESK_OCR_MODEL``, else int8."""
        from rapidocr_onnxruntime.ch_ppocr_det.utils import DBPostProcess

        self.threads = max(1, threads or default_threads())
        self.rec_model = rec_model or REC_MODEL
        if self.rec_model not in ("int8", "fp32"):
            raise PermanentError(f"SNAPDESK_OCR_MODEL is int8 or fp32, not {self.rec_model!r}: fix the worker's setting")
        models = _model_dir()
        try:
            self._det = self._session(models / "ch_PP-OCRv4_det_infer.onnx")
            self._rec = self._session(int8_rec_model() if self.rec_model == "int8" else fp32_rec_model())
        except Exception as exc:  # noqa: BLE001 - a broken install, whatever onnxruntime raises
            raise PermanentError(f"the OCR models could not be loaded ({exc})") from None
        self._cls = None  # the angle classifier, loaded the first time a page needs it
        self._cls_lock = threading.Lock()
        chars = self._rec.get_modelmeta().custom_metadata_map["character"].splitlines()
        self._chars = ["", *chars, " "]  # CTC blank first; the space is the model's last class
        self._post = DBPostProcess(thresh=DET_THRESH, box_thresh=DET_BOX_THRESH, max_candidates=1000,
                                   unclip_ratio=DET_UNCLIP, score_mode="fast", use_dilation=True)
        type(self).loads += 1

    def _session(self, path: Path) -> ort.InferenceSession:
        opts = ort.SessionOptions()
        opts.intra_op_num_threads = self.threads
        opts.inter_op_num_threads = 1
        opts.execution_mode = ort.ExecutionMode.ORT_SEQUENTIAL
        opts.graph_optimization_level = ort.GraphOptimizationLevel.ORT_ENABLE_ALL
        opts.log_severity_level = 3
        # Idle threads must not spin: another job's session wants the other core.
        opts.add_session_config_entry("session.intra_op.allow_spinning", "0")
        return ort.InferenceSession(str(path), opts, providers=["CPUExecutionProvider"])

    # ------------------------------------------------------------------ one page
    def read(self, image: Image.Image, progress=None) -> dict:
        """The text of one page. ``progress(percent)`` is called as its lines are read."""
        gray = _gray(image)
        height, width = gray.shape
        letter = None
        if DESPECKLE:
            gray, letter = _despeckle(gray)
        result = self._read(gray, progress, letter)
        boxes = result.pop("boxes")
        if result["lines"] and result["confidence"] < LOW_CONFIDENCE and self._upside_down(gray, boxes):
            flipped = self._read(np.ascontiguousarray(gray[::-1, ::-1]), None, letter)
            flipped.pop("boxes")
            if flipped["confidence"] > result["confidence"]:
                for line in flipped["lines"]:  # boxes back in the coordinates of the page as given
                    turned = np.array([[width - x, height - y] for x, y in line["box"]], np.float32)
                    line["box"] = _clockwise(turned).round().astype(int).tolist()
                result = flipped
        result.update(width=width, height=height)
        return result

    def _read(self, gray: np.ndarray, progress, letter: float | None = None) -> dict:
        boxes = self._detect(gray, letter)
        if progress:
            progress(20)
        lines = []
        step = max(1, len(boxes) // 8)
        for i, box in enumerate(boxes):
            crop = _warp_line(gray, box)
            text, score = self._recognise(crop)
            text = text.strip()
            if text and score >= MIN_LINE_SCORE:
                lines.append({"text": text, "box": box.round().astype(int).tolist(), "score": round(score, 4)})
            if progress and (i + 1) % step == 0:
                progress(20 + 80 * (i + 1) // len(boxes))
        lines = _reading_order(lines)
        return {
            "text": _join_rows(lines),
            "confidence": round(float(np.mean([ln["score"] for ln in lines])), 4) if lines else 0.0,
            "lines": lines,
            "boxes": boxes,  # every line found, read well or not (read() takes it out)
        }

    def _detect(self, gray: np.ndarray, letter: float | None = None) -> list[np.ndarray]:
        height, width = gray.shape
        scale = _detection_scale(gray, letter)
        det_w = max(32, round(width * scale / 32) * 32)
        det_h = max(32, round(height * scale / 32) * 32)
        small = cv2.resize(gray, (det_w, det_h), interpolation=cv2.INTER_LINEAR)
        x = (small.astype(np.float32) * (2 / 255) - 1)[None, None]
        x = np.repeat(x, 3, axis=1)  # the model wants three channels; grey in all three
        pred = self._det.run(None, {self._det.get_inputs()[0].name: x})[0]
        boxes, _ = self._post(pred, (height, width))
        out = []
        for box in boxes:
            box = _clockwise(box.astype(np.float32))
            if np.linalg.norm(box[0] - box[1]) > 3 and np.linalg.norm(box[0] - box[3]) > 3:
                out.append(box)
        return out

    def _recognise(self, crop: np.ndarray) -> tuple[str, float]:
        x = (crop.astype(np.float32) * (2 / 255) - 1)[None, None]
        x = np.repeat(x, 3, axis=1)
        probs = self._rec.run(None, {self._rec.get_inputs()[0].name: x})[0][0]
        return self._decode(probs)

    def _decode(self, probs: np.ndarray) -> tuple[str, float]:
        """CTC greedy decoding: the best class per step, repeats merged, blanks dropped."""
        idx = probs.argmax(axis=1)
        keep = idx != 0
        keep[1:] &= idx[1:] != idx[:-1]
        steps = np.flatnonzero(keep)
        if len(steps) == 0:
            return "", 0.0
        score = float(probs[steps, idx[steps]].mean())
        return "".join(self._chars[c] for c in idx[steps] if c < len(self._chars)), score

    # ------------------------------------------------------------------ orientation
    def _upside_down(self, gray: np.ndarray, boxes: list[np.ndarray]) -> bool:
        """Whether most of a badly read page's lines look upside down to the angle classifier. It
        looks at the lines found, not only those read well: upside down, few are."""
        with self._cls_lock:
            if self._cls is None:
                self._cls = self._session(_model_dir() / "ch_ppocr_mobile_v2.0_cls_infer.onnx")
        votes = []
        for box in boxes[:12]:
            crop = _warp_line(gray, box, squeeze=1.0)
            width = min(192, crop.shape[1])  # the whole line, squeezed into 192 px if longer
            x = np.zeros((1, 3, 48, 192), np.float32)
            x[0, :, :, :width] = cv2.resize(crop, (width, 48)).astype(np.float32) * (2 / 255) - 1
            p = self._cls.run(None, {self._cls.get_inputs()[0].name: x})[0][0]
            votes.append(p[1] > 0.9)  # labels: 0 and 180 degrees
        return sum(votes) > len(votes) / 2


def default_threads() -> int:
    """One onnxruntime thread per job: the worker runs two OCR jobs at once, one per core."""
    cores = len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else (os.cpu_count() or 1)
    return max(1, cores // 2)


_engine: OcrEngine | None = None
_engine_lock = threading.Lock()


def get_engine(threads: int | None = None) -> OcrEngine:
    """The process-wide engine, created on first use (``threads`` only counts then)."""
    global _engine
    if _engine is None:
        with _engine_lock:
            if _engine is None:
                _engine = OcrEngine(threads)
    return _engine


# ---------------------------------------------------------------------- documents
def ocr_document(source: bytes, kind: str, progress, max_pixels: int = DEFAULT_MAX_PIXELS,
                 engine: OcrEngine | None = None) -> dict:
    """OCR an image or a PDF given as bytes; ``kind`` is "image" or "pdf".

    ``progress(percent)`` is called as pages and lines complete; whatever it raises (a
    cancellation) propagates. Input no retry can cure raises PermanentError.
    """
    progress = progress or (lambda percent: None)
    if kind == "pdf":
        page_iter = _pdf_pages(source, max_pixels)
        total = pdf.page_count(source)
    elif kind == "image":
        frames = _image_frames(source, max_pixels)
        page_iter, total = iter(frames), len(frames)
    else:
        raise PermanentError(f"SnapDesk cannot read text from a document of type {kind!r}")

    pages = []
    for number, text, image in page_iter:
        base, span = 100 * (number - 1) // max(total, 1), 100 // max(total, 1)
        if text is not None:
            pages.append({"page": number, "text": text, "confidence": 1.0, "lines": [],
                          "width": image[0], "height": image[1], "source": "text-layer"})
        else:
            engine = engine or get_engine()
            try:
                page = engine.read(image, lambda p, base=base, span=span: progress(base + span * p // 100))
            except MemoryError:
                raise RetryableError("not enough memory to read the text of this page") from None
            pages.append({"page": number, **page, "source": "ocr"})
        progress(100 * number // max(total, 1))

    ocr_lines = [ln["score"] for p in pages if p["source"] == "ocr" for ln in p["lines"]]
    if ocr_lines:
        confidence = round(float(np.mean(ocr_lines)), 4)
    elif any(p["text"].strip() for p in pages):
        confidence = 1.0
    else:
        confidence = 0.0
    return {
        "text": "\n\n".join(p["text"] for p in pages),
        "confidence": confidence,
        "page_count": len(pages),
        "pages": pages,
    }


def _pdf_pages(source: bytes, max_pixels: int):
    """(page number, text-layer text or None, (w, h) or the rendered page) for each page."""
    for index, text, image, size in pdf.pages(source, dpi=PDF_DPI, max_pixels=max_pixels):
        yield index + 1, text, size if text is not None else image


def _image_frames(source: bytes, max_pixels: int) -> list[tuple]:
    """Every page of an image file (a multi-page TIFF has several), upright, as (n, None, image)."""
    if not source:
        raise PermanentError("the file is empty")
    try:
        img = Image.open(io.BytesIO(source))
    except UnidentifiedImageError:
        raise PermanentError("not an image, or an image format SnapDesk cannot read") from None
    try:
        width, height = img.size
        if width * height > max_pixels:
            raise PermanentError(
                f"the image has {width} x {height} = {width * height / 1e6:.0f} MP, more than the limit of "
                f"{max_pixels / 1e6:.0f} MP (a decompression bomb, or simply too large)")
        frames = []
        for n in range(getattr(img, "n_frames", 1) if img.format == "TIFF" else 1):
            img.seek(n)
            if img.size[0] * img.size[1] > max_pixels:
                raise PermanentError(f"page {n + 1} of the image is larger than the limit of {max_pixels / 1e6:.0f} MP")
            img.load()
            frames.append((n + 1, None, ImageOps.exif_transpose(img.copy())))
        return frames
    except PermanentError:
        raise
    except Image.DecompressionBombError as exc:
        raise PermanentError(f"the image is too large to open safely ({exc})") from None
    except (OSError, SyntaxError, ValueError, EOFError) as exc:
        raise damaged(exc) from None
    except MemoryError:
        raise RetryableError("not enough memory to decode the image") from None
    finally:
        img.close()


# ---------------------------------------------------------------------- geometry and text
def _gray(image: Image.Image) -> np.ndarray:
    if image.mode in ("RGBA", "LA", "PA") or (image.mode == "P" and "transparency" in image.info):
        background = Image.new("RGBA", image.size, (255, 255, 255, 255))
        image = Image.alpha_composite(background, image.convert("RGBA"))
    if image.mode in ("I;16", "I;16B", "I;16L", "I"):
        image = image.point(lambda v: v * (1 / 256))
    return np.asarray(image.convert("L"))


def _detection_scale(gray: np.ndarray, letter: float | None = None) -> float:
    """How far to shrink a page for detection: to DET_LIMIT on its longer side, unless its letters
    would then be smaller than DET_MIN_LETTER px (small print, screenshots), where close lines merge;
    never enlarged, and never more than DET_MAX_PIXELS."""
    height, width = gray.shape
    scale = min(1.0, DET_LIMIT / max(height, width))
    letter = letter or _letter_height(gray)
    if letter and letter * scale < DET_MIN_LETTER:
        scale = min(1.0, DET_MIN_LETTER / letter, (DET_MAX_PIXELS / (height * width)) ** 0.5)
    return scale


def _despeckle(gray: np.ndarray) -> tuple[np.ndarray, float | None]:
    """The page without isolated dots much smaller than its letters (scanner dust, which the
    recogniser reads as "." and ":"), and the letters' median height."""
    if max(gray.shape) > 4000:
        return gray, None
    _, ink = cv2.threshold(gray, 0, 255, cv2.THRESH_BINARY_INV + cv2.THRESH_OTSU)
    _, labels, stats, _ = cv2.connectedComponentsWithStats(ink, connectivity=8)
    letter = _median_letter(stats[1:], gray.shape[0])
    if letter is None:
        return gray, None
    dot = max(1, int(letter * SPECKLE_FRACTION))
    small = (stats[:, cv2.CC_STAT_WIDTH] <= dot) & (stats[:, cv2.CC_STAT_HEIGHT] <= dot)
    small[0] = False  # the background
    if not small.any():
        return gray, letter
    # A dot right beside letters is punctuation (the point in "9.70"), not dust: keep those.
    letters = np.where(small[labels] | (labels == 0), 0, 255).astype(np.uint8)
    reach = cv2.dilate(letters, np.ones((max(1, int(letter * 0.5)), max(1, int(letter * 0.8))), np.uint8))
    near = np.zeros(len(stats), dtype=bool)
    near[np.unique(labels[(reach > 0) & small[labels]])] = True
    tiny = max(1, int(letter * TINY_FRACTION))  # smaller than any full stop: dust wherever it is
    dust = (small & ~near) | ((stats[:, cv2.CC_STAT_WIDTH] <= tiny) & (stats[:, cv2.CC_STAT_HEIGHT] <= tiny))
    dust[0] = False
    if not dust.any():
        return gray, letter
    clean = gray.copy()
    clean[dust[labels]] = 255
    return clean, letter


def _median_letter(stats: np.ndarray, height: int) -> float | None:
    heights, widths = stats[:, cv2.CC_STAT_HEIGHT], stats[:, cv2.CC_STAT_WIDTH]
    letters = heights[(heights >= 4) & (heights < height // 8) & (widths < 3 * heights)]
    return float(np.median(letters)) if len(letters) >= 20 else None


def _letter_height(gray: np.ndarray) -> float | None:
    """The median height of the dark blobs (letters, mostly) of a page, in its pixels."""
    step = max(1, max(gray.shape) // 4000)  # a huge image is looked at every n-th pixel
    sample = gray[::step, ::step]
    _, ink = cv2.threshold(sample, 0, 255, cv2.THRESH_BINARY_INV + cv2.THRESH_OTSU)
    _, _, stats, _ = cv2.connectedComponentsWithStats(ink, connectivity=8)
    letter = _median_letter(stats[1:], sample.shape[0])
    return None if letter is None else letter * step


def _clockwise(pts: np.ndarray) -> np.ndarray:
    """The four corners as top-left, top-right, bottom-right, bottom-left."""
    xs = pts[np.argsort(pts[:, 0])]
    left, right = xs[:2], xs[2:]
    tl, bl = left[np.argsort(left[:, 1])]
    tr, br = right[np.argsort(right[:, 1])]
    return np.array([tl, tr, br, bl], dtype=np.float32)


def _warp_line(gray: np.ndarray, box: np.ndarray, height: int = REC_HEIGHT, squeeze: float | None = None) -> np.ndarray:
    """The line inside ``box``, straightened, scaled to the recogniser's height and squeezed.

    With ``squeeze`` None the squeeze is chosen per line from its letter pitch, so that every
    character keeps about REC_COLUMNS_PER_CHAR columns: wide fonts are squeezed more than
    condensed ones, whose letters and spaces would otherwise run together.
    """
    box_w = max(np.linalg.norm(box[0] - box[1]), np.linalg.norm(box[2] - box[3]))
    box_h = max(np.linalg.norm(box[0] - box[3]), np.linalg.norm(box[1] - box[2]))
    if box_h >= 1.5 * box_w:  # a vertical line of text: read it turned a quarter
        box = np.roll(box, -1, axis=0)
        box_w, box_h = box_h, box_w
    width = max(8, int(round(box_w * height / max(box_h, 1))))
    dst = np.array([[0, 0], [width, 0], [width, height], [0, height]], dtype=np.float32)
    matrix = cv2.getPerspectiveTransform(box.astype(np.float32), dst)
    line = cv2.warpPerspective(gray, matrix, (width, height), flags=cv2.INTER_CUBIC, borderMode=cv2.BORDER_REPLICATE)
    if squeeze is None:
        pitch = _letter_pitch(line)
        squeeze = 1.0 if pitch is None else min(1.0, max(REC_MIN_SQUEEZE, REC_PITCH_TARGET / pitch))
    if squeeze < 1.0:
        line = cv2.resize(line, (max(8, int(round(width * squeeze))), height), interpolation=cv2.INTER_AREA)
    return line


def _letter_pitch(line: np.ndarray) -> float | None:
    """Columns per letter: the inked width divided by the runs of inked columns (about one per letter)."""
    band = line[line.shape[0] // 6: line.shape[0] * 5 // 6]
    lo, hi = int(band.min()), int(band.max())
    if hi - lo < 40:  # no contrast: nothing to go by
        return None
    ink = (band < (lo + hi) / 2).any(axis=0)
    edges = np.diff(ink.astype(np.int8), prepend=0, append=0)
    starts, ends = np.flatnonzero(edges == 1), np.flatnonzero(edges == -1)
    if len(starts) < 8:  # too short a line to judge: leave it as it is
        return None
    return (ends[-1] - starts[0]) / len(starts)


def _reading_order(lines: list[dict]) -> list[dict]:
    """Lines sorted top to bottom and, on the same row, left to right; each gets a "row" index.

    Rows are found in the page's own slant (the median angle of the long lines), so a page
    scanned a degree or two askew still reads row by row.
    """
    if not lines:
        return lines
    angles = []
    for ln in lines:
        (x0, y0), (x1, y1) = ln["box"][0], ln["box"][1]
        if x1 - x0 > 3 * abs(ln["box"][3][1] - y0):
            angles.append(math.atan2(y1 - y0, x1 - x0))
    angle = float(np.median(angles)) if angles else 0.0
    cos, sin = math.cos(angle), math.sin(angle)
    for ln in lines:
        pts = np.array(ln["box"], dtype=np.float64)
        ys = -pts[:, 0] * sin + pts[:, 1] * cos  # coordinates turned back by the page's slant
        xs = pts[:, 0] * cos + pts[:, 1] * sin
        ln["_top"], ln["_bottom"], ln["_left"], ln["_right"] = ys.min(), ys.max(), xs.min(), xs.max()
    rows: list[list[dict]] = []
    for ln in sorted(lines, key=lambda ln: (ln["_top"] + ln["_bottom"]) / 2):
        for row in reversed(rows[-3:]):
            top = np.median([r["_top"] for r in row])
            bottom = np.median([r["_bottom"] for r in row])
            overlap = min(bottom, ln["_bottom"]) - max(top, ln["_top"])
            if overlap > 0.5 * min(bottom - top, ln["_bottom"] - ln["_top"]):
                row.append(ln)
                break
        else:
            rows.append([ln])
    ordered = []
    for number, row in enumerate(rows):
        for ln in sorted(row, key=lambda ln: ln["_left"]):
            ln["row"] = number
            ordered.append(ln)
    return ordered


def _join_rows(lines: list[dict]) -> str:
    """One text line per row; boxes on a row joined by spaces in proportion to the gap between them."""
    out, row, prev = [], None, None
    for ln in lines:
        if ln["row"] != row:
            out.append(ln["text"])
            row = ln["row"]
        else:
            height = max(ln["_bottom"] - ln["_top"], 1)
            char = 0.5 * height  # a rough character width
            gap = ln["_left"] - prev["_right"]
            out[-1] += " " * int(min(10, max(1, round(gap / char)))) + ln["text"]
        prev = ln
    for ln in lines:
        for key in ("_top", "_bottom", "_left", "_right", "row"):
            ln.pop(key, None)
    return "\n".join(out)

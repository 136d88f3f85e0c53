"""OCR: raw text in reading order, a confidence, and lines with their boxes, from an image or a PDF.

The models are the ones rapidocr-onnxruntime ships (PP-OCRv4 detection and recognition), loaded
once per process into onnxruntime sessions that SnapDesk sets up itself; rapidocr's own
post-processing (DB boxes) is reused. What differs from ``RapidOCR()`` with its defaults, each
measured on dense document pages in benchmarks/ocr.py (figures in docs/OCR.md):

* The recognition model's convolutions run in int8: SnapDesk ships that model
  (``resources/ocr_rec_int8.onnx``, made from rapidocr's own by resources/quantize_ocr.py, which
  also folds the model's scalar affine blocks into its convolutions and fuses its hard-swish
  activations), about 40 % faster a line at the same accuracy. ``SNAPDESK_OCR_MODEL=fp32`` uses
  the original instead.
* Detection runs on the page scaled to 1024 px on its longer side (larger when its letters are
  small, as on screenshots), but lines are cut out of the full-resolution page. The defaults
  shrink the whole page to 2000 px first and crop from that, which costs accuracy on small print.
* Orientation is decided once a page, not line by line (the classifier per line turns some good
  lines over): a page whose lines run up or down is turned a quarter, then the angle classifier
  votes on windows of its longest dozen lines, and a page most of them call upside down is turned
  over (``read``, ``_on_its_side``, ``_upside_down``).
* Each line is warped straight to the recogniser's 48 px height and squeezed horizontally until
  its letter pitch is 16 px, the pitch counted from the line's blobs (``_letter_pitch``, which
  errs towards too little squeeze, never much too much): recognition time grows with width, and
  16 px still leaves two CTC steps a character, which the model needs for letters, double
  letters and the spaces between words.
* A line longer than 320 px after that is cut at word gaps and read piece by piece
  (``_split_line``): on long lines the model, trained on short ones, ran words together and
  dropped letters and thousands separators, and a short piece costs less per column.
* Pieces are recognised one at a time (batch of 1): on one thread that is faster per pixel than
  batches, which also pad every piece to the widest in the batch.
* One onnxruntime thread per session for every two cores, no spinning: the worker runs two OCR
  jobs at once, and two single-threaded jobs use two cores better than one two-threaded one. A
  session may be run from several threads at once, so jobs in one process share one engine
  without a lock around inference.
* Rows are found in the page's own slant, and boxes on one row are joined left to right with
  their gap kept as spaces; where a gutter splits rows into columns of running text, the columns
  are read one after the other (``_columns``), while a receipt's prices stay on their items' rows.
"""

from __future__ import annotations

import itertools
import math
import os
import re
import threading
from pathlib import Path
from typing import Any, Callable, Iterator, Literal, overload

import cv2
import numpy as np
import onnxruntime as ort
from PIL import Image

from . import decode
from .errors import PermanentError, RetryableError

DEFAULT_MAX_PIXELS = 180_000_000

DET_LIMIT = 1024  # detection input, longer side (px)...
DET_MIN_LETTER = 7.5  # ...unless letters would be smaller than this (px) at that size
DET_MAX_PIXELS = 4_000_000  # the most detection ever looks at
DESPECKLE = True  # dots no larger than SPECKLE_FRACTION of the letter height are removed first
SPECKLE_FRACTION = 0.15
TINY_FRACTION = 0.13  # a full stop is about 0.2 of the median letter (mostly x-height): smaller dots never are...
STROKE_FRACTION = 0.6  # ...nor smaller than this much of a stroke (a full stop is about one stroke wide)
DET_THRESH = 0.3  # pixel probability that counts as text
DET_BOX_THRESH = 0.5  # mean probability inside a box to keep it
DET_UNCLIP = 1.6  # how far a box is grown around its text core
REC_HEIGHT = 48  # the recogniser's input height
REC_PITCH_TARGET = 16.0  # letter pitch (px, at 48 px high) a line is squeezed down to...
REC_MIN_SQUEEZE = 0.5  # ...but never to less than half its width
REC_CHUNK = 320  # lines longer than this (px, after the squeeze) are read in pieces cut at word gaps
REC_MARGIN = 6  # blank columns added on each side of such a piece
MIN_LINE_SCORE = 0.5  # lines the recogniser is less sure of are dropped (rapidocr's text_score)
PDF_DPI = 200
COLUMN_GUTTER = 1.2  # columns of text: a gutter at least this many line heights wide...
COLUMN_MIN_ROWS = 3  # ...running through at least this many rows with text on both sides...
COLUMN_MIN_WIDTH = 6.0  # ...whose lines are at least this many line heights long (a price is not)
LOOK_SIZE = 800  # has_text: the quick look's detection, longer side (px), unless letters are smaller...
LOOK_MIN_LETTER = 7  # ...(blobs smaller than this are noise, not letters)...
LOOK_MAX_PIXELS = 1_000_000  # ...but never larger than this: past it, the look says "maybe" (True)...
LOOK_MIN_LINES = 3  # ...then this many boxes at least LOOK_LINE_ASPECT times as wide as high are text...
LOOK_LINE_ASPECT = 3.0
LOOK_LINES = 8  # ...else it reads the widest boxes, at most this many...
LOOK_MIN_CHARS = 3  # ...and one must read as a word: this many letters or digits...
LOOK_MIN_SCORE = 0.75  # ...read at least this surely

_FULL_WIDTH = {c: c - 0xFEE0 for c in range(0xFF01, 0xFF5F)}  # "？" -> "?", "（" -> "(", "１" -> "1"
_CJK = re.compile("[\u3000-\u30ff\u3400-\u9fff\uac00-\ud7af\uf900-\ufaff]")
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
        self._cls: Any = None  # the angle classifier (an onnxruntime session), loaded the first time a page needs it
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
    def read(self, image: Image.Image, progress: Callable[[int], None] | None = None) -> dict[str, Any]:
        """The text of one page. ``progress(percent)`` is called as its lines are read.

        A page lying on its side (most of its lines found run up or down) is turned a quarter
        first; then the angle classifier looks at a dozen of its lines, and if most of them are
        upside down, so is the page, and it is turned over. Boxes are in the page as given.
        """
        gray = _gray(image)
        height, width = gray.shape
        letter = None
        if DESPECKLE:
            gray, letter = _despeckle(gray)
        turns = 0  # quarter turns clockwise that made the page upright
        boxes = self._detect(gray, letter)
        if _on_its_side(boxes):
            gray, turns = np.ascontiguousarray(np.rot90(gray, -1)), 1
            boxes = self._detect(gray, letter)
        if self._upside_down(gray, boxes):
            gray, turns = np.ascontiguousarray(gray[::-1, ::-1]), turns + 2
            size = np.array(gray.shape[::-1], np.float32)
            boxes = [_clockwise(size - box) for box in boxes]  # the same boxes, turned over with the page
        result = self._read(gray, progress, boxes)
        result.pop("boxes")
        if turns % 4:
            for line in result["lines"]:  # boxes back in the coordinates of the page as given
                turned = _unturn(np.array(line["box"], np.float32), turns % 4, width, height)
                line["box"] = _clockwise(turned).round().astype(int).tolist()
        result.update(width=width, height=height)
        return result

    def _read(self, gray: np.ndarray, progress: Callable[[int], None] | None,
              boxes: list[np.ndarray]) -> dict[str, Any]:
        if progress:
            progress(20)
        lines: list[dict[str, Any]] = []
        step = max(1, len(boxes) // 8)
        for i, box in enumerate(boxes):
            text, score = self._read_line(gray, box)
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

    def _read_line(self, gray: np.ndarray, box: np.ndarray) -> tuple[str, float]:
        """The text in one box: straightened, squeezed, cut at word gaps if long, each piece read."""
        line, pitch = _warp_line(gray, box, with_pitch=True)
        texts, scores, weights = [], [], []
        for piece in _split_line(line, pitch):
            text, score = self._recognise(piece)
            text = text.strip()
            if text:
                texts.append(text)
                scores.append(score)
                weights.append(len(text))
        if not texts:
            return "", 0.0
        text = " ".join(texts)
        if not _CJK.search(text):  # full-width punctuation ("？", "（") only belongs among CJK characters
            text = text.translate(_FULL_WIDTH)
        return text, float(np.average(scores, weights=weights))

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

    def has_text(self, gray: np.ndarray) -> bool:
        """``has_text`` on a page already in grey (see there)."""
        height, width = gray.shape
        scale = min(1.0, LOOK_SIZE / max(height, width))
        letter = _letter_height(_strips(gray) if height * width > 4_000_000 else gray)
        if letter and letter >= LOOK_MIN_LETTER and letter * scale < DET_MIN_LETTER:  # small print: look closer
            scale = min(1.0, DET_MIN_LETTER / letter)
            if height * width * scale * scale > LOOK_MAX_PIXELS:
                return True  # no quick look can tell: a page of small print, most likely; the full read decides
        det_w, det_h = max(32, round(width * scale / 32) * 32), max(32, round(height * scale / 32) * 32)
        small = cv2.resize(gray, (det_w, det_h), interpolation=cv2.INTER_AREA)
        x = np.repeat((small.astype(np.float32) * (2 / 255) - 1)[None, None], 3, axis=1)
        pred = self._det.run(None, {self._det.get_inputs()[0].name: x})[0]
        boxes, _ = self._post(pred, (height, width))
        boxes = [_clockwise(box.astype(np.float32)) for box in boxes]
        sides = [(float(np.linalg.norm(box[0] - box[1])), float(np.linalg.norm(box[0] - box[3]))) for box in boxes]
        # Lines run across or, on a page lying on its side, up or down (``read`` turns such a page).
        if sum(max(w, h) >= LOOK_LINE_ASPECT * min(w, h) and min(w, h) > 3 for w, h in sides) >= LOOK_MIN_LINES:
            return True  # lines of text, a page of them
        order = sorted((i for i, (w, h) in enumerate(sides) if w > 3 and h > 3), key=lambda i: -sides[i][0])
        for i in order[:LOOK_LINES]:
            text, score = self._recognise(_warp_line(gray, boxes[i]))
            if score >= LOOK_MIN_SCORE and sum(c.isalnum() for c in text) >= LOOK_MIN_CHARS:
                return True
        return False

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
        """Whether most of a page's lines (the longest dozen found) look upside down to the angle
        classifier. One vote a page, not one a line: line by line, it turns some good lines over."""
        with self._cls_lock:
            if self._cls is None:
                self._cls = self._session(_model_dir() / "ch_ppocr_mobile_v2.0_cls_infer.onnx")
        votes = []
        for box in sorted(boxes, key=lambda box: -float(np.linalg.norm(box[0] - box[1])))[:12]:
            crop = _warp_line(gray, box, squeeze=1.0)
            # Windows of the classifier's 192 px at the line's own aspect: squashed into 192 px
            # whole, as rapidocr does, a long line is a blur, and upright ones were taken for 180.
            starts = [0] + ([crop.shape[1] // 2 - 96] if crop.shape[1] > 384 else [])
            x = np.zeros((len(starts), 3, 48, 192), np.float32)
            for i, start in enumerate(starts):
                window = crop[:, start:start + 192]
                x[i, :, :, :window.shape[1]] = window.astype(np.float32) * (2 / 255) - 1
            p = self._cls.run(None, {self._cls.get_inputs()[0].name: x})[0]
            votes.append(float(p[:, 1].mean()) > 0.5)  # labels: 0 and 180 degrees
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
def ocr_document(source: bytes, kind: str, progress: Callable[[int], None] | None,
                 max_pixels: int = DEFAULT_MAX_PIXELS, engine: OcrEngine | None = None,
                 max_pages: int = decode.DEFAULT_MAX_PAGES) -> dict[str, Any]:
    """OCR an image or a PDF given as bytes; ``kind`` is "image" or "pdf".

    ``progress(percent)`` is called as pages and lines complete; whatever it raises (a
    cancellation) propagates. Input no retry can cure raises PermanentError. Pages are decoded
    one at a time (``processors/decode.py``), at most ``max_pages`` of them: a longer document
    gives the text of its first ``max_pages`` pages, and the result says so (``pages_total``,
    ``note``). A picture in which a quick look finds no text (``has_text``) gives no text at all.
    """
    progress = progress or (lambda percent: None)
    if kind == "pdf":
        page_iter = _pdf_pages(source, max_pixels, max_pages)
    elif kind == "image":
        page_iter = _image_frames(source, max_pixels, max_pages)
    else:
        raise PermanentError(f"SnapDesk cannot read text from a document of type {kind!r}")
    total = None  # the pages to read, known once the first is decoded

    pages: list[dict[str, Any]] = []
    for number, count, text, image in page_iter:
        pages_total, total = count, min(count, max(1, max_pages))
        base, span = 100 * (number - 1) // max(total, 1), 100 // max(total, 1)
        if isinstance(image, tuple):  # a PDF page's text layer, and the page's size
            pages.append({"page": number, "text": text, "confidence": 1.0, "lines": [],
                          "width": image[0], "height": image[1], "source": "text-layer"})
        else:
            engine = engine or get_engine()
            if kind == "image" and not has_text(image, engine):  # a photo: nothing to read, nothing invented
                pages.append({"page": number, "text": "", "confidence": 0.0, "lines": [], "width": image.width,
                              "height": image.height, "source": "ocr"})
                progress(100 * number // max(total, 1))
                continue
            try:
                page = engine.read(image, lambda p: progress(base + span * p // 100))  # (called before the next page)
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
    result = {
        "text": "\n\n".join(p["text"] for p in pages),
        "confidence": confidence,
        "page_count": len(pages),
        "pages": pages,
    }
    if pages and pages_total > len(pages):
        result.update(pages_total=pages_total, note=f"only the first {len(pages)} of {pages_total} pages were read "
                                                    f"(the limit is SNAPDESK_MAX_PAGES={max_pages})")
    return result


def _strips(gray: np.ndarray, count: int = 8) -> np.ndarray:
    """``count`` upright strips of a large page side by side, a third of it: every row of text
    crosses them, so its letters are measured there as on the whole page, in a third of the time."""
    height, width = gray.shape
    strip = max(64, width // 24)
    return np.hstack([gray[:, x:x + strip] for x in np.linspace(0, width - strip, count).astype(int)])


def has_text(image: Image.Image, engine: OcrEngine | None = None) -> bool:
    """Whether a quick look finds text in a picture (a photo of shapes or scenery has none).

    The look: text detection on the picture shrunk to LOOK_SIZE px on its longer side (larger when
    its letter-like blobs would be too small to see there; when that would take more than
    LOOK_MAX_PIXELS, it is a page of small print and the answer is yes). A few boxes shaped like
    lines of text say yes; else the recogniser reads at most LOOK_LINES of the widest boxes, cut
    from the full picture, and the first that reads as a word (LOOK_MIN_CHARS letters or digits,
    read with at least LOOK_MIN_SCORE) says yes. Rings, sticks and boxes in a photo are found as "text" by the
    detector, but read as one character ("0", "O", "I") or as symbols, so they say no. What this
    costs: one small detection and a few lines, tens of milliseconds (benchmarks/no_text.py).
    A page whose only text is one or two characters is taken for a picture without text.
    """
    engine = engine or get_engine()
    gray = _gray(image)
    return engine.has_text(gray)


#: (page number, page count, text-layer text or None, (w, h) with a text layer, else the page to read)
_PageToRead = tuple[int, int, "str | None", "tuple[int, int] | Image.Image"]


def _pdf_pages(source: bytes, max_pixels: int, max_pages: int = decode.DEFAULT_MAX_PAGES) -> Iterator[_PageToRead]:
    """(page number, page count, text-layer text or None, (w, h) or the rendered page) for each
    page, one at a time."""
    for page in decode.pages(source, "pdf", mode=decode.GRAY, max_pixels=max_pixels, max_pages=max_pages,
                             dpi=PDF_DPI, text_layer=True):
        assert page.text is not None or page.image is not None  # a page without a text layer is rendered
        yield page.number, page.count, page.text, page.size if page.image is None else page.image


def _image_frames(source: bytes, max_pixels: int, max_pages: int = decode.DEFAULT_MAX_PAGES
                  ) -> Iterator[_PageToRead]:
    """Every page of an image file (a multi-page TIFF has several), upright and in 8-bit grey, one
    at a time, as (n, page count, None, image)."""
    for page in decode.pages(source, "image", mode=decode.GRAY, max_pixels=max_pixels, max_pages=max_pages):
        assert page.image is not None  # an image's pages are always decoded
        yield page.number, page.count, None, page.image


# ---------------------------------------------------------------------- geometry and text
def _gray(image: Image.Image) -> np.ndarray:
    """The page as 8-bit grey, whatever its mode (``decode.convert``: transparency over white,
    16-bit scaled, LAB by its lightness)."""
    return np.asarray(decode.convert(image, decode.GRAY))


def _detection_scale(gray: np.ndarray, letter: float | None = None) -> float:
    """How far to shrink a page for detection: to DET_LIMIT on its longer side, unless its letters
    would then be smaller than DET_MIN_LETTER px (small print, screenshots), where close lines merge;
    never enlarged, and never more than DET_MAX_PIXELS."""
    height, width = gray.shape
    scale: float = min(1.0, DET_LIMIT / max(height, width))
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
    reach = cv2.dilate(letters, np.ones((max(1, int(letter * 0.5)), max(1, int(letter * 1.2))), np.uint8))
    near = np.zeros(len(stats), dtype=bool)
    near[np.unique(labels[(reach > 0) & small[labels]])] = True
    # Smaller than any full stop: dust wherever it is. A full stop is about a stroke wide, so in
    # thin type (light weights) it is smaller than TINY_FRACTION of the letters: the stroke decides.
    tiny = max(1, round(min(letter * TINY_FRACTION, _stroke_width(ink) * STROKE_FRACTION)))
    dust = (small & ~near) | ((stats[:, cv2.CC_STAT_WIDTH] <= tiny) & (stats[:, cv2.CC_STAT_HEIGHT] <= tiny))
    dust[0] = False
    if not dust.any():
        return gray, letter
    clean = gray.copy()
    clean[dust[labels]] = 255
    return clean, letter


def _stroke_width(ink: np.ndarray) -> float:
    """The median width of the horizontal runs of ink (every fourth row): about a letter's stroke."""
    rows = ink[::4] > 0
    edges = np.diff(rows.astype(np.int8), axis=1, prepend=0, append=0)
    starts, ends = np.nonzero(edges == 1), np.nonzero(edges == -1)
    runs = ends[1] - starts[1]  # both in row-major order, so they pair up
    return float(np.median(runs)) if len(runs) else 1.0


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


def _on_its_side(boxes: list[np.ndarray]) -> bool:
    """Whether the page lies on its side: more of its text (by length) in upright boxes than in flat ones."""
    upright = flat = 0.0
    for box in boxes:
        w = float(np.linalg.norm(box[0] - box[1]))
        h = float(np.linalg.norm(box[0] - box[3]))
        if h >= 2 * w:
            upright += h
        elif w >= 2 * h:
            flat += w
    return upright > flat


def _unturn(points: np.ndarray, turns: int, width: int, height: int) -> np.ndarray:
    """Points of the page turned ``turns`` quarters clockwise, in the page as given (``width`` x ``height``)."""
    sizes = [(width, height)]
    for _ in range(turns):
        sizes.append(sizes[-1][::-1])
    for w, h in reversed(sizes[:-1]):  # undo the last quarter turn first
        points = np.stack([points[:, 1], h - points[:, 0]], axis=1)
    return points


def _clockwise(pts: np.ndarray) -> np.ndarray:
    """The four corners as top-left, top-right, bottom-right, bottom-left."""
    xs = pts[np.argsort(pts[:, 0])]
    left, right = xs[:2], xs[2:]
    tl, bl = left[np.argsort(left[:, 1])]
    tr, br = right[np.argsort(right[:, 1])]
    return np.array([tl, tr, br, bl], dtype=np.float32)


@overload
def _warp_line(gray: np.ndarray, box: np.ndarray, height: int = ..., squeeze: float | None = ...,
               with_pitch: Literal[False] = ...) -> np.ndarray: ...
@overload
def _warp_line(gray: np.ndarray, box: np.ndarray, height: int = ..., squeeze: float | None = ..., *,
               with_pitch: Literal[True]) -> tuple[np.ndarray, float | None]: ...
def _warp_line(gray: np.ndarray, box: np.ndarray, height: int = REC_HEIGHT, squeeze: float | None = None,
               with_pitch: bool = False) -> np.ndarray | tuple[np.ndarray, float | None]:
    """The line inside ``box``, straightened, scaled to the recogniser's height and squeezed.

    With ``squeeze`` None the squeeze is chosen per line from its letter pitch, so that every
    character keeps about REC_PITCH_TARGET columns: wide fonts are squeezed more than condensed
    ones, whose letters and spaces would otherwise run together. ``with_pitch``: also the
    letter pitch after the squeeze (None when the line is too short to tell).
    """
    box_w = max(np.linalg.norm(box[0] - box[1]), np.linalg.norm(box[2] - box[3]))
    box_h = max(np.linalg.norm(box[0] - box[3]), np.linalg.norm(box[1] - box[2]))
    if box_h >= 1.5 * box_w:  # a vertical line of text: read it turned a quarter
        box = np.roll(box, -1, axis=0)
        box_w, box_h = box_h, box_w
    width = max(8, int(round(box_w * height / max(float(box_h), 1.0))))
    dst = np.array([[0, 0], [width, 0], [width, height], [0, height]], dtype=np.float32)
    matrix = cv2.getPerspectiveTransform(box.astype(np.float32), dst)
    line = cv2.warpPerspective(gray, matrix, (width, height), flags=cv2.INTER_CUBIC, borderMode=cv2.BORDER_REPLICATE)
    pitch = _letter_pitch(line) if squeeze is None or with_pitch else None
    if squeeze is None:
        squeeze = 1.0 if pitch is None else min(1.0, max(REC_MIN_SQUEEZE, REC_PITCH_TARGET / pitch))
    if squeeze < 1.0:
        line = cv2.resize(line, (max(8, int(round(width * squeeze))), height), interpolation=cv2.INTER_AREA)
    if with_pitch:
        return line, None if pitch is None else pitch * squeeze
    return line


def _letter_pitch(line: np.ndarray) -> float | None:
    """Columns per character (spaces included) of a line at the recogniser's height, or None.

    Counted from the line's connected blobs, which stay apart in italics (where runs of inked
    columns merge whole words) and rarely merge: a blob much wider than the median one counts as
    that many letters. Measured on every font of this machine, scanned and compressed, it is
    0.63 to 1.01 of the true pitch: it errs towards squeezing too little, never much too hard.
    """
    height = line.shape[0]
    lo, hi = int(line.min()), int(line.max())
    if hi - lo < 40:  # no contrast: nothing to go by
        return None
    ink = (line < (lo + hi) / 2).astype(np.uint8)
    _, _, stats, _ = cv2.connectedComponentsWithStats(ink, connectivity=8)
    stats = stats[1:]
    stats = stats[(stats[:, cv2.CC_STAT_HEIGHT] >= height * 0.12) | (stats[:, cv2.CC_STAT_WIDTH] >= height * 0.12)]
    if len(stats) < 6:  # too short a line to judge: leave it as it is
        return None
    order = np.argsort(stats[:, cv2.CC_STAT_LEFT])
    left, width = stats[order, cv2.CC_STAT_LEFT], stats[order, cv2.CC_STAT_WIDTH]
    median = float(np.median(width))
    letters = np.maximum(1, np.round(width / (median * 1.15))).sum()
    right = np.maximum.accumulate(left + width)
    spaces = (left[1:] - right[:-1] > 0.35 * median).sum()
    return float(right[-1] - left[0]) / float(letters + spaces)


def _split_line(line: np.ndarray, pitch: float | None, longest: int | None = None) -> list[np.ndarray]:
    """A line longer than ``longest`` columns cut into pieces at word gaps.

    The recogniser was trained on short lines: on long ones it runs words together and drops
    letters, and its time per column grows with the width. Cuts are made only in blank gaps
    that are word gaps: the wider of the two kinds of gap in the line (the threshold between
    them set as Otsu's method sets one between ink and paper), and at least half a letter pitch.
    Each piece gets a few blank columns of margin on both sides. A line with no such gap where
    one is needed is read whole.
    """
    longest = longest or REC_CHUNK
    width = line.shape[1]
    if width <= longest:
        return [line]
    height = line.shape[0]
    lo, hi = int(line.min()), int(line.max())
    if hi - lo < 40:
        return [line]
    ink = (line < (lo + hi) / 2).any(axis=0)  # a comma or a thin full stop is ink too
    edges = np.diff(ink.astype(np.int8), prepend=1, append=1)
    starts, ends = np.flatnonzero(edges == -1), np.flatnonzero(edges == 1)  # blank runs [start, end)
    inner = (starts > 0) & (ends < width)
    starts, ends = starts[inner], ends[inner]
    runs = ends - starts
    if len(runs) < 2:
        return [line]
    least = max(_two_kinds(runs), 0.5 * (pitch or height * 0.35))
    wide = runs >= least
    starts, ends, runs = starts[wide], ends[wide], runs[wide]
    pieces, start = [], 0
    while width - start > longest:
        after = starts > start + longest * 0.4
        inside = after & (ends < start + longest)
        if not inside.any():
            inside = after & (starts < start + 2 * longest)
            if not inside.any():
                break
        candidates = np.flatnonzero(inside)
        best = candidates[np.argmax(runs[candidates])]
        cut = (starts[best] + ends[best]) // 2
        pieces.append(line[:, start:cut])
        start = cut
    pieces.append(line[:, start:])
    if len(pieces) == 1:
        return pieces
    return [np.pad(piece, ((0, 0), (REC_MARGIN, REC_MARGIN)), mode="edge") for piece in pieces]


def _two_kinds(values: np.ndarray) -> float:
    """The threshold that best splits ``values`` into two groups (Otsu's: most variance between them)."""
    values = np.sort(values.astype(np.float64))
    best, threshold = -1.0, float(values[-1]) + 1
    for i in range(1, len(values)):
        if values[i] == values[i - 1]:
            continue
        low, high = values[:i], values[i:]
        between = len(low) * len(high) * (high.mean() - low.mean()) ** 2
        if between > best:
            best, threshold = between, (values[i - 1] + values[i]) / 2
    return threshold


def _reading_order(lines: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """Lines in reading order; each gets a "row" index (lines of one row share it).

    Rows are found in the page's own slant (the median angle of the long lines), so a page
    scanned a degree or two askew still reads row by row, left to right within a row. Where rows
    are split by a gutter into columns of text (see ``_columns``), the left column is read before
    the right one; a receipt's price column is not text and stays on its item's row.
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
    rows: list[list[dict[str, Any]]] = []
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
    rows = [sorted(row, key=lambda ln: ln["_left"]) for row in rows]
    height = float(np.median([ln["_bottom"] - ln["_top"] for ln in lines]))
    ordered = []
    for number, row in enumerate(_columns(rows, height)):
        for ln in row:
            ln["row"] = number
            ordered.append(ln)
    return ordered


def _columns(rows: list[list[dict[str, Any]]], height: float) -> list[list[dict[str, Any]]]:
    """Rows (each sorted left to right) rearranged so that columns of text are read one after the other.

    A gutter is an upright strip, at least COLUMN_GUTTER line heights wide, that no line of
    COLUMN_MIN_ROWS or more rows in a row crosses while lines lie on both sides of it. The rows
    it runs through become the rows left of it, then the rows right of it, each looked at again
    (three columns), if both sides are *text*: lines COLUMN_MIN_WIDTH line heights long or more,
    the right side's starting at one x. A receipt's or a form's right-aligned amounts are short
    and end, rather than start, at one x: their rows stay whole, each amount on its item's row.
    Rows above and below the gutter (a heading across both columns) are read where they are.
    """
    best = None
    gaps = sorted({(prev["_right"] + ln["_left"]) / 2 for row in rows for prev, ln in itertools.pairwise(row)
                   if ln["_left"] - prev["_right"] >= COLUMN_GUTTER * height})
    for x in gaps:
        start = None
        for i in range(len(rows) + 1):
            crossed = i == len(rows) or any(ln["_left"] < x < ln["_right"] for ln in rows[i])
            if crossed:
                if start is not None and i - start >= COLUMN_MIN_ROWS:
                    block = rows[start:i]
                    left = [ln for row in block for ln in row if ln["_right"] <= x]
                    right = [ln for row in block for ln in row if ln["_left"] >= x]
                    both = sum(any(ln["_right"] <= x for ln in row) and any(ln["_left"] >= x for ln in row)
                               for row in block)
                    if (both >= COLUMN_MIN_ROWS and _text_column(left, height) and _text_column(right, height, True)
                            and (best is None or both > best[0])):
                        best = (both, x, start, i)
                start = None
            elif start is None:
                start = i
    if best is None:
        return rows
    _, x, start, end = best
    block = rows[start:end]
    left_rows = [[ln for ln in row if ln["_right"] <= x] for row in block]
    right_rows = [[ln for ln in row if ln["_left"] >= x] for row in block]
    return (_columns(rows[:start], height) + _columns([r for r in left_rows if r], height)
            + _columns([r for r in right_rows if r], height) + _columns(rows[end:], height))


def _text_column(lines: list[dict[str, Any]], height: float, aligned: bool = False) -> bool:
    """Whether lines look like a column of running text: long, and (``aligned``) starting at one x."""
    if len(lines) < COLUMN_MIN_ROWS:
        return False
    widths = [ln["_right"] - ln["_left"] for ln in lines]
    if np.median(widths) < COLUMN_MIN_WIDTH * height:
        return False
    if aligned:
        lefts = np.array([ln["_left"] for ln in lines])
        return float(np.mean(np.abs(lefts - np.median(lefts)) < 0.5 * height)) >= 0.6
    return True


def _join_rows(lines: list[dict[str, Any]]) -> str:
    """One text line per row; boxes on a row joined by spaces in proportion to the gap between them."""
    out: list[str] = []
    row: int | None = None
    prev: dict[str, Any] = {}  # the line before (the first line starts a row, so it is set by then)
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

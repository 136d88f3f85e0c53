"""The page's geometry for OCR (``ocr.py`` reads with it): how far to shrink a page for detection,
dust taken off, the letter height, whether the lines run sideways, each line warped straight and
squeezed to the recogniser's pitch and cut at word gaps, and the lines put in reading order (rows
in the page's own slant, columns of running text one after the other). Pure numpy and OpenCV: no
model here. Why each step is as it is: ``ocr.py``'s docstring and docs/OCR.md.
"""

from __future__ import annotations

import itertools
import math
from typing import Any, Literal, overload

import cv2
import numpy as np
from PIL import Image

from . import decode

DET_LIMIT = 1024  # detection input, longer side (px)...
DET_MIN_LETTER = 7.5  # ...unless letters would be smaller than this (px) at that size
DET_MAX_PIXELS = 4_000_000  # the most detection ever looks at
SPECKLE_FRACTION = 0.15
TINY_FRACTION = 0.13  # a full stop is about 0.2 of the median letter (mostly x-height): smaller dots never are...
STROKE_FRACTION = 0.6  # ...nor smaller than this much of a stroke (a full stop is about one stroke wide)
REC_HEIGHT = 48  # the recogniser's input height
SLANTS = (0.1, 0.2, 0.3)  # shears tried to set an oblique line upright (0.2: about 11 degrees, DejaVu's oblique)
REC_PITCH_TARGET = 16.0  # letter pitch (px, at 48 px high) a line is squeezed down to...
REC_MIN_SQUEEZE = 0.5  # ...but never to less than half its width
REC_CHUNK = 320  # lines longer than this (px, after the squeeze) are read in pieces cut at word gaps
REC_MARGIN = 6  # blank columns added on each side of such a piece
COLUMN_GUTTER = 1.2  # columns of text: a gutter at least this many line heights wide...
COLUMN_MIN_ROWS = 3  # ...running through at least this many rows with text on both sides...
COLUMN_MIN_WIDTH = 6.0  # ...whose lines are at least this many line heights long (a price is not)


def gray(image: Image.Image) -> np.ndarray:
    """The page as 8-bit grey, whatever its mode (``decode.convert``: transparency over white,
    16-bit scaled, LAB by its lightness)."""
    return np.asarray(decode.convert(image, decode.GRAY))


def detection_scale(gray: np.ndarray, letter: float | None = None) -> float:
    """How far to shrink a page for detection: to DET_LIMIT on its longer side, unless its letters
    would then be smaller than DET_MIN_LETTER px (small print, screenshots), where close lines merge;
    never enlarged, and never more than DET_MAX_PIXELS."""
    height, width = gray.shape
    scale: float = min(1.0, DET_LIMIT / max(height, width))
    letter = letter or letter_height(gray)
    if letter and letter * scale < DET_MIN_LETTER:
        scale = min(1.0, DET_MIN_LETTER / letter, (DET_MAX_PIXELS / (height * width)) ** 0.5)
    return scale


def despeckle(gray: np.ndarray) -> tuple[np.ndarray, float | None]:
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


def letter_height(gray: np.ndarray) -> float | None:
    """The median height of the dark blobs (letters, mostly) of a page, in its pixels."""
    step = max(1, max(gray.shape) // 4000)  # a huge image is looked at every n-th pixel
    sample = gray[::step, ::step]
    _, ink = cv2.threshold(sample, 0, 255, cv2.THRESH_BINARY_INV + cv2.THRESH_OTSU)
    _, _, stats, _ = cv2.connectedComponentsWithStats(ink, connectivity=8)
    letter = _median_letter(stats[1:], sample.shape[0])
    return None if letter is None else letter * step


def on_its_side(boxes: list[np.ndarray]) -> bool:
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


def unturn(points: np.ndarray, turns: int, width: int, height: int) -> np.ndarray:
    """Points of the page turned ``turns`` quarters clockwise, in the page as given (``width`` x ``height``)."""
    sizes = [(width, height)]
    for _ in range(turns):
        sizes.append(sizes[-1][::-1])
    for w, h in reversed(sizes[:-1]):  # undo the last quarter turn first
        points = np.stack([points[:, 1], h - points[:, 0]], axis=1)
    return points


def clockwise(pts: np.ndarray) -> np.ndarray:
    """The four corners as top-left, top-right, bottom-right, bottom-left."""
    xs = pts[np.argsort(pts[:, 0])]
    left, right = xs[:2], xs[2:]
    tl, bl = left[np.argsort(left[:, 1])]
    tr, br = right[np.argsort(right[:, 1])]
    return np.array([tl, tr, br, bl], dtype=np.float32)


@overload
def warp_line(gray: np.ndarray, box: np.ndarray, height: int = ..., squeeze: float | None = ...,
               with_pitch: Literal[False] = ...) -> np.ndarray: ...
@overload
def warp_line(gray: np.ndarray, box: np.ndarray, height: int = ..., squeeze: float | None = ..., *,
               with_pitch: Literal[True]) -> tuple[np.ndarray, float | None]: ...
def warp_line(gray: np.ndarray, box: np.ndarray, height: int = REC_HEIGHT, squeeze: float | None = None,
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
    line = deslant(line)
    pitch = _letter_pitch(line) if squeeze is None or with_pitch else None
    if squeeze is None:
        squeeze = 1.0 if pitch is None else min(1.0, max(REC_MIN_SQUEEZE, REC_PITCH_TARGET / pitch))
    if squeeze < 1.0:
        line = cv2.resize(line, (max(8, int(round(width * squeeze))), height), interpolation=cv2.INTER_AREA)
    if with_pitch:
        return line, None if pitch is None else pitch * squeeze
    return line


def deslant(line: np.ndarray) -> np.ndarray:
    """The line with italic or oblique letters set upright: sheared by whichever of SLANTS makes
    its strokes most vertical (the ink's column sums most peaked), or as it is.

    The recogniser reads upright letters best: an oblique "i" passed for a dotless "ı", and a
    squeezed oblique line lost the spaces before digits (docs/OCR.md, "Slant").
    """
    height, width = line.shape
    lo, hi = int(line.min()), int(line.max())
    if hi - lo < 40 or width < height:  # no contrast, or too short to judge
        return line
    ink = (line < (lo + hi) / 2).astype(np.float32)
    best, best_score = 0.0, float(np.square(ink.sum(axis=0)).sum())
    for slant in SLANTS:
        shear = np.array([[1, slant, -slant * height / 2], [0, 1, 0]], np.float32)
        columns = cv2.warpAffine(ink, shear, (width, height), flags=cv2.INTER_NEAREST).sum(axis=0)
        score = float(np.square(columns).sum())
        if score > best_score:
            best, best_score = slant, score
    if not best:
        return line
    shear = np.array([[1, best, -best * height / 2], [0, 1, 0]], np.float32)
    return cv2.warpAffine(line, shear, (width, height), flags=cv2.INTER_LINEAR, borderMode=cv2.BORDER_REPLICATE)


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


def split_line(line: np.ndarray, pitch: float | None, longest: int | None = None) -> list[np.ndarray]:
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


def reading_order(lines: list[dict[str, Any]]) -> list[dict[str, Any]]:
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


def join_rows(lines: list[dict[str, Any]]) -> str:
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

"""Is it the same picture? A perceptual hash to find candidates, a small signature to decide.

Made in the thumbnail job from its smallest thumbnail (``likeness``), so a photo and a resized,
re-encoded, re-oriented or slightly cropped copy of it are measured on near-identical pixels:

* ``phash``: the 64-bit DCT hash (the signs of the 8 x 8 lowest frequencies of a 32 x 32 grey
  picture against their median). Copies land a few bits apart; so do two shots of one scene taken
  a second apart, which is why the hash only proposes candidates (``HASH_DISTANCE``).
* ``signature`` (6 KiB): the picture in 64 x 64 grey levels, and its colour (Cb, Cr) in 32 x 32.
  ``difference`` fits each picture, at 32 x 32, into the other's grey plane, trying crops of up
  to 6 % on each side (then finer steps around the best), so a slightly cropped copy lines up; a
  crop only removes, so a camera that shifted (new content at one edge) does not. At that fit,
  ``same_picture`` asks every one of the 8 x 8 blocks to agree within ``BLOCK_TOLERANCE`` grey
  levels and ``COLOUR_TOLERANCE`` levels of colour, and the whole within ``BRIGHTNESS_TOLERANCE``:
  a subject that moved (even one as bright as what was behind it), a shifted camera or another
  exposure leave more than that; resizing and re-encoding leave a level or two.

The thresholds were tuned on generated photos and checked on others (``benchmarks/duplicates.py``,
``docs/DUPLICATES.md``). Pure: pixels in, numbers out; ``group`` works on what the DB stored.
"""

from __future__ import annotations

import base64
from collections.abc import Callable, Hashable, Iterable, Sequence
from dataclasses import dataclass
from functools import cache
from typing import Any, Generic, TypeVar

import numpy as np
from PIL import Image

SIDE = 64  # the signature's grey picture is SIDE x SIDE
PART = 32  # a picture is compared at this size, against crops of the other's signature
CHROMA = 32  # the signature's two colour planes (Cb, Cr) are CHROMA x CHROMA, compared block by block
SIGNATURE_BYTES = SIDE * SIDE + 2 * CHROMA * CHROMA  # 6 KiB
HASH_DISTANCE = 16  # at most this many bits apart to be compared at all
COARSE_CROPS = (0.0, 0.02, 0.04, 0.06)  # of each side, tried first; then refined to REFINE_STEPS
REFINE_STEPS = (0.01, 0.005, 0.0025)
BLOCKS = 8  # a compared picture is 8 x 8 blocks
BLOCK_TOLERANCE = 7.0  # grey levels: the largest mean difference a block of a copy may show
BRIGHTNESS_TOLERANCE = 3.0  # grey levels: the mean difference of the whole picture
ROUGH_TOLERANCE = 12.0  # grey levels: two pictures further apart than this at 8 x 8, unaligned, are not compared
COLOUR_TOLERANCE = 9.5  # levels of Cb or Cr: the largest mean difference a block's colour may show

_NpF = np.ndarray[Any, np.dtype[np.float32]]
_Crop = tuple[float, float]  # the share cut off one axis's start and end


@dataclass(frozen=True)
class Likeness:
    """What a picture is compared by: its perceptual hash and its grey signature."""

    phash: int  # as SQLite's INTEGER keeps it: signed 64-bit
    signature: bytes  # SIDE * SIDE grey levels, row by row; then CHROMA * CHROMA of Cb, and of Cr

    def to_json(self) -> dict[str, str]:
        return {"phash": f"{self.phash & 0xFFFF_FFFF_FFFF_FFFF:016x}",
                "signature": base64.b64encode(self.signature).decode("ascii")}

    @classmethod
    def from_json(cls, data: dict[str, Any]) -> Likeness:
        """From a thumbnail result's ``likeness``; ValueError when it is not one."""
        signature = base64.b64decode(str(data["signature"]), validate=True)
        if len(signature) != SIGNATURE_BYTES:
            raise ValueError(f"a signature has {SIGNATURE_BYTES} bytes, not {len(signature)}")
        return cls(signed64(int(str(data["phash"]), 16)), signature)


def signed64(value: int) -> int:
    value &= 0xFFFF_FFFF_FFFF_FFFF
    return value - (1 << 64) if value >= 1 << 63 else value


def likeness(image: Image.Image) -> Likeness:
    """The likeness of an upright picture (any size; the smallest thumbnail is enough)."""
    small = image.convert("RGB").resize((SIDE, SIDE), Image.Resampling.BOX).convert("YCbCr")
    grey, cb, cr = small.split()
    colour = b"".join(c.resize((CHROMA, CHROMA), Image.Resampling.BOX).tobytes() for c in (cb, cr))
    return Likeness(_phash(_shrink(np.asarray(grey, dtype=np.float32), PART)), grey.tobytes() + colour)


def _shrink(plane: _NpF, side: int) -> _NpF:
    """A square plane at ``side`` x ``side`` (each pixel the mean of the ones it covers). Strided
    sums: a tenth of the time of ``mean`` over a 4-d view, which every thumbnail job pays."""
    n = plane.shape[0] // side
    rows = plane[0::n].copy()
    for i in range(1, n):
        rows += plane[i::n]
    shrunk: _NpF = rows[:, 0::n].copy()
    for j in range(1, n):
        shrunk += rows[:, j::n]
    shrunk *= 1 / (n * n)
    return shrunk


@cache
def _dct_matrix() -> _NpF:
    """The first 8 rows of the 32-point DCT-II: only the lowest frequencies make the hash."""
    n = np.arange(PART)
    return np.cos(np.pi * (2 * n[None, :] + 1) * n[:8, None] / (2 * PART)).astype(np.float32)


def _phash(pixels: _NpF) -> int:
    d = _dct_matrix()
    low = (d @ pixels @ d.T).ravel()
    median = np.partition(low[1:], 31)[31]  # of the 63 after the mean (DC) term: the 32nd
    return signed64(int.from_bytes(np.packbits(low > median).tobytes(), "big"))  # the first bit highest


def hash_distance(a: int, b: int) -> int:
    return ((a ^ b) & 0xFFFF_FFFF_FFFF_FFFF).bit_count()


def _planes(data: bytes) -> tuple[_NpF, _NpF]:
    """A signature's grey plane (SIDE x SIDE) and its colour planes (2 x CHROMA x CHROMA)."""
    values = np.frombuffer(data, dtype=np.uint8).astype(np.float32)
    return values[:SIDE * SIDE].reshape(SIDE, SIDE), values[SIDE * SIDE:].reshape(2, CHROMA, CHROMA)


@cache
def _sampler(crop: _Crop, side: int = SIDE, out_side: int = PART) -> _NpF:
    """The ``out_side`` x ``side`` matrix that takes one axis of a plane to the pixels of its crop:
    each the mean of the plane's pixels it covers (as the signature itself was made)."""
    start, end = crop
    edges = np.arange(side + 1) / side
    out = np.zeros((out_side, side), dtype=np.float32)
    for i in range(out_side):
        lo = start + i / out_side * (1 - start - end)
        hi = start + (i + 1) / out_side * (1 - start - end)
        overlap = np.clip(np.minimum(edges[1:], hi) - np.maximum(edges[:-1], lo), 0, None)
        out[i] = overlap / overlap.sum()
    return out


@dataclass(frozen=True)
class Difference:
    """How far apart two signatures are at their best alignment, in grey levels."""

    block: float  # the largest mean absolute difference of a block's grey
    brightness: float  # the absolute difference of the grey means
    colour: float  # the largest mean absolute difference of a block's Cb or Cr

    @property
    def same(self) -> bool:
        return (self.block <= BLOCK_TOLERANCE and self.brightness <= BRIGHTNESS_TOLERANCE
                and self.colour <= COLOUR_TOLERANCE)


def difference(a: bytes, b: bytes) -> Difference:
    """The difference of two signatures, each tried as a crop of the other; the smaller one."""
    pa, pb = _planes(a), _planes(b)
    one, other = _within(pa, pb), _within(pb, pa)
    return min(one, other, key=lambda d: (d.block, d.brightness, d.colour))


def _within(container: tuple[_NpF, _NpF], part: tuple[_NpF, _NpF]) -> Difference:
    """``part`` against the crop of ``container`` it matches best: a coarse search of every side's
    crop on the grey planes, then finer steps around the best; the colour planes compared there."""
    grey, target = container[0], _shrink(part[0], PART)
    coarse = [(a, b) for a in COARSE_CROPS for b in COARSE_CROPS]
    rows, cols, diff = _best(grey, target, coarse, coarse)
    for step in REFINE_STEPS:
        rows, cols, diff = _best(grey, target, _around(rows, step), _around(cols, step))
    out = BLOCKS  # colour is compared a block at a time
    colour = [_sampler(rows, CHROMA, out) @ plane @ _sampler(cols, CHROMA, out).T - _shrink(other, out)
              for plane, other in zip(container[1], part[1])]
    return Difference(_worst_block(diff), float(abs(diff.mean())), max(_worst_block(c) for c in colour))


def _worst_block(diff: _NpF) -> float:
    """The largest mean absolute difference of the BLOCKS x BLOCKS blocks of a difference."""
    n = diff.shape[0] // BLOCKS
    return float(np.abs(diff).reshape(BLOCKS, n, BLOCKS, n).mean(axis=(1, 3)).max())


def _around(crop: _Crop, step: float) -> list[_Crop]:
    return [(max(0.0, round(crop[0] + i * step, 4)), max(0.0, round(crop[1] + j * step, 4)))
            for i in (-1, 0, 1) for j in (-1, 0, 1)]


def _best(container: _NpF, part: _NpF, row_crops: list[_Crop], col_crops: list[_Crop]) -> tuple[_Crop, _Crop, _NpF]:
    """The crops of rows and columns whose sample of ``container`` is nearest ``part``; the difference."""
    rows = np.stack([_sampler(c) for c in row_crops]) @ container  # (row crops, PART, SIDE)
    cols = np.stack([_sampler(c) for c in col_crops]).transpose(0, 2, 1)  # (col crops, SIDE, PART)
    diff = rows[:, None] @ cols[None] - part  # (row crops, col crops, PART, PART)
    i, j = np.unravel_index(int(np.argmin(np.square(diff).mean(axis=(2, 3)))), diff.shape[:2])
    return row_crops[i], col_crops[j], diff[i, j]


def same_picture(a: bytes, b: bytes) -> bool:
    """Whether two signatures are of the same picture (resized, re-encoded or slightly cropped).
    Pictures plainly apart (a hash collision of two unrelated photos) are told so before any fitting."""
    return _roughly_alike(a, b) and difference(a, b).same


def _roughly_alike(a: bytes, b: bytes) -> bool:
    """At 8 x 8 grey, unaligned, within ROUGH_TOLERANCE on average: a copy cropped by a few % is."""
    rough_a, rough_b = (_shrink(_planes(x)[0], BLOCKS) for x in (a, b))
    return float(np.abs(rough_a - rough_b).mean()) <= ROUGH_TOLERANCE


def candidate_pairs(hashes: Sequence[int], limit: int = HASH_DISTANCE, new_from: int = 0) -> Iterable[tuple[int, int]]:
    """The index pairs (i < j) of hashes at most ``limit`` bits apart, a block of rows at a time;
    only those with ``j >= new_from`` (pairs with one of the hashes from ``new_from`` on)."""
    if len(hashes) < 2:
        return
    values = np.array([h & 0xFFFF_FFFF_FFFF_FFFF for h in hashes], dtype=np.uint64)
    chunk = 1024
    for start in range(0, len(values), chunk):
        first = max(start, new_from)  # each row against itself and after, and only the new ones
        if first >= len(values):
            break
        rows = values[start:start + chunk]
        dist = np.bitwise_count(rows[:, None] ^ values[None, first:])
        for i, j in zip(*np.nonzero(dist <= limit)):
            if start + i < first + j:
                yield int(start + i), int(first + j)


K = TypeVar("K", bound=Hashable)


class Grouping(Generic[K]):
    """Pictures that are the same picture, kept as pictures come: each one added is compared with
    those before it once, and never again (the window asks again as a big drop's thumbnails
    complete; comparing every pair each time grew with the square of the session).

    A pair counts when its hashes are near and its signatures agree; a group is what such pairs
    join. ``signature`` is asked only of candidates, once each a call; None when the picture is gone."""

    def __init__(self) -> None:
        self.hashes: dict[K, int] = {}
        self._keys: list[K] = []
        self._parent: list[int] = []
        #: Some picture was gone when its signature was asked for: what it would have joined is unknown.
        self.incomplete = False

    def add(self, pictures: Sequence[tuple[K, int]], signature: Callable[[K], bytes | None]) -> None:
        """Add pictures, (key, perceptual hash) each, not added before."""
        known = len(self._keys)
        for key, phash in pictures:
            self.hashes[key] = phash
            self._keys.append(key)
            self._parent.append(len(self._parent))
        signatures: dict[int, bytes | None] = {}  # 6 KiB each: kept for this call only
        for i, j in candidate_pairs([self.hashes[k] for k in self._keys], new_from=known):
            if self._root(i) == self._root(j):
                continue
            for k in (i, j):
                if k not in signatures:
                    signatures[k] = signature(self._keys[k])
                    self.incomplete |= signatures[k] is None
            a, b = signatures[i], signatures[j]
            if a is not None and b is not None and same_picture(a, b):
                self._parent[self._root(j)] = self._root(i)

    def groups(self) -> list[list[K]]:
        """The groups of two or more, each in the order its pictures were added."""
        found: dict[int, list[K]] = {}
        for i, key in enumerate(self._keys):
            found.setdefault(self._root(i), []).append(key)
        return [g for g in found.values() if len(g) > 1]

    def _root(self, i: int) -> int:
        parent = self._parent
        while parent[i] != i:
            parent[i] = parent[parent[i]]
            i = parent[i]
        return i


def group(hashes: Sequence[int], signature: Callable[[int], bytes | None]) -> list[list[int]]:
    """The indexes of pictures that are the same picture, in groups of two or more (each in order),
    given their perceptual hashes and a way to get the signature of index i (see ``Grouping``)."""
    grouping: Grouping[int] = Grouping()
    grouping.add(list(enumerate(hashes)), signature)
    return grouping.groups()

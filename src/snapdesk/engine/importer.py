"""Finding the documents in what a person drops: files and folders, recursively.

Hidden files and folders, unsupported types, empty and oversized files are skipped and
counted by reason; a folder reached twice (a symlink loop) is walked once. Each skipped path is
also named, with its reason and a sentence (an unsupported type says its extension, a duplicate
says which file it repeats), up to :data:`SKIPPED_PATHS_KEPT` a scan; the rest are only counted.

A Live Photo is one document: a still (HEIC, HEIF or JPEG) and a QuickTime clip of the same name in the
same folder (IMG_0001.HEIC and IMG_0001.MOV, case aside) are found as the still, with the clip recorded
with it (:class:`LiveClip`: its path, size and length), whether the folder or the two files were dropped.
A clip without such a partner, or whose still cannot be read, is a video document as any other.
"""

from __future__ import annotations

import hashlib
import os
import queue
import stat
import threading
import time
from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path
from typing import Iterable, Iterator, TypeVar

from ..processors.video import clip_duration
from .jobs import kind_of

#: At most this many skipped paths are named a scan (a folder of a million ignored files is counted).
SKIPPED_PATHS_KEPT = 10_000


#: A Live Photo's still, best first (a folder holding IMG_1.HEIC, IMG_1.JPG and IMG_1.MOV pairs the HEIC),
#: and its clip.
STILL_SUFFIXES = (".heic", ".heif", ".jpg", ".jpeg")
CLIP_SUFFIXES = (".mov",)


@dataclass
class LiveClip:
    """A Live Photo's clip, recorded with its still's document (see the module's docstring)."""

    path: Path
    size: int
    mtime: float
    duration: float | None  # seconds, from the clip's header; None when it could not be read


@dataclass
class FoundFile:
    path: Path
    size: int
    mtime: float
    kind: str
    clip: LiveClip | None = None


@dataclass
class Scanner:
    max_bytes: int
    #: Files left out, by reason: hidden, unsupported, empty, too_large, unreadable, missing, duplicate.
    skipped: Counter[str] = field(default_factory=Counter)
    #: (path, reason) for what a person should hear about: missing or unreadable paths.
    problems: list[tuple[str, str]] = field(default_factory=list)
    #: (path, reason, sentence) for every skipped file or folder, the first ``keep_paths`` of them.
    skipped_paths: list[tuple[str, str, str]] = field(default_factory=list)
    keep_paths: int = SKIPPED_PATHS_KEPT

    def scan(self, paths: Iterable[str | os.PathLike[str]]) -> Iterator[FoundFile]:
        visited: set[tuple[int, int]] = set()
        listed = [Path(raw).expanduser().absolute() for raw in paths]
        clips = live_pairs(listed)
        paired = set(clips.values())
        for path in listed:
            if path in paired:
                continue  # found with its still
            try:
                st = path.stat()
            except FileNotFoundError:
                self.skip(path, "missing", "no such file or folder")
                continue
            except OSError as exc:
                self.skip(path, "unreadable", f"cannot read it ({exc.strerror or exc})")
                continue
            if stat.S_ISDIR(st.st_mode):
                yield from self._walk(path, visited)
            elif path in clips:
                yield from self._live(path, st, clips[path])
            else:
                found = self._file(path, st)
                if found:
                    yield found

    def _walk(self, folder: Path, visited: set[tuple[int, int]]) -> Iterator[FoundFile]:
        try:
            st = folder.stat()
            entries = sorted(os.scandir(folder), key=lambda e: e.name)
        except OSError as exc:
            self.skip(folder, "unreadable", f"cannot read it ({exc.strerror or exc})")
            return
        if (st.st_dev, st.st_ino) in visited:  # a symlink back into a folder already walked
            return
        visited.add((st.st_dev, st.st_ino))
        clips = live_pairs([Path(entry.path) for entry in entries if not entry.name.startswith(".")])
        paired = set(clips.values())
        for entry in entries:
            path = Path(entry.path)
            if path in paired:
                continue  # found with its still
            try:
                st = entry.stat()  # follows symlinks
            except OSError as exc:  # a dangling symlink, a loop of links, no permission
                self.skip(path, "unreadable", f"cannot read it ({exc.strerror or exc})")
                continue
            if _hidden(entry.name, st):
                self.leave_out(path, "hidden", "a hidden folder" if stat.S_ISDIR(st.st_mode) else "a hidden file")
            elif stat.S_ISDIR(st.st_mode):
                yield from self._walk(path, visited)
            elif stat.S_ISREG(st.st_mode) and path in clips:
                yield from self._live(path, st, clips[path])
            elif stat.S_ISREG(st.st_mode):
                found = self._file(path, st)
                if found:
                    yield found

    def _live(self, still: Path, st: os.stat_result, clip: Path) -> Iterator[FoundFile]:
        """A Live Photo's still, found with its clip; should either not be a file to import (empty, too
        large, unreadable), each is found, or skipped, on its own."""
        found = self._file(still, st)
        try:
            clip_st = clip.stat()
        except OSError as exc:
            self.skip(clip, "unreadable", f"cannot read it ({exc.strerror or exc})")
            clip_st = None
        if found and clip_st and stat.S_ISREG(clip_st.st_mode) and 0 < clip_st.st_size <= self.max_bytes:
            found.clip = LiveClip(clip, clip_st.st_size, clip_st.st_mtime, clip_duration(clip))
            yield found
            return
        if found:
            yield found
        if clip_st:
            alone = self._file(clip, clip_st)
            if alone:
                yield alone

    def _file(self, path: Path, st: os.stat_result) -> FoundFile | None:
        kind = kind_of(path.suffix)
        if kind is None or not stat.S_ISREG(st.st_mode):
            what = f"{path.suffix.lower()} files" if path.suffix and stat.S_ISREG(st.st_mode) else "this type"
            self.leave_out(path, "unsupported", f"unsupported type: SnapDesk does not read {what}")
        elif st.st_size == 0:
            self.skip(path, "empty", "the file is empty")
        elif st.st_size > self.max_bytes:
            self.skip(path, "too_large", f"{st.st_size / 2**20:.0f} MiB is more than the "
                                          f"{self.max_bytes / 2**20:.0f} MiB limit (SNAPDESK_MAX_FILE_MB)")
        else:
            return FoundFile(path, st.st_size, st.st_mtime, kind)
        return None

    def skip(self, path: Path, reason: str, message: str) -> None:
        """Leave out a file a person should hear about at once (missing, unreadable, empty, too large)."""
        self.leave_out(path, reason, message)
        self.problems.append((str(path), message))

    def leave_out(self, path: Path, reason: str, message: str) -> None:
        """Count a skipped path by reason, and name it while fewer than ``keep_paths`` are named."""
        self.skipped[reason] += 1
        if len(self.skipped_paths) < self.keep_paths:
            self.skipped_paths.append((str(path), reason, message))


def live_pairs(paths: Iterable[Path]) -> dict[Path, Path]:
    """The Live Photos among ``paths``: each still (by ``STILL_SUFFIXES``, the first present) -> its clip,
    a file of the same folder and name (case aside) with a suffix of ``CLIP_SUFFIXES``."""
    by_name: dict[tuple[Path, str], dict[str, Path]] = {}
    for path in paths:
        suffix = path.suffix.lower()
        if suffix in STILL_SUFFIXES or suffix in CLIP_SUFFIXES:
            by_name.setdefault((path.parent, path.stem.casefold()), {}).setdefault(suffix, path)
    pairs = {}
    for found in by_name.values():
        still = next((found[s] for s in STILL_SUFFIXES if s in found), None)
        clip = next((found[s] for s in CLIP_SUFFIXES if s in found), None)
        if still is not None and clip is not None:
            pairs[still] = clip
    return pairs


def _hidden(name: str, st: os.stat_result) -> bool:
    if name.startswith("."):
        return True
    return bool(getattr(st, "st_file_attributes", 0) & getattr(stat, "FILE_ATTRIBUTE_HIDDEN", 0))


def sha256_file(path: Path) -> str:
    digest = hashlib.sha256()
    with open(path, "rb") as fh:
        for chunk in iter(lambda: fh.read(1 << 20), b""):
            digest.update(chunk)
    return digest.hexdigest()


def found_batches(scanner: Scanner, paths: Iterable[str | os.PathLike[str]], first: int = 1, size: int = 500,
                  seconds: float = 0.25) -> Iterator[list[tuple[FoundFile, str]]]:
    """What the scan finds, hashed and without repeated content, in batches: the first holds ``first``
    files (fewer only when the scan ended), the rest up to ``size`` files or ``seconds`` of scanning, so
    a big folder shows up while it is still being read."""
    seen: dict[str, Path] = {}
    batch: list[tuple[FoundFile, str]] = []
    limit, started = first, time.monotonic()
    for f in scanner.scan(paths):
        try:
            sha = sha256_file(f.path)
        except OSError as exc:
            scanner.skip(f.path, "unreadable", f"cannot read it ({exc.strerror or exc})")
            continue
        if sha in seen:
            scanner.leave_out(f.path, "duplicate", f"the same content as {seen[sha]}")
            continue
        seen[sha] = f.path
        batch.append((f, sha))
        if len(batch) >= limit or (limit == size and time.monotonic() - started >= seconds):
            yield batch
            batch, limit, started = [], size, time.monotonic()
    if batch:
        yield batch


T = TypeVar("T")


def read_ahead(items: Iterator[T], depth: int = 2) -> Iterator[T]:
    """``items``, made on a thread of their own while the caller works on the one before, at most
    ``depth`` ahead. ``Library.submit`` scans and hashes the next batch while it adds one and queues
    its jobs (a round trip to Redis, however far away it is). An error of the scan is raised here;
    should the caller stop early, the thread stops after the item it is making."""
    ready: queue.Queue[tuple[str, object]] = queue.Queue(depth)
    stop = threading.Event()

    def put(kind: str, value: object) -> bool:
        while not stop.is_set():
            try:
                ready.put((kind, value), timeout=0.1)
                return True
            except queue.Full:
                continue
        return False

    def make() -> None:
        try:
            for item in items:
                if not put("item", item):
                    return
            put("end", None)
        except BaseException as exc:  # handed to the caller, who raises it
            put("error", exc)

    thread = threading.Thread(target=make, name="snapdesk-read-ahead", daemon=True)
    thread.start()
    try:
        while True:
            kind, value = ready.get()
            if kind == "end":
                return
            if kind == "error":
                raise value  # type: ignore[misc]  # an exception, as ``make`` put it
            yield value  # type: ignore[misc]  # an item, as ``make`` put it
    finally:
        stop.set()
        thread.join()

"""Finding the documents in what a person drops: files and folders, recursively.

Hidden files and folders, unsupported types, empty and oversized files are skipped and
counted by reason; a folder reached twice (a symlink loop) is walked once.
"""

from __future__ import annotations

import hashlib
import os
import stat
from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path
from typing import Iterable, Iterator

from .jobs import kind_of


@dataclass
class FoundFile:
    path: Path
    size: int
    mtime: float
    kind: str


@dataclass
class Scanner:
    max_bytes: int
    #: Files left out, by reason: hidden, unsupported, empty, too_large, unreadable, missing, duplicate.
    skipped: Counter = field(default_factory=Counter)
    #: (path, reason) for what a person should hear about: missing or unreadable paths.
    problems: list = field(default_factory=list)

    def scan(self, paths: Iterable[str | os.PathLike]) -> Iterator[FoundFile]:
        visited: set[tuple[int, int]] = set()
        for raw in paths:
            path = Path(raw).expanduser().absolute()
            try:
                st = path.stat()
            except FileNotFoundError:
                self._skip(path, "missing", "no such file or folder")
                continue
            except OSError as exc:
                self._skip(path, "unreadable", f"cannot read it ({exc.strerror or exc})")
                continue
            if stat.S_ISDIR(st.st_mode):
                yield from self._walk(path, visited)
            else:
                found = self._file(path, st)
                if found:
                    yield found

    def _walk(self, folder: Path, visited: set) -> Iterator[FoundFile]:
        try:
            st = folder.stat()
            entries = sorted(os.scandir(folder), key=lambda e: e.name)
        except OSError as exc:
            self._skip(folder, "unreadable", f"cannot read it ({exc.strerror or exc})")
            return
        if (st.st_dev, st.st_ino) in visited:  # a symlink back into a folder already walked
            return
        visited.add((st.st_dev, st.st_ino))
        for entry in entries:
            path = Path(entry.path)
            try:
                st = entry.stat()  # follows symlinks
            except OSError as exc:  # a dangling symlink, a loop of links, no permission
                self._skip(path, "unreadable", f"cannot read it ({exc.strerror or exc})")
                continue
            if _hidden(entry.name, st):
                self.skipped["hidden"] += 1
            elif stat.S_ISDIR(st.st_mode):
                yield from self._walk(path, visited)
            elif stat.S_ISREG(st.st_mode):
                found = self._file(path, st)
                if found:
                    yield found

    def _file(self, path: Path, st: os.stat_result) -> FoundFile | None:
        kind = kind_of(path.suffix)
        if kind is None or not stat.S_ISREG(st.st_mode):
            self.skipped["unsupported"] += 1
        elif st.st_size == 0:
            self._skip(path, "empty", "the file is empty")
        elif st.st_size > self.max_bytes:
            self._skip(path, "too_large", f"{st.st_size / 2**20:.0f} MiB is more than the "
                                          f"{self.max_bytes / 2**20:.0f} MiB limit (SNAPDESK_MAX_FILE_MB)")
        else:
            return FoundFile(path, st.st_size, st.st_mtime, kind)
        return None

    def _skip(self, path: Path, reason: str, message: str) -> None:
        self.skipped[reason] += 1
        self.problems.append((str(path), message))


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

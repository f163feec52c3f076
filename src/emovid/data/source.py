"""Where videos live: a file or a zip member, the video suffixes, and the search of folders and archives."""

from __future__ import annotations

import io
import zipfile
from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path
from typing import BinaryIO

VIDEO_SUFFIXES = (".mp4", ".mov", ".mkv", ".webm", ".avi", ".flv", ".gif")


@dataclass(frozen=True)
class VideoSource:
    """Where a video's bytes live: a file, or a member of a zip archive."""

    path: Path
    member: str | None = None

    @property
    def display(self) -> str:
        """How errors and reports name this video."""
        return f"{self.path}:{self.member}" if self.member else str(self.path)

    def __str__(self) -> str:
        return self.display

    @property
    def name(self) -> str:
        """The file name (of the member, for a zip member), without folders."""
        return Path(self.member).name if self.member else self.path.name

    @property
    def relative(self) -> str:
        """The member's path inside its archive, or the file's path: what folder-based labels read."""
        return self.member if self.member else str(self.path)

    def open(self) -> BinaryIO:
        """A seekable binary stream of the video (a zip member is read into memory, never to disk)."""
        if self.member is None:
            return open(self.path, "rb")
        with zipfile.ZipFile(self.path) as archive:
            return io.BytesIO(archive.read(self.member))


@dataclass(frozen=True)
class Reject:
    """A file left out of a run, with the reason in one line."""

    file: str
    reason: str


def is_video(name: str) -> bool:
    """Whether a file name has one of :data:`VIDEO_SUFFIXES` (any case)."""
    return name.lower().endswith(VIDEO_SUFFIXES)


def iter_sources(root: Path, rejects: list[Reject]) -> Iterable[VideoSource]:
    """The videos of a folder (searched recursively, zips included), a zip's members, or one file as it is.

    Archives that cannot be opened go into ``rejects``.
    """
    archives = [root] if root.is_file() and root.suffix.lower() == ".zip" else []
    if root.is_file() and not archives:
        yield VideoSource(root)
        return
    if root.is_dir():
        for path in sorted(root.rglob("*"), key=lambda p: p.parts):  # Path order, without Path.__lt__'s cost
            if path.is_file() and is_video(path.name):
                yield VideoSource(path)
            elif path.is_file() and path.suffix.lower() == ".zip":
                archives.append(path)
    for archive in archives:
        try:
            with zipfile.ZipFile(archive) as zf:
                members = [i.filename for i in zf.infolist() if not i.is_dir() and is_video(i.filename)]
        except (zipfile.BadZipFile, OSError) as exc:
            rejects.append(Reject(str(archive), f"unreadable zip archive ({exc})"))
            continue
        for member in sorted(members):
            yield VideoSource(archive, member)

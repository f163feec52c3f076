"""What the user named: files, folders, zips and globs, expanded into the videos to predict and the failures."""

from __future__ import annotations

import errno
import glob
import os
from collections.abc import Sequence
from pathlib import Path

from emovid.data.shard import Shard
from emovid.data.source import VIDEO_SUFFIXES, Reject, VideoSource, iter_sources
from emovid.data.video import failure_reason
from emovid.timeline import Failure


def find_videos(inputs: Sequence[str], shard: Shard | None = None) -> tuple[list[VideoSource], list[Failure]]:
    """Expand files, folders and zips (searched for videos, see :func:`iter_sources`) and globs, keeping order.

    A file is taken whatever its suffix (decoding says whether it is a video); inputs that match nothing come
    back as failures. A glob that reaches a file twice (through a symbolic link loop, say) lists it once. With
    ``shard``, only that shard's videos and failures, sorted (see :class:`~emovid.data.shard.Shard`).
    """
    videos: list[VideoSource] = []
    failures: list[Failure] = []
    for text in inputs:
        path = Path(text)
        if path.is_dir() or (path.is_file() and path.suffix.lower() == ".zip"):
            rejects: list[Reject] = []
            found = list(iter_sources(path, rejects))
            failures.extend(Failure(r.file, r.reason) for r in rejects)
            if not found and not rejects:
                what = "archive" if path.is_file() else "folder"
                failures.append(Failure(text, f"no videos ({', '.join(VIDEO_SUFFIXES)}) in this {what}"))
        elif path.exists():
            found = [VideoSource(path)]
        elif path.is_symlink():
            failures.append(Failure(text, _broken_link(path)))
            continue
        else:
            matches: dict[str, Path] = {}
            for match in sorted(map(Path, glob.glob(text, recursive=True)), key=lambda p: (len(p.parts), p)):
                if match.is_file():  # ** follows links: through a loop, one file has many paths; keep the shortest
                    matches.setdefault(os.path.realpath(match), match)
            found = [VideoSource(p) for p in sorted(matches.values())]
            if not found:
                failures.append(Failure(text, "no such file or folder" if glob.escape(text) == text else
                                        "the pattern matches no file"))
        videos.extend(found)
    if shard is not None:
        return shard.select(videos, key=str), shard.select(failures, key=lambda f: f.source)
    return videos, failures


def _broken_link(path: Path) -> str:
    try:
        path.resolve(strict=True)
    except (RuntimeError, OSError) as exc:  # RuntimeError: how Python < 3.13 reports a loop
        if isinstance(exc, RuntimeError) or exc.errno == errno.ELOOP:
            return "a symbolic link loop"
    return f"a broken symbolic link (to {os.readlink(path)})"


def as_failure(error: Exception, source: VideoSource | str | Path) -> Failure:
    """An error as a Failure whose one-line reason does not repeat the file (and names an unexpected error's type)."""
    return Failure(str(source), failure_reason(error, str(source)))

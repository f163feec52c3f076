"""What every adapter does alike: walk the sources, turn names into entries, reject the rest, split by file."""

from __future__ import annotations

import hashlib
import re
from collections.abc import Callable, Sequence
from pathlib import Path

from emovid.data.entry import DatasetIndex, Entry
from emovid.data.source import Reject, VideoSource, iter_sources
from emovid.labels import KNOWN_EMOTIONS

EntryOf = Callable[[VideoSource], Entry | None]

_UNSAFE = re.compile(r"[^A-Za-z0-9._-]+")


class DatasetNameError(ValueError):
    """A file name that does not follow a dataset's convention; the message is the reason, without the file."""


def collect(index: DatasetIndex, root: Path, entry_of: EntryOf) -> DatasetIndex:
    """Fill ``index`` with an entry per video under ``root``.

    ``entry_of`` returns the video's entry, None for a video the options leave out (not a reject), or raises
    ValueError whose message is the reason the video is rejected. A second video with the key of an earlier
    one is rejected as its duplicate. Entries end sorted by key.
    """
    seen: dict[str, VideoSource] = {}
    for source in iter_sources(root, index.rejects):
        try:
            entry = entry_of(source)
        except ValueError as exc:
            index.rejects.append(Reject(source.display, str(exc)))
            continue
        if entry is None:
            continue
        if entry.key in seen:
            index.rejects.append(Reject(source.display, f"duplicate of {seen[entry.key].display}"))
            continue
        seen[entry.key] = source
        index.entries.append(entry)
    index.entries.sort(key=lambda e: e.key)
    return index


def relative_parts(root: Path, source: VideoSource) -> tuple[str, ...]:
    """The source's path below ``root`` as parts, a zip archive counting as the folder it would unpack to."""
    if root.is_file():
        outer: tuple[str, ...] = ()
    else:
        outer = source.path.relative_to(root).parts
    if source.member is None:
        return outer
    return (*outer[:-1], *Path(source.member).parts)


def path_text(source: VideoSource) -> str:
    """The source's path as text, a zip counting as the folder it unpacks to (``M003.zip:video/...`` gives
    ``M003/video/...``), so the actor folder is seen wherever the tree starts."""
    if source.member is None:
        return source.path.as_posix()
    return f"{source.path.with_suffix('').as_posix()}/{source.member}"


def file_key(parts: Sequence[str]) -> str:
    """A key safe as a file name from a relative path: ``happy/take 1.mp4`` -> ``happy__take_1``."""
    *folders, name = parts
    return "__".join(_UNSAFE.sub("_", p).strip("_") or "_" for p in (*folders, Path(name).stem))


def class_order(labels: set[str]) -> tuple[str, ...]:
    """Class names in emovid's order for known emotions, then the others alphabetically."""
    known = [e for e in KNOWN_EMOTIONS if e in labels]
    return (*known, *sorted(labels - set(known)))


def hash_split(keys: Sequence[str], val: float = 0.1, test: float = 0.1) -> dict[str, tuple[str, ...]]:
    """Train, val and test keys by a stable hash of each key (the same key lands in the same split on every
    machine and in every run, whatever else the collection holds)."""
    split: dict[str, list[str]] = {"train": [], "val": [], "test": []}
    for key in keys:
        bucket = int(hashlib.sha1(key.encode()).hexdigest()[:8], 16) % 1000 / 1000
        split["test" if bucket < test else "val" if bucket < test + val else "train"].append(key)
    return {name: tuple(sorted(keys)) for name, keys in split.items()}


def no_subjects_note(root: Path) -> str:
    """What a user must hear when a collection names no subjects."""
    return (f"{root}: NO SUBJECTS: split by file (80/10/10 by a hash of the path), so one person's clips can be in "
            "train and test and the scores flatter the model; give subjects in a manifest's subject column")
